"""Verdicts from intervals: the decision rules of the claims (claims.md, "Rules that hold for every
claim").

Verdicts are one of :data:`~core.inference.estimate.VERDICTS`:

- ``replicated``: the claimed effect holds and its interval excludes the null (equivalence claims:
  the interval lies inside the margin);
- ``contradicted``: the opposite effect holds and its interval excludes the null (equivalence
  claims: the interval lies wholly outside the margin);
- ``inconclusive``: anything else (NaN statistics included).

:func:`directional` (every difference has a sign), :func:`equivalence` (differences within a
margin), :func:`at_least` / :func:`at_most` (a threshold) and :func:`all_of` (a conjunction).

Where a rule has several parts (claims.md: "both differences", "all six differences", every corpus),
the result names the part that decided the verdict, and its headline statistic is that part. There is
one function per rule kind, each built on :func:`decisive`:

- :func:`decisive_directional`: differences claimed > 0 (or < 0);
- :func:`decisive_equivalence`: differences claimed within a margin;
- :func:`decisive_threshold`: statistics claimed at least / at most a threshold;
- :func:`decisive_band`: statistics claimed inside a band;
- :func:`decisive_null`: observed statistics claimed above a null distribution's percentile.

The chosen part is always one whose own verdict is the overall one (for ``inconclusive``: one not
replicated), and among those the one nearest to changing the verdict (replicated: the weakest that
still holds) or farthest into it (contradicted).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from core.inference.estimate import VERDICTS, Estimate, as_estimates


def directional(estimates: Estimate | Iterable[Estimate], *, direction: int = +1) -> str:
    """Verdict for claims that every difference has a sign (e.g. ABL-1, ABL-4, ABL-7).

    Rule (claims.md ABL-1, for ``direction=+1``): "replicated if both differences > 0 with
    intervals excluding 0; contradicted if either is < 0 with interval excluding 0". That is:
    ``replicated`` if every estimate has ``value > 0`` and ``low > 0``; ``contradicted`` if any
    estimate has ``value < 0`` and ``high < 0``; else ``inconclusive``. ``direction=-1`` mirrors the
    signs (claims that a difference is < 0).

    Parameters
    ----------
    estimates : Estimate or iterable of Estimate
        At least one.
    direction : {+1, -1}, default=+1

    Returns
    -------
    str
        One of :data:`VERDICTS`.

    Raises
    ------
    ValueError
        If no estimate is given or ``direction`` is not +1 or -1.
    """
    ests = as_estimates(estimates, "directional")
    if direction not in (1, -1):
        raise ValueError(f"directional: expected direction +1 or -1, got {direction!r}")

    def holds(e: Estimate) -> bool:
        return (e.value > 0 and e.low > 0) if direction == 1 else (e.value < 0 and e.high < 0)

    def opposite(e: Estimate) -> bool:
        return (e.value < 0 and e.high < 0) if direction == 1 else (e.value > 0 and e.low > 0)

    if all(holds(e) for e in ests):
        return "replicated"
    if any(opposite(e) for e in ests):
        return "contradicted"
    return "inconclusive"


def equivalence(estimates: Estimate | Iterable[Estimate], *, margin: float) -> str:
    """Verdict for claims that differences are negligible (e.g. ABL-6, margin 2 percentage points).

    Rule: ``replicated`` if every interval lies within ``[-margin, +margin]`` (endpoints included);
    ``contradicted`` if any interval lies wholly outside it (``low > margin`` or
    ``high < -margin``); else ``inconclusive``.

    Parameters
    ----------
    estimates : Estimate or iterable of Estimate
        At least one.
    margin : float
        > 0, in the estimates' units.

    Returns
    -------
    str
        One of :data:`VERDICTS`.

    Raises
    ------
    ValueError
        If no estimate is given or ``margin`` is not a positive finite number.
    """
    ests = as_estimates(estimates, "equivalence")
    if not (np.isfinite(margin) and margin > 0):
        raise ValueError(f"equivalence: expected a positive finite margin, got {margin!r}")
    if all(-margin <= e.low and e.high <= margin for e in ests):
        return "replicated"
    if any(e.low > margin or e.high < -margin for e in ests):
        return "contradicted"
    return "inconclusive"


def at_least(estimate: Estimate, threshold: float) -> str:
    """Verdict for "the statistic is at least ``threshold``" (e.g. ABL-9: >= 75% of neurons).

    Rule: ``replicated`` if ``low >= threshold``; ``contradicted`` if ``high < threshold``; else
    ``inconclusive``.

    Returns
    -------
    str
        One of :data:`VERDICTS`.
    """
    as_estimates(estimate, "at_least")
    if estimate.low >= threshold:
        return "replicated"
    if estimate.high < threshold:
        return "contradicted"
    return "inconclusive"


def at_most(estimate: Estimate, threshold: float) -> str:
    """Verdict for "the statistic is at most ``threshold``" (mirror of :func:`at_least`).

    Rule: ``replicated`` if ``high <= threshold``; ``contradicted`` if ``low > threshold``; else
    ``inconclusive``.

    Returns
    -------
    str
        One of :data:`VERDICTS`.
    """
    as_estimates(estimate, "at_most")
    if estimate.high <= threshold:
        return "replicated"
    if estimate.low > threshold:
        return "contradicted"
    return "inconclusive"


def all_of(verdicts: Iterable[str]) -> str:
    """Verdict of a conjunction ("A AND B"): ``replicated`` if every part is; ``contradicted`` if
    any part is; else ``inconclusive``.

    Raises
    ------
    ValueError
        If no verdict is given or one is not in :data:`VERDICTS`.
    """
    vs = list(verdicts)
    bad = [v for v in vs if v not in VERDICTS]
    if not vs or bad:
        raise ValueError(f"all_of: expected one or more of {VERDICTS}, got {vs!r}")
    if all(v == "replicated" for v in vs):
        return "replicated"
    if "contradicted" in vs:
        return "contradicted"
    return "inconclusive"


# ---------------------------------------------------------------------------------------------
# which part decided a several-part rule

def decisive(verdicts: dict[str, str], overall: str, key) -> str:
    """The part that decided ``overall``: among the parts whose own verdict is ``overall`` (for
    ``inconclusive``: the parts not replicated), the one with the smallest ``key(part)``; all parts
    when none qualifies.

    Parameters
    ----------
    verdicts : dict of str to str
        Each part's own verdict (one of :data:`VERDICTS`), in the rule's order (ties go to the first).
    overall : str
        The rule's verdict.
    key : callable
        ``key(part name) -> float``: smaller is more decisive.

    Raises
    ------
    ValueError
        If ``verdicts`` is empty.
    """
    if not verdicts:
        raise ValueError("decisive: expected one or more parts, got none")
    pool = [k for k, v in verdicts.items() if (v == overall if overall != "inconclusive" else v != "replicated")]
    return min(pool or list(verdicts), key=key)


def decisive_directional(overall: str, parts: dict[str, Estimate], direction: int = +1) -> str:
    """The part of a several-part directional rule (:func:`directional`) that decided ``overall``.

    ``parts`` maps a name to an Estimate of a difference claimed > 0 (``direction=+1``; ``-1``:
    claimed < 0). ``contradicted``: the part whose interval lies farthest on the wrong side;
    ``replicated``: the part whose interval lies closest to 0 (the weakest that still holds);
    ``inconclusive``: among the parts whose interval does not exclude 0 (NaN intervals included), the
    one with the smallest signed value (NaN first).

    Raises
    ------
    ValueError
        If ``parts`` is empty or ``direction`` is not +1 or -1.
    """
    if direction not in (1, -1):
        raise ValueError(f"decisive_directional: expected direction +1 or -1, got {direction!r}")
    if not parts:
        raise ValueError("decisive_directional: expected one or more parts, got none")
    signed = {k: e.scaled(direction) for k, e in parts.items()}
    if overall == "contradicted":
        below = [k for k, e in signed.items() if e.high < 0] or list(signed)
        return min(below, key=lambda k: signed[k].high)
    if overall == "replicated":
        return min(signed, key=lambda k: signed[k].low)
    crossing = [k for k, e in signed.items() if not (e.low > 0 or e.high < 0)] or list(signed)
    return min(crossing, key=lambda k: signed[k].value if np.isfinite(signed[k].value) else -np.inf)


def decisive_equivalence(parts: dict[str, Estimate]) -> str:
    """The part of an equivalence rule (:func:`equivalence`) that decided it: the one whose interval
    reaches farthest from 0 (replicated: the nearest to leaving the margin; otherwise the farthest
    outside it).

    Raises
    ------
    ValueError
        If ``parts`` is empty.
    """
    if not parts:
        raise ValueError("decisive_equivalence: expected one or more parts, got none")
    return max(parts, key=lambda k: max(abs(parts[k].low), abs(parts[k].high)))


def decisive_threshold(overall: str, parts: dict[str, Estimate], thresholds: dict[str, float] | float, *,
                       side: str) -> str:
    """The part of a several-part threshold rule (:func:`at_least` or :func:`at_most` per part,
    :func:`all_of` over them) that decided ``overall``.

    A part's margin is how far its interval lies on the claimed side of its threshold (``low - t``
    for at least, ``t - high`` for at most; NaN: -inf). ``replicated``: the part with the smallest
    margin; ``contradicted``: among the contradicted parts, the one lying farthest on the wrong side;
    ``inconclusive``: among the parts not replicated, the one with the smallest margin.

    Parameters
    ----------
    overall : str
    parts : dict of str to Estimate
    thresholds : float or dict of str to float
        One threshold for every part, or one per part.
    side : {"at least", "at most"}

    Raises
    ------
    ValueError
        If ``side`` is neither, or a part has no threshold.
    """
    if side not in ("at least", "at most"):
        raise ValueError(f"decisive_threshold: expected side 'at least' or 'at most', got {side!r}")
    t = thresholds if isinstance(thresholds, dict) else {k: float(thresholds) for k in parts}
    if missing := sorted(set(parts) - set(t)):
        raise ValueError(f"decisive_threshold: expected a threshold for every part, none for {missing}")
    up = side == "at least"

    def own(k: str) -> str:
        e = parts[k]
        if not (np.isfinite(e.low) and np.isfinite(e.high)):
            return "inconclusive"
        return at_least(e, t[k]) if up else at_most(e, t[k])

    def margin(k: str) -> float:
        e = parts[k]
        m = (e.low - t[k]) if up else (t[k] - e.high)
        return m if np.isfinite(m) else -np.inf

    def wrong_side(k: str) -> float:
        e = parts[k]
        return (e.high - t[k]) if up else (t[k] - e.low)

    return decisive({k: own(k) for k in parts}, overall, wrong_side if overall == "contradicted" else margin)


def decisive_band(overall: str, parts: dict[str, Estimate], band: tuple[float, float]) -> str:
    """The part of a several-part band rule (every interval inside ``band``, ends included;
    contradicted if one lies wholly outside) that decided ``overall``: replicated, the part nearest
    the band's edge; otherwise, among the parts with the overall verdict (inconclusive: not
    replicated), the one whose value lies farthest from the band's middle."""
    lo, hi = band
    mid = (lo + hi) / 2
    verdicts = {k: band_verdict(e, band) for k, e in parts.items()}

    def key(k):
        e = parts[k]
        if overall == "replicated":
            return min(e.low - lo, hi - e.high)
        return -abs(e.value - mid)

    return decisive(verdicts, overall, key)


def band_verdict(e: Estimate, band: tuple[float, float]) -> str:
    """One part of a band rule: ``replicated`` if its interval lies inside ``band`` (ends included),
    ``contradicted`` if wholly outside, else (NaN included) ``inconclusive``."""
    lo, hi = band
    if not (np.isfinite(e.low) and np.isfinite(e.high)):
        return "inconclusive"
    if lo <= e.low and e.high <= hi:
        return "replicated"
    if e.high < lo or e.low > hi:
        return "contradicted"
    return "inconclusive"


def decisive_null(overall: str, verdicts: dict[str, str], observed: dict[str, float],
                  low: dict[str, float], high: dict[str, float]) -> str:
    """The part of a several-part null rule (each observed statistic claimed above its null's upper
    percentile ``high``; contradicted below the lower one ``low``) that decided ``overall``:
    replicated or inconclusive, the part with the smallest ``observed - high``; contradicted, the
    part farthest below its ``low``."""
    def key(k):
        return observed[k] - low[k] if overall == "contradicted" else observed[k] - high[k]

    return decisive(verdicts, overall, key)
