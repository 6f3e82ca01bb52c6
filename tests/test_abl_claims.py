"""ABL claim logic on known answers (claims.md, "ABL"): each claim's statistic-and-rule code runs on
small synthetic inputs whose verdict is known by construction, so that a mistake there fails here
instead of silently changing a verdict."""
from __future__ import annotations

import numpy as np
import pytest

from core.inference import decisive_directional as decisive
from claims.abl_rules import (CENTRED, OFF, abl3_verdict, abl9_verdict, curve_spearman,
                                       peak_lowest_count)
from core import inference as inf

FRACTIONS = tuple(round(0.1 * i, 1) for i in range(10))


# ABL-3 ---------------------------------------------------------------------------------------

def test_abl3_counting_by_hand():
    # 9 fractions x 3 draws of mean CE: peak lowest at fractions 0..5 (6 of 9), not at 6..8
    peak = np.full((9, 3), 2.0)
    mean = np.full((9, 3), 2.5)
    zero = np.full((9, 3), 3.0)
    peak[6:] = 4.0
    assert peak_lowest_count({"peak": peak, "mean": mean, "zero": zero}) == 6.0
    # a tie with another method is not "lowest"
    peak[0] = 2.5
    assert peak_lowest_count({"peak": peak, "mean": mean, "zero": zero}) == 5.0


@pytest.mark.parametrize("count, mean, zero, verdict", [
    (6, [False] * 9, [False] * 9, "replicated"),
    (9, [False] * 8 + [True], [False] * 9, "inconclusive"),   # lowest mostly, but significantly beaten once
    (5, [False] * 9, [False] * 9, "inconclusive"),
    (0, [True] * 6 + [False] * 3, [False] * 9, "contradicted"),
    (0, [False] * 3 + [True] * 6, [True] * 6 + [False] * 3, "contradicted"),
    (2, [True] * 5 + [False] * 4, [False] * 9, "inconclusive"),
    # 3 fractions where mean is lower plus 3 others where zero is: no ONE method at >= 6 (claims.md ABL-3)
    (0, [True] * 3 + [False] * 6, [False] * 3 + [True] * 3 + [False] * 3, "inconclusive"),
])
def test_abl3_rule_branches(count, mean, zero, verdict):
    assert abl3_verdict(count, {"mean": mean, "zero": zero}) == (verdict, {"mean": sum(mean), "zero": sum(zero)})


# ABL-9 ---------------------------------------------------------------------------------------

def _ratios(n: int, centred: float, off: float, seed: int = 0) -> np.ndarray:
    """n neurons: a share ``centred`` at |peak|/std 0.1, a share ``off`` at 2.0, the rest at 0.5."""
    r = np.full(n, 0.5)
    n_c, n_o = int(round(centred * n)), int(round(off * n))
    r[:n_c] = 0.1
    r[n_c:n_c + n_o] = 2.0
    return np.random.default_rng(seed).permutation(r)


def test_abl9_both_conditions_hold():
    centred, off, parts, verdict = abl9_verdict(_ratios(4000, 0.90, 0.05))
    assert verdict == "replicated" and parts == {CENTRED: "replicated", OFF: "replicated"}
    assert centred.value == pytest.approx(90.0) and off.value == pytest.approx(5.0)


def test_abl9_too_few_centred_contradicts():
    _, _, parts, verdict = abl9_verdict(_ratios(4000, 0.40, 0.05))
    assert verdict == "contradicted" and parts[CENTRED] == "contradicted"


def test_abl9_no_off_centre_minority_contradicts():
    _, _, parts, verdict = abl9_verdict(_ratios(4000, 0.95, 0.0))
    assert verdict == "contradicted" and parts == {CENTRED: "replicated", OFF: "contradicted"}


def test_abl9_borderline_is_inconclusive():
    _, _, parts, verdict = abl9_verdict(_ratios(200, 0.75, 0.05))
    assert verdict == "inconclusive" and parts[CENTRED] == "inconclusive"


# ABL-10 --------------------------------------------------------------------------------------

def _curve(slope: float, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(F, S, U) values rising with the fraction at ``slope`` per unit fraction; 16 documents."""
    rng = np.random.default_rng(seed)
    f = np.asarray(FRACTIONS)[:, None, None]
    y = slope * f + noise * rng.normal(size=(len(FRACTIONS), 3, 256))
    return y, np.repeat(np.arange(16), 16)


@pytest.mark.parametrize("slope, verdict", [(5.0, "replicated"), (-5.0, "contradicted")])
def test_abl10_sign(slope, verdict):
    ce, docs = _curve(slope, 1.0)
    est = inf.nested_bootstrap(ce, curve_spearman(FRACTIONS), docs=docs, vectorized=True)
    assert (est.value > 0.9) == (slope > 0) and (est.value < -0.9) == (slope < 0)
    # top1 falls with the fraction: the rule flips its sign before the directional verdict
    assert inf.directional([est]) == verdict
    assert inf.directional([est.scaled(-1.0)]) == {"replicated": "contradicted",
                                                   "contradicted": "replicated"}[verdict]


def test_abl10_flat_curve_is_not_replicated():
    ce, docs = _curve(0.0, 1.0, seed=3)
    est = inf.nested_bootstrap(ce, curve_spearman(FRACTIONS), docs=docs, vectorized=True)
    assert inf.directional([est]) != "replicated"


# the part that decided ---------------------------------------------------------------------

def test_decisive_names_the_part_that_decided():
    top1 = inf.Estimate(0.5, -1.0, 2.0, 100)      # crosses 0
    ce = inf.Estimate(-0.3, -0.5, -0.1, 100)      # excludes 0, below
    parts = {"top1": top1, "CE": ce}
    verdict = inf.directional(list(parts.values()))
    assert verdict == "contradicted" and decisive(verdict, parts) == "CE"
    good = {"a": inf.Estimate(2.0, 1.0, 3.0, 10), "b": inf.Estimate(1.0, 0.2, 1.8, 10)}
    assert decisive("replicated", good) == "b"
    assert decisive("inconclusive", {"a": inf.Estimate(2.0, 1.0, 3.0, 10), "b": top1}) == "b"
