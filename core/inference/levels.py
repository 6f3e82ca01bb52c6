"""From level variances to an interval (claims.md, "Intervals", revision 2): the constructions of
:func:`core.inference.bootstrap.nested_bootstrap` and :func:`core.inference.bootstrap.cluster_bootstrap`.

Each level's bootstrap variance is scaled by ``n / (n - 1)`` and given its degrees of freedom
(``n - 1`` for draws; ``min(n, K) - 1`` for groups of unequal size, :func:`kish_df`); the interval
is Banerjee's (Sankhya A 23, 1961) ``value +- sqrt(sum_l t(df_l)**2 * var_l)``, Satterthwaite's t
for comparison, or a one-level percentile interval for statistics that are not means
(:data:`CONSTRUCTIONS`, :func:`level_estimates`, :func:`percentile_estimates`). Also here: the
checks of the arrays, their groups and draws and the resampling settings, and the t quantile
:func:`critical_value` that :func:`core.inference.sample_size.needed` shares.
"""
from __future__ import annotations

import numpy as np

from core.inference.estimate import Estimate

#: Draws fewer than this cannot be resampled as a level.
MIN_LEVEL = 2


def critical_value(level: float, df: float) -> float:
    """Two-sided t quantile at ``level`` (normal for infinite df)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.5 + level / 2))


def kish_df(w: np.ndarray) -> float:
    """Degrees of freedom of a level whose units weigh ``w`` (shares summing to 1): ``min(n, K) -
    1`` with ``K = (sum w**2)**2 / sum w**4`` (n for equal weights)."""
    w2 = np.asarray(w, dtype=np.float64) ** 2
    k = float(w2.sum() ** 2 / (w2 ** 2).sum())
    return max(min(float(len(w2)), k) - 1.0, 1.0)


def nan_to_zero_var(out: np.ndarray) -> np.ndarray:
    """Variance over resamples (axis 0, ddof=1) with undefined (NaN, infinite) resamples counted as
    0 (claims.md)."""
    bad = ~np.isfinite(out)
    if bad.any():
        out = np.where(bad, 0.0, out)
    dev = out - out.mean(axis=0)
    return np.einsum("ij,ij->j", dev, dev) / (out.shape[0] - 1)


#: Interval constructions of :func:`nested_bootstrap` / :func:`cluster_bootstrap`.
CONSTRUCTIONS = ("t-banerjee", "t-satterthwaite", "percentile")


def level_estimates(full: np.ndarray, comps: dict, *, n_units: int, n_seeds: int,
                     n_groups: int | None, n_resamples: int, level: float, construction: str):
    """Estimates from ``comps = {level name: (bootstrap variance (size,), n, df)}``.

    Each level's variance is scaled by ``n / (n - 1)``; ``se**2`` is their sum.
    ``"t-banerjee"``: ``value +- sqrt(sum_l t(df_l)**2 * var_l)``; ``"t-satterthwaite"``:
    ``value +- t(df_S) * se`` with ``df_S = se**4 / sum_l(var_l**2 / df_l)``. ``Estimate.df`` is the
    df of the single t quantile that gives the same interval, ``half_width / se = t(df)`` (for
    Satterthwaite, ``df_S``); inf where one level of infinite df or no variance at all.
    """
    from scipy.special import stdtridf, stdtrit

    q = 0.5 + level / 2
    ests = []
    for i, v in enumerate(full.ravel()):
        var = {k: float(c[0][i]) * c[1] / (c[1] - 1) for k, c in comps.items()}
        dfs = {k: float(c[2]) for k, c in comps.items()}
        total = sum(var.values())
        se = float(np.sqrt(total))
        if construction == "t-banerjee":
            half = float(np.sqrt(sum(float(stdtrit(dfs[k], q)) ** 2 * var[k] for k in var)))
            crit = half / se if se > 0 else 0.0
            df = float(stdtridf(q, crit)) if crit > critical_value(level, np.inf) * (1 + 1e-12) else float("inf")
            df = float("inf") if df >= 1e9 else df
        else:
            denom = sum(var[k] ** 2 / dfs[k] for k in var)
            df = float(total ** 2 / denom) if denom > 0 else float("inf")
            half = critical_value(level, df) * se
        lo, hi = (float(v) - half, float(v) + half) if np.isfinite(v) else (np.nan, np.nan)
        ests.append(Estimate(float(v), lo, hi, n_units, n_seeds, level, n_resamples, n_groups=n_groups,
                             se=se, components={k: {"var": var[k], "n": int(comps[k][1]), "df": dfs[k]}
                                                for k in var},
                             df=df, construction=construction))
    return ests[0] if full.ndim == 0 else tuple(ests)


def percentile_estimates(full: np.ndarray, out: np.ndarray, comps: dict, *, n_units: int, n_groups: int,
                          n_resamples: int, level: float):
    """Percentile intervals of a one-level bootstrap (claims.md's default construction), for
    statistics that are not smooth means (a median of whole numbers), where the t constructions,
    calibrated for means, do not apply; undefined resamples count as 0."""
    vals = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
    tail = 100.0 * (1.0 - level) / 2.0
    lows, highs = np.percentile(vals, [tail, 100.0 - tail], axis=0)
    ests = []
    for i, v in enumerate(full.ravel()):
        var = float(comps[next(iter(comps))][0][i])
        lo, hi = (min(float(lows[i]), float(v)), max(float(highs[i]), float(v))) if np.isfinite(v) \
            else (np.nan, np.nan)
        ests.append(Estimate(float(v), lo, hi, n_units, 1, level, n_resamples,
                             n_groups=n_groups if n_groups != n_units else None, se=float(np.sqrt(var)),
                             components={k: {"var": float(c[0][i]), "n": int(c[1]), "df": float(c[2])}
                                         for k, c in comps.items()},
                             df=None, construction="percentile"))
    return ests[0] if full.ndim == 0 else tuple(ests)


def check_resampling(n_resamples: int, level: float, where: str, construction: str) -> None:
    if construction not in CONSTRUCTIONS:
        raise ValueError(f"{where}: expected construction in {CONSTRUCTIONS}, got {construction!r}")
    if int(n_resamples) != n_resamples or n_resamples < 2:
        raise ValueError(f"{where}: expected n_resamples >= 2 (a level variance needs two), got "
                         f"{n_resamples}")
    if not 0 < level < 1:
        raise ValueError(f"{where}: expected level in (0, 1), got {level}")


def check_draws(arrs: dict, draws: bool, where: str) -> int:
    if not draws:
        return 1
    n_draws = next(iter(arrs.values())).shape[-2]
    if n_draws < MIN_LEVEL:
        raise ValueError(f"{where}: draws are a level of the bootstrap and need at least {MIN_LEVEL}; "
                         f"got {n_draws} (array shapes {_shapes(arrs)}); pass draws=False for a "
                         f"single draw")
    return n_draws


def check_groups(groups, arrs: dict, where: str, draws: bool,
                  group_level: str = "documents") -> tuple[np.ndarray, int, int]:
    """Validate the arrays and their group ids; ``(inverse (n_units,) int64 in [0, n_groups),
    n_groups, n_units)``."""
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
        raise ValueError(f"{where}: expected the {group_level} id of each of the {n_units} units "
                         f"(arrays {shapes}), got None")
    g = np.asarray(groups)
    if g.shape != (n_units,):
        raise ValueError(f"{where}: expected {group_level} ids of shape ({n_units},) matching the units "
                         f"of arrays {shapes}, got shape {g.shape}")
    if not (np.issubdtype(g.dtype, np.integer) or g.dtype.kind in "US"):
        raise ValueError(f"{where}: expected integer or string {group_level} ids, got dtype {g.dtype}")
    if not all(np.isfinite(a).all() for a in arrs.values()):
        bad = {k: int((~np.isfinite(a)).sum()) for k, a in arrs.items()}
        raise ValueError(f"{where}: the values hold NaN or infinite entries {bad} (shapes {shapes})")
    if g.size and np.issubdtype(g.dtype, np.integer) and not np.any(g[1:] < g[:-1]):
        inverse = np.cumsum(np.r_[False, g[1:] != g[:-1]])                    # sorted ids: no sort
        n_groups = int(inverse[-1]) + 1
    else:
        uniq, inverse = np.unique(g, return_inverse=True)
        n_groups = len(uniq)
    if n_groups < MIN_LEVEL:
        raise ValueError(f"{where}: {group_level} are a level of the bootstrap and need at least "
                         f"{MIN_LEVEL}; all {n_units} units (arrays {shapes}) come from {n_groups}")
    return inverse.reshape(-1).astype(np.int64), n_groups, n_units


def _shapes(arrs: dict) -> dict:
    return {k: tuple(a.shape) for k, a in arrs.items()}
