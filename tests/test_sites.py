"""Neuron sites and hooks on tiny random-initialised models of every family.

Each check compares against the unmodified Hugging Face model: hooks never subclass or edit it.
"""
from __future__ import annotations

import pytest
import torch

from core.zoo import sites
from core.errors import UnknownNameError
from tests.tiny_models import FAMILIES, HEAD_DIM, KV_HEADS, N_HEADS, build, inputs, logits

FAMILY_NAMES = sorted(FAMILIES)
SITE_NAMES = list(sites.SITES)
D_MODEL = 32

#: Families whose last ``output_hidden_states`` entry comes after a final norm (path from the task
#: model): transformers 5 replaces it with ``last_hidden_state``, so it is not the residual site
#: (the last block's output) but that norm applied to it. Every decoder of the table (OPT only with
#: ``do_layer_norm_before``, its default; OPT-350m has no final norm); in the encoders, ViT and DeiT
#: the last entry is the last block's output (ViT's and DeiT's final layer norm comes after it).
FINAL_NORM_LAST = {
    "llama": "model.norm", "mistral": "model.norm", "qwen2": "model.norm", "phi3": "model.norm", "qwen3": "model.norm",
    "olmo2": "model.norm", "gemma": "model.norm", "gemma2": "model.norm", "stablelm": "model.norm",
    "phi": "model.final_layernorm", "gpt2": "transformer.ln_f", "gptj": "transformer.ln_f",
    "falcon": "transformer.ln_f", "gpt_neox": "gpt_neox.final_layer_norm",
    "opt": "model.decoder.final_layer_norm",
}


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
            elif layer < len(sites.blocks(model)):  # where resid is read: the input of block l
                blk = sites.blocks(model)[layer]
                noise_handles.append(blk.register_forward_pre_hook(
                    lambda _m, args, kwargs, _f=perturb: ((_f(args[0]), *args[1:]), kwargs) if args
                    else (args, dict(kwargs, hidden_states=_f(kwargs["hidden_states"]))),
                    prepend=True, with_kwargs=True))
            else:  # ... and the output of the last block
                blk = sites.blocks(model)[-1]
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


# ------------------------------------------------------------------------------------------------
# Each family's row against the unmodified Hugging Face model
# ------------------------------------------------------------------------------------------------

def _d_mlp(family: str) -> int:
    return 128 if family == "gpt2" else 48


def _record(model, site, x, layers=None) -> dict:
    seen = {}
    with sites.trace(model, site, lambda layer, a: seen.__setitem__(layer, a.clone()), layers=layers):
        logits(model, x)
    return seen


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_attention_pre_out_neurons_are_the_input_of_the_output_projection(family):
    """Width n_heads * head_dim (head_dim set apart from d_model / n_heads in some configs); the site
    module is a linear map to d_model inside the block's attention module, and the trace is its input."""
    model = build(family)
    x = inputs(family)
    width = N_HEADS * HEAD_DIM.get(family, D_MODEL // N_HEADS)
    assert sites.site_width(model, "attn") == width
    mods = sites.site_modules(model, "attn")
    inputs_seen = {}
    handles = [m.register_forward_pre_hook(lambda _m, a, _l=layer: inputs_seen.__setitem__(_l, a[0].clone()))
               for layer, m in enumerate(mods)]
    try:
        traced = _record(model, "attn", x)
    finally:
        for h in handles:
            h.remove()
    for layer, (block, mod) in enumerate(zip(sites.blocks(model), mods)):
        weight = mod.weight if isinstance(mod, torch.nn.Linear) else mod.weight.T  # GPT-2's Conv1D
        assert weight.shape == (D_MODEL, width)
        owners = [type(m).__name__ for _, m in block.named_modules()
                  if any(sub is mod for sub in m.modules()) and m is not block]
        assert any("Attention" in name for name in owners), owners
        assert torch.equal(traced[layer], inputs_seen[layer])
        assert traced[layer].shape == (*inputs_seen[layer].shape[:-1], width)


@pytest.mark.parametrize("family", sorted(KV_HEADS))
def test_heads_that_share_values_agree_at_the_first_position(family):
    """The pre-out neurons are laid out head by head: at position 0 a causal head attends only to
    itself, so its z is its value vector, the same for every head of a key-value group."""
    model = build(family)
    z = _record(model, "attn", inputs(family))
    head_dim = HEAD_DIM.get(family, D_MODEL // N_HEADS)
    per_group = N_HEADS // KV_HEADS[family]
    for a in z.values():
        heads = a[:, 0].reshape(a.shape[0], N_HEADS, head_dim)
        for h in range(N_HEADS):
            first = heads[:, h - h % per_group]
            torch.testing.assert_close(heads[:, h], first, rtol=1e-5, atol=1e-6)
            if h >= per_group:
                assert not torch.allclose(heads[:, h], heads[:, 0])


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_mlp_neurons_are_the_input_of_w_out_and_w_in_rows_feed_them(family):
    """Width d_mlp, read at the input of W_out (d_mlp -> d_model, outside the attention module);
    doubling rows of W_in (as returned, a view of the model's weight) changes exactly those MLP
    neurons; for gated MLPs the up rows enter linearly, so those neurons exactly double."""
    model = build(family)
    x = inputs(family)
    d_mlp = _d_mlp(family)
    assert sites.site_width(model, "mlp") == d_mlp
    for block, w_out in zip(sites.blocks(model), sites.site_modules(model, "mlp")):
        weight = w_out.weight if isinstance(w_out, torch.nn.Linear) else w_out.weight.T  # GPT-2's Conv1D
        assert weight.shape == (D_MODEL, d_mlp)  # W_out: d_mlp neurons -> the residual stream
        attention = [m for m in block.modules() if "Attention" in type(m).__name__]
        assert not any(w_out is sub for m in attention for sub in m.modules())
    gated = sites.architecture(model).gate is not None
    rows = [0, 5, 17, 40]
    for which in ("up", "gate") if gated else ("up",):
        edited = build(family)
        before = _record(edited, "mlp", x, layers=[1])[1]
        with torch.no_grad():
            w = sites.w_in(edited, 1, which=which)
            assert w.shape == (d_mlp, D_MODEL)
            w[rows] *= 2
        after = _record(edited, "mlp", x, layers=[1])[1]
        changed = (after != before).reshape(-1, d_mlp).any(0)
        assert changed.nonzero().flatten().tolist() == rows, which
        if gated and which == "up":
            torch.testing.assert_close(after[..., rows], 2 * before[..., rows], rtol=1e-6, atol=0)
    assert model.state_dict().keys() == edited.state_dict().keys()


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_residual_sites_are_the_hidden_states_of_the_model(family):
    """``resid`` layers are ``output_hidden_states``; in ``FINAL_NORM_LAST`` families the last entry
    there is the final norm applied to the last residual layer."""
    model = build(family)
    x = inputs(family)
    seen, final = {}, {}
    norm = FINAL_NORM_LAST.get(family)
    handle = None if norm is None else model.get_submodule(norm).register_forward_hook(
        lambda _m, args, out: final.update(input=args[0], output=out))
    try:
        with sites.trace(model, "resid", lambda layer, a: seen.__setitem__(layer, a.clone())):
            with torch.no_grad():
                hidden = model(**x, output_hidden_states=True).hidden_states
    finally:
        if handle is not None:
            handle.remove()
    n = sites.n_layers(model, "resid")
    assert len(hidden) == n == len(seen)
    for layer in range(n - 1):
        assert torch.equal(seen[layer], hidden[layer]), layer
    if norm is None:
        assert torch.equal(seen[n - 1], hidden[-1])
    else:
        assert torch.equal(final["input"], seen[n - 1])
        assert torch.equal(final["output"], hidden[-1])
        assert not torch.equal(seen[n - 1], hidden[-1])


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_hooks_leave_the_model_as_they_found_it(family):
    """With transformers' own output-capturing hooks installed (``output_hidden_states``), leaving
    every context restores the hooks the model had, and the logits bit for bit."""
    model = build(family)
    x = inputs(family)
    with torch.no_grad():
        model(**x, output_hidden_states=True)
    hooks = _hook_count(model)
    ref = logits(model, x)
    for site in SITE_NAMES:
        with sites.ablate(model, site, torch.ones(sites.n_layers(model, site), sites.site_width(model, site)),
                          torch.randn(sites.site_width(model, site))):
            assert torch.equal(logits(model, x), ref)
        with sites.ablate(model, site, _random_mask(model, site), 3.0):
            assert not torch.equal(logits(model, x), ref)
        with sites.trace(model, site, lambda *_: None):
            assert _hook_count(model) > hooks
    assert _hook_count(model) == hooks
    assert torch.equal(logits(model, x), ref)


def test_a_bare_base_model_finds_its_blocks():
    """A base model without its task head (``BertModel``, ``LlamaModel``) has the row's blocks path
    less the base-model prefix."""
    for family in ("bert", "llama", "distilbert", "deit", "opt"):
        task = build(family)
        bare = task.base_model
        assert bare is not task
        assert sites.blocks(bare) is sites.blocks(task)
