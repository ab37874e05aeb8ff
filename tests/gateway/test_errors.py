"""Error cases, as the official client raises them: status codes and the OpenAI error body."""

import http.client
import json
import urllib.parse

import openai
import pytest
from openai import OpenAI

from conftest import CHAT_MODEL, EMBED_MODEL, TIMEOUT, http_post

HI = [{"role": "user", "content": "hi"}]


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=HI)
    assert e.value.status_code == 404
    assert e.value.code == "model_not_found"
    assert e.value.param == "model"


@pytest.mark.parametrize(
    "kwargs, param",
    [
        (dict(temperature=5), "temperature"),
        (dict(max_tokens=0), "max_tokens"),
        (dict(n=2), "n"),
        (dict(messages=[]), "messages"),
        (dict(messages=[{"role": "tool", "content": "x", "tool_call_id": "1"}]), "messages[0].role"),
        (dict(model=EMBED_MODEL), "model"),
    ],
)
def test_bad_request_is_400(client, kwargs, param):
    args = dict(model=CHAT_MODEL, messages=HI, max_tokens=4) | kwargs
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(**args)
    assert e.value.status_code == 400
    assert e.value.param == param, e.value.body


def test_bad_embeddings_request_is_400(client):
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=EMBED_MODEL, input=[])
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=CHAT_MODEL, input="x")


def test_wrong_key_is_401(gateway_url, api_key):
    if api_key == "unused":
        pytest.skip("the gateway under test has no API key")
    wrong = OpenAI(base_url=f"{gateway_url}/v1", api_key="sk-wrong", max_retries=0, timeout=TIMEOUT)
    with pytest.raises(openai.AuthenticationError) as e:
        wrong.models.list()
    assert e.value.code == "invalid_api_key"


def test_missing_key_is_401(gateway_url, api_key):
    if api_key == "unused":
        pytest.skip("the gateway under test has no API key")
    # The official client refuses to send no key at all, so this one goes without it.
    status, body = http_post(f"{gateway_url}/v1/chat/completions", {"model": CHAT_MODEL, "messages": HI})
    assert status == 401, body
    assert body["error"]["code"] == "missing_api_key"


def test_oversized_body_is_413(gateway_url, api_key):
    # The gateway refuses a body over its cap from the Content-Length alone, before reading any of
    # it, and closes the connection; so the client sends only the headers and reads the answer
    # (a client still writing the body would meet the closed connection instead).
    url = urllib.parse.urlsplit(gateway_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=TIMEOUT)
    conn.putrequest("POST", "/v1/chat/completions")
    conn.putheader("authorization", f"Bearer {api_key}")
    conn.putheader("content-type", "application/json")
    conn.putheader("content-length", str(1024 * 1024))
    conn.endheaders()
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    assert resp.status == 413, body
    assert body["error"]["code"] == "request_too_large"


def test_empty_escrow_is_402(poor_client):
    with pytest.raises(openai.APIStatusError) as e:
        poor_client.chat.completions.create(model=CHAT_MODEL, messages=HI, max_tokens=8)
    assert e.value.status_code == 402
    assert e.value.code == "insufficient_balance"
    # Streaming requests fail the same way, before any chunk.
    with pytest.raises(openai.APIStatusError) as e:
        list(poor_client.chat.completions.create(model=CHAT_MODEL, messages=HI, max_tokens=8, stream=True))
    assert e.value.status_code == 402
