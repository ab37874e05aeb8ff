"""Chat completions through the official client: plain, streamed with usage, and the raw headers."""

import os
import time

from checks import check_cocoon, check_usage, cocoon_fields
from conftest import CHAT_MODEL, http_get

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


def test_chat_completion(client, expected_attestation):
    raw = client.chat.completions.with_raw_response.create(model=CHAT_MODEL, messages=QUESTION, max_tokens=12, temperature=0)
    if expected_attestation:
        assert raw.headers["x-cocoon-attestation"] == expected_attestation
    resp = raw.parse()
    assert resp.object == "chat.completion"
    assert resp.model == CHAT_MODEL
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content.strip(), resp
    assert choice.finish_reason in ("stop", "length")
    check_usage(resp.usage)
    assert resp.usage.completion_tokens <= 12
    # SmolLM2-135M knows this one; greedy decoding makes it reproducible.
    assert "paris" in choice.message.content.lower(), choice.message.content
    check_cocoon(cocoon_fields(resp), expected_attestation)


def test_chat_is_deterministic_at_temperature_zero(client):
    ask = dict(model=CHAT_MODEL, messages=[{"role": "user", "content": "Name a color."}], max_tokens=6, temperature=0)
    a = client.chat.completions.create(**ask)
    b = client.chat.completions.create(**ask)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert cocoon_fields(a)["job"] != cocoon_fields(b)["job"], "every request is its own on-chain job"


def test_streaming_chat_with_usage(client, expected_attestation):
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=QUESTION,
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks, "no chunks"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "paris" in text.lower(), text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes in (["stop"], ["length"]), finishes
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None, last
    check_usage(last.usage)
    assert all(c.usage is None for c in chunks[:-1])
    check_cocoon(cocoon_fields(last), expected_attestation)

    # The streamed answer is the same as the plain one (same greedy decoding, same model).
    plain = client.chat.completions.create(model=CHAT_MODEL, messages=QUESTION, max_tokens=12, temperature=0)
    assert plain.choices[0].message.content == text


def test_stop_sequence_and_max_tokens(client):
    # Greedy SmolLM2 answers "The capital of France is Paris.": it stops before " is".
    resp = client.chat.completions.create(model=CHAT_MODEL, messages=QUESTION, max_tokens=12, temperature=0, stop=[" is"])
    text = resp.choices[0].message.content
    assert " is" not in text and text.strip(), text
    assert resp.choices[0].finish_reason == "stop"
    short = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Tell me a long story about a dragon."}],
        max_tokens=3,
        temperature=0,
    )
    assert short.choices[0].finish_reason == "length"
    assert short.usage.completion_tokens == 3


def test_receipt_settles_on_chain(client, gateway_url, api_key):
    wait = float(os.environ.get("COCOON_SETTLEMENT_TIMEOUT", "120"))
    if wait <= 0:
        return
    resp = client.chat.completions.create(model=CHAT_MODEL, messages=QUESTION, max_tokens=4, temperature=0)
    fields = cocoon_fields(resp)
    deadline = time.monotonic() + wait
    while True:
        status, body = http_get(f"{gateway_url}/v1/cocoon/jobs/{fields['job']}", {"authorization": f"Bearer {api_key}"})
        assert status == 200, body
        if body["settled"]:
            break
        assert time.monotonic() < deadline, f"job {fields['job']} not settled after {wait} s"
        time.sleep(1)
    s = body["settlement"]
    assert s["cost_nano"] == fields["cost_nano"], (s, fields)
    assert s["worker"] == fields["worker"], (s, fields)
