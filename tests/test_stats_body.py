"""The statistics pass runs the model's body only: same statistics, no output head.

:func:`core.neurons.activations.collect_stats` ran the whole model and threw its logits away; it now
runs :func:`core.neurons.activations.body` (``model.base_model``). These tests prove, on a tiny
random model of every family of :data:`core.zoo.sites.ARCHITECTURES`, that every statistic of every
site (count, mean, m2, mean |x|, min, max, the histogram and the first-position flags) is bit for
bit what the whole model's forward gives, so no cache key changes; and that the head no longer runs.
"""
from __future__ import annotations

import pytest
import torch

from core.evaluate import EvalSet
from core.neurons import activations
from core.neurons.activations import body, collect_stats
from core.zoo import sites
from tests.tiny_models import FAMILIES, IMAGE_FAMILIES, VOCAB, build


def _data(family: str, n: int = 5, seq: int = 9) -> EvalSet:
    g = torch.Generator().manual_seed(3)
    if family in IMAGE_FAMILIES:
        return EvalSet("image", torch.randn(n, 1, 28, 28, generator=g), labels=torch.zeros(n, dtype=torch.long))
    kind = "causal" if family in _CAUSAL else "masked"
    ids = torch.randint(3, VOCAB, (n, seq), generator=g)
    return EvalSet(kind, ids, labels=None if kind == "causal" else ids.clone())


_ENCODERS = {"bert", "roberta", "xlm-roberta", "distilbert", "electra", "deberta-v2", "deberta-v2-conv"}
_CAUSAL = set(FAMILIES) - _ENCODERS - IMAGE_FAMILIES


def test_every_family_of_the_table_is_covered():
    covered = {build(f).config.model_type for f in FAMILIES}
    assert set(sites.ARCHITECTURES) <= covered, sorted(set(sites.ARCHITECTURES) - covered)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_body_statistics_are_bit_identical_to_the_whole_models(family, monkeypatch):
    model = build(family)
    data = _data(family)
    assert body(model) is not model, f"{family}: the statistics pass would still run the output head"
    for site in sites.SITES:
        now = collect_stats(model, site, data, batch_size=2)
        with monkeypatch.context() as m:
            m.setattr(activations, "body", lambda model: model)  # before: the whole model
            before = collect_stats(model, site, data, batch_size=2)
        for layer, (a, b) in enumerate(zip(now, before)):
            sa, sb = a.state_dict(), b.state_dict()
            for k in sb:
                assert torch.equal(sa[k], sb[k]), f"{family} {site} layer {layer}: {k} differs"
            fa, fb = a.first_position_extreme, b.first_position_extreme
            assert (fa is None) == (fb is None) and (fa is None or torch.equal(fa, fb))


@pytest.mark.parametrize("family", ["llama", "gpt2", "bert", "distilbert", "vit"])
def test_the_statistics_pass_does_not_run_the_output_head(family):
    model = build(family)
    head_calls = []
    head = next(getattr(model, n) for n in ("lm_head", "cls", "vocab_projector", "generator_lm_head",
                                            "classifier") if hasattr(model, n))
    handle = head.register_forward_hook(lambda *_: head_calls.append(1))
    try:
        collect_stats(model, "attn", _data(family), batch_size=2)
        assert head_calls == []
        with torch.no_grad():
            model(**_data(family).model_inputs(0, 1, "cpu"))
        assert head_calls == [1]  # the hook does see the head when the whole model runs
    finally:
        handle.remove()


def test_body_keeps_a_bare_base_model_whole():
    model = build("bert").bert
    assert body(model) is model
