"""The cost plan: forward passes, tokens, FLOPs and predicted time of every experiment stage, for a tier,
a profile and a device.

``python -m core.plan --tier full --profile paper --device cuda`` prints one row per stage of the three
papers' experiments (ABL :mod:`core.abl.ablation`, MOD :mod:`core.mod.experiment`, BCL
:mod:`core.bcl.experiment`) on the tier's models, with the totals per paper; ``--from-run RUN_DIR``
sets the prediction beside the stage times a run recorded (:mod:`core.timing`, ``run.json``).

Counts (:func:`plan_stages`) follow the experiments' own constants (fractions, seeds, methods, targets,
subsets, sizes per profile, conditions), so they move with the code. Where a number depends on the data
the count is an upper bound and says so: the MOD count search's evaluations per subset are
``ceil(log2 N) + 1`` (:func:`core.mod.selection.bisect_count`; it stops earlier as soon as a count is
within the tolerance), reading R1 re-evaluates at most every row, every BCL cluster is taken to find
``max_sentences`` sentences of ``sentence_len`` tokens, and BCL's kept tokens (the columns of the
representation) at most ``collect_tokens / threshold``.

FLOPs per token of a forward pass (multiply-add = 2 FLOPs)::

    2 * P_layers + 4 * n_layers * d_model * ctx_eff + h * 2 * d_model * V

with ``P_layers`` the non-embedding parameters (per layer ``d^2 + 2 d d_kv + d^2`` for attention,
``(3 if gated else 2) * d * d_mlp`` for the MLP), ``ctx_eff`` the context a token attends to (the
window for encoders and ViTs, half of it for decoders: the QK^T and AV products), ``V`` the vocabulary
(classes for ViTs) and ``h`` the fraction of positions where the harness computes logits (1 for
decoders and for statistics passes; 0.15 for masked-LM evaluation, which runs the head at the masked
positions only; 0 for BCL, which runs the body and the head at the scored targets only, not counted;
1/tokens-per-image for ViTs). Embeddings, norms and biases are left out.

Predicted time of a device stage: FLOPs x seconds per FLOP of the device, measured by
:func:`calibrate` (a timed forward of one random layer of each model's width, cached in
``cache_dir("plan")``) or, for a GPU not calibrated, its published bf16 dense throughput
(:data:`GPU_PEAK`) times an assumed utilisation (:data:`ASSUMED_UTILISATION`), labelled *predicted*.
CPU-bound stages (MoEfication's balanced k-means, the MOD-6 lottery null and the null Lorenz AUC, BCL's
agglomerative clustering) are timed on this machine's CPU at small sizes by :func:`calibrate` and
scaled (k-means: by ``d_mlp * k * d_model``; the nulls: by elements drawn; the linkage: by
``n_neurons^2`` plus its Gram matrix at the CPU's measured FLOP rate).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["Dims", "DIMS", "StageCost", "Rates", "plan_stages", "predict", "calibrate", "load_rates",
           "render", "compare_run", "STAGE_NAMES", "main"]

#: Stage names shared with the experiments' :func:`core.timing.stage` records.
STAGE_NAMES = ("abl statistics", "abl sweep", "mod statistics", "mod baseline", "mod count search",
               "mod moefication", "mod cross-pruning", "mod lottery null", "bcl representations",
               "bcl clustering", "bcl interventions")
#: Published bf16 dense tensor throughput, FLOP/s (NVIDIA H100 SXM5 datasheet: 989 TFLOPS without
#: sparsity; H200 has the same compute), and HBM bandwidth, bytes/s.
GPU_PEAK = {"h100": {"bf16_flops": 989e12, "hbm_bytes_s": 3.35e12, "name": "NVIDIA H100 SXM (80 GB)"},
            "h200": {"bf16_flops": 989e12, "hbm_bytes_s": 4.8e12, "name": "NVIDIA H200"}}
#: Assumed fraction of the peak that the harness's batched forward passes reach on a GPU (an
#: assumption, not a measurement: stated beside every predicted GPU figure).
ASSUMED_UTILISATION = 0.35
#: Assumed fixed cost of one layer's forward call on a GPU (about ten kernel launches of ~10 us).
GPU_LAYER_CALL_S = 1e-4
#: Shortest CPU time that calibration reads from ``time.process_time`` (below it, the wall time).
CPU_CLOCK_MIN_S = 0.5
#: A stage that keeps the GPU waiting on the CPU for longer than this is flagged.
CPU_WAIT_LIMIT_S = 300.0
#: Bumped when the calibration's content changes.
CALIBRATION_VERSION = 5
#: (d_mlp, k, d_model) of Mistral-7B's MoEfication, the reference width of ``--kmeans-fit-s``.
KMEANS_REFERENCE = (14336, 128, 4096)
#: Masked-LM evaluation runs the head at the masked positions only (15%; core.evaluate).
MASKED_HEAD_FRACTION = 0.15


@dataclass(frozen=True)
class Dims:
    """The sizes of a model's config that its cost depends on.

    Attributes
    ----------
    family : str
        ``config.model_type``.
    kind : {"causal", "masked", "image"}
    n_layers, d_model, d_mlp, n_heads, n_kv_heads : int
    vocab : int
        Output vocabulary (classes for an image classifier).
    max_length : int or None
        Longest text window (None for images).
    gated : bool
        A gated MLP (three matrices).
    image_tokens : int
        Patches plus [CLS] per image (0 for text).
    """

    family: str
    kind: str
    n_layers: int
    d_model: int
    d_mlp: int
    n_heads: int
    n_kv_heads: int
    vocab: int
    max_length: int | None
    gated: bool = False
    image_tokens: int = 0

    @property
    def layer_params(self) -> int:
        """Non-embedding weights of one layer (attention and MLP matrices)."""
        d, d_kv = self.d_model, self.d_model * self.n_kv_heads // self.n_heads
        return 2 * d * d + 2 * d * d_kv + (3 if self.gated else 2) * d * self.d_mlp

    @property
    def params(self) -> int:
        """Non-embedding weights of the model."""
        return self.n_layers * self.layer_params

    def flops_per_token(self, ctx: int, head: float) -> float:
        """FLOPs of one token's forward pass over a window of ``ctx`` tokens (module docstring)."""
        ctx_eff = ctx / 2 if self.kind == "causal" else ctx
        return (2.0 * self.params + 4.0 * self.n_layers * self.d_model * ctx_eff
                + head * 2.0 * self.d_model * self.vocab)


#: The published configs of the zoo's models (Hugging Face ``config.json`` of each id; the small tier's
#: as the harness builds them), so that a plan needs no weights.
DIMS: dict[str, Dims] = {
    "opt-1.3b": Dims("opt", "causal", 24, 2048, 8192, 32, 32, 50272, 2048),
    "mistral-7b": Dims("mistral", "causal", 32, 4096, 14336, 32, 8, 32000, 32768, gated=True),
    "mistral-7b-instruct": Dims("mistral", "causal", 32, 4096, 14336, 32, 8, 32000, 32768, gated=True),
    "roberta-large": Dims("roberta", "masked", 24, 1024, 4096, 16, 16, 50265, 512),
    "vit-base": Dims("vit", "image", 12, 768, 3072, 12, 12, 1000, None, image_tokens=197),
    "vit-base-cifar100": Dims("vit", "image", 12, 768, 3072, 12, 12, 100, None, image_tokens=197),
    "bert-base-uncased": Dims("bert", "masked", 12, 768, 3072, 12, 12, 30522, 512),
    "smollm2-135m": Dims("llama", "causal", 30, 576, 1536, 9, 3, 49152, 8192, gated=True),
    "minilm-l6": Dims("bert", "masked", 6, 384, 1536, 12, 12, 30522, 512),
    "tiny-vit-fmnist": Dims("vit", "image", 4, 64, 256, 4, 4, 10, None, image_tokens=50),
}


def dims_from_config(config) -> Dims:
    """:class:`Dims` of a ``transformers`` config object (a model outside the table)."""
    from core.zoo.sites import ARCHITECTURES, position_offset

    arch = (getattr(config, "architectures", None) or [""])[0]
    kind = ("image" if "Image" in arch or config.model_type == "vit" else
            "masked" if "Masked" in arch or config.model_type in ("bert", "roberta") else "causal")
    heads = getattr(config, "num_attention_heads", None) or config.n_head
    n = getattr(config, "max_position_embeddings", None)
    if n:
        n -= position_offset(config)  # RoBERTa's positions start after the padding index
    tokens = (config.image_size // config.patch_size) ** 2 + 1 if kind == "image" else 0
    row = ARCHITECTURES.get(config.model_type)
    gated = row is not None and row.gate is not None  # the architecture table's gate projection
    return Dims(config.model_type, kind, config.num_hidden_layers, config.hidden_size,
                getattr(config, "intermediate_size", None) or getattr(config, "ffn_dim", None),
                heads, getattr(config, "num_key_value_heads", None) or heads,
                getattr(config, "vocab_size", None) or len(getattr(config, "id2label", {}) or {0: 0}),
                None if kind == "image" else n, gated=gated, image_tokens=tokens)


@dataclass
class StageCost:
    """One stage of one experiment on one model: what it does and, once predicted, how long.

    Attributes
    ----------
    paper : {"ABL", "MOD", "BCL"}
    stage : str
        One of :data:`STAGE_NAMES`.
    model : str
        Zoo name (BCL: ``"<model> on <corpus>"``).
    passes : int
        Batched forward calls (device stages; 0 for CPU stages).
    tokens : int
        Tokens (images for ViTs: patches + [CLS] each) through the model.
    flops : float
        FLOPs of the forward passes.
    cpu : dict
        CPU work of a CPU-bound stage: ``{"kmeans": [(d_mlp, d_model, k, fits)], "draw_elements":
        int, "lorenz_elements": int, "linkage": [(n, d)]}``; empty for device stages.
    stats_elements : int
        Activation values accumulated by :class:`core.neurons.stats.NeuronStats` (statistics passes).
    layer_calls : int
        Forward calls of one layer (passes x layers): each costs a fixed overhead besides its FLOPs.
    note : str
    seconds : float or None
        Predicted by :func:`predict`.
    bound : {"device", "cpu"}
    """

    paper: str
    stage: str
    model: str
    passes: int = 0
    tokens: int = 0
    flops: float = 0.0
    cpu: dict = field(default_factory=dict)
    stats_elements: int = 0
    layer_calls: int = 0
    note: str = ""
    seconds: float | None = None
    bound: str = "device"


def _ceil(a: int, b: int) -> int:
    return -(-int(a) // int(b))


def _add(st: StageCost, dims: Dims, windows: int, seq: int, batch: int, head: float, repeat: int = 1) -> None:
    """Add ``repeat`` passes over ``windows`` windows of ``seq`` tokens in batches of ``batch``."""
    st.passes += repeat * _ceil(windows, batch)
    st.layer_calls += repeat * _ceil(windows, batch) * dims.n_layers
    st.tokens += repeat * windows * seq
    st.flops += repeat * windows * seq * dims.flops_per_token(seq, head)


def _dims(name: str, dims: dict | None) -> Dims:
    base = name.removesuffix(":random")
    table = {**DIMS, **(dims or {})}
    if base not in table:
        raise KeyError(f"no config sizes for model {name!r}; the plan knows {sorted(table)} "
                       f"(give others with dims={{name: dims_from_config(config)}})")
    return table[base]


def plan_abl(name: str, profile, *, tier: str, dims: dict | None = None) -> list[StageCost]:
    """Stages of the ABL experiment (:func:`core.abl.ablation.run_abl`) on one model.

    Statistics: two passes (moments, histogram) over the collection split; sweep: ``1 + seeds x
    (fractions > 0) x methods`` evaluations of the evaluation split.
    """
    from core.abl.ablation import FRACTIONS, SEEDS, methods_for

    d = _dims(name, dims)
    evals = 1 + len(SEEDS) * sum(f > 0 for f in FRACTIONS) * len(methods_for(d.kind))
    stats = StageCost("ABL", "abl statistics", name, note="2 passes (moments, histogram)")
    sweep = StageCost("ABL", "abl sweep", name, note=f"{evals} evaluations")
    bs = profile.batch_size
    attn_neurons = d.n_layers * d.d_model
    if d.kind == "image":
        head = 1.0 / d.image_tokens
        _add(stats, d, profile.collect_images, d.image_tokens, bs, head, repeat=2)
        _add(sweep, d, profile.eval_images, d.image_tokens, bs, head, repeat=evals)
        stats.stats_elements = 2 * profile.collect_images * d.image_tokens * attn_neurons
        return [stats, sweep]
    seq = min(profile.seq_len, d.max_length or profile.seq_len)
    eval_len = profile.eval_seq_len_for(d.kind, d.max_length)
    cw = _ceil(profile.collect_tokens, seq)
    ew = _ceil(profile.eval_tokens_for(d.kind), eval_len)
    _add(stats, d, cw, seq, bs, 1.0, repeat=2)
    _add(sweep, d, ew, eval_len, bs, 1.0 if d.kind == "causal" else MASKED_HEAD_FRACTION, repeat=evals)
    stats.stats_elements = 2 * cw * seq * attn_neurons
    sweep.note += f" x {ew} windows of {eval_len}"
    return [stats, sweep]


def search_evaluations(n_neurons: int) -> int:
    """Upper bound of :func:`core.mod.selection.bisect_count`'s evaluations: ``ceil(log2 N) + 1``."""
    return math.ceil(math.log2(n_neurons)) + 1


def plan_mod(name: str, profile, *, tier: str, readings=(), dims: dict | None = None) -> list[StageCost]:
    """Stages of the MOD experiment (:func:`core.mod.experiment.run_mod`) on a model and its random twin.

    Statistics: samples A and B of every reference subset (trained), A (twin); baseline: one full
    evaluation each; count search: per orientation (R2 adds the printed one), target and subset at most
    ``ceil(log2 N) + 1`` evaluations of that subset; cross-pruning: per subset the trained A pass at
    every target's count, the B pass and (where the profile asks) the twin's pass, R1 and R2 each at
    most the trained A and B passes again; MoEfication: ``2 n_layers`` balanced k-means fits and the
    null Lorenz AUC; the MOD-6 lottery null: ``NULL_DRAWS`` draws of ``n_subsets`` sets of N neurons
    per reading.
    """
    from core.mod.experiment import TARGETS
    from core.mod.moefication import k_for
    from core.mod.nulls import NULL_DRAWS
    from core.mod.subsets import eval_seq_len, subsets_for

    d = _dims(name, dims)
    sizes = profile.sizes_of("mod")
    subsets, reference = subsets_for(d.kind, tier, profile)
    n_sub, n_ref = len(subsets), len(reference)
    targets = TARGETS[d.kind]
    n_all = d.n_layers * d.d_mlp
    readings = set(readings) & {"R1", "R2"}
    orients = 1 + ("R2" in readings)
    e = search_evaluations(n_all)
    random_rows = d.kind == "image" or sizes.random_cross_pruning_text
    full_primary = n_sub * (len(targets) + 1 + random_rows)
    full_alt = n_sub * (len(targets) + 1) * (("R1" in readings) + ("R2" in readings))
    bs = profile.batch_size
    out = {s: StageCost("MOD", s, name) for s in ("mod statistics", "mod baseline", "mod count search",
                                                    "mod cross-pruning")}
    if d.kind == "image":
        seq, head, n_c, unit = d.image_tokens, 1.0 / d.image_tokens, sizes.collect_images, sizes.eval_images
        _add(out["mod statistics"], d, n_c, seq, bs, head, repeat=3 * n_ref)
        out["mod statistics"].stats_elements = 3 * n_ref * n_c * seq * n_all
    else:
        seq = min(profile.seq_len, d.max_length or profile.seq_len)
        half = _ceil(2 * sizes.collect_tokens, seq) // 2
        _add(out["mod statistics"], d, half, seq, bs, 1.0, repeat=3 * n_ref)
        out["mod statistics"].stats_elements = 3 * n_ref * half * seq * n_all
        head = 1.0
        seq = eval_seq_len(sizes, profile, d.max_length)
        unit = _ceil(sizes.eval_tokens, seq)
    out["mod statistics"].note = f"A, B (trained), A (twin) x {n_ref} reference subsets"
    _add(out["mod baseline"], d, n_sub * unit, seq, bs, head, repeat=2)
    out["mod baseline"].note = "trained and twin"
    searches = orients * len(targets) * n_sub
    _add(out["mod count search"], d, unit, seq, bs, head, repeat=searches * e)
    out["mod count search"].note = f"{searches} searches x <= {e} evaluations of one subset"
    _add(out["mod cross-pruning"], d, n_sub * unit, seq, bs, head, repeat=full_primary + full_alt)
    out["mod cross-pruning"].note = (f"<= {full_primary + full_alt} passes over {n_sub} subsets"
                                     + (f" (readings {', '.join(sorted(readings))})" if readings else ""))
    k = k_for(name, d.d_mlp)
    moe = StageCost("MOD", "mod moefication", name, bound="cpu",
                    cpu={"kmeans": [(d.d_mlp, d.d_model, k, 2 * d.n_layers)],
                         "lorenz_elements": d.n_layers * NULL_DRAWS * d.d_mlp},
                    note=f"{2 * d.n_layers} balanced k-means fits ({d.d_mlp} x {d.d_model}, k = {k})")
    n_null = 1 + len(readings)
    null = StageCost("MOD", "mod lottery null", name, bound="cpu",
                     cpu={"draw_elements": n_null * NULL_DRAWS * n_sub * n_all},
                     note=f"{n_null} x {NULL_DRAWS} draws of {n_sub} sets of {n_all:,} neurons")
    return [out["mod statistics"], out["mod baseline"], out["mod count search"], moe,
            out["mod cross-pruning"], null]


def plan_bcl(name: str, corpus: str, profile, *, readings=(), dims: dict | None = None) -> list[StageCost]:
    """Stages of the BCL experiment (:func:`core.bcl.experiment.bcl_experiment`) on one model and corpus.

    Representations: one pass of the body over the collection corpus; clustering: one complete-linkage
    tree per representation variant over every residual neuron; interventions: per K of
    ``INTERVENTION_KS``, per variant and refinement, every cluster (at most ``max_clusters``) on
    ``max_sentences`` sentences x its conditions (17; R3 adds 16, R4 5; R5 its own 17).
    """
    from core.bcl.baselines import BASELINES, SEEDS
    from core.bcl.experiment import INTERVENTION_KS
    from core.bcl.neuron_clusters import frequency_threshold, scaled_k

    d = _dims(name, dims)
    sizes = profile.sizes_of("bcl")
    who = f"{name} on {corpus}"
    seq = min(sizes.seq_len, d.max_length or sizes.seq_len)
    windows = _ceil(sizes.collect_tokens, seq)
    rep = StageCost("BCL", "bcl representations", who, note="body only")
    _add(rep, d, windows, seq, sizes.batch_size, 0.0)
    n = (d.n_layers + 1) * d.d_model
    kept = min(d.vocab, sizes.collect_tokens // frequency_threshold(sizes.collect_tokens))
    methods = tuple(sizes.methods)
    clus = StageCost("BCL", "bcl clustering", who, bound="cpu", cpu={"linkage": [(n, kept)] * len(methods)},
                     note=f"{len(methods)} trees over {n:,} neurons x <= {kept:,} tokens")
    cap = sizes.max_clusters
    clusters = sum((len(methods) + 1) * min(scaled_k(k, n), cap or n) for k in INTERVENTION_KS)
    per = len(BASELINES) * len(SEEDS)
    conditions = 2 + per + (1 + per) * ("R3" in readings) + len(SEEDS) * ("R4" in readings)
    extra = (2 + per) * ("R5" in readings)
    sl = min(sizes.sentence_len, d.max_length or sizes.sentence_len)
    inter = StageCost("BCL", "bcl interventions", who,
                      note=f"<= {clusters} clusters x {sizes.max_sentences} sentences x "
                           f"{conditions}{f' + {extra}' if extra else ''} conditions")
    for c in (conditions, extra):
        if c:
            _add(inter, d, sizes.max_sentences * c, sl, sizes.batch_rows, 0.0, repeat=clusters)
    return [rep, clus, inter]


def tier_models(tier: str) -> dict[str, list[str]]:
    """``{paper: [zoo names]}`` of a tier (:data:`core.zoo.registry.MODELS`)."""
    from core.zoo.registry import MODELS

    out: dict[str, list[str]] = {"ABL": [], "MOD": [], "BCL": []}
    for spec in MODELS.values():
        if spec.tier == tier:
            for p in spec.papers:
                out.setdefault(p, []).append(spec.name)
    return out


def plan_stages(tier: str, profile, *, readings=None, papers=("ABL", "MOD", "BCL"),
                models: dict | None = None, dims: dict | None = None) -> list[StageCost]:
    """Every stage of the papers' experiments on a tier's models.

    Parameters
    ----------
    tier : {"small", "full"}
    profile : core.profiles.Profile
    readings : iterable of str, optional
        Alternate readings computed (default: the profile's).
    papers : the papers to plan
    models : {paper: [names]}, optional
        Default :func:`tier_models`.
    dims : {name: Dims}, optional
        Sizes of models outside :data:`DIMS`.

    Returns
    -------
    list of StageCost
        Unpredicted (``seconds`` None): see :func:`predict`.
    """
    from core.bcl.experiment import BCL_CORPORA

    readings = set(profile.readings if readings is None else readings)
    models = models or tier_models(tier)
    out: list[StageCost] = []
    for p in papers:
        for name in models.get(p, []):
            if p == "ABL":
                out += plan_abl(name, profile, tier=tier, dims=dims)
            elif p == "MOD":
                out += plan_mod(name, profile, tier=tier, readings=readings, dims=dims)
            elif p == "BCL":  # a paper without stage costs here is left out of the plan
                for corpus in BCL_CORPORA[tier]:
                    out += plan_bcl(name, corpus, profile, readings=readings, dims=dims)
    return out


# ---------------------------------------------------------------------------------------------
# rates: seconds per unit of work on a device, calibrated or predicted
# ---------------------------------------------------------------------------------------------

@dataclass
class Rates:
    """Seconds per unit of work.

    Attributes
    ----------
    device : str
    forward_s_per_flop : dict of str to float
        Per model name; ``"*"`` for any other.
    forward_source : str
        ``"calibrated ..."`` or ``"predicted ..."`` (how the forward figures were obtained).
    call_s_per_layer : float
        Fixed seconds of one layer's forward call (dispatch, kernel launches), besides its FLOPs.
    stats_s_per_element : float
        :class:`core.neurons.stats.NeuronStats` accumulation, per activation value and pass.
    kmeans_s_per_unit : float
        Balanced k-means on the CPU (:mod:`core.mod.moefication`'s torch algorithm), per
        ``d_mlp * k * d_model`` (one fit).
    kmeans_assign_s_per_unit : float
        One balanced assignment (the min-cost flow, which runs on the CPU whatever the device), per
        ``d_mlp * k``. On a GPU a fit costs :data:`KMEANS_ASSIGNMENTS` of them, its seeding and distances
        running on the device (:func:`kmeans_fit_seconds`).
    draw_s_per_element, lorenz_s_per_element : float
        The MOD-6 lottery null per neuron of a set drawn; the null Lorenz AUC per neuron per draw.
    linkage_s_per_n2 : float
        Complete-linkage tree per squared neuron count.
    cpu_s_per_flop : float
        The CPU's dense matrix product (the linkage's Gram matrix).
    cpu_source : str
    """

    device: str
    forward_s_per_flop: dict
    forward_source: str
    call_s_per_layer: float
    stats_s_per_element: float
    kmeans_s_per_unit: float
    draw_s_per_element: float
    lorenz_s_per_element: float
    linkage_s_per_n2: float
    cpu_s_per_flop: float
    cpu_source: str
    kmeans_assign_s_per_unit: float = 0.0
    kmeans_fit_s: float | None = None

    def forward(self, model: str) -> float:
        base = model.split(" on ")[0].removesuffix(":random")
        return self.forward_s_per_flop.get(base, self.forward_s_per_flop["*"])


#: Balanced assignments per MoEfication fit: Lloyd converged in 2-4 of them on every smollm2-135m layer
#: (trained and random) and on random Mistral-width rows (the torch algorithm of core.mod.moefication).
KMEANS_ASSIGNMENTS = 4


def kmeans_fit_seconds(n: int, dm: int, k: int, r: Rates) -> float:
    """Predicted seconds of one balanced k-means fit of ``n`` rows of width ``dm`` into ``k`` clusters.

    On the CPU: the calibrated fit scaled by ``n * k * dm``. On a GPU: the k-means++ seeding
    (``k * (2 + ln k)`` candidate distance columns) and :data:`KMEANS_ASSIGNMENTS` distance matrices at
    the device's rate (``2 n dm`` FLOPs a column), plus :data:`KMEANS_ASSIGNMENTS` min-cost-flow
    assignments on the CPU (``n * k`` arcs each), during which the GPU waits. ``r.kmeans_fit_s`` (a
    measured fit at Mistral-7B's width) replaces either, scaled by ``n * k * dm``.
    """
    if r.kmeans_fit_s is not None:
        return r.kmeans_fit_s * n * k * dm / math.prod(KMEANS_REFERENCE)
    if r.device.startswith("cuda"):
        columns = k * (2 + math.log(k)) + KMEANS_ASSIGNMENTS * k
        return (columns * 2.0 * n * dm * r.forward_s_per_flop["*"]
                + KMEANS_ASSIGNMENTS * n * k * r.kmeans_assign_s_per_unit)
    return n * k * dm * r.kmeans_s_per_unit


def cpu_seconds(cpu: dict, r: Rates) -> float:
    """Predicted seconds of a CPU-bound stage's work (:attr:`StageCost.cpu`)."""
    s = sum(fits * kmeans_fit_seconds(n, dm, k, r) for n, dm, k, fits in cpu.get("kmeans", []))
    s += cpu.get("draw_elements", 0) * r.draw_s_per_element
    s += cpu.get("lorenz_elements", 0) * r.lorenz_s_per_element
    s += sum(n * n * r.linkage_s_per_n2 + 2.0 * n * n * dk * r.cpu_s_per_flop for n, dk in cpu.get("linkage", []))
    return s


def predict(stages: list[StageCost], rates: Rates) -> list[StageCost]:
    """Fill every stage's ``seconds`` from ``rates`` (in place; returns ``stages``)."""
    for st in stages:
        st.seconds = (cpu_seconds(st.cpu, rates) if st.bound == "cpu" else
                      st.flops * rates.forward(st.model) + st.stats_elements * rates.stats_s_per_element
                      + st.layer_calls * rates.call_s_per_layer)
    return stages


def _layer(d_model: int, d_mlp: int, n_heads: int, n_kv: int, gated: bool, causal: bool):
    """One random transformer layer of the given widths (attention via ``scaled_dot_product_attention``
    with grouped K/V, then the MLP), for calibration."""
    import torch
    from torch import nn

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.dh, self.h, self.kv = d_model // n_heads, n_heads, n_kv
            self.q, self.o = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
            self.k, self.v = (nn.Linear(d_model, self.dh * n_kv) for _ in range(2))
            self.up, self.down = nn.Linear(d_model, d_mlp), nn.Linear(d_mlp, d_model)
            self.gate = nn.Linear(d_model, d_mlp) if gated else None

        def forward(self, x):
            b, t, _ = x.shape
            q = self.q(x).view(b, t, self.h, self.dh).transpose(1, 2)
            k, v = (m(x).view(b, t, self.kv, self.dh).transpose(1, 2) for m in (self.k, self.v))
            rep = self.h // self.kv
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
            a = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
            x = x + self.o(a.transpose(1, 2).reshape(b, t, -1))
            hdn = self.up(x)
            hdn = torch.nn.functional.silu(self.gate(x)) * hdn if self.gate is not None else \
                torch.nn.functional.gelu(hdn)
            return x + self.down(hdn)

    return Layer()


def time_layer(d: Dims, device: str, *, tokens: int, reps: int = 2) -> float:
    """Seconds per FLOP of one random layer of ``d``'s widths on ``device`` (:func:`_time`)."""
    import torch

    torch.manual_seed(0)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    one = Dims(d.family, d.kind, 1, d.d_model, d.d_mlp, d.n_heads, d.n_kv_heads, 1, d.max_length, d.gated)
    layer = _layer(d.d_model, d.d_mlp, d.n_heads, d.n_kv_heads, d.gated, d.kind == "causal").to(device, dtype)
    seq = d.image_tokens or min(256, d.max_length or 256)
    batch = max(1, tokens // seq)
    x = torch.randn(batch, seq, d.d_model, device=device, dtype=dtype)
    with torch.inference_mode():
        layer(x)  # warm-up
        if device.startswith("cuda"):
            def call():
                layer(x)
                torch.cuda.synchronize()
            best = _time(call, reps, single=False, wall=True)
        else:
            best = _time(lambda: layer(x), reps, single=False)
    return best / (batch * seq * one.flops_per_token(seq, 0.0))


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _time(f, reps: int = 2, *, single: bool = True, wall: bool = False) -> float:
    """Seconds of one call of ``f`` as an idle machine would take them: best of ``reps`` timings,
    each of as many calls as make :data:`CPU_CLOCK_MIN_S` of CPU time (the CPU clock ticks coarsely
    on some machines). Single-threaded work: CPU time (a shared machine does not inflate it);
    multi-threaded: the less of the wall time and CPU time / threads (a shared machine inflates the
    first, spinning threads the second). ``wall``: the wall time only (a GPU)."""
    import torch

    threads = max(1, torch.get_num_threads())
    best = float("inf")
    for _ in range(reps):
        t0, n = _clock(), 0
        while True:
            f()
            n += 1
            w, c = time.perf_counter() - t0[0], time.process_time() - t0[1]
            if c >= CPU_CLOCK_MIN_S or (wall and w >= CPU_CLOCK_MIN_S) or w >= 20 * CPU_CLOCK_MIN_S:
                break
        took = w if wall or c < CPU_CLOCK_MIN_S else c if single else min(w, c / threads)
        best = min(best, took / n)
    return best


def _calibrate_cpu() -> dict:
    """The CPU-bound stages at small sizes on this machine's CPU (about 20 s on 2 cores), in CPU
    seconds (they run mostly on one thread; a shared machine does not inflate CPU time)."""
    import numpy as np
    import torch

    from core.bcl.neuron_clusters import cluster_neurons, normalize_rows
    from core.mod.lorenz import null_lorenz_auc
    from core.mod.moefication import assign, fit_torch
    from core.mod.nulls import lottery_null

    rng = np.random.default_rng(0)
    n, dm, k = 1536, 576, 48  # smollm2-135m's layer
    w = rng.standard_normal((n, dm)).astype(np.float32)
    t_km = _time(lambda: fit_torch(w, k, seed=0, n_init=1, max_iter=300, device="cpu"), reps=1)
    dist = torch.from_numpy(rng.random((n, k)))
    t_assign = _time(lambda: assign(dist, n // k), reps=1)
    n_sub, n_all, draws = 27, 100_000, 2  # the full tier's 27 text subsets; cost ~ linear in N
    o = rng.random((n_sub, n_sub))
    sizes = rng.integers(1_000, 10_000, n_sub)
    t_draw = _time(lambda: lottery_null(o, sizes, n_all, n_draws=draws, seed=0))
    labels = np.repeat(np.arange(96), 32)
    t_lor = _time(lambda: null_lorenz_auc(labels, 104, n_draws=200, seed=0))
    nl, dl = 2000, 16
    x = normalize_rows(rng.standard_normal((nl, dl)))
    t_link = _time(lambda: cluster_neurons(x, [20, 50]), reps=1)
    a = torch.randn(1024, 1024)
    t_mm = _time(lambda: a @ a, reps=3, single=False)
    return {"kmeans_s_per_unit": t_km / (n * k * dm), "kmeans_assign_s_per_unit": t_assign / (n * k),
            "draw_s_per_element": t_draw / (draws * n_sub * n_all),
            "lorenz_s_per_element": t_lor / (200 * labels.size), "linkage_s_per_n2": t_link / nl ** 2,
            "cpu_s_per_flop": t_mm / (2 * 1024 ** 3),
            "sizes": {"kmeans": [n, dm, k], "lottery": [n_sub, n_all, draws], "lorenz": [labels.size, 200],
                      "linkage": [nl, dl]}}


def _stats_rate(device: str) -> float:
    import torch

    from core.neurons.stats import NeuronStats

    x = torch.randn(2048, 1024, device=device)
    st = NeuronStats(1024)
    t1 = _time(lambda: st.update(x), reps=2, single=False)
    st2 = NeuronStats(1024)
    st2.update(x)
    t2 = _time(lambda: st2.update_histogram(x), reps=2, single=False)
    return (t1 + t2) / 2 / x.numel()


def _calibration_path(device: str) -> Path:
    from core.cache import cache_dir

    import torch

    label = (torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda")
             else f"cpu-{torch.get_num_threads()}threads")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    return cache_dir("plan") / f"calibration-v{CALIBRATION_VERSION}-{safe}.json"


def calibrate(device: str = "cpu", *, models=None, tokens: int = 256, progress: bool = True) -> dict:
    """Measure this device's rates and cache them (``cache_dir("plan")``).

    Times one random layer of each model's widths (:data:`DIMS`; fp32 on the CPU, bf16 on CUDA) on
    about ``tokens`` tokens, the statistics accumulation, and the CPU-bound stages at small sizes.
    About a minute on 2 CPU cores for the full tier's widths.

    Returns
    -------
    dict
        JSON: ``device``, ``label``, ``forward_s_per_flop`` {model: s/FLOP}, ``stats_s_per_element``,
        the CPU figures of :class:`Rates`, ``cpu_count``, ``threads``, ``when``, ``seconds``.
    """
    import torch

    from core.cache import atomic_write_json

    t0 = time.perf_counter()
    names = list(models or DIMS)
    fwd, done = {}, {}
    for name in names:
        d = DIMS[name]
        shape = (d.d_model, d.d_mlp, d.n_heads, d.n_kv_heads, d.gated, d.kind == "causal", d.image_tokens)
        if shape not in done:  # models of the same widths share one measurement
            if progress:
                print(f"calibrating {name} ({d.d_model} x {d.d_mlp}) on {device} ...", file=sys.stderr)
            done[shape] = time_layer(d, device, tokens=tokens)
        fwd[name] = done[shape]
    tiny = Dims("llama", "causal", 1, 64, 256, 4, 4, 1, 8)
    call = time_layer(tiny, device, tokens=8, reps=3) * 8 * tiny.flops_per_token(8, 0.0)
    out = {"version": CALIBRATION_VERSION, "device": device, "path": str(_calibration_path(device)),
           "forward_s_per_flop": fwd, "call_s_per_layer": call, "stats_s_per_element": _stats_rate(device),
           **_calibrate_cpu(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
           "host": platform.node(), "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(_calibration_path(device), out)
    return out


def _cached(device: str) -> dict | None:
    from core.cache import load_cached

    return load_cached(_calibration_path(device), lambda p: json.loads(p.read_text()))


def _cpu_figures(recalibrate: bool = False) -> dict:
    """This machine's CPU-stage figures: from its cached CPU calibration, else from a cached run of
    the CPU-stage part alone, else measured now (about 20 s) and cached."""
    import torch

    from core.cache import atomic_write_json, cache_dir, load_cached

    if not recalibrate and (full := _cached("cpu")) is not None:
        return full
    path = cache_dir("plan") / f"cpu-stages-v{CALIBRATION_VERSION}-{torch.get_num_threads()}threads.json"
    if not recalibrate and (found := load_cached(path, lambda p: json.loads(p.read_text()))) is not None:
        return found
    print("calibrating the CPU-bound stages (about 20 s) ...", file=sys.stderr)
    out = {**_calibrate_cpu(), "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
           "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    atomic_write_json(path, out)
    return out


def load_rates(device: str, *, gpu: str = "h100", utilisation: float = ASSUMED_UTILISATION,
               recalibrate: bool = False, progress: bool = True, kmeans_fit_s: float | None = None) -> Rates:
    """The rates of ``device``.

    A device present here: its cached calibration (:func:`calibrate`, run now when absent or when
    ``recalibrate``). A CUDA device that this machine lacks: ``GPU_PEAK[gpu]`` x ``utilisation``,
    labelled predicted. CPU-bound stages use this machine's CPU figures either way; ``kmeans_fit_s``
    (seconds of one balanced k-means fit at Mistral-7B's width, :data:`KMEANS_REFERENCE`, e.g. from a
    run's recorded ``mod moefication`` stage) replaces the k-means extrapolation from a small fit.

    Raises
    ------
    KeyError
        For an unknown ``gpu`` (the message lists :data:`GPU_PEAK`).
    ValueError
        For a utilisation outside (0, 1].
    """
    import torch

    if gpu not in GPU_PEAK:
        raise KeyError(f"gpu: expected one of {sorted(GPU_PEAK)}, got {gpu!r}")
    if not 0 < utilisation <= 1:
        raise ValueError(f"utilisation: expected a fraction in (0, 1], got {utilisation}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        cpu = _cpu_figures(recalibrate)
        peak = GPU_PEAK[gpu]
        rates_fwd = {"*": 1.0 / (peak["bf16_flops"] * utilisation)}
        source = (f"PREDICTED (no GPU on this machine): {peak['name']} bf16 dense "
                  f"{peak['bf16_flops'] / 1e12:.0f} TFLOP/s (published) x assumed utilisation {utilisation:.0%}")
        stats_rate = 32.0 / (peak["hbm_bytes_s"] * 0.5)  # ~32 bytes moved per value and pass, half the bandwidth
        call = GPU_LAYER_CALL_S
        source += f"; {call * 1e6:.0f} us per layer call (assumed)"
        dev = f"cuda ({peak['name']}, predicted)"
    else:
        cal = None if recalibrate else _cached(device)
        if cal is None:
            cal = calibrate(device, progress=progress)
        cpu = cal if device == "cpu" else _cpu_figures()
        rates_fwd = {**cal["forward_s_per_flop"], "*": max(cal["forward_s_per_flop"].values())}
        source = (f"calibrated on {device} ({cal['threads']} threads, {cal['cpu_count']} cores, {cal['when']}): "
                  f"one random layer of each model's widths")
        stats_rate = cal["stats_s_per_element"]
        call = cal.get("call_s_per_layer", 0.0)
        source += f", {call * 1e6:.0f} us per layer call"
        dev = device
    km = cpu["kmeans_s_per_unit"]
    km_note = ("k-means on the GPU: seeding and distances at its rate, "
               f"{KMEANS_ASSIGNMENTS} min-cost-flow assignments a fit on the CPU scaled by d_mlp x k"
               if dev.startswith("cuda") else "k-means from one small fit scaled by d_mlp x k x d_model")
    if kmeans_fit_s is not None:
        if not kmeans_fit_s > 0:
            raise ValueError(f"kmeans_fit_s: expected seconds > 0, got {kmeans_fit_s}")
        km_note = f"k-means {kmeans_fit_s:g} s per fit at 14336 x 4096, k = 128 (given), scaled by d_mlp x k x d_model"
    return Rates(dev, rates_fwd, source, call, stats_rate, km, cpu["draw_s_per_element"],
                 cpu["lorenz_s_per_element"], cpu["linkage_s_per_n2"], cpu["cpu_s_per_flop"],
                 f"calibrated on this machine's CPU ({cpu['threads']} threads, CPU seconds) at small sizes, "
                 f"scaled ({km_note}; nulls by elements drawn; linkage by neurons^2)",
                 kmeans_assign_s_per_unit=cpu.get("kmeans_assign_s_per_unit", 0.0), kmeans_fit_s=kmeans_fit_s)


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------

def fmt_seconds(s: float | None) -> str:
    """``"42 s"``, ``"12.5 min"``, ``"3.2 h"`` or ``"4.1 d"``."""
    if s is None or s != s:
        return "-"
    if s < 90:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def _count(n: float) -> str:
    return f"{n:,.0f}" if n else "-"


def render(stages: list[StageCost], rates: Rates, *, tier: str, profile: str) -> str:
    """The plan as a Markdown table with totals per paper, the rates' sources and the CPU-bound stages
    that keep the GPU waiting longer than :data:`CPU_WAIT_LIMIT_S`."""
    lines = [f"Cost plan: tier {tier}, profile {profile}, device {rates.device}", "",
             f"- forward passes: {rates.forward_source}",
             f"- CPU-bound stages: {rates.cpu_source}", "",
             "| paper | stage | model | forward passes | tokens | TFLOP | time | bound | what |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |"]
    for st in stages:
        bound = "CPU" + (" (GPU waits > 5 min)" if st.seconds > CPU_WAIT_LIMIT_S else "") \
            if st.bound == "cpu" else "device"
        lines.append(f"| {st.paper} | {st.stage} | {st.model} | {_count(st.passes)} | {_count(st.tokens)} | "
                     f"{st.flops / 1e12:,.1f} | {fmt_seconds(st.seconds)} | {bound} | {st.note} |")
    lines += ["", "| paper | device time | CPU-bound time | total |", "| --- | ---: | ---: | ---: |"]
    papers = list(dict.fromkeys(st.paper for st in stages))
    for p in papers + ["all"]:
        mine = [st for st in stages if p in ("all", st.paper)]
        dev = sum(st.seconds for st in mine if st.bound == "device")
        cpu = sum(st.seconds for st in mine if st.bound == "cpu")
        lines.append(f"| {p} | {fmt_seconds(dev)} | {fmt_seconds(cpu)} | {fmt_seconds(dev + cpu)} |")
    waits = [st for st in stages if st.bound == "cpu" and st.seconds > CPU_WAIT_LIMIT_S]
    lines.append("")
    lines.append("CPU stages over 5 minutes (the device waits): " + (
        "; ".join(f"{st.stage} {st.model} {fmt_seconds(st.seconds)}" for st in waits) if waits else "none"))
    return "\n".join(lines)


def recorded_stages(run_dir: str | Path) -> list[dict]:
    """A run's stage records: ``run.json``'s ``stages``, else its ``stages.jsonl``."""
    from core.timing import STAGES_FILE, read_log

    run_dir = Path(run_dir)
    meta = run_dir / "run.json"
    if meta.exists():
        stages = json.loads(meta.read_text()).get("stages")
        if stages:
            return stages
    return read_log(run_dir / STAGES_FILE)


def infer_tier(records: list[dict]) -> str:
    """``"small"`` when every recorded model is of the small tier, else ``"full"`` (also for none)."""
    from core.zoo.registry import MODELS

    names = {str(r["model"]).split(" on ")[0].removesuffix(":random") for r in records}
    if names and all(n in MODELS and MODELS[n].tier == "small" for n in names):
        return "small"
    return "full"


def compare_run(stages: list[StageCost], records: list[dict]) -> str:
    """Predicted against recorded seconds per (stage, model), as a Markdown table: the wall time, the
    ratio, and the CPU time over all threads (on a shared CPU the wall time grows with the load, the
    CPU time much less; on a CPU run of ``t`` threads, CPU time / t is the wall time of an idle machine).
    Recorded stages that the plan lacks are listed with no prediction."""
    rec: dict = {}
    for r in records:
        key = (r["stage"], str(r["model"]).removesuffix(":random"))
        wall, cpu = rec.get(key, (0.0, 0.0))
        rec[key] = (wall + float(r["seconds"]), cpu + float(r.get("cpu_seconds") or 0.0))
    lines = ["| stage | model | predicted | recorded | recorded / predicted | recorded CPU time |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    seen = set()
    for st in stages:
        key = (st.stage, st.model)
        seen.add(key)
        got = rec.get(key)
        if got is None:
            lines.append(f"| {st.stage} | {st.model} | {fmt_seconds(st.seconds)} | not recorded | - | - |")
            continue
        ratio = f"{got[0] / st.seconds:.2f}" if st.seconds else "-"
        lines.append(f"| {st.stage} | {st.model} | {fmt_seconds(st.seconds)} | {fmt_seconds(got[0])} | {ratio} | "
                     f"{fmt_seconds(got[1])} |")
    for key, got in rec.items():
        if key not in seen:
            lines.append(f"| {key[0]} | {key[1]} | not planned | {fmt_seconds(got[0])} | - | {fmt_seconds(got[1])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m core.plan``: see the module docstring and ``--help``."""
    from core.profiles import get_profile
    from core.readings import parse_readings

    ap = argparse.ArgumentParser(prog="python -m core.plan", description=__doc__.split("\n\n")[0])
    ap.add_argument("--tier", default=None, choices=("full", "small"),
                    help="default full (with --from-run: the tier of the run's models)")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--device", default="cuda", help="cpu, cuda or cuda:N (default cuda)")
    ap.add_argument("--readings", default=None, help="as pytest's --readings (default: the profile's)")
    ap.add_argument("--papers", default="ABL,MOD,BCL")
    ap.add_argument("--gpu", default="h100", choices=sorted(GPU_PEAK),
                    help="the GPU whose published throughput predicts a CUDA plan on a machine without one")
    ap.add_argument("--utilisation", type=float, default=ASSUMED_UTILISATION,
                    help="assumed fraction of the GPU's peak (predicted CUDA plans only)")
    ap.add_argument("--calibrate", action="store_true", help="measure this device's rates again")
    ap.add_argument("--kmeans-fit-s", type=float, default=None, metavar="SECONDS",
                    help="seconds of one balanced k-means fit at Mistral-7B's width (14336 x 4096, k = 128), "
                         "e.g. recorded by a run; default: extrapolated from the calibration's small fit")
    ap.add_argument("--from-run", default=None, metavar="RUN_DIR",
                    help="compare the plan with the stage times the run recorded (profile from its run.json)")
    ap.add_argument("--json", action="store_true", help="print the stages as JSON")
    a = ap.parse_args(argv)
    profile_name = a.profile
    if a.from_run:
        meta = Path(a.from_run) / "run.json"
        if meta.exists():
            run = json.loads(meta.read_text())
            profile_name = run.get("profile", profile_name)
    records = recorded_stages(a.from_run) if a.from_run else []
    tier = a.tier or infer_tier(records)
    profile = get_profile(profile_name)
    readings = parse_readings(a.readings, profile.readings)
    rates = load_rates(a.device, gpu=a.gpu, utilisation=a.utilisation, recalibrate=a.calibrate,
                       kmeans_fit_s=a.kmeans_fit_s)
    stages = predict(plan_stages(tier, profile, readings=readings, papers=tuple(a.papers.split(","))), rates)
    if a.json:
        print(json.dumps([asdict(s) for s in stages], indent=1))
    elif a.from_run:
        print(f"Plan against run {a.from_run} (tier {tier}, profile {profile.name}, {rates.device})\n")
        print(compare_run(stages, records))
    else:
        print(render(stages, rates, tier=tier, profile=profile.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
