"""Ablation offsets reach the activations' device and dtype once per ``ablate`` block, not on every hook
call: a bfloat16 model under float32 masks and offsets, three forward passes."""
from __future__ import annotations

import torch

from core.zoo import sites
from tests import tiny_models


def test_offsets_are_converted_once_per_block(monkeypatch):
    model = tiny_models.build("llama").to(torch.bfloat16)
    x = tiny_models.inputs("llama")
    n, width = sites.n_layers(model, "attn"), sites.site_width(model, "attn")
    mask = torch.ones(n, width)
    mask[:, ::3] = 0  # every layer ablates a third of its neurons
    offsets = torch.randn(n, width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = model(**x).logits
    conversions = []
    original = torch.Tensor.to

    def counting_to(self, *args, **kw):
        out = original(self, *args, **kw)
        if self.ndim == 1 and self.shape[0] == width and self.dtype == torch.float32 and out.dtype == torch.bfloat16:
            conversions.append(self.shape)
        return out

    monkeypatch.setattr(torch.Tensor, "to", counting_to)
    with torch.no_grad(), sites.ablate(model, "attn", mask, offsets):
        outs = [model(**x).logits for _ in range(3)]
    monkeypatch.undo()
    assert len(conversions) == 2 * n  # keep and constant of every ablated layer, once
    assert all(torch.equal(o, outs[0]) for o in outs) and not torch.equal(outs[0], want)
    # the same numbers as converting on every call (the former hook)
    keep, const = mask.to(torch.bfloat16), ((1 - mask) * offsets).to(torch.bfloat16)
    handles = [m.register_forward_pre_hook(lambda _m, a, _l=l: (a[0] * keep[_l] + const[_l], *a[1:]))
               for l, m in enumerate(sites.site_modules(model, "attn"))]
    try:
        with torch.no_grad():
            assert torch.equal(model(**x).logits, outs[0])
    finally:
        for h in handles:
            h.remove()
