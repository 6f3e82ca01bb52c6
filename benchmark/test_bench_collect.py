"""The statistics pass on smollm2-135m: the model's body only (now) against the whole model (before).

:func:`core.neurons.activations.collect_stats` used to run the whole causal LM and discard its
logits (SmolLM2's ``lm_head`` is about 21% of its multiply-adds and a (8, 256, 49152) float32 tensor
per batch, 403 MB); it now runs ``model.base_model`` (the statistics are bit for bit
the same, tests/test_stats_body.py). Both passes (moments and histogram) of the attention pre-out
site over 8 windows of 256 tokens, one batch. Compare the two rows of one run:

    .venv/bin/pytest benchmark/test_bench_collect.py --benchmark-only --benchmark-group-by=group

Nothing here asserts on a timing.
"""
from __future__ import annotations

import pytest

from benchmark.common import load_or_skip, random_windows
from core.evaluate import EvalSet
from core.neurons import activations

N_WINDOWS, SEQ_LEN, BATCH = 8, 256, 8


@pytest.fixture(scope="module")
def smollm2():
    return load_or_skip("smollm2-135m").model, EvalSet("causal", random_windows(N_WINDOWS, SEQ_LEN))


@pytest.mark.benchmark(group="smollm2 collect_stats (attn, both passes), 2048 tokens")
@pytest.mark.parametrize("runs", ["body", "whole model"])
def test_collect_stats(benchmark, smollm2, runs, monkeypatch):
    model, data = smollm2
    if runs == "whole model":
        monkeypatch.setattr(activations, "body", lambda m: m)
    benchmark.pedantic(activations.collect_stats, args=(model, "attn", data), kwargs={"batch_size": BATCH},
                       rounds=3, warmup_rounds=1)
