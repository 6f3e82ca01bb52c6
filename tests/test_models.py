"""The model zoo: names, random twins, Hub models that are not there, model cards."""
from __future__ import annotations

import time

import pytest
import torch

from core.zoo import checkpoints, models, registry, sites
from core.errors import MissingAssetError, UnknownNameError


def test_every_name_has_a_random_twin():
    names = registry.list_models()
    for base in registry.MODELS:
        assert base in names and f"{base}:random" in names
    assert set(registry.list_models("small", random_twins=False)) == {
        "smollm2-135m", "minilm-l6", "tiny-vit-fmnist"}


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(UnknownNameError, match="smollm2-135m") as e:
        models.load_model("gpt-5")
    assert "minilm-l6:random" in str(e.value)


@pytest.mark.parametrize("name", ["opt-1.3b", "bert-base-uncased:random"])
def test_hub_model_without_cache_fails_fast_naming_it(name, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    start = time.time()
    with pytest.raises(MissingAssetError, match=models.get_spec(name).hub_id):
        models.load_once.__wrapped__(name, "cpu")
    assert time.time() - start < 30


def test_smollm2_and_its_random_twin():
    try:
        lm = models.load_model("smollm2-135m")
    except MissingAssetError as e:
        pytest.skip(e.reason)
    twin = models.load_model("smollm2-135m:random")
    assert lm.kind == twin.kind == "causal"
    assert lm.model.config.num_hidden_layers == twin.model.config.num_hidden_layers == 30
    assert sites.site_width(lm.model, "attn") == 576 and sites.site_width(lm.model, "mlp") == 1536
    assert sites.w_in(lm.model, 0).shape == (1536, 576)
    w, w_twin = sites.w_in(lm.model, 0), sites.w_in(twin.model, 0)
    assert not torch.equal(w, w_twin)
    # the twin is a fixed initialisation
    again = checkpoints.random_twin(twin.spec, twin.model.config)
    assert torch.equal(sites.w_in(again, 0), w_twin)
    for field in ("provenance", "config", "eval_top1", "eval_ce", "seconds", "versions", "cache_key"):
        assert field in lm.card
    assert lm.card["eval_top1"] > 10  # a real language model, far above chance on real text
