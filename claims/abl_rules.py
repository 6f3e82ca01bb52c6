"""The ABL claims' statistics and decision rules (claims.md, ABL table, revision 2), as small functions
of an :class:`core.abl.ablation.AblationSweep` or of plain arrays. Each claim's measurement, next to
its row in ``claims/test_peak_ablation.py``, is built from them; ``tests/test_abl_claims.py`` runs them
on inputs whose verdict is known by construction.

Intervals (claims.md, "Intervals", revision 2): :func:`core.inference.nested_bootstrap`, the three
neuron draws and the evaluation documents levels of the bootstrap, methods paired on the same draw
and document; ABL-9's over neurons (:func:`core.inference.cluster_bootstrap`). Where a rule has
several parts, the headline statistic is the part that decided (:mod:`core.inference.rules`).
"""
from __future__ import annotations

import numpy as np

from claims._claim import Outcome, detail
from core import inference as inf
from core.abl.ablation import AblationSweep

PP = "percentage points"

#: ABL-9's two conditions (claims.md ABL-9): their names in the result.
CENTRED, OFF = "|peak| <= 0.25 std", "|peak| > 1 std"


def about(sweep: AblationSweep) -> dict:
    """The sample sizes, seeds and data of every ABL outcome on ``sweep`` (``Outcome`` fields)."""
    sizes = sweep.info.get("sizes", {})
    return {"sample_sizes": {"eval_units": sweep.n_units, "draws": len(sweep.seeds),
                             "eval_documents": int(np.unique(sweep.unit_docs).size), **sizes},
            "seeds": list(sweep.seeds), "data": sweep.info.get("data", "")}


def diff(sweep: AblationSweep, a: np.ndarray, b: np.ndarray) -> inf.Estimate:
    """a - b, each of shape (n_seeds, n_units): mean with its interval over draws and documents."""
    return inf.nested_bootstrap(a - b, docs=sweep.unit_docs, where=f"ABL {sweep.model}")


def several(sweep: AblationSweep, parts: dict, unit: str, *, at: str, direction: int = +1,
            units: dict | None = None) -> Outcome:
    """A rule of several parts, each a difference claimed > 0 (ABL-1/2/4/5/7/8): the verdict of
    :func:`core.inference.directional`, and the part that decided it as the headline."""
    verdict = inf.directional(list(parts.values()), direction=direction)
    part = inf.decisive_directional(verdict, parts, direction)
    units = units or {}
    return Outcome(verdict, parts[part], f"{part} at {at}, {units.get(part, unit)}", parts=parts,
                   details={k: detail(e, units.get(k, unit)) for k, e in parts.items()}, decided_by=part,
                   **about(sweep))


# ---------------------------------------------------------------------------------------------
# ABL-3


def peak_lowest_count(means: dict) -> np.ndarray:
    """Fractions at which the mean CE of peak is below those of mean and zero; ``means[m]`` has
    shape (..., n_fractions, n_draws) (leading axes: resamples). Returns shape (...)."""
    m = {k: v.mean(-1) for k, v in means.items()}
    return np.sum(m["peak"] < np.minimum(m["mean"], m["zero"]), axis=-1).astype(np.float64)


#: The methods ABL-3 compares peak with.
ABL3_OTHERS = ("mean", "zero")


def abl3_verdict(count: float, significantly_below: dict[str, list[bool]]) -> tuple[str, dict[str, int]]:
    """ABL-3's rule (claims.md ABL-3): replicated if peak is lowest at >= 6 of 9 fractions and no other
    method is significantly lower than peak at any fraction; contradicted if one other method is
    significantly lower than peak at >= 6 of the 9 fractions.

    Parameters
    ----------
    count : float
        Fractions (of 9) where peak's mean CE is the lowest.
    significantly_below : dict of str to list of bool
        Per other method, per fraction: is it significantly lower than peak there.

    Returns
    -------
    (verdict, {method: fractions where it is significantly lower than peak})
    """
    per_method = {m: int(sum(b)) for m, b in significantly_below.items()}
    if count >= 6 and not any(per_method.values()):
        return "replicated", per_method
    if any(n >= 6 for n in per_method.values()):
        return "contradicted", per_method
    return "inconclusive", per_method


# ---------------------------------------------------------------------------------------------
# ABL-6

#: ABL-6's equivalence margin (claims.md ABL-6), percentage points.
ABL6_MARGIN = 2.0


# ---------------------------------------------------------------------------------------------
# ABL-9

#: ABL-9's thresholds (claims.md ABL-9): percent of neurons at least this share.
ABL9_AT_LEAST = {CENTRED: 75.0, OFF: 1.0}


def abl9_verdict(ratio: np.ndarray, *, where: str = "ABL-9"):
    """ABL-9's two conditions on ``|peak| / std`` per neuron (bootstrap over neurons): >= 75% of
    neurons at or below 0.25 std AND >= 1% above 1 std.

    Returns
    -------
    (centred, off, parts, verdict)
        Both estimates in percent of neurons, each condition's own verdict ``{CENTRED: ..., OFF: ...}``
        and the conjunction's verdict.
    """
    centred = inf.cluster_bootstrap(100.0 * (ratio <= 0.25), where=where, group_level="neurons")
    off = inf.cluster_bootstrap(100.0 * (ratio > 1.0), where=where, group_level="neurons")
    parts = {CENTRED: inf.at_least(centred, ABL9_AT_LEAST[CENTRED]), OFF: inf.at_least(off, ABL9_AT_LEAST[OFF])}
    return centred, off, parts, inf.all_of(parts.values())


# ---------------------------------------------------------------------------------------------
# ABL-10


def curve_spearman(fractions):
    """``stat(means)``: Spearman rho of the per-draw means (shape (..., n_fractions, n_draws), leading
    axes: resamples) with the fraction, over every (fraction, draw) point; shape (...)."""
    f = np.asarray(fractions, dtype=np.float64)

    def stat(means: np.ndarray) -> np.ndarray:
        x = np.broadcast_to(np.repeat(f, means.shape[-1]), (*means.shape[:-2], means.shape[-2] * means.shape[-1]))
        return inf.spearman_rows(x, means.reshape(*means.shape[:-2], -1))

    return stat
