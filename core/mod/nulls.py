"""Nulls of the modularity paper's overlap claims (MOD section 4.1, claims.md MOD-6): size-matched random
neuron sets and the Spearman rho of the trained overlaps with theirs.

- :func:`offdiag`: the off-diagonal entries of a square matrix (the subset pairs u != v);
- :func:`size_matched_sets`: one draw of uniformly random neuron sets of given sizes;
- :func:`lottery_null`: the MOD-6 null, one Spearman rho per draw of size-matched sets.

The claims' statistics and rules on these arrays are in :mod:`claims.mod_rules`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["lottery_null", "size_matched_sets", "offdiag"]

#: Size-matched random selections behind the null Lorenz AUC and the MOD-6 null.
NULL_DRAWS = 1000


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
