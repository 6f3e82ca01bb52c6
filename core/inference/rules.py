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
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from core.inference.estimate import VERDICTS, Estimate, _estimates


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
    ests = _estimates(estimates, "directional")
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
    ests = _estimates(estimates, "equivalence")
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
    _estimates(estimate, "at_least")
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
    _estimates(estimate, "at_most")
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
