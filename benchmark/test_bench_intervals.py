"""Timings of the revision-2 interval code (claims.md, "Intervals"; target: the interval code adds no more than 10%
to a claim's compute time; ABL's compute per claim is minutes on the small tier).

Run with::

    OMP_NUM_THREADS=1 .venv/bin/pytest benchmark/test_bench_intervals.py --benchmark-only \\
        --benchmark-group-by=group -p no:cacheprovider

Nothing here asserts on a timing. Shapes (float64 values, top1-like 0/100 with noise; every call at
the default 2,000 resamples per level):

- ``abl``: 6 methods (or 2) x 3 draws x 1,024 scored tokens in 16 documents (the small tier's ABL
  evaluation), the mean path (``stat=None``, one estimate per method); the same with the 10 pruning
  fractions of a sweep (60 estimates in one call); a paired difference of two methods by a
  vectorised statistic and by a per-resample one (the slow path, for comparison).
- ``units``: 3 draws x 4,096 units in 32 documents.
- ``paper``: 6 methods x 3 draws x 100,000 tokens in 100 documents (the paper profile's size).
- ``cluster``: 45 unordered pairs (90 directed units, both directions of a pair in one group): the
  mean, a vectorised mean, and a Spearman correlation, per resample (the loop path) and vectorised
  (:func:`core.inference.spearman_rows`).
"""
from __future__ import annotations

import numpy as np
import pytest

from core import inference as inf


def _values(rng, shape):
    return 100.0 * (rng.uniform(size=shape) < 0.4) + rng.normal(size=shape)


def _docs(n_units, n_docs):
    return np.sort(np.arange(n_units) % n_docs)


@pytest.fixture(scope="module")
def abl():
    rng = np.random.default_rng(0)
    return _values(rng, (6, 10, 3, 1024)), _docs(1024, 16)


@pytest.mark.benchmark(group="abl")
@pytest.mark.parametrize("n_methods", [6, 2])
def test_bench_abl_mean(benchmark, abl, n_methods):
    y, docs = abl
    x = np.ascontiguousarray(y[:n_methods, 5])                  # (methods, draws, tokens)
    out = benchmark(inf.nested_bootstrap, x, docs=docs)
    assert len(out) == n_methods


@pytest.mark.benchmark(group="abl")
def test_bench_abl_sweep_all_fractions(benchmark, abl):
    y, docs = abl
    out = benchmark(inf.nested_bootstrap, y.reshape(60, 3, 1024), docs=docs)
    assert len(out) == 60


def _diff(m):
    return m["a"].mean(-1) - m["b"].mean(-1)


@pytest.mark.benchmark(group="abl")
def test_bench_abl_paired_difference_vectorised(benchmark, abl):
    y, docs = abl
    arrays = {"a": y[0, 5], "b": y[1, 5]}
    benchmark(inf.nested_bootstrap, arrays, _diff, docs=docs, vectorized=True)


@pytest.mark.benchmark(group="abl")
def test_bench_abl_paired_difference_per_resample(benchmark, abl):
    y, docs = abl
    arrays = {"a": y[0, 5], "b": y[1, 5]}
    benchmark.pedantic(inf.nested_bootstrap, args=(arrays, lambda m: float(_diff(m))),
                       kwargs={"docs": docs}, rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="units")
def test_bench_4096_units_32_documents(benchmark):
    rng = np.random.default_rng(1)
    benchmark(inf.nested_bootstrap, _values(rng, (3, 4096)), docs=_docs(4096, 32))


@pytest.mark.benchmark(group="paper")
def test_bench_paper_size(benchmark):
    rng = np.random.default_rng(2)
    y = _values(rng, (6, 3, 100_000))
    out = benchmark.pedantic(inf.nested_bootstrap, args=(y,), kwargs={"docs": _docs(100_000, 100)},
                             rounds=3, warmup_rounds=1)
    assert len(out) == 6


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(3)
    n_pairs = 45
    return rng.normal(size=2 * n_pairs), rng.normal(size=2 * n_pairs), np.repeat(np.arange(n_pairs), 2)


@pytest.mark.benchmark(group="cluster")
def test_bench_cluster_mean(benchmark, pairs):
    a, _, groups = pairs
    benchmark(inf.cluster_bootstrap, a, groups=groups)


@pytest.mark.benchmark(group="cluster")
def test_bench_cluster_vectorised(benchmark, pairs):
    a, _, groups = pairs
    benchmark(inf.cluster_bootstrap, a, lambda x: x.mean(-1), groups=groups, vectorized=True)


@pytest.mark.benchmark(group="cluster")
def test_bench_cluster_spearman_per_resample(benchmark, pairs):
    a, b, groups = pairs
    benchmark.pedantic(inf.cluster_bootstrap, args=({"a": a, "b": b}, lambda x: inf.spearman(x["a"], x["b"])),
                       kwargs={"groups": groups}, rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="cluster")
def test_bench_cluster_spearman_vectorised(benchmark, pairs):
    a, b, groups = pairs
    benchmark(inf.cluster_bootstrap, {"a": a, "b": b}, lambda x: inf.spearman_rows(x["a"], x["b"]),
              groups=groups, vectorized=True)
