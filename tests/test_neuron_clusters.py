"""BCL post-processing and clustering: filter, TF-IDF, smoothing, refinement, clustering, index share;
and the subword-token -> GloVe-word mapping."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.bcl import embeddings as emb
from core.bcl import neuron_clusters as nc
from core.errors import MissingAssetError

# ---------------------------------------------------------------------------------------- filter


def test_frequency_threshold_scales_with_corpus_size():
    assert nc.frequency_threshold(16_384) == nc.MIN_THRESHOLD
    assert nc.frequency_threshold(8_598_966) == 20  # the paper's Yelp setting
    assert nc.frequency_threshold(103_320_883) == 241
    assert nc.frequency_threshold(10**9) > nc.frequency_threshold(10**8)
    with pytest.raises(ValueError):
        nc.frequency_threshold(0)


def test_frequency_filter_drops_rare_and_special_tokens():
    keep = nc.frequency_filter(np.array([0, 5, 6, 7]), np.array([100, 9, 3, 5]), special_ids=[0], threshold=5)
    assert keep.tolist() == [False, True, False, True]


def test_a_corpus_too_small_fails_with_its_counts_and_threshold():
    with pytest.raises(nc.InsufficientTokensError, match=r"12 tokens.*threshold of 5"):
        nc.frequency_filter(np.array([1, 2, 3]), np.array([4, 4, 4]), special_ids=[], threshold=5,
                            n_positions=12)


# ---------------------------------------------------------------------------------------- tf-idf, smoothing


def test_tfidf_by_hand():
    r = np.array([[1.0, 0.0], [2.0, -1.0], [0.0, 3.0]])
    out = nc.tfidf(r)
    # df: token 0 positive in 2 neurons, token 1 in 1; idf = ln((1 + 3) / (1 + df)) + 1
    idf = np.log(4 / np.array([3, 2])) + 1
    np.testing.assert_allclose(out, np.maximum(r, 0) * idf, rtol=1e-6)


def test_smoothing_by_hand():
    r = np.array([[1.0, 2.0, 4.0]])
    nbr = np.array([[1, -1], [0, 2], [-1, -1]])
    sim = np.array([[0.5, 0.0], [1.0, 0.25], [0.0, 0.0]], dtype=np.float32)
    out = nc.smooth(r, nbr, sim, lam=0.5)
    # lam / k = 0.25: token 0 += 0.25 * 0.5 * 2; token 1 += 0.25 * (1 * 1 + 0.25 * 4); token 2 unchanged
    np.testing.assert_allclose(out, [[1.25, 2.5, 4.0]])


@settings(deadline=None, max_examples=30)
@given(r=arrays(np.float32, (4, 6), elements=st.floats(-5, 5, width=32)), seed=st.integers(0, 1000))
def test_zero_lambda_changes_nothing(r, seed):
    rng = np.random.default_rng(seed)
    nbr = rng.integers(-1, 6, size=(6, 5))
    sim = rng.random((6, 5)).astype(np.float32)
    np.testing.assert_array_equal(nc.smooth(r, nbr, sim, lam=0.0), r)


# ---------------------------------------------------------------------------------------- refinement


def test_refinement_by_hand():
    # three points near (1, 0) and one far away at (0, 1): the far one goes, then all are within 0.6
    x = np.array([[1.0, 0.0], [0.99, 0.14], [0.99, -0.14], [0.0, 1.0]])
    r = nc.refine(x)
    assert r.members.tolist() == [0, 1, 2]
    assert len(r.max_distance) == 2 and r.max_distance[-1] < 0.6 <= r.max_distance[0]


@settings(deadline=None, max_examples=60)
@given(m=st.integers(1, 25), d=st.integers(2, 8), seed=st.integers(0, 10_000),
       threshold=st.floats(0.05, 1.5))
def test_refinement_only_removes_and_leaves_members_within_the_threshold(m, d, seed, threshold):
    x = nc.normalize_rows(np.random.default_rng(seed).normal(size=(m, d)))
    r = nc.refine(x, threshold=threshold)
    kept = r.members
    assert 1 <= kept.size <= m and set(kept.tolist()) <= set(range(m))  # only removes; stops non-empty
    assert len(r.max_distance) == m - kept.size + 1  # one step per removal: it stops
    centre = x[kept].mean(0)
    dist = np.linalg.norm(x[kept] - centre, axis=1)
    assert dist.max() < threshold or kept.size == 1
    assert abs(dist.max() - r.max_distance[-1]) < 1e-5  # the incremental update is exact
    if kept.size < m:  # the step before the last stop was still above the threshold
        assert r.max_distance[-2] >= threshold


# ---------------------------------------------------------------------------------------- clustering


def test_scaled_k_keeps_the_mean_cluster_size():
    assert nc.scaled_k(50, 9984) == 50
    assert nc.scaled_k(200, 7 * 384) == 54
    assert nc.scaled_k(50, 31 * 576) == 89
    assert nc.scaled_k(20, 10) == 2


def test_clustering_recovers_obvious_groups_and_its_distances():
    rng = np.random.default_rng(0)
    centres = np.eye(3, 20)
    x = np.concatenate([c + 0.01 * rng.normal(size=(5, 20)) for c in centres])
    x = nc.normalize_rows(x)
    res = nc.cluster_neurons(x, [3, 2], refine_ks=[3])
    labels = res.labels[3]
    groups = [set(labels[i * 5:(i + 1) * 5]) for i in range(3)]
    assert all(len(g) == 1 for g in groups) and len(set.union(*groups)) == 3
    assert len(set(res.labels[2])) == 2
    assert np.all(res.avg_distance[3] < 0.01) and np.all(res.max_distance[3] < 0.02)
    assert np.all(res.max_distance[3] >= res.avg_distance[3])
    assert np.nanmean(res.avg_distance[2]) > np.nanmean(res.avg_distance[3])
    assert [r.members.size for r in res.refined[3]] == [5, 5, 5]


def test_complete_linkage_on_a_case_computed_by_hand():
    # cos distances: a-b 0.0, c-d ~0, a-c far; complete linkage into 2 groups {a,b}, {c,d}
    x = nc.normalize_rows(np.array([[1, 0, 0], [1, 0.01, 0], [0, 1, 0], [0, 1, 0.01]], dtype=np.float32))
    labels = nc.cluster_neurons(x, [2]).labels[2]
    assert labels[0] == labels[1] != labels[2] == labels[3]


def test_members_and_top_tokens():
    labels = np.array([1, 0, 1, 2, 0])
    assert [m.tolist() for m in nc.members(labels)] == [[1, 4], [0, 2], [3]]
    x = np.array([[0.0, 1.0, 0.5], [0.0, 3.0, 2.0]])
    assert nc.top_tokens(x, np.array([0, 1]), k=2).tolist() == [1, 2]
    # R5 reads the sum of the raw rows: a large row dominates where the normalised mean would not
    raw = np.array([[10.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    assert nc.top_tokens(raw, np.arange(3), k=1, reduce="sum").tolist() == [0]
    assert nc.top_tokens(nc.normalize_rows(raw), np.arange(3), k=1).tolist() == [1]
    with pytest.raises(ValueError, match="reduce"):
        nc.top_tokens(raw, np.array([0]), reduce="max")


def test_index_share_by_hand():
    # 2 layers x 3 indices; cluster 0 = (0,0), (1,0), (0,1); cluster 1 = (1,1), (0,2), (1,2)
    labels = np.array([0, 0, 1, 0, 1, 1])
    share = nc.index_share(labels, 2, 3)
    np.testing.assert_allclose(share, [2 / 3, 2 / 3])
    null = nc.index_share_null(labels, 2, 3, n_permutations=50, seed=0)
    # the null is the mean share of layer-preserving permutations (their properties: test_bcl_claims.py)
    perms = np.concatenate(list(nc.layer_preserving_permutations(labels, 2, 3, 50, np.random.default_rng(0))))
    np.testing.assert_allclose(null, np.nanmean(nc.index_share(perms, 2, 3), axis=-1))
    assert all(sorted(p[:3].tolist()) == [0, 0, 1] and sorted(p[3:].tolist()) == [0, 1, 1] for p in perms)


# ---------------------------------------------------------------------------------------- GloVe mapping


def test_normalize_token_rules():
    assert emb.normalize_token(" House") == "house"
    assert emb.normalize_token("##ing") == "ing"
    assert emb.normalize_token("  ") == ""
    assert emb.normalize_token("Paris") == "paris"


class _WordPiece:
    """A tokenizer stub with BERT's conventions."""
    all_special_ids = [0]
    vocab = ["[PAD]", "house", "##ing", "Paris", "qqzzxxq", ","]

    def convert_ids_to_tokens(self, i):
        return self.vocab[i]

    def convert_tokens_to_string(self, tokens):
        return " ".join(tokens)


class _ByteBPE(_WordPiece):
    """GPT-2 style: 'Ġ' marks a leading space."""
    vocab = ["<|endoftext|>", "Ġhouse", "ing", "ĠParis", "Ġqqzzxxq", ","]

    def convert_tokens_to_string(self, tokens):
        return "".join(tokens).replace("Ġ", " ")


@pytest.mark.parametrize("tok", [_WordPiece(), _ByteBPE()], ids=["wordpiece", "byte-bpe"])
def test_token_words_map_subwords_to_glove(tok):
    try:
        words, has, vec = emb.token_vectors(tok, range(6))
    except MissingAssetError as e:
        pytest.skip(e.reason)
    assert words == [None, "house", "ing", "paris", None, ","]
    assert has.tolist() == [False, True, True, True, False, True]
    index, table = emb.load_glove()
    np.testing.assert_array_equal(vec[1], table[index["house"]])
    assert not vec[0].any()


def test_nearest_neighbours_and_pairwise_cosine():
    v = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [5, 5]], dtype=np.float32)
    has = np.array([True, True, True, True, False])
    nbr, sim = emb.nearest_neighbours(v, has, k=2)
    assert nbr[0, 0] == 1 and nbr[2, 0] == 3 and (nbr[4] == -1).all()
    assert sim[0, 0] == pytest.approx(0.9 / np.hypot(0.9, 0.1), rel=1e-5)
    assert emb.mean_pairwise_cosine(np.array([[1.0, 0], [0, 1.0]])) == pytest.approx(0.0)
    assert emb.mean_pairwise_cosine(np.array([[1.0, 0], [2.0, 0], [3.0, 0]])) == pytest.approx(1.0)
