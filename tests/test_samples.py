"""Per-unit data (``--log-samples``, core.samples): the file format, each experiment's export, and a claim's
statistic recomputed from a reloaded file as the README shows."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from core import inference as inf
from core.abl.ablation import AblationSweep
from core.bcl.result import BclResult, Evaluated, IndexShare, ReadingR4, Relatedness, Setup
from core.mod.result import ModResult
from core.samples import (
    SAMPLES_VERSION,
    SamplesVersionError,
    read_samples,
    samples_path,
    write_samples,
)


def _sweep(seed=0, n_units=40):
    rng = np.random.default_rng(seed)
    methods, fractions, seeds = ("zero", "mean", "peak"), (0.0, 0.5), (0, 1, 2)
    shape = (len(methods), len(seeds), len(fractions), n_units)
    return AblationSweep(model="m/x", kind="causal", methods=methods, fractions=fractions, seeds=seeds,
                         top1=rng.random(shape) < 0.4, ce=rng.gamma(2.0, 1.5, shape).astype(np.float32),
                         peak_over_std=rng.random(8), info={"sizes": {}},
                         unit_docs=np.repeat(np.arange(n_units // 4), 4))


def test_round_trip_by_hand(tmp_path):
    path = samples_path(tmp_path, "abl", "org/model:random")
    assert path.name == "abl__org--model_random.npz" and path.parent.name == "samples"
    write_samples(path, {"x": [[1, 2], [3, 4]], "name": ["a", "b"]},
                  {"x": (["row", "col"], "counts"), "name": (["row"], "labels")},
                  experiment="abl", model="org/model:random", corpus="news")
    s = read_samples(path)
    assert s["x"].tolist() == [[1, 2], [3, 4]] and s["name"].tolist() == ["a", "b"]
    assert s.dims("x") == ["row", "col"]
    assert s.meta["version"] == SAMPLES_VERSION and s.meta["corpus"] == "news"
    assert s.meta["arrays"]["x"] == {"dims": ["row", "col"], "what": "counts", "shape": [2, 2]}
    with pytest.raises(KeyError, match="holds x, name"):
        s["y"]


def test_bad_input_fails_naming_it(tmp_path):
    p = tmp_path / "s.npz"
    with pytest.raises(ValueError, match="'x': 2 dimension"):
        write_samples(p, {"x": np.zeros((2, 2))}, {"x": (["row"], "")}, experiment="e", model="m")
    with pytest.raises(ValueError, match="differ"):
        write_samples(p, {"x": np.zeros(2)}, {}, experiment="e", model="m")
    with pytest.raises(ValueError, match="objects"):
        write_samples(p, {"x": np.array([{}, 1], dtype=object)}, {"x": (["row"], "")}, experiment="e", model="m")
    assert not p.exists()


def test_a_file_of_another_version_is_refused(tmp_path):
    p = tmp_path / "old.npz"
    write_samples(p, {"x": np.zeros(2)}, {"x": (["row"], "")}, experiment="e", model="m")
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["__meta__"]))
    meta["version"] = 0
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(p, **arrays)
    with pytest.raises(SamplesVersionError, match="version 0; this harness reads version 1"):
        read_samples(p)
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(SamplesVersionError, match="not a neuron-claims samples file"):
        read_samples(tmp_path / "other.npz")


def test_abl_statistic_recomputed_from_the_file(tmp_path):
    """README, "Per-unit data": ABL-1's top1 part recomputed from a reloaded samples file equals the
    claim's own computation on the experiment's result."""
    sweep = _sweep()
    arrays, schema, meta = sweep.samples()
    path = write_samples(samples_path(tmp_path, "abl", sweep.model), arrays, schema, experiment="abl",
                         model=sweep.model, **meta)
    s = read_samples(path)
    assert s.dims("top1") == ["method", "draw", "fraction", "unit"]
    m, f = list(s["method"]), list(s["fraction"]).index(0.5)
    diff = 100.0 * (s["top1"][m.index("peak"), :, f].astype(float) - s["top1"][m.index("zero"), :, f])
    from_file = inf.nested_bootstrap(diff, docs=s["unit_doc"])
    direct = inf.nested_bootstrap(sweep.top1_at("peak", 0.5) - sweep.top1_at("zero", 0.5), docs=sweep.unit_docs)
    assert (from_file.value, from_file.low, from_file.high) == (direct.value, direct.low, direct.high)
    assert np.array_equal(s["ce"], sweep.ce)


def test_mod_arrays_all_get_named_dimensions():
    n, layers, d, k = 3, 2, 8, 4
    a = {"base_top1": np.ones(n), "base_top1_random": np.ones(n), "eval_units": np.ones(n, int),
         "eval_groups": np.ones(n, int), "count_drop20": np.ones(n, int), "fraction_drop20": np.ones(n),
         "relative_drop20": np.ones(n), "evals_drop20": np.ones(n, int), "overshoot_drop20": np.zeros(n),
         "bracket_drop20": np.zeros((n, 4)), "R_drop20": np.eye(n), "diag_drop20": np.ones(n),
         "R_A_half1": np.eye(n), "R_B_half2": np.eye(n), "R_random": np.eye(n),
         "selected": np.zeros((n, layers * d), bool), "selected_random": np.zeros((n, layers * d), bool),
         "auc_trained": np.zeros((layers, n)), "auc_random": np.zeros((layers, n)), "auc_null": np.zeros((layers, n)),
         "lorenz_trained": np.zeros(k), "lorenz_random": np.zeros(k), "lottery_null": np.zeros(100),
         "R1__R_drop20": np.eye(n)}
    res = ModResult.from_flat("m", "causal", ["a", "b", "c"], {"drop20": 0.8}, "drop20", a,
                              {"drop20": ["reached"] * n, "R1__drop20": ["reached"] * n}, {"readings": ["R1"]})
    arrays, schema, meta = res.samples()
    assert all(not dims or not dims[0].startswith("d0") for dims, _ in schema.values()), schema
    assert schema["R_drop20"][0] == ["pruned_for", "evaluated_on"]
    assert schema["R1__R_drop20"][0] == ["pruned_for", "evaluated_on"]
    assert schema["auc_trained"][0] == ["layer", "subset"]
    assert arrays["subset"].tolist() == ["a", "b", "c"] and meta["primary"] == "drop20"
    assert set(arrays) == {*a, "subset"}  # the flat form, as saved: R1 keeps only the array it changes
    assert meta["status"] == {"drop20": ["reached"] * n, "R1__drop20": ["reached"] * n}


def test_bcl_rows_by_hand():
    ev = [Evaluated(cluster=7, size=5, n_sentences=2, n_targets=3, base_loss=2.0, cluster_pct=10.0,
                    baselines={"random": [1.0, 2.0]}, rows=[0, 1], documents=[4], r4=ReadingR4([0.5]))]
    setup = Setup(method="filter", k_paper=50, k=4, n_clusters=4, evaluated=ev, groups=[3], doc_groups=[3],
                  n_sentences=2, n_documents=1, topped_up=0, skipped=0, not_sampled=3, sizes=[5, 1, 1, 1],
                  top_tokens=[["a"]] * 4)
    result = BclResult(model="m", corpus="news", kind="causal", tier="small", profile="ci", n_layers=2,
                       width=2, n_neurons=4, sizes={}, threshold=5, n_positions=100, n_distinct=10, n_kept=5,
                       ks={50: 4}, seeds=[0, 1], readings=["R4"], clusterings={}, setups={"filter-50": setup},
                       bcl7=IndexShare(per_cluster=[0.1, 0.2], observed=0.15, null=[0.0, 0.1, 0.05]),
                       bcl8=Relatedness([], [], [], [], [], [], 0, 0), eval_sentences=10, eval_documents=4,
                       cost={}, data={})
    arrays, schema, meta = result.samples()
    rows = list(zip(arrays["reading"], arrays["condition"], arrays["seed"], arrays["pct_increase"],
                    arrays["group"], arrays["cluster"]))
    assert rows == [("primary", "cluster", -1, 10.0, 3, 7), ("primary", "random", 0, 1.0, 3, 7),
                    ("primary", "random", 1, 2.0, 3, 7), ("R4", "random_position", 0, 0.5, 3, 7)]
    assert meta == {"corpus": "news", "kind": "causal", "ks": {"50": 4}} and arrays["index_share_null"].size == 3


def test_per_model_writes_samples_only_when_asked(tmp_path, monkeypatch):
    import claims._claim
    from claims._claim import per_model

    monkeypatch.setattr(claims._claim, "preflight_or_stop", lambda *a, **k: {"passed": True})

    def config(flag):
        return SimpleNamespace(pluginmanager=SimpleNamespace(getplugin=lambda name: None),
                               getoption=lambda name, default=None: flag if name == "--log-samples" else default)

    sweep = _sweep()
    for flag, run in ((False, tmp_path / "off"), (True, tmp_path / "on")):
        get = per_model(config(flag), run, lambda model: sweep, lambda model, r: {},
                        lambda model, r: {("abl", None): r.samples()})
        assert get("m/x") is sweep
        assert (run / "samples" / "abl__m--x.npz").is_file() is flag
