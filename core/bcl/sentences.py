"""BCL evaluation sentences (Zhang, Gu, Yao, section 5.5): the sentences a cluster's intervention is
scored on.

For a cluster, its evaluation corpus is the evaluation-split sentences that contain one of its top-10
tokens (:func:`cluster_sentences`, with the positions of the top tokens as targets). "Sentences" are
windows of :class:`core.profiles.BclSizes` ``sentence_len`` tokens of the evaluation split (the
harness's text is split into windows, not sentences). Each cluster's sentences are drawn so that
clusters share as few as possible and their union spans many documents (:func:`select_sentences`,
returning a :class:`SentenceSelection`); clusters that still share sentences form groups
(:func:`components`) that the intervals resample together. A cluster none of whose top tokens occurs
in the evaluation pool is *skipped*: it is counted and reported, never silently dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.errors import check_name


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

