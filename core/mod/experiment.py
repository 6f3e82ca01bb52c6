"""The modularity experiment (MOD, Pochinkov, Jones, Rahman 2024): selective pruning, cross-pruning,
overlaps, MoEfication and the Lorenz AUC of selected neurons over clusters.

Pieces, each usable alone:

- :func:`selection_scores`: selective-pruning scores of MLP neurons for an unlearned subset D_u against
  the reference set D_r, from streaming mean absolute activations (MOD Eq. 1). ``orientation="code"``
  (default; the paper's code and the selective-pruning paper) ranks by
  ``mean_{D_u}|n_i| / (eps + mean_{D_r}|n_i|)``; ``orientation="printed"`` by Eq. 1 as printed,
  ``mean_{D_r}|n_i| / (eps + mean_{D_u}|n_i|)`` (``claims.md``, MOD setup);
- :func:`top_fraction`: the top fraction of neurons by score over all layers together, or the same
  fraction in every layer (MOD section 4.2);
- :func:`top_count`: the m highest-scoring neurons over all layers together;
- :func:`bisect_count`: the bisection over the integer number of selected neurons that prunes a subset
  until its top1, relative to baseline, is within 2 percentage points of a target, or the smallest
  count that reaches the target at one-neuron resolution (claims.md, MOD setup, revision 2);
- :func:`cross_pruning_row` and :func:`run_mod`: the relative-accuracy matrix ``R[u, v]`` = top1 on v
  after pruning for u / baseline top1 on v (MOD section 3, Figs. 1-2), overlaps (section 4.1),
  MoEfication clusters (:mod:`core.mod.moefication`) and Lorenz AUCs (:mod:`core.mod.lorenz`), for a model and
  its random twin; with the alternate readings R1 (the lower count of a bracket closed at adjacent
  counts) and R2 (Eq. 1 as printed) when asked (:meth:`ModResult.reading`);
- :func:`eval_halves`: every subset's evaluation units split by document into two halves (MOD-3's
  noise floor);
- :func:`mod_experiment`: the whole experiment on a model of the zoo with the tier's subsets, cached.

The claims' statistics and rules on these arrays are in :mod:`claims.mod_rules` (claim logic stays out of core).

Selected neurons are mean-ablated (``claims.md``): the offset is the neuron's mean over the balanced
reference set's collection sample.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from core.zoo import sites
from core.cache import (Checkpoint, atomic_path, cache_dir, cache_key, checkpointed, load_cached, one_at_a_time,
                    partial_path)
from core.errors import check_name
from core.evaluate import EvalSet, evaluate

__all__ = [
    "EPS", "ORIENTATIONS", "selection_scores", "top_fraction", "top_count", "CountSearch", "bisect_count",
    "ModData", "ModResult", "run_mod", "mod_experiment", "MOD_SIZES", "MOD_READINGS", "subsets_for",
    "lottery_null", "size_matched_sets", "offdiag", "eval_halves", "eval_set", "eval_seq_len",
]

SITE = "mlp"
#: eps of Eq. 1 (the paper code's values): MLP neurons 1e-3, attention neurons 1e-4.
EPS = {"mlp": 1e-3, "attn": 1e-4}
ORIENTATIONS = ("code", "printed")
#: Tolerance of the bisection: 2 percentage points of relative top1 (claims.md).
TOLERANCE = 0.02
#: Status of a search whose bracket closed at adjacent counts (the upper count is the selection).
ONE_NEURON = "reached at one-neuron resolution"
SEARCH_STATUSES = ("reached", ONE_NEURON, "unreachable")
#: Reading R1's status of a subset whose lower count is 0: no neuron selected, no selected set.
R1_EMPTY = "no neuron selected (R1: lower count 0)"
#: The readings of claims.md's Readings table that the MOD experiment computes as alternates: R1 (the
#: lower count of a bracket closed at adjacent counts) and R2 (Eq. 1 as printed).
MOD_READINGS = ("R1", "R2")
#: Targets: top1 after pruning relative to baseline. ViT: 50% drop (and 80% drop for MOD-2); language
#: models: 20% drop (claims.md, MOD setup).
TARGETS = {"image": {"drop50": 0.5, "drop80": 0.2}, "causal": {"drop20": 0.8}}
PRIMARY = {"image": "drop50", "causal": "drop20"}
#: Per-layer selection for MOD-8..10 (MOD section 4.2): ViT 12.5%, language models 3.4%.
PER_LAYER_FRACTION = {"image": 0.125, "causal": 0.034}
#: Size-matched random selections behind the null Lorenz AUC and the MOD-6 null.
NULL_DRAWS = 1000
#: Bumped when a change alters what a cached experiment holds.
MOD_VERSION = 4  # 4: revision 2 (integer-count search, readings R1/R2, MOD-3 halves) + documents

#: The text subsets of the ``ci`` and ``small`` profiles: those that appear in the a-priori related
#: pairs of MOD-4 (offline-assets.md), fixed before any run so that every related pair is measured; the
#: other six subsets still enter the reference set D_r. The ``paper`` profile uses every text subset.
CI_TEXT_SUBSETS = ("bbc-politics", "parliament", "mmlu-bio", "mmlu-med", "health-tweets", "bbc-tech",
                   "mmlu-cs", "code", "mmlu-math", "mmlu-physics")

#: MOD sample sizes per profile: per subset and per collection sample (two disjoint samples are
#: collected, A and B, for MOD-3), and per subset for evaluation. ``random_cross_pruning_text``: whether
#: the random twin of a language model gets its own relative-accuracy matrix (figures only: no claim
#: reads it, and a random language model sits near top1 0, so its ratios are mostly noise); the ci
#: profile skips it to bound the run time. Image models always get it (it is cheap).
MOD_SIZES: dict[str, dict] = {
    "ci": {"text_subsets": CI_TEXT_SUBSETS, "collect_tokens": 512, "eval_tokens": 256, "eval_seq_len": 16,
           "eval_doc_windows": 1, "collect_images": 100, "eval_images": 100, "random_cross_pruning_text": False},
    # small fits the main job's 45 minutes on 2 cores: twice ci's evaluation tokens per subset (finer
    # relative-top1 steps for the bisection), ci's collection sample
    "small": {"text_subsets": CI_TEXT_SUBSETS, "collect_tokens": 512, "eval_tokens": 512, "eval_seq_len": 32,
              "eval_doc_windows": 1, "collect_images": 200, "eval_images": 200, "random_cross_pruning_text": False},
    "paper": {"text_subsets": None, "collect_tokens": 8192, "eval_tokens": 4800, "eval_seq_len": 48,
              "eval_doc_windows": 1, "collect_images": 200, "eval_images": 400, "random_cross_pruning_text": True},
}
"""``eval_seq_len`` and ``eval_doc_windows``: every subset's evaluation tokens come in windows of
``eval_seq_len`` tokens, at most ``eval_doc_windows`` per document (``core.data.text_windows``), so that
each subset's evaluation set spans the profile's ``min_eval_documents`` (claims.md, Sample design: 16, the
paper profile 100): 256 = 16 x 16 (ci), 512 = 16 x 32 (small), 4,800 = 100 x 48 (paper: the evaluation
split of MMLU's computer-science group is too short for 100 windows of 64);
packed subsets of short documents span more. The collection windows keep the profile's ``seq_len``."""


# ---------------------------------------------------------------------------------------------
# selective pruning
# ---------------------------------------------------------------------------------------------

def selection_scores(mean_abs_u, mean_abs_r, *, eps: float = EPS["mlp"],
                     orientation: str = "code") -> np.ndarray:
    """Selective-pruning scores of neurons (MOD Eq. 1).

    Parameters
    ----------
    mean_abs_u, mean_abs_r : array-like of the same shape, e.g. (n_layers, d_mlp), float
        Mean absolute activation of every neuron on the unlearned subset D_u and on the reference set
        D_r (collection split), in activation units.
    eps : float, default 1e-3
        The code's eps for MLP neurons (1e-4 for attention neurons).
    orientation : {"code", "printed"}
        ``"code"``: ``S = mean_u / (eps + mean_r)`` (ranks highest the neurons most active on D_u,
        the paper's code); ``"printed"``: ``S = mean_r / (eps + mean_u)`` (Eq. 1 as printed).

    Returns
    -------
    ndarray of the inputs' shape, float64

    Raises
    ------
    ValueError
        On mismatched shapes, negative or non-finite mean absolute values, or eps <= 0.
    UnknownNameError
        For an unknown orientation (the message lists the valid ones).
    """
    check_name("score orientation", orientation, ORIENTATIONS)
    u = np.asarray(mean_abs_u, dtype=np.float64)
    r = np.asarray(mean_abs_r, dtype=np.float64)
    if u.shape != r.shape:
        raise ValueError(f"mean_abs_u and mean_abs_r must have the same shape, got {u.shape} and {r.shape}")
    if not (np.isfinite(u).all() and np.isfinite(r).all()) or (u < 0).any() or (r < 0).any():
        raise ValueError("mean absolute activations must be finite and non-negative")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    return u / (eps + r) if orientation == "code" else r / (eps + u)


def _count(fraction: float, n: int) -> int:
    """Neurons selected at ``fraction`` of ``n``: ``round(fraction * n)``, at least 1 when fraction > 0."""
    if not 0.0 <= fraction <= 1.0 or math.isnan(fraction):
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    m = int(round(fraction * n))
    return max(m, 1) if fraction > 0 else 0


def top_fraction(scores, fraction: float, *, per_layer: bool = False) -> np.ndarray:
    """The top ``fraction`` of neurons by score (MOD section 2.3.1; section 4.2 for ``per_layer``).

    Parameters
    ----------
    scores : array-like of shape (n_layers, n_neurons), float
    fraction : float in [0, 1]
    per_layer : bool, default False
        False: ``round(fraction * n_layers * n_neurons)`` neurons with the highest scores over all
        layers together. True: ``round(fraction * n_neurons)`` in every layer.
        Ties break by position (stable order), so the result is deterministic.

    Returns
    -------
    ndarray of shape (n_layers, n_neurons), bool
        True for the selected neurons.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores: expected shape (n_layers, n_neurons), got {s.shape}")
    if np.isnan(s).any():
        raise ValueError("scores hold NaN")
    out = np.zeros(s.shape, dtype=bool)
    if per_layer:
        m = _count(fraction, s.shape[1])
        order = np.argsort(-s, axis=1, kind="stable")[:, :m]
        np.put_along_axis(out, order, True, axis=1)
    else:
        m = _count(fraction, s.size)
        order = np.argsort(-s.ravel(), kind="stable")[:m]
        out.ravel()[order] = True
    return out


def top_count(scores, m: int, *, order: np.ndarray | None = None) -> np.ndarray:
    """The ``m`` highest-scoring neurons over all layers together (ties by position, stable).

    Parameters
    ----------
    scores : array-like of shape (n_layers, n_neurons), float
    m : int in [0, n_layers * n_neurons]
    order : ndarray of shape (n_layers * n_neurons,), optional
        ``np.argsort(-scores.ravel(), kind="stable")``, precomputed (a search selects many counts).

    Returns
    -------
    ndarray of shape (n_layers, n_neurons), bool
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores: expected shape (n_layers, n_neurons), got {s.shape}")
    if int(m) != m or not 0 <= m <= s.size:
        raise ValueError(f"m must be an integer in [0, {s.size}], got {m}")
    if order is None:
        if np.isnan(s).any():
            raise ValueError("scores hold NaN")
        order = np.argsort(-s.ravel(), kind="stable")
    out = np.zeros(s.size, dtype=bool)
    out[order[:int(m)]] = True
    return out.reshape(s.shape)


@dataclass
class CountSearch:
    """Outcome of :func:`bisect_count` (claims.md, MOD setup, revision 2).

    Attributes
    ----------
    target : float
        Relative top1 sought (0.8 = a 20% drop).
    n_neurons : int
        N, the candidate neurons (every MLP neuron of the model).
    status : {"reached", "reached at one-neuron resolution", "unreachable"}
        ``reached``: a count with ``|r - target| <= tolerance`` was evaluated; ``reached at one-neuron
        resolution``: the bracket closed at adjacent counts first, the upper count is the selection;
        ``unreachable``: pruning all N neurons leaves r above ``target + tolerance`` (or r is NaN).
    count : int
        The selection, m (-1 when unreachable).
    relative : float
        r at ``count`` (NaN when unreachable).
    lower, upper : (int, float)
        The final bracket: the largest count evaluated with r above the target (count 0, r = 1 by
        definition, when none was) and the smallest count evaluated with r at or below it; for an
        unreachable subset ``lower`` is (-1, NaN) and ``upper`` is (N, r with every neuron pruned).
        For ``reached``, the bracket is the one around the count that stopped the search.
    n_evals : int
        Evaluations spent (at most ``ceil(log2 N) + 1``).
    history : list of (int, float)
        Every (count, r) evaluated, in order.
    """

    target: float
    n_neurons: int
    status: str
    count: int
    relative: float
    lower: tuple
    upper: tuple
    n_evals: int
    history: list = field(default_factory=list)

    @property
    def reached(self) -> bool:
        """True unless unreachable (a count reached at one-neuron resolution is a selection too)."""
        return self.status != "unreachable"

    @property
    def overshoot(self) -> float:
        """``target - r`` at the selection for a bracket closed at adjacent counts; else 0 (NaN when
        unreachable)."""
        if self.status == "unreachable":
            return float("nan")
        return self.target - self.relative if self.status == ONE_NEURON else 0.0

    @property
    def alternate(self) -> int:
        """Reading R1 (the authors' code): the lower count of a bracket closed at adjacent counts;
        the selection itself otherwise (-1 when unreachable)."""
        return int(self.lower[0]) if self.status == ONE_NEURON else self.count

    @property
    def alternate_relative(self) -> float:
        """r at :attr:`alternate` (1 for count 0, which is never evaluated)."""
        return float(self.lower[1]) if self.status == ONE_NEURON else self.relative


def bisect_count(relative_top1: Callable[[int], float], target: float, n_neurons: int, *,
                 tolerance: float = TOLERANCE) -> CountSearch:
    """Bisection over the integer number m of selected neurons in [0, N] (claims.md, MOD setup,
    revision 2).

    Evaluates m = N first: if r there is above ``target + tolerance`` (or NaN: no baseline accuracy)
    the subset is ``unreachable`` (one evaluation). Otherwise the bracket is (lower, upper) = (0, N),
    with r(0) = 1 by definition (never evaluated): a lower count whose r is above the target and an
    upper count whose r is at or below it. Each step evaluates the midpoint ``(lower + upper) // 2``
    and stops at the first count with ``|r - target| <= tolerance``; otherwise r above the target
    moves the lower count up, r at or below it moves the upper count down. When the bracket closes
    to adjacent counts first, the upper count is the selection, "reached at one-neuron resolution",
    with its overshoot ``target - r``. No evaluation cap is needed: at most ``ceil(log2 N) + 1``
    evaluations.

    Parameters
    ----------
    relative_top1 : callable
        ``relative_top1(m) -> float``: top1 of the subset after pruning its ``m`` highest-scoring
        neurons, divided by its baseline top1 (1 = unchanged).
    target : float in (0, 1)
        Relative top1 sought: 0.5 for a 50% drop, 0.8 for a 20% drop.
    n_neurons : int
        N >= 1, every candidate neuron.
    tolerance : float, default 0.02
        2 percentage points of relative top1.

    Returns
    -------
    CountSearch
    """
    if not 0 < target < 1:
        raise ValueError(f"target must be a relative top1 in (0, 1), got {target}")
    if int(n_neurons) != n_neurons or n_neurons < 1:
        raise ValueError(f"n_neurons must be a positive integer, got {n_neurons}")
    if not 0 <= tolerance < target:
        raise ValueError(f"tolerance must be in [0, target), got {tolerance}")
    n = int(n_neurons)
    history: list[tuple[int, float]] = []

    def ev(m: int) -> float:
        r = float(relative_top1(m))
        history.append((m, r))
        return r

    def done(status: str, m: int, r: float, lower: tuple, upper: tuple) -> CountSearch:
        return CountSearch(target, n, status, m, r, lower, upper, len(history), history)

    r_n = ev(n)
    if not r_n <= target + tolerance:  # NaN (no baseline accuracy) counts as unreachable
        return done("unreachable", -1, float("nan"), (-1, float("nan")), (n, r_n))
    lower, upper = (0, 1.0), (n, r_n)
    if abs(r_n - target) <= tolerance:
        return done("reached", n, r_n, lower, upper)
    while upper[0] - lower[0] > 1:
        mid = (lower[0] + upper[0]) // 2
        r = ev(mid)
        if abs(r - target) <= tolerance:
            return done("reached", mid, r, lower, upper)
        if r > target:
            lower = (mid, r)
        else:  # r <= target (NaN cannot occur here: the baseline is positive once r(N) is finite)
            upper = (mid, r)
    return done(ONE_NEURON, upper[0], upper[1], lower, upper)


# ---------------------------------------------------------------------------------------------
# the experiment on one model and its random twin
# ---------------------------------------------------------------------------------------------

@dataclass
class ModData:
    """Inputs of the MOD experiment for one model.

    Attributes
    ----------
    kind : {"causal", "image"}
    subsets : list of str
        The subsets pruned and evaluated (D_u), in order.
    reference : list of str
        Every subset of the family: D_r is their balanced union (equal collection size each).
    collect : {sample: {subset: EvalSet}}
        Two disjoint collection samples "A" and "B" of every reference subset.
    evalset : EvalSet
        The evaluation split of every subset of ``subsets``, concatenated in order; text sets carry
        ``docs`` (each subset's own document ids).
    unit_subset : ndarray of shape (evalset.n_units,), int
        Index into ``subsets`` of every evaluation unit.
    sizes : dict
    described : dict
    unit_docs : ndarray of shape (evalset.n_units,), int64, or None
        Document of every evaluation unit, numbered across subsets (two subsets never share an id):
        from ``evalset.unit_docs()`` and ``unit_subset`` unless given; images are their own documents;
        None for a text set without ``docs``.

    Raises
    ------
    ValueError
        When ``unit_subset`` or ``unit_docs`` does not have one entry per evaluation unit (the message
        names both shapes).
    """

    kind: str
    subsets: list
    reference: list
    collect: dict
    evalset: EvalSet
    unit_subset: np.ndarray
    sizes: dict = field(default_factory=dict)
    described: dict = field(default_factory=dict)
    unit_docs: np.ndarray | None = None

    def __post_init__(self):
        n_units = self.evalset.n_units
        self.unit_subset = np.asarray(self.unit_subset)
        if self.unit_subset.shape != (n_units,):
            raise ValueError(f"MOD data: unit_subset has shape {self.unit_subset.shape}, but the evaluation set "
                             f"has {n_units} units (shape ({n_units},) expected)")
        if self.unit_docs is None and self.evalset.has_docs:
            pairs = np.stack([self.unit_subset.astype(np.int64), self.evalset.unit_docs()])
            self.unit_docs = np.unique(pairs, axis=1, return_inverse=True)[1].reshape(-1).astype(np.int64)
        elif self.unit_docs is not None:
            self.unit_docs = np.asarray(self.unit_docs, dtype=np.int64)
            if self.unit_docs.shape != (n_units,):
                raise ValueError(f"MOD data: unit_docs has shape {self.unit_docs.shape}, but the evaluation set "
                                 f"has {n_units} units (shape ({n_units},) expected)")

    def counts(self) -> dict:
        """Scored units and documents of the evaluation (claims.md: every result records them).

        Returns
        -------
        dict of str to int
            ``eval_units`` (scored tokens or images, all subsets), ``draws`` (1: the selections are
            deterministic, no random draw is pooled) and, where the documents are known,
            ``eval_documents`` (distinct documents, all subsets) and ``eval_documents_min_per_subset``
            (the fewest distinct documents among one subset's scored units; images are their own).
            Numbers only, so that claims can put them in ``sample_sizes``.
        """
        out = {"eval_units": int(self.unit_subset.size), "draws": 1}
        if self.unit_docs is not None:
            per_subset = self.per_subset()["eval_documents"]
            out["eval_documents"] = int(np.unique(self.unit_docs).size)
            out["eval_documents_min_per_subset"] = min(per_subset.values()) if per_subset else 0
        return out

    def per_subset(self) -> dict:
        """``{"eval_units": {subset: int}, "eval_documents": {subset: int}}`` (documents only where known)."""
        n = len(self.subsets)
        units = np.bincount(self.unit_subset, minlength=n)
        out = {"eval_units": dict(zip(self.subsets, map(int, units)))}
        if self.unit_docs is not None:
            out["eval_documents"] = {s: int(np.unique(self.unit_docs[self.unit_subset == i]).size)
                                     for i, s in enumerate(self.subsets)}
        return out


def _sub_evalset(data: ModData, i: int) -> EvalSet:
    """The evaluation items of subset ``i`` only (contiguous in the concatenation)."""
    per_item = data.evalset.n_units // data.evalset.inputs.shape[0] if data.kind == "causal" else 1
    items = np.flatnonzero(data.unit_subset[::per_item] == i)
    sl = slice(int(items[0]), int(items[-1]) + 1)
    labels = None if data.evalset.labels is None else data.evalset.labels[sl]
    docs = None if data.evalset.docs is None else data.evalset.docs[sl]
    return EvalSet(data.kind, data.evalset.inputs[sl], labels, docs, data.subsets[i])


def _per_subset_top1(top1: np.ndarray, unit_subset: np.ndarray, n: int) -> np.ndarray:
    counts = np.bincount(unit_subset, minlength=n)
    return np.bincount(unit_subset, weights=top1.astype(np.float64), minlength=n) / counts


@dataclass
class ModelSide:
    """Statistics and selections of one model (trained or random twin) in the experiment."""

    mean_abs: dict  # {sample: {subset: (n_layers, d_mlp) float64}}
    mean: dict  # {sample: {subset: (n_layers, d_mlp) float64}}

    def reference(self, sample: str, what: str = "mean_abs") -> np.ndarray:
        table = self.mean_abs if what == "mean_abs" else self.mean
        return np.mean(np.stack(list(table[sample].values())), axis=0)

    def scores(self, subset: str, sample: str = "A", orientation: str = "code") -> np.ndarray:
        return selection_scores(self.mean_abs[sample][subset], self.reference(sample), orientation=orientation)


def _side_stats(model, name: str, data: ModData, samples: Sequence[str], batch_size: int, key: str,
                progress: bool) -> ModelSide:
    from core.neurons.activations import collect_stats

    mean_abs: dict = {}
    mean: dict = {}
    for sample in samples:
        mean_abs[sample], mean[sample] = {}, {}
        for subset in data.reference:
            # Only the first pass (moments) is needed; its two arrays are cached here, small, instead of
            # the whole NeuronStats state (whose unused histogram buffer is d_mlp x 100 per layer).
            path = cache_dir("mod", "stats") / (f"{name.replace(':', '_')}-{subset.replace('/', '_')}-"
                                                f"{sample}-{key}.npz")
            if (found := load_cached(path, _load_side_stats)) is not None:  # a damaged file is recomputed
                mean_abs[sample][subset], mean[sample][subset] = found
                continue
            st = collect_stats(model, SITE, data.collect[sample][subset], batch_size=batch_size,
                               histogram=False, progress=progress, model_name=f"{name} {subset} {sample}")
            mean_abs[sample][subset] = torch.stack([s.mean_abs for s in st]).double().numpy()
            mean[sample][subset] = torch.stack([s.mean for s in st]).double().numpy()
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, mean_abs=mean_abs[sample][subset], mean=mean[sample][subset])
    return ModelSide(mean_abs, mean)


def _load_side_stats(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as z:
        return z["mean_abs"], z["mean"]


def _unit_docs(data: ModData) -> tuple[np.ndarray, str]:
    """(group id of every evaluation unit, what the groups are) for splitting by document.

    The source document of every unit where :class:`ModData` carries one (the data layer's document
    ids, attribute ``unit_docs``, added on branch ``docs``); else images are their own documents and
    text units are grouped by their window (a window holds one document unless its subset is packed).
    """
    docs = getattr(data, "unit_docs", None)
    n = data.evalset.n_units
    if data.kind == "image":
        return np.arange(n, dtype=np.int64), "images"
    if docs is not None:
        docs = np.asarray(docs)
        if docs.shape != (n,):
            raise ValueError(f"MOD evaluation: expected document ids of shape ({n},) matching the "
                             f"evaluation units, got shape {docs.shape}")
        return docs.astype(np.int64), "documents"
    if data.kind == "image":
        return np.arange(n, dtype=np.int64), "images"
    per_item = n // data.evalset.inputs.shape[0]
    return np.arange(n, dtype=np.int64) // per_item, "windows (document ids not available)"


def eval_halves(data: ModData) -> tuple[np.ndarray, dict]:
    """Split every subset's evaluation units by document into two halves (MOD-3's noise floor,
    claims.md revision 2: two R from disjoint collection samples *and* disjoint evaluation samples).

    Per subset, its documents in order of first appearance go to half 0 while the midpoint of the
    document lies in the first half of the subset's units, then to half 1; all units of a document
    stay in one half.

    Returns
    -------
    half : ndarray of shape (n_units,), int64 in {0, 1}
    info : dict
        ``{"groups": what was split ("documents", "images" or windows), "groups_per_subset": [...],
        "units_per_half": [[n0, n1], ...]}``.

    Raises
    ------
    ValueError
        When a subset's units come from fewer than 2 documents (the message names the subset).
    """
    docs, what = _unit_docs(data)
    half = np.zeros(data.evalset.n_units, dtype=np.int64)
    n_groups, per_half = [], []
    for i, subset in enumerate(data.subsets):
        idx = np.flatnonzero(data.unit_subset == i)
        uniq, first, counts = np.unique(docs[idx], return_index=True, return_counts=True)
        if len(uniq) < 2:
            raise ValueError(f"MOD evaluation halves: subset {subset} has its {len(idx)} evaluation units from "
                             f"{len(uniq)} {what.split()[0]}; two disjoint halves need at least 2")
        order = np.argsort(first, kind="stable")
        uniq, counts = uniq[order], counts[order]
        mid = np.cumsum(counts) - counts / 2.0
        second = set(uniq[mid >= counts.sum() / 2.0].tolist())
        if len(second) in (0, len(uniq)):  # one very long document: still two non-empty halves
            second = {uniq[-1]} if not second else set(uniq[1:].tolist())
        half[idx] = np.isin(docs[idx], list(second)).astype(np.int64)
        n_groups.append(int(len(uniq)))
        per_half.append([int((half[idx] == 0).sum()), int((half[idx] == 1).sum())])
    return half, {"groups": what, "groups_per_subset": n_groups, "units_per_half": per_half}


def _group_top1(top1: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(groups, weights=top1.astype(np.float64), minlength=n) / np.bincount(groups, minlength=n)


def _relative(top1: np.ndarray, base: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(base > 0, top1 / np.where(base > 0, base, 1.0), np.nan)


def cross_pruning_row(model, data: ModData, selected: np.ndarray, offsets: torch.Tensor, base: np.ndarray,
                      batch_size: int) -> np.ndarray:
    """One row of R: relative top1 on every subset after pruning ``selected`` (mean ablation).

    Parameters
    ----------
    selected : ndarray of shape (n_layers, d_mlp), bool
        The neurons pruned.
    offsets : FloatTensor of shape (n_layers, d_mlp)
        Mean activation of every neuron on the reference set (collection split).
    base : ndarray of shape (n_subsets,)
        Baseline top1 (fraction) of every subset.

    Returns
    -------
    ndarray of shape (n_subsets,), float64
        ``top1_v(pruned) / top1_v(baseline)``; NaN where the baseline top1 is 0.
    """
    top1 = _pruned_units(model, data.evalset, selected, offsets, batch_size)
    return _relative(_per_subset_top1(top1, data.unit_subset, len(data.subsets)), base)


def _pruned_units(model, evalset: EvalSet, selected: np.ndarray, offsets: torch.Tensor, batch_size: int):
    """Per-unit top1 (0/1) of ``evalset`` with ``selected`` neurons mean-ablated."""
    keep = torch.from_numpy(~selected).float()
    with sites.ablate(model, SITE, keep, offsets):
        return evaluate(model, evalset, batch_size=batch_size).top1


@dataclass
class ModResult:
    """Everything the MOD claims and figures read, for one model and its random twin.

    Attributes
    ----------
    model : str
    kind : {"causal", "image"}
    subsets : list of str
    targets : {name: relative top1}
        E.g. ``{"drop50": 0.5, "drop80": 0.2}`` (ViT) or ``{"drop20": 0.8}`` (language models).
    primary : str
        The target of MOD-1, 3-7 (ViT 50% drop, language models 20% drop).
    arrays : dict of str to ndarray
        ``base_top1`` and ``base_top1_random`` (n_subsets,) fractions; ``eval_units`` and
        ``eval_groups`` (n_subsets,) int: evaluation units (tokens, images) per subset and the
        documents (or windows, images; ``info["eval_halves"]["groups"]`` says which) they come from.
        Per target t, the search (:func:`bisect_count`): ``count_<t>`` (n_subsets,) int, the selected
        count m (-1 where unreachable), ``fraction_<t>`` = m / N (NaN where unreachable),
        ``relative_<t>`` (r at m), ``evals_<t>`` (evaluations spent), ``overshoot_<t>`` (target - r
        for a bracket closed at adjacent counts, else 0), ``bracket_<t>`` (n_subsets, 4): lower count,
        its r, upper count, its r; then ``R_<t>`` (n_subsets, n_subsets) and ``diag_<t>`` (its
        measured diagonal R[u, u]). At the primary target: ``R_A_half1`` and ``R_B_half2`` (MOD-3's
        noise floor: scores from collection sample A evaluated on the first half of every subset's
        evaluation documents, and from sample B on the second half, same counts); ``R_random``
        (random twin, its own scores, the trained counts; NaN rows where not computed); ``selected``
        and ``selected_random`` (n_subsets, n_layers * d_mlp) bool; ``auc_trained``,
        ``auc_random``, ``auc_null`` (n_layers, n_subsets) Lorenz AUCs of the per-layer selection;
        ``lorenz_trained``, ``lorenz_random`` (k,) cluster counts of the example (layer 0, subset 0);
        ``lottery_null`` (null_draws,) the MOD-6 null.
        An alternate reading ``Rx`` that ran (``info["readings"]``) stores the arrays it changes
        under ``Rx__<name>``; :meth:`reading` returns its view.
    status : {target: [status per subset]}
        Status of every search (:data:`SEARCH_STATUSES`); ``Rx__<target>`` for the readings.
    info : dict
        Sizes, k, data description, per-layer fraction, null draws, search histories.
    """

    model: str
    kind: str
    subsets: list
    targets: dict
    primary: str
    arrays: dict
    status: dict
    info: dict = field(default_factory=dict)

    def fraction(self, target: str | None = None) -> np.ndarray:
        return self.arrays[f"fraction_{target or self.primary}"]

    def R(self, target: str | None = None) -> np.ndarray:
        return self.arrays[f"R_{target or self.primary}"]

    @property
    def readings(self) -> list[str]:
        """The alternate readings this result holds (ids of claims.md's Readings table)."""
        return list(self.info.get("readings", []))

    @property
    def n_neurons(self) -> int:
        return int(self.info["n_layers"]) * int(self.info["d_mlp"])

    def reading(self, rid: str) -> ModResult:
        """The result under the alternate reading ``rid`` (``"R1"``: the lower count of a bracket
        closed at adjacent counts; ``"R2"``: Eq. 1 as printed): the arrays and statuses that reading
        changes, the primary's elsewhere.

        Raises
        ------
        UnknownNameError
            When ``rid`` did not run for this result (the message lists those that did).
        """
        check_name(f"reading computed for {self.model}", rid, self.readings)
        pre = f"{rid}__"
        arrays = {k: v for k, v in self.arrays.items() if "__" not in k}
        arrays.update({k[len(pre):]: v for k, v in self.arrays.items() if k.startswith(pre)})
        status = {t: list(self.status[pre + t]) for t in self.targets}
        info = {**self.info, "reading": rid}
        return ModResult(self.model, self.kind, list(self.subsets), dict(self.targets), self.primary, arrays,
                         status, info)

    def failed(self, target: str | None = None) -> list[str]:
        """Subsets without a selection at ``target`` (unreachable; under R1 also a lower count of 0),
        as ``"subset (status...)"``; an unreachable subset with the relative top1 with every neuron
        pruned and the target."""
        t = target or self.primary
        out = []
        for i, (s, st) in enumerate(zip(self.subsets, self.status[t])):
            if st == "unreachable":
                r_all = float(self.arrays[f"bracket_{t}"][i, 3])
                out.append(f"{s} (unreachable: relative top1 {r_all:.4f} with all {self.n_neurons} MLP neurons "
                           f"pruned, target {self.targets[t]} +- {TOLERANCE})")
            elif st not in ("reached", ONE_NEURON):
                out.append(f"{s} ({st})")
        return out

    def reached(self, targets: Sequence[str] | None = None) -> list[int]:
        """Indices of the subsets with a selection at every one of ``targets`` (default: primary)."""
        ts = list(targets or [self.primary])
        return [i for i in range(len(self.subsets))
                if all(self.status[t][i] in ("reached", ONE_NEURON) for t in ts)]

    def restrict(self, keep: Sequence[int]) -> ModResult:
        """The same result on the subsets ``keep`` only (indices into :attr:`subsets`, in order).

        Per-subset vectors, matrices over subset pairs (``R_*``), selections and per-(layer, subset)
        AUCs are sliced; the MOD-6 null (``lottery_null``) is kept as it is, since :func:`run_mod`
        computes it over the subsets that have a selection.
        """
        keep = list(keep)
        n = len(self.subsets)
        idx = np.asarray(keep, dtype=np.int64)
        arrays = {}
        for key, a in self.arrays.items():
            base = key.split("__")[-1]
            if base.startswith("auc_"):
                arrays[key] = a[:, idx]
            elif base.startswith("R_"):
                arrays[key] = a[np.ix_(idx, idx)]
            elif a.ndim >= 1 and a.shape[0] == n and not base.startswith(("lorenz_", "lottery_")):
                arrays[key] = a[idx]
            else:
                arrays[key] = a
        status = {t: [v[i] for i in keep] for t, v in self.status.items()}
        return ModResult(self.model, self.kind, [self.subsets[i] for i in keep], dict(self.targets), self.primary,
                         arrays, status, dict(self.info))

    def overlap(self, random: bool = False) -> np.ndarray:
        """O[u, v] at the primary target, shape (n_subsets, n_subsets); NaN rows and columns for
        subsets without a selection."""
        from core.mod.lorenz import overlap_matrix

        sel = self.arrays["selected_random" if random else "selected"]
        ok = sel.any(1)
        out = np.full((len(ok), len(ok)), np.nan)
        if ok.any():
            out[np.ix_(ok, ok)] = overlap_matrix(sel[ok])
        return out

    def search(self, target: str | None = None) -> dict:
        """The search of every subset at ``target`` as the report shows it: ``{subset: {...}}`` with
        the status, the count m of N, the fraction (percent), r, the evaluations, the final bracket
        (both counts and both r), the overshoot (one-neuron resolution) and the measured R[u, u]."""
        t = target or self.primary
        a = self.arrays
        out = {}
        for i, s in enumerate(self.subsets):
            lo_m, lo_r, hi_m, hi_r = a[f"bracket_{t}"][i]
            st = self.status[t][i]
            row = {"status": st, "count": int(a[f"count_{t}"][i]), "of N": self.n_neurons,
                   "evaluations": int(a[f"evals_{t}"][i]),
                   "bracket": {"lower": [_int_or_none(lo_m), _float_or_none(lo_r)],
                               "upper": [_int_or_none(hi_m), _float_or_none(hi_r)]}}
            if st == "unreachable":
                row["r with every neuron pruned"] = _float_or_none(hi_r)
                row["target"] = self.targets[t]
            else:
                row.update({"fraction (percent)": round(100 * float(a[f"fraction_{t}"][i]), 4),
                            "r": _float_or_none(a[f"relative_{t}"][i]),
                            "measured R[u, u]": _float_or_none(a[f"diag_{t}"][i])})
                if st == ONE_NEURON:
                    row["overshoot (target - r)"] = _float_or_none(a[f"overshoot_{t}"][i])
            out[s] = row
        return out

    def save(self, path: Path) -> None:
        meta = {"model": self.model, "kind": self.kind, "subsets": self.subsets, "targets": self.targets,
                "primary": self.primary, "status": self.status, "info": self.info}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **self.arrays,
                                    __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))

    @classmethod
    def load(cls, path: Path) -> ModResult:
        with np.load(path) as z:
            meta = json.loads(z["__meta__"].tobytes().decode())
            arrays = {k: z[k] for k in z.files if k != "__meta__"}
        return cls(meta["model"], meta["kind"], meta["subsets"], meta["targets"], meta["primary"], arrays,
                   meta["status"], meta["info"])

    def curves(self) -> dict:
        """The figure payload (``"experiment": "mod"``) for :mod:`core.mod.figures`."""
        from core.mod.lorenz import lorenz_curve

        def clean(a):
            a = np.asarray(a, dtype=np.float64)
            return [[None if not np.isfinite(x) else float(x) for x in row] for row in np.atleast_2d(a)]

        o_t, o_r = self.overlap(False), self.overlap(True)
        ex = {}
        for side in ("trained", "random"):
            counts = self.arrays[f"lorenz_{side}"]
            if counts.sum() > 0:
                x, y = lorenz_curve(counts)
                ex[side] = {"x": x.tolist(), "y": y.tolist()}
        return {
            "experiment": "mod", "model": self.model, "kind": self.kind, "subsets": list(self.subsets),
            "targets": self.targets, "primary": self.primary,
            "R": {t: clean(self.R(t)) for t in self.targets},
            "R_random": clean(self.arrays["R_random"]),
            "fractions": {t: clean(self.fraction(t))[0] for t in self.targets},
            "search": {t: self.search(t) for t in self.targets},
            "overlap": {"trained": clean(o_t), "random": clean(o_r)},
            "auc": {k: clean(self.arrays[f"auc_{k}"]) for k in ("trained", "random", "null")},
            "lorenz_example": {"layer": 0, "subset": self.subsets[0], **ex},
            "info": {k: v for k, v in self.info.items() if k != "search_history"},
        }


def _int_or_none(x) -> int | None:
    return int(x) if np.isfinite(x) and x >= 0 else None


def _float_or_none(x) -> float | None:
    return float(x) if np.isfinite(x) else None


def run_mod(trained, random, *, name: str, data: ModData, batch_size: int, stats_key: str,
            k: int, progress: bool = True, info: dict | None = None, w_in_which: str = "up",
            null_draws: int = NULL_DRAWS, seed: int = 0, random_cross_pruning: bool = True,
            readings: Iterable[str] = (), checkpoint=None) -> ModResult:
    """The MOD experiment on a model and its random twin.

    Parameters
    ----------
    trained, random : transformers models of the same config (causal LM or image classifier)
    name : str
        Zoo name of the trained model.
    data : ModData
    batch_size : int
    stats_key : str
        Cache key prefix of the collection statistics.
    k : int
        MoEfication clusters per layer (must divide d_mlp).
    w_in_which : {"up", "gate", "concat"}
        Which ``W_in`` of gated MLPs MoEfication clusters (``up``: the paper code's).
    null_draws, seed : size-matched random selections of the null Lorenz AUC and the MOD-6 null
    random_cross_pruning : bool, default True
        Evaluate the random twin's relative-accuracy matrix at the primary reading (else its rows
        stay NaN; its selections and overlaps are computed either way).
    readings : iterable of {"R1", "R2"}
        Alternate readings to compute beside the primary one (claims.md, "Readings"): ``R1`` the
        lower count of a bracket closed at adjacent counts (only rows whose count differs are
        evaluated again), ``R2`` Eq. 1 as printed (its own searches, matrices, selections and AUCs).
    checkpoint : core.cache.Checkpoint, optional
        Keeps every finished search and cross-pruning row, so that a run interrupted part-way
        resumes from them; the result equals an uninterrupted one.

    Returns
    -------
    ModResult
        ``info["cost"]`` holds, per reading, the seconds and the evaluations it added (search
        evaluations on one subset's items; full passes over every subset's evaluation items).
    """
    import time

    from core.mod.moefication import moefication
    from core.mod.lorenz import cluster_counts, lorenz_auc, null_lorenz_auc, overlap_matrix

    readings = sorted(set(readings))
    for r in readings:
        check_name("MOD reading", r, MOD_READINGS)
    kind = data.kind
    targets, primary = TARGETS[kind], PRIMARY[kind]
    n_layers, width = sites.n_layers(trained, SITE), sites.site_width(trained, SITE)
    n_all = n_layers * width
    shape = (n_layers, width)
    n_sub = len(data.subsets)
    arrays: dict[str, np.ndarray] = {}
    status: dict[str, list] = {}
    histories: dict[str, list] = {}
    cost: dict[str, dict] = {}

    side_t = _side_stats(trained, name, data, ("A", "B"), batch_size, stats_key, progress)
    side_r = _side_stats(random, f"{name}:random", data, ("A",), batch_size, stats_key, progress)
    offsets = {("t", "A"): torch.from_numpy(side_t.reference("A", "mean")).float(),
               ("t", "B"): torch.from_numpy(side_t.reference("B", "mean")).float(),
               ("r", "A"): torch.from_numpy(side_r.reference("A", "mean")).float()}
    models = {"t": trained, "r": random}
    sides = {"t": side_t, "r": side_r}

    base_units = evaluate(trained, data.evalset, batch_size=batch_size).top1
    base = arrays["base_top1"] = _per_subset_top1(base_units, data.unit_subset, n_sub)
    base_r = arrays["base_top1_random"] = _per_subset_top1(
        evaluate(random, data.evalset, batch_size=batch_size).top1, data.unit_subset, n_sub)
    half, half_info = eval_halves(data)
    halves = data.unit_subset * 2 + half  # group 2 v + h: subset v, half h
    base_half = _group_top1(base_units, halves, 2 * n_sub)
    arrays["eval_units"] = np.bincount(data.unit_subset, minlength=n_sub).astype(np.int64)
    arrays["eval_groups"] = np.asarray(half_info["groups_per_subset"], dtype=np.int64)

    orders: dict = {}

    def order_of(which: str, sample: str, orient: str, subset: str) -> np.ndarray:
        key = (which, sample, orient, subset)
        if key not in orders:
            s = sides[which].scores(subset, sample, orient)
            orders[key] = np.argsort(-s.ravel(), kind="stable")
        return orders[key]

    def mask(which, sample, orient, subset, m) -> np.ndarray:
        out = np.zeros(n_all, dtype=bool)
        out[order_of(which, sample, orient, subset)[:int(m)]] = True
        return out.reshape(shape)

    units: dict = {}  # (which, sample, orient, subset, m) -> per-unit top1 over the whole evaluation set

    def pruned(which, sample, orient, subset, m) -> np.ndarray:
        key = (which, sample, orient, subset, int(m))
        if key not in units:
            units[key] = np.asarray(_pruned_units(models[which], data.evalset, mask(*key), offsets[(which, sample)],
                                                  batch_size), dtype=np.float32)
        return units[key]

    # ---- searches: primary (code orientation) and, for R2, Eq. 1 as printed
    orients = {"": "code", **({"R2__": "printed"} if "R2" in readings else {})}
    sub_sets = [_sub_evalset(data, i) for i in range(n_sub)]
    searches: dict = {}
    bar = tqdm(total=n_sub * len(targets) * len(orients), desc=f"{name}: MOD count search", disable=not progress)
    for pre, orient in orients.items():
        start, n_evals = time.perf_counter(), 0
        for t, target in targets.items():
            found = []
            for i, subset in enumerate(data.subsets):
                bar.set_postfix_str(f"{pre}{t} {subset}")

                def relative(m, i=i, subset=subset, orient=orient):
                    keep = torch.from_numpy(~mask("t", "A", orient, subset, m)).float()
                    with sites.ablate(trained, SITE, keep, offsets[("t", "A")]):
                        s = evaluate(trained, sub_sets[i], batch_size=batch_size)
                    return float(s.top1.mean()) / base[i] if base[i] > 0 else float("nan")

                found.append(checkpointed(checkpoint, ("search", pre, t, subset),  # resumes after Ctrl-C
                                          lambda relative=relative: bisect_count(relative, target, n_all)))
                n_evals += found[-1].n_evals
                bar.update()
            searches[(pre, t)] = found
        cost[pre.rstrip("_") or "primary"] = {"search_s": round(time.perf_counter() - start, 2),
                                              "search_evaluations": n_evals}
    bar.close()

    # ---- MoEfication clusters (shared by every reading) and the null Lorenz AUC
    per_layer = PER_LAYER_FRACTION[kind]
    labels = []
    auc_null = np.zeros((n_layers, n_sub))
    for layer in tqdm(range(n_layers), desc=f"{name}: MoEfication", disable=not progress, leave=False):
        lab_t = moefication(sites.w_in(trained, layer, which=w_in_which), k, seed=seed)
        lab_r = moefication(sites.w_in(random, layer, which=w_in_which), k, seed=seed)
        labels.append((lab_t, lab_r))
        auc_null[layer] = null_lorenz_auc(lab_t, _count(per_layer, width), n_draws=null_draws, seed=seed + layer)
    arrays["auc_null"] = auc_null

    def aucs(pre: str, orient: str) -> None:
        auc_t, auc_r = np.zeros((n_layers, n_sub)), np.zeros((n_layers, n_sub))
        for layer, (lab_t, lab_r) in enumerate(labels):
            for i, subset in enumerate(data.subsets):
                st_ = side_t.scores(subset, "A", orient)[layer:layer + 1]
                sr_ = side_r.scores(subset, "A", orient)[layer:layer + 1]
                ct = cluster_counts(top_fraction(st_, per_layer, per_layer=True)[0], lab_t, k)
                cr = cluster_counts(top_fraction(sr_, per_layer, per_layer=True)[0], lab_r, k)
                auc_t[layer, i], auc_r[layer, i] = lorenz_auc(ct), lorenz_auc(cr)
                if layer == 0 and i == 0 and not pre:
                    arrays["lorenz_trained"], arrays["lorenz_random"] = ct, cr
        arrays[pre + "auc_trained"], arrays[pre + "auc_random"] = auc_t, auc_r

    # ---- the matrices, selections and nulls of one reading
    def reading(pre: str, orient: str, counts: dict, rel: dict, st: dict, overshoot: dict, found: dict | None):
        label = pre.rstrip("_") or "primary"
        start, before = time.perf_counter(), len(units)
        desc = f"{name}: cross-pruning" + (f" ({label})" if pre else "")
        bar = tqdm(total=n_sub * (len(targets) + 1), desc=desc, disable=not progress, leave=False)
        for t in targets:
            c = np.asarray(counts[t], dtype=np.int64)
            ok = np.array([s_ in ("reached", ONE_NEURON) for s_ in st[t]]) & (c > 0)
            R = np.full((n_sub, n_sub), np.nan)
            for i, subset in enumerate(data.subsets):
                if ok[i]:
                    R[i] = _relative(_per_subset_top1(pruned("t", "A", orient, subset, c[i]), data.unit_subset,
                                                      n_sub), base)
                bar.update()
            arrays[pre + f"count_{t}"] = c
            arrays[pre + f"fraction_{t}"] = np.where(c >= 0, c / n_all, np.nan)
            arrays[pre + f"relative_{t}"] = np.asarray(rel[t], dtype=np.float64)
            arrays[pre + f"overshoot_{t}"] = np.asarray(overshoot[t], dtype=np.float64)
            arrays[pre + f"R_{t}"], arrays[pre + f"diag_{t}"] = R, np.diag(R).copy()
            status[pre + t] = list(st[t])
            if found is not None:
                arrays[pre + f"evals_{t}"] = np.array([f.n_evals for f in found[t]], dtype=np.int64)
                arrays[pre + f"bracket_{t}"] = np.array([[*f.lower, *f.upper] for f in found[t]], dtype=np.float64)
                histories[pre + t] = [[[m, r] for m, r in f.history] for f in found[t]]
        c = np.asarray(counts[primary], dtype=np.int64)
        ok = np.array([s_ in ("reached", ONE_NEURON) for s_ in st[primary]]) & (c > 0)
        sel, sel_r = np.zeros((n_sub, n_all), dtype=bool), np.zeros((n_sub, n_all), dtype=bool)
        ra1, rb2, rr = (np.full((n_sub, n_sub), np.nan) for _ in range(3))
        for i, subset in enumerate(data.subsets):
            bar.update()
            if not ok[i]:
                continue
            sel[i] = mask("t", "A", orient, subset, c[i]).ravel()
            sel_r[i] = mask("r", "A", orient, subset, c[i]).ravel()
            ra1[i] = _relative(_group_top1(pruned("t", "A", orient, subset, c[i]), halves, 2 * n_sub),
                               base_half).reshape(n_sub, 2)[:, 0]
            rb2[i] = _relative(_group_top1(pruned("t", "B", orient, subset, c[i]), halves, 2 * n_sub),
                               base_half).reshape(n_sub, 2)[:, 1]
            if random_cross_pruning and not pre:
                rr[i] = _relative(_per_subset_top1(pruned("r", "A", orient, subset, c[i]), data.unit_subset, n_sub),
                                  base_r)
        bar.close()
        arrays[pre + "selected"], arrays[pre + "selected_random"] = sel, sel_r
        arrays[pre + "R_A_half1"], arrays[pre + "R_B_half2"], arrays[pre + "R_random"] = ra1, rb2, rr
        # MOD-6 null: overlaps of size-matched random neuron sets against the trained overlaps
        both = sel.any(1) & sel_r.any(1)
        arrays[pre + "lottery_null"] = np.full(null_draws, np.nan)
        if both.sum() >= 3:
            arrays[pre + "lottery_null"] = lottery_null(overlap_matrix(sel[both]), sel_r[both].sum(1), n_all,
                                                        n_draws=null_draws, seed=seed)
        entry = cost.setdefault(label, {})
        entry["cross_pruning_s"] = round(time.perf_counter() - start, 2)
        entry["full_evaluation_passes"] = len(units) - before

    def from_searches(pre: str) -> tuple:
        found = {t: searches[(pre, t)] for t in targets}
        return ({t: [f.count for f in fs] for t, fs in found.items()},
                {t: [f.relative for f in fs] for t, fs in found.items()},
                {t: [f.status for f in fs] for t, fs in found.items()},
                {t: [f.overshoot for f in fs] for t, fs in found.items()}, found)

    reading("", "code", *from_searches(""))
    aucs("", "code")
    if "R1" in readings:
        found = {t: searches[("", t)] for t in targets}
        counts = {t: [f.alternate for f in fs] for t, fs in found.items()}
        rel = {t: [f.alternate_relative for f in fs] for t, fs in found.items()}
        st = {t: [R1_EMPTY if f.status == ONE_NEURON and f.alternate == 0 else f.status for f in fs]
              for t, fs in found.items()}
        over = {t: [f.target - f.alternate_relative if f.status == ONE_NEURON else f.overshoot for f in fs]
                for t, fs in found.items()}
        reading("R1__", "code", counts, rel, st, over, None)
    if "R2" in readings:
        start = time.perf_counter()
        reading("R2__", "printed", *from_searches("R2__"))
        aucs("R2__", "printed")
        cost["R2"]["cross_pruning_s"] = round(time.perf_counter() - start, 2)

    info = dict(info or {})
    info.update({"random_cross_pruning": random_cross_pruning, "n_layers": n_layers, "d_mlp": width, "k": k,
                 "cluster_size": width // k, "n_neurons": n_all,
                 "w_in": w_in_which, "per_layer_fraction": per_layer, "null_draws": null_draws,
                 "tolerance_pp": 100 * TOLERANCE,
                 "search": "bisection over the integer count m in [0, N], N every MLP neuron; the first count "
                           "within the tolerance, else the upper count of a bracket closed at adjacent counts",
                 "orientation": "code", "readings": readings, "cost": cost,
                 "eval_halves": half_info, "search_history": histories,
                 "eps": EPS[SITE], "ablation": "mean (balanced reference set, collection sample)",
                 "reference": list(data.reference), "sizes": {**data.sizes, **data.counts()},
                 "per_subset": data.per_subset(), "data": data.described})
    return ModResult(name, kind, list(data.subsets), dict(targets), primary, arrays, status, info)


# ---------------------------------------------------------------------------------------------
# statistics helpers of the claims
# ---------------------------------------------------------------------------------------------

def offdiag(m: np.ndarray) -> np.ndarray:
    """Off-diagonal entries of a square matrix, row by row, shape (n * (n - 1),)."""
    m = np.asarray(m)
    return m[~np.eye(m.shape[0], dtype=bool)]


def size_matched_sets(sizes: Sequence[int], n_neurons: int, rng: np.random.Generator) -> np.ndarray:
    """One draw of uniformly random neuron sets with the given sizes (the MOD-6 null's sets).

    Parameters
    ----------
    sizes : sequence of int
        Size of every set, each in [0, n_neurons].
    n_neurons : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (len(sizes), n_neurons), bool
        Row i holds exactly ``sizes[i]`` True entries, drawn without replacement, independently of
        the other rows.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if ((sizes < 0) | (sizes > n_neurons)).any():
        raise ValueError(f"sizes must lie in [0, {n_neurons}], got {sizes.tolist()}")
    keys = rng.random((len(sizes), n_neurons), dtype=np.float32)
    sel = np.zeros((len(sizes), n_neurons), dtype=bool)
    for i, m in enumerate(sizes):
        if m > 0:
            sel[i, np.argpartition(keys[i], m - 1)[:m]] = True
    return sel


def lottery_null(o_trained: np.ndarray, sizes: Sequence[int], n_neurons: int, *, n_draws: int = NULL_DRAWS,
                 seed: int = 0) -> np.ndarray:
    """Spearman rho of the trained model's off-diagonal overlaps with those of size-matched random
    neuron sets (the MOD-6 null), one per draw.

    The sets of one draw (:func:`size_matched_sets`) keep the sizes of the random twin's selections
    (which match the trained ones), so the part of an overlap pattern that the set sizes alone
    explain (``O[u, v]`` of random sets is about ``|N_v| / N``) is in the null; a twin whose overlaps
    follow the trained ones beyond the sizes beats it.

    Parameters
    ----------
    o_trained : ndarray of shape (n_subsets, n_subsets)
    sizes : sequence of int
        Set size of every subset (the random twin's selections, which match the trained ones).
    n_neurons : int
        Candidate neurons (all layers).
    n_draws : int, default 1000
    seed : int

    Returns
    -------
    ndarray of shape (n_draws,), float64
        NaN for a draw whose overlaps are constant (Spearman undefined).
    """
    from core.inference.correlation import spearman
    from core.mod.lorenz import overlap_matrix

    rng = np.random.default_rng(seed)
    target = offdiag(o_trained)
    rhos = np.empty(n_draws)
    for d in range(n_draws):
        rhos[d] = spearman(target, offdiag(overlap_matrix(size_matched_sets(sizes, n_neurons, rng))))
    return rhos


# ---------------------------------------------------------------------------------------------
# the experiment on a model of the zoo, cached
# ---------------------------------------------------------------------------------------------

#: The full tier's text subsets (MOD section 2.2; names of ``core.data.HUB_TEXT_SUBSETS``): every Pile
#: subset of monology/pile-uncopyrighted, the CAMEL biology/physics/chemistry problems, GitHub code, and
#: MMLU as the six subject groups of offline-assets.md (single MMLU subjects hold too few test questions
#: for the collection samples; ``mod_experiment(subsets=...)`` accepts ``mmlu:<subject>`` names too).
FULL_TEXT_SUBSETS: tuple[str, ...] = (
    *(f"pile:{s}" for s in (
        "Pile-CC", "PubMed Central", "ArXiv", "Github", "FreeLaw", "StackExchange", "USPTO Backgrounds",
        "PubMed Abstracts", "Gutenberg (PG-19)", "Wikipedia (en)", "DM Mathematics", "Ubuntu IRC", "EuroParl",
        "HackerNews", "PhilPapers", "NIH ExPorter", "Enron Emails")),
    "camel-ai/biology", "camel-ai/physics", "camel-ai/chemistry", "codeparrot/github-code-clean",
    "mmlu:bio", "mmlu:med", "mmlu:law", "mmlu:cs", "mmlu:math", "mmlu:physics",
)
#: Full-tier subsets pruned by the ci and small profiles: those of the a-priori related Pile pairs
#: (offline-assets.md), as ``CI_TEXT_SUBSETS`` for the small tier.
FULL_CI_TEXT_SUBSETS: tuple[str, ...] = ("pile:PubMed Abstracts", "pile:PubMed Central", "pile:NIH ExPorter",
                                         "pile:Ubuntu IRC", "pile:HackerNews")
#: Image data of the MOD experiment per tier.
MOD_IMAGE_DATA = {"small": "fashion-mnist", "full": "uoft-cs/cifar100"}


def subsets_for(kind: str, tier: str, profile_name: str) -> tuple[list[str], list[str]]:
    """(subsets pruned and evaluated, reference subsets) of a model kind, tier and profile.

    Small tier: the Fashion-MNIST classes, or ``core.data.TEXT_SUBSETS`` (the profile's
    ``MOD_SIZES[...]["text_subsets"]`` pruned). Full tier: the 20 CIFAR-20 superclasses
    (``core.data.CIFAR20_CLASSES``), or ``FULL_TEXT_SUBSETS`` (all of them for the paper profile,
    ``FULL_CI_TEXT_SUBSETS`` for the others). Names only: a missing Hub dataset raises
    MissingAssetError when the data is read.
    """
    from core import data as D

    if tier == "full":
        if kind == "image":
            return list(D.CIFAR20_CLASSES), list(D.CIFAR20_CLASSES)
        reference = list(FULL_TEXT_SUBSETS)
        sizes = MOD_SIZES[check_name("profile", profile_name, MOD_SIZES)]
        return list(reference if sizes["text_subsets"] is None else FULL_CI_TEXT_SUBSETS), reference
    if kind == "image":
        classes = list(D.FASHION_MNIST_CLASSES)
        return classes, classes
    sizes = MOD_SIZES[profile_name]
    reference = list(D.TEXT_SUBSETS)
    chosen = list(sizes["text_subsets"] or reference)
    for s in chosen:
        check_name("text subset", s, reference)
    return chosen, reference


def check_subset(name: str, subset: str, valid: Sequence[str]) -> str:
    """``subset`` if the model's data family has it, else ``UnknownNameError`` listing the valid ones."""
    return check_name(f"subset of {name}'s data family", subset, valid)


def eval_set(tokenizer, subset: str, sizes: dict, seq_len: int) -> EvalSet:
    """The evaluation set of one MOD text subset: ``sizes["eval_tokens"]`` tokens of its eval split in
    windows of ``seq_len`` tokens, at most ``sizes["eval_doc_windows"]`` per document (absent: no limit),
    with their documents (:func:`core.data.text_windows`).

    Returns
    -------
    EvalSet
        Causal, ``inputs`` and ``docs`` LongTensors of shape (n_windows, seq_len).
    """
    from core import data as D

    windows, docs = D.text_windows(subset, tokenizer, split="eval", n_tokens=sizes["eval_tokens"], seq_len=seq_len,
                                   doc_windows=sizes.get("eval_doc_windows"), with_docs=True)
    return EvalSet("causal", windows, docs=docs, name=f"{subset}, eval split")


def eval_seq_len(sizes: dict, profile, max_length: int | None) -> int:
    """Evaluation window of the MOD text subsets: ``sizes["eval_seq_len"]`` (absent: the profile's
    ``seq_len``), capped by the model's ``max_length``."""
    length = sizes.get("eval_seq_len") or profile.seq_len
    return min(length, max_length or length)


def _text_data(lm, profile, subsets, reference, sizes) -> ModData:
    from core import data as D

    seq_len = min(profile.seq_len, lm.max_length or profile.seq_len)
    eval_len = eval_seq_len(sizes, profile, lm.max_length)
    n_c = sizes["collect_tokens"]
    collect = {"A": {}, "B": {}}
    for s in reference:
        w = D.text_windows(s, lm.tokenizer, split="collect", n_tokens=2 * n_c, seq_len=seq_len)
        half = w.shape[0] // 2
        collect["A"][s] = EvalSet("causal", w[:half])
        collect["B"][s] = EvalSet("causal", w[half:])
    evals = [eval_set(lm.tokenizer, s, sizes, eval_len) for s in subsets]
    check = getattr(profile, "check_documents", None)
    for s, e in zip(subsets, evals):
        if check is not None:
            check(e.n_documents(), f"MOD evaluation set of subset {s!r} (eval split)")
    evalset = EvalSet("causal", torch.cat([e.inputs for e in evals]), docs=torch.cat([e.docs for e in evals]),
                      name="MOD subsets, eval split")
    unit_subset = np.repeat(np.arange(len(subsets)), [e.n_units for e in evals])
    half = collect["A"][reference[0]].inputs.shape[0]
    doc_windows = sizes.get("eval_doc_windows")
    return ModData("causal", list(subsets), list(reference), collect, evalset, unit_subset,
                   sizes={"collect_tokens_per_subset_per_sample": half * seq_len,
                          "eval_tokens_per_subset": evals[0].inputs.numel(), "seq_len": seq_len,
                          "eval_seq_len": eval_len, **({"eval_doc_windows": doc_windows} if doc_windows else {}),
                          "n_subsets": len(subsets), "n_reference_subsets": len(reference)},
                   described={"subsets": ("small-tier text subsets (offline-assets.md)" if lm.tier == "small" else
                                          "full-tier Hub text subsets (core.data.HUB_TEXT_SUBSETS_DOC)")
                                         + ", collect split: two disjoint samples A and B; eval split for every top1"
                                         + f" in windows of {eval_len} tokens"
                                         + (f", at most {doc_windows} per document" if doc_windows else ""),
                              "reference": "balanced union of every text subset"})


def _image_data(profile, subsets, sizes, dataset: str = "fashion-mnist", processor=None) -> ModData:
    from core import data as D

    n_c, n_e = sizes["collect_images"], sizes["eval_images"]
    collect = {"A": {}, "B": {}}
    xs, ys, unit = [], [], []
    kw = {} if dataset == "fashion-mnist" else {"processor": processor}
    for i, c in enumerate(subsets):
        x, y = D.image_split(dataset, split="collect", n_images=2 * n_c, classes=[c], **kw)
        collect["A"][c] = EvalSet("image", x[:n_c], y[:n_c])
        collect["B"][c] = EvalSet("image", x[n_c:], y[n_c:])
        x, y = D.image_split(dataset, split="eval", n_images=n_e, classes=[c], **kw)
        xs.append(x)
        ys.append(y)
        unit.append(np.full(len(y), i))
    described = {"subsets": "Fashion-MNIST classes; collect split (first 5,000 test images): two "
                            "disjoint samples A and B; eval split (last 5,000) for every top1",
                 "reference": "balanced union of the 10 classes"}
    if dataset != "fashion-mnist":
        described = {"subsets": f"CIFAR-20 superclasses of {dataset} (coarse labels; top1 on the 100 fine "
                                f"labels); collect split (train images 10,000-49,999): two disjoint samples "
                                f"A and B; eval split (the 10,000 test images) for every top1",
                     "reference": f"balanced union of the {len(subsets)} superclasses"}
    return ModData("image", list(subsets), list(subsets), collect, EvalSet("image", torch.cat(xs), torch.cat(ys)),
                   np.concatenate(unit),
                   sizes={"collect_images_per_class_per_sample": n_c, "eval_images_per_class": n_e,
                          "n_subsets": len(subsets)},
                   described=described)


def _subsets_note(kind: str, subsets: list, reference: list) -> str:
    if len(subsets) == len(reference):
        return f"all {len(reference)} subsets of the family"
    return (f"{len(subsets)} of the {len(reference)} subsets (for the ci profile: those of the a-priori related "
            f"pairs, fixed before any run, to bound the run time); all {len(reference)} form the reference set")


@one_at_a_time("mod", lambda name, profile, **_: f"experiment-{name}-{profile.name}")
def mod_experiment(name: str, profile, *, device: str = "cpu", progress: bool = True,
                   subsets: Sequence[str] | None = None, readings: Iterable[str] = frozenset()) -> ModResult:
    """The MOD experiment on a zoo model and its random twin, with the tier's subsets, cached on disk.

    Parameters
    ----------
    name : str
        A zoo name (a causal LM or an image classifier; not a ``:random`` twin).
    profile : core.profiles.Profile
        Sample sizes (:data:`MOD_SIZES` holds the MOD-specific ones per profile name).
    device : str
    subsets : sequence of str, optional
        The subsets to prune and evaluate (default: the profile's, :data:`MOD_SIZES`); each must be a
        subset of the model's data family. The reference set is always every subset of the family.
    readings : iterable of str, default none
        Reading ids of claims.md's Readings table to compute as alternates (the ``readings`` session
        fixture); those of MOD (:data:`MOD_READINGS`: R1, R2) run, the others are ignored. The
        readings computed are part of the cache key.

    Returns
    -------
    ModResult
        Reloaded from ``cache_dir("mod")`` when an identical experiment already ran.

    Raises
    ------
    MissingAssetError
        When the model or its data is not available (tests skip with the reason).
    ValueError
        For a masked LM (the modularity paper studies decoders and ViT).
    UnknownNameError
        For a subset that the model's data family lacks (the message lists the valid ones), or an
        unknown reading id (the message lists the valid ones).
    """
    from core import data as D
    from core.mod.moefication import k_for
    from core.zoo.models import get_spec, load_model
    from core.readings import READINGS

    mod_readings = sorted({check_name("reading", r, READINGS) for r in readings} & set(MOD_READINGS))

    spec = get_spec(name)
    if spec.kind not in TARGETS:
        raise ValueError(f"MOD runs on causal LMs and image classifiers; {name} is a {spec.kind} model")
    sizes = MOD_SIZES[check_name("profile", profile.name, MOD_SIZES)]
    if spec.tier == "full":
        load_model(name, device=device)  # a missing model is the first reason to skip
    chosen, reference = subsets_for(spec.kind, spec.tier, profile.name)
    if subsets is not None:
        chosen = [check_subset(name, s, reference) for s in subsets]
        if len(chosen) < 3 or len(set(chosen)) != len(chosen):
            raise ValueError(f"subsets: expected at least 3 distinct subsets, got {list(subsets)}")
    subsets = chosen
    lm = load_model(name, device=device)
    twin = load_model(name + ":random", device=device)
    d_mlp = sites.site_width(lm.model, SITE)
    k = k_for(name, d_mlp)

    def path_for(rs) -> Path:
        key = cache_key(experiment="mod", version=MOD_VERSION, model=name, card=lm.card, twin=twin.card,
                        profile=profile.to_dict(), sizes=sizes, subsets=subsets, reference=reference, k=k,
                        targets=TARGETS[lm.kind], tolerance=TOLERANCE,
                        per_layer=PER_LAYER_FRACTION[lm.kind], null_draws=NULL_DRAWS, device=lm.device.type,
                        search="integer count bisection", readings=list(rs))
        return cache_dir("mod") / f"{name.replace(':', '_')}-{key}.npz"

    # the collection statistics depend only on the models and the data, not on the search
    stats_key = cache_key(experiment="mod-stats", model=name, card=lm.card, twin=twin.card,
                          seq_len=profile.seq_len, batch_size=profile.batch_size,
                          collect={k_: v for k_, v in sizes.items() if k_.startswith("collect")},
                          reference=reference, device=lm.device.type)
    # an experiment cached with more readings serves this one too (it holds the primary and these)
    supersets = [sorted(c) for size in range(len(MOD_READINGS) + 1) for c in combinations(MOD_READINGS, size)
                 if set(mod_readings) <= set(c)]
    path = next((p for p in map(path_for, supersets) if p.exists()), path_for(mod_readings))
    if (found := load_cached(path, ModResult.load)) is not None:  # a damaged entry is named and rebuilt
        return found
    if lm.kind == "image" and lm.tier == "full":
        data = _image_data(profile, subsets, sizes, MOD_IMAGE_DATA["full"], D.hub_image_processor(lm.spec.hub_id))
    elif lm.kind == "image":
        data = _image_data(profile, subsets, sizes)
    else:
        data = _text_data(lm, profile, subsets, reference, sizes)
    checkpoint = Checkpoint(partial_path(path), key=path.stem)  # an interrupted run resumes from it
    result = run_mod(lm.model, twin.model, name=name, data=data, batch_size=profile.batch_size,
                     stats_key=stats_key, k=k, progress=progress,
                     random_cross_pruning=lm.kind == "image" or sizes["random_cross_pruning_text"],
                     readings=mod_readings, checkpoint=checkpoint,
                     info={"profile": profile.name, "subsets_note": _subsets_note(lm.kind, subsets, reference)})
    result.save(path)
    checkpoint.complete()
    return result
