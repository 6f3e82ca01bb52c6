"""The MOD-6 lottery null at scale (claims.md, "MOD", MOD-6): the vectorised draws are the one-at-a-time draws
(same random stream, same sets, same rhos to float rounding); the torch path draws from the same
distribution."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.inference.correlation import spearman
from core.mod import nulls
from core.mod.lorenz import overlap_matrix
from core.mod.nulls import size_matched_draws, lottery_null, offdiag, size_matched_sets


def _one_at_a_time(o, sizes, n_neurons, n_draws, seed):
    """The null as it was first computed: one draw, one overlap matrix, one scipy rho."""
    rng = np.random.default_rng(seed)
    target = offdiag(o)
    return np.array([spearman(target, offdiag(overlap_matrix(size_matched_sets(sizes, n_neurons, rng))))
                     for _ in range(n_draws)])


@pytest.mark.parametrize("chunk_bytes", [1, 10_000, 256 * 2**20])
def test_vectorised_null_equals_the_draws_one_at_a_time(monkeypatch, chunk_bytes):
    monkeypatch.setattr(nulls, "_NULL_CHUNK_BYTES", chunk_bytes)  # one draw per chunk, a few, all at once
    rng = np.random.default_rng(3)
    sizes = np.array([3, 17, 40, 41, 90])
    o = rng.uniform(0, 1, (5, 5))
    got = lottery_null(o, sizes, 211, n_draws=57, seed=11)
    want = _one_at_a_time(o, sizes, 211, 57, 11)
    assert got.shape == (57,)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_vectorised_null_reproduces_a_constant_draw_as_nan():
    # every set holds every neuron: all overlaps are 1, Spearman is undefined in every draw
    null = lottery_null(np.eye(3) + 0.1, [5, 5, 5], 5, n_draws=4, seed=0)
    assert np.isnan(null).all()


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 30), min_size=1, max_size=6), extra=st.integers(0, 20),
       n_draws=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_batched_draws_are_consecutive_single_draws(sizes, extra, n_draws, seed):
    n_neurons = max(sizes) + extra
    batched = size_matched_draws(np.array(sizes), n_neurons, np.random.default_rng(seed), n_draws)
    rng = np.random.default_rng(seed)
    single = np.stack([size_matched_sets(sizes, n_neurons, rng) for _ in range(n_draws)])
    assert batched.shape == (n_draws, len(sizes), n_neurons) and batched.dtype == bool
    assert np.array_equal(batched, single)
    assert (batched.sum(-1) == np.array(sizes)[None]).all()  # sizes matched, every draw


def test_torch_null_has_the_numpy_null_distribution():
    pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    sizes = np.array([10, 20, 30, 60, 80, 120])
    o = np.where(np.eye(6, dtype=bool), 1.0, sizes[None, :] / 300 + rng.normal(0, 0.05, (6, 6)))
    a = lottery_null(o, sizes, 300, n_draws=3000, seed=1)
    b = lottery_null(o, sizes, 300, n_draws=3000, seed=1, device="cpu")
    assert not np.array_equal(a, b, equal_nan=True)  # other draws ...
    # ... from the same distribution: two-sample Kolmogorov-Smirnov at alpha = 0.001 (seeds fixed, so
    # this is deterministic) and the quartiles within 0.05
    from scipy.stats import ks_2samp
    assert ks_2samp(a[~np.isnan(a)], b[~np.isnan(b)]).pvalue > 0.001
    np.testing.assert_allclose(np.nanquantile(a, [0.25, 0.5, 0.75]), np.nanquantile(b, [0.25, 0.5, 0.75]),
                               atol=0.05)
    # deterministic for a seed; the draws keep the sizes (the sizes-only pattern is found)
    assert np.array_equal(b, lottery_null(o, sizes, 300, n_draws=3000, seed=1, device="cpu"), equal_nan=True)
    assert np.nanmedian(b) > 0.5


def test_null_bad_input_names_what_was_expected():
    with pytest.raises(ValueError, match=r"expected shape \(3, 3\).*got \(2, 2\)"):
        lottery_null(np.eye(2), [1, 2, 3], 10, n_draws=2)
    with pytest.raises(ValueError, match="at least one neuron"):
        lottery_null(np.eye(2), [0, 2], 10, n_draws=2)
    with pytest.raises(ValueError, match=r"sizes must lie in \[0, 10\]"):
        lottery_null(np.eye(2), [11, 2], 10, n_draws=2)
