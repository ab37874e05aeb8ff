"""Fixtures of the gateway's OpenAI-compatibility tests.

The tests run the official `openai` Python client against a running Cocoon gateway. They are
driven by tests/e2e/tests/gateway_openai.rs, which starts a whole local network (localnet, Root,
relayer, a worker with the real models) and the gateway, then sets:

  COCOON_GATEWAY_URL        base URL of the gateway (required), e.g. http://127.0.0.1:8090
  COCOON_GATEWAY_KEY        its API key (required when the gateway has one)
  COCOON_GATEWAY_POOR_URL   a second gateway whose escrow cannot pay for a job (the 402 test)
  COCOON_EXPECT_ATTESTATION the X-Cocoon-Attestation value expected, e.g. "UNATTESTED (SIMULATED TEE)"
  COCOON_SETTLEMENT_TIMEOUT seconds to wait for a receipt to settle on-chain (default 120; 0 skips)
"""

import json
import os
import urllib.error
import urllib.request

import pytest
from openai import OpenAI

CHAT_MODEL = os.environ.get("COCOON_CHAT_MODEL", "smollm2-135m-instruct")
EMBED_MODEL = os.environ.get("COCOON_EMBED_MODEL", "all-minilm-l6-v2")
# Every test makes real jobs on a CPU worker: generous, and no retries (a retry would hide a 429/5xx).
TIMEOUT = float(os.environ.get("COCOON_GATEWAY_TIMEOUT", "300"))


def _require(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run these tests through tests/e2e/tests/gateway_openai.rs", pytrace=False)
    return value


@pytest.fixture(scope="session")
def gateway_url():
    return _require("COCOON_GATEWAY_URL").rstrip("/")


@pytest.fixture(scope="session")
def api_key():
    return os.environ.get("COCOON_GATEWAY_KEY", "unused")


@pytest.fixture(scope="session")
def client(gateway_url, api_key):
    return OpenAI(base_url=f"{gateway_url}/v1", api_key=api_key, max_retries=0, timeout=TIMEOUT)


@pytest.fixture(scope="session")
def poor_client(api_key):
    url = os.environ.get("COCOON_GATEWAY_POOR_URL")
    if not url:
        pytest.skip("COCOON_GATEWAY_POOR_URL is not set (no gateway with an empty escrow)")
    return OpenAI(base_url=f"{url.rstrip('/')}/v1", api_key=api_key, max_retries=0, timeout=TIMEOUT)


@pytest.fixture(scope="session")
def expected_attestation():
    return os.environ.get("COCOON_EXPECT_ATTESTATION")


def http_get(url, headers=None):
    """GET a JSON document with the standard library; returns (status, body)."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def http_post(url, body, headers=None):
    """POST a JSON body; returns (status, body)."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
