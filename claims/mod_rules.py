"""The MOD claims' statistics and decision rules (claims.md, MOD table, revision 2), as small functions
of arrays, so that each can be tested on inputs whose verdict is known by construction
(``tests/test_mod_claims.py``), each returning a :class:`claims._claim.Outcome`; and the few helpers
that turn one into a claim's outcome on a :class:`core.mod.result.ModResult` (:func:`measured`,
:func:`guarded`). Each claim's measurement sits next to its row in ``claims/test_modularity.py``.

Every interval comes from :func:`core.inference.cluster_bootstrap` (claims.md, "Intervals", revision
2) over the claim's units, with the units that share something resampled together:

- rows / subsets (MOD-1, MOD-2, MOD-5): one unit per subset;
- unordered pairs (MOD-3): one unit per pair {u, v}, both directions inside it;
- directed pairs (MOD-4, MOD-6, MOD-7): the off-diagonal entries O[u, v], grouped by unordered pair,
  so that both directions of a pair move together;
- (layer, subset) cells grouped by layer (MOD-8): the cells of one layer share its clustering and
  its null;
- layers (MOD-9, MOD-10).

2,000 resamples, seed 0; a resample on which a statistic is undefined counts as 0.
"""
from __future__ import annotations

import numpy as np

from claims._claim import Outcome, detail
from core import inference as inf
from core.mod.experiment import PER_LAYER_FRACTION
from core.mod.result import ModResult

__all__ = [
    "offdiag", "pair_groups", "rows_off_minus_diag", "spillover", "mod1", "mod2", "mod3", "mod4",
    "mod5", "mod6", "mod7", "mod8", "mod9", "mod10", "iqr", "outer_quarters", "PAPER_FRACTION",
    "measured", "guarded", "computed", "search_details", "auc_info",
]

#: MOD-5's paper values: mean +- sd of the selected fraction in percent (ViT 50% drop, Mistral 20% drop).
PAPER_FRACTION = {"image": (12.5, 6.0), "causal": (3.4, 2.6)}


# ---------------------------------------------------------------------------------------------
# helpers

def offdiag(m) -> np.ndarray:
    """Off-diagonal entries of a square matrix, row by row, shape (n * (n - 1),)."""
    m = np.asarray(m)
    return m[~np.eye(m.shape[0], dtype=bool)]


def pair_groups(n: int) -> np.ndarray:
    """The unordered pair {u, v} of every off-diagonal entry of an n x n matrix, in :func:`offdiag`
    order: ``g[k] == g[l]`` exactly when entries k and l are (u, v) and (v, u)."""
    i, j = np.nonzero(~np.eye(n, dtype=bool))
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return (lo * n + hi).astype(np.int64)


def _square(R, where: str) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] < 3:
        raise ValueError(f"{where}: expected a square matrix over at least 3 subsets, got shape {R.shape}")
    return R


def rows_off_minus_diag(R) -> np.ndarray:
    """Per row u: mean off-diagonal R[u, .] minus R[u, u], shape (n,)."""
    R = _square(R, "rows_off_minus_diag")
    n = R.shape[0]
    return (R.sum(1) - np.diag(R)) / (n - 1) - np.diag(R)


def spillover(R) -> float:
    """Spill-over S = (1 - mean off-diagonal R) / (1 - mean diagonal R): the share of the damage of
    pruning that lands on the other subsets (MOD-2, revision 2). 0: perfectly selective pruning; 1:
    the other subsets lose as much as the pruned one. NaN when the mean diagonal is at or above 1 (no
    damage to share)."""
    R = _square(R, "spillover")
    d = 1.0 - np.diag(R).mean()
    return float((1.0 - offdiag(R).mean()) / d) if d > 0 else float("nan")


def iqr(x) -> float:
    """Interquartile range (numpy's linear percentiles)."""
    q1, q3 = np.percentile(np.asarray(x, dtype=np.float64), [25, 75])
    return float(q3 - q1)


def outer_quarters(n_layers: int) -> np.ndarray:
    """MOD-10's layer labels: True for the first and last ``n_layers // 4`` layers, False for the
    middle half."""
    q = n_layers // 4
    out = np.zeros(n_layers, dtype=bool)
    out[:q] = True
    out[n_layers - q:] = True
    return out


# ---------------------------------------------------------------------------------------------
# the claims

def mod1(R, *, seed: int = 0) -> Outcome:
    """MOD-1: per row u, mean off-diagonal R[u, .] - R[u, u]; replicated if the mean over rows is > 0
    with its interval (bootstrap over rows) excluding 0."""
    d = rows_off_minus_diag(R)
    est = inf.cluster_bootstrap(d, seed=seed, where="MOD-1", group_level="rows")
    return Outcome(inf.directional(est), est, parts={"mean off-diagonal - diagonal": est},
                   details={"per row": d.round(4).tolist()},
                   sample_sizes={"rows": len(d)})


def mod2(R50, R80, *, seed: int = 0) -> Outcome:
    """MOD-2 (revision 2): spill-over S at the 80% target minus S at the 50% target (:func:`spillover`);
    replicated if > 0 with interval excluding 0, contradicted if < 0 with interval excluding 0.
    Bootstrap over rows: a resample draws subsets u and keeps their rows of both matrices (diagonal
    and off-diagonal entries)."""
    R50, R80 = _square(R50, "MOD-2"), _square(R80, "MOD-2")
    if R50.shape != R80.shape:
        raise ValueError(f"MOD-2: expected R at both targets over the same subsets, got {R50.shape} and {R80.shape}")
    n = R50.shape[0]

    def rows(R):
        return np.diag(R), (R.sum(1) - np.diag(R)) / (n - 1)

    (d50, o50), (d80, o80) = rows(R50), rows(R80)

    def s(off, diag) -> float:  # undefined (NaN, counted as 0) when the diagonal took no damage
        d = 1.0 - diag.mean()
        return (1.0 - off.mean()) / d if d > 0 else np.nan

    def stat(x):
        return s(x["o80"], x["d80"]) - s(x["o50"], x["d50"])

    est = inf.cluster_bootstrap({"d50": d50, "o50": o50, "d80": d80, "o80": o80}, stat, seed=seed,
                                where="MOD-2", group_level="rows")
    return Outcome(inf.directional(est), est, parts={"S(80%) - S(50%)": est},
                   details={"spill-over S at 50% drop": spillover(R50), "spill-over S at 80% drop": spillover(R80),
                    "mean off-diagonal R, 50% / 80% drop": [float(o50.mean()), float(o80.mean())],
                    "mean diagonal R, 50% / 80% drop": [float(d50.mean()), float(d80.mean())]},
                   sample_sizes={"rows": n})


def mod3(R, R_half1, R_half2, *, seed: int = 0) -> Outcome:
    """MOD-3: over unordered pairs {u, v}, Spearman rho(R[u,v], R[v,u]) (both orders of each pair, so
    the correlation is symmetric) > 0 with interval excluding 0, AND the mean asymmetry
    |R[u,v] - R[v,u]| exceeds the noise floor, the mean |R1[u,v] - R2[u,v]| between two R from
    disjoint collection samples and disjoint evaluation samples (revision 2): the excess
    (asymmetry - floor, per pair; the floor of a pair averages its two directions) > 0 with interval
    excluding 0. One bootstrap over unordered pairs gives both intervals."""
    R, R1, R2 = (_square(x, "MOD-3") for x in (R, R_half1, R_half2))
    iu, ju = np.triu_indices(R.shape[0], 1)
    a, b = R[iu, ju], R[ju, iu]
    noise = (np.abs(R1[iu, ju] - R2[iu, ju]) + np.abs(R1[ju, iu] - R2[ju, iu])) / 2

    def stat(x):
        rho = inf.spearman(np.concatenate([x["a"], x["b"]]), np.concatenate([x["b"], x["a"]]))
        return np.array([rho, np.abs(x["a"] - x["b"]).mean() - x["noise"].mean()])

    rho, excess = inf.cluster_bootstrap({"a": a, "b": b, "noise": noise}, stat, seed=seed, where="MOD-3",
                                        group_level="unordered pairs")
    rho = rho.within(-1.0, 1.0)
    parts = {"rho": rho, "excess asymmetry": excess}
    verdict = inf.all_of([inf.directional(rho), inf.directional(excess)])
    key = inf.decisive_directional(verdict, parts)
    return Outcome(verdict, parts[key], parts=parts,
                   details={"mean asymmetry |R[u,v] - R[v,u]|": float(np.abs(a - b).mean()),
                    "noise floor mean |R1[u,v] - R2[u,v]|": float(noise.mean())},
                   decided_by=key,
                   sample_sizes={"unordered pairs": len(a)})


def mod4(O, related, *, seed: int = 0) -> Outcome:
    """MOD-4: mean O over the a-priori related directed pairs minus the median O over all directed
    pairs; replicated if > 0 with interval excluding 0 (bootstrap over pairs, both directions of a
    pair together). ``related``: boolean (n, n), symmetric."""
    O = _square(O, "MOD-4")
    rel = np.asarray(related, dtype=bool)
    if rel.shape != O.shape:
        raise ValueError(f"MOD-4: expected the related-pair mask of shape {O.shape}, got {rel.shape}")
    o, r = offdiag(O), offdiag(rel).astype(np.float64)

    def stat(x):
        m = x["r"] > 0
        return x["o"][m].mean() - np.median(x["o"]) if m.any() else np.nan

    est = inf.cluster_bootstrap({"o": o, "r": r}, stat, groups=pair_groups(O.shape[0]), seed=seed,
                                where="MOD-4", group_level="pairs")
    return Outcome(inf.directional(est), est, parts={"related minus median": est},
                   details={"mean O, related (directed)": float(o[r > 0].mean()) if (r > 0).any() else None,
                    "median O, all (directed)": float(np.median(o))},
                   sample_sizes={"directed pairs": len(o), "unordered pairs": len(o) // 2,
                          "related directed pairs": int(r.sum())})


def mod5(fractions_pct, paper: tuple[float, float], *, seed: int = 0) -> Outcome:
    """MOD-5: the mean selected fraction across subsets (percent of MLP neurons); replicated if it
    lies within the paper's mean +- sd, read as: its interval (bootstrap over subsets) lies within
    it, endpoints included; otherwise inconclusive (a magnitude, not a direction)."""
    f = np.asarray(fractions_pct, dtype=np.float64)
    mean, sd = paper
    est = inf.cluster_bootstrap(f, seed=seed, where="MOD-5", group_level="subsets")
    inside = mean - sd <= est.low and est.high <= mean + sd
    return Outcome("replicated" if inside else "inconclusive", est, parts={"mean selected fraction": est},
                   details={"sd across subsets (percent)": float(f.std(ddof=1)),
                    "paper range (percent)": [round(mean - sd, 4), round(mean + sd, 4)]},
                   sample_sizes={"subsets": len(f)})


def mod6(O_trained, O_random, null, *, seed: int = 0) -> Outcome:
    """MOD-6: Spearman rho between the off-diagonal O of the trained model and of its random twin;
    replicated if rho > 0 with interval excluding 0 (bootstrap over pairs, both directions together)
    AND rho exceeds the 95th percentile of the size-matched null (``null``: rho with random neuron
    sets of the same sizes, :func:`core.mod.nulls.lottery_null`)."""
    ot, orr = offdiag(_square(O_trained, "MOD-6")), offdiag(_square(O_random, "MOD-6"))
    rho = inf.cluster_bootstrap({"t": ot, "r": orr}, lambda x: inf.spearman(x["t"], x["r"]),
                                groups=pair_groups(len(O_trained)), seed=seed, where="MOD-6",
                                group_level="pairs").within(-1.0, 1.0)
    null = np.asarray(null, dtype=np.float64)
    p95 = float(np.nanpercentile(null, 95)) if np.isfinite(null).any() else float("nan")
    beats = bool(rho.value > p95)
    verdict = inf.all_of([inf.directional(rho), "replicated" if beats else "inconclusive"])
    held_back_by_null = inf.directional(rho) == "replicated" and not beats
    return Outcome(verdict, rho, parts={"rho": rho},
                   details={"95th percentile of rho with size-matched random sets": p95, "rho beats the null": beats,
                    "null draws": int(np.isfinite(null).sum())},
                   decided_by="size-matched null (rho <= its 95th percentile)" if held_back_by_null else "rho",
                   sample_sizes={"directed pairs": len(ot), "unordered pairs": len(ot) // 2})


def mod7(O_trained, O_random, *, seed: int = 0) -> Outcome:
    """MOD-7: IQR of the off-diagonal O of the random twin minus that of the trained model; replicated
    if > 0 with interval excluding 0 (bootstrap over pairs, both directions together)."""
    ot, orr = offdiag(_square(O_trained, "MOD-7")), offdiag(_square(O_random, "MOD-7"))
    est = inf.cluster_bootstrap({"t": ot, "r": orr}, lambda x: iqr(x["r"]) - iqr(x["t"]),
                                groups=pair_groups(len(O_trained)), seed=seed, where="MOD-7", group_level="pairs")
    return Outcome(inf.directional(est), est, parts={"IQR random - IQR trained": est},
                   details={"IQR trained": iqr(ot), "IQR random twin": iqr(orr),
                            "median O trained": float(np.median(ot)),
                    "median O random twin": float(np.median(orr))},
                   sample_sizes={"directed pairs": len(ot), "unordered pairs": len(ot) // 2})


def mod8(auc_trained, auc_random, auc_null, *, seed: int = 0) -> Outcome:
    """MOD-8: per (layer, subset) cell, AUC(trained) - AUC(random twin) and AUC(trained) - null AUC;
    replicated if the mean of both is > 0 with intervals excluding 0. Cells are grouped by layer
    (they share its clustering and its null): a resample draws layers."""
    t, r, n = (np.asarray(a, dtype=np.float64) for a in (auc_trained, auc_random, auc_null))
    if not t.shape == r.shape == n.shape or t.ndim != 2:
        raise ValueError(f"MOD-8: expected three (n_layers, n_subsets) AUC arrays, got {t.shape}, {r.shape}, {n.shape}")
    layer = np.repeat(np.arange(t.shape[0]), t.shape[1])
    vs_r, vs_n = inf.cluster_bootstrap({"r": (t - r).ravel(), "n": (t - n).ravel()},
                                       lambda x: np.array([x["r"].mean(), x["n"].mean()]), groups=layer,
                                       seed=seed, where="MOD-8", group_level="layers")
    parts = {"AUC(trained) - AUC(random twin)": vs_r, "AUC(trained) - null AUC": vs_n}
    verdict = inf.directional([vs_r, vs_n])
    key = inf.decisive_directional(verdict, parts)
    return Outcome(verdict, parts[key], parts=parts,
                   details={"mean AUC trained / random / null": [float(t.mean()), float(r.mean()), float(n.mean())]},
                   decided_by=key,
                   sample_sizes={"(layer, subset) cells": int(t.size), "layers": int(t.shape[0])})


def mod9(auc_trained, *, seed: int = 0) -> Outcome:
    """MOD-9: Spearman rho(layer index, mean AUC over subsets) of the trained model; replicated if
    rho < 0 with interval (bootstrap over layers, revision 2) excluding 0."""
    auc = np.asarray(auc_trained, dtype=np.float64)
    per_layer = auc.mean(1)
    est = inf.cluster_bootstrap({"layer": np.arange(len(per_layer), dtype=np.float64), "auc": per_layer},
                                lambda x: inf.spearman(x["layer"], x["auc"]), seed=seed, where="MOD-9",
                                group_level="layers").within(-1.0, 1.0)
    return Outcome(inf.directional(est, direction=-1), est, parts={"rho(layer, AUC)": est},
                   details={"mean AUC per layer": per_layer.round(4).tolist()},
                   sample_sizes={"layers": len(per_layer)})


def mod10(auc_trained, *, seed: int = 0) -> Outcome:
    """MOD-10: mean AUC (over subsets) of the first and last quarter of layers minus that of the
    middle half; replicated if > 0 with interval (bootstrap over layers) excluding 0. A resample
    without an outer or a middle layer has no statistic (counts as 0)."""
    per_layer = np.asarray(auc_trained, dtype=np.float64).mean(1)
    outer = outer_quarters(len(per_layer)).astype(np.float64)

    def stat(x):
        o = x["outer"] > 0
        return x["auc"][o].mean() - x["auc"][~o].mean() if o.any() and (~o).any() else np.nan

    est = inf.cluster_bootstrap({"auc": per_layer, "outer": outer}, stat, seed=seed, where="MOD-10",
                                group_level="layers")
    return Outcome(inf.directional(est), est, parts={"outer minus middle": est},
                   details={"outer layers": np.flatnonzero(outer).tolist(),
                            "mean AUC per layer": per_layer.round(4).tolist()},
                   sample_sizes={"layers": len(per_layer)})


# ---------------------------------------------------------------------------------------------
# a claim's outcome on a ModResult

def measured(res: ModResult, out: Outcome, name: str, details: dict | None = None) -> Outcome:
    """``out`` (a rule's outcome) as a claim's: named ``name``, every part with its interval in the
    details (where there are several), then the rule's own details and ``details``; the sample sizes
    (the profile's, the subsets, evaluation units and documents per subset, then the rule's units) and
    the data."""
    groups = res.info.get("eval_halves", {}).get("groups", "documents").split()[0]
    sizes = {**{k: v for k, v in res.info.get("sizes", {}).items() if isinstance(v, (int, float))},
             "n_subsets": len(res.subsets),
             "evaluation units per subset (min)": int(res.eval_units.min()),
             "evaluation units per subset (max)": int(res.eval_units.max()),
             f"evaluation {groups} per subset (min)": int(res.eval_groups.min()),
             f"evaluation {groups} per subset (max)": int(res.eval_groups.max()),
             **out.sample_sizes}
    data = {**res.info.get("data", {}), "subsets": list(res.subsets),
            "subsets_note": res.info.get("subsets_note", ""), "profile": res.info.get("profile")}
    parts = {k: detail(e, "") for k, e in out.parts.items()} if len(out.parts) > 1 else {}
    return out.but(statistic_name=name, details={**parts, **out.details, **(details or {})}, sample_sizes=sizes,
                   seeds=[0], data=data, parts=dict(out.parts))


NAN = inf.Estimate(float("nan"), float("nan"), float("nan"), 0)


def guarded(targets: str | tuple = "primary"):
    """Decorator for a MOD claim's measurement ``f(res) -> Outcome``: the result is
    ``f(res, reading=None)``, which measures on ``res`` or on its alternate ``reading``
    (:meth:`core.mod.result.ModResult.alternate`), and returns ``inconclusive`` when a subset the claim
    needs has no selection at one of ``targets`` (``"primary"``: the primary target; a tuple: those
    targets; ``()``: none, for claims that need no search).

    The claims' rules are over every subset, and a subset whose target pruning every neuron cannot
    reach (or, under reading R1, whose lower count is 0) has no selected set in the paper's sense, so
    the verdict is then ``inconclusive`` and names those subsets. Its numbers are still given: the
    same statistic over the subsets that do have selections, labelled as informative only (a subset
    is never dropped by its outcome to make a verdict).
    """
    def wrap(compute):
        def measure(res: ModResult, reading: str | None = None) -> Outcome:
            res = res if reading is None else res.alternate(reading)
            need = [res.primary] if targets == "primary" else list(targets)
            failed = {t: res.failed(t) for t in need if res.failed(t)}
            if not failed:
                return compute(res)
            reason = "; ".join(f"target {t} ({res.targets[t]:.0%} of baseline top1): no selection for "
                               f"{', '.join(f)}" for t, f in failed.items())
            fractions = {t: [None if not np.isfinite(x) else float(x) for x in s.fraction]
                         for t, s in res.searches.items()}
            keep = res.reached(need)
            if len(keep) < 3:
                return Outcome("inconclusive", NAN, "no statistic: fewer than 3 subsets have a selection",
                               details={"inconclusive because": reason, "fractions found": fractions},
                               sample_sizes={"n_subsets": len(res.subsets), "subsets with a selection": len(keep)},
                               seeds=[0], data={"subsets": list(res.subsets)})
            m = compute(res.restrict(keep))
            return m.but(verdict="inconclusive",
                         statistic_name=m.statistic_name + f" [informative only: over the {len(keep)} of "
                                                           f"{len(res.subsets)} subsets that have a selection]",
                         details={"inconclusive because": reason, "fractions found": fractions, **m.details})

        measure.__name__, measure.__doc__ = compute.__name__, compute.__doc__
        return measure

    return wrap


def computed(res: ModResult, ran) -> list[str]:
    """The alternate readings both asked for (``ran``, the session's) and held by ``res``."""
    return sorted(set(ran) & set(res.readings))


def search_details(res: ModResult) -> dict:
    """Every search at the primary target: status, count, evaluations, final bracket (both counts
    and both relative top1), overshoot, and the measured diagonal R[u, u]."""
    return {f"search at {res.primary} (per subset)": res.search_table()}


def auc_info(res: ModResult) -> dict:
    """MoEfication's settings, for the details of MOD-8 to MOD-10."""
    return {"k (clusters per layer)": res.info["k"], "cluster size": res.info["cluster_size"],
            "per-layer fraction": PER_LAYER_FRACTION[res.kind], "W_in": res.info["w_in"]}
