"""BCL causal intervention: baselines, evaluation units, and the batched ablation against a plain one."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from core import sites
from core.intervention import (BASELINES, baseline_sets, bcl_sizes, cluster_sentences, intervene,
                               random_layer, random_neurons, random_position, split_head,
                               token_relatedness)
from core.errors import UnknownNameError
from tests.tiny_models import VOCAB, build

# ---------------------------------------------------------------------------------------- baselines


@settings(deadline=None, max_examples=80)
@given(n_layers=st.integers(1, 6), width=st.integers(1, 20), seed=st.integers(0, 10_000), data=st.data())
def test_baselines_match_the_cluster(n_layers, width, seed, data):
    size = data.draw(st.integers(0, n_layers * width))
    rng = np.random.default_rng(seed)
    cluster = np.sort(rng.choice(n_layers * width, size=size, replace=False))
    sets = baseline_sets(cluster, n_layers, width, seeds=(0, 1, 2), salt=(seed,))
    per_layer = np.bincount(cluster // width, minlength=n_layers)
    for b in BASELINES:
        assert len(sets[b]) == 3
        for s in sets[b]:
            assert s.size == size and np.unique(s).size == size  # the same neuron count, distinct
            assert s.min(initial=0) >= 0 and s.max(initial=0) < n_layers * width
    for s in sets["random_layer"]:  # random_layer keeps the per-layer counts
        np.testing.assert_array_equal(np.bincount(s // width, minlength=n_layers), per_layer)
    for s in sets["random_position"]:  # whole indices in every layer, at most one partial index
        counts = np.bincount(s % width, minlength=width)
        assert (counts[(counts > 0) & (counts < n_layers)]).size <= 1
        assert (counts == n_layers).sum() == size // n_layers


def test_baselines_are_seeded():
    c = np.arange(10)
    a, b = baseline_sets(c, 4, 8, seeds=(0,), salt=(1,)), baseline_sets(c, 4, 8, seeds=(0,), salt=(1,))
    assert all(np.array_equal(a[k][0], b[k][0]) for k in BASELINES)
    other = baseline_sets(c, 4, 8, seeds=(1,), salt=(1,))
    assert any(not np.array_equal(a[k][0], other[k][0]) for k in BASELINES)


def test_random_position_by_hand():
    s = random_position(7, 3, 5, np.random.default_rng(0))
    counts = np.bincount(s % 5, minlength=5)
    assert sorted(counts.tolist()) == [0, 0, 1, 3, 3]
    with pytest.raises(ValueError):
        random_neurons(16, 3, 5, np.random.default_rng(0))
    assert random_layer(np.array([0, 2]), 5, np.random.default_rng(0)).tolist()[0] >= 5


# ---------------------------------------------------------------------------------------- evaluation units


def test_cluster_sentences_picks_sentences_with_top_tokens():
    w = torch.tensor([[9, 1, 2], [3, 4, 5], [2, 2, 9], [9, 8, 7]])
    rows, tg = cluster_sentences(w, [9], kind="masked", max_sentences=None)
    assert rows.tolist() == [0, 2, 3]
    rows, tg = cluster_sentences(w, [9], kind="causal", max_sentences=None)
    assert rows.tolist() == [2]  # position 0 cannot be a next-token target
    assert tg.tolist() == [[False, False, True]]
    rows, _ = cluster_sentences(w, [9, 4], kind="masked", max_sentences=2)
    assert rows.tolist() == [0, 1]


def _plain_loss(model, kind, ids, targets, neurons, layer_mean, n_layers, width, mask_id):
    """The loss of one condition, with sites.ablate's ordinary (unbatched) masks and full logits."""
    keep = torch.ones(n_layers * width)
    if neurons is not None:
        keep[torch.as_tensor(neurons)] = 0
    keep = keep.view(n_layers, width)
    offset = torch.as_tensor(np.asarray(layer_mean), dtype=torch.float32)[:, None].expand(n_layers, width)
    inputs = ids.masked_fill(targets, mask_id) if kind == "masked" else ids
    with torch.no_grad(), sites.ablate(model, "resid", keep, offset):
        logits = model(input_ids=inputs).logits
    if kind == "masked":
        return float(F.cross_entropy(logits[targets], ids[targets]))
    return float(F.cross_entropy(logits[:, :-1][targets[:, 1:]], ids[:, 1:][targets[:, 1:]]))


@pytest.mark.parametrize("family,kind", [("bert", "masked"), ("llama", "causal"), ("gpt2", "causal")])
def test_batched_intervention_equals_plain_ablation(family, kind):
    model = build(family)
    g = torch.Generator().manual_seed(0)
    windows = torch.randint(3, 20, (6, 8), generator=g)
    n_layers, width = sites.n_layers(model, "resid"), sites.site_width(model, "resid")
    cluster = np.array([0, 5, width + 3, 2 * width + 7])
    layer_mean = np.array([0.1, -0.2, 0.3])[:n_layers]
    top = [4, 5]
    sc = intervene(model, kind=kind, windows=windows, cluster=cluster, top_ids=top, layer_mean=layer_mean,
                   mask_id=1, n_layers=n_layers, width=width, max_sentences=3, seeds=(0, 1),
                   salt=(7,), batch_rows=5)
    rows, targets = cluster_sentences(windows, top, kind=kind, max_sentences=3)
    ids = windows[rows]
    base = _plain_loss(model, kind, ids, targets, None, layer_mean, n_layers, width, 1)
    assert sc.base_loss == pytest.approx(base, rel=1e-5)
    assert sc.n_sentences == rows.numel() and sc.n_targets == int(
        targets.sum() if kind == "masked" else targets[:, 1:].sum())
    ablated = _plain_loss(model, kind, ids, targets, cluster, layer_mean, n_layers, width, 1)
    assert sc.cluster_pct == pytest.approx(100 * (ablated / base - 1), rel=1e-4, abs=1e-4)
    sets = baseline_sets(cluster, n_layers, width, (0, 1), (7,))
    for b in BASELINES:
        for s, neurons in enumerate(sets[b]):
            loss = _plain_loss(model, kind, ids, targets, neurons, layer_mean, n_layers, width, 1)
            assert sc.baselines[b][s] == pytest.approx(100 * (loss / base - 1), rel=1e-4, abs=1e-4)


def test_a_cluster_whose_tokens_never_occur_is_skipped():
    model = build("bert")
    windows = torch.randint(3, 20, (4, 6), generator=torch.Generator().manual_seed(0))
    assert intervene(model, kind="masked", windows=windows, cluster=np.arange(3), top_ids=[VOCAB - 1],
                     layer_mean=np.zeros(3), mask_id=1, n_layers=3, width=32) is None


def test_split_head_reproduces_the_logits():
    for family in ("bert", "llama", "roberta"):
        model = build(family)
        ids = torch.randint(3, VOCAB, (2, 5), generator=torch.Generator().manual_seed(1))
        body, head = split_head(model)
        with torch.no_grad():
            torch.testing.assert_close(head(body(input_ids=ids)[0]), model(input_ids=ids).logits)


def test_bad_kind_and_profile_list_valid_names():
    with pytest.raises(UnknownNameError, match="causal"):
        intervene(build("bert"), kind="image", windows=torch.zeros((1, 2), dtype=torch.long),
                  cluster=np.arange(2), top_ids=[1], layer_mean=np.zeros(3), n_layers=3, width=32)
    with pytest.raises(UnknownNameError, match="small"):
        bcl_sizes("huge")


# ---------------------------------------------------------------------------------------- BCL-8


def test_token_relatedness_by_hand():
    vec = np.array([[1, 0], [1, 0.0], [0, 1], [0, 1.0]], dtype=np.float32)
    has = np.ones(4, dtype=bool)
    out = token_relatedness([np.array([0, 1]), np.array([0, 2]), np.array([3])], has, vec,
                            n_random_sets=200, seed=0)
    assert out["cluster"] == [0, 1]  # cluster 2 has a single token: no pair
    assert out["observed"] == pytest.approx([1.0, 0.0])
    # a random pair of 4 tokens (2 + 2 identical) is identical with probability 1/3
    assert out["random"][0] == pytest.approx(1 / 3, abs=0.1)
    assert out["diff"][0] == pytest.approx(1.0 - out["random"][0])


# ---------------------------------------------------------------------------------------- figures


def test_render_draws_every_figure_and_table(tmp_path):
    from core.figures_bcl import render

    row = {"method": "filter", "k_paper": 50, "k": 3, "n_clusters": 3, "skipped": 1, "evaluated": 2,
           "cluster": 1.5, "random": 2.0, "random_layer": None, "random_position": 0.1,
           "best": [{"cluster": 0, "cluster_pct": 2.5, "top_tokens": ["a", "b|c"]}]}
    payload = {"experiment": "bcl", "model": "m", "corpus": "news", "kind": "masked", "profile": "ci",
               "n_layers": 2, "width": 4, "ks": {"20": 2, "50": 3, "200": 4}, "threshold": 5,
               "n_positions": 100, "n_kept": 10,
               "distances": {k: {"avg": [0.5, None], "max": [0.9, None]} for k in ("20", "50", "200")},
               "table": {"filter-50": row, "refine-50": {**row, "method": "refine"}},
               "positions": {"0": [0, 4, 5]}, "refine_trace": {"0": [0.9, 0.7, 0.5], "1": [0.3]},
               "refined_sizes": [2, 1, 3]}
    out = render([payload], tmp_path)
    assert [o["title"].split(":")[0] for o in out] == [
        "BCL Fig. 2", "BCL Table 3", "BCL Tables 1 and 4", "BCL Fig. 5", "BCL Fig. 1"]
    for o in out:
        assert o["path"] is None or o["path"].is_file()
    assert "**2.00**" in out[1]["markdown"] and "| 2 / 1 |" in out[1]["markdown"]
    assert "b\\|c" in out[2]["markdown"]
    assert render([], tmp_path) == []
