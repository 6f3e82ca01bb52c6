"""MOD: modularity in transformers, neuron separability and specialization (Pochinkov, Jones, Rahman 2024).

One test per row of the MOD table of ``../shared/claims.md``, parametrized as the catalogue assigns
them: claims about "ViT" run on the image transformers, those about "decoders" on the causal LMs, the
others on both. Every test reads the same experiment (:func:`core.mod.experiment.mod_experiment`: selective
pruning of MLP neurons per subset against the balanced reference set, the search over the number of
selected neurons, cross-pruning matrices, overlaps, MoEfication clusters and Lorenz AUCs, on the model
and on its random twin) and hands it to the claim's statistic and rule in :mod:`claims.mod_rules`
(intervals: :func:`core.inference.cluster_bootstrap` over the claim's units, with shared units
resampled together).

Only a subset that pruning every MLP neuron cannot bring within 0.02 of its target (``unreachable``)
makes a claim that needs its search ``inconclusive``, naming the subset; the statistic over the
other subsets is still reported, labelled informative only (:func:`claims.mod_rules.guarded`). A search whose bracket
closed at adjacent counts selects the upper count (claims.md, MOD setup, revision 2).

Alternate readings (claims.md, "Readings"): R1 (the lower count of such a bracket) and R2 (Eq. 1 as
printed) run when the session's ``readings`` ask for them; each gives its own verdict beside the
primary one (:func:`claims._claim.with_readings`).

Each claim's row is followed by its measurement (``mod_N(res) -> Outcome``, from the experiment's
:class:`core.mod.result.ModResult` to the rule of :mod:`claims.mod_rules`) and its test.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from claims import mod_rules as mc
from claims._claim import Claim, Outcome, measures, per_model, with_readings
from core.data.catalog import related_pairs
from core.mod.experiment import mod_experiment
from core.mod.result import ModResult

PP = "percentage points"
REL = "relative top1 (ratio to baseline)"
DECODERS, VIT, BOTH = ("causal",), ("image",), ("causal", "image")


#: This paper's claim records: ``claim(id, statement, measured, rule, paper_value, kinds, read_as=None)``.
claim = partial(Claim, paper="MOD")


@pytest.fixture(scope="session")
def mod(profile, device, readings, pytestconfig, run_dir):
    """``mod(model) -> ModResult``, computed once per session (and cached on disk), with the MOD
    readings (R1, R2) of the session's ``readings``."""
    return per_model(pytestconfig, run_dir, lambda model: mod_experiment(model, profile, device=device, readings=readings),
                     lambda model, res: {f"mod-{model}": res.curves()},
                     lambda model, res: {("mod", None): res.samples()})


# ---------------------------------------------------------------------------------------------

MOD_1 = claim("MOD-1", "Pruning a subset's selected neurons hurts that subset more than others",
              "relative-accuracy matrix R[u, v] = top1 on v after pruning for u / baseline top1 on v; "
              "per row u: mean off-diagonal R[u, .] - R[u, u]",
              "replicated if the mean over rows is > 0 with interval (bootstrap over rows) excluding 0",
              "Figs. 1-2", BOTH)


@mc.guarded()
def mod_1(res: ModResult) -> Outcome:
    R = res.search().R
    out = mc.mod1(R)
    return mc.measured(res, out, f"mean over rows of mean off-diagonal R[u, .] - R[u, u] at {res.primary}, {REL}",
                       {"per row": dict(zip(res.subsets, out.details.pop("per row"))),
                        "mean measured diagonal R[u, u]": float(np.diag(R).mean()),
                        **mc.search_details(res)})


@measures(MOD_1)
def test_mod_1_pruning_hurts_the_pruned_subset_most(model, mod, conclude, readings):
    res = mod(model)
    conclude(MOD_1, model, with_readings(MOD_1, lambda reading: mod_1(res, reading), mc.computed(res, readings)))


# ---------------------------------------------------------------------------------------------

MOD_2 = claim("MOD-2", "Selectivity falls as the target drop grows (ViT)",
              "spill-over S = (1 - mean off-diagonal R) / (1 - mean diagonal R), the share of the damage that "
              "lands on other subsets (revision 2): S at 80% target minus S at 50% target",
              "replicated if > 0 with interval excluding 0; contradicted if < 0 with interval excluding 0",
              "Fig. 1, left vs right", VIT, read_as="bootstrap over rows")


@mc.guarded(("drop50", "drop80"))
def mod_2(res: ModResult) -> Outcome:
    return mc.measured(res, mc.mod2(res.search("drop50").R, res.search("drop80").R),
                       "spill-over S at 80% drop minus S at 50% drop, S = (1 - mean off-diagonal R) / "
                       "(1 - mean diagonal R)")


@measures(MOD_2)
def test_mod_2_selectivity_falls_with_the_target_drop(model, mod, conclude, readings):
    res = mod(model)
    conclude(MOD_2, model, with_readings(MOD_2, lambda reading: mod_2(res, reading), mc.computed(res, readings)))


# ---------------------------------------------------------------------------------------------

MOD_3 = claim("MOD-3", "Cross-effects are asymmetric but correlated",
              "pairs u != v: Spearman rho(R[u,v], R[v,u]); and mean abs(R[u,v] - R[v,u])",
              "replicated if rho > 0 with interval excluding 0 AND the mean asymmetry exceeds the mean "
              "abs(R1[u,v] - R2[u,v]) between two R computed from disjoint collection samples and disjoint "
              "evaluation samples (revision 2)",
              "section 3.1", BOTH,
              read_as="bootstrap over unordered pairs; the excess with its interval excluding 0")


@mc.guarded()
def mod_3(res: ModResult) -> Outcome:
    out = mc.mod3(res.search().R, res.noise_floor.R_A_half1, res.noise_floor.R_B_half2)
    name = {"rho": "Spearman rho(R[u,v], R[v,u]) over pairs u != v",
            "excess asymmetry": f"mean |R[u,v] - R[v,u]| minus the noise floor mean |R1 - R2|, {REL}"}
    halves = res.info.get("eval_halves", {})
    return mc.measured(res, out, name[out.decided_by],
                       {"noise floor": "R1: scores from collection sample A, evaluated on the first half of "
                                       "every subset's evaluation " + halves.get("groups", "documents")
                                       + "; R2: scores from sample B, on the second half; same counts",
                        "evaluation units per half (per subset)": dict(zip(res.subsets,
                                                                           halves.get("units_per_half", [])))})


@measures(MOD_3)
def test_mod_3_cross_effects_are_asymmetric_but_correlated(model, mod, conclude, readings):
    res = mod(model)
    conclude(MOD_3, model, with_readings(MOD_3, lambda reading: mod_3(res, reading), mc.computed(res, readings)))


# ---------------------------------------------------------------------------------------------

MOD_4 = claim("MOD-4", "Related subsets share neurons",
              "overlap O[u,v] = abs(N_u & N_v) / abs(N_u); mean O over the a-priori related pairs listed "
              "for the data family minus the median O over all pairs",
              "replicated if > 0 with interval (bootstrap over pairs) excluding 0",
              "insects/invertebrates, fish/aquatic mammals/reptiles, vehicles 1/2, PubMed/NIH, "
              "Ubuntu IRC/HackerNews", BOTH)


@mc.guarded()
def mod_4(res: ModResult) -> Outcome:
    pairs = related_pairs(res.subsets)  # every family's pairs among the subsets (CIFAR-20, Pile on full)
    n = len(res.subsets)
    related = np.zeros((n, n), dtype=bool)
    for u, v in pairs:
        i, j = res.subsets.index(u), res.subsets.index(v)
        related[i, j] = related[j, i] = True
    return mc.measured(res, mc.mod4(res.overlap(), related),
                       "mean O over related pairs minus median O over all pairs (both directions)",
                       {"related pairs": [f"{u} / {v}" for u, v in pairs]})


@measures(MOD_4)
def test_mod_4_related_subsets_share_neurons(model, mod, conclude, readings):
    res = mod(model)
    conclude(MOD_4, model, with_readings(MOD_4, lambda reading: mod_4(res, reading), mc.computed(res, readings)))


# ---------------------------------------------------------------------------------------------

MOD_5 = claim("MOD-5", "A class's selected neurons are a small, stable fraction",
              "mean and sd of the selected fraction across subsets",
              "replicated if the mean lies within the paper's mean +- sd for that model family; otherwise "
              "inconclusive (a magnitude, not a direction)",
              "ViT 12.5 +- 6.0% (50% drop); Mistral 3.4 +- 2.6% (20% drop)", BOTH,
              read_as="the mean's interval, bootstrap over subsets, lies within the paper's mean +- sd")


@mc.guarded()
def mod_5(res: ModResult) -> Outcome:
    f = 100 * res.search().fraction
    return mc.measured(res, mc.mod5(f, mc.PAPER_FRACTION[res.kind]),
                       f"mean selected fraction across subsets at {res.primary}, percent of MLP neurons",
                       {"per subset (percent)": dict(zip(res.subsets, f.round(4).tolist())),
                        **mc.search_details(res)})


@measures(MOD_5)
def test_mod_5_selected_fraction_is_small_and_stable(model, mod, conclude, readings):
    res = mod(model)
    conclude(MOD_5, model, with_readings(MOD_5, lambda reading: mod_5(res, reading), mc.computed(res, readings)))


# ---------------------------------------------------------------------------------------------

MOD_6 = claim("MOD-6", "Overlap patterns persist from random init (weak lottery ticket)",
              "Spearman rho between the off-diagonal O of the trained model and of its random twin",
              "replicated if rho > 0 with interval excluding 0 AND rho exceeds the 95th percentile of rho "
              "computed with size-matched random neuron sets", "Figs. 3-5", BOTH,
              read_as="rho's interval: bootstrap over pairs")


@mc.guarded()
def mod_6(res: ModResult) -> Outcome:
    return mc.measured(res, mc.mod6(res.overlap(), res.overlap(random=True), res.lottery_null),
                       "Spearman rho(off-diagonal O trained, off-diagonal O random twin)")


@measures(MOD_6)
def test_mod_6_overlap_patterns_persist_from_random_init(model, mod, conclude, readings):
    res = mod(model)
    conclude(MOD_6, model, with_readings(MOD_6, lambda reading: mod_6(res, reading), mc.computed(res, readings)))


# ---------------------------------------------------------------------------------------------

MOD_7 = claim("MOD-7", "Training pulls overlaps towards the median",
              "interquartile range of off-diagonal O: random twin minus trained",
              "replicated if > 0 with interval excluding 0", "Figs. 3-5, trends 1-2", BOTH,
              read_as="bootstrap over pairs")


@mc.guarded()
def mod_7(res: ModResult) -> Outcome:
    return mc.measured(res, mc.mod7(res.overlap(), res.overlap(random=True)),
                       "IQR(off-diagonal O, random twin) - IQR(off-diagonal O, trained)")


@measures(MOD_7)
def test_mod_7_training_pulls_overlaps_towards_the_median(model, mod, conclude, readings):
    res = mod(model)
    conclude(MOD_7, model, with_readings(MOD_7, lambda reading: mod_7(res, reading), mc.computed(res, readings)))


# ---------------------------------------------------------------------------------------------

MOD_8 = claim("MOD-8", "Trained neurons concentrate in MoE clusters more than random-init ones",
              "per layer and subset: AUC(trained) - AUC(random twin); also AUC(trained) - null AUC",
              "replicated if the mean of both differences is > 0 with intervals excluding 0", "Fig. 6", BOTH,
              read_as="bootstrap over (layer, subset) cells, the cells of one layer resampled together")


@mc.guarded(())
def mod_8(res: ModResult) -> Outcome:
    out = mc.mod8(res.auc.trained, res.auc.random, res.auc.null)
    return mc.measured(res, out, f"mean {out.decided_by}", mc.auc_info(res))


@measures(MOD_8)
def test_mod_8_trained_neurons_concentrate_in_moe_clusters(model, mod, conclude, readings):
    res = mod(model)
    conclude(MOD_8, model, with_readings(MOD_8, lambda reading: mod_8(res, reading), mc.computed(res, readings)))


# ---------------------------------------------------------------------------------------------

MOD_9 = claim("MOD-9", "In ViT the correspondence is strongest in early layers",
              "Spearman rho(layer index, mean AUC over subsets) on the trained model",
              "replicated if rho < 0 with interval (bootstrap over layers) excluding 0", "Fig. 6b", VIT)


@mc.guarded(())
def mod_9(res: ModResult) -> Outcome:
    return mc.measured(res, mc.mod9(res.auc.trained), "Spearman rho(layer index, mean AUC over subsets)",
                       mc.auc_info(res))


@measures(MOD_9)
def test_mod_9_vit_correspondence_is_strongest_early(model, mod, conclude, readings):
    res = mod(model)
    conclude(MOD_9, model, with_readings(MOD_9, lambda reading: mod_9(res, reading), mc.computed(res, readings)))


# ---------------------------------------------------------------------------------------------

MOD_10 = claim("MOD-10", "In decoders the correspondence is bimodal over depth",
               "mean AUC of the first and last quarter of layers minus mean AUC of the middle half",
               "replicated if > 0 with interval (bootstrap over layers) excluding 0", "Fig. 6c", DECODERS)


@mc.guarded(())
def mod_10(res: ModResult) -> Outcome:
    return mc.measured(res, mc.mod10(res.auc.trained),
                       "mean AUC of the outer quarters minus the middle half", mc.auc_info(res))


@measures(MOD_10)
def test_mod_10_decoder_correspondence_is_bimodal(model, mod, conclude, readings):
    res = mod(model)
    conclude(MOD_10, model, with_readings(MOD_10, lambda reading: mod_10(res, reading), mc.computed(res, readings)))