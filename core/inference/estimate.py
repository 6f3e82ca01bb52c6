"""A statistic with its interval: :class:`Estimate`, and the three verdicts (:data:`VERDICTS`) a
claim can get from the rules of :mod:`core.inference.rules` (claims.md, "Rules that hold for every
claim").

An :class:`Estimate` carries, besides the value and its 95% interval, what built it: the units and
draws, the level variances (``components``) that :func:`core.inference.sample_size.needed` reads,
and the interval's construction (:func:`core.inference.bootstrap.nested_bootstrap`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

#: The three verdicts a measured claim can get.
VERDICTS = ("replicated", "contradicted", "inconclusive")


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
    bounds : tuple of float or None
        The statistic's range where it has one (a correlation's [-1, 1]) and the interval was cut to
        it (:meth:`within`); None otherwise.

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
    bounds: tuple[float, float] | None = None

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
        bounds = None if self.bounds is None else (self.bounds[0] + delta, self.bounds[1] + delta)
        return replace(self, value=self.value + delta, low=self.low + delta, high=self.high + delta,
                       bounds=bounds)

    def scaled(self, sign: float) -> Estimate:
        """The same estimate of ``sign * statistic`` (``sign`` = +1 or -1): value and interval flip."""
        lo, hi = sorted((sign * self.low, sign * self.high))
        bounds = None if self.bounds is None else tuple(sorted((sign * self.bounds[0], sign * self.bounds[1])))
        return replace(self, value=sign * self.value, low=lo, high=hi, bounds=bounds)

    def within(self, lower: float, upper: float) -> Estimate:
        """The interval cut to the statistic's range ``[lower, upper]`` (a correlation's [-1, 1]).

        The t constructions of :func:`nested_bootstrap` are symmetric about the value, so near a bound
        they can reach past it (rho 0.96 [0.87, 1.05]); the true value lies in the range, so cutting
        there loses no coverage, and a verdict that asks whether the interval excludes a point inside
        the range (0 for a correlation) is unchanged. ``se``, ``components`` and ``df`` stay as they
        are (what an inconclusive verdict needs is read from them).

        Raises
        ------
        ValueError
            If ``lower >= upper`` or the value lies outside the range.
        """
        if not lower < upper:
            raise ValueError(f"Estimate.within: expected lower < upper, got [{lower}, {upper}]")
        if not np.isnan(self.value) and not lower <= self.value <= upper:
            raise ValueError(f"Estimate.within: the value {self.value} lies outside [{lower}, {upper}]")
        return replace(self, low=float(min(max(self.low, lower), upper)),
                       high=float(max(min(self.high, upper), lower)), bounds=(float(lower), float(upper)))


def as_estimates(estimates, where: str) -> list[Estimate]:
    """One Estimate or an iterable of them as a non-empty list; ``ValueError`` naming ``where`` otherwise."""
    ests = [estimates] if isinstance(estimates, Estimate) else list(estimates)
    if not ests or not all(isinstance(e, Estimate) for e in ests):
        raise ValueError(f"{where}: expected one or more Estimate, got {estimates!r}")
    return ests
