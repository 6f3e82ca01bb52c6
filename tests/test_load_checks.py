"""Loads that cannot go silently wrong: a checkpoint whose weights do not fill the model
exactly fails, naming the keys, whether it is a folder (a path load) or a full-tier model in the local
Hugging Face cache (a Hub load, :func:`core.zoo.models._load_hub`); every load records its dtype, device
and what identifies its weights.

The checkpoints are tiny random configs written offline (``tests/own_models.py``), edited with safetensors
(a key removed, added or renamed); the Hugging Face cache is a temporary folder (``HF_HUB_CACHE``).
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
import transformers as T
from safetensors.torch import load_file, save_file

from core.errors import MissingAssetError
from core.zoo import models
from core.zoo.own import WeightsMismatchError, check_weights
from tests import own_models as own
from tests.own_models import fresh  # noqa: F401  (autouse: an empty cache, no model remembered)

COMMIT = "c" * 40


def edit_weights(folder, *, drop=(), add=None, rename=None):
    """Rewrite ``folder/model.safetensors`` with keys dropped, added (name -> tensor) or renamed."""
    path = folder / "model.safetensors"
    weights = load_file(path)
    for k in drop:
        del weights[k]
    for k, v in (add or {}).items():
        weights[k] = v
    for old, new in (rename or {}).items():
        weights[new] = weights.pop(old)
    save_file(weights, path, metadata={"format": "pt"})
    return folder


def tiny_opt(seed: int = 0):
    """A tiny OPTForCausalLM with the tests' tokenizer vocabulary (the family of zoo model opt-1.3b)."""
    cfg = T.OPTConfig(vocab_size=259, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
                      max_position_embeddings=64, word_embed_proj_dim=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return T.OPTForCausalLM(cfg).eval()


def hub_model(tmp_path, model, hub_id: str, *, masked: bool = False, **edits):
    """``model`` saved, edited (:func:`edit_weights`) and laid out as ``hub_id`` in the local HF cache."""
    folder = edit_weights(own.save(model, tmp_path / "src", masked=masked), **edits)
    own.hub_cache_entry(tmp_path / "hf", hub_id, folder, commit=COMMIT)
    return folder


# --- path loads ----------------------------------------------------------------------------------

def test_a_path_load_with_an_unexpected_weight_fails_naming_it(tmp_path):
    folder = edit_weights(own.save(own.causal(), tmp_path / "m"),
                          add={"model.layers.1.mlp.extra_proj.weight": torch.zeros(4, 4)})
    with pytest.raises(WeightsMismatchError,
                       match=r"holds 1 weight.*no place for.*model\.layers\.1\.mlp\.extra_proj\.weight"):
        models.load_model(folder)


def test_a_path_load_with_a_missing_weight_fails_naming_it(tmp_path):
    folder = edit_weights(own.save(own.causal(), tmp_path / "m"), drop=["model.layers.0.mlp.down_proj.weight"])
    with pytest.raises(WeightsMismatchError, match=r"lacks 1 weight.*model\.layers\.0\.mlp\.down_proj\.weight") as e:
        models.load_model(folder)
    assert e.value.missing == ["model.layers.0.mlp.down_proj.weight"] and e.value.unexpected == []


def test_a_renamed_layer_names_both_the_missing_and_the_unexpected_keys(tmp_path):
    """A conversion that misnames a layer: its weights land nowhere and the layer would stay random."""
    folder = edit_weights(own.save(own.causal(), tmp_path / "m"),
                          rename={"model.layers.1.self_attn.o_proj.weight": "model.layers.1.self_attn.out.weight"})
    with pytest.raises(WeightsMismatchError) as e:
        models.load_model(folder)
    assert e.value.missing == ["model.layers.1.self_attn.o_proj.weight"]
    assert e.value.unexpected == ["model.layers.1.self_attn.out.weight"]
    assert str(folder) in str(e.value) and "o_proj" in str(e.value) and "self_attn.out" in str(e.value)


def test_a_complete_path_load_records_dtype_device_and_weights(tmp_path):
    folder = own.save(own.causal(), tmp_path / "m")
    lm = models.load_model(folder)
    prov = models.loaded_provenance(lm.name, "cpu")
    assert prov == lm.provenance
    assert prov["dtype"] == "float32" and prov["device"] == "cpu"
    assert prov["weights"] == f"files:{lm.card['cache_key']}" and "unused_weights" not in prov
    twin = models.load_model(f"{folder}:random").provenance
    assert twin["weights"] == f"random(seed 0) of files:{lm.card['cache_key']}"
    lm.model.to(torch.bfloat16)  # the record follows the parameters
    assert lm.provenance["dtype"] == "bfloat16"


# --- Hub loads (full tier) -----------------------------------------------------------------------

def test_a_hub_load_reads_the_snapshot_and_records_its_commit(tmp_path):
    hub_model(tmp_path, tiny_opt(seed=3), "facebook/opt-1.3b")
    lm = models.load_model("opt-1.3b")
    assert lm.tier == "full" and lm.card["cache_key"] == f"hub:facebook/opt-1.3b@{COMMIT}"
    assert lm.provenance == {"dtype": "float32", "device": "cpu", "weights": f"hub:facebook/opt-1.3b@{COMMIT}"}
    ids = torch.tensor([[5, 70, 71, 72]])
    with torch.no_grad():
        assert torch.equal(lm.model(input_ids=ids).logits, tiny_opt(seed=3)(input_ids=ids).logits)


def test_a_hub_load_with_a_missing_weight_fails_naming_it(tmp_path):
    hub_model(tmp_path, tiny_opt(), "facebook/opt-1.3b", drop=["model.decoder.layers.1.fc1.weight"])
    with pytest.raises(WeightsMismatchError, match=rf"facebook/opt-1\.3b \(snapshot .*{COMMIT}\).*lacks 1 weight"
                                                   rf".*model\.decoder\.layers\.1\.fc1\.weight"):
        models.load_model("opt-1.3b")


def test_a_hub_load_with_an_unexpected_weight_fails_naming_it(tmp_path):
    hub_model(tmp_path, tiny_opt(), "facebook/opt-1.3b",
              add={"model.decoder.layers.0.fc3.weight": torch.zeros(8, 8)})
    with pytest.raises(WeightsMismatchError, match=r"no place for.*model\.decoder\.layers\.0\.fc3\.weight") as e:
        models.load_model("opt-1.3b")
    assert e.value.unexpected == ["model.decoder.layers.0.fc3.weight"] and e.value.missing == []


def test_a_hub_load_leaves_out_only_the_named_unused_heads_and_records_them(tmp_path):
    """bert-base-uncased is saved as BertForPreTraining: its pooler and next-sentence head have no place in
    BertForMaskedLM and no claim reads them; they are listed, not dropped silently."""
    model = own.bert(T.BertForPreTraining)
    hub_model(tmp_path, model, "google-bert/bert-base-uncased", masked=True)
    lm = models.load_model("bert-base-uncased")
    unused = ["bert.pooler.dense.bias", "bert.pooler.dense.weight", "cls.seq_relationship.bias",
              "cls.seq_relationship.weight"]
    assert lm.card["unused_weights"] == unused and lm.provenance["unused_weights"] == unused


def test_a_hub_load_of_a_model_absent_from_the_cache_names_the_folder(tmp_path):
    with pytest.raises(MissingAssetError, match=rf"'opt-1\.3b'.*{tmp_path / 'hf'}"):
        models.load_model("opt-1.3b")


def test_the_random_twin_of_a_hub_model_reads_no_weights(tmp_path):
    hub_model(tmp_path, tiny_opt(), "facebook/opt-1.3b", drop=["model.decoder.layers.1.fc1.weight"])
    twin = models.load_model("opt-1.3b:random")  # built from the config alone: nothing to check
    assert twin.provenance["weights"] == f"random(seed 0) of hub:facebook/opt-1.3b@{COMMIT}"


# --- the check itself ----------------------------------------------------------------------------

def test_check_weights_by_hand():
    assert check_weights("x", "causal", {"missing_keys": set(), "unexpected_keys": set()}) == []
    assert check_weights("x", "masked", {"unexpected_keys": {"roberta.pooler.dense.weight"}}) == \
        ["roberta.pooler.dense.weight"]
    with pytest.raises(WeightsMismatchError, match=r"x: .*of another shape \(lm_head\.weight\)"):
        check_weights("x", "causal", {"mismatched_keys": {"lm_head.weight"}})
    many = {f"model.layers.{i}.w" for i in range(9)}
    with pytest.raises(WeightsMismatchError, match=r"lacks 9 weight.*\.\.\. \(9 in all\)"):
        check_weights("x", "causal", {"missing_keys": many})
    with pytest.raises(WeightsMismatchError, match=r"poolers"):  # only the named parts are left out
        check_weights("x", "masked", {"unexpected_keys": {"bert.poolers.dense.weight"}})


def test_a_gguf_file_missing_a_tensor_fails_naming_it(tmp_path):
    """transformers' GGUF loader would leave the layer at its random initialisation."""
    path = own.write_gguf(tmp_path / "holed.gguf", skip=("blk.1.ffn_down.weight",))
    with pytest.raises(WeightsMismatchError,
                       match=r"holed\.gguf.*lacks 1 weight.*model\.layers\.1\.mlp\.down_proj\.weight"):
        models.load_model(path)


_LAYER_KEYS = st.sets(st.builds("model.layers.{}.{}.weight".format, st.integers(0, 40),
                                st.sampled_from(["mlp.up_proj", "mlp.down_proj", "self_attn.o_proj", "extra"])),
                      max_size=10)
_UNUSED_KEYS = st.sets(st.sampled_from(["bert.pooler.dense.weight", "cls.seq_relationship.bias",
                                        "model.layers.3.self_attn.rotary_emb.inv_freq"]))


@settings(max_examples=200, deadline=None)
@given(missing=_LAYER_KEYS, unexpected=_LAYER_KEYS, unused=_UNUSED_KEYS, mismatched=_LAYER_KEYS)
def test_check_weights_fails_exactly_when_a_weight_does_not_fit_and_names_it(missing, unexpected, unused,
                                                                           mismatched):
    info = {"missing_keys": missing, "unexpected_keys": unexpected | unused, "mismatched_keys": mismatched}
    if not (missing or unexpected or mismatched):
        assert check_weights("ckpt", "causal", info) == sorted(unused)
        return
    with pytest.raises(WeightsMismatchError) as e:
        check_weights("ckpt", "causal", info)
    err = e.value
    assert (err.missing, err.unexpected, err.mismatched) == (sorted(missing), sorted(unexpected), sorted(mismatched))
    for keys in (missing, unexpected, mismatched):
        for k in sorted(keys)[:6]:  # the first six of each are named, then their number
            assert k in str(err)
    assert not any(k in str(err) for k in unused)
