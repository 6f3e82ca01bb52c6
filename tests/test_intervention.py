"""BCL causal intervention: baselines, evaluation units, and the batched ablation against a plain one."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from core.zoo import sites
from core.bcl.baselines import (BASELINES, baseline_sets, random_layer, random_neurons, random_position,
                                random_position_kept)
from core.bcl.intervention import intervene, replace_resid
from core.bcl.relatedness import token_relatedness
from core.bcl.sentences import cluster_sentences, components, select_sentences
from core.errors import UnknownNameError
from core.profiles import get_profile
from tests.tiny_models import VOCAB, build, varied_norms

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


@settings(deadline=None, max_examples=80)
@given(n_layers=st.integers(1, 6), width=st.integers(1, 20), seed=st.integers(0, 10_000), data=st.data())
def test_r4_random_position_keeps_the_cluster_indices(n_layers, width, seed, data):
    size = data.draw(st.integers(0, n_layers * width))
    rng = np.random.default_rng(seed)
    cluster = np.sort(rng.choice(n_layers * width, size=size, replace=False))
    s = random_position_kept(cluster, n_layers, width, np.random.default_rng(seed + 1))
    assert s.size == size and np.unique(s).size == size
    # the same indices, as often: each neuron keeps its index and moves to a random layer
    np.testing.assert_array_equal(np.bincount(s % width, minlength=width),
                                  np.bincount(cluster % width, minlength=width))


def test_r4_random_position_moves_layers():
    cluster = np.array([0 * 10 + 3, 2 * 10 + 3, 1 * 10 + 7])  # index 3 in layers 0 and 2, index 7 in 1
    layers = [random_position_kept(cluster, 5, 10, np.random.default_rng(s)) // 10 for s in range(200)]
    assert len({tuple(l) for l in layers}) > 10  # layers vary
    assert all(sorted((s % 10).tolist()) == [3, 3, 7] for s in
               (random_position_kept(cluster, 5, 10, np.random.default_rng(s)) for s in range(20)))


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


def _docs(windows, per_doc):
    """Document ids: consecutive windows in blocks of ``per_doc`` come from one document."""
    n, seq = windows.shape
    return (torch.arange(n) // per_doc)[:, None].expand(n, seq).clone()


def test_select_sentences_keeps_clusters_apart_when_it_can():
    # 12 sentences; token 9 occurs in every one, token 8 in the first three only
    w = torch.full((12, 4), 2)
    w[:, 1] = 9
    w[:3, 2] = 8
    sel = select_sentences(w, _docs(w, 1), [[8], [9], [9]], kind="masked", max_sentences=3, seed=0)
    rows = [set(r.tolist()) for r in sel.rows]
    assert rows[0] == {0, 1, 2}                       # the cluster with fewest candidates picks first
    assert not (rows[0] & rows[1]) and not (rows[1] & rows[2]) and not (rows[0] & rows[2])
    assert sel.groups.tolist() == [0, 1, 2] and sel.n_sentences == 9 and sel.n_documents == 9
    again = select_sentences(w, _docs(w, 1), [[8], [9], [9]], kind="masked", max_sentences=3, seed=0)
    assert [r.tolist() for r in again.rows] == [r.tolist() for r in sel.rows]  # deterministic


def test_clusters_that_must_share_are_grouped():
    w = torch.full((6, 4), 2)
    w[0, 1] = 8        # only sentence 0 holds token 8
    w[:, 2] = 9
    sel = select_sentences(w, _docs(w, 1), [[8], [8], [9], [7]], kind="masked", max_sentences=2, seed=1)
    assert sel.rows[0].tolist() == [0] and sel.rows[1].tolist() == [0]
    assert sel.groups[0] == sel.groups[1] != sel.groups[2]
    assert sel.groups[3] == -1 and sel.rows[3].size == 0       # token 7 never occurs: skipped


def test_select_sentences_spreads_over_documents_and_tops_up():
    # 40 sentences from 10 documents of 4; token 9 everywhere
    w = torch.full((40, 4), 2)
    w[:, 1] = 9
    docs = _docs(w, 4)
    sel = select_sentences(w, docs, [[9]] * 3, kind="masked", max_sentences=2, seed=0)
    assert sel.n_sentences == 6 and sel.n_documents == 6          # every pick from a new document
    sel = select_sentences(w, docs, [[9]] * 3, kind="masked", max_sentences=2, seed=0, min_documents=9)
    assert sel.n_documents == 9 and sel.topped_up == 3
    sel = select_sentences(w, docs, [[9]] * 3, kind="masked", max_sentences=2, seed=0, min_documents=50)
    assert sel.n_documents == 10                                  # as many as the pool holds
    # causal LMs never score position 0
    w2 = torch.full((3, 4), 2)
    w2[0, 0] = 9
    assert select_sentences(w2, _docs(w2, 1), [[9]], kind="causal", max_sentences=2).rows[0].size == 0


def test_select_sentences_checks_the_document_ids():
    w = torch.full((4, 5), 2)
    with pytest.raises(ValueError, match=r"\(4, 5\)"):
        select_sentences(w, np.zeros((4, 4), dtype=np.int64), [[2]], kind="masked", max_sentences=1)


def test_components_of_items_that_share_elements():
    assert components([[1, 2], [3], [2, 5], [], [5], [7]]).tolist() == [0, 1, 0, -1, 0, 2]


def test_a_packed_window_of_two_documents_counts_both():
    w = torch.full((3, 6), 9)
    docs = torch.tensor([[-1, 0, 0, -1, 1, 1], [-1, 1, 1, 1, 1, -1], [-1, 2, 2, 2, 2, -1]])
    of = {0: {0, 1}, 1: {1}, 2: {2}}
    for seed in range(8):
        sel = select_sentences(w, docs, [[9], [9]], kind="masked", max_sentences=1, seed=seed)
        a, b = int(sel.rows[0][0]), int(sel.rows[1][0])
        assert not of[a] & of[b]                      # the second pick brings only new documents
        assert sel.n_documents == len(of[a] | of[b]) and sel.n_sentences == 2


def _hand_forward(model, family, ids, replace):
    """Logits by a hand-written layer loop: ``replace(layer, h)`` edits the residual stream in place
    (layer 0: the embedding output, l: the output of block l - 1), then the next block runs on it."""
    if family == "bert":
        h = model.bert.embeddings(input_ids=ids)
        stack, head = model.bert.encoder.layer, model.cls
    else:  # gpt2
        h = model.transformer.wte(ids) + model.transformer.wpe(torch.arange(ids.shape[1]))[None]
        stack, head = model.transformer.h, (lambda x: model.lm_head(model.transformer.ln_f(x)))
    h = replace(0, h.clone())
    for l, block in enumerate(stack, start=1):
        out = block(h)
        h = replace(l, (out[0] if isinstance(out, tuple) else out).clone())
    return head(h)


def _live_mean_replacement(neurons, width):
    """The revision-2 replacement by hand: the cluster's indices of layer l take that layer's mean
    over its residual neurons at each token, on the stream as it arrives (after earlier layers')."""
    by_layer = {}
    for n in np.asarray(neurons if neurons is not None else [], dtype=np.int64):
        by_layer.setdefault(int(n // width), []).append(int(n % width))

    def replace(layer, h):
        idx = by_layer.get(layer)
        if idx:
            mean = h.mean(-1)                      # (batch, seq), before this layer's replacement
            for i in idx:
                h[..., i] = mean
        return h

    return replace


def _hand_loss(model, family, kind, ids, targets, neurons, width, mask_id):
    inputs = ids.masked_fill(targets, mask_id) if kind == "masked" else ids
    with torch.no_grad():
        logits = _hand_forward(model, family, inputs, _live_mean_replacement(neurons, width))
    if kind == "masked":
        return float(F.cross_entropy(logits[targets], ids[targets]))
    return float(F.cross_entropy(logits[:, :-1][targets[:, 1:]], ids[:, 1:][targets[:, 1:]]))


@pytest.mark.parametrize("family,kind", [("bert", "masked"), ("gpt2", "causal")])
def test_intervention_equals_a_hand_computed_live_mean_replacement(family, kind):
    model = varied_norms(build(family))
    g = torch.Generator().manual_seed(0)
    windows = torch.randint(3, 20, (6, 8), generator=g)
    n_layers, width = sites.n_layers(model, "resid"), sites.site_width(model, "resid")
    # index 5 in two layers, so the second replacement sees the first one's effect on the stream
    cluster = np.array([0, 5, width + 3, width + 5, 2 * width + 7])
    top = [4, 5]
    sc = intervene(model, kind=kind, windows=windows, cluster=cluster, top_ids=top, mask_id=1,
                   n_layers=n_layers, width=width, max_sentences=3, seeds=(0, 1), salt=(7,), batch_rows=5)
    rows, targets = cluster_sentences(windows, top, kind=kind, max_sentences=3)
    ids = windows[rows]
    base = _hand_loss(model, family, kind, ids, targets, None, width, 1)
    assert sc.base_loss == pytest.approx(base, rel=1e-5)
    assert sc.rows == rows.tolist()
    assert sc.n_sentences == rows.numel() and sc.n_targets == int(
        targets.sum() if kind == "masked" else targets[:, 1:].sum())
    ablated = _hand_loss(model, family, kind, ids, targets, cluster, width, 1)
    assert sc.cluster_pct == pytest.approx(100 * (ablated / base - 1), rel=1e-4, abs=1e-4)
    assert abs(sc.cluster_pct) > 1e-3  # the replacement does something
    sets = baseline_sets(cluster, n_layers, width, (0, 1), (7,))
    for b in BASELINES:
        for s, neurons in enumerate(sets[b]):
            loss = _hand_loss(model, family, kind, ids, targets, neurons, width, 1)
            assert sc.baselines[b][s] == pytest.approx(100 * (loss / base - 1), rel=1e-4, abs=1e-4)


def test_the_live_mean_is_not_the_scalar_layer_mean():
    """Revision 1's value (one scalar per layer) and revision 2's (per token, live) differ."""
    model = varied_norms(build("bert"))
    windows = torch.randint(3, 20, (4, 8), generator=torch.Generator().manual_seed(3))
    width = sites.site_width(model, "resid")
    cluster = np.arange(0, 3 * width, 7)
    keep = torch.ones(1, 3, width)
    keep.view(1, -1)[0, torch.as_tensor(cluster)] = 0
    with torch.no_grad():
        with replace_resid(model, keep):
            live = model(input_ids=windows).logits
        with sites.ablate(model, "resid", keep[0], 0.0):
            scalar = model(input_ids=windows).logits
        hand = _hand_forward(model, "bert", windows, _live_mean_replacement(cluster, width))
    torch.testing.assert_close(live, hand, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(live, scalar, atol=1e-3)


@pytest.mark.parametrize("family", ["bert", "llama", "gpt2", "roberta"])
def test_replaced_neurons_hold_the_live_mean_of_their_layer(family):
    """Recorded around the replacement: the cluster's entries after = the mean of the layer before,
    every other entry unchanged; R3 rows hold the neuron's own mean instead."""
    model = varied_norms(build(family))
    n_layers, width = sites.n_layers(model, "resid"), sites.site_width(model, "resid")
    ids = torch.randint(3, 50, (3, 7), generator=torch.Generator().manual_seed(2))
    keep = torch.ones(3, n_layers, width)
    keep[0, :, 4] = 0                     # live, every layer
    keep[1, 1, [0, 9]] = 0                # live, one layer
    keep[2, :, 4] = 0                     # R3: own collection mean
    live = torch.tensor([True, True, False])
    nm = torch.randn(n_layers, width, generator=torch.Generator().manual_seed(5))
    before, after = {}, {}
    with torch.no_grad(), sites.trace(model, "resid", lambda l, x: before.__setitem__(l, x.clone())):
        with replace_resid(model, keep, live=live, neuron_mean=nm):
            with sites.trace(model, "resid", lambda l, x: after.__setitem__(l, x.clone())):
                model(input_ids=ids)
    for l in range(n_layers):
        k = keep[:, l][:, None, :]
        mean = before[l].mean(-1, keepdim=True)
        want = torch.where(live[:, None, None], mean, nm[l]).expand_as(before[l])
        torch.testing.assert_close(after[l], before[l] * k + (1 - k) * want, rtol=0, atol=1e-6)
        torch.testing.assert_close(after[l][0, :, 4], before[l][0].mean(-1), rtol=0, atol=1e-6)
    # leaving the block restores the model
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits,
                                   varied_norms(build(family))(input_ids=ids).logits, rtol=0, atol=0)


def test_replace_resid_rejects_bad_shapes():
    model = build("bert")
    with pytest.raises(ValueError, match="residual"):
        with replace_resid(model, torch.ones(1, 2, 32)):
            pass
    with pytest.raises(ValueError, match="neuron_mean"):
        with replace_resid(model, torch.zeros(1, 3, 32), live=torch.tensor([False])):
            pass


def test_readings_r3_and_r4_run_beside_the_primary_on_the_same_sentences():
    model = build("bert")
    windows = torch.randint(3, 20, (6, 8), generator=torch.Generator().manual_seed(0))
    n_layers, width = 3, 32
    cluster = np.array([1, width + 1, 2 * width + 4])
    nm = np.random.default_rng(0).normal(size=(n_layers, width))
    kw = dict(kind="masked", windows=windows, cluster=cluster, top_ids=[4, 5], mask_id=1, n_layers=n_layers,
              width=width, max_sentences=3, seeds=(0, 1), salt=(7,), batch_rows=7)
    plain = intervene(model, **kw)
    both = intervene(model, **kw, readings=frozenset({"R3", "R4"}), neuron_mean=nm)
    assert both.cluster_pct == pytest.approx(plain.cluster_pct, abs=1e-6)   # the primary is untouched
    for b in BASELINES:
        assert both.baselines[b] == pytest.approx(plain.baselines[b], abs=1e-6)
    assert set(both.readings) == {"R3", "R4"}
    assert len(both.readings["R4"]["baselines"]["random_position"]) == 2
    assert set(both.readings["R3"]["baselines"]) == set(BASELINES)
    # R3 by hand: the cluster's neurons set to their own collection mean at every position
    rows, targets = cluster_sentences(windows, [4, 5], kind="masked", max_sentences=3)
    ids = windows[rows]
    keep = torch.ones(n_layers * width)
    keep[torch.as_tensor(cluster)] = 0
    offset = torch.as_tensor(nm, dtype=torch.float32)
    with torch.no_grad(), sites.ablate(model, "resid", keep.view(n_layers, width), offset):
        lg = model(input_ids=ids.masked_fill(targets, 1)).logits
    loss = float(F.cross_entropy(lg[targets], ids[targets]))
    assert both.readings["R3"]["cluster_pct"] == pytest.approx(100 * (loss / both.base_loss - 1), rel=1e-4)
    with pytest.raises(ValueError, match="neuron_mean"):
        intervene(model, **kw, readings=frozenset({"R3"}))
    with pytest.raises(ValueError, match="R3 and R4"):
        intervene(model, **kw, readings=frozenset({"R5"}))


def test_a_cluster_whose_tokens_never_occur_is_skipped():
    model = build("bert")
    windows = torch.randint(3, 20, (4, 6), generator=torch.Generator().manual_seed(0))
    assert intervene(model, kind="masked", windows=windows, cluster=np.arange(3), top_ids=[VOCAB - 1],
                     mask_id=1, n_layers=3, width=32) is None


def test_bad_kind_and_profile_list_valid_names():
    from dataclasses import replace

    with pytest.raises(UnknownNameError, match="causal"):
        intervene(build("bert"), kind="image", windows=torch.zeros((1, 2), dtype=torch.long),
                  cluster=np.arange(2), top_ids=[1], n_layers=3, width=32)
    with pytest.raises(UnknownNameError, match="small"):
        get_profile("huge")
    with pytest.raises(ValueError, match="profile 'bare' has no BCL sizes"):
        replace(get_profile("ci"), name="bare", bcl=None).sizes_of("bcl")


def test_an_unknown_reading_lists_the_valid_ones(tmp_path, monkeypatch):
    from core.bcl.experiment import bcl_experiment
    from core.profiles import get_profile

    monkeypatch.setenv("NEURON_CLAIMS_CACHE", str(tmp_path))
    with pytest.raises(UnknownNameError, match="R3"):
        bcl_experiment("minilm-l6", "news", get_profile("ci"), readings=frozenset({"R9"}))


@pytest.mark.parametrize("profile,minimum", [("ci", 16), ("small", 16), ("paper", 100)])
def test_profiles_ask_for_the_sample_designs_documents(profile, minimum):
    """claims.md, "Sample design": the union of the evaluated clusters' sentences spans at least 16
    documents (paper: 100); the sentences asked for can reach it, and the pool is cut into short
    documents so that it spreads over many."""
    sizes = get_profile(profile).bcl
    assert sizes.min_documents >= minimum
    assert sizes.min_documents == get_profile(profile).min_eval_documents
    if sizes.max_clusters is not None:
        assert sizes.max_clusters * sizes.max_sentences >= sizes.min_documents
    assert sizes.eval_max_doc_tokens <= 1000


# ---------------------------------------------------------------------------------------- BCL-8


def test_token_relatedness_by_hand():
    vec = np.array([[1, 0], [1, 0.0], [0, 1], [0, 1.0]], dtype=np.float32)
    words = ["a", "b", "c", "d"]
    out = token_relatedness([np.array([0, 1]), np.array([0, 2]), np.array([3])], words, vec,
                            n_random_sets=200, seed=0)
    assert out["cluster"] == [0, 1]  # cluster 2 has a single word: no pair
    assert out["observed"] == pytest.approx([1.0, 0.0])
    # a random pair of 4 words (2 + 2 with identical vectors) is identical with probability 1/3
    assert out["random"][0] == pytest.approx(1 / 3, abs=0.1)
    assert out["diff"][0] == pytest.approx(1.0 - out["random"][0])


def test_bcl8_deduplicates_words_on_both_sides():
    """``house``, ``##house`` and ``Ġhouse`` map to one word: it counts once in a cluster's list and
    once in the pool the random sets come from (claims.md revision 2)."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 8)).astype(np.float32)          # house, car, tree, sky
    words = ["house", "house", "house", "car", "tree", "sky"]  # three tokens of "house"
    vec = base[[0, 0, 0, 1, 2, 3]]
    out = token_relatedness([np.array([0, 1, 2]), np.array([0, 1, 2, 3])], words, vec, n_random_sets=300)
    assert out["n_mapped"] == [3, 4] and out["n_words"] == [1, 2]
    assert out["cluster"] == [1]                               # cluster 0 is one word: no pair
    from core.bcl.embeddings import mean_pairwise_cosine
    assert out["observed"][0] == pytest.approx(mean_pairwise_cosine(base[[0, 1]]))
    # random pairs of distinct words never pair "house" with itself: the mean over the 6 word pairs
    pairs = [mean_pairwise_cosine(base[[i, j]]) for i in range(4) for j in range(i + 1, 4)]
    assert out["random"][0] == pytest.approx(np.mean(pairs), abs=0.05)
    assert out["n_vocab_words"] == 4
    tokens = token_relatedness([np.array([0, 1])], [None, "x"], vec[:2])
    assert tokens["cluster"] == [] and tokens["n_words"] == [1]


# ---------------------------------------------------------------------------------------- figures


def test_render_draws_every_figure_and_table(tmp_path):
    from core.bcl.figures import render

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


def test_a_causal_pass_that_stops_at_the_last_scored_position_changes_no_loss():
    """intervene() runs a causal LM only as far as each batch's last scored position; the losses equal
    those of whole sentences under the same replacement (rotary positions, targets early and late)."""
    model = build("llama")
    n_layers, width = sites.n_layers(model, "resid"), sites.site_width(model, "resid")
    windows = torch.randint(6, 20, (5, 12), generator=torch.Generator().manual_seed(3))
    windows[0, 2] = windows[1, 10] = windows[2, 5] = windows[3, 11] = 4   # last scored: 1, 9, 4, 10
    cluster = np.array([1, width + 2, 2 * width + 3])
    sc = intervene(model, kind="causal", windows=windows, cluster=cluster, top_ids=[4], n_layers=n_layers,
                   width=width, max_sentences=4, seeds=(0,), batch_rows=3)
    rows, targets = cluster_sentences(windows, [4], kind="causal", max_sentences=4)
    ids = windows[rows]

    def loss(neurons) -> float:
        keep = torch.ones((ids.shape[0], n_layers * width))
        if neurons is not None:
            keep[:, torch.as_tensor(neurons)] = 0.0
        with torch.no_grad(), replace_resid(model, keep.view(-1, n_layers, width)):
            logits = model(input_ids=ids).logits
        return float(F.cross_entropy(logits[:, :-1][targets[:, 1:]], ids[:, 1:][targets[:, 1:]]))

    base = loss(None)
    assert sc.base_loss == pytest.approx(base, rel=1e-5)
    assert sc.cluster_pct == pytest.approx(100 * (loss(cluster) / base - 1), rel=1e-4, abs=1e-4)
    for b, neurons in baseline_sets(cluster, n_layers, width, (0,), ()).items():
        assert sc.baselines[b][0] == pytest.approx(100 * (loss(neurons[0]) / base - 1), rel=1e-4, abs=1e-4)
