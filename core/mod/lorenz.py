"""Concentration and overlap metrics of the modularity paper (MOD sections 4.1-4.2).

- :func:`lorenz_curve`, :func:`lorenz_auc`: the Lorenz curve of selected neurons over MoEfication
  clusters and its normalised area (MOD section 4.2; ``claims.md``, "Lorenz AUC");
- :func:`gini`: the Gini coefficient of the same counts (mean absolute difference form), which the
  AUC equals through ``AUC = (1 + Gini) / 2``;
- :func:`overlap_matrix`: ``O[u, v] = |N_u & N_v| / |N_u|`` of selected neuron sets (MOD section 4.1);
- :func:`null_lorenz_auc`: the mean AUC of size-matched uniformly random selections.
"""
from __future__ import annotations

import numpy as np

__all__ = ["lorenz_curve", "lorenz_auc", "gini", "overlap_matrix", "null_lorenz_auc", "cluster_counts"]


def _counts(counts) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 1 or c.size < 1:
        raise ValueError(f"counts: expected a 1-D array of k >= 1 non-negative integers (one per cluster), "
                         f"got shape {c.shape}")
    if c.dtype.kind == "f":
        if not np.all(np.isfinite(c)) or not np.all(c == np.round(c)):
            raise ValueError(f"counts: expected non-negative integers, got non-integer values {c[:8]}")
    elif c.dtype.kind not in "iub":
        raise ValueError(f"counts: expected non-negative integers, got dtype {c.dtype}")
    c = c.astype(np.int64)
    if (c < 0).any():
        raise ValueError(f"counts: expected non-negative integers, got negative values {c[c < 0][:8]}")
    if c.sum() == 0:
        raise ValueError("counts: the Lorenz curve needs at least one selected neuron, got all zeros")
    return c


def lorenz_curve(counts) -> tuple[np.ndarray, np.ndarray]:
    """The Lorenz curve of selected neurons over clusters, largest cluster first (MOD section 4.2).

    Parameters
    ----------
    counts : array-like of shape (k,), non-negative integers
        Selected neurons in each of the k clusters (bins); at least one selected.

    Returns
    -------
    x : ndarray of shape (k + 1,), float64
        ``j / k`` for j = 0..k.
    y : ndarray of shape (k + 1,), float64
        ``y_0 = 0``, ``y_j`` = (sum of the j largest counts) / (number selected).

    Raises
    ------
    ValueError
        If counts is not 1-D, holds negative or non-integer values, or sums to 0.
    """
    c = np.sort(_counts(counts))[::-1]
    k = c.size
    y = np.concatenate([[0.0], np.cumsum(c) / c.sum()])
    return np.arange(k + 1) / k, y


def lorenz_auc(counts) -> float:
    """Normalised area under the Lorenz curve of selected neurons over clusters (MOD section 4.2).

    Trapezoid area under ``(j / k, y_j)``, j = 0..k (see :func:`lorenz_curve`): 0.5 when the selected
    neurons are spread evenly over the k clusters, ``1 - 1 / (2k)`` when they all fall in one, and
    ``(1 + gini(counts)) / 2`` in general.

    Parameters
    ----------
    counts : array-like of shape (k,), non-negative integers
        One count per cluster; at least one non-zero.

    Returns
    -------
    float
        In ``[0.5, 1 - 1 / (2k)]``.

    Raises
    ------
    ValueError
        If counts is not 1-D, holds negative or non-integer values, or sums to 0.
    """
    x, y = lorenz_curve(counts)
    k = x.size - 1
    return float((y[:-1] + y[1:]).sum() / (2 * k))


def gini(counts) -> float:
    """Gini coefficient of counts: ``sum_ij |c_i - c_j| / (2 k^2 mean(c))`` (Gastwirth 1971).

    Parameters
    ----------
    counts : array-like of shape (k,), non-negative integers, at least one non-zero

    Returns
    -------
    float
        In ``[0, 1 - 1/k]``: 0 for equal counts, ``1 - 1/k`` when one bin holds everything.

    Raises
    ------
    ValueError
        As :func:`lorenz_auc`.
    """
    c = _counts(counts).astype(np.float64)
    k = c.size
    s = np.sort(c)
    # sum_ij |c_i - c_j| = 2 * sum_i (2i - k + 1) s_i for sorted s (i = 0..k-1)
    mad = 2.0 * float(((2 * np.arange(k) - k + 1) * s).sum())
    return mad / (2.0 * k * k * c.mean())


def cluster_counts(selected: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Selected neurons per cluster.

    Parameters
    ----------
    selected : ndarray of shape (d_mlp,), bool
    labels : ndarray of shape (d_mlp,), int in [0, k)
    k : int

    Returns
    -------
    ndarray of shape (k,), int64
    """
    selected, labels = np.asarray(selected, dtype=bool), np.asarray(labels)
    if selected.shape != labels.shape:
        raise ValueError(f"selected and labels must have the same shape (d_mlp,), got {selected.shape} "
                         f"and {labels.shape}")
    return np.bincount(labels[selected], minlength=k).astype(np.int64)


def null_lorenz_auc(labels: np.ndarray, n_selected: int, *, n_draws: int = 200, seed: int = 0) -> float:
    """Mean Lorenz AUC of ``n_draws`` uniformly random selections of ``n_selected`` neurons.

    Parameters
    ----------
    labels : ndarray of shape (d_mlp,), int
        Cluster of every neuron of one layer (k = ``labels.max() + 1``).
    n_selected : int
        In [1, d_mlp].
    n_draws : int, default 200
    seed : int, default 0
        Seeds a private ``numpy.random.Generator``.

    Returns
    -------
    float
    """
    labels = np.asarray(labels)
    d = labels.size
    if not 1 <= n_selected <= d:
        raise ValueError(f"n_selected must be in [1, {d}], got {n_selected}")
    k = int(labels.max()) + 1
    rng = np.random.default_rng(seed)
    keys = rng.random((n_draws, d))
    chosen = np.argpartition(keys, n_selected - 1, axis=1)[:, :n_selected]  # (n_draws, n_selected)
    lab = labels[chosen]
    counts = np.zeros((n_draws, k), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n_draws), n_selected), lab.ravel()), 1)
    c = -np.sort(-counts, axis=1)
    y = np.concatenate([np.zeros((n_draws, 1)), np.cumsum(c, axis=1) / n_selected], axis=1)
    aucs = (y[:, :-1] + y[:, 1:]).sum(1) / (2 * k)
    return float(aucs.mean())


def overlap_matrix(selected: np.ndarray) -> np.ndarray:
    """Overlap of selected neuron sets: ``O[u, v] = |N_u & N_v| / |N_u|`` (MOD section 4.1).

    Parameters
    ----------
    selected : ndarray of shape (n_subsets, n_neurons), bool
        Row u marks the neurons selected for subset u; every row must select at least one neuron.

    Returns
    -------
    ndarray of shape (n_subsets, n_subsets), float64
        Diagonal 1, values in [0, 1], ``|N_u| O[u, v] = |N_v| O[v, u]``. Rows: the subset whose set
        is the denominator.

    Raises
    ------
    ValueError
        If ``selected`` is not 2-D or a row selects nothing.
    """
    s = np.asarray(selected)
    if s.ndim != 2:
        raise ValueError(f"selected: expected shape (n_subsets, n_neurons), got {s.shape}")
    s = s.astype(bool)
    sizes = s.sum(1)
    if (sizes == 0).any():
        raise ValueError(f"selected: rows {np.flatnonzero(sizes == 0).tolist()} select no neuron")
    f = s.astype(np.float64)
    inter = f @ f.T
    return inter / sizes[:, None]
