"""The result of the BCL experiment on one model and corpus (:class:`BclResult`), as typed records, with
its figure payload (:meth:`BclResult.curves`, drawn by :mod:`core.bcl.figures`) and its per-unit data
(:meth:`BclResult.samples`, for :func:`core.samples.write_samples`).

Written by :func:`core.bcl.experiment.bcl_experiment`; ``claims/test_bert_clusters.py`` reads it with
``claims/bcl_rules.py``. On disk a result is one JSON object (the experiment's cache entry):
:meth:`BclResult.from_dict` reads it and :meth:`BclResult.to_dict` writes exactly the same object back
(same keys, same order), so that the typed record and the cached JSON are one thing in two forms.

Units: every ``*_pct`` and baseline value is the % increase of the cross-entropy (nats) on a cluster's
top tokens over the unablated CE (BCL section 5.5; claims.md, BCL); distances are ``1 - cos`` (BCL
section 4, Fig. 2); neuron indices are flat, ``layer * width + index``. Readings (claims.md,
"Readings"): R3 and R4 are fields of each evaluated cluster, R5 a field of the setup and of BCL-8.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BclResult", "Clustering", "Evaluated", "Evaluation", "IndexShare", "ReadingR3", "ReadingR4",
           "Relatedness", "Setup"]

#: The baselines of the intervention (:data:`core.bcl.baselines.BASELINES`), in the payload's order.
_BASELINES = ("random", "random_layer", "random_position")

_FIELDS = ("experiment", "model", "corpus", "kind", "tier", "profile", "n_layers", "width", "n_neurons",
           "sizes", "threshold", "n_positions", "n_distinct", "n_kept", "ks", "seeds", "readings",
           "clusterings", "setups", "bcl7", "bcl8", "eval_sentences", "eval_documents", "cost", "data")


def _seeds(values) -> list[float]:
    return [float(v) for v in values]


# ------------------------------------------------------------------------------------------ clusterings

@dataclass
class Clustering:
    """One clustering of the neurons: a representation variant at one K (BCL section 4).

    Attributes
    ----------
    labels : list of int, length n_neurons
        Cluster id (0 .. K-1) of every residual neuron, flat index ``layer * width + index``.
    avg_distance, max_distance : list of (float or None), length K
        Per cluster, the average and the max pairwise ``1 - cos`` distance of its L2-normalised
        representations (BCL Fig. 2); None for a singleton.
    refined : list of list of int, or None
        Per cluster, the flat indices of the neurons kept by refinement (BCL section 4.2, Fig. 1);
        None where the K is not refined (K=20, and every variant but ``filter``).
    refine_trace : list of list of float, or None
        Per cluster, the max Euclidean distance of a member to the centre after each refinement step
        (``trace[i]``: with ``initial size - i`` members); None where ``refined`` is.
    """

    labels: list
    avg_distance: list
    max_distance: list
    refined: list | None = None
    refine_trace: list | None = None

    @classmethod
    def from_dict(cls, d: dict) -> Clustering:
        return cls(d["labels"], d["avg_distance"], d["max_distance"], d.get("refined"), d.get("refine_trace"))

    def to_dict(self) -> dict:
        out = {"labels": self.labels, "avg_distance": self.avg_distance, "max_distance": self.max_distance}
        if self.refined is not None:
            out["refined"] = self.refined
            out["refine_trace"] = self.refine_trace
        return out


# ------------------------------------------------------------------------------------------ intervention

@dataclass
class ReadingR3:
    """Reading R3 of one evaluated cluster (claims.md, "Readings"): every replaced neuron set to its own
    collection mean instead of the live per-token mean of its layer, on the same sentences.

    Attributes
    ----------
    cluster_pct : float
        % CE increase with the cluster replaced.
    baselines : dict of str to list of float
        Baseline name (:data:`core.bcl.baselines.BASELINES`) -> % CE increase per seed (length n_seeds).
    """

    cluster_pct: float
    baselines: dict

    def to_dict(self) -> dict:
        return {"cluster_pct": self.cluster_pct, "baselines": self.baselines}


@dataclass
class ReadingR4:
    """Reading R4 of one evaluated cluster (claims.md, "Readings"): ``random_position`` read as the
    cluster's indices kept, each moved to a random layer (:func:`core.bcl.baselines.random_position_kept`).

    Attributes
    ----------
    random_position : list of float, length n_seeds
        % CE increase under that baseline, per seed.
    """

    random_position: list

    def to_dict(self) -> dict:
        return {"baselines": {"random_position": self.random_position}}


@dataclass
class Evaluated:
    """The causal intervention on one cluster (BCL section 5.5; :class:`core.bcl.intervention.ClusterScore`
    with the documents of its sentences).

    Attributes
    ----------
    cluster : int
        Cluster id within the setup's clustering.
    size : int
        Neurons in the cluster.
    n_sentences, n_targets : int
        Evaluation sentences used and top-token predictions scored.
    base_loss : float
        Unablated CE on the targets, nats.
    cluster_pct : float
        % CE increase with the cluster's neurons replaced (the live per-token mean of their layer).
    baselines : dict of str to list of float
        Baseline name -> % CE increase per seed (length n_seeds; :data:`core.bcl.baselines.SEEDS`).
    rows : list of int
        The sentences, indices into the evaluation pool.
    documents : list of int
        The distinct source documents of those sentences, ascending.
    r3 : ReadingR3 or None
        Reading R3 on the same sentences; None where the run did not compute it.
    r4 : ReadingR4 or None
        Reading R4 on the same sentences; None where the run did not compute it.
    """

    cluster: int
    size: int
    n_sentences: int
    n_targets: int
    base_loss: float
    cluster_pct: float
    baselines: dict
    rows: list
    documents: list
    r3: ReadingR3 | None = None
    r4: ReadingR4 | None = None

    @classmethod
    def from_dict(cls, d: dict) -> Evaluated:
        alt = d.get("readings", {})
        r3 = ReadingR3(alt["R3"]["cluster_pct"], alt["R3"]["baselines"]) if "R3" in alt else None
        r4 = ReadingR4(alt["R4"]["baselines"]["random_position"]) if "R4" in alt else None
        return cls(d["cluster"], d["size"], d["n_sentences"], d["n_targets"], d["base_loss"], d["cluster_pct"],
                   d["baselines"], d["rows"], d["documents"], r3, r4)

    def to_dict(self) -> dict:
        alt = {}
        if self.r3 is not None:
            alt["R3"] = self.r3.to_dict()
        if self.r4 is not None:
            alt["R4"] = self.r4.to_dict()
        return {"cluster": self.cluster, "size": self.size, "n_sentences": self.n_sentences,
                "n_targets": self.n_targets, "base_loss": self.base_loss, "cluster_pct": self.cluster_pct,
                "baselines": self.baselines, "rows": self.rows, "readings": alt, "documents": self.documents}


@dataclass
class Evaluation:
    """The intervention on a setup's sampled clusters with one choice of top tokens (reading R5's own,
    claims.md "Readings"; the primary's are the same fields of :class:`Setup`).

    Attributes
    ----------
    evaluated : list of Evaluated, length n_evaluated
        The clusters evaluated (sampled, with at least one sentence), by ascending cluster id.
    groups : list of int, length n_evaluated
        Shared-sentence component of each evaluated cluster (the bootstrap's unit: claims.md, "Intervals").
    doc_groups : list of int, length n_evaluated
        Shared-document component of each evaluated cluster.
    n_sentences, n_documents : int
        Distinct sentences and source documents of the union of the evaluated clusters' sentences.
    topped_up : int
        Sentences added to reach the profile's minimum of documents
        (:func:`core.bcl.sentences.select_sentences`).
    skipped : int
        Sampled clusters left without a sentence.
    top_tokens : list of list of str, length n_clusters
        Every cluster's top tokens (10, as strings), by cluster id.
    """

    evaluated: list
    groups: list
    doc_groups: list
    n_sentences: int
    n_documents: int
    topped_up: int
    skipped: int
    top_tokens: list

    @classmethod
    def from_dict(cls, d: dict) -> Evaluation:
        return cls([Evaluated.from_dict(e) for e in d["evaluated"]], d["groups"], d["doc_groups"],
                   d["n_sentences"], d["n_documents"], d["topped_up"], d["skipped"], d["top_tokens"])

    def to_dict(self) -> dict:
        return {"evaluated": [e.to_dict() for e in self.evaluated], "groups": self.groups,
                "doc_groups": self.doc_groups, "n_sentences": self.n_sentences, "n_documents": self.n_documents,
                "topped_up": self.topped_up, "skipped": self.skipped, "top_tokens": self.top_tokens}


@dataclass
class Setup:
    """One setup of the intervention (BCL Table 3): a post-processing method at one K, its clusters'
    top tokens and the clusters evaluated, under the primary reading, with reading R5 beside it.

    Attributes
    ----------
    method : str
        ``filter`` (and, on the ``paper`` profile, ``tfidf``, ``smooth``) or ``refine`` (filter's
        clusters refined).
    k_paper : int
        K as in the paper (50 or 200).
    k : int
        K scaled to the model (:func:`core.bcl.neuron_clusters.scaled_k`).
    n_clusters : int
        Clusters of the clustering (K, or the refined clusters).
    evaluated, groups, doc_groups, n_sentences, n_documents, topped_up, top_tokens
        As in :class:`Evaluation`, for the primary top tokens.
    skipped : int
        Clusters whose top tokens never occur in the evaluation pool (not eligible).
    not_sampled : int
        Eligible clusters left out by the profile's ``max_clusters`` sample.
    sizes : list of int, length n_clusters
        Neurons per cluster.
    r5 : Evaluation or None
        Reading R5 (top tokens from the sum of the raw rows: own sentences, own groups); None where the
        run did not compute it.
    """

    method: str
    k_paper: int
    k: int
    n_clusters: int
    evaluated: list
    groups: list
    doc_groups: list
    n_sentences: int
    n_documents: int
    topped_up: int
    skipped: int
    not_sampled: int
    sizes: list
    top_tokens: list
    r5: Evaluation | None = None

    @property
    def name(self) -> str:
        """``<method>-<k_paper>``, e.g. ``filter-200``."""
        return f"{self.method}-{self.k_paper}"

    @classmethod
    def from_dict(cls, d: dict) -> Setup:
        r5 = d.get("readings", {}).get("R5")
        return cls(d["method"], d["k_paper"], d["k"], d["n_clusters"],
                   [Evaluated.from_dict(e) for e in d["evaluated"]], d["groups"], d["doc_groups"],
                   d["n_sentences"], d["n_documents"], d["topped_up"], d["skipped"], d["not_sampled"],
                   d["sizes"], d["top_tokens"], None if r5 is None else Evaluation.from_dict(r5))

    def to_dict(self) -> dict:
        return {"method": self.method, "k_paper": self.k_paper, "k": self.k, "n_clusters": self.n_clusters,
                "evaluated": [e.to_dict() for e in self.evaluated], "groups": self.groups,
                "doc_groups": self.doc_groups, "n_sentences": self.n_sentences, "n_documents": self.n_documents,
                "topped_up": self.topped_up, "skipped": self.skipped, "not_sampled": self.not_sampled,
                "sizes": self.sizes, "top_tokens": self.top_tokens,
                "readings": {} if self.r5 is None else {"R5": self.r5.to_dict()}}

    def table_row(self) -> dict:
        """The setup's row of the Table 3 analogue (:mod:`core.bcl.figures`): mean % CE increase over
        the evaluated clusters of the cluster and of each baseline (seeds averaged first; None without
        an evaluated cluster), and the three clusters with the largest increase."""
        ev = self.evaluated
        return {
            "method": self.method, "k_paper": self.k_paper, "k": self.k, "n_clusters": self.n_clusters,
            "skipped": self.skipped, "evaluated": len(ev), "n_sentences": self.n_sentences,
            "n_documents": self.n_documents,
            "cluster": float(np.mean([e.cluster_pct for e in ev])) if ev else None,
            **{b: (float(np.mean([np.mean(e.baselines[b]) for e in ev])) if ev else None) for b in _BASELINES},
            "best": [{"cluster": e.cluster, "cluster_pct": e.cluster_pct, "top_tokens": self.top_tokens[e.cluster]}
                     for e in sorted(ev, key=lambda e: -e.cluster_pct)[:3]],
        }


# ------------------------------------------------------------------------------------------ BCL-7, BCL-8

@dataclass
class IndexShare:
    """BCL-7 (BCL section 7.3): index sharing across layers, K=50 (scaled), filter.

    Attributes
    ----------
    per_cluster : list of float, length K
        Per cluster, the share of its neurons whose index also occurs in another layer of the cluster
        (fraction in [0, 1]; NaN for a cluster without neurons to compare).
    observed : float
        The mean of ``per_cluster`` over finite values, fraction.
    null : list of float, length n_permutations (1,000)
        The mean share under each layer-preserving permutation of the labels, fraction.
    """

    per_cluster: list
    observed: float
    null: list

    def to_dict(self) -> dict:
        return {"per_cluster": self.per_cluster, "observed": self.observed, "null": self.null}


@dataclass
class Relatedness:
    """BCL-8 (BCL Tables 1 and 4): embedding relatedness of the top words of every K=200 (scaled)
    filter cluster (:func:`core.bcl.relatedness.token_relatedness`; GloVe cosines).

    Attributes
    ----------
    cluster : list of int, length n_used
        The clusters used (at least 2 distinct words).
    observed, random, diff : list of float, length n_used
        Mean pairwise cosine of the cluster's distinct top words, the same for random size-matched word
        sets (mean over ``n_random_sets``), and ``observed - random``.
    n_mapped, n_words : list of int, length n_clusters
        Per cluster, top tokens mapped to an embedding word and distinct words among them.
    n_vocab_words : int
        Distinct words of the filtered vocabulary (the random sets' pool).
    n_vocab_with_vector : int or None
        Filtered tokens with an embedding vector; on the primary reading only (None on R5's).
    r5 : Relatedness or None
        Reading R5 (top tokens from the sum of the raw rows), on the primary reading only; None where
        the run did not compute it.
    """

    cluster: list
    observed: list
    random: list
    diff: list
    n_mapped: list
    n_words: list
    n_vocab_words: int
    n_vocab_with_vector: int | None = None
    r5: Relatedness | None = None

    @classmethod
    def from_dict(cls, d: dict) -> Relatedness:
        r5 = d.get("readings", {}).get("R5")
        return cls(d["cluster"], d["observed"], d["random"], d["diff"], d["n_mapped"], d["n_words"],
                   d["n_vocab_words"], d.get("n_vocab_with_vector"), None if r5 is None else cls.from_dict(r5))

    def to_dict(self) -> dict:
        out = {"cluster": self.cluster, "observed": self.observed, "random": self.random, "diff": self.diff,
               "n_mapped": self.n_mapped, "n_words": self.n_words, "n_vocab_words": self.n_vocab_words}
        if self.n_vocab_with_vector is not None:  # the primary reading, which carries the alternates
            out["n_vocab_with_vector"] = self.n_vocab_with_vector
            out["readings"] = {} if self.r5 is None else {"R5": self.r5.to_dict()}
        return out


# ------------------------------------------------------------------------------------------ the result

@dataclass
class BclResult:
    """Everything the BCL claims and figures read, for one model and corpus.

    Attributes
    ----------
    model, corpus : str
        The zoo model and the text corpus (small tier: ``news``, ``wiki``).
    kind : {"masked", "causal"}
        Masked-token or next-token loss.
    tier, profile : str
        The model's tier and the profile whose sizes ran.
    n_layers, width : int
        Residual layers (embedding output included) and neurons per layer; ``n_neurons = n_layers * width``.
    n_neurons : int
    sizes : dict
        The profile's BCL sizes (:data:`core.bcl.experiment.BCL_SIZES`, ``methods`` as a list).
    threshold : int
        The frequency filter's threshold, occurrences (BCL section 3).
    n_positions, n_distinct, n_kept : int
        Collection tokens, distinct token ids among them, and ids kept by the filter.
    ks : dict of int to int
        Paper K (20, 50, 200) -> K scaled to the model.
    seeds : list of int
        The baselines' seeds (:data:`core.bcl.baselines.SEEDS`).
    readings : list of str
        The alternate readings computed (sorted; claims.md, "Readings").
    clusterings : dict of str to (dict of int to Clustering)
        Representation variant (``filter``, ...) -> paper K -> its clustering.
    setups : dict of str to Setup
        ``<method>-<k_paper>`` -> the setup's intervention (BCL Table 3), in run order.
    bcl7 : IndexShare
    bcl8 : Relatedness
        With its R5 reading as ``bcl8.r5``.
    eval_sentences, eval_documents : int
        Sentences of the evaluation pool and their distinct documents.
    cost : dict
        ``seconds`` (float, per pass), ``sentences`` and ``conditions`` (int, per reading) of the
        intervention.
    data : dict of str to str
        What the collection and the evaluation ran on, in words.
    """

    model: str
    corpus: str
    kind: str
    tier: str
    profile: str
    n_layers: int
    width: int
    n_neurons: int
    sizes: dict
    threshold: int
    n_positions: int
    n_distinct: int
    n_kept: int
    ks: dict
    seeds: list
    readings: list
    clusterings: dict
    setups: dict
    bcl7: IndexShare
    bcl8: Relatedness
    eval_sentences: int
    eval_documents: int
    cost: dict
    data: dict

    @classmethod
    def from_dict(cls, d: dict) -> BclResult:
        """The record of a result as :meth:`to_dict` writes it (the cache entry's JSON object).

        Raises
        ------
        ValueError
            If ``d`` is not a BCL result (``experiment`` other than ``"bcl"``) or lacks a field, naming
            what was expected and what came.
        """
        if not isinstance(d, dict) or d.get("experiment") != "bcl":
            got = d.get("experiment") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"BclResult.from_dict: expected a BCL result (experiment 'bcl'), got {got!r}")
        missing = [k for k in _FIELDS if k not in d]
        if missing:
            raise ValueError(f"BclResult.from_dict: a BCL result needs {', '.join(_FIELDS)}; missing "
                             f"{', '.join(missing)}")
        b7 = d["bcl7"]
        return cls(
            model=d["model"], corpus=d["corpus"], kind=d["kind"], tier=d["tier"], profile=d["profile"],
            n_layers=d["n_layers"], width=d["width"], n_neurons=d["n_neurons"], sizes=d["sizes"],
            threshold=d["threshold"], n_positions=d["n_positions"], n_distinct=d["n_distinct"],
            n_kept=d["n_kept"], ks={int(k): v for k, v in d["ks"].items()}, seeds=d["seeds"],
            readings=d["readings"],
            clusterings={m: {int(k): Clustering.from_dict(c) for k, c in per.items()}
                         for m, per in d["clusterings"].items()},
            setups={name: Setup.from_dict(s) for name, s in d["setups"].items()},
            bcl7=IndexShare(b7["per_cluster"], b7["observed"], b7["null"]),
            bcl8=Relatedness.from_dict(d["bcl8"]), eval_sentences=d["eval_sentences"],
            eval_documents=d["eval_documents"], cost=d["cost"], data=d["data"])

    def to_dict(self) -> dict:
        """The JSON object of the cache entry (the inverse of :meth:`from_dict`, keys in the same order)."""
        return {
            "experiment": "bcl", "model": self.model, "corpus": self.corpus, "kind": self.kind,
            "tier": self.tier, "profile": self.profile, "n_layers": self.n_layers, "width": self.width,
            "n_neurons": self.n_neurons, "sizes": self.sizes, "threshold": self.threshold,
            "n_positions": self.n_positions, "n_distinct": self.n_distinct, "n_kept": self.n_kept,
            "ks": self._ks(), "seeds": self.seeds, "readings": self.readings,
            "clusterings": {m: {str(k): c.to_dict() for k, c in per.items()}
                            for m, per in self.clusterings.items()},
            "setups": {name: s.to_dict() for name, s in self.setups.items()},
            "bcl7": self.bcl7.to_dict(), "bcl8": self.bcl8.to_dict(), "eval_sentences": self.eval_sentences,
            "eval_documents": self.eval_documents, "cost": self.cost, "data": self.data,
        }

    def _ks(self) -> dict:
        return {str(k): v for k, v in self.ks.items()}

    # -------------------------------------------------------------------------------- payloads

    def curves(self) -> dict:
        """The figure payload of :func:`core.bcl.figures.render` (``"experiment": "bcl"``; its keys are
        listed there): Fig. 2's distances, the Table 3 analogue per setup, Fig. 5's positions of the
        four largest K=50 clusters and Fig. 1's refinement traces of 8 random K=50 clusters (seed 0)."""
        filt = self.clusterings["filter"]
        k50 = filt[50]
        rng = np.random.default_rng(0)
        labels50 = np.asarray(k50.labels)
        sizes50 = np.bincount(labels50, minlength=self.ks[50])
        examples = [int(c) for c in np.argsort(-sizes50, kind="stable")[:4]]
        trace_ids = sorted(rng.choice(len(k50.refine_trace), size=min(8, len(k50.refine_trace)),
                                      replace=False).tolist())
        return {
            "experiment": "bcl", "model": self.model, "corpus": self.corpus, "kind": self.kind,
            "profile": self.profile, "n_layers": self.n_layers, "width": self.width, "ks": self._ks(),
            "threshold": self.threshold, "n_positions": self.n_positions, "n_kept": self.n_kept,
            "distances": {str(k): {"avg": filt[k].avg_distance, "max": filt[k].max_distance} for k in sorted(filt)},
            "table": {name: s.table_row() for name, s in self.setups.items()},
            "positions": {str(c): np.flatnonzero(labels50 == c).tolist() for c in examples},
            "refine_trace": {str(c): k50.refine_trace[c] for c in trace_ids},
            "refined_sizes": [len(m) for m in k50.refined],
        }

    def samples(self) -> tuple[dict, dict, dict]:
        """Per-unit data for :func:`core.samples.write_samples`: ``(arrays, schema, meta)``.

        One row per (setup, reading, cluster, condition, seed) of the causal interventions (BCL section
        5.5): the % increase of the CE on the cluster's top tokens, with the cluster's sentence group (the
        unit the BCL-2..5 bootstrap resamples: clusters evaluated on shared sentences move together).
        ``reading`` is ``primary`` or the alternate (R3, R4: same sentences; R5: own top tokens and
        sentences); ``seed`` is -1 for the cluster itself. Also BCL-7's per-cluster index share and its
        permutation null.
        """
        rows: dict[str, list] = {k: [] for k in ("setup", "reading", "cluster", "group", "condition", "seed",
                                                 "pct_increase", "base_loss", "n_sentences", "n_targets", "size")}

        def add(setup, reading, sc, group, condition, seed, pct):
            for k, v in (("setup", setup), ("reading", reading), ("cluster", sc.cluster), ("group", group),
                         ("condition", condition), ("seed", seed), ("pct_increase", pct),
                         ("base_loss", sc.base_loss), ("n_sentences", sc.n_sentences),
                         ("n_targets", sc.n_targets), ("size", sc.size)):
                rows[k].append(v)

        def evaluated(setup, reading, ev, pick):
            for sc, group in zip(ev.evaluated, ev.groups):
                cluster_pct, baselines = pick(sc)
                if cluster_pct is not None:
                    add(setup, reading, sc, group, "cluster", -1, cluster_pct)
                for condition, values in baselines.items():
                    for seed, pct in enumerate(values):
                        add(setup, reading, sc, group, condition, seed, pct)

        for name, setup in self.setups.items():
            evaluated(name, "primary", setup, lambda sc: (sc.cluster_pct, sc.baselines))
            evaluated(name, "R3", setup, lambda sc: (None, {}) if sc.r3 is None else (sc.r3.cluster_pct,
                                                                                      sc.r3.baselines))
            evaluated(name, "R4", setup, lambda sc: (None, {}) if sc.r4 is None else (
                None, {"random_position": sc.r4.random_position}))
            if setup.r5 is not None:
                evaluated(name, "R5", setup.r5, lambda sc: (sc.cluster_pct, sc.baselines))
        arrays = {"setup": np.asarray(rows["setup"], dtype=str), "reading": np.asarray(rows["reading"], dtype=str),
                  "condition": np.asarray(rows["condition"], dtype=str),
                  **{k: np.asarray(rows[k], dtype=np.int64) for k in ("cluster", "group", "seed", "n_sentences",
                                                                      "n_targets", "size")},
                  "pct_increase": np.asarray(rows["pct_increase"], dtype=np.float64),
                  "base_loss": np.asarray(rows["base_loss"], dtype=np.float64),
                  "index_share": np.asarray(self.bcl7.per_cluster, dtype=np.float64),
                  "index_share_null": np.asarray(self.bcl7.null, dtype=np.float64)}
        r = ["row"]
        schema = {"setup": (r, "post-processing and K of the paper (e.g. filter-200)"),
                  "reading": (r, "primary, or the alternate reading (claims.md, Readings) the row belongs to"),
                  "condition": (r, "cluster, or the baseline: random, random_layer, random_position"),
                  "cluster": (r, "cluster id within the setup's clustering"),
                  "group": (r, "sentence group: clusters sharing sentences (the bootstrap's cluster unit)"),
                  "seed": (r, "baseline seed (-1 for the cluster itself)"),
                  "n_sentences": (r, "evaluation sentences of the cluster"),
                  "n_targets": (r, "scored top-token predictions"),
                  "size": (r, "neurons in the cluster"),
                  "pct_increase": (r, "CE increase on the cluster's top tokens, percent of the unablated CE"),
                  "base_loss": (r, "unablated CE on those targets, nats"),
                  "index_share": (["cluster50"], "BCL-7: share of a K=50 (scaled, filter) cluster's neurons "
                                                 "whose index recurs in another layer of the cluster"),
                  "index_share_null": (["permutation"], "BCL-7: mean share under the layer-preserving "
                                                        "permutation null")}
        return arrays, schema, {"corpus": self.corpus, "kind": self.kind, "ks": self._ks()}
