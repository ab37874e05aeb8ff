"""Raw completions (`/v1/completions`), plain and streamed."""

from checks import check_cocoon, check_usage, cocoon_fields
from conftest import CHAT_MODEL


def test_completion(client, expected_attestation):
    resp = client.completions.create(model=CHAT_MODEL, prompt="The capital of France is", max_tokens=8, temperature=0)
    assert resp.object == "text_completion"
    assert resp.choices[0].text.strip(), resp
    assert resp.choices[0].finish_reason in ("stop", "length")
    check_usage(resp.usage)
    assert resp.usage.completion_tokens <= 8
    check_cocoon(cocoon_fields(resp), expected_attestation)


def test_streaming_completion(client):
    chunks = list(
        client.completions.create(
            model=CHAT_MODEL,
            prompt="One, two, three,",
            max_tokens=6,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text.strip(), chunks
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens <= 6
