"""BCL causal intervention (Zhang, Gu, Yao, section 5.5) and the whole BCL experiment on a zoo model.

For a cluster, its evaluation corpus is the evaluation-split sentences that contain one of its top-10
tokens; the loss is the model's cross-entropy (nats) on those top tokens, with the cluster's neurons
set to their layer's mean versus unablated, reported as a % increase. Masked LMs predict every
occurrence of a top token replaced by the mask token (masked-token loss); causal LMs predict them as
the next token (next-token loss at the positions whose target is a top token).

Baselines (claims.md, BCL), 5 seeds each, the same number of neurons as the cluster:

- ``random``: neurons drawn from all layers (:func:`random_neurons`);
- ``random_layer``: the cluster's per-layer counts, drawn inside each layer (:func:`random_layer`);
- ``random_position``: random neuron indices, each ablated in every layer, until the count matches
  (:func:`random_position`).

Every condition of a cluster (unablated, cluster, 3 baselines x 5 seeds) runs on the same sentences
in one batched forward pass: each batch row carries its own keep-mask (``core.sites.ablate`` with
per-row masks of shape ``(batch, 1, width)``).

"Sentences" are windows of :data:`BCL_SIZES` ``sentence_len`` tokens of the evaluation split (the
harness's text is split into windows, not sentences). A cluster none of whose top tokens occurs in
the evaluation pool is *skipped*: it is counted and reported, never silently dropped.

:func:`bcl_experiment` runs everything on one model and corpus: representations (cached), the
frequency filter, post-processing, clustering for K in {20, 50, 200} scaled to the model, refinement,
the intervention for every setup (cached), and the statistics of BCL-7 and BCL-8.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from . import sites
from .cache import atomic_write_json, cache_dir, cache_key, load_cached, one_at_a_time
from .errors import check_name

SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
BASELINES: tuple[str, ...] = ("random", "random_layer", "random_position")
PAPER_KS: tuple[int, ...] = (20, 50, 200)
INTERVENTION_KS: tuple[int, ...] = (50, 200)
#: Bumped whenever a change alters what a cached BCL result holds.
BCL_VERSION = 1

#: BCL sample sizes per profile (``core.profiles`` names). ``collect_tokens``: collection corpus
#: (representations); ``seq_len``: its window length; ``sentence_len``: evaluation "sentence" length;
#: ``eval_tokens``: the evaluation pool; ``max_sentences``: sentences per cluster (the first ones of
#: the pool, in split order, that contain a top token); ``max_clusters``: clusters evaluated per setup
#: (a seeded random sample of the non-skipped ones; None = all); ``methods``: representation variants
#: clustered besides ``filter`` (``refine`` always comes from ``filter``); ``n_random_sets``: random
#: token sets per cluster for BCL-8; ``max_doc_tokens``: documents cut at this many tokens.
BCL_SIZES: dict[str, dict] = {
    "ci": {"collect_tokens": 16_384, "seq_len": 128, "sentence_len": 32, "eval_tokens": 16_384,
           "max_sentences": 2, "max_clusters": 12, "methods": ("filter",), "n_random_sets": 100,
           "batch_size": 8, "batch_rows": 34, "max_doc_tokens": 100_000},
    # small fits the main job's 45 minutes on 2 cores: every intervened cluster costs 17 conditions x
    # max_sentences forward passes, so small doubles ci's sentences and corpus, not its setups
    "small": {"collect_tokens": 32_768, "seq_len": 256, "sentence_len": 32, "eval_tokens": 32_768,
              "max_sentences": 4, "max_clusters": 12, "methods": ("filter",),
              "n_random_sets": 100, "batch_size": 8, "batch_rows": 34, "max_doc_tokens": 100_000},
    "paper": {"collect_tokens": 250_000, "seq_len": 512, "sentence_len": 32, "eval_tokens": 100_000,
              "max_sentences": 32, "max_clusters": None, "methods": ("filter", "tfidf", "smooth"),
              "n_random_sets": 100, "batch_size": 8, "batch_rows": 34, "max_doc_tokens": 100_000},
}

#: BCL data per tier: the small tier's two corpora, the paper's C4 and Yelp on the full tier.
BCL_CORPORA = {"small": ("news", "wiki"), "full": ("allenai/c4", "Yelp/yelp_review_full")}


# ---------------------------------------------------------------------------------------------
# baselines

def random_neurons(size: int, n_layers: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """``random``: ``size`` distinct neurons drawn uniformly from all layers (flat indices, sorted)."""
    if not 0 <= size <= n_layers * width:
        raise ValueError(f"size must lie in [0, {n_layers * width}], got {size}")
    return np.sort(rng.choice(n_layers * width, size=size, replace=False)).astype(np.int64)


def random_layer(per_layer: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    """``random_layer``: ``per_layer[l]`` distinct neurons drawn inside each layer l (flat, sorted)."""
    out = [l * width + rng.choice(width, size=int(c), replace=False) for l, c in enumerate(per_layer)]
    return np.sort(np.concatenate(out)).astype(np.int64) if out else np.zeros(0, np.int64)


def random_position(size: int, n_layers: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """``random_position``: random indices, each ablated in every layer, until ``size`` neurons.

    ``size // n_layers`` distinct indices are ablated in every layer; the remainder ``size % n_layers``
    neurons take one more distinct index in that many random layers. Flat indices, sorted.
    """
    if not 0 <= size <= n_layers * width:
        raise ValueError(f"size must lie in [0, {n_layers * width}], got {size}")
    full, rest = divmod(size, n_layers)
    idx = rng.choice(width, size=full + (rest > 0), replace=False)
    out = [l * width + idx[:full] for l in range(n_layers)]
    if rest:
        layers = rng.choice(n_layers, size=rest, replace=False)
        out.append(layers * width + idx[full])
    return np.sort(np.concatenate(out)).astype(np.int64)


def baseline_sets(cluster: np.ndarray, n_layers: int, width: int, seeds=SEEDS,
                  salt: tuple[int, ...] = ()) -> dict[str, list[np.ndarray]]:
    """The three baselines of a cluster, one neuron set per seed (``rng`` seeded by (seed, *salt))."""
    cluster = np.asarray(cluster, dtype=np.int64)
    per_layer = np.bincount(cluster // width, minlength=n_layers)
    out = {b: [] for b in BASELINES}
    for s in seeds:
        rng = np.random.default_rng([int(s), *map(int, salt)])
        out["random"].append(random_neurons(cluster.size, n_layers, width, rng))
        out["random_layer"].append(random_layer(per_layer, width, rng))
        out["random_position"].append(random_position(cluster.size, n_layers, width, rng))
    return out


# ---------------------------------------------------------------------------------------------
# evaluation units of a cluster

def cluster_sentences(windows: torch.Tensor, top_ids, *, kind: str, max_sentences: int | None):
    """The sentences of the evaluation pool that contain a top token, and the target positions.

    Parameters
    ----------
    windows : LongTensor of shape (n, seq)
        Evaluation-split sentences.
    top_ids : sequence of int
        The cluster's top tokens (vocabulary ids, never special tokens).
    kind : {"masked", "causal"}
        Causal LMs cannot predict position 0, so only positions >= 1 count.
    max_sentences : int or None
        Keep the first ``max_sentences`` sentences in pool order.

    Returns
    -------
    rows : LongTensor of shape (m,)
        Indices of the chosen sentences (m = 0: the cluster is skipped).
    targets : BoolTensor of shape (m, seq)
        Positions holding a top token.
    """
    hit = torch.isin(windows, torch.as_tensor(list(map(int, top_ids)), dtype=windows.dtype))
    if kind == "causal":
        hit[:, 0] = False
    rows = hit.any(1).nonzero().squeeze(1)
    if max_sentences is not None:
        rows = rows[:max_sentences]
    return rows, hit[rows]


@dataclass
class ClusterScore:
    """Causal-intervention result of one cluster (BCL section 5.5).

    Attributes
    ----------
    cluster : int
    size : int
        Neurons in the cluster.
    n_sentences, n_targets : int
        Sentences used and top-token predictions scored.
    base_loss : float
        Unablated CE on the targets, nats.
    cluster_pct : float
        % increase of the CE with the cluster ablated.
    baselines : dict of str to list of float
        % increase under each baseline, one per seed.
    """

    cluster: int
    size: int
    n_sentences: int
    n_targets: int
    base_loss: float
    cluster_pct: float
    baselines: dict

    def as_dict(self) -> dict:
        return {"cluster": self.cluster, "size": self.size, "n_sentences": self.n_sentences,
                "n_targets": self.n_targets, "base_loss": self.base_loss, "cluster_pct": self.cluster_pct,
                "baselines": self.baselines}


def split_head(model):
    """``(body, head)`` of a language model: ``body(input_ids=...)[0]`` is the last hidden state of shape
    (batch, seq, d_model) and ``head`` maps hidden states (..., d_model) to logits (..., vocab), so
    that logits are computed only where a loss is scored. BERT-style masked LMs keep their head in
    ``cls`` (transform + tied decoder), RoBERTa and causal LMs in ``lm_head``.

    Raises
    ------
    ValueError
        If the model has neither.
    """
    head = getattr(model, "cls", None)
    if head is None:
        head = getattr(model, "lm_head", None)
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output head named 'cls' or 'lm_head'")
    return model.base_model, head


@torch.inference_mode()
def intervene(model, *, kind: str, windows: torch.Tensor, cluster: np.ndarray, top_ids, layer_mean,
              mask_id: int | None = None, n_layers: int, width: int, max_sentences: int | None = None,
              seeds=SEEDS, salt: tuple[int, ...] = (), batch_rows: int = 34,
              cluster_id: int = 0) -> ClusterScore | None:
    """Causal intervention on one cluster (BCL section 5.5) with its three baselines.

    Parameters
    ----------
    model : masked LM or causal LM (transformers, ``.logits`` output)
    kind : {"masked", "causal"}
    windows : LongTensor of shape (n, seq)
        Evaluation-split sentences.
    cluster : ndarray of int
        Flat residual-neuron indices (``layer * width + index``).
    top_ids : sequence of int
        The cluster's top tokens.
    layer_mean : array-like of shape (n_layers,)
        The value ablated neurons are set to, per layer (collection split).
    mask_id : int
        The mask token (masked LMs).
    salt : tuple of int
        Extra seed material for the baselines (e.g. K and the cluster id).

    Returns
    -------
    ClusterScore, or None when no evaluation sentence contains a top token (the cluster is skipped).
    """
    check_name("model kind", kind, ("masked", "causal"))
    if kind == "masked" and mask_id is None:
        raise ValueError("a masked LM needs mask_id")
    rows, targets = cluster_sentences(windows, top_ids, kind=kind, max_sentences=max_sentences)
    if rows.numel() == 0:
        return None
    ids = windows[rows]
    if kind == "masked":
        inputs = ids.masked_fill(targets, mask_id)
        label_pos = targets
    else:
        inputs = ids
        label_pos = targets
    cluster = np.asarray(cluster, dtype=np.int64)
    sets = baseline_sets(cluster, n_layers, width, seeds, salt)
    conditions = [None, cluster] + [s for b in BASELINES for s in sets[b]]
    keep = torch.ones((len(conditions), n_layers * width))
    for c, neurons in enumerate(conditions):
        if neurons is not None:
            keep[c, torch.as_tensor(neurons)] = 0.0
    keep = keep.view(len(conditions), n_layers, width)
    offsets = {l: torch.tensor(float(v)) for l, v in enumerate(np.asarray(layer_mean, dtype=np.float64))}
    m = ids.shape[0]
    # row r of the big batch: condition r // m, sentence r % m
    cond_of = torch.arange(len(conditions)).repeat_interleave(m)
    sent_of = torch.arange(m).repeat(len(conditions))
    ce_sum = torch.zeros(len(conditions), dtype=torch.float64)
    n_t = int(label_pos.sum())
    device = next(model.parameters()).device
    base, head = split_head(model)
    for start in range(0, cond_of.numel(), batch_rows):
        c, s = cond_of[start:start + batch_rows], sent_of[start:start + batch_rows]
        mask = {l: keep[c, l][:, None, :] for l in range(n_layers)}
        if kind == "masked":
            pos = label_pos[s].to(device)
            tgt = ids[s].to(device)[pos]
        else:
            pos = torch.zeros_like(label_pos[s])
            pos[:, :-1] = label_pos[s][:, 1:]  # the logits at t predict the token at t + 1
            tgt = ids[s][:, 1:][label_pos[s][:, 1:]].to(device)
            pos = pos.to(device)
        with sites.ablate(model, "resid", mask, offsets):
            hidden = base(input_ids=inputs[s].to(device))[0]
        lg = head(hidden[pos])  # the output head only at the scored positions
        row_of = torch.arange(s.numel(), device=device)[:, None].expand_as(pos)[pos]
        ce = torch.nn.functional.cross_entropy(lg.float(), tgt, reduction="none").double().cpu()
        ce_sum.index_add_(0, c[row_of.cpu()], ce)
    loss = ce_sum / n_t
    if not torch.isfinite(loss).all():
        raise FloatingPointError(f"non-finite loss in the intervention on cluster {cluster_id}")
    pct = (100.0 * (loss / loss[0] - 1.0)).tolist()
    ns = len(seeds)
    baselines = {b: pct[2 + i * ns: 2 + (i + 1) * ns] for i, b in enumerate(BASELINES)}
    return ClusterScore(cluster=int(cluster_id), size=int(cluster.size), n_sentences=int(m), n_targets=n_t,
                        base_loss=float(loss[0]), cluster_pct=float(pct[1]), baselines=baselines)


# ---------------------------------------------------------------------------------------------
# BCL-8: semantic relatedness of top tokens

def token_relatedness(top_cols: list[np.ndarray], has_vector: np.ndarray, vectors: np.ndarray, *,
                      n_random_sets: int = 100, seed: int = 0) -> dict:
    """Mean pairwise cosine of each cluster's top tokens' embeddings vs random size-matched sets.

    Parameters
    ----------
    top_cols : list of ndarray of int
        Per cluster, its top-token columns of the filtered vocabulary.
    has_vector, vectors : ndarray of shape (n_tokens,) and (n_tokens, d)
        Embeddings of the filtered vocabulary (:func:`core.embeddings.token_vectors`).

    Returns
    -------
    dict
        ``cluster`` (cluster indices used: at least 2 top tokens with a vector), ``observed`` and
        ``random`` (mean over ``n_random_sets`` random sets of the same size drawn from the filtered
        tokens with a vector), ``diff`` = observed - random, per used cluster; ``n_mapped`` per cluster.
    """
    from .embeddings import mean_pairwise_cosine

    pool = np.flatnonzero(has_vector)
    rng = np.random.default_rng(seed)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    out = {"cluster": [], "observed": [], "random": [], "diff": [], "n_mapped": []}
    for c, cols in enumerate(top_cols):
        mapped = [int(j) for j in cols if has_vector[j]]
        out["n_mapped"].append(len(mapped))
        m = len(mapped)
        if m < 2 or pool.size < m:
            continue
        obs = mean_pairwise_cosine(vectors[mapped])
        sets = np.stack([rng.choice(pool, size=m, replace=False) for _ in range(n_random_sets)])
        v = unit[sets]  # (n_sets, m, d)
        g = np.einsum("smd,snd->smn", v, v)
        rand = float(((g.sum((1, 2)) - np.trace(g, axis1=1, axis2=2)) / (m * (m - 1))).mean())
        out["cluster"].append(c)
        out["observed"].append(obs)
        out["random"].append(rand)
        out["diff"].append(obs - rand)
    return out


# ---------------------------------------------------------------------------------------------
# the experiment on a zoo model

def bcl_sizes(profile_name: str) -> dict:
    """The BCL sizes of a profile (:data:`BCL_SIZES`); unknown names list the valid ones."""
    return dict(BCL_SIZES[check_name("profile", profile_name, BCL_SIZES)])


def _windows(corpus: str, tokenizer, split: str, n_tokens: int, seq_len: int, max_doc_tokens: int):
    from .data import text_windows

    # the full tier's C4 and Yelp are Hub text subsets of core.data: read from the local HF cache (or
    # the Hub with HF_HUB_OFFLINE=0), else MissingAssetError naming the Hub id
    return text_windows(corpus, tokenizer, split=split, n_tokens=n_tokens, seq_len=seq_len,
                        max_doc_tokens=max_doc_tokens)


def _representations(lm, corpus: str, sizes: dict, weights: str, progress: bool):
    from .representations import Representations, token_representations

    seq_len = min(sizes["seq_len"], lm.max_length or sizes["seq_len"])
    key = cache_key(experiment="bcl-repr", version=BCL_VERSION, model=lm.name, weights=weights,
                    corpus=corpus, split="collect", n_tokens=sizes["collect_tokens"], seq_len=seq_len,
                    max_doc_tokens=sizes["max_doc_tokens"])
    path = cache_dir("bcl") / f"repr-{lm.name.replace(':', '_')}-{key}.npz"
    if (found := load_cached(path, Representations.load)) is not None:  # a damaged file is recomputed
        return found, key
    windows = _windows(corpus, lm.tokenizer, "collect", sizes["collect_tokens"], seq_len,
                       sizes["max_doc_tokens"])
    pad = lm.tokenizer.pad_token_id
    rep = token_representations(lm.model, windows, ignore_ids=() if pad is None else (pad,),
                                batch_size=sizes["batch_size"], progress=progress,
                                desc=f"{lm.name}: BCL representations ({corpus})")
    rep.info = {"corpus": corpus, "split": "collect", "windows": int(windows.shape[0]), "seq_len": seq_len}
    rep.save(path)
    return rep, key


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _variants(rep, keep: np.ndarray, methods, tokenizer, token_cols):
    """Representation variants (before L2 normalisation), neurons x filtered tokens."""
    from . import neuron_clusters as nc

    base = rep.mean[:, keep]
    out = {"filter": base}
    if "tfidf" in methods:
        out["tfidf"] = nc.tfidf(base)
    if "smooth" in methods:
        from .embeddings import nearest_neighbours, token_vectors

        _, has, vec = token_vectors(tokenizer, token_cols)
        nbr, sim = nearest_neighbours(vec, has, k=nc.N_NEIGHBOURS)
        out["smooth"] = nc.smooth(base, nbr, sim, lam=nc.SMOOTH_LAMBDA)
    return out


def _clusterings(variants: dict, ks: dict, key: str, progress: bool) -> dict:
    """Clusterings of every variant (cached as JSON): labels, distances, refinement."""
    from . import neuron_clusters as nc

    path = cache_dir("bcl") / f"clusters-{key}.json"
    if (found := load_cached(path, _read_json)) is not None:  # a damaged file is recomputed
        return found
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
    atomic_write_json(path, out)
    return out


@one_at_a_time("bcl", lambda name, corpus, profile, **_: f"experiment-{name}-{corpus}-{profile.name}")
def bcl_experiment(name: str, corpus: str, profile, *, device: str = "cpu", progress: bool = True) -> dict:
    """The BCL experiment on one zoo model and corpus, cached on disk.

    Parameters
    ----------
    name : str
        A masked or causal LM of the zoo.
    corpus : str
        A text subset (small tier: ``news`` or ``wiki``) or, on the full tier, a Hub dataset.
    profile : core.profiles.Profile
        Its name picks :data:`BCL_SIZES`.

    Returns
    -------
    dict (JSON-serialisable)
        ``model``, ``corpus``, ``kind``, ``n_layers``, ``width``, ``sizes``, ``threshold``,
        ``n_positions``, ``n_distinct``, ``n_kept``, ``ks`` (paper K -> scaled K), ``clusterings``
        (method -> paper K -> labels, per-cluster distances, refinement), ``setups`` (setup name ->
        evaluated :class:`ClusterScore` dicts, ``skipped`` count, top tokens), ``bcl7``, ``bcl8``.

    Raises
    ------
    MissingAssetError
        When the model, its data or GloVe is not available.
    core.neuron_clusters.InsufficientTokensError
        When the collection corpus leaves no token above the frequency threshold.
    """
    from . import neuron_clusters as nc
    from .embeddings import token_vectors
    from .models import load_model

    sizes = bcl_sizes(profile.name)
    lm = load_model(name, device=device)
    check_name("model kind", lm.kind, ("masked", "causal"))
    weights = str(lm.card.get("cache_key") or lm.card.get("provenance"))
    rep, rep_key = _representations(lm, corpus, sizes, weights, progress)
    tok = lm.tokenizer
    threshold = nc.frequency_threshold(rep.n_positions)
    keep = nc.frequency_filter(rep.token_ids, rep.counts, special_ids=tok.all_special_ids,
                               threshold=threshold, n_positions=rep.n_positions)
    cols = rep.token_ids[keep]
    n_neurons = rep.n_neurons
    ks = {k: nc.scaled_k(k, n_neurons) for k in PAPER_KS}
    methods = tuple(sizes["methods"])
    key = cache_key(experiment="bcl", version=BCL_VERSION, repr=rep_key, sizes=sizes, ks=ks,
                    threshold=threshold, refine=nc.REFINE_THRESHOLD, lam=nc.SMOOTH_LAMBDA,
                    seeds=SEEDS, device=str(lm.device.type))
    path = cache_dir("bcl") / f"result-{name.replace(':', '_')}-{corpus.replace('/', '_')}-{key}.json"
    if (found := load_cached(path, _read_json)) is not None:  # a damaged entry is named and rebuilt
        return found
    variants = _variants(rep, keep, methods, tok, cols)
    clusterings = _clusterings(variants, ks, cache_key(clusters=key), progress)
    normalized = {m: nc.normalize_rows(v) for m, v in variants.items()}
    del variants

    seq = sizes["sentence_len"]
    pool = _windows(corpus, tok, "eval", sizes["eval_tokens"], min(seq, lm.max_length or seq),
                    sizes["max_doc_tokens"])
    layer_mean = rep.layer_mean()
    setups = {}
    setup_list = [(m, k) for k in INTERVENTION_KS for m in (*methods, "refine")]
    bar = tqdm(total=len(setup_list), desc=f"{name}: BCL intervention ({corpus})", disable=not progress)
    for method, k in setup_list:
        base = "filter" if method == "refine" else method
        entry = clusterings[base][str(k)]
        if method == "refine":
            groups = [np.asarray(g, dtype=np.int64) for g in entry["refined"]]
        else:
            groups = nc.members(np.asarray(entry["labels"]))
        x = normalized[base]
        tops = [nc.top_tokens(x, g) for g in groups]
        top_ids = [cols[t] for t in tops]
        occurs = [cluster_sentences(pool, t, kind=lm.kind, max_sentences=1)[0].numel() > 0 for t in top_ids]
        eligible = [c for c in range(len(groups)) if occurs[c]]
        rng = np.random.default_rng([0, k])
        cap = sizes["max_clusters"]
        chosen = sorted(rng.choice(eligible, size=cap, replace=False).tolist()) \
            if cap is not None and len(eligible) > cap else eligible
        scores = []
        for c in chosen:
            sc = intervene(lm.model, kind=lm.kind, windows=pool, cluster=groups[c], top_ids=top_ids[c],
                           layer_mean=layer_mean, mask_id=tok.mask_token_id, n_layers=rep.n_layers,
                           width=rep.width, max_sentences=sizes["max_sentences"], salt=(k, c),
                           batch_rows=sizes["batch_rows"], cluster_id=c)
            scores.append(sc.as_dict())
        setups[f"{method}-{k}"] = {
            "method": method, "k_paper": k, "k": ks[k], "n_clusters": len(groups),
            "skipped": len(groups) - len(eligible), "evaluated": scores,
            "sizes": [int(g.size) for g in groups],
            "top_tokens": [[tok.convert_tokens_to_string([t]).strip() or t
                            for t in tok.convert_ids_to_tokens([int(i) for i in ids])] for ids in top_ids],
        }
        bar.update()
    bar.close()

    # BCL-7: index sharing across layers, K=50 (scaled), filter
    labels50 = np.asarray(clusterings["filter"]["50"]["labels"])
    share = nc.index_share(labels50, rep.n_layers, rep.width)
    null = nc.index_share_null(labels50, rep.n_layers, rep.width, n_permutations=1000, seed=0)
    bcl7 = {"per_cluster": [float(v) for v in share], "observed": float(np.nanmean(share)),
            "null": null.tolist()}

    # BCL-8: embedding relatedness of top tokens, K=200 (scaled), filter, every cluster
    _, has, vec = token_vectors(tok, cols)
    groups200 = nc.members(np.asarray(clusterings["filter"]["200"]["labels"]))
    top200 = [nc.top_tokens(normalized["filter"], g) for g in groups200]
    bcl8 = token_relatedness(top200, has, vec, n_random_sets=sizes["n_random_sets"], seed=0)
    bcl8["n_vocab_with_vector"] = int(has.sum())

    result = {
        "experiment": "bcl", "model": name, "corpus": corpus, "kind": lm.kind, "tier": lm.tier,
        "profile": profile.name, "n_layers": rep.n_layers, "width": rep.width, "n_neurons": n_neurons,
        "sizes": {**sizes, "methods": list(methods)}, "threshold": threshold,
        "n_positions": rep.n_positions, "n_distinct": int(rep.token_ids.size), "n_kept": int(keep.sum()),
        "ks": {str(k): v for k, v in ks.items()}, "seeds": list(SEEDS),
        "layer_mean": layer_mean.tolist(), "clusterings": clusterings, "setups": setups,
        "bcl7": bcl7, "bcl8": bcl8, "eval_sentences": int(pool.shape[0]),
        "data": {"collect": f"{corpus}, collect split, {rep.n_positions} tokens",
                 "eval": f"{corpus}, eval split, {pool.shape[0]} sentences of {pool.shape[1]} tokens"},
    }
    atomic_write_json(path, result)
    return result
