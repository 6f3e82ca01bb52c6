"""Intervals and verdicts (core.inference): every branch of the verdict rules by hand, the bootstrap
against slow reference loops on the same draws, and properties."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core import inference as inf
from core.inference.estimate import Estimate
from core.inference.sample_size import needed_count


def est(value, low, high) -> Estimate:
    return Estimate(value, low, high, n_units=100, n_seeds=1)


NAN = float("nan")


# ---------------------------------------------------------------------------------------------
# verdicts by hand

def test_verdicts_are_the_three_of_the_catalogue():
    assert inf.VERDICTS == ("replicated", "contradicted", "inconclusive")


@pytest.mark.parametrize("estimates, expected", [
    ([est(1.0, 0.5, 1.5), est(2.0, 0.1, 3.0)], "replicated"),          # both > 0, intervals exclude 0
    ([est(1.0, 0.5, 1.5), est(0.5, -0.1, 1.0)], "inconclusive"),       # one interval touches 0
    ([est(1.0, 0.5, 1.5), est(-1.0, -2.0, -0.5)], "contradicted"),     # one < 0, interval excludes 0
    ([est(-0.2, -1.0, 0.5)], "inconclusive"),                          # < 0 but interval spans 0
    ([est(1.0, 0.0, 2.0)], "inconclusive"),                            # low == 0 does not exclude 0
    ([est(0.0, 0.0, 0.0)], "inconclusive"),                            # no effect at all
    ([est(NAN, NAN, NAN)], "inconclusive"),                            # NaN never decides
    ([est(-0.1, 0.2, 0.5)], "inconclusive"),                           # value outside its interval
])
def test_directional_every_branch(estimates, expected):
    assert inf.directional(estimates) == expected


def test_directional_mirrors_with_negative_direction_and_takes_one_estimate():
    assert inf.directional(est(-1.0, -2.0, -0.5), direction=-1) == "replicated"
    assert inf.directional([est(-1.0, -2.0, -0.5), est(1.0, 0.5, 2.0)], direction=-1) == "contradicted"
    assert inf.directional(est(-1.0, -2.0, 0.5), direction=-1) == "inconclusive"
    assert inf.directional(est(1.0, 0.5, 1.5)) == "replicated"


def test_directional_bad_arguments():
    with pytest.raises(ValueError, match="direction"):
        inf.directional([est(1, 0.5, 2)], direction=0)
    with pytest.raises(ValueError, match="one or more Estimate"):
        inf.directional([])
    with pytest.raises(ValueError, match="one or more Estimate"):
        inf.directional([(1.0, 0.5, 2.0)])


@pytest.mark.parametrize("estimates, expected", [
    ([est(0.0, -1.0, 1.0), est(0.5, -2.0, 2.0)], "replicated"),   # inside, endpoints included
    ([est(0.0, -1.0, 1.0), est(1.5, -0.5, 2.5)], "inconclusive"),  # one crosses the margin
    ([est(0.0, -1.0, 1.0), est(3.0, 2.5, 3.5)], "contradicted"),   # one wholly above +margin
    ([est(-3.0, -3.5, -2.5)], "contradicted"),                     # wholly below -margin
    ([est(0.0, -3.0, 3.0)], "inconclusive"),                       # wider than the margin
    ([est(2.0, 2.0, 2.5)], "inconclusive"),                        # low == margin is not outside
    ([est(NAN, NAN, NAN)], "inconclusive"),
])
def test_equivalence_every_branch(estimates, expected):
    assert inf.equivalence(estimates, margin=2.0) == expected


def test_equivalence_needs_a_positive_margin():
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="margin"):
            inf.equivalence([est(0, -1, 1)], margin=bad)


@pytest.mark.parametrize("e, expected_least, expected_most", [
    (est(80.0, 76.0, 84.0), "replicated", "contradicted"),
    (est(75.0, 75.0, 80.0), "replicated", "inconclusive"),   # low == threshold: at least, not above
    (est(74.0, 70.0, 78.0), "inconclusive", "inconclusive"),
    (est(60.0, 55.0, 74.9), "contradicted", "replicated"),
    (est(70.0, 65.0, 75.0), "inconclusive", "replicated"),   # high == threshold counts as at most
    (est(NAN, NAN, NAN), "inconclusive", "inconclusive"),
])
def test_at_least_and_at_most_every_branch(e, expected_least, expected_most):
    assert inf.at_least(e, 75.0) == expected_least
    assert inf.at_most(e, 75.0) == expected_most


def test_all_of():
    assert inf.all_of(["replicated", "replicated"]) == "replicated"
    assert inf.all_of(["replicated", "inconclusive"]) == "inconclusive"
    assert inf.all_of(["inconclusive", "contradicted", "replicated"]) == "contradicted"
    with pytest.raises(ValueError):
        inf.all_of([])
    with pytest.raises(ValueError):
        inf.all_of(["replicated", "skipped"])


def test_estimate_is_frozen_checked_and_serialisable():
    e = Estimate(1.0, 0.5, 2.0, 10, 3)
    assert (e.level, e.n_resamples) == (0.95, 2000)
    with pytest.raises(AttributeError):
        e.value = 2.0
    with pytest.raises(ValueError, match="low <= high"):
        Estimate(1.0, 2.0, 0.5, 10, 1)
    assert e.as_dict() == {"value": 1.0, "low": 0.5, "high": 2.0, "n_units": 10, "n_seeds": 3,
                           "level": 0.95, "n_resamples": 2000, "n_groups": None, "se": None,
                           "components": None, "df": None, "construction": "percentile", "bounds": None}


def test_an_interval_cut_to_a_correlations_range_by_hand():
    e = Estimate(0.96, 0.87, 1.05, 10, se=0.045, df=8.0, construction="t-banerjee").within(-1, 1)
    assert (e.value, e.low, e.high, e.bounds, e.se, e.df) == (0.96, 0.87, 1.0, (-1.0, 1.0), 0.045, 8.0)
    both = Estimate(0.1, -1.7, 1.5, 10).within(-1, 1)
    assert (both.low, both.high) == (-1.0, 1.0)
    flipped = Estimate(0.5, 0.2, 1.0, 10).within(-1, 1).scaled(-1)
    assert (flipped.low, flipped.high, flipped.bounds) == (-1.0, -0.2, (-1.0, 1.0))
    assert Estimate(0.5, 0.2, 1.0, 10).within(-1, 1).shifted(1).bounds == (0.0, 2.0)
    with pytest.raises(ValueError, match="outside"):
        Estimate(1.2, 1.0, 1.4, 10).within(-1, 1)
    with pytest.raises(ValueError, match="lower < upper"):
        Estimate(0.0, -0.1, 0.1, 10).within(1, -1)
    nan = Estimate(NAN, NAN, NAN, 0).within(-1, 1)
    assert np.isnan(nan.low) and np.isnan(nan.high)


@settings(max_examples=200, deadline=None)
@given(value=st.floats(-1, 1), half=st.floats(0, 3), shift=st.floats(-1, 1))
def test_cutting_to_the_range_keeps_the_value_and_every_sign_verdict(value, half, shift):
    """Inside [-1, 1] the cut interval still holds the value, and "excludes 0" (either sign) reads the
    same before and after: the cut never moves an endpoint across 0."""
    low, high = value - half * (1 + shift) / 2, value + half * (1 - shift) / 2
    e = Estimate(value, low, high, 10)
    cut = e.within(-1, 1)
    assert -1 <= cut.low <= cut.value <= cut.high <= 1
    assert inf.directional(cut) == inf.directional(e)
    assert inf.directional(cut, direction=-1) == inf.directional(e, direction=-1)


# ---------------------------------------------------------------------------------------------
# paired bootstrap

def test_spearman():
    assert inf.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert inf.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert inf.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6*2/(4*15)
    assert np.isnan(inf.spearman([1, 1, 1], [1, 2, 3]))
    assert np.isnan(inf.spearman([1, 2, np.nan], [1, 2, 3]))
    with pytest.raises(ValueError, match="same length"):
        inf.spearman([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="same length"):
        inf.spearman([1], [1])


# ---------------------------------------------------------------------------------------------
# properties

# ---------------------------------------------------------------------------------------------
# revision 2: nested and cluster bootstraps (documents, draws, shared units as levels)

def _design(seed=0, n_draws=3, sizes=(3, 5, 2, 4, 6), methods=None):
    """Random per-unit values (…, n_draws, n_units) with documents of the given sizes."""
    rng = np.random.default_rng(seed)
    docs = np.repeat(np.arange(len(sizes)), sizes)
    shape = ((methods,) if methods else ()) + (n_draws, docs.size)
    return rng.normal(size=shape) + rng.normal(size=(n_draws, 1)), docs


def _reference_nested(y, docs, n_resamples, seed, level=0.95):
    """Slow loop over resamples, the documented stream: documents, then draws."""
    from scipy.stats import t

    rng = np.random.default_rng(seed)
    n_draws, n_docs = y.shape[0], int(docs.max()) + 1
    members = [np.flatnonzero(docs == j) for j in range(n_docs)]
    idx = rng.integers(0, n_docs, size=(n_resamples, n_docs))
    doc_stats = []
    for row in idx:
        take = np.concatenate([members[j] for j in row])
        doc_stats.append(np.mean([y[d, take].mean() for d in range(n_draws)]))
    pick = rng.integers(0, n_draws, size=(n_resamples, n_draws))
    draw_stats = [y[row].mean() for row in pick]
    v_doc = np.var(doc_stats, ddof=1) * n_docs / (n_docs - 1)
    v_draw = np.var(draw_stats, ddof=1) * n_draws / (n_draws - 1)
    w = np.bincount(docs) / docs.size
    k = (w ** 2).sum() ** 2 / (w ** 4).sum()
    df_doc, df_draw = min(n_docs, k) - 1, n_draws - 1
    q = 0.5 + level / 2
    half = np.sqrt(t.ppf(q, df_doc) ** 2 * v_doc + t.ppf(q, df_draw) ** 2 * v_draw)
    return y.mean(), half, v_doc, v_draw, df_doc


def test_nested_bootstrap_matches_a_slow_reference_loop():
    y, docs = _design(1)
    value, half, v_doc, v_draw, df_doc = _reference_nested(y, docs, 300, seed=5)
    e = inf.nested_bootstrap(y, docs=docs, n_resamples=300, seed=5)
    assert e.value == pytest.approx(value, rel=1e-12)
    assert (e.low, e.high) == pytest.approx((value - half, value + half), rel=1e-10)
    assert e.components["documents"] == pytest.approx({"var": v_doc, "n": 5, "df": df_doc}, rel=1e-10)
    assert e.components["draws"] == pytest.approx({"var": v_draw, "n": 3, "df": 2.0}, rel=1e-10)
    assert e.se == pytest.approx(np.sqrt(v_doc + v_draw), rel=1e-10)
    assert (e.n_units, e.n_seeds, e.n_groups, e.n_resamples, e.construction) == (
        20, 3, 5, 300, "t-banerjee")
    # the one t quantile that gives the same interval
    from scipy.stats import t
    assert t.ppf(0.975, e.df) * e.se == pytest.approx(half, rel=1e-8)


def test_two_by_two_level_variances_by_hand():
    """2 draws x 2 equal documents: a resample of two things with replacement has mean ``a`` or ``b``
    (each 1/4) or ``(a + b) / 2`` (1/2), so its variance is ``(a - b)**2 / 8``, and scaled by
    ``n / (n - 1) = 2`` it is ``(a - b)**2 / 4``. Documents: ``a, b`` = the documents' means over
    both draws; draws: the draws' means over both documents. With 40,000 resamples the Monte Carlo
    error of each variance is 0.5% (the 3-point distribution has kurtosis 2)."""
    y = np.array([[1.0, 3.0, 10.0, 14.0],     # draw 0: document 0 = units 0-1, document 1 = units 2-3
                  [5.0, 7.0, 20.0, 22.0]])    # draw 1
    docs = np.array([0, 0, 1, 1])
    e = inf.nested_bootstrap(y, docs=docs, n_resamples=40_000, seed=0)
    doc_means = np.array([4.0, 16.5])          # (1 + 3 + 5 + 7) / 4, (10 + 14 + 20 + 22) / 4
    draw_means = np.array([7.0, 13.5])         # (1 + 3 + 10 + 14) / 4, (5 + 7 + 20 + 22) / 4
    assert e.value == pytest.approx(10.25)
    assert e.components["documents"]["var"] == pytest.approx(np.ptp(doc_means) ** 2 / 4, rel=0.03)
    assert e.components["draws"]["var"] == pytest.approx(np.ptp(draw_means) ** 2 / 4, rel=0.03)
    assert e.components["documents"]["df"] == e.components["draws"]["df"] == 1.0
    half = 12.706204736174707 * np.sqrt(e.components["documents"]["var"] + e.components["draws"]["var"])
    assert (e.low, e.high) == pytest.approx((10.25 - half, 10.25 + half), rel=1e-9)


def test_the_vectorised_loop_and_cluster_paths_agree():
    """The mean path, a per-resample statistic, a vectorised one, and cluster_bootstrap (generic
    statistic, same random stream) give the same interval."""
    y, docs = _design(2, methods=2)
    a = inf.nested_bootstrap({"m": y[0]}, lambda m: m["m"].mean(), docs=docs, n_resamples=200, seed=3)
    b = inf.nested_bootstrap({"m": y[0]}, lambda m: m["m"].mean(-1), docs=docs, n_resamples=200, seed=3,
                             vectorized=True)
    c = inf.nested_bootstrap(y[0], docs=docs, n_resamples=200, seed=3)
    d = inf.cluster_bootstrap(y[0], lambda x: x.mean(), groups=docs, draws=True, n_resamples=200, seed=3)
    e = inf.cluster_bootstrap(y[0], groups=docs, draws=True, n_resamples=200, seed=3)
    for x in (b, c, d, e):
        assert (x.value, x.low, x.high) == pytest.approx((a.value, a.low, a.high), rel=1e-10)
    # two methods, paired, several outputs
    two = inf.nested_bootstrap(y, docs=docs, n_resamples=200, seed=3)
    assert isinstance(two, tuple) and len(two) == 2
    assert (two[0].low, two[0].high) == pytest.approx((a.low, a.high), rel=1e-10)
    # equal groups: the vectorised cluster path
    g = np.repeat(np.arange(10), 2)
    v = np.random.default_rng(4).normal(size=20)
    loop = inf.cluster_bootstrap(v, lambda x: np.median(x), groups=g, n_resamples=300, seed=1)
    vec = inf.cluster_bootstrap(v, lambda x: np.median(x, axis=-1), groups=g, n_resamples=300, seed=1,
                                vectorized=True)
    assert (vec.low, vec.high) == pytest.approx((loop.low, loop.high), rel=1e-10)
    assert loop.n_groups == 10 and loop.n_seeds == 1 and set(loop.components) == {"units"}


def test_draws_without_draw_axis_and_own_group_units():
    v = np.random.default_rng(0).normal(size=30)
    e = inf.cluster_bootstrap(v, n_resamples=500)
    assert e.n_groups is None and e.n_seeds == 1 and e.components["units"]["df"] == 29
    assert e.value == pytest.approx(v.mean())
    # a near-normal mean: the interval is about the t interval of the data
    from scipy.stats import t
    half = t.ppf(0.975, 29) * v.std(ddof=1) / np.sqrt(30)
    assert (e.high - e.low) / 2 == pytest.approx(half, rel=0.1)


def test_undefined_resamples_count_as_zero():
    y, docs = _design(3)
    full = y.mean()

    def with_nan(m):
        s = m.mean(-1)
        return np.where(s > full + 0.05, np.nan, s)

    def with_zero(m):
        s = m.mean(-1)
        return np.where(s > full + 0.05, 0.0, s)

    a = inf.nested_bootstrap(y, with_nan, docs=docs, n_resamples=300, vectorized=True)
    b = inf.nested_bootstrap(y, with_zero, docs=docs, n_resamples=300, vectorized=True)
    assert (a.value, a.low, a.high) == (b.value, b.low, b.high)
    nan_full = inf.nested_bootstrap(y, lambda m: float("nan"), docs=docs, n_resamples=50)
    assert np.isnan(nan_full.value) and np.isnan(nan_full.low) and inf.directional(nan_full) == "inconclusive"


def test_satterthwaite_construction_is_available():
    from scipy.stats import t

    y, docs = _design(5)
    b = inf.nested_bootstrap(y, docs=docs, n_resamples=300)
    s = inf.nested_bootstrap(y, docs=docs, n_resamples=300, construction="t-satterthwaite")
    assert s.components == b.components and s.construction == "t-satterthwaite"
    v = {k: c["var"] for k, c in s.components.items()}
    df = sum(v.values()) ** 2 / sum(v[k] ** 2 / c["df"] for k, c in s.components.items())
    assert s.df == pytest.approx(df)
    assert s.high - s.value == pytest.approx(t.ppf(0.975, df) * s.se)


# ---- bad input

def test_bad_input_names_the_experiment_and_the_shapes():
    y, docs = _design(0)                                  # (3, 20), 5 documents
    with pytest.raises(ValueError, match=r"ABL-1 on tiny: expected the documents id of each of the 20 units "
                                         r"\(arrays \{'x': \(3, 20\)\}\), got None"):
        inf.nested_bootstrap(y, docs=None, where="ABL-1 on tiny")
    with pytest.raises(ValueError, match=r"ABL-1 on tiny: expected documents ids of shape \(20,\) .*"
                                         r"\(3, 20\).*got shape \(19,\)"):
        inf.nested_bootstrap(y, docs=docs[:-1], where="ABL-1 on tiny")
    with pytest.raises(ValueError, match=r"ABL-1 on tiny: .*got shape \(3, 20\)"):
        inf.nested_bootstrap(y, docs=np.zeros((3, 20), int), where="ABL-1 on tiny")
    with pytest.raises(ValueError, match=r"ABL-1 on tiny: documents are a level of the bootstrap and need "
                                         r"at least 2; all 20 units .* come from 1"):
        inf.nested_bootstrap(y, docs=np.zeros(20, int), where="ABL-1 on tiny")
    with pytest.raises(ValueError, match=r"ABL-1 on tiny: draws are a level .* at least 2; got 1 .*\(1, 20\)"):
        inf.nested_bootstrap(y[:1], docs=docs, where="ABL-1 on tiny")
    with pytest.raises(ValueError, match=r"ABL-1 on tiny: draws=True needs arrays of shape .*\(20,\)"):
        inf.nested_bootstrap(y[0], docs=docs, where="ABL-1 on tiny")
    with pytest.raises(ValueError, match=r"ABL-1 on tiny: expected arrays sharing their last axis .*"
                                         r"\(3, 20\).*\(3, 19\)"):
        inf.nested_bootstrap({"a": y, "b": y[:, :-1]}, lambda m: 0.0, docs=docs, where="ABL-1 on tiny")
    with pytest.raises(ValueError, match=r"ABL-1 on tiny: expected the same number of draws"):
        inf.nested_bootstrap({"a": y, "b": y[:2]}, lambda m: 0.0, docs=docs, where="ABL-1 on tiny")
    with pytest.raises(ValueError, match=r"ABL-1 on tiny: expected integer or string documents ids, got "
                                         r"dtype float64"):
        inf.nested_bootstrap(y, docs=docs.astype(float), where="ABL-1 on tiny")
    bad = y.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"ABL-1 on tiny: the values hold NaN or infinite entries"):
        inf.nested_bootstrap(bad, docs=docs, where="ABL-1 on tiny")
    with pytest.raises(ValueError, match=r"ABL-1 on tiny: a default \(mean\) statistic needs exactly one"):
        inf.nested_bootstrap({"a": y, "b": y}, docs=docs, where="ABL-1 on tiny")
    with pytest.raises(ValueError, match=r"ABL-1 on tiny: expected n_resamples >= 2"):
        inf.nested_bootstrap(y, docs=docs, n_resamples=1, where="ABL-1 on tiny")
    with pytest.raises(ValueError, match=r"ABL-1 on tiny: expected construction in"):
        inf.nested_bootstrap(y, docs=docs, construction="bca", where="ABL-1 on tiny")
    with pytest.raises(ValueError, match=r"ABL-1 on tiny: expected the statistic to be a scalar or 1-D"):
        inf.nested_bootstrap(y, lambda m: np.ones((2, 2)), docs=docs, where="ABL-1 on tiny")
    with pytest.raises(ValueError, match=r"ABL-1 on tiny: expected the statistic to give 1 output"):
        inf.nested_bootstrap(y, lambda m: np.ones(3), docs=docs, vectorized=True, where="ABL-1 on tiny")


def test_cluster_bad_input():
    v = np.arange(10.0)
    with pytest.raises(ValueError, match=r"MOD-4 on tiny: expected units ids of shape \(10,\).*got shape \(9,\)"):
        inf.cluster_bootstrap(v, np.mean, groups=np.arange(9), where="MOD-4 on tiny")
    with pytest.raises(ValueError, match=r"MOD-4 on tiny: units are a level .* need at least 2"):
        inf.cluster_bootstrap(v, np.mean, groups=np.zeros(10, int), where="MOD-4 on tiny")
    with pytest.raises(ValueError, match=r"MOD-4 on tiny: units are a level .* need at least 2"):
        inf.cluster_bootstrap(v[:1], where="MOD-4 on tiny")
    with pytest.raises(ValueError, match=r"MOD-4 on tiny: vectorized=True needs units of equal size, got "
                                         r"sizes \[3, 7\]"):
        inf.cluster_bootstrap(v, lambda x: x.mean(-1), groups=np.repeat([0, 1], [3, 7]), vectorized=True,
                              where="MOD-4 on tiny")
    with pytest.raises(ValueError, match=r"BCL-2 on tiny: draws are a level"):
        inf.cluster_bootstrap(v[None], np.mean, draws=True, where="BCL-2 on tiny")


def test_zero_variance_levels_and_constant_data():
    """A level with no variance is fine (the other carries the interval); all-constant data give
    the constant with a zero-width interval, not a crash (there is no variation to carry)."""
    docs = np.repeat(np.arange(4), 3)
    same_draws = np.tile(np.arange(12.0), (3, 1))        # every draw alike: the draw level is 0
    e = inf.nested_bootstrap(same_draws, docs=docs, n_resamples=300)
    assert e.components["draws"]["var"] == pytest.approx(0, abs=1e-20)
    assert e.components["documents"]["var"] > 0 and e.low < e.value < e.high
    assert e.df == pytest.approx(3.0)                    # the documents' t alone
    for c in (0.0, 2.5):
        k = inf.nested_bootstrap(np.full((3, 12), c), docs=docs, n_resamples=50)
        assert (k.value, k.low, k.high, k.se) == (c, c, c, 0.0)
    assert inf.directional(inf.nested_bootstrap(np.zeros((3, 12)), docs=docs)) == "inconclusive"
    assert inf.nested_bootstrap(np.full((3, 12), 1.0), docs=docs, draws=True).df == float("inf")


def test_string_document_ids_and_unsorted_units():
    y, docs = _design(6)
    names = np.array([f"doc{j}" for j in docs])
    perm = np.random.default_rng(0).permutation(docs.size)
    a = inf.nested_bootstrap(y, docs=docs, n_resamples=200)
    b = inf.nested_bootstrap(y[:, perm], docs=names[perm], n_resamples=200)
    assert (b.value, b.low, b.high) == pytest.approx((a.value, a.low, a.high), rel=1e-10)


# ---- needed

def _est(value, comps, construction="t-banerjee"):
    half = 100.0
    return Estimate(value, value - half, value + half, 1000, components=comps, construction=construction)


def test_needed_by_hand_one_level():
    """One level, var 1 at 100 documents (df 99), effect 1: the half-width at n documents is
    ``t(0.975, n - 1) * sqrt(100 / n)``: 1.00074 at n = 386 and 0.99944 at 387, so 387."""
    from scipy.stats import t

    assert t.ppf(0.975, 385) * np.sqrt(100 / 386) > 1 > t.ppf(0.975, 386) * np.sqrt(100 / 387)
    need = inf.needed(_est(1.0, {"documents": {"var": 1.0, "n": 100, "df": 99.0}}))
    assert (need["level"], need["have"], need["needed"]) == ("documents", 100, 387)
    assert "about 387 documents (now 100)" in need["text"]
    assert inf.needed(_est(-1.0, {"documents": {"var": 1.0, "n": 100, "df": 99.0}}))["needed"] == 387


def test_needed_by_hand_two_levels_takes_the_smallest_growth():
    """Documents var 0.5 at 16 (df 15), draws var 0.1 at 3 (df 2), effect 2. Now: sqrt(2.1314**2 *
    0.5 + 4.3027**2 * 0.1) = 2.0305 > 2. 17 documents (df 16, var 0.5 * 16/17): sqrt(2.1199**2 *
    0.4706 + 1.8513) = 1.9915 < 2: growth 17/16. Draws need 4 (growth 4/3), so documents."""
    need = inf.needed(_est(2.0, {"documents": {"var": 0.5, "n": 16, "df": 15.0},
                                 "draws": {"var": 0.1, "n": 3, "df": 2.0}}))
    assert (need["level"], need["have"], need["needed"]) == ("documents", 16, 17)
    only_draws = needed_count(2.0, "draws", {"documents": {"var": 0.5, "n": 16, "df": 15.0},
                                              "draws": {"var": 0.1, "n": 3, "df": 2.0}}, 0.95, "t-banerjee")
    assert only_draws == 4


def test_needed_too_small_to_matter_at_any_affordable_size():
    comps = {"documents": {"var": 1.0, "n": 100, "df": 99.0}}
    need = inf.needed(_est(1.0, comps), affordable={"documents": 300})
    assert need["needed"] == 387
    assert "too small to matter at any size the tier can afford" in need["text"]
    assert "the tier affords 300" in need["text"]
    assert "too small" not in inf.needed(_est(1.0, comps), affordable={"documents": 400})["text"]


def test_needed_when_no_single_level_would_do_and_for_a_zero_effect():
    comps = {"documents": {"var": 1.0, "n": 16, "df": 15.0}, "draws": {"var": 1.0, "n": 3, "df": 2.0}}
    # growing documents leaves the draws' t(2) * 1 = 4.3 > 1; growing draws leaves t(15) * 1 = 2.13
    need = inf.needed(_est(1.0, comps))
    assert need["needed"] is None and "more of every level" in need["text"]
    zero = inf.needed([_est(1.0, comps), _est(0.0, comps)])
    assert zero["needed"] is None and "observed effect is 0" in zero["text"]


def test_needed_skips_decided_estimates_and_reports_the_worst():
    comps = {"documents": {"var": 1.0, "n": 100, "df": 99.0}}
    decided = Estimate(5.0, 1.0, 9.0, 10, components=comps)
    assert inf.needed(decided) == {}
    assert inf.needed(Estimate(1.0, -1.0, 3.0, 10)) == {}             # no components
    worse = inf.needed([_est(1.0, comps), _est(0.5, comps), decided])
    assert worse["needed"] > 387 and worse["level"] == "documents"
    sat = inf.needed(_est(1.0, comps, "t-satterthwaite"))
    assert sat["needed"] == 387                                       # one level: the same t


def test_needed_is_the_least_count_that_decides():
    """On a real estimate: at the count ``needed`` names, Banerjee's half-width (the level's variance
    scaled by have/needed, its df by (needed - 1)/(have - 1)) is below the effect; one fewer, not."""
    from scipy.stats import t

    rng = np.random.default_rng(11)
    docs = np.repeat(np.arange(16), 8)
    y = 0.3 + rng.normal(size=(3, docs.size)) + 0.2 * rng.normal(size=(3, 1)) + rng.normal(size=16)[docs]
    e = inf.nested_bootstrap(y, docs=docs, n_resamples=2000)
    assert e.low <= 0 <= e.high
    need = inf.needed(e)
    lvl, have, n = need["level"], need["have"], need["needed"]

    def half(count):
        out = 0.0
        for k, c in e.components.items():
            var, df = c["var"], c["df"]
            if k == lvl:
                var, df = var * have / count, df * (count - 1) / (have - 1)
            out += t.ppf(0.975, df) ** 2 * var
        return np.sqrt(out)

    assert half(n) < abs(e.value) <= half(n - 1)


# ---- properties

_nested_data = st.integers(2, 4).flatmap(lambda n_draws: st.lists(st.integers(1, 4), min_size=2, max_size=6).flatmap(
    lambda sizes: st.tuples(
        arrays(np.float64, (n_draws, sum(sizes)), elements=st.floats(-100, 100, allow_nan=False)),
        st.just(np.repeat(np.arange(len(sizes)), sizes)))))


@settings(max_examples=40, deadline=None)
@given(_nested_data, st.integers(0, 2**32 - 1), st.randoms(use_true_random=False))
def test_permuting_units_changes_nothing(data, seed, random):
    y, docs = data
    perm = np.array(random.sample(range(docs.size), docs.size))
    a = inf.nested_bootstrap(y, docs=docs, n_resamples=100, seed=seed)
    b = inf.nested_bootstrap(y[:, perm], docs=docs[perm], n_resamples=100, seed=seed)
    tol = 1e-9 * (1 + np.abs(y).max())
    assert b.value == pytest.approx(a.value, abs=tol)
    assert (b.low, b.high) == pytest.approx((a.low, a.high), abs=tol)


@settings(max_examples=40, deadline=None)
@given(_nested_data, st.floats(-1000, 1000, allow_nan=False), st.integers(0, 2**32 - 1))
def test_shifting_the_values_shifts_the_interval(data, c, seed):
    y, docs = data
    a = inf.nested_bootstrap(y, docs=docs, n_resamples=100, seed=seed)
    b = inf.nested_bootstrap(y + c, docs=docs, n_resamples=100, seed=seed)
    tol = 1e-7 * (1 + np.abs(y).max() + abs(c))
    assert b.value == pytest.approx(a.value + c, abs=tol)
    assert b.low == pytest.approx(a.low + c, abs=tol) and b.high == pytest.approx(a.high + c, abs=tol)


@settings(max_examples=40, deadline=None)
@given(_nested_data, st.integers(0, 2**32 - 1))
def test_identical_methods_give_a_zero_width_interval_at_0(data, seed):
    y, docs = data
    e = inf.nested_bootstrap({"a": y, "b": y.copy()}, lambda m: m["a"].mean(-1) - m["b"].mean(-1),
                             docs=docs, n_resamples=100, seed=seed, vectorized=True)
    assert (e.value, e.low, e.high) == (0.0, 0.0, 0.0)
    assert inf.directional(e) == "inconclusive"


@settings(max_examples=40, deadline=None)
@given(_nested_data, st.integers(0, 2**32 - 1))
def test_the_interval_holds_the_value_and_the_mean(data, seed):
    y, docs = data
    e = inf.nested_bootstrap(y, docs=docs, n_resamples=100, seed=seed)
    tol = 1e-9 * (1 + np.abs(y).max())
    assert e.low <= e.value <= e.high
    assert e.value == pytest.approx(y.mean(), abs=tol)
    assert e.n_groups in (None, int(docs.max()) + 1) and e.n_seeds == y.shape[0]
    assert min(c["df"] for c in e.components.values()) >= 1


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 12).flatmap(lambda n: st.tuples(
    arrays(np.float64, (3, n), elements=st.integers(-3, 3).map(float)),
    arrays(np.float64, (3, n), elements=st.floats(-10, 10, allow_nan=False)))))
def test_spearman_rows_matches_spearman(xy):
    x, y = xy
    rows = inf.spearman_rows(x, y)
    for i in range(3):
        one = inf.spearman(x[i], y[i])
        assert (np.isnan(rows[i]) and np.isnan(one)) or rows[i] == pytest.approx(one, abs=1e-9)


def test_spearman_rows_bad_input():
    with pytest.raises(ValueError, match=r"spearman_rows: expected two arrays of the same shape"):
        inf.spearman_rows(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"n >= 2"):
        inf.spearman_rows(np.ones(1), np.ones(1))


def test_percentile_construction_for_a_median_of_whole_numbers():
    # 30 clusters of sizes 5..7: every resampled median is a whole number (or a half) in [5, 7], so the
    # percentile interval stays on the data's own values, where a t interval would leave them
    sizes = np.repeat([5.0, 6.0, 7.0], 10)
    e = inf.cluster_bootstrap(sizes, np.median, construction="percentile", where="BCL-6 test")
    assert e.construction == "percentile" and e.value == 6.0
    assert 5.0 <= e.low <= 6.0 <= e.high <= 7.0
    with pytest.raises(ValueError, match="percentile"):
        inf.cluster_bootstrap(np.ones((3, 30)), np.median, draws=True, construction="percentile")
    with pytest.raises(ValueError, match="percentile"):
        inf.nested_bootstrap(np.ones(30), docs=np.arange(30), draws=False, construction="percentile")


def test_needed_names_the_part_of_a_several_part_rule():
    """With named parts, the answer says which part needs the most (the report shows it beside a
    headline that may be another part); one named estimate needs no name."""
    comps = {"documents": {"var": 1.0, "n": 100, "df": 99.0}}
    worse = inf.needed({"top1": _est(1.0, comps), "CE": _est(0.5, comps)})
    assert worse["part"] == "CE" and worse["text"].startswith("CE: about ")
    assert worse["needed"] == inf.needed(_est(0.5, comps))["needed"]
    assert "part" not in inf.needed({"top1": _est(1.0, comps)})
    zero = inf.needed({"a": _est(1.0, comps), "b": _est(0.0, comps)})
    assert zero["part"] == "b" and zero["text"] == "b: the observed effect is 0: no sample size would decide it"
