"""BCL: semantically interpretable neuron clusters (Zhang, Gu, Yao).

One test per row of the BCL table of ``../shared/claims.md``, on the masked and causal LMs of each
tier (small: ``minilm-l6`` with masked-token loss and ``smollm2-135m`` with next-token loss, each on
the ``news`` and ``wiki`` text; full, marked ``gpu``: ``bert-base-uncased`` on C4 and Yelp). Every test
reads the same experiment (:func:`core.bcl.experiment.bcl_experiment`, once per model and corpus,
cached on disk): residual-neuron representations (BCL Eq. 1), the frequency filter, clustering for
K in {20, 50, 200} scaled to the model, refinement, and the causal intervention with its three
baselines over 5 seeds.

A claim holds for a model when it holds on each of its corpora (the paper reports every setup per
dataset): per-corpus verdicts are combined with ``all_of`` and every per-corpus number is in the
details. The statistics and rules are the small functions of :mod:`claims.bcl_rules` (tested on known
answers in ``tests/test_bcl_claims.py``): intervals over clusters, clusters that share evaluation
sentences resampled together, the five baseline seeds a draw level (claims.md, "Intervals",
revision 2). Where a rule has several parts, the headline statistic is the part that decided.

Readings R3-R5 (claims.md, "Readings") that the run computes (``--readings``) give each claim they
touch an alternate verdict beside the primary one (:func:`claims._claim.with_readings`).

Each claim's row is followed by its measurement (``bcl_N(results, reading=None) -> Outcome``, from the
experiment's :class:`core.bcl.result.BclResult` per corpus to the rules of :mod:`claims.bcl_rules`) and
its test.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from claims import bcl_rules as rules
from claims._claim import Claim, Outcome, detail, measures, per_model, with_readings
from core.bcl.baselines import BASELINES
from core.bcl.experiment import BCL_CORPORA, BCL_READINGS, INTERVENTION_KS, PAPER_KS
from core.bcl.result import BclResult

PCT = "% increase of CE"
LMS = ("causal", "masked")


#: This paper's claim records: ``claim(id, statement, measured, rule, paper_value, read_as=None)``.
claim = partial(Claim, paper="BCL", kinds=LMS)


@pytest.fixture(scope="session")
def bcl(profile, device, readings, pytestconfig, run_dir):
    """``bcl(model) -> {corpus: BclResult}``, computed once per session (and cached on disk), with the
    BCL readings the run asks for."""
    from core.bcl.experiment import bcl_experiment
    from core.zoo.models import get_spec

    wanted = frozenset(readings) & frozenset(BCL_READINGS)

    def compute(model: str) -> dict[str, BclResult]:
        return {corpus: bcl_experiment(model, corpus, profile, device=device, readings=wanted)
                for corpus in BCL_CORPORA[get_spec(model).tier]}

    return per_model(pytestconfig, run_dir, compute, lambda model, out: {
        f"bcl-{model}-{corpus}": r.curves() for corpus, r in out.items()},
        lambda model, out: {("bcl", corpus): r.samples() for corpus, r in out.items()})


# ---------------------------------------------------------------------------------------------

BCL_1 = claim("BCL-1", "Within-cluster distance falls as K grows",
              "mean over clusters of average and of max pairwise (1 - cos) distance, K in {20, 50, 200} "
              "(scaled)",
              "replicated if both are strictly decreasing in K with non-overlapping intervals (bootstrap "
              "over clusters) between consecutive K", "Fig. 2: K=50 about 0.8 / 1.2; K=200 about 0.6 / 1.0")


def bcl_1(results: dict[str, BclResult], reading=None) -> Outcome:
    gaps, verdicts, per_k = {}, {}, {}
    for corpus, r in results.items():
        dist = r.clusterings["filter"]
        for metric in ("avg", "max"):
            ests = [rules.cluster_estimate([v for v in getattr(dist[k], f"{metric}_distance") if v is not None],
                                           where=f"BCL-1 {corpus} {metric} K={k}") for k in PAPER_KS]
            for k, e in zip(PAPER_KS, ests):
                per_k[f"{corpus}: {metric} distance, K={k} (scaled {r.ks[k]})"] = detail(e, "1 - cos")
            for (a, b), (ea, eb), v in zip(zip(PAPER_KS, PAPER_KS[1:]), zip(ests, ests[1:]),
                                           rules.strictly_decreasing(ests)):
                key = f"{corpus}: {metric}(K={a}) - {metric}(K={b})"
                gaps[key], verdicts[key] = rules.distance_gap(ea, eb), v
    verdict, decided = rules.decreasing_rule(gaps, verdicts)
    return rules.measured(results, verdict, gaps, decided,
                       "decrease between consecutive K; interval = (low of smaller K - high of larger K, "
                       "high - low): lower end > 0 means non-overlapping", "1 - cos", details=per_k,
                       sizes={f"{c}: clusters at K={k} (scaled {r.ks[k]})": r.ks[k]
                              for c, r in results.items() for k in PAPER_KS})


@measures(BCL_1)
def test_bcl_1_within_cluster_distance_falls_with_k(model, bcl, conclude):
    results = bcl(model)
    conclude(BCL_1, model, with_readings(BCL_1, lambda reading: bcl_1(results, reading), rules.computed(results)))


# ---------------------------------------------------------------------------------------------

BCL_2 = claim("BCL-2", "With many small clusters, ablating a cluster hurts its tokens more than random neurons",
              "K=200 (scaled), filter: loss increase(cluster) - increase(random) and - increase(random_layer), "
              "paired per cluster",
              "replicated if both > 0 with intervals (bootstrap over clusters) excluding 0",
              "C4-200 1.74 vs 0.80 / 0.82; Yelp-200 1.96 vs 1.48 / 1.30")


def bcl_2(results: dict[str, BclResult], reading=None) -> Outcome:
    parts = {}
    for corpus, r in results.items():
        x = rules.intervention(r.setups["filter-200"], reading)
        for b in ("random", "random_layer"):
            parts[f"{corpus}: cluster - {b}"] = rules.paired_difference(x, b, where=f"BCL-2 {corpus}")
    return rules.directional_outcome(results, parts, f"percentage points of {PCT}", "percentage points",
                                     setups=("filter-200",), reading=reading)


@measures(BCL_2)
def test_bcl_2_small_clusters_beat_random_neurons(model, bcl, conclude):
    results = bcl(model)
    conclude(BCL_2, model, with_readings(BCL_2, lambda reading: bcl_2(results, reading), rules.computed(results)))


# ---------------------------------------------------------------------------------------------

BCL_3 = claim("BCL-3", "Refined clusters beat every baseline",
              "refine, K = 50 and 200 (scaled): increase(cluster) minus each of the three baselines",
              "replicated if all six differences > 0 with intervals excluding 0",
              "C4-50 refine 1.85 vs 0.23 / -0.06 / -0.02")


def bcl_3(results: dict[str, BclResult], reading=None) -> Outcome:
    parts = {}
    for corpus, r in results.items():
        for k in INTERVENTION_KS:
            x = rules.intervention(r.setups[f"refine-{k}"], reading)
            for b in BASELINES:
                parts[f"{corpus} K={k}: cluster - {b}"] = rules.paired_difference(x, b, where=f"BCL-3 {corpus}")
    return rules.directional_outcome(results, parts, f"percentage points of {PCT}", "percentage points",
                                     setups=[f"refine-{k}" for k in INTERVENTION_KS], reading=reading)


@measures(BCL_3)
def test_bcl_3_refined_clusters_beat_every_baseline(model, bcl, conclude):
    results = bcl(model)
    conclude(BCL_3, model, with_readings(BCL_3, lambda reading: bcl_3(results, reading), rules.computed(results)))


# ---------------------------------------------------------------------------------------------

BCL_4 = claim("BCL-4", "With few large clusters, random neurons hurt more than the cluster",
              "K=50 (scaled), filter: increase(random) - increase(cluster)",
              "replicated if > 0 with interval excluding 0",
              "C4-50 7.04 vs 5.33; Yelp-50 6.76 vs 5.31")


def bcl_4(results: dict[str, BclResult], reading=None) -> Outcome:
    parts = {f"{corpus}: random - cluster": rules.paired_difference(
        rules.intervention(r.setups["filter-50"], reading), "random", cluster_minus=False,
        where=f"BCL-4 {corpus}") for corpus, r in results.items()}
    return rules.directional_outcome(results, parts, f"percentage points of {PCT}", "percentage points",
                                     setups=("filter-50",), reading=reading)


@measures(BCL_4)
def test_bcl_4_random_neurons_hurt_more_than_large_clusters(model, bcl, conclude):
    results = bcl(model)
    conclude(BCL_4, model, with_readings(BCL_4, lambda reading: bcl_4(results, reading), rules.computed(results)))


# ---------------------------------------------------------------------------------------------

BCL_5 = claim("BCL-5", "The random-position baseline barely moves the loss",
              "the random_position increase, every setup",
              "replicated if its interval lies below 0.5% in every setup", "0.00 to 0.30")


def bcl_5(results: dict[str, BclResult], reading=None) -> Outcome:
    parts = {f"{corpus} {setup}: random_position": rules.baseline_increase(
        rules.intervention(st, reading), "random_position", where=f"BCL-5 {corpus} {setup}")
        for corpus, r in results.items() for setup, st in r.setups.items()}
    verdict, decided = rules.below(parts, rules.BCL5_THRESHOLD)
    first = next(iter(results.values()))
    m = rules.measured(results, verdict, parts, decided, PCT, PCT, setups=list(first.setups), reading=reading)
    return m.but(parts={k: rules.shifted(e, rules.BCL5_THRESHOLD) for k, e in parts.items()})  # needed(): vs 0.5


@measures(BCL_5)
def test_bcl_5_random_position_barely_moves_the_loss(model, bcl, conclude):
    results = bcl(model)
    conclude(BCL_5, model, with_readings(BCL_5, lambda reading: bcl_5(results, reading), rules.computed(results)))


# ---------------------------------------------------------------------------------------------

BCL_6 = claim("BCL-6", "Refinement leaves about ten neurons per cluster",
              "median refined cluster size, K=50 (scaled), filter",
              "replicated if the median lies in [5, 20]", "Fig. 1, section 7.1")


def bcl_6(results: dict[str, BclResult], reading=None) -> Outcome:
    parts, refined = {}, {}
    for corpus, r in results.items():
        sizes = np.asarray([len(m) for m in r.clusterings["filter"][50].refined], dtype=np.float64)
        refined[f"{corpus}: refined sizes"] = sizes.astype(int).tolist()
        # a median of whole numbers: claims.md's percentile construction (the t ones are calibrated on means)
        parts[f"{corpus}: median refined size"] = rules.cluster_estimate(sizes, stat=np.median,
                                                                         where=f"BCL-6 {corpus}",
                                                                         construction="percentile")
    verdict, decided = rules.in_band(parts, rules.BCL6_BAND)
    m = rules.measured(results, verdict, parts, decided, "neurons", "neurons", details=refined,
                       sizes={f"{c}: refined clusters (K=50 scaled)": len(r.clusterings["filter"][50].refined)
                              for c, r in results.items()})
    return m.but(parts={k: rules.shifted(e, rules.band_edge(e)) for k, e in parts.items()})  # needed(): vs the band


@measures(BCL_6)
def test_bcl_6_refinement_leaves_about_ten_neurons(model, bcl, conclude):
    results = bcl(model)
    conclude(BCL_6, model, with_readings(BCL_6, lambda reading: bcl_6(results, reading), rules.computed(results)))


# ---------------------------------------------------------------------------------------------

BCL_7 = claim("BCL-7", "Clusters gather the same index across layers",
              "share of a cluster's neurons whose index also occurs in another layer within the same "
              "cluster, against a layer-preserving permutation null (1,000 permutations)",
              "replicated if the observed mean share exceeds the null's 95th percentile",
              "section 7.3, Fig. 5")


def bcl_7(results: dict[str, BclResult], reading=None) -> Outcome:
    parts, observed, nulls = {}, {}, {}
    for corpus, r in results.items():
        b7, key = r.bcl7, f"{corpus}: observed mean share"
        share = [v for v in b7.per_cluster if v is not None and np.isfinite(v)]
        e = rules.cluster_estimate(share, where=f"BCL-7 {corpus}")
        parts[key] = e if np.isfinite(e.value) else rules.nan_estimate([b7.observed], len(share))
        observed[key], nulls[key] = b7.observed, np.asarray(b7.null)
    verdict, decided, per = rules.null_rule(observed, nulls)
    details = {f"{k.split(':')[0]}: null mean share, 5th / 50th / 95th percentile":
               [p5, float(np.median(nulls[k])), p95] for k, (_, p5, p95) in per.items()}
    return rules.measured(results, verdict, parts, decided,
                       "share of neurons (K=50 scaled, filter; interval: bootstrap over clusters; the rule "
                       "compares the observed share with the null's 95th percentile)", "share of neurons",
                       details=details,
                       sizes={f"{c}: clusters (K=50 scaled)": r.ks[50] for c, r in results.items()})


@measures(BCL_7)
def test_bcl_7_clusters_gather_the_same_index_across_layers(model, bcl, conclude):
    results = bcl(model)
    conclude(BCL_7, model, with_readings(BCL_7, lambda reading: bcl_7(results, reading), rules.computed(results)))


# ---------------------------------------------------------------------------------------------

BCL_8 = claim("BCL-8", "Top-activating tokens of a cluster are semantically related",
              "mean pairwise cosine of the embedding vectors of each cluster's top-10 tokens, minus the "
              "same for random size-matched token sets from the filtered vocabulary; tokens are mapped to "
              "embedding words and deduplicated first (one vector per distinct word), in the cluster and "
              "in the random sets alike (revision 2)",
              "replicated if > 0 with interval (bootstrap over clusters) excluding 0", "Tables 1 and 4")


def bcl_8(results: dict[str, BclResult], reading=None) -> Outcome:
    parts, details, sizes = {}, {}, {}
    for corpus, r in results.items():
        b8 = r.bcl8.r5 if reading == "R5" else r.bcl8
        if b8 is None:
            raise KeyError(f"BCL-8: reading R5 was not computed for {corpus}")
        parts[f"{corpus}: cluster - random"] = rules.cluster_estimate(b8.diff, where=f"BCL-8 {corpus}")
        details[f"{corpus}: mean observed / random cosine (K=200 scaled, filter; GloVe 6B 50d)"] = \
            [float(np.mean(b8.observed)) if b8.observed else None,
             float(np.mean(b8.random)) if b8.random else None]
        sizes[f"{corpus}: clusters used (>= 2 distinct words)"] = len(b8.diff)
        sizes[f"{corpus}: clusters with < 2 distinct words"] = len(b8.n_words) - len(b8.diff)
        sizes[f"{corpus}: distinct words of the filtered vocabulary"] = b8.n_vocab_words
    return rules.directional_outcome(results, parts, "mean pairwise cosine", "cosine", details=details, sizes=sizes)


@measures(BCL_8)
def test_bcl_8_top_tokens_are_semantically_related(model, bcl, conclude):
    results = bcl(model)
    conclude(BCL_8, model, with_readings(BCL_8, lambda reading: bcl_8(results, reading), rules.computed(results)))
