"""BCL: semantically interpretable neuron clusters (Zhang, Gu, Yao).

One test per row of the BCL table of ``../shared/claims.md``, on the masked and causal LMs of each
tier (small: ``minilm-l6`` with masked-token loss and ``smollm2-135m`` with next-token loss, each on
the ``news`` and ``wiki`` text; full, marked ``gpu``: ``bert-base-uncased`` on C4 and Yelp). Every test
reads the same experiment (:func:`core.intervention.bcl_experiment`, once per model and corpus,
cached on disk): residual-neuron representations (BCL Eq. 1), the frequency filter, clustering for
K in {20, 50, 200} scaled to the model, refinement, and the causal intervention with its three
baselines over 5 seeds.

A claim holds for a model when it holds on each of its corpora (the paper reports every setup per
dataset): per-corpus verdicts are combined with ``all_of`` and every per-corpus number is in the
details. Bootstrap units are clusters (claims.md, "Intervals": comparisons across clusters).
"""
from __future__ import annotations

import numpy as np
import pytest

from claims._claim import Claim, Measurement, detail, per_model
from core import inference as inf
from core.intervention import BASELINES, BCL_CORPORA, INTERVENTION_KS, PAPER_KS

PCT = "% increase of CE"
LMS = ("causal", "masked")


def claim(id, statement, measured, rule, paper_value) -> Claim:
    return Claim(id, statement, measured, rule, paper_value, LMS, paper="BCL")


@pytest.fixture(scope="session")
def bcl(profile, device, pytestconfig):
    """``bcl(model) -> {corpus: result}``, computed once per session (and cached on disk)."""
    from core.intervention import bcl_experiment
    from core.models import get_spec

    def compute(model: str) -> dict:
        return {corpus: bcl_experiment(model, corpus, profile, device=device)
                for corpus in BCL_CORPORA[get_spec(model).tier]}

    return per_model(pytestconfig, compute, lambda model, out: {
        f"bcl-{model}-{corpus}": figure_payload(r) for corpus, r in out.items()})


def figure_payload(r: dict) -> dict:
    """What :func:`core.figures_bcl.render` draws, from one experiment result (``experiment: bcl``)."""
    width = r["width"]
    filt = r["clusterings"]["filter"]
    k50 = filt["50"]
    rng = np.random.default_rng(0)
    labels50 = np.asarray(k50["labels"])
    sizes50 = np.bincount(labels50, minlength=r["ks"]["50"])
    examples = [int(c) for c in np.argsort(-sizes50, kind="stable")[:4]]
    trace_ids = sorted(rng.choice(len(k50["refine_trace"]), size=min(8, len(k50["refine_trace"])),
                                  replace=False).tolist())
    table = {}
    for name, s in r["setups"].items():
        ev = s["evaluated"]
        table[name] = {
            "method": s["method"], "k_paper": s["k_paper"], "k": s["k"], "n_clusters": s["n_clusters"],
            "skipped": s["skipped"], "evaluated": len(ev),
            "cluster": float(np.mean([e["cluster_pct"] for e in ev])) if ev else None,
            **{b: (float(np.mean([np.mean(e["baselines"][b]) for e in ev])) if ev else None)
               for b in BASELINES},
            "best": [{"cluster": e["cluster"], "cluster_pct": e["cluster_pct"],
                      "top_tokens": s["top_tokens"][e["cluster"]]}
                     for e in sorted(ev, key=lambda e: -e["cluster_pct"])[:3]],
        }
    return {
        "experiment": "bcl", "model": r["model"], "corpus": r["corpus"], "kind": r["kind"],
        "profile": r["profile"], "n_layers": r["n_layers"], "width": width, "ks": r["ks"],
        "threshold": r["threshold"], "n_positions": r["n_positions"], "n_kept": r["n_kept"],
        "distances": {k: {"avg": filt[k]["avg_distance"], "max": filt[k]["max_distance"]}
                      for k in map(str, PAPER_KS)},
        "table": table,
        "positions": {str(c): np.flatnonzero(labels50 == c).tolist() for c in examples},
        "refine_trace": {str(c): k50["refine_trace"][c] for c in trace_ids},
        "refined_sizes": [len(m) for m in k50["refined"]],
    }


# ---------------------------------------------------------------------------------------------
# helpers

def boot(values) -> inf.Estimate:
    """Mean over clusters with its bootstrap interval; NaN when fewer than 2 clusters."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size < 2:
        return inf.Estimate(float(v.mean()) if v.size else float("nan"), float("nan"), float("nan"),
                            int(v.size))
    return inf.paired_bootstrap(v)


def scores(result: dict, setup: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per evaluated cluster: the cluster's % increase and each baseline's, averaged over seeds."""
    ev = result["setups"][setup]["evaluated"]
    cluster = np.asarray([e["cluster_pct"] for e in ev], dtype=np.float64)
    base = {b: np.asarray([np.mean(e["baselines"][b]) for e in ev], dtype=np.float64) for b in BASELINES}
    return cluster, base


def setup_sizes(results: dict, setups) -> dict:
    out = {}
    for corpus, r in results.items():
        out[f"{corpus}: collection tokens"] = r["n_positions"]
        out[f"{corpus}: frequency threshold (occurrences)"] = r["threshold"]
        out[f"{corpus}: tokens kept by the filter"] = r["n_kept"]
        out[f"{corpus}: evaluation sentences"] = r["eval_sentences"]
        for s in setups:
            st = r["setups"][s]
            out[f"{corpus} {s}: K (scaled)"] = st["k"]
            out[f"{corpus} {s}: clusters evaluated"] = len(st["evaluated"])
            out[f"{corpus} {s}: clusters skipped (top tokens never in the evaluation sentences)"] = \
                st["skipped"]
    return out


def data_of(results: dict) -> dict:
    return {corpus: r["data"] for corpus, r in results.items()}


def measurement(results: dict, verdict: str, headline: inf.Estimate, name: str, details: dict,
                setups=()) -> Measurement:
    first = next(iter(results.values()))
    return Measurement(verdict=verdict, statistic=headline, statistic_name=name, details=details,
                       sample_sizes=setup_sizes(results, setups), seeds=list(first["seeds"]),
                       data=data_of(results))


def weakest(ests: dict[str, inf.Estimate]) -> str:
    """The key of the estimate with the smallest value (NaN counts as smallest)."""
    return min(ests, key=lambda k: (-np.inf if not np.isfinite(ests[k].value) else ests[k].value))


# ---------------------------------------------------------------------------------------------

BCL_1 = claim("BCL-1", "Within-cluster distance falls as K grows",
              "mean over clusters of average and of max pairwise (1 - cos) distance, K in {20, 50, 200} "
              "(scaled)",
              "replicated if both are strictly decreasing in K with non-overlapping intervals (bootstrap "
              "over clusters) between consecutive K", "Fig. 2: K=50 about 0.8 / 1.2; K=200 about 0.6 / 1.0")


@pytest.mark.parametrize("model", BCL_1.models())
def test_bcl_1_within_cluster_distance_falls_with_k(model, bcl, conclude):
    results = bcl(model)
    verdicts, details, gaps = [], {}, {}
    for corpus, r in results.items():
        dist = r["clusterings"]["filter"]
        for metric in ("avg", "max"):
            ests = {k: boot(dist[str(k)][f"{metric}_distance"]) for k in PAPER_KS}
            for k, e in ests.items():
                details[f"{corpus}: {metric} distance, K={k} (scaled {r['ks'][str(k)]})"] = detail(e, "1 - cos")
            for a, b in zip(PAPER_KS, PAPER_KS[1:]):
                ea, eb = ests[a], ests[b]
                gap = inf.Estimate(ea.value - eb.value, ea.low - eb.high, ea.high - eb.low, ea.n_units)
                gaps[f"{corpus}: {metric}(K={a}) - {metric}(K={b})"] = gap
                if ea.value > eb.value and ea.low > eb.high:
                    verdicts.append("replicated")
                elif ea.value < eb.value and ea.high < eb.low:
                    verdicts.append("contradicted")
                else:
                    verdicts.append("inconclusive")
    key = weakest(gaps)
    details["interval gaps (lower end > 0: non-overlapping, decreasing)"] = {
        k: [g.value, g.low, g.high] for k, g in gaps.items()}
    conclude(BCL_1, model, measurement(
        results, inf.all_of(verdicts), gaps[key],
        f"smallest decrease between consecutive K, {key}; interval = (low of smaller K - high of larger K,"
        f" high - low)", details))


# ---------------------------------------------------------------------------------------------

BCL_2 = claim("BCL-2", "With many small clusters, ablating a cluster hurts its tokens more than random neurons",
              "K=200 (scaled), filter: loss increase(cluster) - increase(random) and - increase(random_layer), "
              "paired per cluster",
              "replicated if both > 0 with intervals (bootstrap over clusters) excluding 0",
              "C4-200 1.74 vs 0.80 / 0.82; Yelp-200 1.96 vs 1.48 / 1.30")


@pytest.mark.parametrize("model", BCL_2.models())
def test_bcl_2_small_clusters_beat_random_neurons(model, bcl, conclude):
    results = bcl(model)
    ests = {}
    for corpus, r in results.items():
        cluster, base = scores(r, "filter-200")
        for b in ("random", "random_layer"):
            ests[f"{corpus}: cluster - {b}"] = boot(cluster - base[b])
        ests_c = boot(cluster)
        ests_c_name = f"{corpus}: cluster increase"
        ests.setdefault(ests_c_name, ests_c)
    diffs = {k: e for k, e in ests.items() if " - " in k}
    key = weakest(diffs)
    conclude(BCL_2, model, measurement(
        results, inf.directional(list(diffs.values())), diffs[key], f"smallest difference, {key}, "
        f"percentage points of {PCT}", {k: detail(e, "percentage points") for k, e in ests.items()},
        setups=("filter-200",)))


# ---------------------------------------------------------------------------------------------

BCL_3 = claim("BCL-3", "Refined clusters beat every baseline",
              "refine, K = 50 and 200 (scaled): increase(cluster) minus each of the three baselines",
              "replicated if all six differences > 0 with intervals excluding 0",
              "C4-50 refine 1.85 vs 0.23 / -0.06 / -0.02")


@pytest.mark.parametrize("model", BCL_3.models())
def test_bcl_3_refined_clusters_beat_every_baseline(model, bcl, conclude):
    results = bcl(model)
    ests = {}
    for corpus, r in results.items():
        for k in INTERVENTION_KS:
            cluster, base = scores(r, f"refine-{k}")
            for b in BASELINES:
                ests[f"{corpus} K={k}: cluster - {b}"] = boot(cluster - base[b])
    key = weakest(ests)
    conclude(BCL_3, model, measurement(
        results, inf.directional(list(ests.values())), ests[key],
        f"smallest difference, {key}, percentage points of {PCT}",
        {k: detail(e, "percentage points") for k, e in ests.items()},
        setups=[f"refine-{k}" for k in INTERVENTION_KS]))


# ---------------------------------------------------------------------------------------------

BCL_4 = claim("BCL-4", "With few large clusters, random neurons hurt more than the cluster",
              "K=50 (scaled), filter: increase(random) - increase(cluster)",
              "replicated if > 0 with interval excluding 0",
              "C4-50 7.04 vs 5.33; Yelp-50 6.76 vs 5.31")


@pytest.mark.parametrize("model", BCL_4.models())
def test_bcl_4_random_neurons_hurt_more_than_large_clusters(model, bcl, conclude):
    results = bcl(model)
    ests = {}
    for corpus, r in results.items():
        cluster, base = scores(r, "filter-50")
        ests[f"{corpus}: random - cluster"] = boot(base["random"] - cluster)
    key = weakest(ests)
    conclude(BCL_4, model, measurement(
        results, inf.directional(list(ests.values())), ests[key],
        f"smallest difference, {key}, percentage points of {PCT}",
        {k: detail(e, "percentage points") for k, e in ests.items()}, setups=("filter-50",)))


# ---------------------------------------------------------------------------------------------

BCL_5 = claim("BCL-5", "The random-position baseline barely moves the loss",
              "the random_position increase, every setup",
              "replicated if its interval lies below 0.5% in every setup", "0.00 to 0.30")


@pytest.mark.parametrize("model", BCL_5.models())
def test_bcl_5_random_position_barely_moves_the_loss(model, bcl, conclude):
    results = bcl(model)
    ests, verdicts = {}, []
    for corpus, r in results.items():
        for setup in r["setups"]:
            _, base = scores(r, setup)
            e = boot(base["random_position"])
            ests[f"{corpus} {setup}: random_position"] = e
            verdicts.append(inf.at_most(e, 0.5) if np.isfinite(e.low) else "inconclusive")
    key = max(ests, key=lambda k: ests[k].high if np.isfinite(ests[k].high) else np.inf)
    first = next(iter(results.values()))
    conclude(BCL_5, model, measurement(
        results, inf.all_of(verdicts), ests[key], f"the setup with the highest upper end, {key}, {PCT}",
        {k: detail(e, PCT) for k, e in ests.items()}, setups=list(first["setups"])))


# ---------------------------------------------------------------------------------------------

BCL_6 = claim("BCL-6", "Refinement leaves about ten neurons per cluster",
              "median refined cluster size, K=50 (scaled), filter",
              "replicated if the median lies in [5, 20]", "Fig. 1, section 7.1")


@pytest.mark.parametrize("model", BCL_6.models())
def test_bcl_6_refinement_leaves_about_ten_neurons(model, bcl, conclude):
    results = bcl(model)
    ests, verdicts, refined = {}, [], {}
    for corpus, r in results.items():
        sizes = np.asarray([len(m) for m in r["clusterings"]["filter"]["50"]["refined"]], dtype=np.float64)
        refined[f"{corpus}: refined sizes"] = sizes.astype(int).tolist()
        low, high = inf.bootstrap_interval(lambda idx: float(np.median(sizes[idx])), sizes.size)
        e = inf.Estimate(float(np.median(sizes)), low, high, int(sizes.size))
        ests[f"{corpus}: median refined size"] = e
        if 5 <= e.low and e.high <= 20:
            verdicts.append("replicated")
        elif e.high < 5 or e.low > 20:
            verdicts.append("contradicted")
        else:
            verdicts.append("inconclusive")
    key = max(ests, key=lambda k: abs(ests[k].value - 12.5))
    conclude(BCL_6, model, measurement(
        results, inf.all_of(verdicts), ests[key], f"{key} (farthest from [5, 20]'s middle), neurons",
        {**{k: detail(e, "neurons") for k, e in ests.items()}, **refined}))


# ---------------------------------------------------------------------------------------------

BCL_7 = claim("BCL-7", "Clusters gather the same index across layers",
              "share of a cluster's neurons whose index also occurs in another layer within the same "
              "cluster, against a layer-preserving permutation null (1,000 permutations)",
              "replicated if the observed mean share exceeds the null's 95th percentile",
              "section 7.3, Fig. 5")


@pytest.mark.parametrize("model", BCL_7.models())
def test_bcl_7_clusters_gather_the_same_index_across_layers(model, bcl, conclude):
    results = bcl(model)
    ests, verdicts, details = {}, [], {}
    for corpus, r in results.items():
        b7 = r["bcl7"]
        null = np.asarray(b7["null"])
        p95, p5 = float(np.percentile(null, 95)), float(np.percentile(null, 5))
        e = boot(b7["per_cluster"])
        e = inf.Estimate(b7["observed"], e.low, e.high, e.n_units)
        ests[f"{corpus}: observed mean share"] = e
        details[f"{corpus}: observed mean share (K=50 scaled, filter)"] = detail(e, "share of neurons")
        details[f"{corpus}: null mean share, 5th / 50th / 95th percentile"] = \
            [p5, float(np.median(null)), p95]
        # the mirror of the rule: below the null's 5th percentile is the opposite effect
        verdicts.append("replicated" if b7["observed"] > p95 else
                        "contradicted" if b7["observed"] < p5 else "inconclusive")
    key = min(ests, key=lambda k: ests[k].value)
    conclude(BCL_7, model, measurement(results, inf.all_of(verdicts), ests[key],
                                       f"{key}, share of neurons (interval: bootstrap over clusters)",
                                       details, setups=()))


# ---------------------------------------------------------------------------------------------

BCL_8 = claim("BCL-8", "Top-activating tokens of a cluster are semantically related",
              "mean pairwise cosine of the embedding vectors of each cluster's top-10 tokens, minus the "
              "same for random size-matched token sets from the filtered vocabulary",
              "replicated if > 0 with interval (bootstrap over clusters) excluding 0", "Tables 1 and 4")


@pytest.mark.parametrize("model", BCL_8.models())
def test_bcl_8_top_tokens_are_semantically_related(model, bcl, conclude):
    results = bcl(model)
    ests, details = {}, {}
    for corpus, r in results.items():
        b8 = r["bcl8"]
        e = boot(b8["diff"])
        ests[f"{corpus}: cluster - random"] = e
        details[f"{corpus}: cluster - random (K=200 scaled, filter; GloVe 6B 50d)"] = detail(e, "cosine")
        details[f"{corpus}: clusters used / with < 2 mapped top tokens"] = \
            f"{len(b8['diff'])} / {len(b8['n_mapped']) - len(b8['diff'])}"
        details[f"{corpus}: mean observed / random cosine"] = \
            [float(np.mean(b8["observed"])) if b8["observed"] else None,
             float(np.mean(b8["random"])) if b8["random"] else None]
    key = weakest(ests)
    conclude(BCL_8, model, measurement(results, inf.directional(list(ests.values())), ests[key],
                                       f"{key}, mean pairwise cosine", details))
