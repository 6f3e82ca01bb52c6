"""Selective pruning of the modularity paper (MOD, Pochinkov, Jones, Rahman 2024): the neurons' scores
(MOD Eq. 1), the selections by fraction or count, and the count search (claims.md, MOD setup, revision 2).

- :func:`selection_scores`: selective-pruning scores of MLP neurons for an unlearned subset D_u against
  the reference set D_r, from streaming mean absolute activations (MOD Eq. 1). ``orientation="code"``
  (default; the paper's code and the selective-pruning paper) ranks by
  ``mean_{D_u}|n_i| / (eps + mean_{D_r}|n_i|)``; ``orientation="printed"`` by Eq. 1 as printed,
  ``mean_{D_r}|n_i| / (eps + mean_{D_u}|n_i|)`` (``claims.md``, MOD setup);
- :func:`top_fraction`: the top fraction of neurons by score over all layers together, or the same
  fraction in every layer (MOD section 4.2);
- :func:`top_count`: the m highest-scoring neurons over all layers together;
- :func:`bisect_count` (outcome :class:`CountSearch`): the bisection over the integer number of selected
  neurons that prunes a subset until its top1, relative to baseline, is within 2 percentage points of a
  target, or the smallest count that reaches the target at one-neuron resolution.

Pure functions of arrays and of a callable: the evaluations they drive are in :mod:`core.mod.experiment`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.errors import check_name

__all__ = ["EPS", "ORIENTATIONS", "selection_scores", "top_fraction", "top_count", "CountSearch", "bisect_count"]

#: eps of Eq. 1 (the paper code's values): MLP neurons 1e-3, attention neurons 1e-4.
EPS = {"mlp": 1e-3, "attn": 1e-4}
ORIENTATIONS = ("code", "printed")
#: Tolerance of the bisection: 2 percentage points of relative top1 (claims.md).
TOLERANCE = 0.02
#: Status of a search whose bracket closed at adjacent counts (the upper count is the selection).
ONE_NEURON = "reached at one-neuron resolution"
SEARCH_STATUSES = ("reached", ONE_NEURON, "unreachable")


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


def selected_count(fraction: float, n: int) -> int:
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
        m = selected_count(fraction, s.shape[1])
        order = np.argsort(-s, axis=1, kind="stable")[:, :m]
        np.put_along_axis(out, order, True, axis=1)
    else:
        m = selected_count(fraction, s.size)
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
