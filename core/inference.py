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
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "VERDICTS", "Estimate", "bootstrap_interval", "paired_bootstrap", "bootstrap_many", "spearman",
    "directional", "equivalence", "at_least", "at_most", "all_of",
]

#: The three verdicts a measured claim can get.
VERDICTS = ("replicated", "contradicted", "inconclusive")

#: Bound on the bytes of one chunk of resample indices plus the values they gather (64 MiB).
_CHUNK_BYTES = 64 * 2**20

SeedLike = int | np.random.Generator


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap percentile interval.

    Attributes
    ----------
    value : float
        The statistic on the full sample.
    low, high : float
        Percentile interval at ``level`` (``low <= high`` unless NaN).
    n_units : int
        Bootstrap units (evaluation tokens/images, or subsets/layers/clusters).
    n_seeds : int
        Seeds pooled into every unit.
    level : float, default=0.95
    n_resamples : int, default=2000

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

    def __post_init__(self):
        if self.low > self.high:
            raise ValueError(f"Estimate: expected low <= high, got low={self.low}, high={self.high}")

    def as_dict(self) -> dict:
        """Plain-Python fields, for JSON."""
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v)
                for k, v in asdict(self).items()}


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
