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
- :func:`bisect_fraction`: the bisection over the fraction that prunes a subset until its top1,
  relative to baseline, is within 2 percentage points of a target, with a bounded number of
  evaluations (an unreachable target is reported, never searched forever);
- :func:`cross_pruning_row` and :func:`run_mod`: the relative-accuracy matrix ``R[u, v]`` = top1 on v
  after pruning for u / baseline top1 on v (MOD section 3, Figs. 1-2), overlaps (section 4.1),
  MoEfication clusters (:mod:`core.clustering`) and Lorenz AUCs (:mod:`core.metrics`), for a model and
  its random twin;
- :func:`mod_experiment`: the whole experiment on a model of the zoo with the tier's subsets, cached.

Selected neurons are mean-ablated (``claims.md``): the offset is the neuron's mean over the balanced
reference set's collection sample.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import sites
from .cache import (Checkpoint, atomic_path, cache_dir, cache_key, checkpointed, load_cached, one_at_a_time,
                    partial_path)
from .errors import check_name
from .evaluate import EvalSet, evaluate

__all__ = [
    "EPS", "ORIENTATIONS", "selection_scores", "top_fraction", "FractionSearch", "bisect_fraction",
    "ModData", "ModResult", "run_mod", "mod_experiment", "MOD_SIZES", "subsets_for", "lottery_null",
    "offdiag", "eval_set", "eval_seq_len",
]

SITE = "mlp"
#: eps of Eq. 1 (the paper code's values): MLP neurons 1e-3, attention neurons 1e-4.
EPS = {"mlp": 1e-3, "attn": 1e-4}
ORIENTATIONS = ("code", "printed")
#: Tolerance of the bisection: 2 percentage points of relative top1 (claims.md).
TOLERANCE = 0.02
#: Evaluations one bisection may spend, the first one (at fraction 1) included.
MAX_EVALS = 16
#: Targets: top1 after pruning relative to baseline. ViT: 50% drop (and 80% drop for MOD-2); language
#: models: 20% drop (claims.md, MOD setup).
TARGETS = {"image": {"drop50": 0.5, "drop80": 0.2}, "causal": {"drop20": 0.8}}
PRIMARY = {"image": "drop50", "causal": "drop20"}
#: Per-layer selection for MOD-8..10 (MOD section 4.2): ViT 12.5%, language models 3.4%.
PER_LAYER_FRACTION = {"image": 0.125, "causal": 0.034}
#: Size-matched random selections behind the null Lorenz AUC and the MOD-6 null.
NULL_DRAWS = 1000
#: Bumped when a change alters what a cached experiment holds.
MOD_VERSION = 2

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


@dataclass
class FractionSearch:
    """Outcome of :func:`bisect_fraction`.

    Attributes
    ----------
    target : float
        Relative top1 sought (0.8 = a 20% drop).
    fraction : float
        The fraction found (NaN if the search failed).
    relative : float
        Relative top1 at that fraction (NaN if failed).
    n_evals : int
        Evaluations spent.
    status : {"reached", "unreachable", "not converged"}
        ``unreachable``: even pruning every candidate (fraction 1) leaves relative top1 above
        ``target + tolerance``; ``not converged``: the evaluation budget or the one-neuron resolution
        ran out before a fraction within tolerance was found.
    history : list of (fraction, relative)
    """

    target: float
    fraction: float
    relative: float
    n_evals: int
    status: str
    history: list = field(default_factory=list)

    @property
    def reached(self) -> bool:
        return self.status == "reached"


def bisect_fraction(relative_top1: Callable[[float], float], target: float, *, tolerance: float = TOLERANCE,
                    max_evals: int = MAX_EVALS, n_neurons: int | None = None,
                    geometric: bool = True) -> FractionSearch:
    """Bisection over the pruned fraction until relative top1 is within ``tolerance`` of ``target``.

    Evaluates fraction 1 first: if relative top1 there is still above ``target + tolerance`` the
    target is unreachable and the search stops (one evaluation). Otherwise it bisects the bracket
    [lower end, 1]: at the midpoint, a relative top1 above the target moves the lower end up, one below
    moves the upper end down, until the midpoint is within tolerance. The unpruned model (fraction 0)
    has relative top1 1 by definition, so the lower end is never evaluated.

    With ``geometric=True`` (default, needs ``n_neurons``) the bracket starts at [1 / n_neurons, 1]
    (one neuron to all) and the midpoint is the geometric mean of the ends, i.e. bisection of
    log(fraction): the selected fractions of the paper span 1% to 20%, so halving the log-range finds
    them in fewer evaluations than halving [0, 1]. ``geometric=False`` halves [0, 1] arithmetically.

    Parameters
    ----------
    relative_top1 : callable
        ``relative_top1(fraction) -> float``: top1 of the subset after pruning ``fraction`` of the
        neurons, divided by its baseline top1 (a ratio, 1 = unchanged).
    target : float in (0, 1)
        Relative top1 sought: 0.5 for a 50% drop, 0.8 for a 20% drop.
    tolerance : float, default 0.02
        2 percentage points of relative top1.
    max_evals : int, default 16
        Evaluations at most, the one at fraction 1 included.
    n_neurons : int, optional
        Candidate neurons: the search also stops (``not converged``) when the two ends select neuron
        counts that differ by at most one. Required for ``geometric=True``.
    geometric : bool, default True

    Returns
    -------
    FractionSearch
    """
    if not 0 < target < 1:
        raise ValueError(f"target must be a relative top1 in (0, 1), got {target}")
    if max_evals < 1:
        raise ValueError(f"max_evals must be >= 1, got {max_evals}")
    if geometric and (n_neurons is None or n_neurons < 1):
        raise ValueError("geometric bisection needs n_neurons (the number of candidate neurons)")
    history: list[tuple[float, float]] = []

    def ev(f: float) -> float:
        r = float(relative_top1(f))
        history.append((f, r))
        return r

    def done(status: str, f: float, r: float) -> FractionSearch:
        return FractionSearch(target, f, r, len(history), status, history)

    r_hi = ev(1.0)
    if not r_hi <= target + tolerance:  # NaN (no baseline accuracy) counts as unreachable
        return done("unreachable", float("nan"), float("nan"))
    if abs(r_hi - target) <= tolerance:
        return done("reached", 1.0, r_hi)
    lo, hi = (1.0 / n_neurons if geometric else 0.0), 1.0
    while len(history) < max_evals:
        if n_neurons is not None and _count(hi, n_neurons) - _count(lo, n_neurons) <= 1:
            break
        mid = math.sqrt(lo * hi) if geometric else (lo + hi) / 2
        r = ev(mid)
        if abs(r - target) <= tolerance:
            return done("reached", mid, r)
        if r > target:
            lo = mid
        else:
            hi = mid
    return done("not converged", float("nan"), float("nan"))


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
    from .activations import collect_stats

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
    keep = torch.from_numpy(~selected).float()
    with sites.ablate(model, SITE, keep, offsets):
        scores = evaluate(model, data.evalset, batch_size=batch_size)
    top1 = _per_subset_top1(scores.top1, data.unit_subset, len(data.subsets))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(base > 0, top1 / np.where(base > 0, base, 1.0), np.nan)


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
        ``base_top1`` and ``base_top1_random`` (n_subsets,) fractions; per target t:
        ``fraction_<t>``, ``relative_<t>`` (n_subsets,) (NaN where the search failed), ``evals_<t>``
        (n_subsets,) int, ``R_<t>`` (n_subsets, n_subsets); ``R_B`` (primary target, scores from the
        disjoint collection sample B, same fractions); ``R_random`` (random twin, its own scores, the
        trained fractions; NaN rows where not computed); ``selected`` and ``selected_random``
        (n_subsets, n_layers * d_mlp) bool at the primary target; ``auc_trained``, ``auc_random``,
        ``auc_null`` (n_layers, n_subsets) Lorenz AUCs of the per-layer selection;
        ``lorenz_trained``, ``lorenz_random`` (k,) cluster counts of the example (layer 0, subset 0).
    status : {target: [status per subset]}
        Status of every bisection ("reached", "unreachable", "not converged").
    info : dict
        Sizes, k, data description, per-layer fraction, null draws.
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

    def failed(self, target: str | None = None) -> list[str]:
        """Subsets whose search did not reach the target, as ``"subset (status)"``."""
        t = target or self.primary
        return [f"{s} ({st})" for s, st in zip(self.subsets, self.status[t]) if st != "reached"]

    def reached(self, targets: Sequence[str] | None = None) -> list[int]:
        """Indices of the subsets whose search reached every one of ``targets`` (default: primary)."""
        ts = list(targets or [self.primary])
        return [i for i in range(len(self.subsets)) if all(self.status[t][i] == "reached" for t in ts)]

    def restrict(self, keep: Sequence[int]) -> ModResult:
        """The same result on the subsets ``keep`` only (indices into :attr:`subsets`, in order).

        Per-subset vectors, matrices over subset pairs, selections and per-(layer, subset) AUCs are
        sliced; the MOD-6 null (``lottery_null``) is kept as it is, since :func:`run_mod` computes it over
        the subsets whose primary search reached its target.
        """
        keep = list(keep)
        n = len(self.subsets)
        idx = np.asarray(keep, dtype=np.int64)
        arrays = {}
        for key, a in self.arrays.items():
            if key.startswith("auc_"):
                arrays[key] = a[:, idx]
            elif a.ndim == 2 and a.shape == (n, n):
                arrays[key] = a[np.ix_(idx, idx)]
            elif a.ndim >= 1 and a.shape[0] == n and not key.startswith(("lorenz_", "lottery_")):
                arrays[key] = a[idx]
            else:
                arrays[key] = a
        status = {t: [v[i] for i in keep] for t, v in self.status.items()}
        return ModResult(self.model, self.kind, [self.subsets[i] for i in keep], dict(self.targets), self.primary,
                         arrays, status, dict(self.info))

    def overlap(self, random: bool = False) -> np.ndarray:
        """O[u, v] at the primary target, shape (n_subsets, n_subsets); NaN rows and columns for
        subsets whose search failed."""
        from .metrics import overlap_matrix

        sel = self.arrays["selected_random" if random else "selected"]
        ok = sel.any(1)
        out = np.full((len(ok), len(ok)), np.nan)
        if ok.any():
            out[np.ix_(ok, ok)] = overlap_matrix(sel[ok])
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
        """The figure payload (``"experiment": "mod"``) for :mod:`core.figures_mod`."""
        from .metrics import lorenz_curve

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
            "overlap": {"trained": clean(o_t), "random": clean(o_r)},
            "auc": {k: clean(self.arrays[f"auc_{k}"]) for k in ("trained", "random", "null")},
            "lorenz_example": {"layer": 0, "subset": self.subsets[0], **ex},
            "info": self.info,
        }


def run_mod(trained, random, *, name: str, data: ModData, batch_size: int, stats_key: str,
            k: int, progress: bool = True, info: dict | None = None, w_in_which: str = "up",
            null_draws: int = NULL_DRAWS, seed: int = 0, random_cross_pruning: bool = True,
            checkpoint=None) -> ModResult:
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
    null_draws, seed : size-matched random selections of the null Lorenz AUC
    random_cross_pruning : bool, default True
        Evaluate the random twin's relative-accuracy matrix (else its rows stay NaN; its selections and
        overlaps are computed either way).
    checkpoint : core.cache.Checkpoint, optional
        Keeps every finished fraction search and cross-pruning row, so that a run interrupted part-way
        resumes from them; the result equals an uninterrupted one.

    Returns
    -------
    ModResult
    """
    from .clustering import moefication
    from .metrics import cluster_counts, lorenz_auc, null_lorenz_auc

    kind = data.kind
    targets, primary = TARGETS[kind], PRIMARY[kind]
    n_layers, width = sites.n_layers(trained, SITE), sites.site_width(trained, SITE)
    n_sub = len(data.subsets)
    arrays: dict[str, np.ndarray] = {}
    status: dict[str, list] = {}

    side_t = _side_stats(trained, name, data, ("A", "B"), batch_size, stats_key, progress)
    side_r = _side_stats(random, f"{name}:random", data, ("A",), batch_size, stats_key, progress)
    off_t = torch.from_numpy(side_t.reference("A", "mean")).float()
    off_tb = torch.from_numpy(side_t.reference("B", "mean")).float()
    off_r = torch.from_numpy(side_r.reference("A", "mean")).float()

    def base_of(model):
        s = evaluate(model, data.evalset, batch_size=batch_size)
        return _per_subset_top1(s.top1, data.unit_subset, n_sub)

    base = arrays["base_top1"] = base_of(trained)
    base_r = arrays["base_top1_random"] = base_of(random)
    scores_t = {s: side_t.scores(s, "A") for s in data.subsets}

    bar = tqdm(total=n_sub * len(targets), desc=f"{name}: MOD fraction search", disable=not progress)
    sub_sets = [_sub_evalset(data, i) for i in range(n_sub)]
    for t, target in targets.items():
        fr, rel, ev, st = (np.full(n_sub, np.nan), np.full(n_sub, np.nan), np.zeros(n_sub, np.int64), [])
        for i, subset in enumerate(data.subsets):
            bar.set_postfix_str(f"{t} {subset}")

            def relative(f, i=i, subset=subset):
                keep = torch.from_numpy(~top_fraction(scores_t[subset], f)).float()
                with sites.ablate(trained, SITE, keep, off_t):
                    s = evaluate(trained, sub_sets[i], batch_size=batch_size)
                return float(s.top1.mean()) / base[i] if base[i] > 0 else float("nan")

            search = checkpointed(checkpoint, ("search", t, subset),  # resumes after an interruption
                                  lambda: bisect_fraction(relative, target, n_neurons=n_layers * width))
            fr[i], rel[i], ev[i] = search.fraction, search.relative, search.n_evals
            st.append(search.status)
            bar.update()
        arrays[f"fraction_{t}"], arrays[f"relative_{t}"], arrays[f"evals_{t}"] = fr, rel, ev
        status[t] = st
    bar.close()

    def matrix(model, scores: dict, fractions: np.ndarray, offsets, base_row, desc: str):
        R = np.full((n_sub, n_sub), np.nan)
        sel = np.zeros((n_sub, n_layers * width), dtype=bool)
        for i, subset in enumerate(tqdm(data.subsets, desc=desc, disable=not progress, leave=False)):
            if not np.isfinite(fractions[i]):
                continue
            chosen = top_fraction(scores[subset], float(fractions[i]))
            sel[i] = chosen.ravel()
            if base_row is not None:
                R[i] = checkpointed(checkpoint, ("row", desc, subset),
                                    lambda: cross_pruning_row(model, data, chosen, offsets, base_row, batch_size))
        return R, sel

    for t in targets:
        arrays[f"R_{t}"], s = matrix(trained, scores_t, arrays[f"fraction_{t}"], off_t, base,
                                     f"{name}: cross-pruning {t}")
        if t == primary:
            arrays["selected"] = s
    scores_tb = {s: side_t.scores(s, "B") for s in data.subsets}
    arrays["R_B"], _ = matrix(trained, scores_tb, arrays[f"fraction_{primary}"], off_tb, base,
                              f"{name}: cross-pruning, sample B")
    scores_r = {s: side_r.scores(s, "A") for s in data.subsets}
    arrays["R_random"], arrays["selected_random"] = matrix(
        random, scores_r, arrays[f"fraction_{primary}"], off_r, base_r if random_cross_pruning else None,
        f"{name}:random: cross-pruning")

    # MoEfication and Lorenz AUC of the per-layer selection (MOD section 4.2)
    per_layer = PER_LAYER_FRACTION[kind]
    auc = {s: np.zeros((n_layers, n_sub)) for s in ("trained", "random", "null")}
    for layer in tqdm(range(n_layers), desc=f"{name}: MoEfication", disable=not progress, leave=False):
        lab_t = moefication(sites.w_in(trained, layer, which=w_in_which), k, seed=seed)
        lab_r = moefication(sites.w_in(random, layer, which=w_in_which), k, seed=seed)
        m = _count(per_layer, width)
        auc["null"][layer] = null_lorenz_auc(lab_t, m, n_draws=null_draws, seed=seed + layer)
        for i, subset in enumerate(data.subsets):
            sel_t = top_fraction(scores_t[subset][layer:layer + 1], per_layer, per_layer=True)[0]
            sel_r = top_fraction(scores_r[subset][layer:layer + 1], per_layer, per_layer=True)[0]
            ct, cr = cluster_counts(sel_t, lab_t, k), cluster_counts(sel_r, lab_r, k)
            auc["trained"][layer, i], auc["random"][layer, i] = lorenz_auc(ct), lorenz_auc(cr)
            if layer == 0 and i == 0:
                arrays["lorenz_trained"], arrays["lorenz_random"] = ct, cr
    for s, a in auc.items():
        arrays[f"auc_{s}"] = a

    # MOD-6 null: overlaps of size-matched random neuron sets against the trained overlaps
    ok = arrays["selected"].any(1) & arrays["selected_random"].any(1)
    arrays["lottery_null"] = np.full(null_draws, np.nan)
    if ok.sum() >= 3:
        from .metrics import overlap_matrix

        arrays["lottery_null"] = lottery_null(overlap_matrix(arrays["selected"][ok]),
                                              arrays["selected_random"][ok].sum(1), n_layers * width,
                                              n_draws=null_draws, seed=seed)

    info = dict(info or {})
    info.update({"random_cross_pruning": random_cross_pruning, "n_layers": n_layers, "d_mlp": width, "k": k,
                 "cluster_size": width // k,
                 "w_in": w_in_which, "per_layer_fraction": per_layer, "null_draws": null_draws,
                 "tolerance_pp": 100 * TOLERANCE, "max_evals": MAX_EVALS,
                 "search": "bisection of log(fraction) over [1 / n_neurons, 1]", "orientation": "code",
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


def lottery_null(o_trained: np.ndarray, sizes: Sequence[int], n_neurons: int, *, n_draws: int = NULL_DRAWS,
                 seed: int = 0) -> np.ndarray:
    """Spearman rho of the trained model's off-diagonal overlaps with those of size-matched random
    neuron sets (the MOD-6 null), one per draw.

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
    """
    from .inference import spearman
    from .metrics import overlap_matrix

    sizes = np.asarray(sizes, dtype=np.int64)
    rng = np.random.default_rng(seed)
    target = offdiag(o_trained)
    rhos = np.empty(n_draws)
    for d in range(n_draws):
        keys = rng.random((len(sizes), n_neurons), dtype=np.float32)
        sel = np.zeros((len(sizes), n_neurons), dtype=bool)
        for i, m in enumerate(sizes):
            sel[i, np.argpartition(keys[i], m - 1)[:m]] = True
        rhos[d] = spearman(target, offdiag(overlap_matrix(sel)))
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
    from . import data as D

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
    from . import data as D

    windows, docs = D.text_windows(subset, tokenizer, split="eval", n_tokens=sizes["eval_tokens"], seq_len=seq_len,
                                   doc_windows=sizes.get("eval_doc_windows"), with_docs=True)
    return EvalSet("causal", windows, docs=docs, name=f"{subset}, eval split")


def eval_seq_len(sizes: dict, profile, max_length: int | None) -> int:
    """Evaluation window of the MOD text subsets: ``sizes["eval_seq_len"]`` (absent: the profile's
    ``seq_len``), capped by the model's ``max_length``."""
    length = sizes.get("eval_seq_len") or profile.seq_len
    return min(length, max_length or length)


def _text_data(lm, profile, subsets, reference, sizes) -> ModData:
    from . import data as D

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
    from . import data as D

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
                   subsets: Sequence[str] | None = None) -> ModResult:
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
        For a subset that the model's data family lacks (the message lists the valid ones).
    """
    from . import data as D
    from .clustering import k_for
    from .models import get_spec, load_model

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
    key = cache_key(experiment="mod", version=MOD_VERSION, model=name, card=lm.card, twin=twin.card,
                    profile=profile.to_dict(), sizes=sizes, subsets=subsets, reference=reference, k=k,
                    targets=TARGETS[lm.kind], tolerance=TOLERANCE, max_evals=MAX_EVALS,
                    per_layer=PER_LAYER_FRACTION[lm.kind], null_draws=NULL_DRAWS, device=lm.device.type,
                    search="geometric bisection")
    # the collection statistics depend only on the models and the data, not on the search
    stats_key = cache_key(experiment="mod-stats", model=name, card=lm.card, twin=twin.card,
                          seq_len=profile.seq_len, batch_size=profile.batch_size,
                          collect={k_: v for k_, v in sizes.items() if k_.startswith("collect")},
                          reference=reference, device=lm.device.type)
    path = cache_dir("mod") / f"{name.replace(':', '_')}-{key}.npz"
    if (found := load_cached(path, ModResult.load)) is not None:  # a damaged entry is named and rebuilt
        return found
    if lm.kind == "image" and lm.tier == "full":
        data = _image_data(profile, subsets, sizes, MOD_IMAGE_DATA["full"], D.hub_image_processor(lm.spec.hub_id))
    elif lm.kind == "image":
        data = _image_data(profile, subsets, sizes)
    else:
        data = _text_data(lm, profile, subsets, reference, sizes)
    checkpoint = Checkpoint(partial_path(path), key=key)  # an interrupted run resumes from it
    result = run_mod(lm.model, twin.model, name=name, data=data, batch_size=profile.batch_size,
                     stats_key=stats_key, k=k, progress=progress,
                     random_cross_pruning=lm.kind == "image" or sizes["random_cross_pruning_text"],
                     info={"profile": profile.name, "subsets_note": _subsets_note(lm.kind, subsets, reference)},
                     checkpoint=checkpoint)
    result.save(path)
    checkpoint.complete()
    return result
