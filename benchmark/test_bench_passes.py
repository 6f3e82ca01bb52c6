"""Statistics passes against a bare forward pass on smollm2-135m (the harness issue's targets).

Targets: the moments pass (count, mean, mean |x|, variance, min, max of every MLP and attention
pre-out neuron) costs at most 1.15x a bare forward pass over the same tokens; the histogram (peak)
pass at most 1.3x. Compare the rows of one run:

    .venv/bin/pytest benchmark/test_bench_passes.py --benchmark-only --benchmark-group-by=group
"""
from __future__ import annotations

import pytest
import torch

from benchmark.common import load_or_skip, random_windows
from core.zoo import sites
from core.neurons.stats import NeuronStats

N_WINDOWS, SEQ_LEN = 8, 128


@pytest.fixture(scope="module")
def smollm2():
    return load_or_skip("smollm2-135m").model, random_windows(N_WINDOWS, SEQ_LEN)


def _stats(model):
    out = {}
    for site in ("mlp", "attn"):
        out[site] = [NeuronStats(sites.site_width(model, site)) for _ in range(sites.n_layers(model, site))]
    return out


def _run(model, ids, hook=None, stats=None):
    with torch.inference_mode():
        if hook is None:
            model(input_ids=ids)
            return
        with sites.trace(model, "mlp", lambda l, x: hook(stats["mlp"][l], x)), \
                sites.trace(model, "attn", lambda l, x: hook(stats["attn"][l], x)):
            model(input_ids=ids)


@pytest.mark.benchmark(group="smollm2 passes, 1024 tokens")
def test_bare_forward(benchmark, smollm2):
    model, ids = smollm2
    benchmark.pedantic(_run, args=(model, ids), rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group="smollm2 passes, 1024 tokens")
def test_moments_pass(benchmark, smollm2):
    model, ids = smollm2
    stats = _stats(model)
    benchmark.pedantic(_run, args=(model, ids, lambda s, x: s.update(x.reshape(-1, x.shape[-1])), stats),
                       rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group="smollm2 passes, 1024 tokens")
def test_histogram_pass(benchmark, smollm2):
    model, ids = smollm2
    stats = _stats(model)
    _run(model, ids, lambda s, x: s.update(x.reshape(-1, x.shape[-1])), stats)
    benchmark.pedantic(_run, args=(model, ids, lambda s, x: s.update_histogram(x.reshape(-1, x.shape[-1])),
                                   stats), rounds=5, warmup_rounds=1)
