"""Spearman rank correlation: :func:`spearman` of two samples and :func:`spearman_rows` of paired rows,
vectorised for the ``vectorized=True`` statistics of :func:`core.inference.bootstrap.cluster_bootstrap`.
"""
from __future__ import annotations

import warnings

import numpy as np


def spearman(x, y) -> float:
    """Spearman rank correlation of two paired 1-D samples (``scipy.stats.spearmanr``).

    Parameters
    ----------
    x, y : array-like of shape (n,)
        n >= 2. Ties get average ranks.

    Returns
    -------
    float
        rho in [-1, 1]; NaN if either input is constant (no warning is emitted) or holds NaN.

    Raises
    ------
    ValueError
        If the inputs are not 1-D of the same length >= 2.
    """
    from scipy.stats import spearmanr

    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape or a.size < 2:
        raise ValueError(f"spearman: expected two 1-D arrays of the same length >= 2, got shapes "
                         f"{a.shape} and {b.shape}")
    if np.isnan(a).any() or np.isnan(b).any() or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic)


def spearman_rows(x, y) -> np.ndarray:
    """Spearman rank correlations of paired rows, vectorised (for ``vectorized=True`` statistics).

    Parameters
    ----------
    x, y : array-like of shape (..., n)
        Same shape, n >= 2; correlated along the last axis. Ties get average ranks
        (``scipy.stats.rankdata``).

    Returns
    -------
    ndarray of shape (...)
        rho per row, equal to :func:`spearman` of that row; NaN where either row is constant or
        holds NaN.

    Raises
    ------
    ValueError
        If the shapes differ or ``n < 2``.
    """
    from scipy.stats import rankdata

    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim < 1 or a.shape[-1] < 2:
        raise ValueError(f"spearman_rows: expected two arrays of the same shape (..., n >= 2), got "
                         f"shapes {a.shape} and {b.shape}")
    bad = np.isnan(a).any(-1) | np.isnan(b).any(-1) | (np.ptp(a, -1) == 0) | (np.ptp(b, -1) == 0)
    ra = rankdata(np.nan_to_num(a), axis=-1)
    rb = rankdata(np.nan_to_num(b), axis=-1)
    ra -= ra.mean(-1, keepdims=True)
    rb -= rb.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ra * rb).sum(-1) / np.sqrt((ra * ra).sum(-1) * (rb * rb).sum(-1))
    return np.where(bad, np.nan, np.clip(rho, -1.0, 1.0))
