"""MoEfication (MOD Eq. 2): balanced clusters, determinism, the on-disk cache, bad k."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.mod.moefication import k_for, moefication
from tests.tiny_models import build


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_CLAIMS_CACHE", str(tmp_path))


def test_two_obvious_groups_by_hand():
    # rows point along e0 or along e1 (scaled: the rows are L2-normalised first)
    w = np.array([[1, 0], [5, 0.1], [0, 2], [0.1, 3], [2, 0.05], [0, 0.5]], dtype=np.float32)
    labels = moefication(w, 2, seed=0)
    assert np.bincount(labels).tolist() == [3, 3]
    assert len({labels[0], labels[1], labels[4]}) == 1 and len({labels[2], labels[3], labels[5]}) == 1
    assert labels[0] != labels[2]


@settings(max_examples=15, deadline=None)
@given(k=st.sampled_from([1, 2, 3, 4, 6]), size=st.integers(1, 6), d=st.integers(2, 8),
       seed=st.integers(0, 1000))
def test_clusters_have_exactly_equal_sizes_and_are_reproducible(k, size, d, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((k * size, d)).astype(np.float32)
    a = moefication(w, k, seed=seed, cache=False)
    assert a.shape == (k * size,) and a.dtype == np.int64
    assert (np.bincount(a, minlength=k) == size).all()
    assert np.array_equal(a, moefication(w, k, seed=seed, cache=False))


def test_cache_reloads_the_same_labels(monkeypatch):
    w = torch.randn(48, 16, generator=torch.Generator().manual_seed(0))
    first = moefication(w, 4, seed=3)
    monkeypatch.setattr("core.mod.moefication._fit", lambda *a, **k: pytest.fail("not reloaded from the cache"))
    assert np.array_equal(moefication(w, 4, seed=3), first)


@pytest.mark.parametrize("k", [5, 0, 100, 2.0])
def test_k_must_divide_d_mlp(k):
    with pytest.raises(ValueError, match="k"):
        moefication(np.ones((48, 4), np.float32), k)


def test_k_error_names_d_mlp():
    with pytest.raises(ValueError, match="does not divide d_mlp = 48"):
        moefication(np.random.default_rng(0).standard_normal((48, 4)), 5)


def test_k_for_models():
    assert k_for("smollm2-135m", 1536) == 48
    assert k_for("tiny-vit-fmnist:random", 384) == 12
    assert k_for("vit-base-cifar100", 3072) == 96 and k_for("mistral-7b-instruct", 14336) == 128
    with pytest.raises(ValueError, match="multiple of 32"):
        k_for("other", 100)


def test_w_in_of_a_gated_tiny_model_clusters():
    from core.zoo import sites

    model = build("llama")
    for which in ("up", "gate", "concat"):
        w = sites.w_in(model, 0, which=which)
        labels = moefication(w, 4, seed=0)
        assert labels.shape == (48,) and (np.bincount(labels) == 12).all()
