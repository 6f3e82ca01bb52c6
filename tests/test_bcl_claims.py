"""BCL claim logic on known answers: each claim's statistic and rule (``claims.bcl_rules``, and the claim
functions of ``claims/test_bert_clusters.py``) on small synthetic inputs whose verdict is known by
construction (claims.md, "BCL")."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.inference import decisive_directional as decisive
from claims import bcl_rules as rules
from core.bcl import neuron_clusters as nc
from core.bcl.result import (BclResult, Clustering, Evaluated, Evaluation, IndexShare, ReadingR3, ReadingR4,
                             Relatedness, Setup)
from core.inference.estimate import Estimate

BASELINES = ("random", "random_layer", "random_position")


def est(value, low, high, n=10):
    return Estimate(value, low, high, n)


# ---------------------------------------------------------------------------------------- synthetic results

def _seeds(a, i) -> list[float]:
    return [float(v) for v in np.asarray(a)[:, i]]


def _setup(cluster, baselines, groups=None, r3=None, r4=None, r5=None) -> Setup:
    """A setup as bcl_experiment returns it: ``cluster`` (n,), ``baselines`` {b: (n_seeds, n)}; ``r3``:
    (cluster, baselines), ``r4``: random_position (n_seeds, n), ``r5``: the arguments of its own setup."""
    n = len(cluster)
    ev = [Evaluated(cluster=i, size=5, n_sentences=2, n_targets=3, base_loss=2.0, cluster_pct=float(cluster[i]),
                    baselines={b: _seeds(baselines[b], i) for b in BASELINES}, rows=[2 * i, 2 * i + 1],
                    documents=[2 * i, 2 * i + 1],
                    r3=None if r3 is None else ReadingR3(float(r3[0][i]), {b: _seeds(r3[1][b], i) for b in BASELINES}),
                    r4=None if r4 is None else ReadingR4(_seeds(r4, i)))
          for i in range(n)]
    g = list(range(n)) if groups is None else list(groups)
    st = Setup(method="refine", k_paper=50, k=4, n_clusters=n, evaluated=ev, groups=g, doc_groups=list(g),
               n_sentences=2 * n, n_documents=2 * n, topped_up=0, skipped=0, not_sampled=0, sizes=[5] * n,
               top_tokens=[["a", "b"]] * n)
    if r5 is not None:
        o = _setup(*r5)
        st.r5 = Evaluation(o.evaluated, o.groups, o.doc_groups, o.n_sentences, o.n_documents, 0, 0, o.top_tokens)
    return st


def _result(setups, readings=(), **fields) -> BclResult:
    """A result around ``setups`` whose other fields are placeholders (``fields`` replace them)."""
    base = dict(model="m", corpus="news", kind="masked", tier="small", profile="ci", n_layers=2, width=8,
                n_neurons=16, sizes={"min_documents": 16}, threshold=5, n_positions=1000, n_distinct=200,
                n_kept=100, ks={20: 2, 50: 4, 200: 16}, seeds=[0, 1, 2, 3, 4], readings=list(readings),
                clusterings={}, setups=setups, bcl7=IndexShare([], float("nan"), []),
                bcl8=Relatedness([], [], [], [], [], [], 0, 0), eval_sentences=50, eval_documents=20, cost={},
                data="synthetic")
    return BclResult(**{**base, **fields})


def _arrays(n=24, effect=2.0, base=(0.2, 0.0, 0.0), noise=1.0, seed=0):
    """Cluster increases with a large between-cluster spread, baselines ``effect`` below them."""
    rng = np.random.default_rng(seed)
    cluster = rng.normal(effect, noise, n)
    bases = {b: rng.normal(m, 0.3, (5, n)) for b, m in zip(BASELINES, base)}
    return cluster, bases


# ---------------------------------------------------------------------------------------- intervals

def test_paired_difference_keeps_the_cluster_paired_with_every_seed():
    """A constant gap between cluster and baseline is measured exactly, however much clusters vary."""
    rng = np.random.default_rng(0)
    cluster = rng.normal(0, 5, 20)
    x = rules.intervention(_setup(cluster, {b: np.tile(cluster - 1.0, (5, 1)) for b in BASELINES}))
    e = rules.paired_difference(x, "random")
    assert e.value == pytest.approx(1.0) and e.high - e.low < 1e-9
    assert e.n_seeds == 5 and set(e.components) == {"clusters", "draws"}


def test_clusters_that_share_sentences_move_together():
    """Duplicated clusters in one group give the interval of the undoubled ones; counted as
    independent they would give one about 1/sqrt(2) as wide."""
    rng = np.random.default_rng(1)
    d = rng.normal(1.0, 1.0, 12)
    twice = np.repeat(d, 2)
    grouped = rules.cluster_estimate(twice, groups=np.repeat(np.arange(12), 2))
    apart = rules.cluster_estimate(twice)
    single = rules.cluster_estimate(d)
    assert grouped.n_groups == 12
    assert (grouped.high - grouped.low) == pytest.approx(single.high - single.low, rel=0.1)
    assert (apart.high - apart.low) < 0.8 * (grouped.high - grouped.low)


def test_too_few_clusters_or_groups_give_no_interval():
    e = rules.cluster_estimate([1.0, 2.0, 3.0], groups=[0, 0, 0])
    assert e.value == pytest.approx(2.0) and np.isnan(e.low) and np.isnan(e.high)
    assert rules.directional({"a": e}) == "inconclusive"
    assert np.isnan(rules.cluster_estimate([]).value)


# ---------------------------------------------------------------------------------------- BCL-3

def test_bcl3_six_differences_replicate_when_the_cluster_beats_every_baseline():
    from claims.test_bert_clusters import bcl_3

    c, b = _arrays()
    res = {"news": _result({"refine-50": _setup(c, b), "refine-200": _setup(*_arrays(seed=1))})}
    m = bcl_3(res)
    assert m.verdict == "replicated" and len(m.parts) == 6
    assert m.decided_by in [k for k in m.details if k.startswith("news K=")]
    # the headline is the deciding part: the weakest of the six (lowest lower end)
    lows = {k: v["interval"][0] for k, v in m.details.items() if k.startswith("news K=")}
    assert m.decided_by == min(lows, key=lows.get)
    assert m.statistic.low == pytest.approx(lows[m.decided_by])
    assert m.sample_sizes["news refine-50: clusters evaluated"] == 24
    assert m.sample_sizes["news refine-50: baseline seeds"] == 5


def test_a_setup_below_the_document_minimum_is_named():
    from claims.test_bert_clusters import bcl_2

    st = _setup(*_arrays(n=6))                       # 6 clusters x 2 sentences: 12 documents
    m = bcl_2({"news": _result({"filter-200": st})})
    assert m.details["setups below the sample design's minimum of documents"] == {"news filter-200": 12}
    assert m.sample_sizes["news filter-200: documents"] == 12


def test_bcl5_and_bcl6_say_what_an_inconclusive_verdict_needs_against_their_thresholds():
    from claims.test_bert_clusters import bcl_5
    from core.inference.sample_size import needed

    rng = np.random.default_rng(0)
    rp = rng.normal(0.4, 0.6, 16)[None, :] + rng.normal(0, 0.02, (5, 16))   # clusters dominate
    res = {"news": _result({"filter-50": _setup(np.zeros(16), {"random": rp, "random_layer": rp,
                                                                "random_position": rp})})}
    m = bcl_5(res)
    assert m.verdict == "inconclusive" and m.statistic.low < 0.5 < m.statistic.high
    assert next(iter(m.parts.values())).value == pytest.approx(m.statistic.value - 0.5)
    need = needed(m.parts)   # against 0.5, not 0: more clusters would settle it
    assert need["level"] == "clusters" and need["needed"] > need["have"] == 16
    # BCL-6 measures from the band edge its interval crosses
    assert rules.band_edge(est(19, 17, 22)) == 20 and rules.band_edge(est(6, 4, 8)) == 5
    assert rules.shifted(est(19, 17, 22), 20).high == pytest.approx(2)


def test_bcl3_one_baseline_as_strong_as_the_cluster_decides_inconclusive():
    from claims.test_bert_clusters import bcl_3

    c, b = _arrays(base=(0.2, 0.0, 2.0))   # random_position as strong as the cluster at K=50
    res = {"news": _result({"refine-50": _setup(c, b), "refine-200": _setup(*_arrays(seed=1))})}
    m = bcl_3(res)
    assert m.verdict == "inconclusive"
    assert m.decided_by == "news K=50: cluster - random_position"
    assert m.statistic.low < 0 < m.statistic.high


def test_bcl3_one_baseline_stronger_than_the_cluster_decides_contradicted():
    from claims.test_bert_clusters import bcl_3

    c, b = _arrays(base=(0.2, 4.0, 0.0))   # random_layer beats the cluster at K=200
    res = {"news": _result({"refine-50": _setup(*_arrays(seed=1)), "refine-200": _setup(c, b)})}
    m = bcl_3(res)
    assert m.verdict == "contradicted"
    assert m.decided_by == "news K=200: cluster - random_layer" and m.statistic.high < 0


def test_decisive_picks_the_part_that_decided():
    parts = {"a": est(2, 1, 3), "b": est(1, 0.2, 1.8), "c": est(3, 2, 4)}
    assert rules.directional(parts) == "replicated" and decisive("replicated", parts) == "b"
    parts["d"] = est(0.5, -0.5, 1.5)
    assert rules.directional(parts) == "inconclusive" and decisive("inconclusive", parts) == "d"
    parts["e"] = est(-2, -3, -1)
    assert rules.directional(parts) == "contradicted" and decisive("contradicted", parts) == "e"


# ---------------------------------------------------------------------------------------- BCL-2, BCL-4

def test_bcl2_and_bcl4_signs():
    from claims.test_bert_clusters import bcl_2, bcl_4

    small = _result({"filter-200": _setup(*_arrays(effect=2.0, base=(0.0, 0.0, 0.0)))})
    assert bcl_2({"news": small}).verdict == "replicated"
    large = _result({"filter-50": _setup(*_arrays(effect=2.0, base=(5.0, 0.0, 0.0)))})
    m = bcl_4({"news": large})
    assert m.verdict == "replicated" and m.statistic.value == pytest.approx(3.0, abs=0.5)
    flipped = _result({"filter-50": _setup(*_arrays(effect=5.0, base=(2.0, 0.0, 0.0)))})
    assert bcl_4({"news": flipped}).verdict == "contradicted"


# ---------------------------------------------------------------------------------------- BCL-5

def _rp(mean, spread, n=20, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.normal(mean, spread, n) for _ in range(5)])


def test_bcl5_threshold_of_half_a_percent():
    tight, high, wide = _rp(0.1, 0.05), _rp(1.0, 0.05), _rp(0.45, 0.6)
    parts = {"low": rules.baseline_increase(_x(tight), "random_position")}
    assert rules.below(parts) == ("replicated", "low") and parts["low"].high < 0.5
    parts["wide"] = rules.baseline_increase(_x(wide), "random_position")
    assert parts["wide"].low < 0.5 < parts["wide"].high
    assert rules.below(parts) == ("inconclusive", "wide")
    parts["high"] = rules.baseline_increase(_x(high), "random_position")
    assert parts["high"].low > 0.5
    assert rules.below(parts) == ("contradicted", "high")
    # the bar is 0.5 exactly: an interval ending at 0.49 passes, one starting at 0.51 fails
    assert rules.below({"a": est(0.3, 0.1, 0.49)}) == ("replicated", "a")
    assert rules.below({"a": est(0.6, 0.51, 0.7)}) == ("contradicted", "a")
    assert rules.below({"a": est(0.3, 0.1, 0.49), "b": est(0.2, 0.0, 0.45)})[1] == "a"


def _x(rp):
    n = rp.shape[1]
    return rules.intervention(_setup(np.zeros(n), {"random": rp, "random_layer": rp, "random_position": rp}))


# ---------------------------------------------------------------------------------------- BCL-6

@pytest.mark.parametrize("sizes,verdict", [
    ([9, 10, 10, 11, 10, 9, 11, 10, 12, 8] * 3, "replicated"),
    ([2, 3, 3, 2, 3, 2, 3, 3, 2, 3] * 3, "contradicted"),
    ([30, 28, 31, 29, 35, 27, 30, 33] * 3, "contradicted"),
    ([2, 30, 3, 25, 4, 22, 5, 21, 3, 28, 6, 24], "inconclusive"),
])
def test_bcl6_median_band_5_to_20(sizes, verdict):
    e = rules.cluster_estimate(np.asarray(sizes, float), stat=np.median)
    assert e.value == pytest.approx(np.median(sizes))
    assert rules.in_band({"news": e}) == (verdict, "news")


def test_bcl6_band_ends_are_inside_and_corpora_must_all_hold():
    assert rules.in_band({"a": est(12, 5.0, 20.0)})[0] == "replicated"
    assert rules.in_band({"a": est(4, 3.0, 4.99)})[0] == "contradicted"
    verdict, decided = rules.in_band({"news": est(10, 8, 12), "wiki": est(3, 2, 4)})
    assert (verdict, decided) == ("contradicted", "wiki")
    verdict, decided = rules.in_band({"news": est(10, 8, 12), "wiki": est(19, 17, 19.5)})
    assert (verdict, decided) == ("replicated", "wiki")   # the one closest to an edge


# ---------------------------------------------------------------------------------------- BCL-7

def test_bcl7_null_keeps_every_clusters_per_layer_counts():
    rng = np.random.default_rng(0)
    n_layers, width, k = 4, 12, 5
    labels = rng.integers(0, k, n_layers * width)
    counts = np.stack([np.bincount(labels.reshape(n_layers, width)[l], minlength=k) for l in range(n_layers)])
    moved = 0
    for chunk in nc.layer_preserving_permutations(labels, n_layers, width, 50, np.random.default_rng(1)):
        assert chunk.shape == (50, n_layers * width)
        for perm in chunk:
            got = np.stack([np.bincount(perm.reshape(n_layers, width)[l], minlength=k) for l in range(n_layers)])
            np.testing.assert_array_equal(got, counts)
            moved += int((perm != labels).any())
    assert moved >= 45   # and it does permute


def test_bcl7_an_aligned_labelling_beats_the_null():
    """Same index in every layer, same cluster: share 1, far above the layer-preserving null."""
    n_layers, width, k = 3, 24, 4
    labels = np.tile(np.arange(width) % k, n_layers)
    share = nc.index_share(labels, n_layers, width)
    np.testing.assert_allclose(share, 1.0)
    null = nc.index_share_null(labels, n_layers, width, n_permutations=1000, seed=0)
    assert null.shape == (1000,) and np.percentile(null, 95) < 0.99
    verdict, p5, p95 = rules.exceeds_null(float(np.nanmean(share)), null)
    assert verdict == "replicated" and p95 < 1.0


def test_bcl7_a_labelling_that_avoids_sharing_falls_below_the_null():
    """Each cluster takes disjoint indices in the two layers: share 0, below the null's 5th percentile."""
    width = 8
    labels = np.r_[np.arange(width) // 4, 1 - np.arange(width) // 4]   # layer 1 swaps the halves
    share = nc.index_share(labels, 2, width)
    np.testing.assert_allclose(share, 0.0)
    null = nc.index_share_null(labels, 2, width, n_permutations=1000, seed=0)
    assert rules.exceeds_null(0.0, null)[0] == "contradicted"


def test_bcl7_rule_over_corpora():
    null = np.linspace(0.1, 0.3, 1001)   # p5 = 0.11, p95 = 0.29
    verdict, decided, per = rules.null_rule({"news": 0.5, "wiki": 0.31}, {"news": null, "wiki": null})
    assert (verdict, decided) == ("replicated", "wiki") and per["wiki"][2] == pytest.approx(0.29)
    verdict, decided, _ = rules.null_rule({"news": 0.5, "wiki": 0.2}, {"news": null, "wiki": null})
    assert (verdict, decided) == ("inconclusive", "wiki")
    assert rules.null_rule({"news": 0.05}, {"news": null})[0] == "contradicted"


# ---------------------------------------------------------------------------------------- BCL-1

def test_bcl1_strictly_decreasing_with_non_overlapping_intervals():
    falling = [est(0.9, 0.85, 0.95), est(0.7, 0.65, 0.75), est(0.5, 0.45, 0.55)]
    assert rules.strictly_decreasing(falling) == ["replicated", "replicated"]
    overlapping = [est(0.9, 0.8, 1.0), est(0.85, 0.75, 0.95), est(0.5, 0.45, 0.55)]
    assert rules.strictly_decreasing(overlapping) == ["inconclusive", "replicated"]
    rising = [est(0.5, 0.45, 0.55), est(0.9, 0.85, 0.95)]
    assert rules.strictly_decreasing(rising) == ["contradicted"]
    gaps = {"a": rules.distance_gap(*falling[:2]), "b": rules.distance_gap(*overlapping[:2])}
    assert gaps["a"].low == pytest.approx(0.1) and gaps["b"].low < 0
    assert rules.decreasing_rule(gaps, {"a": "replicated", "b": "inconclusive"}) == ("inconclusive", "b")
    assert rules.decreasing_rule({"a": gaps["a"]}, {"a": "replicated"}) == ("replicated", "a")


# ---------------------------------------------------------------------------------------- BCL-8

def test_bcl8_related_words_replicate():
    from claims.test_bert_clusters import bcl_8

    rng = np.random.default_rng(0)
    diff = rng.normal(0.2, 0.1, 30).tolist()
    r5 = Relatedness(cluster=list(range(30)), observed=[0.1] * 30, random=[0.3] * 30,
                     diff=(-np.asarray(diff)).tolist(), n_mapped=[10] * 30, n_words=[10] * 30, n_vocab_words=900)
    b8 = Relatedness(cluster=list(range(30)), observed=[0.5] * 30, random=[0.3] * 30, diff=diff,
                     n_mapped=[10] * 32, n_words=[10] * 32, n_vocab_words=900, n_vocab_with_vector=950, r5=r5)
    res = {"news": _result({}, bcl8=b8)}
    m = bcl_8(res)
    assert m.verdict == "replicated" and m.sample_sizes["news: clusters with < 2 distinct words"] == 2
    assert bcl_8(res, "R5").verdict == "contradicted"


# ---------------------------------------------------------------------------------------- readings

def test_readings_read_the_alternates_and_run_beside_the_primary():
    from claims._claim import with_readings
    from claims.test_bert_clusters import BCL_3, BCL_6, bcl_3, bcl_6

    c, b = _arrays()
    bad = {k: np.full_like(v, 3.0) for k, v in b.items()}   # under R3 every baseline beats the cluster
    r4 = np.full((5, c.size), 5.0)                          # under R4 random_position does
    st = lambda: _setup(c, b, r3=(c, bad), r4=r4, r5=(c, b))   # noqa: E731
    res = {"news": _result({"refine-50": st(), "refine-200": st()}, readings=("R3", "R4", "R5"))}
    x3 = rules.intervention(res["news"].setups["refine-50"], "R3")
    assert np.allclose(x3.baselines["random"], 3.0)
    x4 = rules.intervention(res["news"].setups["refine-50"], "R4")
    assert np.allclose(x4.baselines["random_position"], 5.0) and np.allclose(x4.baselines["random"], b["random"])
    m = with_readings(BCL_3, lambda reading: bcl_3(res, reading), rules.computed(res))
    assert m.verdict == "replicated" and set(m.readings) == {"R3", "R4", "R5"}
    assert m.readings["R3"]["verdict"] == "contradicted" and m.readings["R4"]["verdict"] == "contradicted"
    assert m.readings["R5"]["verdict"] == "replicated"
    refined = Clustering(labels=[0] * 16, avg_distance=[0.5] * 4, max_distance=[0.9] * 4,
                         refined=[[0] * 10] * 12, refine_trace=[[0.7, 0.5]] * 12)
    six = {"news": replace(res["news"], clusterings={"filter": {50: refined}})}
    assert with_readings(BCL_6, lambda reading: bcl_6(six, reading), rules.computed(six)).readings == {}  # none touches BCL-6
    for reading in ("R3", "R4", "R5"):
        with pytest.raises(KeyError, match=reading):
            rules.intervention(_setup(c, b), reading)
