"""The MOD-6 lottery null at Mistral-7B's scale: 32 layers x 14,336 MLP neurons, 8
subsets, 20 draws (the claim runs 1,000 per reading).

- ``numpy``: :func:`core.mod.nulls.lottery_null` on the CPU, vectorised in chunks (the same draws as one
  at a time); ``one-at-a-time``: the former loop (one draw, one overlap matrix, one scipy rho);
- ``torch-cuda``: the draws on the GPU (skipped without one).

    .venv/bin/pytest benchmark/test_bench_null.py --benchmark-only --benchmark-group-by=group
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.inference.correlation import spearman
from core.mod.lorenz import overlap_matrix
from core.mod.nulls import lottery_null, offdiag, size_matched_sets

N_NEURONS = 32 * 14_336
DRAWS = 20


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    sizes = rng.integers(N_NEURONS // 50, N_NEURONS // 5, 8)
    return rng.uniform(0, 1, (8, 8)), sizes


@pytest.mark.benchmark(group="lottery null, Mistral-7B scale, 20 draws")
def test_null_numpy(benchmark, problem):
    o, sizes = problem
    benchmark.pedantic(lambda: lottery_null(o, sizes, N_NEURONS, n_draws=DRAWS, seed=0), rounds=3)


@pytest.mark.benchmark(group="lottery null, Mistral-7B scale, 20 draws")
def test_null_one_at_a_time(benchmark, problem):
    o, sizes = problem

    def former():
        rng = np.random.default_rng(0)
        return [spearman(offdiag(o), offdiag(overlap_matrix(size_matched_sets(sizes, N_NEURONS, rng))))
                for _ in range(DRAWS)]

    benchmark.pedantic(former, rounds=3)


@pytest.mark.benchmark(group="lottery null, Mistral-7B scale, 20 draws")
def test_null_torch_cuda(benchmark, problem):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    o, sizes = problem
    benchmark.pedantic(lambda: lottery_null(o, sizes, N_NEURONS, n_draws=DRAWS, seed=0, device="cuda"), rounds=3)
