"""Assertions shared by the gateway tests: the `cocoon` fields and `usage` of a response."""

import base64
import re

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def cocoon_fields(response):
    """The `cocoon` object of an openai response model (an extra field: pydantic keeps it)."""
    extra = response.model_extra or {}
    assert "cocoon" in extra, f"response has no cocoon fields: {response}"
    return extra["cocoon"]


def check_cocoon(fields, expected_attestation=None):
    cost = int(fields["cost_nano"])
    max_cost = int(fields["max_cost_nano"])
    assert 0 < cost <= max_cost, fields
    assert HEX64.match(fields["receipt_hash"]), fields
    assert base64.b64decode(fields["receipt"]), fields
    assert re.match(r"^-?\d+:[0-9a-f]{64}$", fields["worker"]), fields
    assert fields["attestation_kind"] in ("simulated", "sev_snp", "tdx"), fields
    if fields["attestation_kind"] == "simulated":
        assert fields["attestation"] == "UNATTESTED (SIMULATED TEE)", fields
    if expected_attestation:
        assert fields["attestation"] == expected_attestation, fields
    assert fields["job"], fields
    return cost


def check_usage(usage, completion=True):
    assert usage.prompt_tokens > 0, usage
    if completion:
        assert usage.completion_tokens > 0, usage
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage
    else:
        assert usage.total_tokens == usage.prompt_tokens, usage
