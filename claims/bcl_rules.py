"""The statistics and decision rules of BCL-1..8 (claims.md, BCL), as small functions of plain inputs.

``claims/test_bert_clusters.py`` reads each claim's numbers out of :func:`core.bcl.experiment.bcl_experiment`'s
result (:class:`core.bcl.result.BclResult`) and hands them to the functions here;
``tests/test_bcl_claims.py`` runs the same functions on synthetic inputs whose verdicts are known by
construction.

Intervals (claims.md, "Intervals", revision 2): the units are clusters; clusters evaluated on shared
sentences are resampled together (``groups``: the connected components of the "shares a sentence"
graph); where a statistic pools BCL's five baseline seeds, the seeds are a level of their own
(``draws=True``: arrays of shape ``(n_seeds, n_clusters)``, the cluster's own increase broadcast to
every seed so that it stays paired). Every interval comes from :func:`core.inference.cluster_bootstrap`.

Rules return their verdict and the part that decided it, chosen by :mod:`core.inference.rules`'s
function for the rule's kind (directional, threshold, band, null).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from claims._claim import Outcome, detail
from core import inference as inf
from core.bcl.result import BclResult, Setup

#: BCL-5: the random_position increase must lie below this (% increase of CE).
BCL5_THRESHOLD = 0.5
#: BCL-6: the median refined cluster size must lie in this band (neurons).
BCL6_BAND = (5.0, 20.0)
#: BCL-7: the observed mean share must exceed this percentile of the null.
BCL7_PERCENTILE = 95.0


def nan_estimate(values=(), n_units: int = 0) -> inf.Estimate:
    """An estimate without an interval (fewer than 2 units or groups): the point value if any."""
    v = np.asarray(values, dtype=np.float64)
    value = float(v.mean()) if v.size and np.isfinite(v).all() else float("nan")
    return inf.Estimate(value, float("nan"), float("nan"), int(n_units))


def cluster_estimate(values, *, groups=None, draws: bool = False, stat=None,
                     where: str = "BCL", construction: str = "t-banerjee") -> inf.Estimate:
    """A statistic over clusters with its revision-2 interval (:func:`core.inference.cluster_bootstrap`).

    Parameters
    ----------
    values : array-like of shape (n_clusters,), or (n_seeds, n_clusters) with ``draws=True``
        Finite per-cluster values (NaN entries, e.g. singletons' distances, must be dropped first).
    groups : array-like of shape (n_clusters,), int, optional
        Clusters that share sentences move together; None: each cluster is its own group.
    draws : bool
        The first axis holds the baseline seeds, resampled as a level.
    stat : callable, optional
        ``stat(resampled) -> float`` (default: the mean).
    construction : str
        The interval's construction (:func:`core.inference.cluster_bootstrap`); ``"percentile"`` for a
        median (BCL-6).

    Returns
    -------
    Estimate
        With NaN interval when there are fewer than 2 clusters or 2 groups (never an error: a setup
        with a single evaluated cluster has no interval, and its verdict is inconclusive).
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.shape[-1] if v.ndim else 0
    g = np.arange(n) if groups is None else np.asarray(groups, dtype=np.int64)
    if n < 2 or np.unique(g).size < 2:
        return nan_estimate(v if stat is None else ([stat(v)] if n else []), n)
    return inf.cluster_bootstrap(v, stat, groups=g, draws=draws, where=where, group_level="clusters",
                                 construction=construction)


# ---------------------------------------------------------------------------------------------
# the intervention's numbers (BCL-2..5)

@dataclass
class Intervention:
    """One setup's evaluated clusters under one reading.

    Attributes
    ----------
    cluster : ndarray of shape (n_clusters,)
        % CE increase with the cluster replaced.
    baselines : dict of str to ndarray of shape (n_seeds, n_clusters)
        % CE increase under each baseline, per seed.
    groups : ndarray of shape (n_clusters,), int
        Shared-sentence components.
    n_sentences, n_documents, n_targets : int
        Distinct sentences and documents of the union, top-token predictions scored.
    """

    cluster: np.ndarray
    baselines: dict
    groups: np.ndarray
    n_sentences: int
    n_documents: int
    n_targets: int

    @property
    def n_clusters(self) -> int:
        return int(self.cluster.size)

    @property
    def n_seeds(self) -> int:
        return int(next(iter(self.baselines.values())).shape[0]) if self.baselines else 0

    @property
    def n_groups(self) -> int:
        return int(np.unique(self.groups).size)

    def sample_sizes(self, prefix: str) -> dict:
        return {f"{prefix}: clusters evaluated": self.n_clusters,
                f"{prefix}: groups of clusters sharing sentences": self.n_groups,
                f"{prefix}: baseline seeds": self.n_seeds,
                f"{prefix}: sentences": self.n_sentences, f"{prefix}: documents": self.n_documents,
                f"{prefix}: top-token predictions scored": self.n_targets}


def intervention(setup: Setup, reading: str | None = None) -> Intervention:
    """The numbers of a setup (:class:`core.bcl.result.Setup`) under the primary reading or an alternate.

    ``"R3"``: cluster and baselines with each neuron's own collection mean (``Evaluated.r3``);
    ``"R4"``: the primary with the index-preserving ``random_position`` (``Evaluated.r4``); ``"R5"``:
    the clusters evaluated with R5's top tokens (``Setup.r5``: their own sentences and groups).

    Raises
    ------
    KeyError
        If the reading was not computed.
    """
    src = setup.r5 if reading == "R5" else setup
    if src is None:
        raise KeyError(f"reading R5 was not computed for setup {setup.name}")
    ev = src.evaluated
    if reading in ("R3", "R4") and any(getattr(e, reading.lower()) is None for e in ev):
        raise KeyError(f"reading {reading} was not computed for setup {setup.name}")
    rows = [e.r3 for e in ev] if reading == "R3" else ev
    cluster = np.asarray([e.cluster_pct for e in rows], dtype=np.float64)
    names = list(ev[0].baselines) if ev else []
    base = {b: np.asarray([e.baselines[b] for e in rows], dtype=np.float64).T for b in names}
    if reading == "R4":
        base["random_position"] = np.asarray([e.r4.random_position for e in ev], dtype=np.float64).T
    return Intervention(cluster=cluster, baselines=base, groups=np.asarray(src.groups, dtype=np.int64),
                        n_sentences=int(src.n_sentences), n_documents=int(src.n_documents),
                        n_targets=int(sum(e.n_targets for e in ev)))


def paired_difference(x: Intervention, baseline: str, *, cluster_minus: bool = True,
                      where: str = "BCL") -> inf.Estimate:
    """Mean over clusters and seeds of ``cluster - baseline`` (or ``baseline - cluster``), paired per
    cluster and seed: the cluster's increase is broadcast to every seed, seeds are a draw level and
    shared-sentence groups move together. Percentage points of % CE increase."""
    diff = x.cluster[None, :] - x.baselines[baseline]
    d = diff if cluster_minus else -diff
    if x.n_seeds >= 2:
        return cluster_estimate(d, groups=x.groups, draws=True, where=where)
    return cluster_estimate(d.mean(0), groups=x.groups, where=where)


def baseline_increase(x: Intervention, baseline: str, *, where: str = "BCL") -> inf.Estimate:
    """Mean % CE increase under one baseline over clusters and seeds (seeds a draw level)."""
    v = x.baselines[baseline]
    if x.n_seeds >= 2:
        return cluster_estimate(v, groups=x.groups, draws=True, where=where)
    return cluster_estimate(v.mean(0), groups=x.groups, where=where)


# ---------------------------------------------------------------------------------------------
# rules

def shifted(e: inf.Estimate, by: float) -> inf.Estimate:
    """``e`` minus a constant (value and interval; level variances unchanged), so that
    :func:`core.inference.needed`, which asks when an interval excludes 0, asks when it excludes a
    threshold instead (BCL-5's 0.5, BCL-6's band edges)."""
    return replace(e, value=e.value - by, low=e.low - by, high=e.high - by)


def band_edge(e: inf.Estimate, band: tuple[float, float] = BCL6_BAND) -> float:
    """The edge of ``band`` that ``e``'s interval crosses, or the nearer one."""
    lo, hi = band
    if e.low < lo <= e.high:
        return lo
    if e.low <= hi < e.high:
        return hi
    return lo if abs(e.value - lo) <= abs(e.value - hi) else hi


def directional(parts: dict[str, inf.Estimate]) -> str:
    """BCL-2/3/4/8: ``replicated`` if every part is > 0 with its interval excluding 0; ``contradicted``
    if one is < 0 with its interval excluding 0 (:func:`core.inference.directional`); NaN intervals
    are ``inconclusive``."""
    return inf.directional(list(parts.values()))


def below(parts: dict[str, inf.Estimate], threshold: float = BCL5_THRESHOLD) -> tuple[str, str]:
    """BCL-5: replicated if every part's interval lies below ``threshold`` (``high <= threshold``);
    contradicted if one lies wholly above it; else inconclusive (NaN intervals included).

    Returns
    -------
    (verdict, decided_by)
        ``decided_by``: replicated, the part with the highest upper end (closest to failing);
        contradicted, the part lying farthest above; inconclusive, the undecided part with the highest
        upper end.
    """
    per = {k: (inf.at_most(e, threshold) if np.isfinite(e.low) and np.isfinite(e.high) else "inconclusive")
           for k, e in parts.items()}
    overall = inf.all_of(per.values())
    return overall, inf.decisive_threshold(overall, parts, threshold, side="at most")


def in_band(parts: dict[str, inf.Estimate], band: tuple[float, float] = BCL6_BAND) -> tuple[str, str]:
    """BCL-6: replicated if every part's interval lies inside ``band`` (ends included); contradicted if
    one lies wholly outside it; else inconclusive.

    Returns
    -------
    (verdict, decided_by)
        ``decided_by``: the deciding part nearest the band's edge (replicated) or farthest from its
        middle (otherwise).
    """
    overall = inf.all_of(inf.band_verdict(e, band) for e in parts.values())
    return overall, inf.decisive_band(overall, parts, band)


def exceeds_null(observed: float, null) -> tuple[str, float, float]:
    """BCL-7 for one corpus: ``replicated`` if the observed mean share exceeds the null's 95th
    percentile; ``contradicted`` (the rule's mirror) if it lies below the 5th; else inconclusive.

    Returns
    -------
    (verdict, p5, p95)
    """
    null = np.asarray(null, dtype=np.float64)
    p5, p95 = (float(np.percentile(null, q)) for q in (100 - BCL7_PERCENTILE, BCL7_PERCENTILE))
    if not np.isfinite(observed):
        return "inconclusive", p5, p95
    verdict = "replicated" if observed > p95 else "contradicted" if observed < p5 else "inconclusive"
    return verdict, p5, p95


def null_rule(observed: dict[str, float], nulls: dict[str, np.ndarray]) -> tuple[str, str, dict]:
    """BCL-7 over corpora (all must hold). Returns ``(verdict, decided_by, {part: (verdict, p5, p95)})``;
    ``decided_by`` is the deciding part with the smallest margin over its null's 95th percentile."""
    per = {k: exceeds_null(observed[k], nulls[k]) for k in observed}
    overall = inf.all_of(v for v, _, _ in per.values())
    decided = inf.decisive_null(overall, {k: v for k, (v, _, _) in per.items()}, observed,
                                {k: p5 for k, (_, p5, _) in per.items()}, {k: p95 for k, (_, _, p95) in per.items()})
    return overall, decided, per


def distance_gap(larger_k_first: inf.Estimate, next_k: inf.Estimate) -> inf.Estimate:
    """BCL-1: the decrease from one K to the next with the gap between their intervals: value
    ``a - b``, interval ``(a.low - b.high, a.high - b.low)`` (lower end > 0: the intervals do not
    overlap and the distance decreases)."""
    a, b = larger_k_first, next_k
    return inf.Estimate(a.value - b.value, a.low - b.high, a.high - b.low, a.n_units)


def strictly_decreasing(ests: list[inf.Estimate]) -> list[str]:
    """BCL-1 for one series (K ascending): per consecutive pair, ``replicated`` if the distance falls
    with non-overlapping intervals, ``contradicted`` if it rises with non-overlapping intervals, else
    ``inconclusive``."""
    out = []
    for a, b in zip(ests, ests[1:]):
        if a.value > b.value and a.low > b.high:
            out.append("replicated")
        elif a.value < b.value and a.high < b.low:
            out.append("contradicted")
        else:
            out.append("inconclusive")
    return out


def decreasing_rule(gaps: dict[str, inf.Estimate], verdicts: dict[str, str]) -> tuple[str, str]:
    """BCL-1 over every pair of consecutive K, metric and corpus (all must hold): ``(verdict,
    decided_by)``, the deciding pair with the smallest interval gap."""
    overall = inf.all_of(verdicts.values())

    def key(k):
        g = gaps[k]
        return g.high if overall == "contradicted" else (g.low if np.isfinite(g.low) else -np.inf)

    return overall, inf.decisive(verdicts, overall, key)


# ---------------------------------------------------------------------------------------------
# a claim's outcome on the experiment's results (one BclResult per corpus)

def corpus_sizes(results: dict[str, BclResult]) -> dict:
    """Collection and evaluation-pool sizes per corpus."""
    out = {}
    for corpus, r in results.items():
        out[f"{corpus}: collection tokens"] = r.n_positions
        out[f"{corpus}: frequency threshold (occurrences)"] = r.threshold
        out[f"{corpus}: tokens kept by the filter"] = r.n_kept
        out[f"{corpus}: evaluation pool sentences"] = r.eval_sentences
        out[f"{corpus}: evaluation pool documents"] = r.eval_documents
    return out


def setup_sizes(results: dict[str, BclResult], setups, reading: str | None = None) -> dict:
    """Clusters, shared-sentence groups, seeds, sentences, documents and scored predictions per setup."""
    out = {}
    for corpus, r in results.items():
        for s in setups:
            st = r.setups[s]
            x = intervention(st, reading)
            out[f"{corpus} {s}: K (scaled)"] = st.k
            out[f"{corpus} {s}: clusters skipped (top tokens never in the evaluation pool)"] = st.skipped
            out.update(x.sample_sizes(f"{corpus} {s}"))
    return out


def design_note(results: dict[str, BclResult], setups, reading: str | None = None) -> dict:
    """Setups whose evaluated sentences span fewer documents than claims.md's "Sample design" asks."""
    short = {f"{corpus} {s}": intervention(r.setups[s], reading).n_documents
             for corpus, r in results.items() for s in setups
             if intervention(r.setups[s], reading).n_documents < r.sizes["min_documents"]}
    return {"setups below the sample design's minimum of documents": short} if short else {}


def data_of(results: dict[str, BclResult]) -> dict:
    """What each corpus's experiment measured on."""
    return {corpus: r.data for corpus, r in results.items()}


def measured(results: dict, verdict: str, parts: dict, decided: str, name: str, unit: str, *,
             details: dict | None = None, sizes: dict | None = None, setups=(),
             reading: str | None = None) -> Outcome:
    """The claim's result: the deciding part is the headline, every part is in the details, with the
    sample sizes of the intervention ``setups`` it read (under ``reading``)."""
    first = next(iter(results.values()))
    if setups:
        details = {**(details or {}), **design_note(results, setups, reading)}
    return Outcome(verdict, parts[decided], f"{decided}: {name}", parts=dict(parts),
                   details={**{k: detail(e, unit) for k, e in parts.items()}, **(details or {})},
                   sample_sizes={**corpus_sizes(results), **(sizes or {}), **setup_sizes(results, setups, reading)},
                   seeds=list(first.seeds), data=data_of(results), decided_by=decided)


def directional_outcome(results: dict, parts: dict, name: str, unit: str, **kw) -> Outcome:
    """A directional rule over ``parts`` (every one > 0 with its interval excluding 0), the deciding
    part as the headline (:func:`measured`)."""
    verdict = directional(parts)
    return measured(results, verdict, parts, inf.decisive_directional(verdict, parts), name, unit, **kw)


def computed(results: dict) -> list[str]:
    """The alternate readings every corpus's experiment computed."""
    return sorted(set.intersection(*(set(r.readings) for r in results.values())))
