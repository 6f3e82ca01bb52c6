"""Lorenz AUC, Gini coefficient and overlap matrix (MOD sections 4.1-4.2): properties and hand cases."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.mod.lorenz import (cluster_counts, gini, lorenz_auc, lorenz_curve, null_lorenz_auc,
                          overlap_matrix)

counts_st = arrays(np.int64, st.integers(1, 40), elements=st.integers(0, 50)).filter(lambda c: c.sum() > 0)


# ---------------------------------------------------------------------------------------------
# hand cases

def test_lorenz_auc_by_hand():
    # counts (3, 1, 0, 0): sorted 3,1,0,0; y = 0, 3/4, 1, 1, 1; x steps 1/4
    # area = 1/4 * [(0 + .75)/2 + (.75 + 1)/2 + (1 + 1)/2 + (1 + 1)/2] = 1/4 * 3.25 = 0.8125
    assert lorenz_auc([0, 3, 0, 1]) == pytest.approx(0.8125)
    x, y = lorenz_curve([0, 3, 0, 1])
    assert x.tolist() == [0, 0.25, 0.5, 0.75, 1.0]
    assert y.tolist() == [0, 0.75, 1.0, 1.0, 1.0]
    # Gini of (3, 1, 0, 0): sum_ij |ci - cj| = 2 * (2 + 3 + 3 + 1 + 1 + 0) = 20; 2 k^2 mean = 2*16*1 = 32
    assert gini([3, 1, 0, 0]) == pytest.approx(20 / 32)
    assert lorenz_auc([3, 1, 0, 0]) == pytest.approx((1 + 20 / 32) / 2)


def test_lorenz_auc_extremes():
    assert lorenz_auc([5, 5, 5, 5]) == pytest.approx(0.5)
    assert lorenz_auc([0, 0, 7, 0]) == pytest.approx(1 - 1 / 8)
    assert lorenz_auc([4]) == pytest.approx(0.5)  # one bin: everything is in it and evenly spread


@pytest.mark.parametrize("bad", [[], [[1, 2]], [1, -1], [0, 0], [1.5, 2], [np.nan, 1]])
def test_counts_are_validated(bad):
    with pytest.raises(ValueError, match="counts"):
        lorenz_auc(np.asarray(bad))


def test_overlap_by_hand():
    sel = np.array([[1, 1, 1, 1, 0, 0],
                    [0, 0, 1, 1, 1, 0],
                    [0, 0, 0, 0, 0, 1]], dtype=bool)
    o = overlap_matrix(sel)
    expected = np.array([[1, 2 / 4, 0], [2 / 3, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(o, expected)
    with pytest.raises(ValueError, match="select no neuron"):
        overlap_matrix(np.array([[1, 0], [0, 0]], dtype=bool))


def test_cluster_counts_and_null_auc():
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert cluster_counts(np.array([1, 1, 0, 1, 0, 0], bool), labels, 3).tolist() == [2, 1, 0]
    # selecting every neuron spreads evenly over balanced clusters: AUC 0.5 in every draw
    assert null_lorenz_auc(labels, 6, n_draws=5) == pytest.approx(0.5)
    # one neuron always lands in one bin: 1 - 1/(2k)
    assert null_lorenz_auc(labels, 1, n_draws=5) == pytest.approx(1 - 1 / 6)
    assert null_lorenz_auc(labels, 3, seed=1) == null_lorenz_auc(labels, 3, seed=1)


# ---------------------------------------------------------------------------------------------
# properties

@settings(max_examples=200, deadline=None)
@given(counts_st)
def test_auc_bounds_and_gini_identity(c):
    k = c.size
    auc = lorenz_auc(c)
    assert 0.5 - 1e-12 <= auc <= 1 - 1 / (2 * k) + 1e-12
    assert auc == pytest.approx((1 + gini(c)) / 2, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(counts_st, st.randoms(use_true_random=False))
def test_auc_is_invariant_to_bin_order(c, rnd):
    perm = list(range(c.size))
    rnd.shuffle(perm)
    assert lorenz_auc(c[perm]) == pytest.approx(lorenz_auc(c), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(counts_st, st.data())
def test_moving_a_neuron_to_a_larger_bin_never_lowers_auc(c, data):
    assume(c.size >= 2)
    i = data.draw(st.integers(0, c.size - 1))
    j = data.draw(st.integers(0, c.size - 1))
    assume(i != j and c[i] >= 1 and c[j] >= c[i])  # i is the smaller (or equal) bin, j the larger
    moved = c.copy()
    moved[i] -= 1
    moved[j] += 1
    assert lorenz_auc(moved) >= lorenz_auc(c) - 1e-12


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.integers(1, 40))
def test_auc_is_half_for_equal_counts(k, n):
    assert lorenz_auc(np.full(k, n)) == pytest.approx(0.5)


@settings(max_examples=100, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 6), st.integers(1, 30))))
def test_overlap_properties(sel):
    assume(sel.any(1).all())
    o = overlap_matrix(sel)
    sizes = sel.sum(1)
    np.testing.assert_allclose(np.diag(o), 1.0)
    assert ((o >= 0) & (o <= 1)).all()
    np.testing.assert_allclose(sizes[:, None] * o, (sizes[:, None] * o).T)
