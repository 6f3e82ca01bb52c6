"""The ABL claims' statistics and decision rules (claims.md, ABL table, revision 2), as small functions
of an :class:`core.abl.ablation.AblationSweep` (or of plain arrays), each returning the claim's
:class:`claims._claim.Outcome`. ``claims/test_peak_ablation.py`` hands them the experiment;
``tests/test_abl_claims.py`` runs them on inputs whose verdict is known by construction.

Intervals (claims.md, "Intervals", revision 2): :func:`core.inference.nested_bootstrap`, the three
neuron draws and the evaluation documents levels of the bootstrap, methods paired on the same draw
and document; ABL-9's over neurons (:func:`core.inference.cluster_bootstrap`). Where a rule has
several parts, the headline statistic is the part that decided (:mod:`core.inference.rules`).
"""
from __future__ import annotations

import numpy as np

from claims._claim import Outcome, detail
from core import inference as inf
from core.abl.ablation import CONSTANT_METHODS, AblationSweep

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
# ABL-1, ABL-2

def peak_beats(sweep: AblationSweep, other: str) -> Outcome:
    """ABL-1 (``other="zero"``), ABL-2 (``"mean"``): at 50% pruned, top1(peak) - top1(other) and
    CE(other) - CE(peak), both claimed > 0 (percentage points; nats)."""
    parts = {f"top1(peak) - top1({other})": diff(sweep, sweep.top1_at("peak", 0.5), sweep.top1_at(other, 0.5)),
             f"CE({other}) - CE(peak)": diff(sweep, sweep.ce_at(other, 0.5), sweep.ce_at("peak", 0.5))}
    return several(sweep, parts, PP, at="50%", units={f"CE({other}) - CE(peak)": "nats"})


# ---------------------------------------------------------------------------------------------
# ABL-3

def abl3(sweep: AblationSweep) -> Outcome:
    """ABL-3: at each of 10%..90%, is CE(peak) the lowest of {peak, mean, zero}; the count of such
    fractions with its interval, and the fractions where another method is significantly lower."""
    fractions = [f for f in sweep.fractions if f > 0]
    ce = {m: np.stack([sweep.ce_at(m, f) for f in fractions]) for m in CONSTANT_METHODS}  # (F, S, U)
    lowest = inf.nested_bootstrap(ce, peak_lowest_count, docs=sweep.unit_docs, where=f"ABL-3 {sweep.model}",
                                  vectorized=True)
    details, below = {}, []
    for i, f in enumerate(fractions):
        pair = [diff(sweep, ce[m][i], ce["peak"][i]) for m in ("mean", "zero")]
        details[f"{f:.0%}: CE(mean) - CE(peak), CE(zero) - CE(peak)"] = [detail(e, "nats") for e in pair]
        below.append(any(e.high < 0 for e in pair))
    verdict, significant = abl3_verdict(lowest.value, below)
    details["fractions where another method is significantly lower than peak"] = significant
    return Outcome(verdict, lowest, "fractions (of 9) where CE(peak) is the lowest", details=details,
                   **about(sweep))


def peak_lowest_count(means: dict) -> np.ndarray:
    """Fractions at which the mean CE of peak is below those of mean and zero; ``means[m]`` has
    shape (..., n_fractions, n_draws) (leading axes: resamples). Returns shape (...)."""
    m = {k: v.mean(-1) for k, v in means.items()}
    return np.sum(m["peak"] < np.minimum(m["mean"], m["zero"]), axis=-1).astype(np.float64)


def abl3_verdict(count: float, significantly_below: list[bool]) -> tuple[str, int]:
    """ABL-3's rule: replicated if peak is lowest at >= 6 of 9 fractions and no other method is
    significantly lower anywhere; contradicted if another method is significantly lower at >= 6."""
    significant = int(sum(significantly_below))
    if count >= 6 and significant == 0:
        return "replicated", significant
    if significant >= 6:
        return "contradicted", significant
    return "inconclusive", significant


# ---------------------------------------------------------------------------------------------
# ABL-4, ABL-5

def abl4(sweep: AblationSweep) -> Outcome:
    """ABL-4: at 50%, top1(m) - top1(r) for every resampling variant r and m in {zero, mean, peak},
    all claimed > 0 (percentage points)."""
    resampling = [m for m in sweep.methods if m.startswith("resample")]
    parts = {f"top1({m}) - top1({r})": diff(sweep, sweep.top1_at(m, 0.5), sweep.top1_at(r, 0.5))
             for r in resampling for m in CONSTANT_METHODS}
    return several(sweep, parts, PP, at="50%")


def abl5(sweep: AblationSweep) -> Outcome:
    """ABL-5: at 90%, top1(token ids) minus top1 of each other resampling variant, and the same for CE
    (mirrored), all claimed > 0."""
    others = [m for m in sweep.methods if m.startswith("resample") and m != "resample-ids"]
    top1 = {f"top1(ids) - top1({o})": diff(sweep, sweep.top1_at("resample-ids", 0.9), sweep.top1_at(o, 0.9))
            for o in others}
    ce = {f"CE({o}) - CE(ids)": diff(sweep, sweep.ce_at(o, 0.9), sweep.ce_at("resample-ids", 0.9))
          for o in others}
    return several(sweep, {**top1, **ce}, PP, at="90%", units={k: "nats" for k in ce})


# ---------------------------------------------------------------------------------------------
# ABL-6

#: ABL-6's equivalence margin (claims.md ABL-6), percentage points.
ABL6_MARGIN = 2.0


def abl6(sweep: AblationSweep) -> Outcome:
    """ABL-6: at 50%, the three pairwise top1 differences of zero, mean and peak; equivalence with a
    margin of 2 percentage points; the headline is the pair farthest from 0."""
    pairs = [("peak", "mean"), ("peak", "zero"), ("mean", "zero")]
    ests = {f"top1({a}) - top1({b})": diff(sweep, sweep.top1_at(a, 0.5), sweep.top1_at(b, 0.5))
            for a, b in pairs}
    widest = inf.decisive_equivalence(ests)
    return Outcome(inf.equivalence(list(ests.values()), margin=ABL6_MARGIN), ests[widest],
                   f"the pair farthest from 0, {widest} at 50%, {PP}", parts=ests,
                   details={k: detail(e, PP) for k, e in ests.items()}, decided_by=widest, **about(sweep))


# ---------------------------------------------------------------------------------------------
# ABL-7, ABL-8

def abl7(sweep: AblationSweep) -> Outcome:
    """ABL-7: at 50%, top1(peak) - top1(mean) and top1(peak) - top1(zero), both claimed > 0."""
    parts = {f"top1(peak) - top1({m})": diff(sweep, sweep.top1_at("peak", 0.5), sweep.top1_at(m, 0.5))
             for m in ("mean", "zero")}
    return several(sweep, parts, PP, at="50%")


def abl8(sweep: AblationSweep) -> Outcome:
    """ABL-8: at 90%, CE(m) - CE(token ids) for every other method m, all claimed > 0 (nats)."""
    parts = {f"CE({m}) - CE(ids)": diff(sweep, sweep.ce_at(m, 0.9), sweep.ce_at("resample-ids", 0.9))
             for m in sweep.methods if m != "resample-ids"}
    return several(sweep, parts, "nats", at="90%")


# ---------------------------------------------------------------------------------------------
# ABL-9

#: ABL-9's thresholds (claims.md ABL-9): percent of neurons at least this share.
ABL9_AT_LEAST = {CENTRED: 75.0, OFF: 1.0}


def abl9(sweep: AblationSweep) -> Outcome:
    """ABL-9: per neuron |peak| / std on the collection data (every layer); >= 75% of neurons at or
    below 0.25 std AND >= 1% above 1 std (bootstrap over neurons)."""
    ratio = sweep.peak_over_std  # (n_neurons,), every layer
    centred, off, _, verdict = abl9_verdict(ratio, where=f"ABL-9 {sweep.model}")
    ests = {CENTRED: centred, OFF: off}
    decided = inf.decisive_threshold(verdict, ests, ABL9_AT_LEAST, side="at least")
    base = about(sweep)
    return Outcome(verdict, ests[decided], f"neurons with {decided}, percent",
                   parts={k: e.shifted(-ABL9_AT_LEAST[k]) for k, e in ests.items()},
                   details={CENTRED: detail(centred, "percent of neurons"), OFF: detail(off, "percent of neurons"),
                            "median |peak| / std": float(np.median(ratio)),
                            "diagnostics": sweep.info.get("diagnostics")},
                   decided_by=decided, seeds=base["seeds"], data=base["data"],
                   sample_sizes={**base["sample_sizes"], "neurons": int(ratio.size)})


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

def abl10(sweep: AblationSweep) -> Outcome:
    """ABL-10: for zero, mean and peak, Spearman rho of top1 with the fraction pruned (claimed < 0) and
    of CE with it (claimed > 0), over every (fraction, draw) point, documents resampled."""
    ests, signed = {}, {}
    for m in CONSTANT_METHODS:
        for metric, sign in (("top1", -1.0), ("ce", 1.0)):
            values = sweep.top1 if metric == "top1" else sweep.ce
            arr = np.swapaxes(values[sweep.methods.index(m)].astype(np.float64), 0, 1)  # (F, S, U)
            est = inf.nested_bootstrap(arr, curve_spearman(sweep.fractions), docs=sweep.unit_docs,
                                       where=f"ABL-10 {sweep.model}", vectorized=True).within(-1.0, 1.0)
            name = f"rho({metric}({m}), fraction)"
            ests[name], signed[name] = est, est.scaled(sign)
    verdict = inf.directional(list(signed.values()))
    name = inf.decisive_directional(verdict, signed)
    return Outcome(verdict, ests[name], f"{name} (Spearman rho)", parts=signed,
                   details={k: detail(e, "Spearman rho") for k, e in ests.items()}, decided_by=name,
                   **about(sweep))


def curve_spearman(fractions):
    """``stat(means)``: Spearman rho of the per-draw means (shape (..., n_fractions, n_draws), leading
    axes: resamples) with the fraction, over every (fraction, draw) point; shape (...)."""
    f = np.asarray(fractions, dtype=np.float64)

    def stat(means: np.ndarray) -> np.ndarray:
        x = np.broadcast_to(np.repeat(f, means.shape[-1]), (*means.shape[:-2], means.shape[-2] * means.shape[-1]))
        return inf.spearman_rows(x, means.reshape(*means.shape[:-2], -1))

    return stat
