"""The small tier's shipped own-built weights (core.zoo.shipped): current, intact, and the models they make."""
from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch

from core.cache import CacheDamagedWarning
from core.errors import MissingAssetError, UnknownNameError
from core.zoo import shipped
from core.zoo.build import build_small, recipe_key


@pytest.mark.parametrize("name", sorted(shipped.SHIPPED))
def test_every_own_built_model_ships_the_weights_of_its_current_recipe(name):
    """A recipe change (settings, training defaults, version) changes the key: this fails until the
    weights are rebuilt and re-shipped (``python -m core.zoo.build ship``), so a fresh machine never
    trains silently for 10 minutes, nor runs weights of an older recipe."""
    key = recipe_key(name)
    folder = shipped.asset_folder(name, key)
    others = sorted(p.name for p in shipped.ASSETS.glob(f"{name}-*"))
    assert folder.is_dir(), (f"no shipped weights for {name} with recipe key {key} (shipped: {others}): build it "
                             f"with {shipped.REBUILD_ENV}=1, then `python -m core.zoo.build ship {name}`")
    assert others == [folder.name], f"stale shipped weights beside the current ones: {others}"
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheDamagedWarning)
        assert shipped.shipped_asset(name, key) == folder
    card = json.loads((folder / "card.json").read_text())
    assert card["cache_key"] == key and "shipped" not in card  # built by the recipe, not re-shipped


def _copy_assets(tmp_path, monkeypatch) -> None:
    root = tmp_path / "assets"
    shutil.copytree(shipped.ASSETS, root)
    monkeypatch.setattr(shipped, "ASSETS", root)


def test_a_damaged_asset_is_named_and_ignored(tmp_path, monkeypatch):
    _copy_assets(tmp_path, monkeypatch)
    key = recipe_key("tiny-vit-fmnist")
    weights = shipped.asset_folder("tiny-vit-fmnist", key) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.warns(CacheDamagedWarning, match="model.safetensors"):
        assert shipped.shipped_asset("tiny-vit-fmnist", key) is None
    (shipped.asset_folder("minilm-l6", recipe_key("minilm-l6")) / "manifest.json").write_text("{")
    with pytest.warns(CacheDamagedWarning, match="manifest.json"):
        assert shipped.shipped_asset("minilm-l6", recipe_key("minilm-l6")) is None


def test_a_rebuild_request_and_an_unknown_key_find_no_asset(monkeypatch):
    key = recipe_key("tiny-vit-fmnist")
    assert shipped.shipped_asset("tiny-vit-fmnist", "0" * 16) is None
    assert shipped.shipped_asset("smollm2-135m", key) is None
    monkeypatch.setenv(shipped.REBUILD_ENV, "1")
    assert shipped.shipped_asset("tiny-vit-fmnist", key) is None
    monkeypatch.setenv(shipped.REBUILD_ENV, "0")
    assert shipped.shipped_asset("tiny-vit-fmnist", key) is not None
    with pytest.raises(UnknownNameError, match="tiny-vit-fmnist"):
        recipe_key("tiny-vit")


def test_the_head_loader_rejects_other_tensors(tmp_path):
    from safetensors.torch import save_file
    from tests.tiny_models import build

    model = build("bert")
    save_file({"cls.predictions.bias": torch.zeros(3)}, tmp_path / "head.safetensors")
    with pytest.raises(RuntimeError, match="masked-LM head"):
        shipped.load_head(tmp_path, model)


def test_the_shipped_tiny_vit_is_the_model_its_card_describes(tmp_path, monkeypatch):
    """Materialised into an empty cache without training: its top1 on the 5,000 evaluation images is
    the one measured when it was built (same weights, same images; float noise cannot move 0.05 pp)."""
    from core.data.images import image_split
    from core.evaluate import EvalSet, evaluate
    from core.zoo.models import load_model

    monkeypatch.setenv("NEURON_CLAIMS_CACHE", str(tmp_path))
    try:
        x, y = image_split("fashion-mnist", split="eval", n_images=5_000)
    except MissingAssetError as err:
        pytest.skip(str(err))
    lm = load_model("tiny-vit-fmnist")
    assert lm.card["shipped"]["asset"].startswith("core/zoo/assets/tiny-vit-fmnist-")
    top1 = evaluate(lm.model, EvalSet("image", x, y), batch_size=500).summary()["top1"]
    assert top1 == pytest.approx(lm.card["eval_top1"], abs=0.05)


def test_the_shipped_minilm_head_is_the_model_its_card_describes(tmp_path, monkeypatch):
    """The package's encoder plus the shipped head: masked top1 and CE on the card's evaluation text are
    the ones measured when the head was fitted."""
    from core.zoo.build import measure_card_accuracy
    from core.zoo.models import load_model

    monkeypatch.setenv("NEURON_CLAIMS_CACHE", str(tmp_path))
    try:
        lm = load_model("minilm-l6")
    except MissingAssetError as err:
        pytest.skip(str(err))
    assert lm.card["shipped"]["asset"].startswith("core/zoo/assets/minilm-l6-")
    decoder = lm.model.cls.predictions.decoder
    assert decoder.weight.data_ptr() == lm.model.bert.embeddings.word_embeddings.weight.data_ptr()
    measured = measure_card_accuracy(lm.model, lm.tokenizer, "masked")
    assert measured["eval_top1"] == pytest.approx(lm.card["eval_top1"], abs=0.01)
    assert measured["eval_ce"] == pytest.approx(lm.card["eval_ce"], abs=2e-4)


def test_build_small_lists_the_small_tier():
    with pytest.raises(UnknownNameError, match="smollm2-135m"):
        build_small("gpt2")
