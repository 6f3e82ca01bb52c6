"""Your own model: a checkpoint folder, a .gguf file or a Hub id wherever a zoo name is accepted.

Every model here is tiny and written offline (``tests/own_models.py``); the cache and the Hugging Face
cache are temporary folders.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers as T

from core.zoo import checkpoints, models, sites
from core.zoo import own as zoo_own
from core.cache import CacheDamagedWarning
from core.errors import MissingAssetError, UnknownNameError, UnsupportedModelError
from tests import own_models as own
from tests.own_models import fresh  # noqa: F401  (autouse: an empty cache, no model remembered)

ROOT = Path(__file__).resolve().parents[1]
IDS = torch.tensor([[5, 70, 71, 72, 259, 80, 81, 3]])


def logits(model, ids=IDS) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


# --- a checkpoint folder -------------------------------------------------------------------------

def test_a_checkpoint_folder_loads_as_a_model_with_its_random_twin(tmp_path):
    original = own.causal(seed=3)
    folder = own.save(original, tmp_path / "my-llama")
    lm = models.load_model(folder)
    assert lm.name == "my-llama" and lm.kind == "causal" and lm.tier == "small"
    assert lm.spec.origin == "folder" and lm.spec.location == str(folder.resolve())
    assert lm.spec.architecture == "LlamaForCausalLM"
    assert torch.equal(logits(lm.model), logits(original))
    assert lm.tokenizer("the")["input_ids"] == own.tokenizer()("the")["input_ids"]
    # the name works from now on, as does the path as a string, and get_spec of either
    assert models.load_model("my-llama") is lm and models.load_model(str(folder)) is lm
    assert models.get_spec(str(folder)) == models.get_spec("my-llama") == lm.spec
    assert lm.card["location"] == str(folder.resolve()) and lm.card["cache_key"]
    twin = models.load_model(f"{folder}:random")
    assert twin.name == "my-llama:random" and twin.is_random
    assert not torch.equal(logits(twin.model), logits(original))
    assert torch.equal(logits(checkpoints.twin_of_kind("causal", lm.model.config)), logits(twin.model))  # seed 0
    assert twin.card["twin_of"]["cache_key"] == lm.card["cache_key"] != twin.card["cache_key"]


def test_the_weights_key_follows_the_files(tmp_path):
    folder = own.save(own.causal(seed=0), tmp_path / "m")
    first = models.load_model(folder).card["cache_key"]
    models.load_once.cache_clear()
    assert models.load_model(folder).card["cache_key"] == first  # unchanged files: same key
    own.causal(seed=1).save_pretrained(folder)  # new weights in place
    models.load_once.cache_clear()
    assert models.load_model(folder).card["cache_key"] != first


def test_a_name_clash_with_the_zoo_or_another_folder_gets_a_suffix(tmp_path):
    a = own.save(own.causal(), tmp_path / "a" / "smollm2-135m")
    b = own.save(own.causal(), tmp_path / "b" / "twin")
    c = own.save(own.causal(), tmp_path / "c" / "twin")
    na, nb, nc = zoo_own.resolve(a), zoo_own.resolve(b), zoo_own.resolve(c)
    assert na.startswith("smollm2-135m-") and nb == "twin" and nc.startswith("twin-") and nc != nb
    assert zoo_own.resolve(b) == "twin" and zoo_own.resolve(f"{c}:random") == nc + ":random"


@pytest.mark.parametrize("make, kind, architecture", [
    (lambda: own.bert(), "masked", "BertForMaskedLM"),
    (lambda: own.vit(), "image", "ViTForImageClassification"),
])
def test_the_kind_comes_from_the_configs_architectures(tmp_path, make, kind, architecture):
    folder = own.save(make(), tmp_path / "m", with_tokenizer=kind != "image", masked=True)
    lm = models.load_model(folder)
    assert (lm.kind, lm.spec.architecture) == (kind, architecture)
    assert (lm.tokenizer is None) == (kind == "image")
    assert sites.site_width(lm.model, "mlp") == 64


def test_a_bare_encoder_is_a_masked_lm_without_a_head_whose_claims_skip(tmp_path):
    folder = own.save(own.bert(T.BertModel), tmp_path / "encoder", masked=True)
    assert models.get_spec(str(folder)).kind == "masked"
    with pytest.raises(MissingAssetError, match=r"encoder.*bare BertModel without its masked-LM head"):
        models.load_model(folder)
    assert models.load_model(f"{folder}:random").kind == "masked"  # the twin has a (random) head


def test_a_checkpoint_missing_an_untied_lm_head_fails_naming_it(tmp_path):
    folder = own.save(own.causal(tie_word_embeddings=False), tmp_path / "m")
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    del weights["lm_head.weight"]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(zoo_own.WeightsMismatchError, match=r"lacks 1 weight.*lm_head\.weight") as e:
        models.load_model(folder)
    assert e.value.missing == ["lm_head.weight"] and not e.value.unexpected


# --- errors a newcomer can act on ----------------------------------------------------------------

def test_an_unsupported_family_lists_the_supported_ones_and_the_recipe(tmp_path, monkeypatch):
    monkeypatch.delitem(sites.ARCHITECTURES, "llama")
    folder = own.save(own.causal(), tmp_path / "m")
    with pytest.raises(UnsupportedModelError) as e:
        models.load_model(folder)
    msg = str(e.value)
    assert str(folder.resolve()) in msg and "'llama'" in msg and "gpt2" in msg and "opt" in msg
    assert "core/zoo/sites.py ARCHITECTURES" in msg and "Architecture(" in msg and "tests/test_sites.py" in msg


def test_a_kind_without_claims_names_the_path_and_the_kinds_expected(tmp_path):
    folder = own.save(own.bert(T.BertForSequenceClassification), tmp_path / "classifier")
    with pytest.raises(UnsupportedModelError, match=r"classifier.*BertForSequenceClassification.*causal LM"
                                                    r".*masked LM.*image classifier"):
        models.load_model(folder)


@pytest.mark.parametrize("damage, expected", [
    ("no config", r"no config\.json; expected a Hugging Face checkpoint folder"),
    ("no weights", r"no weights; expected model\.safetensors or pytorch_model\.bin"),
    ("no tokenizer", r"no tokenizer; a causal LM needs its tokenizer"),
    ("not a model", r"not a model; expected a folder .* or a \.gguf file"),
    ("absent", r"no such file or folder"),
])
def test_a_path_that_is_not_a_checkpoint_says_what_was_expected(tmp_path, damage, expected):
    folder = own.save(own.causal(), tmp_path / "m")
    target = folder
    if damage == "no config":
        (folder / "config.json").unlink()
    elif damage == "no weights":
        (folder / "model.safetensors").unlink()
    elif damage == "no tokenizer":
        for f in zoo_own.TOKENIZER_FILES:
            (folder / f).unlink(missing_ok=True)
    elif damage == "not a model":
        target = folder / "config.json"
    else:
        target = tmp_path / "nowhere" / "m"
    with pytest.raises(UnsupportedModelError, match=expected) as e:
        models.load_model(target)
    assert str(target.resolve() if target.exists() else target) in str(e.value)


def test_an_unknown_name_lists_the_zoo_and_the_other_forms():
    with pytest.raises(UnknownNameError, match=r"smollm2-135m.*checkpoint folder.*\.gguf file.*Hub id"):
        models.load_model("gpt-5")


# --- a GGUF file ---------------------------------------------------------------------------------

def test_a_gguf_file_is_converted_once_into_an_fp32_checkpoint(tmp_path, monkeypatch):
    pytest.importorskip("gguf", reason="package 'gguf' is not installed: pip install gguf")
    path = own.write_gguf(tmp_path / "tiny-q.gguf", seed=0)
    lm = models.load_model(path)
    assert lm.name == "tiny-q" and lm.kind == "causal" and lm.spec.origin == "gguf"
    reference = T.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=path.name, dtype=torch.float32)
    assert torch.equal(logits(lm.model), logits(reference.eval()))
    converted = [p for p in (tmp_path / "cache" / "models").iterdir() if p.name.startswith("gguf-tiny-q-")]
    assert len(converted) == 1 and (converted[0] / "model.safetensors").exists()
    assert lm.card["cache_key"] in converted[0].name and "sha256" in lm.card["provenance"]

    def no_second_conversion(*a, **k):
        raise AssertionError("converted twice")

    monkeypatch.setattr(zoo_own, "gguf_conversion", lambda *a, **k: no_second_conversion)
    models.load_once.cache_clear()
    again = models.load_model(path)
    assert torch.equal(logits(again.model), logits(lm.model))
    assert models.load_model(f"{path}:random").is_random
    monkeypatch.undo()
    monkeypatch.setenv("NEURON_CLAIMS_CACHE", str(tmp_path / "cache"))
    # a changed file is a new conversion (keyed by its sha256)
    own.write_gguf(path, seed=1)
    zoo_own.own_spec.cache_clear()
    zoo_own.OWN.clear()
    models.load_once.cache_clear()
    changed = models.load_model(path)
    assert changed.card["cache_key"] != lm.card["cache_key"]
    assert not torch.equal(logits(changed.model), logits(lm.model))


def test_a_damaged_conversion_is_named_and_rebuilt(tmp_path):
    pytest.importorskip("gguf", reason="package 'gguf' is not installed: pip install gguf")
    path = own.write_gguf(tmp_path / "tiny.gguf")
    first = logits(models.load_model(path).model)
    folder = next((tmp_path / "cache" / "models").glob("gguf-tiny-*"))
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a truncated copy
    models.load_once.cache_clear()
    with pytest.warns(CacheDamagedWarning, match=str(folder)):
        again = models.load_model(path)
    assert torch.equal(logits(again.model), first)


def test_a_gguf_file_transformers_cannot_read_names_its_architecture(tmp_path):
    pytest.importorskip("gguf", reason="package 'gguf' is not installed: pip install gguf")
    path = own.write_gguf(tmp_path / "odd.gguf", architecture="rwkv9")
    with pytest.raises(UnsupportedModelError, match=r"odd\.gguf: GGUF architecture 'rwkv9'.*it reads: .*llama"):
        models.load_model(path)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all")
    with pytest.raises(UnsupportedModelError, match=r"junk\.gguf: not a GGUF file"):
        models.load_model(junk)


# --- a Hub id ------------------------------------------------------------------------------------

def test_a_hub_id_loads_from_the_local_cache_only(tmp_path):
    folder = own.save(own.causal(seed=2), tmp_path / "src")
    own.hub_cache_entry(tmp_path / "hf", "someone/tiny-llama", folder, commit="a" * 40)
    lm = models.load_model("someone/tiny-llama")
    assert lm.name == "someone/tiny-llama" and lm.spec.origin == "hub" and lm.kind == "causal"
    assert lm.card["cache_key"] == f"hub:someone/tiny-llama@{'a' * 40}"
    assert torch.equal(logits(lm.model), logits(own.causal(seed=2)))


def test_a_hub_id_missing_from_the_cache_names_the_id_and_the_folder(tmp_path):
    with pytest.raises(MissingAssetError, match=rf"'someone/absent'.*{tmp_path / 'hf'}"):
        models.load_model("someone/absent")


def test_a_hub_id_of_a_zoo_model_is_that_zoo_model():
    assert zoo_own.resolve("facebook/opt-1.3b") == "opt-1.3b"
    assert zoo_own.resolve("google-bert/bert-base-uncased:random") == "bert-base-uncased:random"


# --- claims: --models PATH gives every claim of the model's kind a case --------------------------

def test_claims_get_a_case_for_each_own_model_of_their_kinds():
    from claims._claim import Claim, claim_params

    claim = Claim("X-1", "s", "m", "r", None, ("masked",), paper="ABL")
    ids = [p.id for p in claim_params(claim, [("mine", "causal"), ("enc", "masked"), ("some/id", None)])]
    assert "enc" in ids and "some/id" in ids and "mine" not in ids and "minilm-l6" in ids
    alone = [p.id for p in claim_params(claim)]  # no module state: the zoo alone
    assert "enc" not in alone and "minilm-l6" in alone


def _collect(tmp_path, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, NEURON_CLAIMS_CACHE=str(tmp_path / "cache"), HF_HUB_CACHE=str(tmp_path / "hf"),
               HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "pytest", "claims/", "--collect-only", "-q", "-p",
                           "no:cacheprovider", "--results-dir", str(tmp_path / "runs"), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_models_path_collects_every_claim_of_its_kind_and_only_those(tmp_path):
    folder = own.save(own.bert(), tmp_path / "my-encoder", masked=True)
    proc = _collect(tmp_path, "--models", f"{folder},someone/absent")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    mine = [i for i in ids if i.endswith("[my-encoder]")]
    absent = [i for i in ids if i.endswith("[someone/absent]")]
    assert mine and all("test_modularity" not in i for i in mine)  # MOD measures decoders and ViT
    assert any("test_peak_ablation" in i for i in mine) and any("test_bert_clusters" in i for i in mine)
    assert len(absent) > len(mine)  # a Hub id missing from the cache: every claim (each skips naming it)
    assert set(ids) == set(mine) | set(absent)  # the zoo's cases are deselected


@pytest.mark.parametrize("kind_of_trouble", ["kind", "family", "absent"])
def test_models_with_an_unusable_path_is_a_usage_error_saying_why(tmp_path, monkeypatch, kind_of_trouble):
    from types import SimpleNamespace

    import conftest

    if kind_of_trouble == "kind":
        folder, expected = own.save(own.bert(T.BertForSequenceClassification), tmp_path / "classifier"), \
            r"--models: .*classifier: BertForSequenceClassification is of no kind the claims measure"
    elif kind_of_trouble == "family":
        monkeypatch.delitem(sites.ARCHITECTURES, "bert")
        folder, expected = own.save(own.bert(), tmp_path / "enc", masked=True), r"enc: .*family 'bert'.*one row"
    else:
        folder, expected = tmp_path / "typo", r"typo: no such file or folder"
    config = SimpleNamespace(getoption=lambda name: f"minilm-l6,{folder}")
    with pytest.raises(pytest.UsageError, match=expected):
        conftest._resolve_models(config)


def test_a_model_no_collected_claim_applies_to_is_a_usage_error(tmp_path):
    from types import SimpleNamespace

    import conftest

    folder = own.save(own.bert(), tmp_path / "my-encoder", masked=True)
    name = zoo_own.resolve(folder)

    def item(model):  # a claim test of MOD (decoders and ViT) as collected
        return SimpleNamespace(callspec=SimpleNamespace(params={"model": model}), path=tmp_path / "test_x.py",
                               get_closest_marker=lambda mark: mark == "claim" or None)

    config = SimpleNamespace(_neuron_claims={"models": [name]},
                             hook=SimpleNamespace(pytest_deselected=lambda items: None))
    with pytest.raises(pytest.UsageError, match=r"my-encoder is a masked model.*they measure causal, image"):
        conftest.pytest_collection_modifyitems(config, [item("smollm2-135m"), item("tiny-vit-fmnist")])
    items = [item("smollm2-135m"), item(name)]  # an applicable claim: the zoo's case is deselected
    conftest.pytest_collection_modifyitems(config, items)
    assert [i.callspec.params["model"] for i in items] == [name]
