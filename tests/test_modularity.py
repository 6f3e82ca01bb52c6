"""The MOD experiment's pieces: Eq. 1 scores, selection, the count search, cross-pruning on tiny models,
the readings R1/R2 and the MOD-3 evaluation halves."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import UnknownNameError
from core.evaluate import EvalSet
from core.mod.figures import render
from core.mod.experiment import run_mod
from core.mod.nulls import lottery_null, offdiag, size_matched_sets
from core.mod.result import ModResult
from core.mod.selection import ONE_NEURON, bisect_count, selection_scores, top_count, top_fraction
from core.mod.subsets import ModData, check_subset, eval_halves, subsets_for
from tests.tiny_models import build


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_CLAIMS_CACHE", str(tmp_path))


# ---------------------------------------------------------------------------------------------
# scores (MOD Eq. 1)

def test_code_and_printed_orientations_differ_by_hand():
    u = np.array([[2.0, 0.5, 1.0]])  # mean |n| on D_u
    r = np.array([[1.0, 1.0, 1.0]])  # mean |n| on D_r
    code = selection_scores(u, r)
    printed = selection_scores(u, r, orientation="printed")
    np.testing.assert_allclose(code, [[2 / 1.001, 0.5 / 1.001, 1 / 1.001]])
    np.testing.assert_allclose(printed, [[1 / 2.001, 1 / 0.501, 1 / 1.001]])
    # the code ranks first the neuron most active on D_u, the printed equation the least active one
    assert top_fraction(code, 1 / 3)[0].tolist() == [True, False, False]
    assert top_fraction(printed, 1 / 3)[0].tolist() == [False, True, False]


def test_scores_reject_bad_input():
    with pytest.raises(UnknownNameError, match="code"):
        selection_scores([1.0], [1.0], orientation="sideways")
    with pytest.raises(ValueError, match="same shape"):
        selection_scores([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="non-negative"):
        selection_scores([-1.0], [1.0])


# ---------------------------------------------------------------------------------------------
# selection

def test_top_fraction_over_all_layers_and_per_layer_by_hand():
    s = np.array([[9.0, 1.0, 2.0, 3.0], [8.0, 7.0, 6.0, 0.0]])
    assert top_fraction(s, 0.5).tolist() == [[True, False, False, False], [True, True, True, False]]
    assert top_fraction(s, 0.5, per_layer=True).tolist() == [[True, False, False, True],
                                                             [True, True, False, False]]
    assert not top_fraction(s, 0.0).any()
    assert top_fraction(s, 1e-6).sum() == 1  # a positive fraction selects at least one neuron


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 5), st.integers(1, 40), st.floats(0, 1), st.integers(0, 100))
def test_top_fraction_counts_and_ranking(n_layers, width, f, seed):
    s = np.random.default_rng(seed).standard_normal((n_layers, width))
    sel = top_fraction(s, f)
    m = int(sel.sum())
    assert m == (max(round(f * s.size), 1) if f > 0 else 0)
    if 0 < m < s.size:
        assert s[sel].min() >= s[~sel].max()
    per = top_fraction(s, f, per_layer=True)
    assert (per.sum(1) == (max(round(f * width), 1) if f > 0 else 0)).all()


# ---------------------------------------------------------------------------------------------
# the count search (claims.md, MOD setup, revision 2)

def test_top_count_selects_the_highest_scores():
    s = np.array([[9.0, 1.0, 2.0, 3.0], [8.0, 7.0, 6.0, 0.0]])
    assert top_count(s, 3).tolist() == [[True, False, False, False], [True, True, False, False]]
    assert not top_count(s, 0).any() and top_count(s, 8).all()
    with pytest.raises(ValueError, match="integer"):
        top_count(s, 9)


def _linear(n, zero_at):
    """r(m) = 1 - m / zero_at, floored at 0: a smooth accuracy curve over counts."""
    return lambda m: max(0.0, 1 - m / zero_at)


def test_search_finds_a_count_within_tolerance_of_a_smooth_curve():
    calls = []
    n = 10_000

    def rel(m):
        calls.append(m)
        return _linear(n, 4000)(m)

    s = bisect_count(rel, 0.5, n)
    assert s.status == "reached" and abs(s.relative - 0.5) <= 0.02
    assert abs(s.count - 2000) <= 0.02 * 4000
    assert calls[:3] == [10_000, 5000, 2500]  # N first, then midpoints of [lower, upper]
    assert s.n_evals == len(calls) == len(s.history) and s.history[-1] == (s.count, s.relative)
    lo, hi = s.lower, s.upper
    assert lo[0] < s.count < hi[0] and lo[1] > 0.5 >= hi[1]  # the final bracket around the stopping count
    assert s.overshoot == 0.0 and s.alternate == s.count


def test_a_step_curve_selects_the_upper_count_at_one_neuron_resolution():
    # one neuron (the 1,234th) moves relative top1 from 0.9 to 0.3, across the whole band 0.8 +- 0.02
    n, jump = 46_080, 1234

    def step(m):
        return 0.9 if m < jump else 0.3

    s = bisect_count(step, 0.8, n)
    assert s.status == ONE_NEURON and s.reached
    assert s.count == jump and s.relative == 0.3  # the smallest count that reaches the target
    assert s.lower == (jump - 1, 0.9) and s.upper == (jump, 0.3)  # the final bracket, both counts and r
    assert s.overshoot == pytest.approx(0.5)  # target - r
    assert s.alternate == jump - 1 and s.alternate_relative == 0.9  # reading R1: the lower count
    assert s.n_evals <= math.ceil(math.log2(n)) + 2


def test_a_first_neuron_that_overshoots_leaves_lower_count_zero():
    s = bisect_count(lambda m: 0.1, 0.5, 64)  # pruning a single neuron already overshoots
    assert s.status == ONE_NEURON and s.count == 1 and s.lower == (0, 1.0)
    assert s.alternate == 0  # R1 would select nothing


def test_unreachable_names_r_with_every_neuron_pruned():
    s = bisect_count(lambda m: 0.9, 0.5, 100)
    assert s.status == "unreachable" and not s.reached and s.n_evals == 1 and s.count == -1
    assert s.upper == (100, 0.9) and np.isnan(s.relative)
    # within 0.02 of the target with every neuron pruned is reached, not unreachable
    s = bisect_count(lambda m: 1.0 if m < 100 else 0.515, 0.5, 100)
    assert s.status == "reached" and s.count == 100
    # a model already at chance (no baseline accuracy) gives NaN: unreachable, not a crash
    assert bisect_count(lambda m: float("nan"), 0.8, 100).status == "unreachable"
    with pytest.raises(ValueError, match="n_neurons"):
        bisect_count(lambda m: 0.5, 0.5, 0)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200_000), st.floats(0.05, 0.95), st.floats(0.0, 1.0), st.integers(0, 10**6))
def test_search_never_fails_a_reachable_subset_and_is_bounded(n, target, where, seed):
    """Any curve (monotone or not) with r(N) within reach: a selection, in <= ceil(log2 N) + 2
    evaluations; the selection is within tolerance, or the upper end of a bracket at adjacent counts
    whose lower r is above the target and upper r at or below it."""
    rng = np.random.default_rng(seed)
    jump = int(where * n)
    noise = rng.uniform(-0.05, 0.05, size=64)

    def curve(m):  # a noisy step somewhere in [0, N], reaching below the target at N
        r = (0.99 if m < jump else target - 0.3) + noise[m % 64]
        return float(min(max(r, 0.0), 1.0)) if m < n else max(0.0, target - 0.25)

    s = bisect_count(curve, target, n)
    assert s.reached
    assert s.n_evals <= math.ceil(math.log2(n)) + 2 if n > 1 else s.n_evals <= 2
    if s.status == "reached":
        assert abs(s.relative - target) <= 0.02
    else:
        assert s.upper[0] - s.lower[0] == 1 and s.count == s.upper[0]
        assert s.lower[1] > target >= s.upper[1]


# ---------------------------------------------------------------------------------------------
# the experiment on tiny models

SCALE = 100.0


def vit_pair():
    """A tiny ViT whose MLPs dominate the residual stream (so pruning them matters), and its twin."""
    import transformers as T

    cfg = T.ViTConfig(image_size=28, patch_size=7, num_channels=1, hidden_size=32, intermediate_size=256,
                      num_hidden_layers=2, num_attention_heads=4, num_labels=10)
    models = []
    for seed in (0, 1):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            models.append(T.ViTForImageClassification(cfg).eval())
    with torch.no_grad():
        for m in models:
            for block in m.vit.layers if hasattr(m.vit, "layers") else m.vit.encoder.layer:
                block.mlp.fc2.weight.mul_(SCALE)
    return models


def tiny_image_data(model, n_subsets=4, per=20, seed=0) -> ModData:
    g = torch.Generator().manual_seed(seed)
    subs = [f"class{i}" for i in range(n_subsets)]

    def imgs(n, shift):
        return torch.randn(n, 1, 28, 28, generator=g) + shift

    collect = {s: {c: EvalSet("image", imgs(8, i), torch.zeros(8, dtype=torch.long))
                   for i, c in enumerate(subs)} for s in "AB"}
    x = torch.cat([imgs(per, i) for i in range(n_subsets)])
    with torch.no_grad():
        y = model(pixel_values=x).logits.argmax(-1)  # the model is right on every image: base top1 1
    return ModData("image", subs, subs, collect, EvalSet("image", x, y), np.repeat(np.arange(n_subsets), per))


def test_run_mod_on_a_tiny_vit(tmp_path):
    trained, random = vit_pair()
    data = tiny_image_data(trained, per=60)
    res = run_mod(trained, random, name="tiny", data=data, batch_size=16, stats_key="t", k=8, progress=False,
                  null_draws=20, readings=("R1", "R2"))
    n, neurons = 4, 2 * 256
    assert res.base_top1.tolist() == [1.0] * n
    assert res.eval_units.tolist() == [60] * n and res.eval_groups.tolist() == [60] * n
    for t in ("drop50", "drop80"):
        s = res.search(t)
        assert s.R.shape == (n, n) and len(s.status) == n
        assert s.evaluations.max() <= math.ceil(math.log2(neurons)) + 1
        for i, st_ in enumerate(s.status):
            lo_m, lo_r, hi_m, hi_r = s.bracket[i]
            assert (s.count[i] > 0) == (st_ != "unreachable")
            assert np.isfinite(s.fraction[i]) == (st_ != "unreachable")
            if st_ == "unreachable":
                assert np.isnan(s.R[i]).all() and hi_m == neurons and hi_r > res.targets[t] + 0.02
                continue
            # the measured diagonal R[u, u] is the searched subset's relative top1 at the selection
            assert s.diagonal[i] == pytest.approx(s.relative[i], abs=1e-6)
            if st_ == "reached":
                assert abs(s.R[i, i] - res.targets[t]) <= 0.02 + 1e-9
            elif st_ == ONE_NEURON:
                assert hi_m - lo_m == 1 and s.count[i] == hi_m and hi_r <= res.targets[t] < lo_r
    primary = res.search("drop50")
    assert "unreachable" not in primary.status  # the MLP-dominated tiny ViT reaches its targets
    assert res.selected.shape == (n, neurons)
    assert (res.selected.sum(1) == primary.count).all()
    assert (res.random.selected.sum(1) == primary.count).all()  # the twin: same counts
    assert res.auc.trained.shape == res.auc.null.shape == (2, n)
    a = res.auc.trained
    assert ((a >= 0.5) & (a <= 1 - 1 / 16)).all()
    # MOD-3's noise floor: both halves computed for every subset with a selection
    assert np.isfinite(res.noise_floor.R_A_half1).all() and np.isfinite(res.noise_floor.R_B_half2).all()
    assert res.info["eval_halves"]["units_per_half"] == [[30, 30]] * n
    # the readings: R1 takes the lower count where the bracket closed at adjacent counts, R2 its own search
    r1, r2 = res.alternate("R1"), res.alternate("R2")
    assert list(res.readings) == ["R1", "R2"] and (r1.reading, r2.reading, res.reading) == ("R1", "R2", None)
    for i, st_ in enumerate(primary.status):
        want = primary.bracket[i, 0] if st_ == ONE_NEURON else primary.count[i]
        assert r1.search().count[i] == want
        if r1.search().count[i] == primary.count[i]:  # same count: same row, not recomputed
            np.testing.assert_array_equal(r1.search().R[i], primary.R[i])
    # R1 searches nothing: its brackets and evaluations are the primary's; R2 has its own
    assert r1.search().bracket is primary.bracket and "bracket_drop50" in r1.shared
    assert r2.search().evaluations.shape == (n,) and r2.info["reading"] == "R2" and "bracket_drop50" not in r2.shared
    assert not np.array_equal(r2.auc.trained, res.auc.trained)  # printed scores select others
    np.testing.assert_array_equal(r2.auc.null, res.auc.null)
    assert set(res.info["cost"]) == {"primary", "R1", "R2"}
    assert res.info["cost"]["R2"]["search_evaluations"] > 0
    with pytest.raises(UnknownNameError, match="R1"):
        res.alternate("R3")
    # save / load round trip (the flat form, key for key) and a JSON-able figure payload
    res.save(tmp_path / "r.npz")
    back = ModResult.load(tmp_path / "r.npz")
    flat, meta = res.to_flat()
    with np.load(tmp_path / "r.npz") as z:
        assert [k for k in z.files if k != "__meta__"] == list(flat)
    assert "R1__R_drop50" in flat and "R1__bracket_drop50" not in flat and "R2__bracket_drop50" in flat
    assert back.to_flat()[1] == json.loads(json.dumps(meta))
    for k, v in back.to_flat()[0].items():
        assert np.array_equal(v, flat[k], equal_nan=True) and v.dtype == flat[k].dtype, k
    assert np.array_equal(back.alternate("R2").search().R, r2.search().R, equal_nan=True)
    payload = json.loads(json.dumps(back.curves()))
    assert payload["experiment"] == "mod" and len(payload["overlap"]["trained"]) == n
    search = payload["search"]["drop50"]["class0"]
    assert {"status", "count", "evaluations", "bracket", "measured R[u, u]"} <= set(search)
    figures = render([payload, {"experiment": "abl"}], tmp_path / "figures")
    assert len(figures) == 4
    for f in figures:
        assert f["path"].is_file() and f["path"].stat().st_size > 0 and f["title"] and f["caption"]
    # restrict slices every subset dimension, of the readings too, and keeps the MOD-6 null whole
    sub = res.restrict([0, 2, 3])
    assert sub.subsets == ["class0", "class2", "class3"] and sub.alternate("R1").search().R.shape == (3, 3)
    assert sub.search().bracket.shape == (3, 4) and sub.selected.shape == (3, neurons)
    assert sub.auc.trained.shape == (2, 3) and sub.lottery_null is res.lottery_null
    np.testing.assert_array_equal(sub.search("drop80").R, res.search("drop80").R[np.ix_([0, 2, 3], [0, 2, 3])])
    assert sub.search("drop80").status == [res.search("drop80").status[i] for i in (0, 2, 3)]


def test_run_mod_on_a_random_llama_is_inconclusive_not_a_crash():
    # random tiny models sit at chance (top1 0): no target is reachable, and the search says so
    g = torch.Generator().manual_seed(0)
    subs = ["a", "b", "c"]
    collect = {s: {c: EvalSet("causal", torch.randint(3, 97, (2, 12), generator=g)) for c in subs} for s in "AB"}
    data = ModData("causal", subs, subs, collect, EvalSet("causal", torch.randint(3, 97, (6, 12), generator=g)),
                   np.repeat(np.arange(3), 2 * 11))
    res = run_mod(build("llama", 0), build("llama", 1), name="tiny", data=data, batch_size=4, stats_key="c",
                  k=4, progress=False, null_draws=10)
    assert res.search("drop20").status == ["unreachable"] * 3
    assert res.failed() == [f"{s} (unreachable: relative top1 nan with all 96 MLP neurons pruned, target 0.8 +- 0.02)"
                            for s in "abc"]
    assert np.isnan(res.overlap()).all()
    # the bracket of an unreachable subset records r with every neuron pruned (NaN here: base top1 0)
    assert (res.search().bracket[:, 2] == 2 * 48).all() and res.search_table()["a"]["status"] == "unreachable"


def test_subset_names_are_checked():
    _, reference = subsets_for("causal", "small", "ci")
    assert check_subset("smollm2-135m", "news", reference) == "news"
    with pytest.raises(UnknownNameError, match="mmlu-bio"):
        check_subset("smollm2-135m", "pubmed", reference)
    chosen, full_reference = subsets_for("causal", "full", "ci")  # full tier: names only (tests/test_hub_data.py)
    assert set(chosen) < set(full_reference) and "pile:HackerNews" in chosen


def test_mod_experiment_rejects_bad_subsets_and_masked_lms():
    from core.mod.experiment import mod_experiment
    from core.profiles import get_profile

    ci = get_profile("ci")
    with pytest.raises(UnknownNameError, match="bbc-politics"):
        mod_experiment("smollm2-135m", ci, subsets=["news", "wiki", "pile-arxiv"])
    with pytest.raises(UnknownNameError, match="Sneaker"):
        mod_experiment("tiny-vit-fmnist", ci, subsets=["Sandal", "Sneaker", "news"])
    with pytest.raises(ValueError, match="masked"):
        mod_experiment("minilm-l6", ci)
    with pytest.raises(UnknownNameError, match="R1"):  # an unknown reading lists the valid ones
        mod_experiment("smollm2-135m", ci, readings={"R9"})


def test_offdiag_order():
    m = np.arange(9.0).reshape(3, 3)
    assert offdiag(m).tolist() == [1, 2, 3, 5, 6, 7]


def test_size_matched_sets_keep_the_sizes_and_are_uniform():
    rng = np.random.default_rng(0)
    sizes = [0, 1, 7, 50, 100]
    for _ in range(20):
        assert size_matched_sets(sizes, 100, rng).sum(1).tolist() == sizes
    hits = np.sum([size_matched_sets([10], 100, rng)[0] for _ in range(2000)], axis=0)  # 200 expected each
    assert hits.min() > 140 and hits.max() < 260
    with pytest.raises(ValueError, match="sizes"):
        size_matched_sets([101], 100, rng)


def test_lottery_null_holds_what_the_sizes_explain():
    n_neurons = 400
    sizes = np.array([5, 10, 20, 40, 80, 160])
    # trained overlaps that follow only the set sizes (O[u, v] = |N_v| / N): the null reproduces them
    o_sizes = np.where(np.eye(6, dtype=bool), 1.0, sizes[None, :] / n_neurons)
    null = lottery_null(o_sizes, sizes, n_neurons, n_draws=200, seed=0)
    assert null.shape == (200,) and np.median(null) > 0.7
    # equal sizes: random sets have no pattern to follow, and the null centres on 0
    o = np.random.default_rng(1).uniform(0, 0.3, (6, 6))
    null = lottery_null(o, [40] * 6, n_neurons, n_draws=200, seed=0)
    assert abs(np.nanmedian(null)) < 0.15 and np.nanpercentile(null, 95) < 0.6
    assert np.array_equal(null, lottery_null(o, [40] * 6, n_neurons, n_draws=200, seed=0), equal_nan=True)


def test_eval_halves_split_by_document():
    x = torch.zeros(10, 1, 28, 28)
    data = ModData("image", ["a", "b"], ["a", "b"], {}, EvalSet("image", x, torch.zeros(10, dtype=torch.long)),
                   np.repeat([0, 1], 5))
    half, info = eval_halves(data)
    assert info["groups"] == "images" and info["units_per_half"] == [[2, 3], [2, 3]]
    # text: units of one document never straddle the halves
    ids = torch.zeros(4, 9, dtype=torch.long)  # 4 windows of 8 scored tokens, two per subset
    data = ModData("causal", ["a", "b"], ["a", "b"], {}, EvalSet("causal", ids), np.repeat([0, 1], 16))
    half, info = eval_halves(data)
    assert info["groups"].startswith("windows") and half.tolist() == ([0] * 8 + [1] * 8) * 2
    data.unit_docs = np.repeat([0, 0, 1, 2], 8)  # subset a: one document over both windows
    with pytest.raises(ValueError, match="subset a"):
        eval_halves(data)
    data.unit_docs = np.repeat([0, 1, 1, 2], 8)[:31]
    with pytest.raises(ValueError, match="shape"):
        eval_halves(data)


# ---------------------------------------------------------------------------------------------
# the result record and its flat form on disk

#: What each reading stores under its prefix (as run_mod writes it): R1 re-runs no search and no AUC.
_OWN = {"R1": ("count", "fraction", "relative", "overshoot", "R", "diag", "selected", "selected_random",
               "R_A_half1", "R_B_half2", "R_random", "lottery_null"),
        "R2": ("count", "fraction", "relative", "overshoot", "R", "diag", "evals", "bracket", "selected",
               "selected_random", "R_A_half1", "R_B_half2", "R_random", "lottery_null", "auc_trained", "auc_random")}


def _flat(n: int, layers: int, width: int, targets: list[str], readings: list[str], seed: int):
    """A flat MOD result (run_mod's key order) of random numbers, with its statuses."""
    g = np.random.default_rng(seed)
    sq, vec = lambda: g.random((n, n)), lambda: g.random(n)

    def one() -> dict:
        out = {"base_top1": vec(), "base_top1_random": vec(), "eval_units": g.integers(1, 9, n),
               "eval_groups": g.integers(1, 9, n), "auc_null": g.random((layers, n))}
        for t in targets:
            out.update({f"count_{t}": g.integers(-1, 9, n), f"fraction_{t}": vec(), f"relative_{t}": vec(),
                        f"overshoot_{t}": vec(), f"R_{t}": sq(), f"diag_{t}": vec(), f"evals_{t}": g.integers(1, 9, n),
                        f"bracket_{t}": g.random((n, 4))})
        out.update({"selected": g.random((n, layers * width)) < 0.5,
                    "selected_random": g.random((n, layers * width)) < 0.5,
                    "R_A_half1": sq(), "R_B_half2": sq(), "R_random": sq(), "lottery_null": g.random(7),
                    "lorenz_trained": g.integers(0, 5, 4), "lorenz_random": g.integers(0, 5, 4),
                    "auc_trained": g.random((layers, n)), "auc_random": g.random((layers, n))})
        return out

    arrays = one()
    status = {t: list(g.choice(["reached", ONE_NEURON, "unreachable"], n)) for t in targets}
    for rid in readings:
        mine = one()
        arrays.update({f"{rid}__{k}": v for k, v in mine.items() if k.rsplit("_", 1)[0] in _OWN[rid] or k in _OWN[rid]})
        status.update({f"{rid}__{t}": list(g.choice(["reached", "unreachable"], n)) for t in targets})
    return arrays, status


_results = st.builds(lambda n, layers, targets, readings, seed:
                     (n, targets, *_flat(n, layers, 3, targets, readings, seed)),
                     st.integers(3, 6), st.integers(1, 3), st.sampled_from([["drop20"], ["drop50", "drop80"]]),
                     st.sampled_from([[], ["R1"], ["R2"], ["R1", "R2"]]), st.integers(0, 10_000))


def _of(n, targets, arrays, status) -> ModResult:
    readings = sorted({k.split("__")[0] for k in arrays if "__" in k})
    return ModResult.from_flat("m", "causal", [f"s{i}" for i in range(n)], {t: 0.5 for t in targets}, targets[0],
                               arrays, status, {"readings": readings, "n_layers": 1, "d_mlp": 1})


@settings(max_examples=30, deadline=None)
@given(_results)
def test_the_flat_form_round_trips_key_for_key(case):
    n, targets, arrays, status = case
    res = _of(n, targets, arrays, status)
    flat, meta = res.to_flat()
    assert list(flat) == list(arrays) and meta["status"] == status
    assert all(flat[k] is arrays[k] for k in arrays)  # the very arrays, no copy, no cast
    for rid, r in res.readings.items():  # a reading reads its own arrays, the primary's elsewhere
        own = {k[len(rid) + 2:] for k in arrays if k.startswith(rid + "__")}
        for k, v in r._flat_arrays().items():
            assert v is arrays[f"{rid}__{k}" if k in own else k]


@settings(max_examples=30, deadline=None)
@given(_results, st.data())
def test_restrict_slices_every_subset_dimension(case, data):
    """restrict equals slicing the flat form by name (the key-prefix rule it replaces)."""
    n, targets, arrays, status = case
    keep = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    sub = _of(n, targets, arrays, status).restrict(keep)
    idx = np.asarray(keep)
    for key, a in sub.to_flat()[0].items():
        base, full = key.split("__")[-1], arrays[key]
        if base.startswith("auc_"):
            want = full[:, idx]
        elif base.startswith("R_"):
            want = full[np.ix_(idx, idx)]
        elif base.startswith(("lorenz_", "lottery_")):
            want = full
        else:
            want = full[idx]
        np.testing.assert_array_equal(a, want, err_msg=key)
    assert sub.to_flat()[1]["status"] == {t: [v[i] for i in keep] for t, v in status.items()}
    assert sub.subsets == [f"s{i}" for i in keep]


def test_result_fields_by_hand(tmp_path):
    arrays, status = _flat(3, 2, 3, ["drop20"], ["R1"], seed=0)
    arrays["R_drop20"] = np.arange(9.0).reshape(3, 3)
    arrays["bracket_drop20"][1] = [10, 0.9, 6, 0.85]
    status["drop20"] = ["reached", "unreachable", ONE_NEURON]
    res = _of(3, ["drop20"], arrays, status)
    res.save(tmp_path / "r.npz")
    back = ModResult.load(tmp_path / "r.npz")
    np.testing.assert_array_equal(back.search().R, [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    np.testing.assert_array_equal(back.restrict([2, 0]).search().R, [[8, 6], [2, 0]])
    assert back.failed() == ["s1 (unreachable: relative top1 0.8500 with all 1 MLP neurons pruned, target 0.5 +- 0.02)"]
    assert back.reached() == [0, 2] and back.alternate("R1").reading == "R1"
    assert back.alternate("R1").search().evaluations is back.search().evaluations  # R1 searched nothing
    assert back.random.R is back.to_flat()[0]["R_random"] and back.auc.null is back.to_flat()[0]["auc_null"]


def test_result_rejects_bad_flat_forms():
    arrays, status = _flat(3, 2, 3, ["drop20"], ["R1"], seed=1)
    with pytest.raises(ValueError, match=r"readings \['R1'\], expected only those of info\['readings'\] = \[\]"):
        ModResult.from_flat("m", "causal", ["a", "b", "c"], {"drop20": 0.8}, "drop20", arrays, status, {})
    with pytest.raises(ValueError, match=r"no array 'R_A_half1'"):
        _of(3, ["drop20"], {k: v for k, v in arrays.items() if k != "R_A_half1"}, status)
    with pytest.raises(ValueError,
                       match=r"searches\['drop20'\].R expected shape \(3, 3\) \(n_subsets = 3\), got \(2, 2\)"):
        _of(3, ["drop20"], {**arrays, "R_drop20": np.eye(2)}, status)
    with pytest.raises(UnknownNameError, match="drop20"):
        _of(3, ["drop20"], arrays, status).search("drop50")
