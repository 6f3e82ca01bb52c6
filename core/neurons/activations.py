"""Streaming neuron statistics over a model's forward passes, cached on disk.

:func:`collect_stats` runs the two streaming passes of :class:`core.neurons.stats.NeuronStats` (moments, then
the per-neuron 100-bin histogram that gives the peak) over a collection split, with hooks from
:mod:`core.zoo.sites`; it never holds the raw activations. :func:`record` keeps the activations of one
small input (for resampling).

The statistics pass runs the model's body (:func:`body`), not its output head, whose logits it
would never read.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from core.batching import Budget, items_per_batch, with_backoff
from core.zoo import sites
from core.cache import atomic_path, cache_dir, load_cached
from core.errors import NonFiniteActivationError
from core.evaluate import EvalSet
from core.neurons.stats import NeuronStats


def body(model):
    """The part of ``model`` that runs every block of :mod:`core.zoo.sites`, without the output head.

    The statistics read only the hooks, so the task head (a causal LM's ``lm_head``, a masked LM's
    ``cls``, an image classifier's ``classifier``) is dead work there: SmolLM2-135M's ``lm_head``
    is about 21% of its multiply-adds and a (batch, seq, 49152) float32 logits tensor per batch
    (403 MB at 8 x 256). Returns ``model.base_model`` (the model under ``base_model_prefix``)
    where it holds the model's blocks, else ``model`` itself (a bare base model, or a wrapper
    whose blocks live elsewhere). The blocks then see exactly the inputs and arithmetic of the
    whole model's forward, so the statistics are bit for bit the same (``tests/test_stats_body.py``).
    """
    base = getattr(model, "base_model", model)
    if base is model:
        return model
    blocks = sites.blocks(model)
    return base if any(m is blocks for m in base.modules()) else model


def _forward_all(model, data: EvalSet, batch_size: int, progress: bool, desc: str) -> None:
    device = next(model.parameters()).device
    n = data.inputs.shape[0]
    run = body(model)  # no output head: its logits are never used here
    for start in tqdm(range(0, n, batch_size), desc=desc, disable=not progress, leave=False):
        run(**data.model_inputs(start, min(start + batch_size, n), device))


@torch.inference_mode()
def collect_stats(
    model,
    site: str,
    data: EvalSet,
    *,
    batch_size: int | Budget = 8,
    histogram: bool = True,
    progress: bool = False,
    model_name: str = "model",
    key: str | None = None,
) -> list[NeuronStats]:
    """Per-layer :class:`NeuronStats` of a site over ``data`` (the collection split).

    Parameters
    ----------
    model : transformers model
    site : {"mlp", "attn", "resid"}
    data : EvalSet
        Collection inputs (labels are ignored). Every position of every window is a sample.
    batch_size : int or core.batching.Budget
        Windows or images per forward pass, or a budget (:func:`core.batching.items_per_batch`); a
        batch that does not fit in memory is halved and the pass rerun from the start
        (:func:`core.batching.with_backoff`). The statistics do not depend on it beyond float rounding.
    histogram : bool
        Run the second pass too, which gives ``peak`` (ABL section 3.4).
    key : str, optional
        Cache key: if given, the statistics are saved under ``cache_dir("stats")/<key>.safetensors``
        and reloaded on the next call with the same key. The key must encode everything that
        determines the statistics (model and its weights, data, split, sizes, site). A cached file that
        does not load is named in a :class:`core.cache.CacheDamagedWarning` and recomputed.

    Returns
    -------
    list of NeuronStats, one per layer of the site
        Each also has ``first_position_extreme``: a BoolTensor of shape (n_neurons,), True where the
        neuron's collection min or max occurs at the first position of a window (only the first
        position), or None for sites without a position axis.

    Raises
    ------
    NonFiniteActivationError
        On NaN or infinite activations, naming the model, the site and the layer.
    MemoryError
        If one window or image per forward pass does not fit in memory.
    """
    path = cache_dir("stats") / f"{key}.safetensors" if key else None
    n_layers, width = sites.n_layers(model, site), sites.site_width(model, site)
    if path is not None and (found := load_cached(path, lambda p: _load(p, n_layers))) is not None:
        return found  # (a damaged file is named in a warning, removed and recomputed)
    size = items_per_batch(batch_size, seq_len=None if data.kind == "image" else data.inputs.shape[1],
                           n_items=data.inputs.shape[0])
    # each pass restarts from nothing when its batch does not fit and is halved (core.batching): a
    # failed forward may have fed some layers' hooks
    inf_ = float("inf")

    def moments_pass(bs: int):
        stats = [NeuronStats(width) for _ in range(n_layers)]
        # extremes at the first position of a window vs the others (ABL diagnostics, core.abl.ablation.peak_diagnostics)
        ext = {k: torch.full((n_layers, width), v, dtype=torch.float64)
               for k, v in (("first_min", inf_), ("first_max", -inf_), ("rest_min", inf_), ("rest_max", -inf_))}

        def moments(layer: int, x: torch.Tensor) -> None:
            try:
                stats[layer].update(x.reshape(-1, width))
            except FloatingPointError:
                bad = int((~torch.isfinite(x)).sum())
                raise NonFiniteActivationError(model_name, site, layer, bad) from None
            if x.ndim == 3 and x.shape[1] > 1:
                first, rest = x[:, 0].double(), x[:, 1:].reshape(-1, width).double()
                ext["first_min"][layer] = torch.minimum(ext["first_min"][layer], first.min(0).values.cpu())
                ext["first_max"][layer] = torch.maximum(ext["first_max"][layer], first.max(0).values.cpu())
                ext["rest_min"][layer] = torch.minimum(ext["rest_min"][layer], rest.min(0).values.cpu())
                ext["rest_max"][layer] = torch.maximum(ext["rest_max"][layer], rest.max(0).values.cpu())

        with sites.trace(model, site, moments):
            _forward_all(model, data, bs, progress, f"{model_name}: {site} statistics")
        return stats, ext

    what = f"{model_name}: {site} statistics"  # one name: the peaks' pass starts at the size that fitted
    stats, ext = with_backoff(moments_pass, size, what=what, owner=model)
    if histogram:
        moments_only = copy.deepcopy(stats)

        def histogram_pass(bs: int):
            fresh = copy.deepcopy(moments_only)  # a retried pass starts from empty histograms

            def hist(layer: int, x: torch.Tensor) -> None:
                fresh[layer].update_histogram(x.reshape(-1, width))

            with sites.trace(model, site, hist):
                _forward_all(model, data, bs, progress, f"{model_name}: {site} peaks")
            return fresh

        stats = with_backoff(histogram_pass, size, what=what, owner=model)
    first = ((ext["first_min"] < ext["rest_min"]) | (ext["first_max"] > ext["rest_max"])) \
        if torch.isfinite(ext["rest_min"]).all() else None
    for i, s in enumerate(stats):
        s.first_position_extreme = None if first is None else first[i]
    if path is not None:
        tensors = {f"{i}.{k}": v.contiguous() for i, s in enumerate(stats)
                   for k, v in s.state_dict().items()}
        if first is not None:
            tensors["first_position_extreme"] = first.to(torch.uint8).contiguous()
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp))
    return stats


def _load(path, n_layers: int) -> list[NeuronStats]:
    tensors = load_file(str(path))
    out = []
    for i in range(n_layers):
        prefix = f"{i}."
        out.append(NeuronStats.from_state_dict(
            {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}))
        first = tensors.get("first_position_extreme")
        out[-1].first_position_extreme = None if first is None else first[i].bool()
    return out


@torch.inference_mode()
def record(model, site: str, inputs: dict[str, torch.Tensor],
           layers: Sequence[int] | None = None) -> torch.Tensor:
    """Activations of a site on one input, stacked over layers.

    Parameters
    ----------
    inputs : dict
        Model keyword arguments for a batch of one (``input_ids`` of shape (1, seq) or
        ``pixel_values`` of shape (1, C, H, W)).

    Returns
    -------
    FloatTensor of shape (n_layers, seq, n_neurons), on the CPU
    """
    seen: dict[int, torch.Tensor] = {}
    device = next(model.parameters()).device
    with sites.trace(model, site, lambda l, a: seen.__setitem__(l, a[0].float().cpu()), layers=layers):
        model(**{k: v.to(device) for k, v in inputs.items()})
    return torch.stack([seen[i] for i in sorted(seen)])
