"""Intervals and verdicts: the rules that hold for every claim (claims.md, "Rules that hold for every
claim").

Intervals are percentile intervals of a paired bootstrap over the evaluation units (tokens, images;
or subsets, layers, clusters where a claim compares across those), 2,000 resamples with a fixed
seed, pooled over the seeds a claim names. Verdicts are one of :data:`VERDICTS`:

- ``replicated``: the claimed effect holds and its interval excludes the null (equivalence claims:
  the interval lies inside the margin);
- ``contradicted``: the opposite effect holds and its interval excludes the null (equivalence
  claims: the interval lies wholly outside the margin);
- ``inconclusive``: anything else (NaN statistics included).

Resampling protocol, shared by every function here: ``rng = numpy.random.default_rng(seed)``, and
resample ``r`` is row ``r`` of ``rng.integers(0, n_units, size=(n_resamples, n_units))`` (the rows
are drawn in chunks to bound memory; numpy's stream does not depend on the chunking). The same seed
therefore gives the same resampled units to every statistic of a claim.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace

import numpy as np

__all__ = [
    "VERDICTS", "Estimate", "nested_bootstrap", "cluster_bootstrap", "needed", "bootstrap_interval", "paired_bootstrap", "bootstrap_many", "spearman",
    "directional", "equivalence", "at_least", "at_most", "all_of",
]

#: The three verdicts a measured claim can get.
VERDICTS = ("replicated", "contradicted", "inconclusive")

#: Bound on the bytes of one chunk of resample indices plus the values they gather (64 MiB).
_CHUNK_BYTES = 64 * 2**20

SeedLike = int | np.random.Generator


@dataclass(frozen=True)
class Estimate:
    """A statistic with its 95% interval.

    Attributes
    ----------
    value : float
        The statistic on the full sample.
    low, high : float
        The interval at ``level`` (``low <= high`` unless NaN).
    n_units : int
        Scored units (evaluation tokens, masked positions, images; or subsets, layers, clusters, pairs
        where those are the units).
    n_seeds : int, default=1
        Random draws (ABL's neuron selections, BCL's baseline seeds); resampled as a level when > 1
        and the estimate comes from :func:`nested_bootstrap` or :func:`cluster_bootstrap` with
        ``draws=True``.
    level : float, default=0.95
    n_resamples : int, default=2000
    n_groups : int or None
        Resampling groups of the units (documents; clusters sharing sentences; layers; unordered
        pairs); None where every unit is its own group.
    se : float or None
        Standard error of the statistic (the square root of the sum of ``components``' variances).
    components : dict or None
        ``{level name: {"var": variance of the statistic due to that level, "n": its count}}``, e.g.
        ``{"draws": {...}, "documents": {...}}``; what :func:`needed` reads.
    df : float or None
        Degrees of freedom of the t quantile (Satterthwaite), where the construction uses one.
    construction : str
        How the interval was built: ``"percentile"`` or ``"t-satterthwaite"`` (see
        :func:`nested_bootstrap`).

    Raises
    ------
    ValueError
        If ``low > high``.
    """

    value: float
    low: float
    high: float
    n_units: int
    n_seeds: int = 1
    level: float = 0.95
    n_resamples: int = 2000
    n_groups: int | None = None
    se: float | None = None
    components: dict | None = None
    df: float | None = None
    construction: str = "percentile"

    def __post_init__(self):
        if self.low > self.high:
            raise ValueError(f"Estimate: expected low <= high, got low={self.low}, high={self.high}")

    def as_dict(self) -> dict:
        """Plain-Python fields, for JSON."""
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v)
                for k, v in asdict(self).items()}

    def shifted(self, delta: float) -> Estimate:
        """The same estimate of ``statistic + delta`` (e.g. minus a rule's threshold, so that "the
        interval excludes 0" reads "the interval excludes the threshold")."""
        return replace(self, value=self.value + delta, low=self.low + delta, high=self.high + delta)

    def scaled(self, sign: float) -> Estimate:
        """The same estimate of ``sign * statistic`` (``sign`` = +1 or -1): value and interval flip."""
        lo, hi = sorted((sign * self.low, sign * self.high))
        return replace(self, value=sign * self.value, low=lo, high=hi)


# ---------------------------------------------------------------------------------------------
# bootstrap

def bootstrap_interval(stat_fn: Callable[[np.ndarray], float], n_units: int, *,
                       n_resamples: int = 2000, seed: SeedLike = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of any statistic of resampled unit indices.

    Parameters
    ----------
    stat_fn : callable
        ``stat_fn(idx) -> float``, where ``idx`` is an int64 array of shape (n_units,) of unit
        indices drawn with replacement; called once per resample (use :func:`paired_bootstrap`
        for means, which is vectorised).
    n_units : int
        Number of bootstrap units, >= 2.
    n_resamples : int, default=2000
    seed : int or numpy.random.Generator, default=0
    level : float, default=0.95
        In (0, 1).

    Returns
    -------
    (low, high) : tuple of float
        The ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the resampled statistic
        (numpy's linear interpolation); NaN if any resample gave NaN.

    Raises
    ------
    ValueError
        On ``n_units < 2``, ``n_resamples < 1`` or ``level`` outside (0, 1).
    """
    _check_settings(n_units, n_resamples, level)
    stats = np.empty(n_resamples)
    r = 0
    for idx in _index_chunks(np.random.default_rng(seed), n_units, n_resamples, 8):
        for row in idx:
            stats[r] = float(stat_fn(row))
            r += 1
    low, high = _percentiles(stats[:, None], level)
    return float(low[0]), float(high[0])


def paired_bootstrap(diffs, *, n_resamples: int = 2000, seed: SeedLike = 0,
                     level: float = 0.95) -> Estimate:
    """Mean of paired differences with its bootstrap interval over units, pooled over seeds.

    The statistic is the mean of ``diffs`` over every seed and unit. One resample draws
    ``n_units`` unit indices with replacement and averages over all seeds of the drawn units (the
    same units under every seed), so seeds are pooled, not resampled (claims.md, "Intervals").
    Vectorised: the seeds are averaged per unit first, then chunks of resamples gather those unit
    means with integer index arrays; no chunk holds more than about 64 MB.

    Parameters
    ----------
    diffs : array-like of shape (n_units,) or (n_seeds, n_units)
        Per-unit paired differences (e.g. top1 under method A minus under method B on the same
        token, in percentage points; or CE differences in nats). Finite.
    n_resamples : int, default=2000
    seed : int or numpy.random.Generator, default=0
    level : float, default=0.95

    Returns
    -------
    Estimate
        ``value`` = mean of ``diffs``; ``low``, ``high`` = percentile interval; ``n_units``,
        ``n_seeds`` (1 for a 1-D input).

    Raises
    ------
    ValueError
        If ``diffs`` is not 1-D or 2-D, has fewer than 2 units or no seed, or holds NaN/inf; or on
        bad ``n_resamples``/``level``.
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim == 1:
        d = d[None, :]
    if d.ndim != 2:
        raise ValueError(f"paired_bootstrap: expected diffs of shape (n_units,) or (n_seeds, n_units), "
                         f"got {np.shape(diffs)}")
    n_seeds, n_units = d.shape
    if n_seeds < 1:
        raise ValueError(f"paired_bootstrap: expected at least one seed, got shape {d.shape}")
    _check_settings(n_units, n_resamples, level)
    if not np.isfinite(d).all():
        raise ValueError(f"paired_bootstrap: diffs holds {int((~np.isfinite(d)).sum())} NaN or "
                         f"infinite value(s)")
    unit_means = d.mean(axis=0)
    stats = np.empty(n_resamples)
    r = 0
    for idx in _index_chunks(np.random.default_rng(seed), n_units, n_resamples, 16):
        stats[r:r + len(idx)] = unit_means[idx].mean(axis=1)
        r += len(idx)
    low, high = _percentiles(stats[:, None], level)
    return Estimate(float(d.mean()), float(low[0]), float(high[0]), n_units, n_seeds, level,
                    n_resamples)


def bootstrap_many(arrays: dict[str, np.ndarray], stat_fn: Callable[[dict], object], *,
                   n_resamples: int = 2000, seed: SeedLike = 0, level: float = 0.95,
                   n_seeds: int = 1) -> Estimate | tuple[Estimate, ...]:
    """Bootstrap a statistic that combines several paired arrays, with one set of resampled units.

    Every resample draws one index vector over units and applies it to the last axis of every
    array, so paired arrays stay paired (e.g. the CE curves of several ablation methods on the same
    tokens, for "is A the lowest of {A, B, C}", or a Spearman correlation over a curve).

    Parameters
    ----------
    arrays : dict of str to ndarray
        Arrays of any shapes that share their last axis, the units: shape (..., n_units).
    stat_fn : callable
        ``stat_fn(resampled) -> float or 1-D array``, where ``resampled`` maps the same keys to
        arrays of the same shapes with the units resampled. Called once on the full sample and once
        per resample; it must return the same number of outputs every time.
    n_resamples : int, default=2000
    seed : int or numpy.random.Generator, default=0
    level : float, default=0.95
    n_seeds : int, default=1
        Recorded in the returned estimates (the seeds the arrays pool, if any); not used otherwise.

    Returns
    -------
    Estimate, or tuple of Estimate
        An Estimate if ``stat_fn`` returns a scalar; a tuple of one Estimate per output if it
        returns a 1-D array. ``value`` is the statistic on the full sample; the interval is the
        percentile interval of each output (NaN if any resample gave NaN for that output).

    Raises
    ------
    ValueError
        If ``arrays`` is empty, the last axes differ, there are fewer than 2 units, or ``stat_fn``
        returns something other than a scalar or 1-D array, or a varying number of outputs.
    """
    if not arrays:
        raise ValueError("bootstrap_many: expected at least one array, got none")
    arrs = {k: np.asarray(v) for k, v in arrays.items()}
    sizes = {k: (a.shape[-1] if a.ndim else None) for k, a in arrs.items()}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise ValueError(f"bootstrap_many: expected arrays sharing their last axis (units), got last "
                         f"axis sizes {sizes}")
    n_units = next(iter(sizes.values()))
    _check_settings(n_units, n_resamples, level)
    full = _as_outputs(stat_fn(arrs), None)
    stats = np.empty((n_resamples, full.size))
    r = 0
    for idx in _index_chunks(np.random.default_rng(seed), n_units, n_resamples, 8):
        for row in idx:
            stats[r] = _as_outputs(stat_fn({k: a[..., row] for k, a in arrs.items()}), full.size)
            r += 1
    low, high = _percentiles(stats, level)
    ests = tuple(Estimate(float(v), float(lo), float(hi), n_units, n_seeds, level, n_resamples)
                 for v, lo, hi in zip(full.ravel(), low, high))
    return ests[0] if full.ndim == 0 else ests


# ---------------------------------------------------------------------------------------------
# revision 2: documents, draws and shared units as levels of the bootstrap

#: Draws fewer than this cannot be resampled as a level.
MIN_LEVEL = 2


def nested_bootstrap(arrays, stat: Callable | None = None, *, docs, draws: bool = True,
                     n_resamples: int = 2000, seed: SeedLike = 0, level: float = 0.95,
                     where: str = "nested_bootstrap", group_level: str = "documents"):
    """Interval of a statistic of per-draw means over evaluation units grouped by document
    (claims.md, "Intervals", revision 2).

    The evaluation units (scored tokens, masked positions, images) of one document stay together in
    every resample; where the design pools random draws (ABL's neuron selections), the draws are a
    level of their own. Methods and fractions held in ``arrays`` are resampled with the *same* draws
    and documents, so they stay paired.

    Construction (``"t-satterthwaite"``): the statistic's variance due to each level is measured by
    a bootstrap that resamples that level alone (documents with replacement, every draw kept; draws
    with replacement, every document kept), each scaled by ``n / (n - 1)`` (the bootstrap's bias for
    a mean), and the interval is ``value +- t(df) * se`` with ``se**2`` the sum of the two and ``df``
    Satterthwaite's ``se**4 / sum(var_l**2 / (n_l - 1))``. With three draws the plain percentile
    bootstrap covers far below 95% when draws dominate (its quantiles are normal, and a 3-point
    resample understates the spread); ``tests/test_calibration.py`` shows this construction covers.
    A resample on which the statistic is undefined (NaN) counts as 0.

    Parameters
    ----------
    arrays : ndarray or dict of str to ndarray
        Per-unit values, each of shape ``(..., n_draws, n_units)`` if ``draws`` else
        ``(..., n_units)``; float (top1 as 0/100 percent, CE in nats, ...). Finite.
    stat : callable, optional
        ``stat(means) -> float or 1-D array``, where ``means`` has the structure of ``arrays`` (an
        array or a dict with the same keys) and holds each array's mean over the resampled units, of
        shape ``(..., n_draws)`` (draws resampled) or ``(...)``. None: the mean over draws of the
        single array's per-draw means (the mean of the whole array).
    docs : array-like of int, shape (n_units,)
        Source document of every unit; images are their own documents (``np.arange(n_images)``).
    draws : bool, default=True
        Whether the arrays have a draw axis (second to last) to resample as a level.
    n_resamples : int, default=2000
        Resamples per level.
    seed : int or numpy.random.Generator, default=0
    level : float, default=0.95
    where : str
        The experiment or claim, named in error messages.
    group_level : str, default="documents"
        Name of the unit-group level in :attr:`Estimate.components`.

    Returns
    -------
    Estimate or tuple of Estimate
        One per output of ``stat`` (a tuple when ``stat`` returns a 1-D array).

    Raises
    ------
    ValueError
        If ``docs`` is missing or its shape does not match the units (the message names ``where``
        and both shapes), if there are fewer than 2 documents, or fewer than 2 draws with
        ``draws=True``, or values are not finite.
    """
    single = not isinstance(arrays, dict)
    arrs = {"x": np.asarray(arrays, dtype=np.float64)} if single else {
        k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    if not arrs:
        raise ValueError(f"{where}: expected at least one array, got none")
    if stat is None and len(arrs) != 1:
        raise ValueError(f"{where}: a default (mean) statistic needs exactly one array, got {list(arrs)}")
    groups, n_units = _check_groups(docs, arrs, where, draws)
    n_draws = next(iter(arrs.values())).shape[-2] if draws else 1
    if draws and n_draws < MIN_LEVEL:
        raise ValueError(f"{where}: draws are a level of the bootstrap and need at least {MIN_LEVEL}; "
                         f"got {n_draws} (array shapes {_shapes(arrs)})")
    _check_settings(2, n_resamples, level)
    order = np.argsort(groups, kind="stable")
    g_sorted = groups[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    n_groups = len(starts)
    if n_groups < MIN_LEVEL:
        raise ValueError(f"{where}: {group_level} are a level of the bootstrap and need at least "
                         f"{MIN_LEVEL}; all {n_units} units come from {n_groups}")
    counts = np.diff(np.r_[starts, n_units]).astype(np.float64)  # (n_groups,)
    sums = {k: np.add.reduceat(a[..., order], starts, axis=-1) for k, a in arrs.items()}

    def wrap(means: dict):
        return means["x"] if single else means

    def call(means: dict) -> np.ndarray:
        if stat is None:
            return np.asarray(next(iter(means.values())).mean(-1) if draws else next(iter(means.values())))
        return np.asarray(stat(wrap(means)), dtype=np.float64)

    full_means = {k: s.sum(-1) / counts.sum() for k, s in sums.items()}
    full = call(full_means)
    if full.ndim > 1:
        raise ValueError(f"{where}: expected the statistic to be a scalar or 1-D, got shape {full.shape}")
    rng = np.random.default_rng(seed)
    comps = {}
    # documents alone: multinomial weights over groups, every draw kept
    w = _multinomial_weights(rng, n_groups, n_resamples)                      # (B, n_groups)
    denom = w @ counts                                                         # (B,)
    means_g = {k: np.moveaxis((s @ w.T) / denom, -1, 0) for k, s in sums.items()}  # (B, ..., [n_draws])
    comps[group_level] = (_level_var(call, means_g, n_resamples, full.size), n_groups)
    if draws:
        idx = rng.integers(0, n_draws, size=(n_resamples, n_draws))
        means_d = {k: np.moveaxis(np.take(m, idx, axis=-1), -2, 0) for k, m in full_means.items()}
        comps["draws"] = (_level_var(call, means_d, n_resamples, full.size), n_draws)
    return _t_estimates(full, comps, n_units=n_units, n_seeds=n_draws, n_groups=n_groups,
                        n_resamples=n_resamples, level=level)


def cluster_bootstrap(arrays, stat: Callable | None = None, *, groups=None, draws: bool = False,
                      n_resamples: int = 2000, seed: SeedLike = 0, level: float = 0.95,
                      where: str = "cluster_bootstrap", group_level: str = "units"):
    """Interval of a statistic over units (subsets, layers, clusters, pairs, neurons), resampling
    units that share something as one cluster (claims.md, "Intervals", revision 2).

    Units with the same ``groups`` id move together: the (layer, subset) cells of one layer, both
    directions of a subset pair, clusters evaluated on the same sentences. Where the values pool
    random draws (BCL's baseline seeds), ``draws=True`` resamples them as a level of their own. The
    interval is built as in :func:`nested_bootstrap` (level variances, Satterthwaite t); a resample
    on which the statistic is undefined (NaN) counts as 0.

    Parameters
    ----------
    arrays : ndarray or dict of str to ndarray
        Per-unit values, each of shape ``(..., n_draws, n_units)`` if ``draws`` else
        ``(..., n_units)``. Broadcast a value without draws to every draw to keep it paired.
    stat : callable, optional
        ``stat(resampled) -> float or 1-D array``; ``resampled`` has the structure of ``arrays``
        with the units (last axis) replaced by the units of the drawn groups, concatenated, and the
        draw axis by the drawn draws. None: the mean of the single array.
    groups : array-like of int, shape (n_units,), optional
        Cluster of every unit; None: every unit is its own.
    draws : bool, default=False
    n_resamples, seed, level, where, group_level : as in :func:`nested_bootstrap`

    Returns
    -------
    Estimate or tuple of Estimate

    Raises
    ------
    ValueError
        As :func:`nested_bootstrap`: mismatched ``groups``, fewer than 2 groups, fewer than 2 draws
        with ``draws=True``.
    """
    single = not isinstance(arrays, dict)
    arrs = {"x": np.asarray(arrays, dtype=np.float64)} if single else {
        k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    if not arrs:
        raise ValueError(f"{where}: expected at least one array, got none")
    n_units = next(iter(arrs.values())).shape[-1]
    if groups is None:
        groups = np.arange(n_units)
    if stat is None:
        return nested_bootstrap(arrays, None, docs=groups, draws=draws, n_resamples=n_resamples,
                                seed=seed, level=level, where=where, group_level=group_level)
    gids, n_units = _check_groups(groups, arrs, where, draws)
    n_draws = next(iter(arrs.values())).shape[-2] if draws else 1
    if draws and n_draws < MIN_LEVEL:
        raise ValueError(f"{where}: draws are a level of the bootstrap and need at least {MIN_LEVEL}; "
                         f"got {n_draws} (array shapes {_shapes(arrs)})")
    _check_settings(2, n_resamples, level)
    uniq, inverse = np.unique(gids, return_inverse=True)
    n_groups = len(uniq)
    if n_groups < MIN_LEVEL:
        raise ValueError(f"{where}: {group_level} are a level of the bootstrap and need at least "
                         f"{MIN_LEVEL}; all {n_units} units form {n_groups}")
    members = [np.flatnonzero(inverse == g) for g in range(n_groups)]

    def call(sub: dict) -> np.ndarray:
        return np.asarray(stat(sub["x"] if single else sub), dtype=np.float64)

    full = call(arrs)
    if full.ndim > 1:
        raise ValueError(f"{where}: expected the statistic to be a scalar or 1-D, got shape {full.shape}")
    rng = np.random.default_rng(seed)
    out = np.empty((n_resamples, full.size))
    for r in range(n_resamples):
        take = np.concatenate([members[g] for g in rng.integers(0, n_groups, size=n_groups)])
        out[r] = call({k: a[..., take] for k, a in arrs.items()}).ravel()
    comps = {group_level: (_nan_to_zero_var(out), n_groups)}
    if draws:
        out = np.empty((n_resamples, full.size))
        for r in range(n_resamples):
            pick = rng.integers(0, n_draws, size=n_draws)
            out[r] = call({k: a[..., pick, :] for k, a in arrs.items()}).ravel()
        comps["draws"] = (_nan_to_zero_var(out), n_draws)
    return _t_estimates(full, comps, n_units=n_units, n_seeds=n_draws,
                        n_groups=n_groups if n_groups != n_units else None,
                        n_resamples=n_resamples, level=level)


def needed(estimates: Estimate | Iterable[Estimate], *, affordable: dict[str, int] | None = None) -> dict:
    """What an inconclusive verdict would need (issue "earned certainty", item 5).

    For every estimate whose interval contains 0, the count of the dominant level (documents,
    draws, ...) that would make the interval exclude 0 *if the effect held at its observed size*:
    with ``var_l`` the level variances at counts ``n_l``, growing level ``L`` to ``n'`` gives
    ``se'**2 = var_L * n_L / n' + sum_{l != L} var_l``, so ``n' = var_L * n_L / ((|value| / t)**2 -
    rest)``, which exists only if the other levels alone leave room. The claim needs the largest
    count over its estimates.

    Parameters
    ----------
    estimates : Estimate or iterable of Estimate
        Estimates with ``components`` (from :func:`nested_bootstrap` / :func:`cluster_bootstrap`).
    affordable : dict of level name to int, optional
        The largest count of each level the tier can afford (e.g. the ``paper`` profile's
        documents); a need above it reads "too small to matter".

    Returns
    -------
    dict
        ``{"level", "have", "needed", "text"}``; ``needed`` is None and ``text`` says why when no
        size would do (a zero effect, or an effect smaller than what the other levels alone leave).
        ``{}`` when every interval already excludes 0 or none carries components.
    """
    from scipy.stats import t as student_t

    ests = _estimates(estimates, "needed")
    worst: dict = {}
    for e in ests:
        if not e.components or (e.low > 0 or e.high < 0) or not np.isfinite(e.value):
            continue
        if e.value == 0:
            return {"level": None, "have": None, "needed": None,
                    "text": "the observed effect is 0: no sample size would decide it"}
        crit = float(student_t.ppf(0.5 + e.level / 2, max(e.df or 1e6, 1.0)))
        room = (abs(e.value) / crit) ** 2
        best = None
        for lvl, c in e.components.items():
            rest = sum(o["var"] for k, o in e.components.items() if k != lvl)
            if c["var"] <= 0 or room <= rest:
                continue
            n_new = int(np.ceil(c["var"] * c["n"] / (room - rest) + 1e-9))
            factor = n_new / c["n"]
            if best is None or factor < best[3]:
                best = (lvl, c["n"], max(n_new, c["n"] + 1), factor)
        if best is None:
            cand = {"level": None, "have": None, "needed": None, "factor": np.inf,
                    "text": f"the observed effect ({e.value:.3g}) is too small for any single level "
                            f"to decide: more of every level would be needed"}
        else:
            lvl, have, n_new, factor = best
            cand = {"level": lvl, "have": have, "needed": n_new, "factor": factor,
                    "text": f"about {n_new} {lvl} (now {have}) would make the interval exclude 0 if "
                            f"the effect held at its observed size ({e.value:.3g})"}
            cap = (affordable or {}).get(lvl)
            if cap is not None and n_new > cap:
                cand["text"] = (f"the observed effect ({e.value:.3g}) is too small to matter at any "
                                f"size the tier can afford: it would need about {n_new} {lvl} "
                                f"(the tier affords {cap})")
        if not worst or cand["factor"] > worst["factor"]:
            worst = cand
    worst.pop("factor", None)
    return worst


def _multinomial_weights(rng: np.random.Generator, n: int, n_resamples: int) -> np.ndarray:
    """(n_resamples, n) float counts of each of ``n`` groups in a resample of ``n`` with replacement."""
    idx = rng.integers(0, n, size=(n_resamples, n))
    w = np.zeros((n_resamples, n))
    np.add.at(w, (np.repeat(np.arange(n_resamples), n), idx.ravel()), 1.0)
    return w


def _level_var(call, means: dict, n_resamples: int, size: int) -> np.ndarray:
    """Variance over resamples of the statistic (NaN counted as 0); ``means`` values carry the
    resample axis first."""
    out = np.empty((n_resamples, size))
    first = next(iter(means.values()))
    for r in range(first.shape[0]):
        out[r] = call({k: m[r] for k, m in means.items()}).ravel()
    return _nan_to_zero_var(out)


def _nan_to_zero_var(out: np.ndarray) -> np.ndarray:
    return np.var(np.nan_to_num(out, nan=0.0), axis=0, ddof=1)


def _t_estimates(full: np.ndarray, comps: dict, *, n_units: int, n_seeds: int, n_groups: int | None,
                 n_resamples: int, level: float):
    from scipy.stats import t as student_t

    flat = full.ravel()
    ests = []
    for i, v in enumerate(flat):
        var = {k: float(c[0][i]) * c[1] / (c[1] - 1) for k, c in comps.items()}
        total = sum(var.values())
        se = float(np.sqrt(total))
        denom = sum(var[k] ** 2 / (comps[k][1] - 1) for k in var)
        df = float(total ** 2 / denom) if denom > 0 else float("inf")
        crit = float(student_t.ppf(0.5 + level / 2, df)) if np.isfinite(df) else 1.959963984540054
        lo, hi = (float(v) - crit * se, float(v) + crit * se) if np.isfinite(v) else (np.nan, np.nan)
        ests.append(Estimate(float(v), lo, hi, n_units, n_seeds, level, n_resamples, n_groups=n_groups,
                             se=se, components={k: {"var": var[k], "n": comps[k][1]} for k in var},
                             df=df, construction="t-satterthwaite"))
    return ests[0] if full.ndim == 0 else tuple(ests)


def _check_groups(groups, arrs: dict, where: str, draws: bool) -> tuple[np.ndarray, int]:
    shapes = _shapes(arrs)
    lasts = {a.shape[-1] if a.ndim else None for a in arrs.values()}
    if len(lasts) != 1 or None in lasts:
        raise ValueError(f"{where}: expected arrays sharing their last axis (units), got shapes {shapes}")
    if draws and any(a.ndim < 2 for a in arrs.values()):
        raise ValueError(f"{where}: draws=True needs arrays of shape (..., n_draws, n_units), got {shapes}")
    if draws and len({a.shape[-2] for a in arrs.values()}) != 1:
        raise ValueError(f"{where}: expected the same number of draws in every array, got {shapes}")
    n_units = lasts.pop()
    if groups is None:
        raise ValueError(f"{where}: expected the document (group) id of each of the {n_units} units, got None")
    g = np.asarray(groups)
    if g.shape != (n_units,):
        raise ValueError(f"{where}: expected document (group) ids of shape ({n_units},) matching the units "
                         f"of arrays {shapes}, got shape {g.shape}")
    if not np.issubdtype(g.dtype, np.integer):
        raise ValueError(f"{where}: expected integer document (group) ids, got dtype {g.dtype}")
    if not all(np.isfinite(a).all() for a in arrs.values()):
        raise ValueError(f"{where}: the values hold NaN or infinite entries (shapes {shapes})")
    return g.astype(np.int64), n_units


def _shapes(arrs: dict) -> dict:
    return {k: tuple(a.shape) for k, a in arrs.items()}


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


# ---------------------------------------------------------------------------------------------
# verdicts

def directional(estimates: Estimate | Iterable[Estimate], *, direction: int = +1) -> str:
    """Verdict for claims that every difference has a sign (e.g. ABL-1, ABL-4, ABL-7).

    Rule (claims.md ABL-1, for ``direction=+1``): "replicated if both differences > 0 with
    intervals excluding 0; contradicted if either is < 0 with interval excluding 0". That is:
    ``replicated`` if every estimate has ``value > 0`` and ``low > 0``; ``contradicted`` if any
    estimate has ``value < 0`` and ``high < 0``; else ``inconclusive``. ``direction=-1`` mirrors the
    signs (claims that a difference is < 0).

    Parameters
    ----------
    estimates : Estimate or iterable of Estimate
        At least one.
    direction : {+1, -1}, default=+1

    Returns
    -------
    str
        One of :data:`VERDICTS`.

    Raises
    ------
    ValueError
        If no estimate is given or ``direction`` is not +1 or -1.
    """
    ests = _estimates(estimates, "directional")
    if direction not in (1, -1):
        raise ValueError(f"directional: expected direction +1 or -1, got {direction!r}")

    def holds(e: Estimate) -> bool:
        return (e.value > 0 and e.low > 0) if direction == 1 else (e.value < 0 and e.high < 0)

    def opposite(e: Estimate) -> bool:
        return (e.value < 0 and e.high < 0) if direction == 1 else (e.value > 0 and e.low > 0)

    if all(holds(e) for e in ests):
        return "replicated"
    if any(opposite(e) for e in ests):
        return "contradicted"
    return "inconclusive"


def equivalence(estimates: Estimate | Iterable[Estimate], *, margin: float) -> str:
    """Verdict for claims that differences are negligible (e.g. ABL-6, margin 2 percentage points).

    Rule: ``replicated`` if every interval lies within ``[-margin, +margin]`` (endpoints included);
    ``contradicted`` if any interval lies wholly outside it (``low > margin`` or
    ``high < -margin``); else ``inconclusive``.

    Parameters
    ----------
    estimates : Estimate or iterable of Estimate
        At least one.
    margin : float
        > 0, in the estimates' units.

    Returns
    -------
    str
        One of :data:`VERDICTS`.

    Raises
    ------
    ValueError
        If no estimate is given or ``margin`` is not a positive finite number.
    """
    ests = _estimates(estimates, "equivalence")
    if not (np.isfinite(margin) and margin > 0):
        raise ValueError(f"equivalence: expected a positive finite margin, got {margin!r}")
    if all(-margin <= e.low and e.high <= margin for e in ests):
        return "replicated"
    if any(e.low > margin or e.high < -margin for e in ests):
        return "contradicted"
    return "inconclusive"


def at_least(estimate: Estimate, threshold: float) -> str:
    """Verdict for "the statistic is at least ``threshold``" (e.g. ABL-9: >= 75% of neurons).

    Rule: ``replicated`` if ``low >= threshold``; ``contradicted`` if ``high < threshold``; else
    ``inconclusive``.

    Returns
    -------
    str
        One of :data:`VERDICTS`.
    """
    _estimates(estimate, "at_least")
    if estimate.low >= threshold:
        return "replicated"
    if estimate.high < threshold:
        return "contradicted"
    return "inconclusive"


def at_most(estimate: Estimate, threshold: float) -> str:
    """Verdict for "the statistic is at most ``threshold``" (mirror of :func:`at_least`).

    Rule: ``replicated`` if ``high <= threshold``; ``contradicted`` if ``low > threshold``; else
    ``inconclusive``.

    Returns
    -------
    str
        One of :data:`VERDICTS`.
    """
    _estimates(estimate, "at_most")
    if estimate.high <= threshold:
        return "replicated"
    if estimate.low > threshold:
        return "contradicted"
    return "inconclusive"


def all_of(verdicts: Iterable[str]) -> str:
    """Verdict of a conjunction ("A AND B"): ``replicated`` if every part is; ``contradicted`` if
    any part is; else ``inconclusive``.

    Raises
    ------
    ValueError
        If no verdict is given or one is not in :data:`VERDICTS`.
    """
    vs = list(verdicts)
    bad = [v for v in vs if v not in VERDICTS]
    if not vs or bad:
        raise ValueError(f"all_of: expected one or more of {VERDICTS}, got {vs!r}")
    if all(v == "replicated" for v in vs):
        return "replicated"
    if "contradicted" in vs:
        return "contradicted"
    return "inconclusive"


# ---------------------------------------------------------------------------------------------
# internals

def _check_settings(n_units: int, n_resamples: int, level: float) -> None:
    if int(n_units) != n_units or n_units < 2:
        raise ValueError(f"bootstrap: expected at least 2 units, got {n_units}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"bootstrap: expected n_resamples >= 1, got {n_resamples}")
    if not 0 < level < 1:
        raise ValueError(f"bootstrap: expected level in (0, 1), got {level}")


def _index_chunks(rng: np.random.Generator, n_units: int, n_resamples: int,
                  bytes_per_index: int) -> Iterator[np.ndarray]:
    """Consecutive row blocks of ``rng.integers(0, n_units, size=(n_resamples, n_units))``."""
    rows = max(1, _CHUNK_BYTES // (bytes_per_index * n_units))
    for start in range(0, n_resamples, rows):
        yield rng.integers(0, n_units, size=(min(rows, n_resamples - start), n_units))


def _percentiles(stats: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(stats, [tail, 100.0 - tail], axis=0)
    return low, high


def _as_outputs(value, n: int | None) -> np.ndarray:
    out = np.asarray(value, dtype=np.float64)
    if out.ndim > 1:
        raise ValueError(f"bootstrap_many: expected stat_fn to return a scalar or 1-D array, got shape "
                         f"{out.shape}")
    if n is not None and out.size != n:
        raise ValueError(f"bootstrap_many: expected stat_fn to return {n} output(s), got {out.size}")
    return out


def _estimates(estimates, where: str) -> list[Estimate]:
    ests = [estimates] if isinstance(estimates, Estimate) else list(estimates)
    if not ests or not all(isinstance(e, Estimate) for e in ests):
        raise ValueError(f"{where}: expected one or more Estimate, got {estimates!r}")
    return ests
