"""Neuron sites and hooks on tiny random-initialised models of every family.

Each check compares against the unmodified Hugging Face model: hooks never subclass or edit it.
"""
from __future__ import annotations

import pytest
import torch

from core import sites
from core.errors import UnknownNameError
from tests.tiny_models import FAMILIES, build, inputs, logits

FAMILY_NAMES = sorted(FAMILIES)
SITE_NAMES = list(sites.SITES)


def _hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _random_mask(model, site, seed=0, p=0.5):
    g = torch.Generator().manual_seed(seed)
    shape = (sites.n_layers(model, site), sites.site_width(model, site))
    return (torch.rand(shape, generator=g) > p).float()


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_family_has_a_row(family):
    model = build(family)
    arch = sites.architecture(model)
    assert len(sites.blocks(model)) == 2
    assert arch.blocks


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_w_in_has_documented_shape(family):
    model = build(family)
    d_model = sites.site_width(model, "resid")
    d_mlp = sites.site_width(model, "mlp")
    assert (d_model, d_mlp) == (32, 48 if family not in ("gpt2",) else 128)
    for layer in range(2):
        assert sites.w_in(model, layer).shape == (d_mlp, d_model)


@pytest.mark.parametrize("family", ["llama", "mistral"])
def test_w_in_options_for_gated_mlps(family):
    model = build(family)
    assert sites.w_in(model, 0, which="gate").shape == (48, 32)
    assert sites.w_in(model, 0, which="concat").shape == (48, 64)
    assert torch.equal(sites.w_in(model, 0), model.model.layers[0].mlp.up_proj.weight)


def test_w_in_gate_rejected_for_ungated_mlp():
    with pytest.raises(ValueError, match="gated"):
        sites.w_in(build("gpt2"), 0, which="gate")


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("site", SITE_NAMES)
def test_trace_records_every_layer_with_site_width(family, site):
    model = build(family)
    x = inputs(family)
    seen = {}
    with sites.trace(model, site, lambda layer, a: seen.__setitem__(layer, a.clone())):
        logits(model, x)
    assert sorted(seen) == list(range(sites.n_layers(model, site)))
    assert all(a.shape[-1] == sites.site_width(model, site) for a in seen.values())
    assert _hook_count(model) == 0


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("site", SITE_NAMES)
def test_all_ones_mask_reproduces_logits_exactly(family, site):
    model = build(family)
    x = inputs(family)
    ref = logits(model, x)
    ones = torch.ones(sites.n_layers(model, site), sites.site_width(model, site))
    offset = torch.randn(ones.shape)
    with sites.ablate(model, site, ones, offset):
        out = logits(model, x)
    assert torch.equal(out, ref)


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("site", SITE_NAMES)
def test_leaving_the_block_restores_the_model_bit_for_bit(family, site):
    model = build(family)
    x = inputs(family)
    ref = logits(model, x)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    mask = _random_mask(model, site)
    with sites.ablate(model, site, mask, 3.0):
        changed = logits(model, x)
    assert not torch.equal(changed, ref)  # the ablation did something
    assert _hook_count(model) == 0
    assert torch.equal(logits(model, x), ref)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_hooks_removed_when_body_raises(family):
    model = build(family)
    with pytest.raises(RuntimeError, match="boom"):
        with sites.ablate(model, "attn", _random_mask(model, "attn"), 0.0):
            raise RuntimeError("boom")
    assert _hook_count(model) == 0


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("site", SITE_NAMES)
def test_inputs_of_ablated_neurons_do_not_matter(family, site):
    """Perturbing only ablated neurons, upstream of the ablation, changes nothing downstream."""
    model = build(family)
    x = inputs(family)
    mask = _random_mask(model, site, seed=3)
    offset = torch.randn(mask.shape, generator=torch.Generator().manual_seed(4))
    with sites.ablate(model, site, mask, offset):
        ref = logits(model, x)
        noise_handles = []
        for layer in range(mask.shape[0]):
            dead = (mask[layer] == 0).float()

            def perturb(t, _d=dead):
                return t + 100.0 * _d * torch.randn_like(t)

            if site != "resid":
                mod = sites.site_modules(model, site)[layer]
                noise_handles.append(mod.register_forward_pre_hook(
                    lambda _m, args, _f=perturb: (_f(args[0]), *args[1:]), prepend=True))
            elif layer > 0:
                blk = sites.blocks(model)[layer - 1]
                noise_handles.append(blk.register_forward_hook(
                    lambda _m, _a, out, _f=perturb: (_f(out[0]), *out[1:]) if isinstance(out, tuple)
                    else _f(out), prepend=True))
        try:
            out = logits(model, x)
        finally:
            for h in noise_handles:
                h.remove()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("site", ["mlp", "attn"])
def test_zero_ablation_equals_zeroing_the_output_matrix_columns(family, site):
    """Zero-ablating neuron i equals deleting column i of the next matrix in the unmodified model."""
    model = build(family)
    x = inputs(family)
    mask = _random_mask(model, site, seed=5)
    with sites.ablate(model, site, mask, 0.0):
        hooked = logits(model, x)
    edited = build(family)
    with torch.no_grad():
        for layer, mod in enumerate(sites.site_modules(edited, site)):
            keep = mask[layer]
            if isinstance(mod, torch.nn.Linear):
                mod.weight.mul_(keep[None, :])
            else:  # Conv1D: (in, out)
                mod.weight.mul_(keep[:, None])
    torch.testing.assert_close(hooked, logits(edited, x), rtol=1e-5, atol=1e-5)


def test_position_dependent_offsets_use_the_same_position():
    model = build("llama")
    x = inputs("llama", seq=5)
    n, w = sites.n_layers(model, "attn"), sites.site_width(model, "attn")
    zeros = torch.zeros(n, w)
    recorded = {}
    with sites.trace(model, "attn", lambda l, a: recorded.__setitem__(l, a[0].clone())):
        logits(model, inputs("llama", seed=9, batch=1, seq=7))
    offsets = torch.stack([recorded[i] for i in range(n)])  # (n_layers, 7, w)
    with sites.ablate(model, "attn", zeros, offsets):
        seen = {}
        with sites.trace(model, "attn", lambda l, a: seen.__setitem__(l, a.clone())):
            logits(model, x)
    # trace hooks registered later run after the ablation hook, so they see the replaced values
    assert torch.equal(seen[0][0], offsets[0, :5])
    with pytest.raises(ValueError, match="positions"):
        with sites.ablate(model, "attn", zeros, offsets[:, :3]):
            logits(model, x)


def test_unknown_site_and_family_list_valid_names():
    with pytest.raises(UnknownNameError, match="mlp"):
        sites.n_layers(build("gpt2"), "heads")
    model = build("gpt2")
    model.config.model_type = "mamba"
    with pytest.raises(UnknownNameError, match="llama"):
        sites.architecture(model)
