"""Timings of the streaming neuron statistics (the intervals: benchmark/test_bench_intervals.py).

Run with ``pytest benchmark/test_bench_stats.py --benchmark-only`` (the project's addopts skip
benchmarks otherwise). Nothing here asserts on a timing.

The batch is (4096, 17280) float32: 4096 token positions of the attention pre-out neurons of all
30 layers of a 576-wide model (30 x 576 = 17280), i.e. one forward batch of a 135M-parameter model.
"""
from __future__ import annotations

import pytest
import torch

from core.neurons.stats import NeuronStats

N_SAMPLES, N_NEURONS, N_BINS = 4096, 30 * 576, 100


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(N_SAMPLES, N_NEURONS, generator=g)


@pytest.fixture(scope="module")
def first_pass(batch) -> NeuronStats:
    return NeuronStats(N_NEURONS).update(batch)


def test_bench_update(benchmark, batch):
    stats = NeuronStats(N_NEURONS)
    benchmark.extra_info["values_per_call"] = batch.numel()
    benchmark.pedantic(stats.update, args=(batch,), rounds=5, warmup_rounds=1)


def test_bench_update_histogram(benchmark, batch, first_pass):
    stats = NeuronStats.from_state_dict(first_pass.state_dict())
    benchmark.extra_info["values_per_call"] = batch.numel()
    benchmark.pedantic(stats.update_histogram, args=(batch,), rounds=5, warmup_rounds=1)


def test_bench_reference_sum(benchmark, batch):
    """One reduction over dim 0 of the same batch: the memory-bandwidth floor of a pass."""
    benchmark.pedantic(torch.sum, args=(batch, 0), rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("method", ["scatter_add", "index_add", "bincount"])
def test_bench_histogram_counting(benchmark, batch, first_pass, method):
    """The counting step alone, on the whole batch's bin indices in the layout each method needs.

    ``scatter_add``: indices of shape (n_neurons, n_samples) into a (n_neurons, n_bins) buffer (what
    NeuronStats does, chunk by chunk); ``index_add`` and ``bincount``: flat indices
    ``neuron * n_bins + bin`` in the same neuron-major order.
    """
    lo = first_pass.min
    width = first_pass.max - lo
    bins = ((batch - lo) * N_BINS / width).clamp_(0, N_BINS - 1).long().t().contiguous()
    flat = (bins + (torch.arange(N_NEURONS) * N_BINS)[:, None]).reshape(-1)
    hist = torch.zeros(N_NEURONS, N_BINS, dtype=torch.int64)
    ones = torch.ones(flat.numel(), dtype=torch.int64)

    def count():
        if method == "scatter_add":
            hist.scatter_add_(1, bins, ones.view(N_NEURONS, -1))
        elif method == "index_add":
            hist.view(-1).index_add_(0, flat, ones)
        else:
            hist.view(-1).add_(torch.bincount(flat, minlength=N_NEURONS * N_BINS))

    benchmark.pedantic(count, rounds=3, warmup_rounds=1)
