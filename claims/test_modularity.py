"""MOD: modularity in transformers, neuron separability and specialization (Pochinkov, Jones, Rahman 2024).

One test per row of the MOD table of ``../shared/claims.md``, parametrized as the catalogue assigns
them: claims about "ViT" run on the image transformers, those about "decoders" on the causal LMs, the
others on both. Every test reads the same experiment (:func:`core.modularity.mod_experiment`: selective
pruning of MLP neurons per subset against the balanced reference set, the bisection on the pruned
fraction, cross-pruning matrices, overlaps, MoEfication clusters and Lorenz AUCs, on the model and on
its random twin), computes the catalogue's statistic with its bootstrap over the claim's units (rows,
pairs, layers or (layer, subset) cells; 2,000 resamples, seed 0) and hands the verdict to ``conclude``.

A search that does not reach its target for some subset (an unreachable target, or no fraction within
tolerance down to one-neuron resolution or within the evaluation budget) makes every claim that needs
that search ``inconclusive``, naming the subsets; the statistic over the subsets that did reach their
targets is still reported, labelled informative only (:func:`guarded`).
"""
from __future__ import annotations

import numpy as np
import pytest

from claims._claim import Claim, Measurement, detail, per_model
from core import inference as inf
from core.modularity import PER_LAYER_FRACTION, ModResult, mod_experiment, offdiag

PP = "percentage points"
REL = "relative top1 (ratio to baseline)"
DECODERS, VIT, BOTH = ("causal",), ("image",), ("causal", "image")


def claim(id, statement, measured, rule, paper_value, kinds) -> Claim:
    return Claim(id, statement, measured, rule, paper_value, kinds, paper="MOD")


@pytest.fixture(scope="session")
def mod(profile, device, pytestconfig):
    """``mod(model) -> ModResult``, computed once per session (and cached on disk)."""
    return per_model(pytestconfig, lambda model: mod_experiment(model, profile, device=device),
                     lambda model, res: {f"mod-{model}": res.curves()})


def measurement(res: ModResult, verdict: str, headline: inf.Estimate, name: str, details: dict,
                units: dict | None = None) -> Measurement:
    sizes = {**res.info.get("sizes", {}), "n_subsets": len(res.subsets), **(units or {})}
    data = {**res.info.get("data", {}), "subsets": list(res.subsets),
            "subsets_note": res.info.get("subsets_note", ""), "profile": res.info.get("profile")}
    return Measurement(verdict=verdict, statistic=headline, statistic_name=name, details=details,
                       sample_sizes=sizes, seeds=[0], data=data)


NAN = inf.Estimate(float("nan"), float("nan"), float("nan"), 0)


def guarded(res: ModResult, targets: list[str], compute) -> Measurement:
    """``compute(res)``, or ``inconclusive`` when a search the claim needs failed for some subset.

    The claims' rules are over every subset, and a subset whose target no fraction reaches has no
    selected set in the paper's sense, so the verdict is then ``inconclusive`` and says which searches
    failed. Its numbers are still given: the same statistic over the subsets whose searches all
    reached their targets, labelled as informative only (a subset is never dropped by its outcome to
    make a verdict).
    """
    failed = {t: res.failed(t) for t in targets if res.failed(t)}
    if not failed:
        return compute(res)
    reason = "; ".join(f"target {t} ({res.targets[t]:.0%} of baseline top1) not reached for "
                       f"{', '.join(f)}" for t, f in failed.items())
    fractions = {t: [None if not np.isfinite(x) else float(x) for x in res.fraction(t)] for t in res.targets}
    keep = res.reached(targets)
    if len(keep) < 3:
        return measurement(res, "inconclusive", NAN, "no statistic: fewer than 3 subsets reached the target",
                           {"inconclusive because": reason, "fractions found": fractions})
    m = compute(res.restrict(keep))
    m.verdict = "inconclusive"
    m.statistic_name += (f" [informative only: over the {len(keep)} of {len(res.subsets)} subsets whose "
                         f"search reached the target]")
    m.details = {"inconclusive because": reason, "fractions found": fractions, **m.details}
    return m


def _rows_off_minus_diag(R: np.ndarray) -> np.ndarray:
    n = R.shape[0]
    off = (R.sum(1) - np.diag(R)) / (n - 1)
    return off - np.diag(R)


# ---------------------------------------------------------------------------------------------

MOD_1 = claim("MOD-1", "Pruning a subset's selected neurons hurts that subset more than others",
              "relative-accuracy matrix R[u, v] = top1 on v after pruning for u / baseline top1 on v; "
              "per row u: mean off-diagonal R[u, .] - R[u, u]",
              "replicated if the mean over rows is > 0 with interval (bootstrap over rows) excluding 0",
              "Figs. 1-2", BOTH)


@pytest.mark.parametrize("model", MOD_1.models())
def test_mod_1_pruning_hurts_the_pruned_subset_most(model, mod, conclude):
    res = mod(model)
    name = f"mean over rows of mean off-diagonal R[u, .] - R[u, u] at {res.primary}, {REL}"

    def compute(res):
        d = _rows_off_minus_diag(res.R())
        est = inf.paired_bootstrap(d)
        return measurement(res, inf.directional(est), est, name,
                           {"per row": dict(zip(res.subsets, d.round(4).tolist())),
                            "mean diagonal R[u, u]": float(np.diag(res.R()).mean()),
                            "selected fraction (percent of MLP neurons)": dict(
                                zip(res.subsets, (100 * res.fraction()).round(3).tolist()))},
                           {"rows": len(d)})

    conclude(MOD_1, model, guarded(res, [res.primary], compute))


# ---------------------------------------------------------------------------------------------

MOD_2 = claim("MOD-2", "Selectivity falls as the target drop grows (ViT)",
              "mean off-diagonal R at 80% target minus at 50% target",
              "replicated if < 0 with interval excluding 0 (bootstrap over rows)", "Fig. 1, left vs right", VIT)


@pytest.mark.parametrize("model", MOD_2.models())
def test_mod_2_selectivity_falls_with_the_target_drop(model, mod, conclude):
    res = mod(model)
    name = f"mean over rows of mean off-diagonal R at 80% drop minus at 50% drop, {REL}"

    def compute(res):
        n = len(res.subsets)
        off = {t: (res.R(t).sum(1) - np.diag(res.R(t))) / (n - 1) for t in ("drop50", "drop80")}
        est = inf.paired_bootstrap(off["drop80"] - off["drop50"])
        return measurement(res, inf.directional(est, direction=-1), est, name,
                           {"mean off-diagonal R, 50% drop": float(off["drop50"].mean()),
                            "mean off-diagonal R, 80% drop": float(off["drop80"].mean())}, {"rows": n})

    conclude(MOD_2, model, guarded(res, ["drop50", "drop80"], compute))


# ---------------------------------------------------------------------------------------------

MOD_3 = claim("MOD-3", "Cross-effects are asymmetric but correlated",
              "pairs u != v: Spearman rho(R[u,v], R[v,u]); and mean abs(R[u,v] - R[v,u])",
              "replicated if rho > 0 with interval excluding 0 AND the mean asymmetry exceeds the mean "
              "abs(R1[u,v] - R2[u,v]) between two R computed from disjoint collection samples "
              "(bootstrap over unordered pairs; the excess with its interval excluding 0)",
              "section 3.1", BOTH)


@pytest.mark.parametrize("model", MOD_3.models())
def test_mod_3_cross_effects_are_asymmetric_but_correlated(model, mod, conclude):
    res = mod(model)
    name = "Spearman rho(R[u,v], R[v,u]) over pairs u != v"

    def compute(res):
        R1, R2 = res.R(), res.arrays["R_B"]
        iu, ju = np.triu_indices(len(res.subsets), 1)
        a, b = R1[iu, ju], R1[ju, iu]
        noise = (np.abs(R1[iu, ju] - R2[iu, ju]) + np.abs(R1[ju, iu] - R2[ju, iu])) / 2
        rho = inf.bootstrap_many({"a": a, "b": b}, lambda x: inf.spearman(
            np.concatenate([x["a"], x["b"]]), np.concatenate([x["b"], x["a"]])))
        excess = inf.paired_bootstrap(np.abs(a - b) - noise)
        return measurement(res, inf.all_of([inf.directional(rho), inf.directional(excess)]), rho, name,
                           {"rho(R[u,v], R[v,u])": detail(rho, "Spearman rho"),
                            "mean |R[u,v] - R[v,u]| - mean |R1 - R2| (sample A vs B)": detail(excess, REL),
                            "mean asymmetry |R[u,v] - R[v,u]|": float(np.abs(a - b).mean()),
                            "mean |R1[u,v] - R2[u,v]|": float(noise.mean())},
                           {"unordered pairs": len(a)})

    conclude(MOD_3, model, guarded(res, [res.primary], compute))


# ---------------------------------------------------------------------------------------------

MOD_4 = claim("MOD-4", "Related subsets share neurons",
              "overlap O[u,v] = abs(N_u & N_v) / abs(N_u); mean O over the a-priori related pairs listed "
              "for the data family minus the median O over all pairs",
              "replicated if > 0 with interval (bootstrap over pairs) excluding 0",
              "insects/invertebrates, fish/aquatic mammals/reptiles, vehicles 1/2, PubMed/NIH, "
              "Ubuntu IRC/HackerNews", BOTH)


@pytest.mark.parametrize("model", MOD_4.models())
def test_mod_4_related_subsets_share_neurons(model, mod, conclude):
    from core.data import related_pairs

    res = mod(model)
    name = "mean O over related pairs minus median O over all pairs (both directions)"

    def compute(res):
        pairs = related_pairs(res.subsets)  # every family's pairs among the subsets (CIFAR-20, Pile on full)
        O = res.overlap()
        n = len(res.subsets)
        related = np.zeros((n, n), dtype=bool)
        for u, v in pairs:
            i, j = res.subsets.index(u), res.subsets.index(v)
            related[i, j] = related[j, i] = True
        o, r = offdiag(O), offdiag(related).astype(np.float64)
        est = inf.bootstrap_many({"o": o, "r": r}, lambda x: (
            x["o"][x["r"] > 0].mean() - np.median(x["o"]) if (x["r"] > 0).any() else np.nan))
        return measurement(res, inf.directional(est), est, name,
                           {"related pairs": [f"{u} / {v}" for u, v in pairs],
                            "mean O, related (directed)": float(o[r > 0].mean()),
                            "median O, all (directed)": float(np.median(o))},
                           {"directed pairs": len(o), "related directed pairs": int(r.sum())})

    conclude(MOD_4, model, guarded(res, [res.primary], compute))


# ---------------------------------------------------------------------------------------------

MOD_5 = claim("MOD-5", "A class's selected neurons are a small, stable fraction",
              "mean and sd of the selected fraction across subsets",
              "replicated if the mean lies within the paper's mean +- sd for that model family (read as: "
              "its interval, bootstrap over subsets, lies within it); otherwise inconclusive (a magnitude, "
              "not a direction)",
              "ViT 12.5 +- 6.0% (50% drop); Mistral 3.4 +- 2.6% (20% drop)", BOTH)
PAPER_FRACTION = {"image": (12.5, 6.0), "causal": (3.4, 2.6)}


@pytest.mark.parametrize("model", MOD_5.models())
def test_mod_5_selected_fraction_is_small_and_stable(model, mod, conclude):
    res = mod(model)
    name = f"mean selected fraction across subsets at {res.primary}, percent of MLP neurons"

    def compute(res):
        f = 100 * res.fraction()
        est = inf.paired_bootstrap(f)
        mean, sd = PAPER_FRACTION[res.kind]
        inside = mean - sd <= est.low and est.high <= mean + sd
        return measurement(res, "replicated" if inside else "inconclusive", est, name,
                           {"sd across subsets (percent)": float(f.std(ddof=1)),
                            "paper range (percent)": [round(mean - sd, 4), round(mean + sd, 4)],
                            "per subset (percent)": dict(zip(res.subsets, f.round(3).tolist())),
                            "evaluations per search": dict(zip(res.subsets,
                                                               res.arrays[f"evals_{res.primary}"].tolist()))},
                           {"subsets": len(f)})

    conclude(MOD_5, model, guarded(res, [res.primary], compute))


# ---------------------------------------------------------------------------------------------

MOD_6 = claim("MOD-6", "Overlap patterns persist from random init (weak lottery ticket)",
              "Spearman rho between the off-diagonal O of the trained model and of its random twin",
              "replicated if rho > 0 with interval excluding 0 (bootstrap over pairs) AND rho exceeds the "
              "95th percentile of rho computed with size-matched random neuron sets", "Figs. 3-5", BOTH)


@pytest.mark.parametrize("model", MOD_6.models())
def test_mod_6_overlap_patterns_persist_from_random_init(model, mod, conclude):
    res = mod(model)
    name = "Spearman rho(off-diagonal O trained, off-diagonal O random twin)"

    def compute(res):
        ot, orr = offdiag(res.overlap()), offdiag(res.overlap(random=True))
        rho = inf.bootstrap_many({"t": ot, "r": orr}, lambda x: inf.spearman(x["t"], x["r"]))
        null = res.arrays["lottery_null"]
        p95 = float(np.nanpercentile(null, 95))
        beats = "replicated" if rho.value > p95 else "inconclusive"
        return measurement(res, inf.all_of([inf.directional(rho), beats]), rho, name,
                           {"rho": detail(rho, "Spearman rho"),
                            "95th percentile of rho with size-matched random sets": p95,
                            "null draws": len(null)},
                           {"directed pairs": len(ot)})

    conclude(MOD_6, model, guarded(res, [res.primary], compute))


# ---------------------------------------------------------------------------------------------

MOD_7 = claim("MOD-7", "Training pulls overlaps towards the median",
              "interquartile range of off-diagonal O: random twin minus trained",
              "replicated if > 0 with interval excluding 0 (bootstrap over pairs)", "Figs. 3-5, trends 1-2", BOTH)


def _iqr(x: np.ndarray) -> float:
    q1, q3 = np.percentile(x, [25, 75])
    return float(q3 - q1)


@pytest.mark.parametrize("model", MOD_7.models())
def test_mod_7_training_pulls_overlaps_towards_the_median(model, mod, conclude):
    res = mod(model)
    name = "IQR(off-diagonal O, random twin) - IQR(off-diagonal O, trained)"

    def compute(res):
        ot, orr = offdiag(res.overlap()), offdiag(res.overlap(random=True))
        est = inf.bootstrap_many({"t": ot, "r": orr}, lambda x: _iqr(x["r"]) - _iqr(x["t"]))
        return measurement(res, inf.directional(est), est, name,
                           {"IQR trained": _iqr(ot), "IQR random twin": _iqr(orr),
                            "median O trained": float(np.median(ot)), "median O random twin": float(np.median(orr))},
                           {"directed pairs": len(ot)})

    conclude(MOD_7, model, guarded(res, [res.primary], compute))


# ---------------------------------------------------------------------------------------------

MOD_8 = claim("MOD-8", "Trained neurons concentrate in MoE clusters more than random-init ones",
              "per layer and subset: AUC(trained) - AUC(random twin); also AUC(trained) - null AUC",
              "replicated if the mean of both differences is > 0 with intervals excluding 0 (bootstrap over "
              "(layer, subset) cells)", "Fig. 6", BOTH)


def _auc_info(res: ModResult) -> dict:
    return {"k (clusters per layer)": res.info["k"], "cluster size": res.info["cluster_size"],
            "per-layer fraction": PER_LAYER_FRACTION[res.kind], "W_in": res.info["w_in"]}


@pytest.mark.parametrize("model", MOD_8.models())
def test_mod_8_trained_neurons_concentrate_in_moe_clusters(model, mod, conclude):
    res = mod(model)
    t, r, n = (res.arrays[f"auc_{s}"] for s in ("trained", "random", "null"))
    vs_random = inf.paired_bootstrap((t - r).ravel())
    vs_null = inf.paired_bootstrap((t - n).ravel())
    conclude(MOD_8, model, measurement(
        res, inf.directional([vs_random, vs_null]), vs_random, "mean AUC(trained) - AUC(random twin)",
        {"AUC(trained) - AUC(random twin)": detail(vs_random, "Lorenz AUC"),
         "AUC(trained) - null AUC": detail(vs_null, "Lorenz AUC"),
         "mean AUC trained / random / null": [float(t.mean()), float(r.mean()), float(n.mean())],
         **_auc_info(res)}, {"(layer, subset) cells": int(t.size)}))


# ---------------------------------------------------------------------------------------------

MOD_9 = claim("MOD-9", "In ViT the correspondence is strongest in early layers",
              "Spearman rho(layer index, mean AUC over subsets) on the trained model",
              "replicated if rho < 0 with interval excluding 0 (bootstrap over subsets: the layers of a "
              "small ViT are too few to resample)", "Fig. 6b", VIT)


@pytest.mark.parametrize("model", MOD_9.models())
def test_mod_9_vit_correspondence_is_strongest_early(model, mod, conclude):
    res = mod(model)
    auc = res.arrays["auc_trained"]  # (n_layers, n_subsets)
    layers = np.arange(auc.shape[0])
    est = inf.bootstrap_many({"auc": auc}, lambda x: inf.spearman(layers, x["auc"].mean(1)))
    conclude(MOD_9, model, measurement(
        res, inf.directional(est, direction=-1), est, "Spearman rho(layer index, mean AUC over subsets)",
        {"mean AUC per layer": auc.mean(1).round(4).tolist(), **_auc_info(res)},
        {"layers": int(auc.shape[0]), "subsets (bootstrap units)": int(auc.shape[1])}))


# ---------------------------------------------------------------------------------------------

MOD_10 = claim("MOD-10", "In decoders the correspondence is bimodal over depth",
               "mean AUC of the first and last quarter of layers minus mean AUC of the middle half",
               "replicated if > 0 with interval (bootstrap over layers) excluding 0", "Fig. 6c", DECODERS)


@pytest.mark.parametrize("model", MOD_10.models())
def test_mod_10_decoder_correspondence_is_bimodal(model, mod, conclude):
    res = mod(model)
    per_layer = res.arrays["auc_trained"].mean(1)
    n = per_layer.size
    q = n // 4
    outer = np.zeros(n)
    outer[:q] = outer[n - q:] = 1.0

    def stat(x):
        o = x["outer"] > 0
        return x["auc"][o].mean() - x["auc"][~o].mean() if o.any() and (~o).any() else np.nan

    est = inf.bootstrap_many({"auc": per_layer, "outer": outer}, stat)
    conclude(MOD_10, model, measurement(
        res, inf.directional(est), est, "mean AUC of the outer quarters minus the middle half",
        {"outer layers": [*range(q), *range(n - q, n)], "mean AUC per layer": per_layer.round(4).tolist(),
         **_auc_info(res)}, {"layers": n}))
