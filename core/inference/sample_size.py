"""What an inconclusive verdict would need (claims.md, "Rules that hold for every claim": verdicts and
intervals): :func:`needed`, the count of one level (documents, draws, ...) at which an interval would exclude 0 if the effect held at its observed
size, from the level variances of an :class:`~core.inference.estimate.Estimate` and the interval's
own construction (:mod:`core.inference.levels`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from core.inference.estimate import Estimate, as_estimates
from core.inference.levels import critical_value


def needed(estimates: Estimate | Iterable[Estimate] | Mapping[str, Estimate], *,
           affordable: dict[str, int] | None = None) -> dict:
    """What an inconclusive verdict would need (claims.md, "Rules that hold for every claim").

    For every estimate whose interval contains 0, the smallest count of one level (documents,
    draws, ...) at which the interval would exclude 0 *if the effect held at its observed size and
    the level variances per unit stayed as measured*. Growing level ``L`` from ``n_L`` to ``n'``
    gives ``var_L' = var_L * n_L / n'`` and ``df_L' = df_L * (n' - 1) / (n_L - 1)``, the other
    levels unchanged, and the half-width of the estimate's own construction at those values:
    Banerjee's ``h(n') = sqrt(t(df_L')**2 * var_L' + sum_{l != L} t(df_l)**2 * var_l)``
    (Satterthwaite's: ``t(df') * se'`` with ``df'`` from the grown variances). The count is the
    least integer ``n' > n_L`` with ``|value| > h(n')`` (doubling, then bisection). It exists only
    if ``|value|`` exceeds the limit of ``h`` as ``n' -> inf`` (the other levels alone). Of the
    levels, the one needing the smallest relative growth ``n' / n_L`` is reported; of the
    estimates, the one needing the most (a claim needs every estimate decided).

    With ``var_L`` measured as in :func:`nested_bootstrap`, the interaction of draws and documents
    sits in both levels and is held fixed when one grows, so the count is, if anything, an
    overstatement.

    Parameters
    ----------
    estimates : Estimate, iterable of Estimate, or mapping of part name to Estimate
        Estimates with ``components`` (from :func:`nested_bootstrap` / :func:`cluster_bootstrap`);
        others are skipped. Named parts (a rule of several) let the answer say which part needs it.
    affordable : dict of level name to int, optional
        The largest count of each level the tier can afford (e.g. the ``paper`` profile's
        documents); a need above it reads "too small to matter at any size the tier can afford".

    Returns
    -------
    dict
        ``{"level", "have", "needed", "text"}``, and ``"part"`` (its name, which also opens the
        text) when ``estimates`` names two or more parts. ``needed`` is None and ``text`` says why when no
        size would do: a zero effect ("no sample size would decide it"), or an effect smaller than
        what the other levels alone leave ("more of every level would be needed"). ``{}`` when
        every interval already excludes 0, the value is NaN, or no estimate carries components.

    Raises
    ------
    ValueError
        If no Estimate is given.
    """
    if isinstance(estimates, Mapping):
        names = [str(k) for k in estimates]
        ests = as_estimates(list(estimates.values()), "needed")
    else:
        ests = as_estimates(estimates, "needed")
        names = [None] * len(ests)
    if len(ests) < 2:
        names = [None] * len(ests)
    worst: dict = {}
    for name, e in zip(names, ests):
        if not e.components or not (e.low <= 0 <= e.high) or not np.isfinite(e.value):
            continue
        if e.value == 0:
            return _named(name, {"level": None, "have": None, "needed": None,
                                 "text": "the observed effect is 0: no sample size would decide it"})
        best = None
        for lvl, c in e.components.items():
            n_new = needed_count(abs(e.value), lvl, e.components, e.level, e.construction)
            if n_new is not None and (best is None or n_new / c["n"] < best[3]):
                best = (lvl, int(c["n"]), n_new, n_new / c["n"])
        if best is None:
            cand = {"level": None, "have": None, "needed": None, "factor": np.inf,
                    "text": f"the observed effect ({e.value:.3g}) is too small for any single level "
                            f"to decide: more of every level would be needed"}
        else:
            lvl, have, n_new, factor = best
            cand = {"level": lvl, "have": have, "needed": n_new, "factor": factor,
                    "text": f"about {n_new} {lvl} (now {have}) would make the interval exclude 0 if "
                            f"the effect held at its observed size ({e.value:.3g})"}
            cap = (affordable or {}).get(lvl)
            if cap is not None and n_new > cap:
                cand["text"] = (f"the observed effect ({e.value:.3g}) is too small to matter at any "
                                f"size the tier can afford: it would need about {n_new} {lvl} "
                                f"(the tier affords {cap})")
        if not worst or cand["factor"] > worst["factor"]:
            worst = _named(name, cand)
    worst.pop("factor", None)
    return worst


def _named(name: str | None, answer: dict) -> dict:
    """``answer`` with the part it is about: ``"part"`` and the text opening with its name."""
    if name is None:
        return answer
    return {"part": name, **answer, "text": f"{name}: {answer['text']}"}


#: Largest count :func:`needed` searches.
_NEEDED_CAP = 10**12


def needed_count(effect: float, lvl: str, comps: dict, level: float, construction: str) -> int | None:
    """Least ``n' > n_L`` at which ``effect`` exceeds the half-width (see :func:`needed`), or None."""
    c = comps[lvl]
    var, n = float(c["var"]), float(c["n"])
    df_l = float(c.get("df", n - 1))
    if var <= 0 or n < 2 or df_l <= 0:
        return None
    rest = {k: (float(o["var"]), float(o.get("df", o["n"] - 1))) for k, o in comps.items()
            if k != lvl and o["var"] > 0}
    rest_var = sum(v for v, _ in rest.values())

    if construction == "t-banerjee":
        rest_half2 = sum(critical_value(level, d) ** 2 * v for v, d in rest.values())

        def half(n_new: float) -> float:
            return float(np.sqrt(critical_value(level, df_l * (n_new - 1) / (n - 1)) ** 2 * var * n / n_new
                                 + rest_half2))
        limit = np.sqrt(rest_half2)
    else:
        rest_den = sum(v ** 2 / d for v, d in rest.values())

        def half(n_new: float) -> float:
            v = var * n / n_new
            den = v ** 2 / (df_l * (n_new - 1) / (n - 1)) + rest_den
            return critical_value(level, (v + rest_var) ** 2 / den) * float(np.sqrt(v + rest_var))
        limit = critical_value(level, rest_var ** 2 / rest_den if rest_den > 0 else np.inf) * np.sqrt(rest_var)

    if effect <= limit:
        return None
    lo, hi = int(n), int(n) + 1
    while not effect > half(hi):
        lo, hi = hi, 2 * hi
        if hi > _NEEDED_CAP:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if effect > half(mid) else (mid, hi)
    return hi
