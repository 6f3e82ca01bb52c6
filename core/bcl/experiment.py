"""The whole BCL experiment (Zhang, Gu, Yao) on a zoo model and corpus, results cached on disk.

:func:`bcl_experiment` runs everything on one model and corpus: representations (cached), the
frequency filter, post-processing, clustering for K in {20, 50, 200} scaled to the model, refinement,
the intervention for every setup (cached; :mod:`core.bcl.intervention` on the sentences of
:mod:`core.bcl.sentences`), and the statistics of BCL-7 and BCL-8 (:mod:`core.bcl.relatedness`).

Readings (claims.md, "Readings"), computed when asked (:data:`BCL_READINGS`): R3 replaces with each
neuron's own collection mean; R4 reads ``random_position`` as the cluster's indices kept, each moved
to a random layer (:func:`core.bcl.baselines.random_position_kept`); R5 takes the top tokens from the
sum of the cluster's raw rows. R3 and R4 add conditions to the primary's batched pass on the same
sentences; R5 has its own top tokens, hence its own sentences and pass.

Sample sizes: :attr:`core.profiles.Profile.bcl` (:class:`core.profiles.BclSizes`); corpora per tier:
:data:`BCL_CORPORA`; cache versions: :data:`BCL_VERSION`, :data:`REPR_VERSION`.
"""
from __future__ import annotations

import json

import numpy as np
import torch
from tqdm.auto import tqdm

from core.batching import GPU_BUDGET
from core.bcl.baselines import BASELINES, SEEDS
from core.bcl.intervention import intervene
from core.bcl.relatedness import token_relatedness
from core.bcl.result import BclResult
from core.bcl.sentences import cluster_sentences, select_sentences
from core.cache import CacheEntry, atomic_write_json, cache_entry, cached_experiment, one_at_a_time
from core.errors import check_name
from core.profiles import BclSizes
from core.timing import stage

PAPER_KS: tuple[int, ...] = (20, 50, 200)
INTERVENTION_KS: tuple[int, ...] = (50, 200)
#: Bumped whenever a change alters what a cached BCL result holds (2: claims.md revision 2, the live
#: per-token replacement value, sentences drawn apart and spread over documents, BCL-8 deduplicated
#: words, readings R3-R5).
BCL_VERSION = 2
#: The version of the representation and clustering caches (revision 2 left both unchanged).
REPR_VERSION = 1
#: The readings of claims.md that the BCL experiment computes.
BCL_READINGS: tuple[str, ...] = ("R3", "R4", "R5")

#: BCL data per tier: the small tier's two corpora, the paper's C4 and Yelp on the full tier.
BCL_CORPORA = {"small": ("news", "wiki"), "full": ("allenai/c4", "Yelp/yelp_review_full")}



def corpus_windows(corpus: str, tokenizer, split: str, n_tokens: int, seq_len: int, max_doc_tokens: int):
    """Windows of BCL's text ``corpus`` (``news``, ``wiki``, C4, Yelp) in ``split``:
    :func:`core.data.windows.text_windows` with documents cut at ``max_doc_tokens``; LongTensor of shape
    (n, seq_len). Raises :class:`core.errors.MissingAssetError` for a Hub corpus not in the local cache."""
    from core.data.windows import text_windows

    # the full tier's C4 and Yelp are Hub text subsets of core.data: read from the local HF cache (or
    # the Hub with HF_HUB_OFFLINE=0), else MissingAssetError naming the Hub id
    return text_windows(corpus, tokenizer, split=split, n_tokens=n_tokens, seq_len=seq_len,
                        max_doc_tokens=max_doc_tokens)


def eval_pool(corpus: str, tokenizer, sizes: BclSizes, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The evaluation pool and the source document of every token (``core.data.windows.text_windows(...,
    with_docs=True)``): ``windows`` and ``docs``, both LongTensor of shape (n, seq), docs -1 at special
    tokens. Documents are cut at ``eval_max_doc_tokens`` so that the pool spreads over many."""
    from core.data.windows import text_windows

    return text_windows(corpus, tokenizer, split="eval", n_tokens=sizes.eval_tokens, seq_len=seq_len,
                        max_doc_tokens=sizes.eval_max_doc_tokens, with_docs=True)


def _representations(lm, corpus: str, sizes: BclSizes, identity: dict, progress: bool):
    from core.bcl.representations import Representations, token_representations

    seq_len = min(sizes.seq_len, lm.max_length or sizes.seq_len)
    entry = cache_entry("bcl", "bcl-repr", REPR_VERSION, identity, dict(
        corpus=corpus, split="collect", n_tokens=sizes.collect_tokens, seq_len=seq_len,
        max_doc_tokens=sizes.max_doc_tokens), label=f"repr-{lm.name}", suffix=".npz")

    def compute():
        windows = corpus_windows(corpus, lm.tokenizer, "collect", sizes.collect_tokens, seq_len,
                           sizes.max_doc_tokens)
        pad = lm.tokenizer.pad_token_id
        with stage("bcl representations", f"{lm.name} on {corpus}", on=lm.model):
            rep = token_representations(lm.model, windows, ignore_ids=() if pad is None else (pad,),
                                        batch_size=sizes.batch_size if lm.device.type == "cpu" else GPU_BUDGET,
                                        progress=progress,
                                        desc=f"{lm.name}: BCL representations ({corpus})")
        rep.info = {"corpus": corpus, "split": "collect", "windows": int(windows.shape[0]), "seq_len": seq_len}
        return rep

    # a damaged file is named and recomputed
    rep = cached_experiment(entry, compute, load=Representations.load, save=lambda r, path: r.save(path))
    return rep, entry.key


def read_json(path):
    """A cached BCL JSON entry as a dict (errors as ``json.load``'s: a damaged entry is rebuilt)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _variants(rep, keep: np.ndarray, methods, tokenizer, token_cols):
    """Representation variants (before L2 normalisation), neurons x filtered tokens."""
    from core.bcl import neuron_clusters as nc

    base = rep.mean[:, keep]
    out = {"filter": base}
    if "tfidf" in methods:
        out["tfidf"] = nc.tfidf(base)
    if "smooth" in methods:
        from core.bcl.embeddings import nearest_neighbours, token_vectors

        _, has, vec = token_vectors(tokenizer, token_cols)
        nbr, sim = nearest_neighbours(vec, has, k=nc.N_NEIGHBOURS)
        out["smooth"] = nc.smooth(base, nbr, sim, lam=nc.SMOOTH_LAMBDA)
    return out


def _clusterings(variants: dict, ks: dict, entry: CacheEntry, progress: bool) -> dict:
    """Clusterings of every variant (cached as JSON at ``entry``): labels, distances, refinement."""
    from core.bcl import neuron_clusters as nc

    def compute() -> dict:
        out = {}
        for method, rep in tqdm(variants.items(), desc="BCL clustering", disable=not progress, leave=False):
            x = nc.normalize_rows(rep)
            want = PAPER_KS if method == "filter" else INTERVENTION_KS
            refine_ks = [ks[k] for k in INTERVENTION_KS] if method == "filter" else []
            res = nc.cluster_neurons(x, [ks[k] for k in want], refine_ks=refine_ks)
            out[method] = {str(k): {
                "labels": res.labels[ks[k]].tolist(),
                "avg_distance": [None if np.isnan(v) else float(v) for v in res.avg_distance[ks[k]]],
                "max_distance": [None if np.isnan(v) else float(v) for v in res.max_distance[ks[k]]],
            } for k in want}
            for k in INTERVENTION_KS:
                if ks[k] in res.refined:
                    out[method][str(k)]["refined"] = [r.members.tolist() for r in res.refined[ks[k]]]
                    out[method][str(k)]["refine_trace"] = [r.max_distance for r in res.refined[ks[k]]]
        return out

    # a damaged file is named and recomputed
    return cached_experiment(entry, compute, load=read_json, save=lambda out, path: atomic_write_json(path, out))


def _token_strings(tok, ids) -> list[str]:
    tokens = tok.convert_ids_to_tokens([int(i) for i in ids])
    return [tok.convert_tokens_to_string([t]).strip() or t for t in tokens]


def _evaluate(lm, pool, docs, groups, top_ids, chosen, sizes: BclSizes, *, k, rep, readings, progress_rows, check):
    """Intervene on the ``chosen`` clusters with sentences drawn apart
    (:func:`core.bcl.sentences.select_sentences`); ``check(n_documents)`` fails when their union spans
    too few documents (claims.md, Sample design)."""
    tok = lm.tokenizer
    sel = select_sentences(pool, docs, [top_ids[c] for c in chosen], kind=lm.kind,
                           max_sentences=sizes.max_sentences, seed=k,
                           min_documents=sizes.min_documents)
    check(sel.n_documents)
    scores, kept = [], []
    for i, c in enumerate(chosen):
        if sel.rows[i].size == 0:
            continue
        sc = intervene(lm.model, kind=lm.kind, windows=pool, cluster=groups[c], top_ids=top_ids[c],
                       mask_id=tok.mask_token_id, n_layers=rep.n_layers, width=rep.width, rows=sel.rows[i],
                       salt=(k, c), batch_rows=sizes.batch_rows, cluster_id=c, readings=readings,
                       neuron_mean=rep.neuron_mean)
        progress_rows.append(sc.n_sentences)
        scores.append(sc.as_dict())
        kept.append(i)
    docs_np = docs.numpy()
    for sc in scores:
        d = docs_np[sc["rows"]]
        sc["documents"] = np.unique(d[d >= 0]).tolist()
    return {"evaluated": scores, "groups": sel.groups[kept].tolist(),
            "doc_groups": sel.doc_groups[kept].tolist(), "n_sentences": sel.n_sentences, "n_documents": sel.n_documents, "topped_up": sel.topped_up,
            "skipped": len(chosen) - len(scores)}


@one_at_a_time("bcl", lambda name, corpus, profile, **_: f"experiment-{name}-{corpus}-{profile.name}")
def bcl_experiment(name: str, corpus: str, profile, *, device: str = "cpu", progress: bool = True,
                   readings=frozenset()) -> BclResult:
    """The BCL experiment on one zoo model and corpus, cached on disk.

    Parameters
    ----------
    name : str
        A masked or causal LM of the zoo.
    corpus : str
        A text subset (small tier: ``news`` or ``wiki``) or, on the full tier, a Hub dataset.
    profile : core.profiles.Profile
        Its :attr:`~core.profiles.Profile.bcl` holds the BCL sizes.
    readings : iterable of str
        Alternate readings to compute beside the primary one (claims.md, "Readings"); the BCL ones
        (:data:`BCL_READINGS`) are computed, other valid ids (MOD's) are ignored. Part of the cache key.

    Returns
    -------
    core.bcl.result.BclResult
        The model and corpus facts and sizes, the clusterings per variant and K, the intervention's
        setups (with readings R3/R4 per evaluated cluster and R5 per setup), BCL-7 and BCL-8. The cache
        entry is its :meth:`~core.bcl.result.BclResult.to_dict` (JSON).

    Raises
    ------
    UnknownNameError
        For a reading id that is not in :data:`core.readings.READINGS`.
    MissingAssetError
        When the model, its data or GloVe is not available.
    core.bcl.neuron_clusters.InsufficientTokensError
        When the collection corpus leaves no token above the frequency threshold.
    """
    from core.bcl import neuron_clusters as nc
    from core.zoo.models import load_model, model_identity
    from core.readings import READINGS

    readings = frozenset(check_name("reading", r, READINGS) for r in readings) & frozenset(BCL_READINGS)
    sizes = profile.sizes_of("bcl")
    lm = load_model(name, device=device)
    check_name("model kind", lm.kind, ("masked", "causal"))
    rep, rep_key = _representations(lm, corpus, sizes, model_identity(lm), progress)
    tok = lm.tokenizer
    threshold = nc.frequency_threshold(rep.n_positions)
    keep = nc.frequency_filter(rep.token_ids, rep.counts, special_ids=tok.all_special_ids,
                               threshold=threshold, n_positions=rep.n_positions)
    cols = rep.token_ids[keep]
    ks = {k: nc.scaled_k(k, rep.n_neurons) for k in PAPER_KS}
    methods = tuple(sizes.methods)
    entry = cache_entry("bcl", "bcl", BCL_VERSION, rep_key, dict(
        sizes=sizes.to_dict(), ks=ks, threshold=threshold, refine=nc.REFINE_THRESHOLD, lam=nc.SMOOTH_LAMBDA,
        seeds=SEEDS,
        device=str(lm.device.type), readings=sorted(readings)), label=f"result-{name}-{corpus}", suffix=".json")
    # a damaged entry is named and rebuilt
    return cached_experiment(entry, lambda: _compute(lm, name, corpus, profile, sizes, readings, rep, rep_key, keep,
                                                     cols, ks, methods, threshold, progress),
                             load=lambda path: BclResult.from_dict(read_json(path)),
                             save=lambda r, path: atomic_write_json(path, r.to_dict()), note=name)


def _compute(lm, name, corpus, profile, sizes: BclSizes, readings, rep, rep_key, keep, cols, ks, methods, threshold,
             progress) -> BclResult:
    """The BCL experiment's result (what :func:`bcl_experiment` caches)."""
    import time

    from core.bcl import neuron_clusters as nc
    from core.bcl.embeddings import token_vectors

    tok = lm.tokenizer
    variants = _variants(rep, keep, methods, tok, cols)
    # keyed on what the clustering depends on only, so that readings and evaluation sizes reuse it
    with stage("bcl clustering", f"{name} on {corpus}", on="cpu"):
        clusterings = _clusterings(variants, ks, cache_entry(
            "bcl", "bcl-clusters", REPR_VERSION, rep_key, dict(ks=ks, threshold=threshold, refine=nc.REFINE_THRESHOLD,
                                                               lam=nc.SMOOTH_LAMBDA, methods=methods),
            label="clusters", suffix=".json"), progress)
    normalized = {m: nc.normalize_rows(v) for m, v in variants.items()}

    seq = min(sizes.sentence_len, lm.max_length or sizes.sentence_len)
    pool, docs = eval_pool(corpus, tok, sizes, seq)

    def check(n_documents: int, setup: str) -> None:
        """claims.md, Sample design: fail, naming the set, below the profile's minimum of documents."""
        if hasattr(profile, "check_documents"):
            profile.check_documents(n_documents, f"BCL {name} on {corpus}, setup {setup}: the union of the "
                                                  f"evaluated clusters' sentences")

    setups = {}
    setup_list = [(m, k) for k in INTERVENTION_KS for m in (*methods, "refine")]
    timed = stage("bcl interventions", f"{name} on {corpus}", on=lm.model).start()
    bar = tqdm(total=len(setup_list), desc=f"{name}: BCL intervention ({corpus})", disable=not progress)
    cost = {"seconds": {"primary+R3+R4": 0.0, "R5": 0.0}, "sentences": {"primary": 0, "R5": 0},
            "conditions": {"primary": 2 + len(BASELINES) * len(SEEDS),
                           "R3": (1 + len(BASELINES) * len(SEEDS)) if "R3" in readings else 0,
                           "R4": len(SEEDS) if "R4" in readings else 0,
                           "R5": 2 + len(BASELINES) * len(SEEDS) if "R5" in readings else 0}}
    for method, k in setup_list:
        base = "filter" if method == "refine" else method
        entry = clusterings[base][str(k)]
        if method == "refine":
            groups = [np.asarray(g, dtype=np.int64) for g in entry["refined"]]
        else:
            groups = nc.members(np.asarray(entry["labels"]))
        top_ids = [cols[nc.top_tokens(normalized[base], g)] for g in groups]
        occurs = [cluster_sentences(pool, t, kind=lm.kind, max_sentences=1)[0].numel() > 0 for t in top_ids]
        eligible = [c for c in range(len(groups)) if occurs[c]]
        rng = np.random.default_rng([0, k])
        cap = sizes.max_clusters
        chosen = sorted(rng.choice(eligible, size=cap, replace=False).tolist()) \
            if cap is not None and len(eligible) > cap else eligible
        t0, rows = time.perf_counter(), []
        ev = _evaluate(lm, pool, docs, groups, top_ids, chosen, sizes, k=k, rep=rep,
                       readings=readings & {"R3", "R4"}, progress_rows=rows,
                       check=lambda n: check(n, f"{method}-{k}"))
        cost["seconds"]["primary+R3+R4"] += time.perf_counter() - t0
        cost["sentences"]["primary"] += sum(rows)
        setups[f"{method}-{k}"] = {
            "method": method, "k_paper": k, "k": ks[k], "n_clusters": len(groups), **ev,
            "skipped": len(groups) - len(eligible), "not_sampled": len(eligible) - len(chosen),
            "sizes": [int(g.size) for g in groups],
            "top_tokens": [_token_strings(tok, ids) for ids in top_ids],
            "readings": {},
        }
        if "R5" in readings:  # top tokens from the sum of the raw rows: own sentences, own pass
            top5 = [cols[nc.top_tokens(variants[base], g, reduce="sum")] for g in groups]
            t0, rows = time.perf_counter(), []
            ev5 = _evaluate(lm, pool, docs, groups, top5, chosen, sizes, k=k, rep=rep, readings=frozenset(),
                            progress_rows=rows, check=lambda n: check(n, f"{method}-{k} (reading R5)"))
            cost["seconds"]["R5"] += time.perf_counter() - t0
            cost["sentences"]["R5"] += sum(rows)
            setups[f"{method}-{k}"]["readings"]["R5"] = {
                **ev5, "top_tokens": [_token_strings(tok, ids) for ids in top5]}
        bar.update()
    bar.close()
    timed.stop()

    # BCL-7: index sharing across layers, K=50 (scaled), filter
    labels50 = np.asarray(clusterings["filter"]["50"]["labels"])
    share = nc.index_share(labels50, rep.n_layers, rep.width)
    null = nc.index_share_null(labels50, rep.n_layers, rep.width, n_permutations=1000, seed=0)
    bcl7 = {"per_cluster": [float(v) for v in share], "observed": float(np.nanmean(share)),
            "null": null.tolist()}

    # BCL-8: embedding relatedness of top words, K=200 (scaled), filter, every cluster
    words, has, vec = token_vectors(tok, cols)
    groups200 = nc.members(np.asarray(clusterings["filter"]["200"]["labels"]))
    top200 = [nc.top_tokens(normalized["filter"], g) for g in groups200]
    bcl8 = token_relatedness(top200, words, vec, n_random_sets=sizes.n_random_sets, seed=0)
    bcl8["n_vocab_with_vector"] = int(has.sum())
    bcl8["readings"] = {}
    if "R5" in readings:
        top200_5 = [nc.top_tokens(variants["filter"], g, reduce="sum") for g in groups200]
        bcl8["readings"]["R5"] = token_relatedness(top200_5, words, vec, n_random_sets=sizes.n_random_sets,
                                                   seed=0)

    result = BclResult.from_dict({
        "experiment": "bcl", "model": name, "corpus": corpus, "kind": lm.kind, "tier": lm.tier,
        "profile": profile.name, "n_layers": rep.n_layers, "width": rep.width, "n_neurons": rep.n_neurons,
        "sizes": {**sizes.to_dict(), "methods": list(methods)}, "threshold": threshold,
        "n_positions": rep.n_positions, "n_distinct": int(rep.token_ids.size), "n_kept": int(keep.sum()),
        "ks": {str(k): v for k, v in ks.items()}, "seeds": list(SEEDS), "readings": sorted(readings),
        "clusterings": clusterings, "setups": setups, "bcl7": bcl7, "bcl8": bcl8,
        "eval_sentences": int(pool.shape[0]),
        "eval_documents": int(np.unique(docs.numpy()[docs.numpy() >= 0]).size),
        "cost": cost,
        "data": {"collect": f"{corpus}, collect split, {rep.n_positions} tokens",
                 "eval": f"{corpus}, eval split, {pool.shape[0]} sentences of {pool.shape[1]} tokens "
                         f"(documents cut at {sizes.eval_max_doc_tokens} tokens)"},
    })
    return result
