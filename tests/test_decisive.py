"""Which part of a several-part rule decided its verdict (core.inference.rules, one function per rule
kind): hand-computed cases and Hypothesis properties (the chosen part exists and its own verdict is the
overall one)."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import inference as inf
from core.inference.estimate import Estimate


def E(value, low, high, n=10):
    return Estimate(value, low, high, n)


# ---- hand-computed cases ------------------------------------------------------------------------

def test_directional_by_hand():
    parts = {"a": E(2.0, 1.0, 3.0), "b": E(1.0, 0.2, 1.8)}
    assert inf.decisive_directional("replicated", parts) == "b"            # the weakest that holds
    bad = {"a": E(0.5, -1.0, 2.0), "b": E(-0.3, -0.5, -0.1), "c": E(-1.0, -2.0, -0.9)}
    assert inf.decisive_directional("contradicted", bad) == "c"            # farthest below 0
    undecided = {"a": E(2.0, 1.0, 3.0), "b": E(0.5, -1.0, 2.0), "c": E(0.1, -0.1, 0.3)}
    assert inf.decisive_directional("inconclusive", undecided) == "c"      # crossing, smallest value
    nan = {"a": E(2.0, 1.0, 3.0), "b": E(math.nan, math.nan, math.nan)}
    assert inf.decisive_directional("inconclusive", nan) == "b"            # no interval: undecided
    assert inf.decisive_directional("replicated", {"x": E(-2.0, -3.0, -1.0), "y": E(-1.0, -1.5, -0.5)},
                                    direction=-1) == "y"


def test_equivalence_by_hand():
    assert inf.decisive_equivalence({"a": E(0.1, -1.0, 1.2), "b": E(0.0, -1.9, 0.5)}) == "b"


def test_threshold_by_hand():
    # at most 0.5 (BCL-5): replicated -> the highest upper end; contradicted -> the highest lower end
    parts = {"a": E(0.1, 0.0, 0.2), "b": E(0.3, 0.1, 0.45)}
    assert inf.decisive_threshold("replicated", parts, 0.5, side="at most") == "b"
    over = {"a": E(1.0, 0.6, 1.4), "b": E(3.0, 2.0, 4.0), "c": E(0.1, 0.0, 0.2)}
    assert inf.decisive_threshold("contradicted", over, 0.5, side="at most") == "b"
    # at least, one threshold per part (ABL-9): 75% and 1%
    t = {"centred": 75.0, "off": 1.0}
    assert inf.decisive_threshold("contradicted", {"centred": E(50, 48, 52), "off": E(5, 4, 6)}, t,
                                  side="at least") == "centred"
    assert inf.decisive_threshold("inconclusive", {"centred": E(80, 76, 84), "off": E(1.2, 0.8, 1.6)}, t,
                                  side="at least") == "off"
    with pytest.raises(ValueError, match="side"):
        inf.decisive_threshold("replicated", parts, 0.5, side="below")
    with pytest.raises(ValueError, match="threshold for every part"):
        inf.decisive_threshold("replicated", parts, {"a": 0.5}, side="at most")


def test_band_by_hand():
    band = (5.0, 20.0)
    assert inf.band_verdict(E(6.0, 6.0, 7.0), band) == "replicated"
    assert inf.band_verdict(E(24.0, 24.0, 24.0), band) == "contradicted"
    assert inf.band_verdict(E(10.0, 4.0, 12.0), band) == "inconclusive"
    parts = {"news": E(6.0, 6.0, 7.0), "wiki": E(12.0, 10.0, 14.0)}
    assert inf.decisive_band("replicated", parts, band) == "news"           # nearest the edge
    assert inf.decisive_band("contradicted", {"news": E(24, 24, 24), "wiki": E(30, 29, 31)}, band) == "wiki"


def test_null_by_hand():
    verdicts = {"news": "replicated", "wiki": "replicated"}
    observed, p5, p95 = {"news": 0.9, "wiki": 0.8}, {"news": 0.1, "wiki": 0.1}, {"news": 0.3, "wiki": 0.7}
    assert inf.decisive_null("replicated", verdicts, observed, p5, p95) == "wiki"  # smallest margin


def test_empty_parts_are_an_error():
    for call in (lambda: inf.decisive_directional("replicated", {}), lambda: inf.decisive_equivalence({}),
                 lambda: inf.decisive({}, "replicated", len)):
        with pytest.raises(ValueError, match="one or more parts"):
            call()


# ---- properties ---------------------------------------------------------------------------------

finite = st.floats(-10, 10, allow_nan=False)


@st.composite
def estimates(draw):
    a, b = sorted((draw(finite), draw(finite)))
    if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:
        return E(math.nan, math.nan, math.nan)
    return E((a + b) / 2, a, b)


parts_st = st.dictionaries(st.text("abcdef", min_size=1, max_size=3), estimates(), min_size=1, max_size=6)


@given(parts_st, st.sampled_from([1, -1]))
def test_directional_chooses_a_part_that_carries_the_verdict(parts, direction):
    overall = inf.directional(list(parts.values()), direction=direction)
    k = inf.decisive_directional(overall, parts, direction)
    assert k in parts
    assert inf.directional(parts[k], direction=direction) == overall


@given(parts_st, st.floats(-5, 5, allow_nan=False), st.sampled_from(["at least", "at most"]))
def test_threshold_chooses_a_part_that_carries_the_verdict(parts, t, side):
    own = {k: ("inconclusive" if not (math.isfinite(e.low) and math.isfinite(e.high)) else
               inf.at_least(e, t) if side == "at least" else inf.at_most(e, t)) for k, e in parts.items()}
    overall = inf.all_of(own.values())
    k = inf.decisive_threshold(overall, parts, t, side=side)
    assert k in parts
    assert own[k] == overall if overall != "inconclusive" else own[k] != "replicated"


@given(parts_st, st.tuples(finite, finite).map(sorted))
def test_band_chooses_a_part_that_carries_the_verdict(parts, band):
    own = {k: inf.band_verdict(e, tuple(band)) for k, e in parts.items()}
    overall = inf.all_of(own.values())
    k = inf.decisive_band(overall, parts, tuple(band))
    assert own[k] == overall if overall != "inconclusive" else own[k] != "replicated"
