"""Intervals and verdicts: the rules that hold for every claim (claims.md, "Rules that hold for every
claim").

Revision 2 (claims.md, "Intervals"): :func:`nested_bootstrap` (evaluation units grouped by document,
random draws as a second level, methods paired) and :func:`cluster_bootstrap` (subsets, layers,
clusters, pairs, with the groups of units that share something) measure the statistic's variance
due to each level by a bootstrap of that level alone (2,000 resamples each, a fixed seed) and build
Banerjee's t interval from them, the construction calibrated by ``tests/test_calibration.py``;
:func:`needed` says what an inconclusive verdict would need. Every claim uses these two; revision
1's token-level percentile bootstrap (seeds pooled, documents ignored) is gone.

Verdicts are one of :data:`VERDICTS` (``replicated``, ``contradicted``, ``inconclusive``; see
:mod:`core.inference.rules`).

- :mod:`core.inference.estimate`: :class:`Estimate` (a statistic with its interval) and
  :data:`VERDICTS`.
- :mod:`core.inference.bootstrap`: :func:`nested_bootstrap` and :func:`cluster_bootstrap`, the
  resampling of each level (the random number protocol) and its chunking.
- :mod:`core.inference.levels`: from the level variances to the interval: :data:`CONSTRUCTIONS`
  (Banerjee's and Satterthwaite's t, percentile), the levels' degrees of freedom, the checks of
  arrays, groups and draws.
- :mod:`core.inference.sample_size`: :func:`needed`, the count of one level that would decide an
  inconclusive verdict.
- :mod:`core.inference.rules`: the decision rules :func:`directional`, :func:`equivalence`,
  :func:`at_least`, :func:`at_most`, :func:`all_of`.
- :mod:`core.inference.correlation`: :func:`spearman`, :func:`spearman_rows`.

The public names are re-exported here, as claims read them (``from core import inference as inf``,
``inf.directional(...)``); private helpers are imported from their own modules.
"""
from __future__ import annotations

from core.inference.bootstrap import cluster_bootstrap, nested_bootstrap
from core.inference.correlation import spearman, spearman_rows
from core.inference.estimate import VERDICTS, Estimate
from core.inference.levels import CONSTRUCTIONS
from core.inference.rules import (all_of, at_least, at_most, band_verdict, decisive, decisive_band, decisive_directional,
                                   decisive_equivalence, decisive_null, decisive_threshold, directional,
                                   equivalence)
from core.inference.sample_size import needed

__all__ = [
    "VERDICTS", "CONSTRUCTIONS", "Estimate", "nested_bootstrap", "cluster_bootstrap", "needed",
    "spearman", "spearman_rows",
    "directional", "equivalence", "at_least", "at_most", "all_of",
    "decisive", "decisive_directional", "decisive_equivalence", "decisive_threshold", "decisive_band",
    "band_verdict", "decisive_null",
]
