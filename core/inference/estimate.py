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


def _estimates(estimates, where: str) -> list[Estimate]:
    ests = [estimates] if isinstance(estimates, Estimate) else list(estimates)
    if not ests or not all(isinstance(e, Estimate) for e in ests):
        raise ValueError(f"{where}: expected one or more Estimate, got {estimates!r}")
    return ests
