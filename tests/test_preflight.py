"""The model preflight (core.zoo.preflight) on tiny random models of every family, and on broken rows.

Every family of ``ARCHITECTURES`` passes; a row pointing at a missing module, at the wrong module or at
one that never runs, an ablation hook that does nothing, a hook left behind and a residual site that
is not the hidden state each fail the check that should catch them, with a message naming the check
and the module path.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import replace

import pytest
import torch
from torch import nn

from core.zoo import preflight as pf
from core.zoo import sites
from tests.tiny_models import FAMILIES, build, inputs

FAMILY_NAMES = sorted(FAMILIES)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_family_passes(family):
    model = build(family)
    report = pf.preflight(model, inputs(family), name=family)
    assert report.passed, report.message()
    assert [c.name for c in report.checks] == list(pf.CHECKS)
    assert report.failed is None
    assert report.family == model.config.model_type
    assert all(c.seconds >= 0 for c in report.checks)
    assert "checks passed" in report.message()
    json.dumps(report.to_dict())  # goes into run.json


def test_widths_found_are_the_configs():
    report = pf.preflight(build("qwen3"), inputs("qwen3"))  # head_dim 16 set apart from d_model / heads
    widths = next(c for c in report.checks if c.name == "widths-match-config")
    assert widths.found.startswith("mlp 48; attn 64; resid 32"), widths.found
    assert "head_dim 16" in widths.expected


def _with_row(monkeypatch, family: str, **fields):
    monkeypatch.setitem(sites.ARCHITECTURES, family, replace(sites.ARCHITECTURES[family], **fields))


def test_a_missing_module_fails_sites_found_naming_the_path(monkeypatch):
    _with_row(monkeypatch, "llama", attn_out="self_attn.out_proj")
    report = pf.preflight(build("llama"), inputs("llama"))
    assert not report.passed
    assert [c.name for c in report.checks] == ["sites-found"]  # nothing else can run
    msg = report.message()
    assert "failed check sites-found" in msg
    assert "model.layers.0.self_attn.out_proj" in msg  # what it expected
    assert "no module 'out_proj' under model.layers.0.self_attn (it has: " in msg and "o_proj" in msg
    assert "ARCHITECTURES['llama']" in msg and "attn_out='self_attn.out_proj'" in msg
    assert "\n" not in msg


def test_an_unknown_family_fails_sites_found():
    model = build("llama")
    model.config.model_type = "not-a-family"
    report = pf.preflight(model, inputs("llama"))
    assert report.failed.name == "sites-found"
    assert "'not-a-family'" in report.failed.expected and "llama" in report.failed.found


def test_the_wrong_module_fails_the_widths_naming_it(monkeypatch):
    _with_row(monkeypatch, "llama", attn_out="mlp.down_proj")  # its input is 48 wide, heads x d_head 32
    report = pf.preflight(build("llama"), inputs("llama"))
    assert report.failed.name == "widths-match-config"
    msg = report.message()
    assert "found attn activations (input of model.layers.*.mlp.down_proj) 48 wide" in msg
    assert "attn 32 (num_attention_heads 4 x head_dim 8)" in msg


def test_a_projection_before_attention_fails_the_mixing_check(monkeypatch):
    _with_row(monkeypatch, "llama", attn_out="self_attn.q_proj")  # as wide as o_proj's input, before attention
    report = pf.preflight(build("llama"), inputs("llama"))
    assert report.failed.name == "attn-mixes-positions"
    assert "input of model.layers.0.self_attn.q_proj" in report.message()
    assert "changed only its own position" in report.failed.found


def test_a_norm_in_place_of_a_projection_fails_sites_found(monkeypatch):
    _with_row(monkeypatch, "bert", attn_out="attention.output.LayerNorm")  # as wide, after the projection
    report = pf.preflight(build("bert"), inputs("bert"))
    assert report.failed.name == "sites-found"
    assert "bert.encoder.layer.0.attention.output.LayerNorm" in report.failed.expected
    assert report.failed.found == "a LayerNorm with a weight of shape (32,)"


@pytest.mark.parametrize("family", ["vit", "opt"])
def test_the_mixing_check_perturbs_the_input(family):
    """Text: token 1 changes; images: the first patch. Either reaches the last position in layer 0."""
    report = pf.preflight(build(family), inputs(family))
    mixing = next(c for c in report.checks if c.name == "attn-mixes-positions")
    assert mixing.passed
    assert mixing.found == f"changed by changing {'the first patch' if family == 'vit' else 'token 1'}"


def test_a_module_off_the_forward_path_fails(monkeypatch):
    model = build("llama")
    for block in model.model.layers:
        block.self_attn.spare = nn.Linear(32, 32)  # exists, never called
    _with_row(monkeypatch, "llama", attn_out="self_attn.spare")
    report = pf.preflight(model, inputs("llama"))
    assert report.failed.name == "widths-match-config"
    assert "fired in layers [] of 2" in report.failed.found
    ablation = next(c for c in report.checks if c.name == "attn-ablation-changes-logits")
    assert not ablation.passed and "self_attn.spare" in ablation.expected


def test_an_ablation_hook_that_does_nothing_fails(monkeypatch):
    real = sites.ablate

    def inert(model, site, mask, offset=0.0):
        return contextlib.nullcontext() if site == "attn" else real(model, site, mask, offset)

    monkeypatch.setattr(sites, "ablate", inert)
    report = pf.preflight(build("gpt2"), inputs("gpt2"))
    assert report.failed.name == "attn-ablation-changes-logits"
    assert "transformer.h.*.attn.c_proj" in report.message()
    assert "bit-identical" in report.failed.found
    assert next(c for c in report.checks if c.name == "mlp-ablation-changes-logits").passed


def test_a_hook_left_behind_fails_the_restore_check(monkeypatch):
    real = sites.ablate

    @contextlib.contextmanager
    def leaky(model, site, mask, offset=0.0):
        with real(model, site, mask, offset):
            yield
        if site == "mlp":
            sites.site_modules(model, "mlp")[1].register_forward_pre_hook(lambda m, a: None)

    monkeypatch.setattr(sites, "ablate", leaky)
    report = pf.preflight(build("bert"), inputs("bert"))
    assert report.failed.name == "hooks-restore-model"
    assert "hooks changed at bert.encoder.layer.1.output.dense" in report.failed.found


def test_an_edit_that_outlives_its_hook_fails_the_restore_check(monkeypatch):
    real = sites.ablate

    @contextlib.contextmanager
    def editing(model, site, mask, offset=0.0):
        with real(model, site, mask, offset):
            yield
        with torch.no_grad():
            model.get_submodule("model.layers.0.mlp.down_proj").weight.mul_(1.0)  # same values, bumped

    monkeypatch.setattr(sites, "ablate", editing)
    report = pf.preflight(build("llama"), inputs("llama"))
    assert report.failed.name == "hooks-restore-model"
    assert "params changed at model.layers.0.mlp.down_proj.weight" in report.failed.found


def test_a_residual_site_that_is_not_the_hidden_state_fails(monkeypatch):
    real = sites.resid_hooks

    def shifted(model, layers, fn, *, edit):
        return real(model, layers, (lambda layer, x: fn(layer, x + 1e-3)) if not edit else fn, edit=edit)

    monkeypatch.setattr(sites, "resid_hooks", shifted)
    report = pf.preflight(build("opt"), inputs("opt"))
    assert report.failed.name == "resid-is-hidden-states"
    assert report.failed.found.startswith("layer 0 (input of model.decoder.layers.0) differs")


def test_a_check_that_raises_fails_naming_the_exception(monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("hook exploded")

    monkeypatch.setattr(sites, "ablate", boom)
    report = pf.preflight(build("vit"), inputs("vit"))
    assert report.failed.name == "ones-mask-identity"
    assert report.failed.found == "RuntimeError: hook exploded"


def test_bad_inputs_fail_at_the_boundary():
    model = build("llama")
    with pytest.raises(TypeError, match="mapping of forward keyword arguments to tensors.*got Tensor"):
        pf.preflight(model, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"got \{'input_ids': 'list'\}"):
        pf.preflight(model, {"input_ids": [[1, 2]]})
    with pytest.raises(TypeError, match="LoadedModel or a torch.nn.Module, got str"):
        pf.preflight("llama", inputs("llama"))


def test_the_model_is_left_as_it_came():
    model = build("gemma2")
    x = inputs("gemma2")
    with torch.no_grad():
        ref = model(**x).logits
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert pf.preflight(model, x).passed
    assert not model.training
    with torch.no_grad():
        assert torch.equal(model(**x).logits, ref)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("kind", ["causal", "masked", "image"])
def test_preflight_inputs_of_a_loaded_model_are_real_and_pass(tmp_path, kind):
    """Through load_model: fixed sentences through the model's own tokenizer (no padding: every row cut
    to the shortest), or the first Fashion-MNIST eval images (seeded random pixels without them)."""
    from core.zoo.models import load_model
    from tests import own_models as own

    make = {"causal": own.causal, "masked": own.bert, "image": own.vit}[kind]
    folder = own.save(make(), tmp_path / kind, with_tokenizer=kind != "image", masked=kind == "masked")
    lm = load_model(folder)
    x, about = pf.preflight_inputs(lm)
    if kind == "image":
        assert set(x) == {"pixel_values"} and x["pixel_values"].shape[0] == pf.N_IMAGES
        assert "Fashion-MNIST" in about
    else:
        ids = x["input_ids"]
        assert ids.shape == (len(pf.SENTENCES), min(pf.MAX_TOKENS, *(len(lm.tokenizer(s)["input_ids"])
                                                                      for s in pf.SENTENCES)))
        assert ids[0].tolist() == lm.tokenizer(pf.SENTENCES[0])["input_ids"][:ids.shape[1]]
        assert about == f"4 fixed sentences, {ids.shape[1]} tokens each"
    report = pf.preflight(lm, x, about=about)
    assert report.passed, report.message()
    assert report.model == lm.name and report.inputs.startswith(about)
