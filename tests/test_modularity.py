"""The MOD experiment's pieces: Eq. 1 scores, selection, the bisection, cross-pruning on tiny models."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import UnknownNameError
from core.evaluate import EvalSet
from core.figures_mod import render
from core.modularity import (ModData, ModResult, bisect_fraction, check_subset, lottery_null, offdiag,
                             run_mod, selection_scores, subsets_for, top_fraction)
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
# bisection

def test_bisection_finds_the_fraction_of_a_known_curve():
    calls = []

    def rel(f):  # relative top1 falls linearly: 1 at f=0, 0 at f=0.4
        calls.append(f)
        return max(0.0, 1 - f / 0.4)

    s = bisect_fraction(rel, 0.5, geometric=False)
    assert s.reached and abs(s.relative - 0.5) <= 0.02
    assert s.fraction == pytest.approx(0.2, abs=0.4 * 0.02)
    assert s.n_evals == len(calls) == len(s.history)
    assert calls[:4] == [1.0, 0.5, 0.25, 0.125]
    calls.clear()
    s = bisect_fraction(rel, 0.5, n_neurons=10_000)  # geometric: midpoints of log(fraction)
    assert s.reached and s.fraction == pytest.approx(0.2, abs=0.4 * 0.02)
    assert calls[:3] == [1.0, pytest.approx(0.01), pytest.approx(0.1)]


def test_unreachable_target_stops_after_one_evaluation():
    s = bisect_fraction(lambda f: 0.9, 0.5, n_neurons=100)
    assert s.status == "unreachable" and s.n_evals == 1 and np.isnan(s.fraction)
    # a model already at chance (no baseline accuracy) gives NaN: unreachable, not a crash
    assert bisect_fraction(lambda f: float("nan"), 0.8, n_neurons=100).status == "unreachable"
    with pytest.raises(ValueError, match="n_neurons"):
        bisect_fraction(lambda f: 0.5, 0.5)


def test_bisection_is_bounded():
    def step(f):  # jumps from 1 to 0 at f = 0.3: no fraction is within tolerance of 0.5
        return 1.0 if f < 0.3 else 0.0

    s = bisect_fraction(step, 0.5, max_evals=10, geometric=False)
    assert s.status == "not converged" and s.n_evals == 10
    for geometric in (False, True):
        s = bisect_fraction(step, 0.5, max_evals=100, n_neurons=1000, geometric=geometric)
        assert s.status == "not converged" and s.n_evals < 20  # stops at one-neuron resolution


@settings(max_examples=50, deadline=None)
@given(st.floats(0.05, 0.95), st.floats(0.01, 1.0))
def test_bisection_reaches_any_target_of_a_continuous_curve(target, scale):
    for geometric in (False, True):
        s = bisect_fraction(lambda f: max(0.0, 1 - f / scale), target, n_neurons=100_000, geometric=geometric)
        assert s.reached and abs(s.relative - target) <= 0.02 and s.n_evals <= 16


# ---------------------------------------------------------------------------------------------
# the experiment on tiny models

SCALE = 100.0


def _vit_pair():
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


def _image_data(model, n_subsets=4, per=20, seed=0) -> ModData:
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
    trained, random = _vit_pair()
    data = _image_data(trained, per=60)
    res = run_mod(trained, random, name="tiny", data=data, batch_size=16, stats_key="t", k=8, progress=False,
                  null_draws=20)
    n, neurons = 4, 2 * 256
    assert res.arrays["base_top1"].tolist() == [1.0] * n
    for t in ("drop50", "drop80"):
        assert res.R(t).shape == (n, n) and len(res.status[t]) == n
        assert res.arrays[f"evals_{t}"].max() <= 16
        for i, st_ in enumerate(res.status[t]):
            assert np.isfinite(res.fraction(t)[i]) == (st_ == "reached")
            if st_ == "reached":  # the diagonal of R is the searched subset's relative top1
                assert abs(res.R(t)[i, i] - res.targets[t]) <= 0.02 + 1e-9
    assert "reached" in res.status["drop50"]  # the reached path is exercised, not only failures
    assert res.arrays["selected"].shape == (n, neurons)
    assert res.arrays["auc_trained"].shape == res.arrays["auc_null"].shape == (2, n)
    a = res.arrays["auc_trained"]
    assert ((a >= 0.5) & (a <= 1 - 1 / 16)).all()
    # save / load round trip and a JSON-able figure payload
    res.save(tmp_path / "r.npz")
    back = ModResult.load(tmp_path / "r.npz")
    assert back.status == res.status and np.array_equal(back.R(), res.R(), equal_nan=True)
    payload = json.loads(json.dumps(back.curves()))
    assert payload["experiment"] == "mod" and len(payload["overlap"]["trained"]) == n
    figures = render([payload, {"experiment": "abl"}], tmp_path / "figures")
    assert len(figures) == 4
    for f in figures:
        assert f["path"].is_file() and f["path"].stat().st_size > 0 and f["title"] and f["caption"]


def test_run_mod_on_a_random_llama_is_inconclusive_not_a_crash():
    # random tiny models sit at chance (top1 0): no target is reachable, and the search says so
    g = torch.Generator().manual_seed(0)
    subs = ["a", "b", "c"]
    collect = {s: {c: EvalSet("causal", torch.randint(3, 97, (2, 12), generator=g)) for c in subs} for s in "AB"}
    data = ModData("causal", subs, subs, collect, EvalSet("causal", torch.randint(3, 97, (6, 12), generator=g)),
                   np.repeat(np.arange(3), 2 * 11))
    res = run_mod(build("llama", 0), build("llama", 1), name="tiny", data=data, batch_size=4, stats_key="c",
                  k=4, progress=False, null_draws=10)
    assert res.status["drop20"] == ["unreachable"] * 3
    assert res.failed() == ["a (unreachable)", "b (unreachable)", "c (unreachable)"]
    assert np.isnan(res.overlap()).all()


def test_subset_names_are_checked():
    _, reference = subsets_for("causal", "small", "ci")
    assert check_subset("smollm2-135m", "news", reference) == "news"
    with pytest.raises(UnknownNameError, match="mmlu-bio"):
        check_subset("smollm2-135m", "pubmed", reference)
    chosen, full_reference = subsets_for("causal", "full", "ci")  # full tier: names only (tests/test_hub_data.py)
    assert set(chosen) < set(full_reference) and "pile:HackerNews" in chosen


def test_mod_experiment_rejects_bad_subsets_and_masked_lms():
    from core.modularity import mod_experiment
    from core.profiles import get_profile

    ci = get_profile("ci")
    with pytest.raises(UnknownNameError, match="bbc-politics"):
        mod_experiment("smollm2-135m", ci, subsets=["news", "wiki", "pile-arxiv"])
    with pytest.raises(UnknownNameError, match="Sneaker"):
        mod_experiment("tiny-vit-fmnist", ci, subsets=["Sandal", "Sneaker", "news"])
    with pytest.raises(ValueError, match="masked"):
        mod_experiment("minilm-l6", ci)


def test_lottery_null_and_offdiag():
    m = np.arange(9.0).reshape(3, 3)
    assert offdiag(m).tolist() == [1, 2, 3, 5, 6, 7]
    o = np.array([[1, 0.2, 0.4], [0.1, 1, 0.3], [0.5, 0.6, 1]])
    null = lottery_null(o, [10, 10, 10], 100, n_draws=30, seed=0)
    assert null.shape == (30,) and np.all((null[np.isfinite(null)] >= -1) & (null[np.isfinite(null)] <= 1))
    assert np.array_equal(null, lottery_null(o, [10, 10, 10], 100, n_draws=30, seed=0), equal_nan=True)
