"""`/v1/models`: the network's models, their attested workers and prices."""

import openai
import pytest

from conftest import CHAT_MODEL, EMBED_MODEL


def test_models_list(client):
    models = {m.id: m for m in client.models.list()}
    assert {CHAT_MODEL, EMBED_MODEL} <= set(models), models
    for name in (CHAT_MODEL, EMBED_MODEL):
        info = models[name].model_extra["cocoon"]
        assert info["attested_workers"] >= 1, info
        assert int(info["min_price_in_nano"]) >= 0 and int(info["min_price_out_nano"]) >= 0, info
        assert len(info["registry_hash"]) == 64


def test_model_retrieve(client):
    assert client.models.retrieve(CHAT_MODEL).id == CHAT_MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")
