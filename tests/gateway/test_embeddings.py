"""Embeddings: one string, a list, both encodings, and that they mean something."""

import math

from checks import check_cocoon, check_usage, cocoon_fields
from conftest import EMBED_MODEL

DIM = 384  # all-MiniLM-L6-v2


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_embedding_of_a_string(client, expected_attestation):
    # The client asks for base64 by default and decodes it: this checks the gateway's encoding.
    resp = client.embeddings.create(model=EMBED_MODEL, input="Cocoon runs AI models confidentially.")
    assert resp.object == "list"
    assert len(resp.data) == 1
    vec = resp.data[0].embedding
    assert len(vec) == DIM and all(isinstance(x, float) for x in vec)
    assert any(x != 0 for x in vec)
    check_usage(resp.usage, completion=False)
    check_cocoon(cocoon_fields(resp), expected_attestation)


def test_embeddings_of_a_list_are_semantic(client):
    texts = ["A cat is sitting on the mat.", "A kitten rests on a rug.", "The stock market fell sharply today."]
    resp = client.embeddings.create(model=EMBED_MODEL, input=texts, encoding_format="float")
    assert [d.index for d in resp.data] == [0, 1, 2]
    cat, kitten, stocks = (d.embedding for d in resp.data)
    assert cosine(cat, kitten) > cosine(cat, stocks) + 0.2, (cosine(cat, kitten), cosine(cat, stocks))
    # Same text, same vector, whichever encoding carried it.
    b64 = client.embeddings.create(model=EMBED_MODEL, input=texts[0]).data[0].embedding
    assert max(abs(x - y) for x, y in zip(b64, cat)) < 1e-5
