"""Post-processing and clustering of BCL neuron representations (Zhang, Gu, Yao, sections 5.2-5.4, 7.3).

- :func:`frequency_threshold`, :func:`frequency_filter`: the token filter (section 5.2): special tokens
  and tokens rarer than a threshold dropped. The paper used 20 occurrences on Yelp (8,598,966 tokens)
  and 400 on C4 (103,320,883); here the threshold scales with the corpus size at Yelp's rate (20 per
  8,598,966 tokens), with a floor of :data:`MIN_THRESHOLD` occurrences so that no mean rests on a
  handful of occurrences (the small tier's corpora are far smaller than Yelp).
- :func:`tfidf`: TF-IDF with each neuron as a document and each token as a term (section 5.2).
- :func:`smooth`: semantic smoothing with the 5 nearest embedding neighbours (section 5.2, Eq. 2).
- :func:`normalize_rows`, :func:`cluster_neurons`: L2-normalised rows, agglomerative clustering with
  complete linkage on ``1 - cosine`` (scikit-learn), for several K at once (section 5.3), with the
  within-cluster average and max pairwise distance (section 6.1, Fig. 2) and refinement.
- :func:`refine`: drop the member farthest from the centre until every member is within Euclidean
  distance 0.6 of it (section 5.3, Fig. 1).
- :func:`scaled_k`: K scaled to a model so that the mean cluster size matches the paper's.
- :func:`top_tokens`: the top-10 tokens of a cluster's mean representation (section 5.4; reading R5:
  of the sum of its raw rows).
- :func:`index_share`, :func:`index_share_null`: the index-clustering effect across layers (section 7.3).
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field

import numpy as np

#: BERT-base residual neurons (13 x 768), the paper's setting that K values refer to.
PAPER_NEURONS = 9984
#: Yelp: threshold 20 on 8,598,966 tokens (BCL section 3, section 5.2).
PAPER_RATE = 20 / 8_598_966
MIN_THRESHOLD = 5
REFINE_THRESHOLD = 0.6
SMOOTH_LAMBDA = 0.5
N_NEIGHBOURS = 5
TOP_K = 10


class InsufficientTokensError(ValueError):
    """The corpus leaves no token above the frequency threshold."""


def frequency_threshold(n_tokens: int) -> int:
    """Minimum occurrences for a token to be kept: ``max(MIN_THRESHOLD, ceil(n_tokens * 20 / 8,598,966))``.

    Parameters
    ----------
    n_tokens : int
        Positions counted in the collection corpus (> 0).

    Returns
    -------
    int
    """
    if n_tokens <= 0:
        raise ValueError(f"n_tokens must be positive, got {n_tokens}")
    return max(MIN_THRESHOLD, math.ceil(n_tokens * PAPER_RATE))


def frequency_filter(token_ids: np.ndarray, counts: np.ndarray, *, special_ids, threshold: int,
                     n_positions: int | None = None) -> np.ndarray:
    """Columns kept by the token filter (BCL section 5.2).

    Parameters
    ----------
    token_ids : ndarray of shape (n_tokens,), int
    counts : ndarray of shape (n_tokens,), int
        Occurrences in the collection corpus.
    special_ids : iterable of int
        Always dropped ([PAD], [CLS], [SEP], ...).
    threshold : int
        Tokens with ``counts < threshold`` are dropped.
    n_positions : int, optional
        The corpus size, for the error message.

    Returns
    -------
    ndarray of shape (n_tokens,), bool

    Raises
    ------
    InsufficientTokensError
        If no token is left; the message gives the corpus's token count and the threshold.
    """
    token_ids, counts = np.asarray(token_ids), np.asarray(counts)
    if token_ids.shape != counts.shape:
        raise ValueError(f"token_ids {token_ids.shape} and counts {counts.shape} differ in shape")
    keep = (counts >= threshold) & ~np.isin(token_ids, np.asarray(sorted(set(special_ids)), dtype=np.int64))
    if not keep.any():
        total = int(counts.sum()) if n_positions is None else int(n_positions)
        raise InsufficientTokensError(
            f"the corpus had {total} tokens ({token_ids.size} distinct, most frequent non-special one "
            f"{int(counts[~np.isin(token_ids, list(special_ids))].max(initial=0))} times); none reaches "
            f"the frequency threshold of {threshold} occurrences")
    return keep


def tfidf(rep: np.ndarray) -> np.ndarray:
    """TF-IDF of representations, each neuron a document and each token a term (BCL section 5.2).

    Term frequency is the positive part of the activation, ``max(R, 0)`` (the paper reads positive
    activations as a token's significance, section 5.4); the inverse document frequency of a token is
    scikit-learn's smoothed ``log((1 + n_neurons) / (1 + df)) + 1``, ``df`` the number of neurons with
    a positive mean activation on it (``TfidfTransformer(norm=None)``).

    Parameters
    ----------
    rep : ndarray of shape (n_neurons, n_tokens)

    Returns
    -------
    ndarray of shape (n_neurons, n_tokens), float32
    """
    from sklearn.feature_extraction.text import TfidfTransformer

    tf = np.maximum(np.asarray(rep, dtype=np.float64), 0.0)
    return TfidfTransformer(norm=None, smooth_idf=True).fit_transform(tf).toarray().astype(np.float32)


def smooth(rep: np.ndarray, neighbours: np.ndarray, similarity: np.ndarray, *,
           lam: float = SMOOTH_LAMBDA) -> np.ndarray:
    """Semantic smoothing (BCL Eq. 2): ``R[:, v] += lam / k * sum_j sim(v, v_j) * R[:, v_j]``.

    Every column is updated from the *unsmoothed* representations (simultaneous update).

    Parameters
    ----------
    rep : ndarray of shape (n_neurons, n_tokens)
    neighbours : ndarray of shape (n_tokens, k), int
        Column indices of each token's k nearest neighbours; -1 for none (no contribution).
    similarity : ndarray of shape (n_tokens, k)
        Their similarities.
    lam : float
        The discount lambda (0.5 in the paper); 0 returns ``rep`` unchanged.

    Returns
    -------
    ndarray of shape (n_neurons, n_tokens), float32
    """
    rep = np.asarray(rep, dtype=np.float32)
    neighbours = np.asarray(neighbours)
    if neighbours.shape[0] != rep.shape[1] or similarity.shape != neighbours.shape:
        raise ValueError(f"neighbours {neighbours.shape} and similarity {similarity.shape} must be "
                         f"(n_tokens={rep.shape[1]}, k)")
    k = neighbours.shape[1]
    out = rep.copy()
    if lam == 0 or k == 0:
        return out
    w = np.where(neighbours >= 0, similarity, 0.0).astype(np.float32)
    idx = np.where(neighbours >= 0, neighbours, 0)
    for j in range(k):
        out += (lam / k) * rep[:, idx[:, j]] * w[None, :, j]
    return out


def normalize_rows(rep: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32."""
    rep = np.asarray(rep, dtype=np.float32)
    norms = np.linalg.norm(rep, axis=1, keepdims=True)
    return rep / np.maximum(norms, 1e-12)


def scaled_k(k_paper: int, n_neurons: int) -> int:
    """K for a model with ``n_neurons`` so that the mean cluster size matches the paper's
    ``9984 / k_paper`` (claims.md, "Models other than the paper's"): ``max(2, round(k * n / 9984))``."""
    return max(2, min(n_neurons, round(k_paper * n_neurons / PAPER_NEURONS)))


@dataclass
class Refinement:
    """One refined cluster (BCL section 5.3).

    Attributes
    ----------
    members : ndarray of int
        Neurons kept, a subset of the cluster.
    max_distance : list of float
        Max Euclidean distance of a member to the centre before each removal and after the last
        (Fig. 1); ``len = removed + 1``.
    """

    members: np.ndarray
    max_distance: list = field(default_factory=list)


def refine_gram(gram: np.ndarray, *, threshold: float = REFINE_THRESHOLD) -> Refinement:
    """Refinement from the members' Gram matrix ``G = X X^T`` (see :func:`refine`).

    Uses ``|x_i - c|^2 = G_ii - 2 (G S)_i / m + S^T G S / m^2`` with incremental updates, O(m) per step.

    Parameters
    ----------
    gram : ndarray of shape (m, m)

    Returns
    -------
    Refinement
        ``members`` index into the rows of ``gram``.
    """
    g = np.asarray(gram, dtype=np.float64)
    m = g.shape[0]
    if m == 0:
        return Refinement(np.zeros(0, dtype=np.int64), [])
    alive = np.ones(m, dtype=bool)
    dot_s = g.sum(axis=1)  # x_i . S, S = sum of alive members
    ss = float(dot_s.sum())  # S . S
    diag = np.diag(g).copy()
    n = m
    trace = []
    while True:
        d2 = diag - 2.0 * dot_s / n + ss / (n * n)
        d2 = np.where(alive, np.maximum(d2, 0.0), -np.inf)
        far = int(np.argmax(d2))
        dmax = math.sqrt(d2[far])
        trace.append(dmax)
        if dmax < threshold or n == 1:
            break
        ss = ss - 2.0 * dot_s[far] + g[far, far]
        dot_s = dot_s - g[:, far]
        alive[far] = False
        n -= 1
    return Refinement(np.flatnonzero(alive), trace)


def refine(x: np.ndarray, *, threshold: float = REFINE_THRESHOLD) -> Refinement:
    """Iterative refinement of one cluster (BCL section 5.3).

    At each step the member farthest (Euclidean) from the cluster centre (the mean of the members) is
    removed and the centre recomputed, until the max distance is below ``threshold`` (0.6).

    Parameters
    ----------
    x : ndarray of shape (m, d)
        The members' (L2-normalised) representations.

    Returns
    -------
    Refinement
        ``members`` index into the rows of ``x``; never empty for ``m >= 1`` (a single member is at
        distance 0 of itself).
    """
    x = np.asarray(x, dtype=np.float64)
    return refine_gram(x @ x.T, threshold=threshold)


@dataclass
class Clustering:
    """Agglomerative clusterings of one representation for several K.

    Attributes
    ----------
    labels : dict of int to ndarray of shape (n_neurons,), int
        K -> cluster label of every neuron, labels 0..K-1.
    avg_distance, max_distance : dict of int to ndarray of shape (K,), float
        Per cluster, the average and max pairwise ``1 - cos`` distance among its members (NaN for
        singletons, which have no pair).
    refined : dict of int to list of Refinement
        K -> the refinement of every cluster (for the K asked for).
    """

    labels: dict
    avg_distance: dict
    max_distance: dict
    refined: dict = field(default_factory=dict)


def cosine_distances(x: np.ndarray) -> np.ndarray:
    """``1 - x x^T`` of L2-normalised rows, float32, diagonal 0, clipped to [0, 2]. Shape (n, n)."""
    d = x @ x.T
    np.subtract(1.0, d, out=d)
    np.clip(d, 0.0, 2.0, out=d)
    np.fill_diagonal(d, 0.0)
    return d


def cluster_neurons(x: np.ndarray, ks, *, refine_ks=(), threshold: float = REFINE_THRESHOLD) -> Clustering:
    """Complete-linkage agglomerative clustering on ``1 - cos`` (BCL section 5.3), for several K.

    scikit-learn's ``AgglomerativeClustering(metric="precomputed", linkage="complete")`` is fitted
    for every K with a ``joblib.Memory`` cache, so the tree is built once and cut at each K.

    Parameters
    ----------
    x : ndarray of shape (n_neurons, n_tokens)
        L2-normalised representations (:func:`normalize_rows`).
    ks : iterable of int
        Numbers of clusters, each in [2, n_neurons].
    refine_ks : iterable of int
        The K whose clusters are also refined (:func:`refine`).

    Returns
    -------
    Clustering

    Notes
    -----
    Memory: the float32 distance matrix (4 n^2 bytes) plus scikit-learn's condensed copy and indices
    (about 24 n^2 / 2 bytes): about 5 GB for 17,856 neurons.
    """
    from joblib import Memory
    from sklearn.cluster import AgglomerativeClustering

    x = np.ascontiguousarray(x, dtype=np.float32)
    n = x.shape[0]
    ks = sorted(set(int(k) for k in ks))
    bad = [k for k in ks if not 2 <= k <= n]
    if bad:
        raise ValueError(f"numbers of clusters must lie in [2, {n}], got {bad}")
    dist = cosine_distances(x)
    out = Clustering({}, {}, {})
    with tempfile.TemporaryDirectory(prefix="bcl-tree-") as tmp:
        memory = Memory(tmp, verbose=0)
        for k in ks:
            model = AgglomerativeClustering(n_clusters=k, metric="precomputed", linkage="complete",
                                            compute_full_tree=True, memory=memory)
            out.labels[k] = model.fit_predict(dist).astype(np.int64)
    for k in ks:
        avg, mx = np.full(k, np.nan), np.full(k, np.nan)
        refined = []
        for c in range(k):
            idx = np.flatnonzero(out.labels[k] == c)
            sub = dist[np.ix_(idx, idx)]
            m = idx.size
            if m >= 2:
                avg[c] = float(sub.sum(dtype=np.float64) / (m * (m - 1)))
                mx[c] = float(sub.max())
            if k in refine_ks:
                r = refine_gram(1.0 - sub.astype(np.float64), threshold=threshold)
                refined.append(Refinement(idx[r.members], r.max_distance))
        out.avg_distance[k], out.max_distance[k] = avg, mx
        if k in refine_ks:
            out.refined[k] = refined
    return out


def members(labels: np.ndarray) -> list[np.ndarray]:
    """Neuron indices of every cluster, in label order."""
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(int(labels.max()) + 2))
    return [order[bounds[c]:bounds[c + 1]] for c in range(int(labels.max()) + 1)]


def top_tokens(x: np.ndarray, member_idx: np.ndarray, k: int = TOP_K, *, reduce: str = "mean") -> np.ndarray:
    """Columns of the ``k`` largest entries of the cluster's representation (BCL section 5.4).

    Parameters
    ----------
    x : ndarray of shape (n_neurons, n_tokens)
        The primary reading passes the L2-normalised rows; reading R5 (the authors' code) the raw rows.
    member_idx : ndarray of int
        The cluster's neurons (non-empty).
    reduce : {"mean", "sum"}
        ``"mean"``: the mean of the members' rows (primary); ``"sum"``: their sum (R5).

    Returns
    -------
    ndarray of shape (min(k, n_tokens),), int64, largest first
    """
    if len(member_idx) == 0:
        raise ValueError("a cluster needs at least one neuron")
    if reduce not in ("mean", "sum"):
        raise ValueError(f"reduce must be 'mean' or 'sum', got {reduce!r}")
    rows = np.asarray(x[np.asarray(member_idx)], dtype=np.float64)
    centre = rows.mean(axis=0) if reduce == "mean" else rows.sum(axis=0)
    k = min(k, centre.size)
    top = np.argpartition(-centre, k - 1)[:k]
    return top[np.argsort(-centre[top], kind="stable")].astype(np.int64)


def index_share(labels: np.ndarray, n_layers: int, width: int) -> np.ndarray:
    """Per cluster, the share of its neurons whose index also occurs in another layer of the cluster.

    Parameters
    ----------
    labels : ndarray of shape (..., n_layers * width), int
        Cluster labels (neuron ``layer * width + index``); leading axes are batches (permutations).

    Returns
    -------
    ndarray of shape (..., n_clusters), float64
        NaN for an empty cluster.
    """
    labels = np.asarray(labels)
    lead = labels.shape[:-1]
    lab = labels.reshape(-1, n_layers * width)
    n_clusters = int(labels.max()) + 1
    index = np.tile(np.arange(width), n_layers)
    b = lab.shape[0]
    keys = (np.arange(b)[:, None] * n_clusters + lab) * width + index[None]
    counts = np.bincount(keys.ravel(), minlength=b * n_clusters * width).reshape(b, n_clusters, width)
    shared = (counts * (counts >= 2)).sum(-1)
    size = counts.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = shared / size
    return share.reshape(*lead, n_clusters)


def layer_preserving_permutations(labels: np.ndarray, n_layers: int, width: int, n: int,
                                  rng: np.random.Generator):
    """Label arrays of BCL-7's null: the labels shuffled among the neurons of each layer separately.

    Every cluster keeps its number of neurons in every layer; which index a neuron has is random.

    Yields
    ------
    ndarray of shape (b, n_layers * width), int
        Chunks of permuted labellings, ``n`` in all.
    """
    lab = np.asarray(labels).reshape(n_layers, width)
    chunk = max(1, 2_000_000 // (n_layers * width))
    for start in range(0, n, chunk):
        b = min(chunk, n - start)
        perm = np.argsort(rng.random((b, n_layers, width)), axis=-1)
        yield np.take_along_axis(np.broadcast_to(lab, (b, n_layers, width)), perm, -1).reshape(b, -1)


def index_share_null(labels: np.ndarray, n_layers: int, width: int, *, n_permutations: int = 1000,
                     seed: int = 0) -> np.ndarray:
    """Mean index share under a layer-preserving permutation null (BCL-7).

    Each permutation shuffles the cluster labels among the neurons of each layer separately
    (:func:`layer_preserving_permutations`), which keeps every cluster's per-layer counts and breaks
    any link between index and cluster.

    Returns
    -------
    ndarray of shape (n_permutations,), float64
        The mean over clusters of :func:`index_share`, per permutation.
    """
    rng = np.random.default_rng(seed)
    out = []
    for shuffled in layer_preserving_permutations(labels, n_layers, width, n_permutations, rng):
        out.append(np.nanmean(index_share(shuffled, n_layers, width), axis=-1))
    return np.concatenate(out) if out else np.zeros(0)
