"""The BCL result record (core.bcl.result): read from and written back to the cache entry's JSON unchanged
(readings R3/R4 per evaluated cluster, R5 per setup and for BCL-8, included), its figure payload by hand,
and the figures drawn from that payload."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.bcl.result import BclResult

BASELINES = ("random", "random_layer", "random_position")


def _scores(cluster, pct, base, *, r3=None, r4=None):
    """One evaluated cluster as the experiment writes it (ClusterScore.as_dict and its documents)."""
    alt = {}
    if r3 is not None:
        alt["R3"] = {"cluster_pct": r3, "baselines": {b: [r3 - 1.0, r3 - 2.0] for b in BASELINES}}
    if r4 is not None:
        alt["R4"] = {"baselines": {"random_position": [r4, r4 + 0.5]}}
    return {"cluster": cluster, "size": 3, "n_sentences": 2, "n_targets": 4, "base_loss": 2.5, "cluster_pct": pct,
            "baselines": {b: [base + j, base - j] for j, b in enumerate(BASELINES)}, "rows": [cluster, cluster + 9],
            "readings": alt, "documents": [cluster]}


def _evaluation(pcts, *, r3=False, r4=False):
    ev = [_scores(c, p, p / 2, r3=p - 1 if r3 else None, r4=0.1 * c if r4 else None) for c, p in enumerate(pcts)]
    n = len(ev)
    return {"evaluated": ev, "groups": list(range(n)), "doc_groups": list(range(n)), "n_sentences": 2 * n,
            "n_documents": n, "topped_up": 1, "skipped": 0}


def _relatedness(diff):
    return {"cluster": list(range(len(diff))), "observed": [d + 0.3 for d in diff], "random": [0.3] * len(diff),
            "diff": list(diff), "n_mapped": [10] * len(diff), "n_words": [9] * len(diff), "n_vocab_words": 40}


def result_dict(pcts=(4.0, 1.0, 6.0, 2.0, 5.0), *, r3=True, r4=True, r5=True) -> dict:
    """A BCL result as bcl_experiment writes its cache entry: 2 layers of 4 neurons, K 20/50/200 scaled to
    2/4/4, one ``filter`` variant, setups filter-50 and refine-50."""
    labels50 = [0, 0, 1, 1, 2, 2, 2, 3]
    filt = {"20": {"labels": [0] * 4 + [1] * 4, "avg_distance": [0.8, 0.9], "max_distance": [1.2, 1.3]},
            "50": {"labels": labels50, "avg_distance": [0.5, 0.6, 0.7, None], "max_distance": [0.9, 1.0, 1.1, None],
                   "refined": [[0], [2, 3], [4, 5, 6], [7]], "refine_trace": [[0.9, 0.5], [0.7], [0.8, 0.6, 0.4], []]},
            "200": {"labels": labels50, "avg_distance": [0.4] * 4, "max_distance": [0.8] * 4,
                    "refined": [[0, 1], [2], [4], [7]], "refine_trace": [[0.5], [0.4], [0.3], []]}}
    readings = [rid for rid, on in (("R3", r3), ("R4", r4), ("R5", r5)) if on]
    setups = {}
    for method in ("filter", "refine"):
        ev = _evaluation(pcts[:4], r3=r3, r4=r4)
        ev5 = {**_evaluation(pcts[1:], r3=False, r4=False), "top_tokens": [["x", "y"]] * 4}
        setups[f"{method}-50"] = {"method": method, "k_paper": 50, "k": 4, "n_clusters": 4, **ev, "skipped": 0,
                                  "not_sampled": 0, "sizes": [2, 2, 3, 1],
                                  "top_tokens": [[f"t{c}", f"u{c}"] for c in range(4)],
                                  "readings": {"R5": ev5} if r5 else {}}
    bcl8 = {**_relatedness([0.1, -0.05, 0.2]), "n_vocab_with_vector": 45,
            "readings": {"R5": _relatedness([0.0, 0.3])} if r5 else {}}
    return {"experiment": "bcl", "model": "m", "corpus": "news", "kind": "masked", "tier": "small",
            "profile": "ci", "n_layers": 2, "width": 4, "n_neurons": 8,
            "sizes": {"min_documents": 16, "methods": ["filter"]}, "threshold": 5, "n_positions": 1000,
            "n_distinct": 300, "n_kept": 50, "ks": {"20": 2, "50": 4, "200": 4}, "seeds": [0, 1],
            "readings": readings, "clusterings": {"filter": filt}, "setups": setups,
            "bcl7": {"per_cluster": [1.0, 0.5, float("nan"), 0.0], "observed": 0.5, "null": [0.1, 0.2, 0.3]},
            "bcl8": bcl8, "eval_sentences": 64, "eval_documents": 12,
            "cost": {"seconds": {"primary+R3+R4": 1.5, "R5": 0.5}},
            "data": {"collect": "news", "eval": "news"}}


# ---------------------------------------------------------------------------------------- the JSON form

def test_the_record_writes_back_the_json_it_was_read_from():
    d = result_dict()
    r = BclResult.from_dict(d)
    assert json.dumps(r.to_dict()) == json.dumps(d)      # same keys, same order, same values
    # the readings are fields, not keys
    e = r.setups["filter-50"].evaluated[2]
    assert e.r3.cluster_pct == 5.0 and e.r3.baselines["random"] == [4.0, 3.0]
    assert e.r4.random_position == pytest.approx([0.2, 0.7])
    assert [x.cluster_pct for x in r.setups["refine-50"].r5.evaluated] == [1.0, 6.0, 2.0, 5.0]
    assert r.bcl8.r5.diff == [0.0, 0.3] and r.bcl8.n_vocab_with_vector == 45 and r.bcl8.r5.n_vocab_with_vector is None
    assert r.ks == {20: 2, 50: 4, 200: 4} and r.clusterings["filter"][20].refined is None
    assert r.setups["filter-50"].name == "filter-50"


def test_a_result_without_readings_has_none_and_writes_empty_readings():
    d = result_dict(r3=False, r4=False, r5=False)
    r = BclResult.from_dict(d)
    assert r.setups["filter-50"].r5 is None and r.bcl8.r5 is None
    assert all(e.r3 is None and e.r4 is None for e in r.setups["filter-50"].evaluated)
    out = r.to_dict()
    assert out["setups"]["filter-50"]["readings"] == {} and out["bcl8"]["readings"] == {}
    assert out["setups"]["filter-50"]["evaluated"][0]["readings"] == {}
    assert json.dumps(out) == json.dumps(d)


@settings(max_examples=40, deadline=None)
@given(pcts=st.lists(st.floats(-50, 50, allow_nan=False), min_size=4, max_size=4), r3=st.booleans(),
       r4=st.booleans(), r5=st.booleans())
def test_round_trip_through_json_is_the_identity(pcts, r3, r4, r5):
    d = json.loads(json.dumps(result_dict(tuple(pcts) + (0.0,), r3=r3, r4=r4, r5=r5)))
    text = json.dumps(d)
    again = BclResult.from_dict(json.loads(json.dumps(BclResult.from_dict(d).to_dict())))
    assert json.dumps(again.to_dict()) == text


def test_bad_input_names_what_was_expected():
    d = result_dict()
    with pytest.raises(ValueError, match="experiment 'bcl'.*'mod'"):
        BclResult.from_dict({**d, "experiment": "mod"})
    with pytest.raises(ValueError, match="missing bcl7, cost"):
        BclResult.from_dict({k: v for k, v in d.items() if k not in ("bcl7", "cost")})
    with pytest.raises(ValueError, match="got 'list'"):
        BclResult.from_dict([])


# ---------------------------------------------------------------------------------------- the figure payload

def test_figure_payload_by_hand():
    p = BclResult.from_dict(result_dict()).curves()
    assert p["experiment"] == "bcl" and p["ks"] == {"20": 2, "50": 4, "200": 4}
    assert p["distances"]["50"] == {"avg": [0.5, 0.6, 0.7, None], "max": [0.9, 1.0, 1.1, None]}
    assert list(p["distances"]) == ["20", "50", "200"]
    row = p["table"]["filter-50"]
    # clusters 4, 1, 6, 2: mean 3.25; random = pct/2 + 0 and - 0 per seed: mean 1.625; random_layer:
    # pct/2 + 1 and pct/2 - 1, the same mean
    assert row["cluster"] == pytest.approx(3.25) and row["random"] == pytest.approx(1.625)
    assert row["random_layer"] == pytest.approx(1.625) and row["evaluated"] == 4
    assert [b["cluster"] for b in row["best"]] == [2, 0, 3] and row["best"][0]["top_tokens"] == ["t2", "u2"]
    # the four largest K=50 clusters (sizes 2, 2, 3, 1: cluster 2 first, ties by id)
    assert list(p["positions"]) == ["2", "0", "1", "3"] and p["positions"]["2"] == [4, 5, 6]
    assert p["refined_sizes"] == [1, 2, 3, 1] and sorted(p["refine_trace"]) == ["0", "1", "2", "3"]
    assert p["refine_trace"]["2"] == [0.8, 0.6, 0.4]


def test_no_evaluated_cluster_gives_none_in_the_table():
    d = result_dict(r3=False, r4=False, r5=False)
    d["setups"]["filter-50"]["evaluated"] = []
    row = BclResult.from_dict(d).curves()["table"]["filter-50"]
    assert row["cluster"] is None and row["random_position"] is None and row["best"] == []


def test_the_figures_draw_from_the_payload(tmp_path):
    from core.bcl.figures import render

    out = render([BclResult.from_dict(result_dict()).curves()], tmp_path)
    drawn = [e["path"] for e in out if e["path"] is not None]
    assert len(out) == 5 and all(p.exists() and p.stat().st_size > 0 for p in drawn)
    assert "| m / news | filter | 50 (4) | 4 / 0 |" in out[1]["markdown"]


# ---------------------------------------------------------------------------------------- per-unit data

def test_samples_hold_every_reading_row():
    arrays, schema, meta = BclResult.from_dict(result_dict()).samples()
    readings = list(arrays["reading"])
    # per setup: primary 4 clusters x (1 + 3 baselines x 2 seeds); R3 the same; R4 4 x 2; R5 the same as primary
    assert readings.count("primary") == 2 * 4 * 7 and readings.count("R3") == 2 * 4 * 7
    assert readings.count("R4") == 2 * 4 * 2 and readings.count("R5") == 2 * 4 * 7
    assert set(arrays) == set(schema) and meta == {"corpus": "news", "kind": "masked",
                                                   "ks": {"20": 2, "50": 4, "200": 4}}
    assert np.isnan(arrays["index_share"][2])
