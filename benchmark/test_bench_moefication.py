"""Timings of MoEfication (MOD Eq. 2): balanced k-means of one layer's ``W_in`` rows.

Run with ``pytest benchmark/test_bench_moefication.py --benchmark-only`` (under the shared lock: the
Mistral shape takes minutes). Nothing here asserts on a timing. Shapes (d_mlp x d_model, k):

- ``smollm2-135m``: 1536 x 576, k = 48 (d_mlp / 32);
- ViT-base: 3072 x 768, k = 96;
- Mistral-7B: 14336 x 4096, k = 128 (synthetic weights).

Each clustering runs once, uncached (``cache=False``), with each algorithm (``torch``: k-means++ and
Lloyd in torch on the CPU here, balanced assignment by OR-Tools min-cost flow; ``k-means-constrained``:
the reference); ``extra_info`` records the inertia, so that the two can be compared on the same rows.
``test_bench_cached_reload`` times a reload of a cached clustering from disk.

The Mistral shape alone, both algorithms (about 5 minutes on 2 CPU cores)::

    pytest benchmark/test_bench_moefication.py -k mistral --benchmark-only -p no:cacheprovider
"""
from __future__ import annotations

import numpy as np
import pytest

from core.mod.moefication import ALGORITHMS, inertia, moefication

SHAPES = {
    "smollm2-135m": (1536, 576, 48),
    "vit-base": (3072, 768, 96),
    "mistral-7b": (14336, 4096, 128),
}


def _weights(d_mlp: int, d_model: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((d_mlp, d_model), dtype=np.float32) * 0.02


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
def test_bench_moefication(benchmark, shape, algorithm):
    d_mlp, d_model, k = SHAPES[shape]
    w = _weights(d_mlp, d_model)
    benchmark.extra_info.update({"d_mlp": d_mlp, "d_model": d_model, "k": k, "algorithm": algorithm})
    labels = benchmark.pedantic(moefication, args=(w, k), kwargs={"seed": 0, "cache": False, "algorithm": algorithm},
                                rounds=1, iterations=1)
    assert (np.bincount(labels, minlength=k) == d_mlp // k).all()
    benchmark.extra_info["inertia"] = inertia(w, labels)


def test_bench_cached_reload(benchmark, tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_CLAIMS_CACHE", str(tmp_path))
    d_mlp, d_model, k = SHAPES["smollm2-135m"]
    w = _weights(d_mlp, d_model)
    first = moefication(w, k, seed=0)
    labels = benchmark.pedantic(moefication, args=(w, k), kwargs={"seed": 0}, rounds=5, iterations=1)
    assert np.array_equal(labels, first)
