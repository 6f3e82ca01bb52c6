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

    Raises
    ------
    ValueError
        If a size lies outside [0, n_neurons].
    """
    return size_matched_draws(_check_sizes(sizes, n_neurons), n_neurons, rng, 1)[0]


def _check_sizes(sizes: Sequence[int], n_neurons: int) -> np.ndarray:
    sizes = np.asarray(sizes, dtype=np.int64).reshape(-1)
    if ((sizes < 0) | (sizes > n_neurons)).any():
        raise ValueError(f"sizes must lie in [0, {n_neurons}], got {sizes.tolist()}")
    return sizes


def size_matched_draws(sizes: np.ndarray, n_neurons: int, rng: np.random.Generator, n_draws: int) -> np.ndarray:
    """``n_draws`` consecutive draws of :func:`size_matched_sets`, shape (n_draws, len(sizes), n_neurons),
    bool; the same sets as ``n_draws`` calls of it on the same generator (one float32 key per neuron
    and set, drawn in the same order; a set is its ``size`` smallest keys, chosen by the same
    ``argpartition``)."""
    keys = rng.random((n_draws, len(sizes), n_neurons), dtype=np.float32)
    sel = np.zeros(keys.shape, dtype=bool)
    for i, m in enumerate(sizes.tolist()):
        if m > 0:  # argpartition along the last axis works row by row, as on each row alone
            np.put_along_axis(sel[:, i], np.argpartition(keys[:, i], m - 1, axis=-1)[:, :m], True, axis=-1)
    return sel


#: Memory one chunk of the vectorised null may take for its keys and sets (bytes, about).
_NULL_CHUNK_BYTES = 256 * 2**20


def lottery_null(o_trained: np.ndarray, sizes: Sequence[int], n_neurons: int, *, n_draws: int = NULL_DRAWS,
                 seed: int = 0, device: str | None = None) -> np.ndarray:
    """Spearman rho of the trained model's off-diagonal overlaps with those of size-matched random
    neuron sets (the MOD-6 null), one per draw.

    The sets of one draw (:func:`size_matched_sets`) keep the sizes of the random twin's selections
    (which match the trained ones), so the part of an overlap pattern that the set sizes alone
    explain (``O[u, v]`` of random sets is about ``|N_v| / N``) is in the null; a twin whose overlaps
    follow the trained ones beyond the sizes beats it.

    The draws are vectorised in chunks of about 256 MB (keys, sets, a batched matrix product for the
    intersections, :func:`core.inference.correlation.spearman_rows` for the rhos): the same sets as
    drawing one at a time with :func:`size_matched_sets` on ``default_rng(seed)`` (same random stream,
    same selection), hence the same rhos up to float rounding (about 1e-15).

    With ``device`` (e.g. ``"cuda"``, where a full-tier model runs) the keys and sets come from torch
    on that device instead (a ``torch.Generator`` seeded with ``seed``; each set the ``size`` smallest
    keys, ``torch.topk``): the same distribution (uniform size-matched sets, independent rows and
    draws) and deterministic for a seed and device, but other draws than numpy's, so the null's
    values (not its distribution) differ from the CPU path's. On an H200 this takes the 1,000 draws
    at Mistral-7B's 458,752 MLP neurons from minutes to seconds.

    Parameters
    ----------
    o_trained : ndarray of shape (n_subsets, n_subsets)
    sizes : sequence of int
        Set size of every subset (the random twin's selections, which match the trained ones), each in
        [1, n_neurons].
    n_neurons : int
        Candidate neurons (all layers).
    n_draws : int, default 1000
    seed : int
    device : str or torch.device, optional
        Draw with torch on this device; None (default): numpy on the CPU.

    Returns
    -------
    ndarray of shape (n_draws,), float64
        NaN for a draw whose overlaps are constant (Spearman undefined).

    Raises
    ------
    ValueError
        If ``o_trained`` is not square with one row per size, or a size lies outside [1, n_neurons]
        (an empty set has no overlap, :func:`core.mod.lorenz.overlap_matrix`).
    """
    from core.inference.correlation import spearman_rows

    sizes = _check_sizes(sizes, n_neurons)
    o_trained = np.asarray(o_trained, dtype=np.float64)
    if o_trained.shape != (len(sizes), len(sizes)):
        raise ValueError(f"o_trained: expected shape ({len(sizes)}, {len(sizes)}) (one row per size), got "
                         f"{o_trained.shape}")
    if (sizes == 0).any():
        raise ValueError(f"sizes: every set needs at least one neuron, got {sizes.tolist()}")
    target = offdiag(o_trained)
    off = ~np.eye(len(sizes), dtype=bool)
    if device is not None:
        return _lottery_null_torch(target, sizes, n_neurons, n_draws, seed, device)
    rng = np.random.default_rng(seed)
    # keys (4 bytes), sets (1) and their float32 copy (4) per neuron and set
    chunk = max(1, int(_NULL_CHUNK_BYTES // max(1, 9 * len(sizes) * n_neurons)))
    rhos = []
    for start in range(0, n_draws, chunk):
        sel = size_matched_draws(sizes, n_neurons, rng, min(chunk, n_draws - start))
        f = sel.astype(np.float32 if n_neurons < 2**24 else np.float64)  # counts below 2**24: exact in float32
        inter = np.matmul(f, f.transpose(0, 2, 1)).astype(np.float64)
        o = inter / sizes[None, :, None].astype(np.float64)
        rhos.append(spearman_rows(np.broadcast_to(target, (len(o), target.size)), o[:, off]))
    return np.concatenate(rhos) if rhos else np.empty(0)


def _lottery_null_torch(target: np.ndarray, sizes: np.ndarray, n_neurons: int, n_draws: int, seed: int,
                        device) -> np.ndarray:
    """:func:`lottery_null`'s draws with torch on ``device`` (same distribution, other draws)."""
    import torch

    from core.inference.correlation import spearman_rows

    device = torch.device(device)
    g = torch.Generator(device=device).manual_seed(seed)
    n_sets = len(sizes)
    off = ~torch.eye(n_sets, dtype=torch.bool, device=device)
    exact = torch.float32 if n_neurons < 2**24 else torch.float64  # counts below 2**24: exact in float32
    denominators = torch.as_tensor(sizes, dtype=torch.float64, device=device)[None, :, None]
    chunk = max(1, int(_NULL_CHUNK_BYTES // max(1, 9 * n_sets * n_neurons)))
    rhos = []
    for start in range(0, n_draws, chunk):
        b = min(chunk, n_draws - start)
        keys = torch.rand((b, n_sets, n_neurons), generator=g, device=device)
        sel = torch.zeros((b, n_sets, n_neurons), dtype=exact, device=device)
        for i, m in enumerate(sizes.tolist()):
            sel[:, i].scatter_(-1, torch.topk(keys[:, i], m, dim=-1, largest=False, sorted=False).indices, 1.0)
        del keys
        inter = torch.bmm(sel, sel.transpose(1, 2)).double()
        o = (inter / denominators)[:, off]
        rhos.append(spearman_rows(np.broadcast_to(target, (b, target.size)), o.cpu().numpy()))
    return np.concatenate(rhos) if rhos else np.empty(0)
