"""The revision-2 bootstrap: documents, draws and shared units as levels (claims.md, "Intervals").

:func:`nested_bootstrap` (evaluation units grouped by document, random draws as a second level,
methods paired) and :func:`cluster_bootstrap` (subsets, layers, clusters, pairs, with the groups of
units that share something) measure the statistic's variance due to each level by a bootstrap of
that level alone (2,000 resamples each, a fixed seed); :mod:`core.inference.levels` builds
Banerjee's t interval from them, the construction calibrated by ``tests/test_calibration.py``.
Every claim uses these two; revision 1's token-level percentile bootstrap (seeds pooled, documents
ignored) is gone.

Resampling protocol: ``rng = numpy.random.default_rng(seed)``; a level's resample ``r`` is row ``r``
of ``rng.integers(0, n, size=(n_resamples, n))`` over its ``n`` groups (documents, then draws; see
:func:`nested_bootstrap`, ``seed``), so the same seed gives the same resampled groups to every
statistic of a claim. The rows are drawn in chunks of about 64 MiB (:func:`_row_chunks`); numpy's
stream does not depend on the chunks.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.inference.levels import (
    check_draws, check_groups, check_resampling, kish_df, level_estimates, nan_to_zero_var,
    percentile_estimates,
)

#: Bound on the bytes of one chunk of resample indices plus the values they gather (64 MiB).
_CHUNK_BYTES = 64 * 2**20

SeedLike = int | np.random.Generator


def nested_bootstrap(arrays, stat: Callable | None = None, *, docs, draws: bool = True,
                     n_resamples: int = 2000, seed: SeedLike = 0, level: float = 0.95,
                     where: str = "nested_bootstrap", group_level: str = "documents",
                     vectorized: bool = False, construction: str = "t-banerjee"):
    """Interval of a statistic of per-draw means over evaluation units grouped by document
    (claims.md, "Intervals", revision 2).

    The evaluation units (scored tokens, masked positions, images) of one document stay together in
    every resample; where the design pools random draws (ABL's neuron selections), the draws are a
    level of their own. Methods and fractions held in ``arrays`` are resampled with the *same* draws
    and documents, so they stay paired. Documents are *crossed* with draws (every draw is evaluated
    on the same documents), so a document resample applies to every draw alike.

    Construction (``"t-banerjee"``, the default), for each output of the statistic:

    1. *Documents*: ``n_resamples`` resamples of the documents with replacement, every draw kept;
       each resample's per-draw mean is token-weighted, ``sum_j W_j S_dj / sum_j W_j n_j`` (``W``
       the documents' multiplicities, ``S_dj`` the sum of draw ``d``'s values over document ``j``'s
       ``n_j`` units). ``var_doc`` = the variance of the statistic over these resamples.
    2. *Draws*: ``n_resamples`` resamples of the draws with replacement, every document kept.
       ``var_draw`` likewise.
    3. Each is scaled by ``n / (n - 1)`` (the bootstrap's bias for a mean of ``n`` units);
       ``se = sqrt(var_doc + var_draw)``; each level has ``df_draw = n_draws - 1`` and
       ``df_doc = min(n_docs, K) - 1``, ``K = (sum w**2)**2 / sum w**4`` with ``w`` the documents'
       shares of the units (an effective count for unequal documents; ``K = n_docs`` for equal
       ones).
    4. The interval is Banerjee's (Sankhya A 23, 1961): ``value +- sqrt(t(df_doc)**2 * var_doc +
       t(df_draw)**2 * var_draw)``, t at ``(1 + level) / 2``. It is the exact t interval where one
       level carries the variance and conservative in between.

    Why this construction (``tests/test_calibration.py``; coverage of nominal 95% intervals, 3
    draws x 16 documents): percentile intervals cover 31% (revision 1: tokens, draws pooled) and
    85% (two-level: draws then documents) where draws carry 85% of the variance; Satterthwaite's
    t (``construction="t-satterthwaite"``: ``value +- t(df_S) * se``, ``df_S = se**4 / sum
    var_l**2 / df_l``) covers 92.5-94% where draws carry 70-95% (92% at 100 documents), because
    its df, estimated from a 2-df draw variance, is largest when that variance is underestimated;
    Banerjee's covers >= 95.5% at every grid point (98-99.5% where neither level dominates, with
    intervals up to 1.35x Satterthwaite's).

    For the mean under ``y[d, j, t] = mu + a_d + b_j + c_dj + e_djt`` (draw, document, their
    interaction, unit), ``E[var_draw] = s_a/D + (s_c + s_e/m)/(DJ)`` and ``E[var_doc] = s_b/J +
    (s_c + s_e/m)/(DJ)``, while the mean's variance counts the interaction once: the sum is
    conservative by ``(s_c + s_e/m)/(DJ)``. Subtracting an interaction estimate is unbiased but
    covers less (87-95% in the simulation: the difference of variance estimates is often near 0),
    so the sum is kept.

    With 3 draws the coverage rests on the draw effects being near normal (the mean of 3 draws
    needs its t with 2 df): for uniform draw effects a t interval on 3 draws covers 92.3%, for
    exponential ones 88.5% (5 draws: 93.4%, 88.4%).

    A resample on which the statistic is undefined (NaN) counts as 0 (claims.md).

    Parameters
    ----------
    arrays : ndarray or dict of str to ndarray
        Per-unit values, each of shape ``(..., n_draws, n_units)`` if ``draws`` else
        ``(..., n_units)``, any real dtype (converted to float64): top1 as 0/100 percent, CE in nats,
        ... Finite. Every array has the same ``n_units`` (and ``n_draws``).
    stat : callable, optional
        ``stat(means) -> float or 1-D array`` (the same number of outputs every call), where
        ``means`` has the structure of ``arrays`` (an array or a dict with the same keys) and holds
        each array's token-weighted mean over the resampled units, of shape ``(..., n_draws)``
        (``draws``) or ``(...)``. None: the mean over draws of the single array's per-draw means (the
        mean of the whole array; outputs = the leading axes, at most one).
    docs : array-like of int or str, shape (n_units,)
        Source document of every unit; images are their own documents (``np.arange(n_images)``).
    draws : bool, default=True
        Whether the arrays have a draw axis (second to last) to resample as a level.
    n_resamples : int, default=2000
        Resamples per level, >= 2.
    seed : int or numpy.random.Generator, default=0
        The document level uses the first ``n_resamples * n_docs`` integers of
        ``rng.integers(0, n_docs, size=(n_resamples, n_docs))``, the draw level then
        ``rng.integers(0, n_draws, size=(n_resamples, n_draws))`` (the same stream as
        :func:`cluster_bootstrap` with a statistic).
    level : float, default=0.95
    where : str
        The experiment or claim, named in error messages.
    group_level : str, default="documents"
        Name of the unit-group level in :attr:`Estimate.components`.
    vectorized : bool, default=False
        ``stat`` takes ``means`` with a leading resample axis, shape ``(B, ..., n_draws)``, and
        returns shape ``(B,)`` or ``(B, n_outputs)``: called once per chunk of resamples (about
        64 MiB) instead of once per resample. The value on the full sample comes from a call with
        ``B = 1``.
    construction : {"t-banerjee", "t-satterthwaite"}, default="t-banerjee"
        See above; Satterthwaite's is kept for comparison only (it under-covers with 3 draws).

    Returns
    -------
    Estimate or tuple of Estimate
        One per output of the statistic (a tuple when it is 1-D). ``construction`` as chosen;
        ``se``, ``df`` (the df of the one t quantile that gives the same interval:
        ``half-width = t(df) * se``) and ``components`` =
        ``{group_level: {"var", "n", "df"}, "draws": {...}}`` (``var`` scaled, in squared units of
        the statistic) are set; ``n_groups`` is the number of documents (None when every unit is
        its own); NaN value: NaN interval.

    Raises
    ------
    ValueError
        If ``docs`` is missing or its shape does not match the units (the message names ``where``
        and the shapes), if there are fewer than 2 documents, or fewer than 2 draws with
        ``draws=True``, if the values are not finite, or the statistic's output is more than 1-D or
        changes size.
    """
    arrs, single = _as_arrays(arrays, where)
    if stat is None and len(arrs) != 1:
        raise ValueError(f"{where}: a default (mean) statistic needs exactly one array, got {list(arrs)}")
    if construction == "percentile":
        raise ValueError(f"{where}: the percentile construction is for one-level cluster_bootstrap of a "
                         f"non-smooth statistic (e.g. a median); means use the calibrated t constructions")
    inverse, n_groups, n_units = check_groups(docs, arrs, where, draws, group_level)
    n_draws = check_draws(arrs, draws, where)
    check_resampling(n_resamples, level, where, construction)
    counts = np.bincount(inverse, minlength=n_groups).astype(np.float64)      # (n_groups,)
    sums = {k: _group_sums(a, inverse, n_groups) for k, a in arrs.items()}     # (..., [D], n_groups)
    total = counts.sum()
    full_means = {k: s.sum(-1) / total for k, s in sums.items()}

    if stat is None:
        def many(means: dict) -> np.ndarray:  # (B, ...[, D]) -> (B, ...)
            m = next(iter(means.values()))
            return m.mean(-1) if draws else m
    else:
        many = _many(stat, single, vectorized, where)
    if stat is None or vectorized:
        full = np.asarray(many({k: m[None] for k, m in full_means.items()}), dtype=np.float64)[0]
    else:
        full = np.asarray(stat(full_means["x"] if single else full_means), dtype=np.float64)
    if full.ndim > 1:
        raise ValueError(f"{where}: expected the statistic to be a scalar or 1-D, got shape {full.shape}")
    size = full.size
    rng = np.random.default_rng(seed)

    out = np.empty((n_resamples, size))
    per_row = 24 * n_groups + 16 * sum(s.size for s in sums.values()) // n_groups
    for r, idx in _row_chunks(rng, n_groups, n_resamples, per_row):
        w = multiplicities(idx, n_groups)                                             # (b, n_groups)
        denom = w @ counts                                                     # (b,)
        means = {k: np.moveaxis(s @ w.T, -1, 0) / denom.reshape((-1,) + (1,) * (s.ndim - 1))
                 for k, s in sums.items()}                                     # (b, ...[, D])
        out[r:r + len(idx)] = _outputs(many(means), len(idx), size, where)
    weights = counts / total
    comps = {group_level: (nan_to_zero_var(out), n_groups, kish_df(weights))}
    if draws:
        comps["draws"] = (_draw_level(rng, full_means, n_draws, n_resamples, many, size, where),
                          n_draws, n_draws - 1.0)
    return level_estimates(full, comps, n_units=n_units, n_seeds=n_draws,
                            n_groups=n_groups if n_groups != n_units else None,
                            n_resamples=n_resamples, level=level, construction=construction)


def cluster_bootstrap(arrays, stat: Callable | None = None, *, groups=None, draws: bool = False,
                      n_resamples: int = 2000, seed: SeedLike = 0, level: float = 0.95,
                      where: str = "cluster_bootstrap", group_level: str = "units",
                      vectorized: bool = False, construction: str = "t-banerjee"):
    """Interval of a statistic over units (subsets, layers, clusters, pairs, neurons), resampling
    units that share something as one cluster (claims.md, "Intervals", revision 2).

    Units with the same ``groups`` id move together: the (layer, subset) cells of one layer, both
    directions of a subset pair, clusters evaluated on the same sentences. Where the values pool
    random draws (BCL's baseline seeds), ``draws=True`` resamples them as a level of their own
    (crossed with the units: every draw has every unit). The interval is built as in
    :func:`nested_bootstrap` (level variances scaled by ``n / (n - 1)``, Banerjee's t);
    a resample on which the statistic is undefined (NaN) counts as 0. With ``stat=None`` this *is*
    :func:`nested_bootstrap` of the mean with ``docs=groups``; with a statistic it draws the same
    random numbers, so ``stat=np.mean`` (over the units and draws) gives the same interval up to
    rounding.

    Parameters
    ----------
    arrays : ndarray or dict of str to ndarray
        Per-unit values, each of shape ``(..., n_draws, n_units)`` if ``draws`` else
        ``(..., n_units)``, any real dtype (converted to float64). Finite. Broadcast a value without
        draws to every draw to keep it paired.
    stat : callable, optional
        ``stat(resampled) -> float or 1-D array``; ``resampled`` has the structure of ``arrays``
        with the units (last axis) replaced by the units of the drawn groups, concatenated in the
        order drawn, and the draw axis by the drawn draws. None: the mean of the single array
        (over units and draws; outputs = the leading axes).
    groups : array-like of int or str, shape (n_units,), optional
        Cluster of every unit; None: every unit is its own.
    draws : bool, default=False
    n_resamples, seed, level, where, group_level : as in :func:`nested_bootstrap`
    construction : {"t-banerjee", "t-satterthwaite", "percentile"}, default="t-banerjee"
        As in :func:`nested_bootstrap`; ``"percentile"`` (claims.md's default construction) only for
        one level (``draws=False``) and a statistic that is not a mean, such as a median of whole
        numbers, for which the t constructions (calibrated on means) are not shown to cover.
    vectorized : bool, default=False
        ``stat`` takes the resampled arrays with a leading resample axis, shape
        ``(b, ..., [n_draws,] n_units)``, and returns ``(b,)`` or ``(b, n_outputs)``; called once
        per chunk of resamples (chunks bound memory to about 64 MiB). Needs groups of equal size
        (else every resample would have its own number of units).

    Returns
    -------
    Estimate or tuple of Estimate
        As :func:`nested_bootstrap`; ``n_groups`` is None where every unit is its own group.

    Raises
    ------
    ValueError
        As :func:`nested_bootstrap`: mismatched ``groups`` (the message names ``where`` and the
        shapes), fewer than 2 groups, fewer than 2 draws with ``draws=True``, non-finite values;
        ``vectorized=True`` with groups of unequal sizes.
    """
    arrs, single = _as_arrays(arrays, where)
    if groups is None:
        last = {a.shape[-1] if a.ndim else 0 for a in arrs.values()}
        groups = np.arange(max(last))
    if construction == "percentile" and (draws or stat is None):
        raise ValueError(f"{where}: the percentile construction is for one level (no draws) and a "
                         f"statistic that is not a mean (e.g. a median); got draws={draws}, stat={stat}")
    if stat is None:
        return nested_bootstrap(arrays, None, docs=groups, draws=draws, n_resamples=n_resamples,
                                seed=seed, level=level, where=where, group_level=group_level,
                                construction=construction)
    inverse, n_groups, n_units = check_groups(groups, arrs, where, draws, group_level)
    n_draws = check_draws(arrs, draws, where)
    check_resampling(n_resamples, level, where, construction)
    order = np.argsort(inverse, kind="stable")
    sizes = np.bincount(inverse, minlength=n_groups)
    if vectorized and sizes.min() != sizes.max():
        raise ValueError(f"{where}: vectorized=True needs {group_level} of equal size, got sizes "
                         f"{sorted(set(sizes.tolist()))} over {n_groups} {group_level}")

    many = _many(stat, single, True, where)                                   # vectorized=True only
    full = np.asarray(stat(arrs["x"] if single else arrs), dtype=np.float64)
    if full.ndim > 1:
        raise ValueError(f"{where}: expected the statistic to be a scalar or 1-D, got shape {full.shape}")
    size = full.size
    rng = np.random.default_rng(seed)
    per_unit = 8 * sum(a.size // n_units for a in arrs.values())
    out = np.empty((n_resamples, size))
    if vectorized:
        table = order.reshape(n_groups, -1)                                    # (n_groups, size_g)
        for r, idx in _row_chunks(rng, n_groups, n_resamples, (16 + per_unit) * n_units):
            take = table[idx].reshape(len(idx), -1)                            # (b, n_units)
            sub = {k: np.moveaxis(np.take(a, take, axis=-1), -2, 0) for k, a in arrs.items()}
            out[r:r + len(idx)] = _outputs(many(sub), len(idx), size, where)
    else:
        members = np.split(order, np.cumsum(sizes)[:-1])                      # unit indices per group
        for r, idx in _row_chunks(rng, n_groups, n_resamples, 8 * n_groups):
            for i, row in enumerate(idx):
                take = np.concatenate([members[g] for g in row])
                out[r + i] = _outputs(stat(_pick(arrs, single, take, -1)), None, size, where)
    comps = {group_level: (nan_to_zero_var(out), n_groups, kish_df(sizes / n_units))}
    if construction == "percentile":
        return percentile_estimates(full, out, comps, n_units=n_units, n_groups=n_groups,
                                     n_resamples=n_resamples, level=level)
    if draws:
        out = np.empty((n_resamples, size))
        if vectorized:
            for r, idx in _row_chunks(rng, n_draws, n_resamples, 8 * n_draws + per_unit * n_units):
                sub = {k: np.moveaxis(np.take(a, idx, axis=-2), -3, 0) for k, a in arrs.items()}
                out[r:r + len(idx)] = _outputs(many(sub), len(idx), size, where)
        else:
            for r, idx in _row_chunks(rng, n_draws, n_resamples, 8 * n_draws):
                for i, row in enumerate(idx):
                    out[r + i] = _outputs(stat(_pick(arrs, single, row, -2)), None, size, where)
        comps["draws"] = (nan_to_zero_var(out), n_draws, n_draws - 1.0)
    return level_estimates(full, comps, n_units=n_units, n_seeds=n_draws,
                            n_groups=n_groups if n_groups != n_units else None,
                            n_resamples=n_resamples, level=level, construction=construction)


def _as_arrays(arrays, where: str) -> tuple[dict, bool]:
    single = not isinstance(arrays, dict)
    arrs = {"x": np.asarray(arrays, dtype=np.float64)} if single else {
        k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    if not arrs:
        raise ValueError(f"{where}: expected at least one array, got none")
    return arrs, single


def _many(stat: Callable, single: bool, vectorized: bool, where: str) -> Callable:
    """``many(means)``: the statistic on every resample of ``means`` (leading resample axis)."""
    if vectorized:
        def many(means: dict) -> np.ndarray:
            return np.asarray(stat(means["x"] if single else means), dtype=np.float64)
        return many

    def loop(means: dict) -> np.ndarray:
        b = next(iter(means.values())).shape[0]
        return np.stack([np.asarray(stat(means["x"][r] if single else {k: m[r] for k, m in means.items()}),
                                    dtype=np.float64).ravel() for r in range(b)])
    return loop


def _outputs(value, b: int | None, size: int, where: str) -> np.ndarray:
    """``value`` as ``(b, size)`` (or ``(size,)`` for ``b=None``), checking the output count."""
    out = np.asarray(value, dtype=np.float64)
    want = size if b is None else b * size
    if out.size != want or (b is not None and out.ndim and out.shape[0] != b):
        raise ValueError(f"{where}: expected the statistic to give {size} output(s) per resample"
                         f"{'' if b is None else f' for {b} resamples'}, got shape {out.shape}")
    return out.reshape(-1) if b is None else out.reshape(b, size)


def _pick(arrs: dict, single: bool, take: np.ndarray, axis: int):
    sub = {k: np.take(a, take, axis=axis) for k, a in arrs.items()}
    return sub["x"] if single else sub


def _draw_level(rng, full_means: dict, n_draws: int, n_resamples: int, many, size: int, where: str):
    """Variance of the statistic over resamples of the draws, every document kept."""
    idx = rng.integers(0, n_draws, size=(n_resamples, n_draws))
    means = {k: np.moveaxis(np.take(m, idx, axis=-1), -2, 0) for k, m in full_means.items()}
    return nan_to_zero_var(_outputs(many(means), n_resamples, size, where))


def _row_chunks(rng, n: int, n_resamples: int, bytes_per_row: int):
    """``(start, rows)`` blocks of ``rng.integers(0, n, size=(n_resamples, n))``, about
    ``_CHUNK_BYTES / bytes_per_row`` rows each (numpy's stream does not depend on the blocks)."""
    rows = max(1, _CHUNK_BYTES // max(1, int(bytes_per_row)))
    for start in range(0, n_resamples, rows):
        yield start, rng.integers(0, n, size=(min(rows, n_resamples - start), n))


def multiplicities(idx: np.ndarray, n: int) -> np.ndarray:
    """(b, n) float multiplicities of each of ``n`` groups in each row of ``idx`` (b, n)."""
    b = idx.shape[0]
    flat = (idx + (np.arange(b, dtype=np.int64) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def _group_sums(a: np.ndarray, inverse: np.ndarray, n_groups: int) -> np.ndarray:
    """Sums of ``a`` (..., n_units) over the units of each group: (..., n_groups)."""
    if inverse.size > 1 and np.any(inverse[1:] < inverse[:-1]):
        order = np.argsort(inverse, kind="stable")
        a, inverse = a[..., order], inverse[order]
    starts = np.searchsorted(inverse, np.arange(n_groups))
    return np.add.reduceat(a, starts, axis=-1)
