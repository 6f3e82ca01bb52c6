"""Intervals and verdicts: the rules that hold for every claim (claims.md, "Rules that hold for every
claim").

Revision 2 (claims.md, "Intervals"): :func:`nested_bootstrap` (evaluation units grouped by document,
random draws as a second level, methods paired) and :func:`cluster_bootstrap` (subsets, layers,
clusters, pairs, with the groups of units that share something) measure the statistic's variance
due to each level by a bootstrap of that level alone (2,000 resamples each, a fixed seed) and build
Banerjee's t interval from them, the construction calibrated by ``tests/test_calibration.py``;
:func:`needed` says what an inconclusive verdict would need. Every claim uses these two; revision
1's token-level percentile bootstrap (seeds pooled, documents ignored) is gone.

Verdicts are one of :data:`VERDICTS`:

- ``replicated``: the claimed effect holds and its interval excludes the null (equivalence claims:
  the interval lies inside the margin);
- ``contradicted``: the opposite effect holds and its interval excludes the null (equivalence
  claims: the interval lies wholly outside the margin);
- ``inconclusive``: anything else (NaN statistics included).

Resampling protocol: ``rng = numpy.random.default_rng(seed)``; a level's resample ``r`` is row ``r``
of ``rng.integers(0, n, size=(n_resamples, n))`` over its ``n`` groups (documents, then draws; see
:func:`nested_bootstrap`, ``seed``), so the same seed gives the same resampled groups to every
statistic of a claim.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace

import numpy as np

__all__ = [
    "VERDICTS", "CONSTRUCTIONS", "Estimate", "nested_bootstrap", "cluster_bootstrap", "needed",
    "spearman", "spearman_rows",
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
        ``{"draws": {...}, "documents": {...}}``, each also with ``"df"``, the level's degrees of
        freedom; what :func:`needed` reads.
    df : float or None
        Degrees of freedom of the t quantile that gives the interval, ``high - value = t(df) * se``
        (Satterthwaite's df; for Banerjee's construction the equivalent one), where the construction
        uses one; inf where the normal quantile does.
    construction : str
        How the interval was built: ``"percentile"`` (revision 1), ``"t-banerjee"`` or
        ``"t-satterthwaite"`` (see :func:`nested_bootstrap`).

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

# ---------------------------------------------------------------------------------------------
# revision 2: documents, draws and shared units as levels of the bootstrap

#: Draws fewer than this cannot be resampled as a level.
MIN_LEVEL = 2


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
    inverse, n_groups, n_units = _check_groups(docs, arrs, where, draws, group_level)
    n_draws = _check_draws(arrs, draws, where)
    _check_resampling(n_resamples, level, where, construction)
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
        w = _counts(idx, n_groups)                                             # (b, n_groups)
        denom = w @ counts                                                     # (b,)
        means = {k: np.moveaxis(s @ w.T, -1, 0) / denom.reshape((-1,) + (1,) * (s.ndim - 1))
                 for k, s in sums.items()}                                     # (b, ...[, D])
        out[r:r + len(idx)] = _outputs(many(means), len(idx), size, where)
    weights = counts / total
    comps = {group_level: (_nan_to_zero_var(out), n_groups, _kish_df(weights))}
    if draws:
        comps["draws"] = (_draw_level(rng, full_means, n_draws, n_resamples, many, size, where),
                          n_draws, n_draws - 1.0)
    return _level_estimates(full, comps, n_units=n_units, n_seeds=n_draws,
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
    inverse, n_groups, n_units = _check_groups(groups, arrs, where, draws, group_level)
    n_draws = _check_draws(arrs, draws, where)
    _check_resampling(n_resamples, level, where, construction)
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
    comps = {group_level: (_nan_to_zero_var(out), n_groups, _kish_df(sizes / n_units))}
    if construction == "percentile":
        return _percentile_estimates(full, out, comps, n_units=n_units, n_groups=n_groups,
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
        comps["draws"] = (_nan_to_zero_var(out), n_draws, n_draws - 1.0)
    return _level_estimates(full, comps, n_units=n_units, n_seeds=n_draws,
                            n_groups=n_groups if n_groups != n_units else None,
                            n_resamples=n_resamples, level=level, construction=construction)


def needed(estimates: Estimate | Iterable[Estimate], *, affordable: dict[str, int] | None = None) -> dict:
    """What an inconclusive verdict would need (issue 10, item 5).

    For every estimate whose interval contains 0, the smallest count of one level (documents,
    draws, ...) at which the interval would exclude 0 *if the effect held at its observed size and
    the level variances per unit stayed as measured*. Growing level ``L`` from ``n_L`` to ``n'``
    gives ``var_L' = var_L * n_L / n'`` and ``df_L' = df_L * (n' - 1) / (n_L - 1)``, the other
    levels unchanged, and the half-width of the estimate's own construction at those values:
    Banerjee's ``h(n') = sqrt(t(df_L')**2 * var_L' + sum_{l != L} t(df_l)**2 * var_l)``
    (Satterthwaite's: ``t(df') * se'`` with ``df'`` from the grown variances). The count is the
    least integer ``n' > n_L`` with ``|value| > h(n')`` (doubling, then bisection). It exists only
    if ``|value|`` exceeds the limit of ``h`` as ``n' -> inf`` (the other levels alone). Of the
    levels, the one needing the smallest relative growth ``n' / n_L`` is reported; of the
    estimates, the one needing the most (a claim needs every estimate decided).

    With ``var_L`` measured as in :func:`nested_bootstrap`, the interaction of draws and documents
    sits in both levels and is held fixed when one grows, so the count is, if anything, an
    overstatement.

    Parameters
    ----------
    estimates : Estimate or iterable of Estimate
        Estimates with ``components`` (from :func:`nested_bootstrap` / :func:`cluster_bootstrap`);
        others are skipped.
    affordable : dict of level name to int, optional
        The largest count of each level the tier can afford (e.g. the ``paper`` profile's
        documents); a need above it reads "too small to matter at any size the tier can afford".

    Returns
    -------
    dict
        ``{"level", "have", "needed", "text"}``. ``needed`` is None and ``text`` says why when no
        size would do: a zero effect ("no sample size would decide it"), or an effect smaller than
        what the other levels alone leave ("more of every level would be needed"). ``{}`` when
        every interval already excludes 0, the value is NaN, or no estimate carries components.

    Raises
    ------
    ValueError
        If no Estimate is given.
    """
    ests = _estimates(estimates, "needed")
    worst: dict = {}
    for e in ests:
        if not e.components or not (e.low <= 0 <= e.high) or not np.isfinite(e.value):
            continue
        if e.value == 0:
            return {"level": None, "have": None, "needed": None,
                    "text": "the observed effect is 0: no sample size would decide it"}
        best = None
        for lvl, c in e.components.items():
            n_new = _needed_count(abs(e.value), lvl, e.components, e.level, e.construction)
            if n_new is not None and (best is None or n_new / c["n"] < best[3]):
                best = (lvl, int(c["n"]), n_new, n_new / c["n"])
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


#: Largest count :func:`needed` searches.
_NEEDED_CAP = 10**12


def _needed_count(effect: float, lvl: str, comps: dict, level: float, construction: str) -> int | None:
    """Least ``n' > n_L`` at which ``effect`` exceeds the half-width (see :func:`needed`), or None."""
    c = comps[lvl]
    var, n = float(c["var"]), float(c["n"])
    df_l = float(c.get("df", n - 1))
    if var <= 0 or n < 2 or df_l <= 0:
        return None
    rest = {k: (float(o["var"]), float(o.get("df", o["n"] - 1))) for k, o in comps.items()
            if k != lvl and o["var"] > 0}
    rest_var = sum(v for v, _ in rest.values())

    if construction == "t-banerjee":
        rest_half2 = sum(_crit(level, d) ** 2 * v for v, d in rest.values())

        def half(n_new: float) -> float:
            return float(np.sqrt(_crit(level, df_l * (n_new - 1) / (n - 1)) ** 2 * var * n / n_new
                                 + rest_half2))
        limit = np.sqrt(rest_half2)
    else:
        rest_den = sum(v ** 2 / d for v, d in rest.values())

        def half(n_new: float) -> float:
            v = var * n / n_new
            den = v ** 2 / (df_l * (n_new - 1) / (n - 1)) + rest_den
            return _crit(level, (v + rest_var) ** 2 / den) * float(np.sqrt(v + rest_var))
        limit = _crit(level, rest_var ** 2 / rest_den if rest_den > 0 else np.inf) * np.sqrt(rest_var)

    if effect <= limit:
        return None
    lo, hi = int(n), int(n) + 1
    while not effect > half(hi):
        lo, hi = hi, 2 * hi
        if hi > _NEEDED_CAP:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if effect > half(mid) else (mid, hi)
    return hi


def _crit(level: float, df: float) -> float:
    """Two-sided t quantile at ``level`` (normal for infinite df)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.5 + level / 2))


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
    return _nan_to_zero_var(_outputs(many(means), n_resamples, size, where))


def _row_chunks(rng, n: int, n_resamples: int, bytes_per_row: int):
    """``(start, rows)`` blocks of ``rng.integers(0, n, size=(n_resamples, n))``, about
    ``_CHUNK_BYTES / bytes_per_row`` rows each (numpy's stream does not depend on the blocks)."""
    rows = max(1, _CHUNK_BYTES // max(1, int(bytes_per_row)))
    for start in range(0, n_resamples, rows):
        yield start, rng.integers(0, n, size=(min(rows, n_resamples - start), n))


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
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


def _kish_df(w: np.ndarray) -> float:
    """Degrees of freedom of a level whose units weigh ``w`` (shares summing to 1): ``min(n, K) -
    1`` with ``K = (sum w**2)**2 / sum w**4`` (n for equal weights)."""
    w2 = np.asarray(w, dtype=np.float64) ** 2
    k = float(w2.sum() ** 2 / (w2 ** 2).sum())
    return max(min(float(len(w2)), k) - 1.0, 1.0)


def _nan_to_zero_var(out: np.ndarray) -> np.ndarray:
    """Variance over resamples (axis 0, ddof=1) with undefined (NaN, infinite) resamples counted as
    0 (claims.md)."""
    bad = ~np.isfinite(out)
    if bad.any():
        out = np.where(bad, 0.0, out)
    dev = out - out.mean(axis=0)
    return np.einsum("ij,ij->j", dev, dev) / (out.shape[0] - 1)


#: Interval constructions of :func:`nested_bootstrap` / :func:`cluster_bootstrap`.
CONSTRUCTIONS = ("t-banerjee", "t-satterthwaite", "percentile")


def _level_estimates(full: np.ndarray, comps: dict, *, n_units: int, n_seeds: int,
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
            df = float(stdtridf(q, crit)) if crit > _crit(level, np.inf) * (1 + 1e-12) else float("inf")
            df = float("inf") if df >= 1e9 else df
        else:
            denom = sum(var[k] ** 2 / dfs[k] for k in var)
            df = float(total ** 2 / denom) if denom > 0 else float("inf")
            half = _crit(level, df) * se
        lo, hi = (float(v) - half, float(v) + half) if np.isfinite(v) else (np.nan, np.nan)
        ests.append(Estimate(float(v), lo, hi, n_units, n_seeds, level, n_resamples, n_groups=n_groups,
                             se=se, components={k: {"var": var[k], "n": int(comps[k][1]), "df": dfs[k]}
                                                for k in var},
                             df=df, construction=construction))
    return ests[0] if full.ndim == 0 else tuple(ests)


def _percentile_estimates(full: np.ndarray, out: np.ndarray, comps: dict, *, n_units: int, n_groups: int,
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


def _check_resampling(n_resamples: int, level: float, where: str, construction: str) -> None:
    if construction not in CONSTRUCTIONS:
        raise ValueError(f"{where}: expected construction in {CONSTRUCTIONS}, got {construction!r}")
    if int(n_resamples) != n_resamples or n_resamples < 2:
        raise ValueError(f"{where}: expected n_resamples >= 2 (a level variance needs two), got "
                         f"{n_resamples}")
    if not 0 < level < 1:
        raise ValueError(f"{where}: expected level in (0, 1), got {level}")


def _check_draws(arrs: dict, draws: bool, where: str) -> int:
    if not draws:
        return 1
    n_draws = next(iter(arrs.values())).shape[-2]
    if n_draws < MIN_LEVEL:
        raise ValueError(f"{where}: draws are a level of the bootstrap and need at least {MIN_LEVEL}; "
                         f"got {n_draws} (array shapes {_shapes(arrs)}); pass draws=False for a "
                         f"single draw")
    return n_draws


def _check_groups(groups, arrs: dict, where: str, draws: bool,
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


def _percentiles(stats: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(stats, [tail, 100.0 - tail], axis=0)
    return low, high


def _estimates(estimates, where: str) -> list[Estimate]:
    ests = [estimates] if isinstance(estimates, Estimate) else list(estimates)
    if not ests or not all(isinstance(e, Estimate) for e in ests):
        raise ValueError(f"{where}: expected one or more Estimate, got {estimates!r}")
    return ests
