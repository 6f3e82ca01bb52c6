"""Intervals and verdicts (core.inference): every branch of the verdict rules by hand, the bootstrap
against slow reference loops on the same draws, and properties."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core import inference as inf
from core.inference import Estimate


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
                           "components": None, "df": None, "construction": "percentile"}


# ---------------------------------------------------------------------------------------------
# paired bootstrap

def _reference_pooled(diffs: np.ndarray, n_resamples: int, seed: int, level: float = 0.95):
    """Slow loop: every resample pools all seeds of the drawn units, drawn all at once."""
    d = np.atleast_2d(diffs)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.shape[1], size=(n_resamples, d.shape[1]))
    stats = []
    for r in range(n_resamples):
        pooled = [d[s, j] for s in range(d.shape[0]) for j in idx[r]]
        stats.append(sum(pooled) / len(pooled))
    tail = 100 * (1 - level) / 2
    return np.percentile(stats, [tail, 100 - tail])


def test_constant_diffs_give_a_zero_width_interval():
    e = inf.paired_bootstrap(np.full((3, 50), 1.25))
    assert (e.value, e.low, e.high) == (1.25, 1.25, 1.25)
    assert (e.n_units, e.n_seeds, e.n_resamples, e.level) == (50, 3, 2000, 0.95)
    assert inf.directional([e]) == "replicated"


def test_pooling_over_seeds_matches_a_slow_reference_loop():
    d = np.random.default_rng(5).normal(0.3, 1.0, size=(3, 23))
    e = inf.paired_bootstrap(d, n_resamples=300, seed=11)
    low, high = _reference_pooled(d, 300, 11)
    assert e.value == pytest.approx(d.mean())
    assert (e.low, e.high) == pytest.approx((low, high), rel=1e-12, abs=1e-12)


def test_chunking_does_not_change_the_draws(monkeypatch):
    d = np.random.default_rng(6).normal(size=(2, 31))
    whole = inf.paired_bootstrap(d, n_resamples=257, seed=3)
    monkeypatch.setattr(inf, "_CHUNK_BYTES", 16 * 31 * 5)  # 5 resamples per chunk
    assert inf.paired_bootstrap(d, n_resamples=257, seed=3) == whole
    low, high = _reference_pooled(d, 257, 3)
    assert (whole.low, whole.high) == pytest.approx((low, high), rel=1e-12, abs=1e-12)


def test_seed_fixes_the_interval():
    d = np.random.default_rng(0).normal(size=200)
    a, b = inf.paired_bootstrap(d, seed=1), inf.paired_bootstrap(d, seed=1)
    c = inf.paired_bootstrap(d, seed=2)
    assert a == b
    assert (c.low, c.high) != (a.low, a.high)
    assert inf.paired_bootstrap(d, seed=np.random.default_rng(1)) == a


def test_a_clear_effect_is_detected_and_a_null_one_is_not():
    rng = np.random.default_rng(9)
    assert inf.directional(inf.paired_bootstrap(rng.normal(1.0, 1.0, size=(3, 400)))) == "replicated"
    assert inf.directional(inf.paired_bootstrap(rng.normal(-1.0, 1.0, size=400))) == "contradicted"
    null = inf.paired_bootstrap(np.tile([-1.0, 1.0], 200))
    assert null.low < 0 < null.high


def test_paired_bootstrap_bad_input():
    with pytest.raises(ValueError, match="at least 2 units"):
        inf.paired_bootstrap([1.0])
    with pytest.raises(ValueError, match="NaN or infinite"):
        inf.paired_bootstrap([1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="got \\(2, 2, 2\\)"):
        inf.paired_bootstrap(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="n_resamples"):
        inf.paired_bootstrap([1.0, 2.0], n_resamples=0)
    with pytest.raises(ValueError, match="level"):
        inf.paired_bootstrap([1.0, 2.0], level=1.0)


# ---------------------------------------------------------------------------------------------
# generic and multi-array bootstraps

def test_bootstrap_interval_matches_paired_bootstrap_on_the_same_draws():
    d = np.random.default_rng(2).normal(size=40)
    e = inf.paired_bootstrap(d, n_resamples=500, seed=4)
    low, high = inf.bootstrap_interval(lambda idx: d[idx].mean(), 40, n_resamples=500, seed=4)
    assert (low, high) == pytest.approx((e.low, e.high), rel=1e-12)


def test_bootstrap_many_keeps_arrays_paired_and_matches_a_reference_loop():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(2, 4, 30))   # e.g. (seeds, fractions, units)
    b = a + 0.5 + rng.normal(scale=0.1, size=a.shape)

    def stat(x):
        return np.array([(x["b"] - x["a"]).mean(), float((x["b"].mean(-1) > x["a"].mean(-1)).sum())])

    ests = inf.bootstrap_many({"a": a, "b": b}, stat, n_resamples=200, seed=8, n_seeds=2)
    assert isinstance(ests, tuple) and len(ests) == 2
    idx = np.random.default_rng(8).integers(0, 30, size=(200, 30))
    ref = np.array([stat({"a": a[..., i], "b": b[..., i]}) for i in idx])
    for k, e in enumerate(ests):
        assert e.value == pytest.approx(stat({"a": a, "b": b})[k])
        assert (e.low, e.high) == pytest.approx(tuple(np.percentile(ref[:, k], [2.5, 97.5])))
        assert (e.n_units, e.n_seeds, e.n_resamples) == (30, 2, 200)
    # the difference pools seeds like paired_bootstrap on the same draws
    e0 = inf.paired_bootstrap((b - a).mean(axis=1), n_resamples=200, seed=8)
    assert (ests[0].low, ests[0].high) == pytest.approx((e0.low, e0.high))


def test_bootstrap_many_scalar_statistic_gives_one_estimate():
    x = np.arange(10.0)
    e = inf.bootstrap_many({"x": x}, lambda a: a["x"].mean(), n_resamples=100)
    assert isinstance(e, Estimate) and e.value == 4.5 and e.low <= e.high


def test_bootstrap_many_bad_input():
    with pytest.raises(ValueError, match="at least one array"):
        inf.bootstrap_many({}, lambda a: 0.0)
    with pytest.raises(ValueError, match="last axis"):
        inf.bootstrap_many({"a": np.zeros(5), "b": np.zeros((2, 6))}, lambda a: 0.0)
    with pytest.raises(ValueError, match="scalar or 1-D"):
        inf.bootstrap_many({"a": np.zeros(5)}, lambda a: np.zeros((2, 2)))
    calls = iter(range(10**6))
    with pytest.raises(ValueError, match="output"):
        inf.bootstrap_many({"a": np.zeros(5)}, lambda a: np.zeros(1 + next(calls) % 2))


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

_diffs = st.integers(1, 3).flatmap(lambda s: st.integers(2, 40).flatmap(
    lambda u: arrays(np.float64, (s, u), elements=st.floats(-100, 100, allow_nan=False))))


@settings(max_examples=50, deadline=None)
@given(_diffs, st.integers(0, 2**32 - 1))
def test_interval_is_ordered_and_within_the_data(d, seed):
    e = inf.paired_bootstrap(d, n_resamples=200, seed=seed)
    unit_means = d.mean(axis=0)
    tol = 1e-9 * (1 + np.abs(d).max())
    assert e.low <= e.high
    assert unit_means.min() - tol <= e.low and e.high <= unit_means.max() + tol
    assert e.value == pytest.approx(d.mean(), abs=tol)


@settings(max_examples=50, deadline=None)
@given(_diffs, st.floats(-1000, 1000, allow_nan=False), st.integers(0, 2**32 - 1))
def test_shifting_the_diffs_shifts_the_estimate(d, c, seed):
    a = inf.paired_bootstrap(d, n_resamples=200, seed=seed)
    b = inf.paired_bootstrap(d + c, n_resamples=200, seed=seed)
    tol = 1e-9 * (1 + np.abs(d).max() + abs(c))
    assert b.value == pytest.approx(a.value + c, abs=tol)
    assert b.low == pytest.approx(a.low + c, abs=tol)
    assert b.high == pytest.approx(a.high + c, abs=tol)


@settings(max_examples=50, deadline=None)
@given(_diffs, st.integers(0, 2**32 - 1))
def test_constant_per_unit_diffs_give_the_constant(d, seed):
    c = float(d.flat[0])
    e = inf.paired_bootstrap(np.full_like(d, c), n_resamples=50, seed=seed)
    assert e.low == pytest.approx(c) and e.high == pytest.approx(c) and e.value == pytest.approx(c)
