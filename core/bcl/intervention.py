"""BCL causal intervention (Zhang, Gu, Yao, section 5.5) and the whole BCL experiment on a zoo model.

For a cluster, its evaluation corpus is the evaluation-split sentences that contain one of its top-10
tokens; the loss is the model's cross-entropy (nats) on those top tokens with the cluster's neurons
replaced versus unablated, reported as a % increase. Masked LMs predict every occurrence of a top
token replaced by the mask token (masked-token loss); causal LMs predict them as the next token
(next-token loss at the positions whose target is a top token).

Replacement value (claims.md revision 2, the authors' code): at every layer and every token, the
cluster's neurons take the mean of that layer's residual neurons at that token, on the live hidden
state (after the replacements of earlier layers): ``hidden_states.mean(-1)`` written into the
cluster's indices (:func:`replace_resid`).

Baselines (claims.md, BCL), 5 seeds each, the same number of neurons as the cluster:

- ``random``: neurons drawn from all layers (:func:`random_neurons`);
- ``random_layer``: the cluster's per-layer counts, drawn inside each layer (:func:`random_layer`);
- ``random_position``: random neuron indices, each ablated in every layer, until the count matches
  (:func:`random_position`).

Readings (claims.md, "Readings"), computed when asked: R3 replaces with each neuron's own collection
mean; R4 reads ``random_position`` as the cluster's indices kept, each moved to a random layer
(:func:`random_position_kept`); R5 takes the top tokens from the sum of the cluster's raw rows.
R3 and R4 add conditions to the primary's batched pass on the same sentences; R5 has its own top
tokens, hence its own sentences and pass.

Every condition of a cluster (unablated, cluster, 3 baselines x 5 seeds, alternates) runs on the same
sentences in one batched forward pass: each batch row carries its own keep-mask.

"Sentences" are windows of :data:`BCL_SIZES` ``sentence_len`` tokens of the evaluation split (the
harness's text is split into windows, not sentences). Each cluster's sentences are drawn so that
clusters share as few as possible and their union spans many documents (:func:`select_sentences`);
clusters that still share sentences form groups that the intervals resample together. A cluster none
of whose top tokens occurs in the evaluation pool is *skipped*: it is counted and reported, never
silently dropped.

:func:`bcl_experiment` runs everything on one model and corpus: representations (cached), the
frequency filter, post-processing, clustering for K in {20, 50, 200} scaled to the model, refinement,
the intervention for every setup (cached), and the statistics of BCL-7 and BCL-8.
"""
from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from core.zoo import sites
from core.cache import atomic_write_json, cache_dir, cache_key, load_cached, one_at_a_time
from core.errors import check_name

SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
BASELINES: tuple[str, ...] = ("random", "random_layer", "random_position")
PAPER_KS: tuple[int, ...] = (20, 50, 200)
INTERVENTION_KS: tuple[int, ...] = (50, 200)
#: Bumped whenever a change alters what a cached BCL result holds (2: claims.md revision 2, the live
#: per-token replacement value, sentences drawn apart and spread over documents, BCL-8 deduplicated
#: words, readings R3-R5).
BCL_VERSION = 2
#: The version of the representation and clustering caches (revision 2 left both unchanged).
REPR_VERSION = 1
#: The readings of claims.md that the BCL experiment computes.
BCL_READINGS: tuple[str, ...] = ("R3", "R4", "R5")

#: BCL sample sizes per profile (``core.profiles`` names). ``collect_tokens``: collection corpus
#: (representations); ``seq_len``: its window length; ``max_doc_tokens``: collection documents cut at
#: this many tokens. ``sentence_len``: evaluation "sentence" length; ``eval_tokens``: the evaluation
#: pool; ``eval_max_doc_tokens``: evaluation documents cut at this many tokens, so that the pool
#: spreads over many documents (the small tier's ``wiki`` evaluation split has 35 documents; cut at
#: 512 tokens its first 16,384 tokens span 31-33 of them, uncut 3); ``max_sentences``: sentences per
#: cluster (:func:`select_sentences`); ``min_documents``: documents the union of a setup's evaluated
#: clusters' sentences must span (claims.md, "Sample design": 16, ``paper`` 100), topped up by
#: :func:`select_sentences`; ``max_clusters``: clusters evaluated per setup (a seeded random sample of
#: the non-skipped ones; None = all); ``methods``: representation variants clustered besides
#: ``filter`` (``refine`` always comes from ``filter``); ``n_random_sets``: random word sets per
#: cluster for BCL-8.
BCL_SIZES: dict[str, dict] = {
    "ci": {"collect_tokens": 16_384, "seq_len": 128, "sentence_len": 32, "eval_tokens": 16_384,
           "eval_max_doc_tokens": 512, "max_sentences": 2, "min_documents": 16, "max_clusters": 12,
           "methods": ("filter",), "n_random_sets": 100, "batch_size": 8, "batch_rows": 34,
           "max_doc_tokens": 100_000},
    # small fits the main job's 45 minutes on 2 cores: every intervened cluster costs 17 conditions x
    # max_sentences forward passes, so small doubles ci's sentences and corpus, not its setups
    "small": {"collect_tokens": 32_768, "seq_len": 256, "sentence_len": 32, "eval_tokens": 16_384,
              "eval_max_doc_tokens": 512, "max_sentences": 4, "min_documents": 16, "max_clusters": 12,
              "methods": ("filter",), "n_random_sets": 100, "batch_size": 8, "batch_rows": 34,
              "max_doc_tokens": 100_000},
    "paper": {"collect_tokens": 250_000, "seq_len": 512, "sentence_len": 32, "eval_tokens": 100_000,
              "eval_max_doc_tokens": 1_000, "max_sentences": 32, "min_documents": 100,
              "max_clusters": None, "methods": ("filter", "tfidf", "smooth"), "n_random_sets": 100,
              "batch_size": 8, "batch_rows": 34, "max_doc_tokens": 100_000},
}

#: BCL data per tier: the small tier's two corpora, the paper's C4 and Yelp on the full tier.
BCL_CORPORA = {"small": ("news", "wiki"), "full": ("allenai/c4", "Yelp/yelp_review_full")}


# ---------------------------------------------------------------------------------------------
# baselines

def random_neurons(size: int, n_layers: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """``random``: ``size`` distinct neurons drawn uniformly from all layers (flat indices, sorted)."""
    if not 0 <= size <= n_layers * width:
        raise ValueError(f"size must lie in [0, {n_layers * width}], got {size}")
    return np.sort(rng.choice(n_layers * width, size=size, replace=False)).astype(np.int64)


def random_layer(per_layer: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    """``random_layer``: ``per_layer[l]`` distinct neurons drawn inside each layer l (flat, sorted)."""
    out = [l * width + rng.choice(width, size=int(c), replace=False) for l, c in enumerate(per_layer)]
    return np.sort(np.concatenate(out)).astype(np.int64) if out else np.zeros(0, np.int64)


def random_position(size: int, n_layers: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """``random_position``: random indices, each ablated in every layer, until ``size`` neurons.

    ``size // n_layers`` distinct indices are ablated in every layer; the remainder ``size % n_layers``
    neurons take one more distinct index in that many random layers. Flat indices, sorted.
    """
    if not 0 <= size <= n_layers * width:
        raise ValueError(f"size must lie in [0, {n_layers * width}], got {size}")
    full, rest = divmod(size, n_layers)
    idx = rng.choice(width, size=full + (rest > 0), replace=False)
    out = [l * width + idx[:full] for l in range(n_layers)]
    if rest:
        layers = rng.choice(n_layers, size=rest, replace=False)
        out.append(layers * width + idx[full])
    return np.sort(np.concatenate(out)).astype(np.int64)


def random_position_kept(cluster: np.ndarray, n_layers: int, width: int,
                         rng: np.random.Generator) -> np.ndarray:
    """``random_position``, reading R4 (claims.md, "Readings"): the cluster's indices kept, each
    neuron moved to a random layer.

    A neuron ``(layer, index)`` of the cluster becomes ``(layer', index)`` with ``layer'`` uniform over
    all layers; the ``c`` neurons of the cluster that share an index take ``c`` distinct layers (drawn
    without replacement), so the set has the cluster's size and its per-index counts.

    Returns
    -------
    ndarray of int64, sorted
        Flat indices ``layer * width + index``.
    """
    cluster = np.asarray(cluster, dtype=np.int64)
    if cluster.size and (cluster.min() < 0 or cluster.max() >= n_layers * width):
        raise ValueError(f"cluster indices must lie in [0, {n_layers * width})")
    index, count = np.unique(cluster % width, return_counts=True)
    out = [rng.choice(n_layers, size=int(c), replace=False) * width + i for i, c in zip(index, count)]
    return np.sort(np.concatenate(out)).astype(np.int64) if out else np.zeros(0, np.int64)


def baseline_sets(cluster: np.ndarray, n_layers: int, width: int, seeds=SEEDS,
                  salt: tuple[int, ...] = ()) -> dict[str, list[np.ndarray]]:
    """The three baselines of a cluster, one neuron set per seed (``rng`` seeded by (seed, *salt))."""
    cluster = np.asarray(cluster, dtype=np.int64)
    per_layer = np.bincount(cluster // width, minlength=n_layers)
    out = {b: [] for b in BASELINES}
    for s in seeds:
        rng = np.random.default_rng([int(s), *map(int, salt)])
        out["random"].append(random_neurons(cluster.size, n_layers, width, rng))
        out["random_layer"].append(random_layer(per_layer, width, rng))
        out["random_position"].append(random_position(cluster.size, n_layers, width, rng))
    return out


# ---------------------------------------------------------------------------------------------
# evaluation units of a cluster

def cluster_sentences(windows: torch.Tensor, top_ids, *, kind: str, max_sentences: int | None = None):
    """The sentences of the evaluation pool that contain a top token, and the target positions.

    Parameters
    ----------
    windows : LongTensor of shape (n, seq)
        Evaluation-split sentences.
    top_ids : sequence of int
        The cluster's top tokens (vocabulary ids, never special tokens).
    kind : {"masked", "causal"}
        Causal LMs cannot predict position 0, so only positions >= 1 count.
    max_sentences : int or None
        Keep the first ``max_sentences`` sentences in pool order (None: all of them).

    Returns
    -------
    rows : LongTensor of shape (m,)
        Indices of the sentences (m = 0: the cluster is skipped), ascending.
    targets : BoolTensor of shape (m, seq)
        Positions holding a top token.
    """
    hit = torch.isin(windows, torch.as_tensor(list(map(int, top_ids)), dtype=windows.dtype))
    if kind == "causal":
        hit[:, 0] = False
    rows = hit.any(1).nonzero().squeeze(1)
    if max_sentences is not None:
        rows = rows[:max_sentences]
    return rows, hit[rows]


def _row_documents(docs) -> np.ndarray:
    """Per row, its document ids (ascending, -1 padded): ndarray of shape (n, max documents a row)."""
    d = np.asarray(docs, dtype=np.int64)
    if d.ndim != 2:
        raise ValueError(f"document ids must have shape (n_windows, seq_len), got {d.shape}")
    per_row = [np.unique(r[r >= 0]) for r in d]
    width = max([1, *(p.size for p in per_row)])
    out = np.full((d.shape[0], width), -1, dtype=np.int64)
    for i, p in enumerate(per_row):
        out[i, :p.size] = p
    return out


@dataclass
class SentenceSelection:
    """Evaluation sentences of several clusters, drawn so that clusters share as few as possible.

    Attributes
    ----------
    rows : list of ndarray of int
        Per cluster, its sentences (indices into the pool), in pick order; empty: the cluster's top
        tokens never occur (it is skipped).
    groups : ndarray of shape (n_clusters,), int
        Connected components of the "shares a sentence" graph (clusters that share sentences are
        resampled together); labels 0.. in order of first appearance; skipped clusters get -1.
    doc_groups : ndarray of shape (n_clusters,), int
        The same for the "shares a document" graph (recorded, not used by the intervals).
    n_sentences, n_documents : int
        Distinct sentences and distinct documents in the union of the clusters' sentences.
    topped_up : int
        Sentences added beyond ``max_sentences`` so that the union reaches ``min_documents``.
    """

    rows: list
    groups: np.ndarray
    doc_groups: np.ndarray
    n_sentences: int
    n_documents: int
    topped_up: int = 0


def components(sets: list) -> np.ndarray:
    """Connected components of items that share an element (union-find).

    Parameters
    ----------
    sets : list of iterables of int
        The elements (sentences, documents) of each item; an empty one is not in any component.

    Returns
    -------
    ndarray of shape (len(sets),), int
        Component labels 0, 1, ... in order of first appearance; -1 for an empty item.
    """
    parent = list(range(len(sets)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[int, int] = {}
    for i, s in enumerate(sets):
        for e in map(int, s):
            if e in owner:
                a, b = find(i), find(owner[e])
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[e] = i
    out = np.full(len(sets), -1, dtype=np.int64)
    label: dict[int, int] = {}
    for i, s in enumerate(sets):
        if len(s):
            out[i] = label.setdefault(find(i), len(label))
    return out


def select_sentences(windows: torch.Tensor, docs, top_ids: list, *, kind: str,
                     max_sentences: int | None, seed: int = 0,
                     min_documents: int = 0) -> SentenceSelection:
    """Draw every cluster's evaluation sentences so that clusters share as few as possible
    (claims.md, BCL: "evaluation sentences are drawn so that different clusters share as few as
    possible") and the union spans many documents (claims.md, "Sample design").

    Greedy and deterministic given ``seed``: clusters pick in order of their number of candidate
    sentences (fewest first, ties in a seeded random order); each pick takes, among the cluster's
    candidates (sentences holding one of its top tokens), the first by

    1. not taken by an earlier cluster;
    2. all of its documents new to the union;
    3. none of its documents already among this cluster's sentences;
    4. a seeded random rank (no preference for the start of the pool).

    If the union then spans fewer than ``min_documents`` documents, clusters (round robin, in pick
    order) each add one more sentence from a document new to the union, by the same order, until it
    does or no cluster has such a candidate (``topped_up`` counts them).

    Parameters
    ----------
    windows : LongTensor of shape (n, seq)
        The evaluation pool.
    docs : array-like of shape (n, seq), int
        Source document of every token, -1 at special tokens (``core.data.windows.text_windows(...,
        with_docs=True)``).
    top_ids : list of sequences of int
        Per cluster, its top tokens.
    kind : {"masked", "causal"}
    max_sentences : int or None
        Sentences per cluster (None: every candidate).
    seed : int
    min_documents : int

    Returns
    -------
    SentenceSelection

    Raises
    ------
    ValueError
        If ``docs`` does not have the shape of ``windows``.
    """
    check_name("model kind", kind, ("masked", "causal"))
    if tuple(np.shape(docs)) != tuple(windows.shape):
        raise ValueError(f"select_sentences: document ids of shape {tuple(np.shape(docs))} do not match "
                         f"the windows' shape {tuple(windows.shape)}")
    n = windows.shape[0]
    row_docs = _row_documents(docs)                       # (n, w), -1 padded
    n_docs = int(row_docs.max(initial=-1)) + 1
    rng = np.random.default_rng(seed)
    rank = rng.permutation(n)
    cands = [cluster_sentences(windows, t, kind=kind)[0].numpy() for t in top_ids]
    order = sorted(range(len(cands)), key=lambda c: (cands[c].size, rng.random()))
    taken = np.zeros(n, dtype=np.int64)
    used = np.zeros(n_docs + 1, dtype=bool)               # index -1 (padding) stays False
    own = [np.zeros(n_docs + 1, dtype=bool) for _ in cands]
    rows: list[list[int]] = [[] for _ in cands]

    def best(c: int, avail: np.ndarray, new_doc_only: bool) -> int | None:
        if avail.size == 0:
            return None
        rd = row_docs[avail]
        pad = rd < 0
        new_global = np.where(pad, True, ~used[rd]).all(1)
        if new_doc_only:
            keep = new_global
            avail, rd, pad, new_global = avail[keep], rd[keep], pad[keep], new_global[keep]
            if avail.size == 0:
                return None
        new_own = np.where(pad, True, ~own[c][rd]).all(1)
        shared = taken[avail] > 0
        pick = np.lexsort((rank[avail], ~new_own, ~new_global, shared))[0]
        return int(avail[pick])

    def take(c: int, r: int) -> None:
        rows[c].append(r)
        d = row_docs[r][row_docs[r] >= 0]
        used[d] = True
        own[c][d] = True

    for c in order:
        cand = cands[c]
        k = cand.size if max_sentences is None else min(max_sentences, cand.size)
        avail = cand
        for _ in range(k):
            r = best(c, avail, False)
            take(c, r)
            avail = avail[avail != r]
        taken[rows[c]] += 1
    topped = 0
    while used.sum() < min_documents:
        added = False
        for c in order:
            if used.sum() >= min_documents:
                break
            avail = np.setdiff1d(cands[c], rows[c])
            r = best(c, avail, True)
            if r is not None:
                take(c, r)
                taken[r] += 1
                topped += 1
                added = True
        if not added:
            break
    rows_arr = [np.asarray(r, dtype=np.int64) for r in rows]
    doc_sets = [np.unique(row_docs[r][row_docs[r] >= 0]) for r in rows_arr]
    all_rows = np.unique(np.concatenate([np.zeros(0, np.int64), *rows_arr]))
    all_docs = np.unique(np.concatenate([np.zeros(0, np.int64), *doc_sets]))
    return SentenceSelection(rows=rows_arr, groups=components(rows_arr), doc_groups=components(doc_sets),
                             n_sentences=int(all_rows.size), n_documents=int(all_docs.size),
                             topped_up=topped)


@dataclass
class ClusterScore:
    """Causal-intervention result of one cluster (BCL section 5.5).

    Attributes
    ----------
    cluster : int
    size : int
        Neurons in the cluster.
    n_sentences, n_targets : int
        Sentences used and top-token predictions scored.
    base_loss : float
        Unablated CE on the targets, nats.
    cluster_pct : float
        % increase of the CE with the cluster's neurons replaced (revision 2: the live per-token mean
        of their layer).
    baselines : dict of str to list of float
        % increase under each baseline, one per seed.
    rows : list of int
        The sentences (indices into the evaluation pool).
    readings : dict
        Alternates computed on the same sentences: ``"R3"``: ``{"cluster_pct", "baselines"}`` with
        every neuron set to its own collection mean; ``"R4"``: ``{"baselines": {"random_position":
        [...]}}`` with the index-preserving ``random_position``.
    """

    cluster: int
    size: int
    n_sentences: int
    n_targets: int
    base_loss: float
    cluster_pct: float
    baselines: dict
    rows: list = field(default_factory=list)
    readings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"cluster": self.cluster, "size": self.size, "n_sentences": self.n_sentences,
                "n_targets": self.n_targets, "base_loss": self.base_loss, "cluster_pct": self.cluster_pct,
                "baselines": self.baselines, "rows": list(self.rows), "readings": self.readings}


def split_head(model):
    """``(body, head)`` of a language model: ``body(input_ids=...)[0]`` is the last hidden state of shape
    (batch, seq, d_model) and ``head`` maps hidden states (..., d_model) to logits (..., vocab), so
    that logits are computed only where a loss is scored. BERT-style masked LMs keep their head in
    ``cls`` (transform + tied decoder), RoBERTa and causal LMs in ``lm_head``.

    Raises
    ------
    ValueError
        If the model has neither.
    """
    head = getattr(model, "cls", None)
    if head is None:
        head = getattr(model, "lm_head", None)
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output head named 'cls' or 'lm_head'")
    return model.base_model, head


@contextmanager
def replace_resid(model, keep: torch.Tensor, *, live: torch.Tensor | None = None,
                  neuron_mean=None) -> Iterator[None]:
    """Replace residual neurons, one keep-mask per batch row (BCL section 5.5, revision 2).

    At residual layer ``l`` (where :mod:`core.zoo.sites` places it: the input of block ``l``, and the output
    of the last block), row
    ``b`` of the batch becomes ``x * k + (1 - k) * v`` with ``k = keep[b, l]`` and

    - ``live[b]`` True (the primary reading, the authors' code): ``v = x.mean(-1)``, the mean of
      the layer's residual neurons at that token, on the live hidden state, i.e. after the
      replacements of earlier layers and before this layer's own (``hidden_states.mean(-1)``
      written into the replaced indices);
    - ``live[b]`` False (reading R3): ``v = neuron_mean[l]``, each neuron's own collection mean.

    Parameters
    ----------
    model : transformers model of a family in :data:`core.zoo.sites.ARCHITECTURES`
    keep : tensor of shape (batch, n_layers, width)
        1 keeps a neuron, 0 replaces it. Layers whose mask is all ones get no hook.
    live : BoolTensor of shape (batch,), optional
        Default: every row live.
    neuron_mean : array-like of shape (n_layers, width), optional
        Needed when a row is not live.

    Notes
    -----
    Hooks exist only inside the ``with`` block and are removed on the way out, also on error.
    """
    keep = torch.as_tensor(keep, dtype=torch.float32)
    b, n_layers, width = keep.shape
    if n_layers != sites.n_layers(model, "resid") or width != sites.site_width(model, "resid"):
        raise ValueError(f"replace_resid: keep of shape {tuple(keep.shape)} does not match the model's "
                         f"{sites.n_layers(model, 'resid')} x {sites.site_width(model, 'resid')} residual "
                         f"neurons")
    live = torch.ones(b, dtype=torch.bool) if live is None else torch.as_tensor(live, dtype=torch.bool)
    if live.shape != (b,):
        raise ValueError(f"replace_resid: live must have shape ({b},), got {tuple(live.shape)}")
    if not bool(live.all()) and neuron_mean is None:
        raise ValueError("replace_resid: rows that are not live need neuron_mean")
    const = None if neuron_mean is None else torch.as_tensor(np.asarray(neuron_mean), dtype=torch.float32)
    if const is not None and tuple(const.shape) != (n_layers, width):
        raise ValueError(f"replace_resid: neuron_mean must have shape ({n_layers}, {width}), got "
                         f"{tuple(const.shape)}")

    def apply(x: torch.Tensor, layer: int) -> torch.Tensor:
        k = keep[:, layer, None, :].to(device=x.device, dtype=x.dtype)  # (b, 1, width)
        v = x.mean(-1, keepdim=True)                                     # (b, seq, 1)
        if const is not None and not bool(live.all()):
            v = torch.where(live.to(x.device)[:, None, None], v,
                            const[layer].to(device=x.device, dtype=x.dtype))
        return x * k + (1 - k) * v

    layers = [l for l in range(n_layers) if bool((keep[:, l] != 1).any())]
    handles = []
    try:
        # where the harness reads and writes residual neurons (core.zoo.sites): one definition for all
        handles += sites._resid_hooks(model, layers, lambda layer, x: apply(x, layer), edit=True)
        yield
    finally:
        for h in handles:
            h.remove()


@torch.inference_mode()
def intervene(model, *, kind: str, windows: torch.Tensor, cluster: np.ndarray, top_ids,
              mask_id: int | None = None, n_layers: int, width: int, rows=None,
              max_sentences: int | None = None, seeds=SEEDS, salt: tuple[int, ...] = (),
              batch_rows: int = 34, cluster_id: int = 0, readings=frozenset(),
              neuron_mean=None) -> ClusterScore | None:
    """Causal intervention on one cluster (BCL section 5.5) with its three baselines.

    Every condition (unablated; the cluster; 3 baselines x ``len(seeds)``; and the alternates asked
    for) runs on the same sentences in one batched pass, each batch row with its own keep-mask
    (:func:`replace_resid`). Replaced neurons take the live per-token mean of their layer (revision 2);
    reading R3 adds the cluster and every baseline with each neuron's own collection mean instead;
    reading R4 adds the index-preserving ``random_position`` (:func:`random_position_kept`).

    Parameters
    ----------
    model : masked LM or causal LM (transformers)
    kind : {"masked", "causal"}
    windows : LongTensor of shape (n, seq)
        Evaluation-split sentences.
    cluster : ndarray of int
        Flat residual-neuron indices (``layer * width + index``).
    top_ids : sequence of int
        The cluster's top tokens; every occurrence in the sentences is a target.
    mask_id : int
        The mask token (masked LMs).
    rows : sequence of int, optional
        The sentences to use (:func:`select_sentences`); default: the first ``max_sentences`` of the
        pool that hold a top token (:func:`cluster_sentences`).
    salt : tuple of int
        Extra seed material for the baselines (e.g. K and the cluster id).
    readings : frozenset of str
        Alternates to compute on the same sentences: ``"R3"`` (needs ``neuron_mean``), ``"R4"``.
    neuron_mean : array-like of shape (n_layers, width), optional
        Each neuron's mean over the collection split (R3).

    Returns
    -------
    ClusterScore, or None when no sentence holds a top token (the cluster is skipped).
    """
    check_name("model kind", kind, ("masked", "causal"))
    if kind == "masked" and mask_id is None:
        raise ValueError("a masked LM needs mask_id")
    bad = sorted(set(readings) - {"R3", "R4"})
    if bad:
        raise ValueError(f"intervene computes the readings R3 and R4, got {bad}")
    if "R3" in readings and neuron_mean is None:
        raise ValueError("reading R3 needs neuron_mean")
    if rows is None:
        rows, targets = cluster_sentences(windows, top_ids, kind=kind, max_sentences=max_sentences)
    else:
        rows = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        hit = torch.isin(windows[rows], torch.as_tensor(list(map(int, top_ids)), dtype=windows.dtype))
        if kind == "causal":
            hit[:, 0] = False
        keep_rows = hit.any(1)
        rows, targets = rows[keep_rows], hit[keep_rows]
    if rows.numel() == 0:
        return None
    ids = windows[rows]
    inputs = ids.masked_fill(targets, mask_id) if kind == "masked" else ids
    label_pos = targets
    cluster = np.asarray(cluster, dtype=np.int64)
    sets = baseline_sets(cluster, n_layers, width, seeds, salt)
    # (name, neurons, live)
    conditions = [("base", None, True), ("cluster", cluster, True)]
    conditions += [(b, s, True) for b in BASELINES for s in sets[b]]
    if "R3" in readings:
        conditions += [("R3 cluster", cluster, False)]
        conditions += [(f"R3 {b}", s, False) for b in BASELINES for s in sets[b]]
    if "R4" in readings:
        kept = [random_position_kept(cluster, n_layers, width,
                                     np.random.default_rng([int(s), *map(int, salt), 4])) for s in seeds]
        conditions += [("R4 random_position", s, True) for s in kept]
    keep = torch.ones((len(conditions), n_layers * width))
    for c, (_, neurons, _) in enumerate(conditions):
        if neurons is not None:
            keep[c, torch.as_tensor(neurons)] = 0.0
    keep = keep.view(len(conditions), n_layers, width)
    live = torch.tensor([lv for _, _, lv in conditions], dtype=torch.bool)
    m = ids.shape[0]
    # row r of the big batch: condition r // m, sentence r % m
    cond_of = torch.arange(len(conditions)).repeat_interleave(m)
    sent_of = torch.arange(m).repeat(len(conditions))
    ce_sum = torch.zeros(len(conditions), dtype=torch.float64)
    n_t = int(label_pos.sum())
    device = next(model.parameters()).device
    base, head = split_head(model)
    for start in range(0, cond_of.numel(), batch_rows):
        c, s = cond_of[start:start + batch_rows], sent_of[start:start + batch_rows]
        if kind == "masked":
            pos = label_pos[s].to(device)
            tgt = ids[s].to(device)[pos]
        else:
            pos = torch.zeros_like(label_pos[s])
            pos[:, :-1] = label_pos[s][:, 1:]  # the logits at t predict the token at t + 1
            tgt = ids[s][:, 1:][label_pos[s][:, 1:]].to(device)
            pos = pos.to(device)
        with replace_resid(model, keep[c], live=live[c], neuron_mean=neuron_mean):
            hidden = base(input_ids=inputs[s].to(device))[0]
        lg = head(hidden[pos])  # the output head only at the scored positions
        row_of = torch.arange(s.numel(), device=device)[:, None].expand_as(pos)[pos]
        ce = torch.nn.functional.cross_entropy(lg.float(), tgt, reduction="none").double().cpu()
        ce_sum.index_add_(0, c[row_of.cpu()], ce)
    loss = ce_sum / n_t
    if not torch.isfinite(loss).all():
        raise FloatingPointError(f"non-finite loss in the intervention on cluster {cluster_id}")
    pct = (100.0 * (loss / loss[0] - 1.0)).tolist()
    names = [n for n, _, _ in conditions]

    def of(name: str) -> list[float]:
        return [p for n, p in zip(names, pct) if n == name]

    alt = {}
    if "R3" in readings:
        alt["R3"] = {"cluster_pct": of("R3 cluster")[0], "baselines": {b: of(f"R3 {b}") for b in BASELINES}}
    if "R4" in readings:
        alt["R4"] = {"baselines": {"random_position": of("R4 random_position")}}
    return ClusterScore(cluster=int(cluster_id), size=int(cluster.size), n_sentences=int(m), n_targets=n_t,
                        base_loss=float(loss[0]), cluster_pct=of("cluster")[0],
                        baselines={b: of(b) for b in BASELINES}, rows=[int(r) for r in rows],
                        readings=alt)


# ---------------------------------------------------------------------------------------------
# BCL-8: semantic relatedness of top tokens

def token_relatedness(top_cols: list[np.ndarray], words: list, vectors: np.ndarray, *,
                      n_random_sets: int = 100, seed: int = 0) -> dict:
    """Mean pairwise cosine of each cluster's top words' embeddings vs random size-matched sets (BCL-8).

    Revision 2: tokens are mapped to embedding words and deduplicated first, one vector per distinct
    word, in the cluster and in the random sets alike: ``house``, ``##house`` and ``Ġhouse`` in a
    cluster's top tokens count once (they would otherwise score cosine 1 with each other, which
    random sets almost never do). A cluster's ``m`` distinct words are compared with random sets of
    ``m`` distinct words drawn uniformly from the distinct words of the filtered vocabulary.

    Parameters
    ----------
    top_cols : list of ndarray of int
        Per cluster, its top-token columns of the filtered vocabulary.
    words : sequence of (str or None), length n_tokens
        The embedding word of every filtered token (None: no vector), :func:`core.bcl.embeddings.token_vectors`.
    vectors : ndarray of shape (n_tokens, d)
        Their vectors (tokens mapped to the same word have the same vector).

    Returns
    -------
    dict
        ``cluster`` (clusters used: at least 2 distinct words), ``observed`` and ``random`` (mean over
        ``n_random_sets`` random sets), ``diff`` = observed - random, per used cluster; ``n_mapped``
        (top tokens with a word) and ``n_words`` (distinct words) per cluster; ``n_vocab_words``.
    """
    from core.bcl.embeddings import mean_pairwise_cosine

    if len(words) != len(vectors):
        raise ValueError(f"token_relatedness: {len(words)} words but {len(vectors)} vectors")
    first: dict[str, int] = {}
    for j, w in enumerate(words):
        if w is not None:
            first.setdefault(w, j)
    pool = np.asarray(sorted(first.values()), dtype=np.int64)  # one column per distinct word
    rng = np.random.default_rng(seed)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    out = {"cluster": [], "observed": [], "random": [], "diff": [], "n_mapped": [], "n_words": [],
           "n_vocab_words": int(pool.size)}
    for c, cols in enumerate(top_cols):
        mapped = [words[int(j)] for j in cols if words[int(j)] is not None]
        distinct = [first[w] for w in dict.fromkeys(mapped)]
        out["n_mapped"].append(len(mapped))
        out["n_words"].append(len(distinct))
        m = len(distinct)
        if m < 2 or pool.size < m:
            continue
        obs = mean_pairwise_cosine(vectors[distinct])
        sets = np.stack([rng.choice(pool, size=m, replace=False) for _ in range(n_random_sets)])
        v = unit[sets]  # (n_sets, m, d)
        g = np.einsum("smd,snd->smn", v, v)
        rand = float(((g.sum((1, 2)) - np.trace(g, axis1=1, axis2=2)) / (m * (m - 1))).mean())
        out["cluster"].append(c)
        out["observed"].append(obs)
        out["random"].append(rand)
        out["diff"].append(obs - rand)
    return out


# ---------------------------------------------------------------------------------------------
# the experiment on a zoo model

def bcl_sizes(profile_name: str) -> dict:
    """The BCL sizes of a profile (:data:`BCL_SIZES`); unknown names list the valid ones."""
    return dict(BCL_SIZES[check_name("profile", profile_name, BCL_SIZES)])


def _windows(corpus: str, tokenizer, split: str, n_tokens: int, seq_len: int, max_doc_tokens: int):
    from core.data.windows import text_windows

    # the full tier's C4 and Yelp are Hub text subsets of core.data: read from the local HF cache (or
    # the Hub with HF_HUB_OFFLINE=0), else MissingAssetError naming the Hub id
    return text_windows(corpus, tokenizer, split=split, n_tokens=n_tokens, seq_len=seq_len,
                        max_doc_tokens=max_doc_tokens)


def _eval_pool(corpus: str, tokenizer, sizes: dict, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The evaluation pool and the source document of every token (``core.data.windows.text_windows(...,
    with_docs=True)``): ``windows`` and ``docs``, both LongTensor of shape (n, seq), docs -1 at special
    tokens. Documents are cut at ``eval_max_doc_tokens`` so that the pool spreads over many."""
    from core.data.windows import text_windows

    return text_windows(corpus, tokenizer, split="eval", n_tokens=sizes["eval_tokens"], seq_len=seq_len,
                        max_doc_tokens=sizes["eval_max_doc_tokens"], with_docs=True)


def _representations(lm, corpus: str, sizes: dict, weights: str, progress: bool):
    from core.bcl.representations import Representations, token_representations

    seq_len = min(sizes["seq_len"], lm.max_length or sizes["seq_len"])
    key = cache_key(experiment="bcl-repr", version=REPR_VERSION, model=lm.name, weights=weights,
                    corpus=corpus, split="collect", n_tokens=sizes["collect_tokens"], seq_len=seq_len,
                    max_doc_tokens=sizes["max_doc_tokens"])
    path = cache_dir("bcl") / f"repr-{lm.name.replace(':', '_')}-{key}.npz"
    if (found := load_cached(path, Representations.load)) is not None:  # a damaged file is recomputed
        return found, key
    windows = _windows(corpus, lm.tokenizer, "collect", sizes["collect_tokens"], seq_len,
                       sizes["max_doc_tokens"])
    pad = lm.tokenizer.pad_token_id
    rep = token_representations(lm.model, windows, ignore_ids=() if pad is None else (pad,),
                                batch_size=sizes["batch_size"], progress=progress,
                                desc=f"{lm.name}: BCL representations ({corpus})")
    rep.info = {"corpus": corpus, "split": "collect", "windows": int(windows.shape[0]), "seq_len": seq_len}
    rep.save(path)
    return rep, key


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _variants(rep, keep: np.ndarray, methods, tokenizer, token_cols):
    """Representation variants (before L2 normalisation), neurons x filtered tokens."""
    from core.bcl import neuron_clusters as nc

    base = rep.mean[:, keep]
    out = {"filter": base}
    if "tfidf" in methods:
        out["tfidf"] = nc.tfidf(base)
    if "smooth" in methods:
        from core.bcl.embeddings import nearest_neighbours, token_vectors

        _, has, vec = token_vectors(tokenizer, token_cols)
        nbr, sim = nearest_neighbours(vec, has, k=nc.N_NEIGHBOURS)
        out["smooth"] = nc.smooth(base, nbr, sim, lam=nc.SMOOTH_LAMBDA)
    return out


def _clusterings(variants: dict, ks: dict, key: str, progress: bool) -> dict:
    """Clusterings of every variant (cached as JSON): labels, distances, refinement."""
    from core.bcl import neuron_clusters as nc

    path = cache_dir("bcl") / f"clusters-{key}.json"
    if (found := load_cached(path, _read_json)) is not None:  # a damaged file is recomputed
        return found
    out = {}
    for method, rep in tqdm(variants.items(), desc="BCL clustering", disable=not progress, leave=False):
        x = nc.normalize_rows(rep)
        want = PAPER_KS if method == "filter" else INTERVENTION_KS
        refine_ks = [ks[k] for k in INTERVENTION_KS] if method == "filter" else []
        res = nc.cluster_neurons(x, [ks[k] for k in want], refine_ks=refine_ks)
        out[method] = {str(k): {
            "labels": res.labels[ks[k]].tolist(),
            "avg_distance": [None if np.isnan(v) else float(v) for v in res.avg_distance[ks[k]]],
            "max_distance": [None if np.isnan(v) else float(v) for v in res.max_distance[ks[k]]],
        } for k in want}
        for k in INTERVENTION_KS:
            if ks[k] in res.refined:
                out[method][str(k)]["refined"] = [r.members.tolist() for r in res.refined[ks[k]]]
                out[method][str(k)]["refine_trace"] = [r.max_distance for r in res.refined[ks[k]]]
    atomic_write_json(path, out)
    return out


def _token_strings(tok, ids) -> list[str]:
    tokens = tok.convert_ids_to_tokens([int(i) for i in ids])
    return [tok.convert_tokens_to_string([t]).strip() or t for t in tokens]


def _evaluate(lm, pool, docs, groups, top_ids, chosen, sizes, *, k, rep, readings, progress_rows, check):
    """Intervene on the ``chosen`` clusters with sentences drawn apart (:func:`select_sentences`);
    ``check(n_documents)`` fails when their union spans too few documents (claims.md, Sample design)."""
    tok = lm.tokenizer
    sel = select_sentences(pool, docs, [top_ids[c] for c in chosen], kind=lm.kind,
                           max_sentences=sizes["max_sentences"], seed=k,
                           min_documents=sizes["min_documents"])
    check(sel.n_documents)
    scores, kept = [], []
    for i, c in enumerate(chosen):
        if sel.rows[i].size == 0:
            continue
        sc = intervene(lm.model, kind=lm.kind, windows=pool, cluster=groups[c], top_ids=top_ids[c],
                       mask_id=tok.mask_token_id, n_layers=rep.n_layers, width=rep.width, rows=sel.rows[i],
                       salt=(k, c), batch_rows=sizes["batch_rows"], cluster_id=c, readings=readings,
                       neuron_mean=rep.neuron_mean)
        progress_rows.append(sc.n_sentences)
        scores.append(sc.as_dict())
        kept.append(i)
    docs_np = docs.numpy()
    for sc in scores:
        d = docs_np[sc["rows"]]
        sc["documents"] = np.unique(d[d >= 0]).tolist()
    return {"evaluated": scores, "groups": sel.groups[kept].tolist(),
            "doc_groups": sel.doc_groups[kept].tolist(), "n_sentences": sel.n_sentences, "n_documents": sel.n_documents, "topped_up": sel.topped_up,
            "skipped": len(chosen) - len(scores)}


@one_at_a_time("bcl", lambda name, corpus, profile, **_: f"experiment-{name}-{corpus}-{profile.name}")
def bcl_experiment(name: str, corpus: str, profile, *, device: str = "cpu", progress: bool = True,
                   readings=frozenset()) -> dict:
    """The BCL experiment on one zoo model and corpus, cached on disk.

    Parameters
    ----------
    name : str
        A masked or causal LM of the zoo.
    corpus : str
        A text subset (small tier: ``news`` or ``wiki``) or, on the full tier, a Hub dataset.
    profile : core.profiles.Profile
        Its name picks :data:`BCL_SIZES`.
    readings : iterable of str
        Alternate readings to compute beside the primary one (claims.md, "Readings"); the BCL ones
        (:data:`BCL_READINGS`) are computed, other valid ids (MOD's) are ignored. Part of the cache key.

    Returns
    -------
    dict (JSON-serialisable)
        ``model``, ``corpus``, ``kind``, ``n_layers``, ``width``, ``sizes``, ``threshold``,
        ``n_positions``, ``n_distinct``, ``n_kept``, ``ks`` (paper K -> scaled K), ``clusterings``
        (method -> paper K -> labels, per-cluster distances, refinement), ``setups`` (setup name ->
        evaluated :class:`ClusterScore` dicts with their ``documents``, ``groups`` (shared-sentence
        components of the evaluated clusters), ``doc_groups``, ``n_sentences``, ``n_documents``,
        ``skipped``, top tokens, and ``readings`` -> ``"R5"`` -> the same for R5's top tokens),
        ``bcl7``, ``bcl8`` (with ``readings`` -> ``"R5"``), ``readings`` (computed), ``eval_documents``
        (documents of the pool), ``cost`` (seconds and forward rows).

    Raises
    ------
    UnknownNameError
        For a reading id that is not in :data:`core.readings.READINGS`.
    MissingAssetError
        When the model, its data or GloVe is not available.
    core.bcl.neuron_clusters.InsufficientTokensError
        When the collection corpus leaves no token above the frequency threshold.
    """
    import time

    from core.bcl import neuron_clusters as nc
    from core.bcl.embeddings import token_vectors
    from core.zoo.models import load_model
    from core.readings import READINGS

    readings = frozenset(check_name("reading", r, READINGS) for r in readings) & frozenset(BCL_READINGS)
    sizes = bcl_sizes(profile.name)
    lm = load_model(name, device=device)
    check_name("model kind", lm.kind, ("masked", "causal"))
    weights = str(lm.card.get("cache_key") or lm.card.get("provenance"))
    rep, rep_key = _representations(lm, corpus, sizes, weights, progress)
    tok = lm.tokenizer
    threshold = nc.frequency_threshold(rep.n_positions)
    keep = nc.frequency_filter(rep.token_ids, rep.counts, special_ids=tok.all_special_ids,
                               threshold=threshold, n_positions=rep.n_positions)
    cols = rep.token_ids[keep]
    n_neurons = rep.n_neurons
    ks = {k: nc.scaled_k(k, n_neurons) for k in PAPER_KS}
    methods = tuple(sizes["methods"])
    key = cache_key(experiment="bcl", version=BCL_VERSION, repr=rep_key, sizes=sizes, ks=ks,
                    threshold=threshold, refine=nc.REFINE_THRESHOLD, lam=nc.SMOOTH_LAMBDA,
                    seeds=SEEDS, device=str(lm.device.type), readings=sorted(readings))
    path = cache_dir("bcl") / f"result-{name.replace(':', '_')}-{corpus.replace('/', '_')}-{key}.json"
    if (found := load_cached(path, _read_json)) is not None:  # a damaged entry is named and rebuilt
        return found
    variants = _variants(rep, keep, methods, tok, cols)
    # keyed on what the clustering depends on only, so that readings and evaluation sizes reuse it
    clusterings = _clusterings(variants, ks, cache_key(experiment="bcl-clusters", version=REPR_VERSION,
                                                       repr=rep_key, ks=ks, threshold=threshold,
                                                       refine=nc.REFINE_THRESHOLD, lam=nc.SMOOTH_LAMBDA,
                                                       methods=methods), progress)
    normalized = {m: nc.normalize_rows(v) for m, v in variants.items()}

    seq = min(sizes["sentence_len"], lm.max_length or sizes["sentence_len"])
    pool, docs = _eval_pool(corpus, tok, sizes, seq)

    def check(n_documents: int, setup: str) -> None:
        """claims.md, Sample design: fail, naming the set, below the profile's minimum of documents."""
        if hasattr(profile, "check_documents"):
            profile.check_documents(n_documents, f"BCL {name} on {corpus}, setup {setup}: the union of the "
                                                  f"evaluated clusters' sentences")

    setups = {}
    setup_list = [(m, k) for k in INTERVENTION_KS for m in (*methods, "refine")]
    bar = tqdm(total=len(setup_list), desc=f"{name}: BCL intervention ({corpus})", disable=not progress)
    cost = {"seconds": {"primary+R3+R4": 0.0, "R5": 0.0}, "sentences": {"primary": 0, "R5": 0},
            "conditions": {"primary": 2 + len(BASELINES) * len(SEEDS),
                           "R3": (1 + len(BASELINES) * len(SEEDS)) if "R3" in readings else 0,
                           "R4": len(SEEDS) if "R4" in readings else 0,
                           "R5": 2 + len(BASELINES) * len(SEEDS) if "R5" in readings else 0}}
    for method, k in setup_list:
        base = "filter" if method == "refine" else method
        entry = clusterings[base][str(k)]
        if method == "refine":
            groups = [np.asarray(g, dtype=np.int64) for g in entry["refined"]]
        else:
            groups = nc.members(np.asarray(entry["labels"]))
        top_ids = [cols[nc.top_tokens(normalized[base], g)] for g in groups]
        occurs = [cluster_sentences(pool, t, kind=lm.kind, max_sentences=1)[0].numel() > 0 for t in top_ids]
        eligible = [c for c in range(len(groups)) if occurs[c]]
        rng = np.random.default_rng([0, k])
        cap = sizes["max_clusters"]
        chosen = sorted(rng.choice(eligible, size=cap, replace=False).tolist()) \
            if cap is not None and len(eligible) > cap else eligible
        t0, rows = time.perf_counter(), []
        ev = _evaluate(lm, pool, docs, groups, top_ids, chosen, sizes, k=k, rep=rep,
                       readings=readings & {"R3", "R4"}, progress_rows=rows,
                       check=lambda n: check(n, f"{method}-{k}"))
        cost["seconds"]["primary+R3+R4"] += time.perf_counter() - t0
        cost["sentences"]["primary"] += sum(rows)
        setups[f"{method}-{k}"] = {
            "method": method, "k_paper": k, "k": ks[k], "n_clusters": len(groups), **ev,
            "skipped": len(groups) - len(eligible), "not_sampled": len(eligible) - len(chosen),
            "sizes": [int(g.size) for g in groups],
            "top_tokens": [_token_strings(tok, ids) for ids in top_ids],
            "readings": {},
        }
        if "R5" in readings:  # top tokens from the sum of the raw rows: own sentences, own pass
            top5 = [cols[nc.top_tokens(variants[base], g, reduce="sum")] for g in groups]
            t0, rows = time.perf_counter(), []
            ev5 = _evaluate(lm, pool, docs, groups, top5, chosen, sizes, k=k, rep=rep, readings=frozenset(),
                            progress_rows=rows, check=lambda n: check(n, f"{method}-{k} (reading R5)"))
            cost["seconds"]["R5"] += time.perf_counter() - t0
            cost["sentences"]["R5"] += sum(rows)
            setups[f"{method}-{k}"]["readings"]["R5"] = {
                **ev5, "top_tokens": [_token_strings(tok, ids) for ids in top5]}
        bar.update()
    bar.close()

    # BCL-7: index sharing across layers, K=50 (scaled), filter
    labels50 = np.asarray(clusterings["filter"]["50"]["labels"])
    share = nc.index_share(labels50, rep.n_layers, rep.width)
    null = nc.index_share_null(labels50, rep.n_layers, rep.width, n_permutations=1000, seed=0)
    bcl7 = {"per_cluster": [float(v) for v in share], "observed": float(np.nanmean(share)),
            "null": null.tolist()}

    # BCL-8: embedding relatedness of top words, K=200 (scaled), filter, every cluster
    words, has, vec = token_vectors(tok, cols)
    groups200 = nc.members(np.asarray(clusterings["filter"]["200"]["labels"]))
    top200 = [nc.top_tokens(normalized["filter"], g) for g in groups200]
    bcl8 = token_relatedness(top200, words, vec, n_random_sets=sizes["n_random_sets"], seed=0)
    bcl8["n_vocab_with_vector"] = int(has.sum())
    bcl8["readings"] = {}
    if "R5" in readings:
        top200_5 = [nc.top_tokens(variants["filter"], g, reduce="sum") for g in groups200]
        bcl8["readings"]["R5"] = token_relatedness(top200_5, words, vec, n_random_sets=sizes["n_random_sets"],
                                                   seed=0)

    result = {
        "experiment": "bcl", "model": name, "corpus": corpus, "kind": lm.kind, "tier": lm.tier,
        "profile": profile.name, "n_layers": rep.n_layers, "width": rep.width, "n_neurons": n_neurons,
        "sizes": {**sizes, "methods": list(methods)}, "threshold": threshold,
        "n_positions": rep.n_positions, "n_distinct": int(rep.token_ids.size), "n_kept": int(keep.sum()),
        "ks": {str(k): v for k, v in ks.items()}, "seeds": list(SEEDS), "readings": sorted(readings),
        "clusterings": clusterings, "setups": setups, "bcl7": bcl7, "bcl8": bcl8,
        "eval_sentences": int(pool.shape[0]),
        "eval_documents": int(np.unique(docs.numpy()[docs.numpy() >= 0]).size),
        "cost": cost,
        "data": {"collect": f"{corpus}, collect split, {rep.n_positions} tokens",
                 "eval": f"{corpus}, eval split, {pool.shape[0]} sentences of {pool.shape[1]} tokens "
                         f"(documents cut at {sizes['eval_max_doc_tokens']} tokens)"},
    }
    atomic_write_json(path, result)
    return result
