"""Neuron sites per architecture family, and hooks that record or ablate them.

One table (:data:`ARCHITECTURES`) says, for every architecture family, where the three kinds of
neurons of ``claims.md`` live; nothing else in the harness branches on architecture:

- ``mlp``: MLP neurons, the MLP's hidden units after the activation function, i.e. the *input* of
  ``W_out`` (for gated MLPs: the input of ``down_proj``, ``act(gate(x)) * up(x)``);
- ``attn``: attention pre-out neurons (the "z" activations), the *input* of the attention output
  projection, one per head dimension (ABL section 3.2);
- ``resid``: residual neurons (BCL), the hidden state after the embedding layer (the input of block
  0) and after every block, so ``n_layers + 1`` layers.

``W_in`` is the MLP's input matrix, returned with shape ``(d_mlp, d_model)`` (one row per MLP neuron,
MOD Eq. 2), whatever the storage convention of the family.

Hooks are short-lived context managers over an unmodified Hugging Face model (as in baukit's
``nethook``): :func:`trace` records, :func:`ablate` replaces ``x_i <- m_i x_i + (1 - m_i) v_i``. Both
remove every hook on the way out, also when the body raises.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from .errors import UnknownNameError

SITES = ("mlp", "attn", "resid")


@dataclass(frozen=True)
class Architecture:
    """Where the neurons of one architecture family are.

    Attributes
    ----------
    blocks : str
        Dotted path of the ``nn.ModuleList`` of transformer blocks, from the top-level model.
    mlp_out : str
        Path, inside a block, of ``W_out``: its input is the MLP neurons.
    attn_out : str
        Path, inside a block, of the attention output projection: its input is the attention
        pre-out neurons.
    w_in : str
        Path, inside a block, of the MLP input projection (``up_proj`` for gated MLPs).
    w_in_transposed : bool
        True where the module stores its weight as ``(d_model, d_mlp)`` (GPT-2's ``Conv1D``).
    gate : str or None
        Path of the gate projection of gated MLPs (``gate_proj``), else None.
    """

    blocks: str
    mlp_out: str
    attn_out: str
    w_in: str
    w_in_transposed: bool = False
    gate: str | None = None


_LLAMA = Architecture("model.layers", "mlp.down_proj", "self_attn.o_proj", "mlp.up_proj",
                      gate="mlp.gate_proj")
_ENCODER = "encoder.layer"

#: ``config.model_type`` -> :class:`Architecture`.
ARCHITECTURES: dict[str, Architecture] = {
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "gpt2": Architecture("transformer.h", "mlp.c_proj", "attn.c_proj", "mlp.c_fc", w_in_transposed=True),
    "opt": Architecture("model.decoder.layers", "fc2", "self_attn.out_proj", "fc1"),
    "bert": Architecture(f"bert.{_ENCODER}", "output.dense", "attention.output.dense", "intermediate.dense"),
    "roberta": Architecture(f"roberta.{_ENCODER}", "output.dense", "attention.output.dense",
                            "intermediate.dense"),
    "vit": Architecture("vit.layers", "mlp.fc2", "attention.o_proj", "mlp.fc1"),
}


def architecture(model: nn.Module) -> Architecture:
    """The :class:`Architecture` of a Hugging Face model, from ``model.config.model_type``.

    Raises
    ------
    UnknownNameError
        If the family is not in :data:`ARCHITECTURES` (the message lists the known families).
    """
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in ARCHITECTURES:
        raise UnknownNameError("architecture family", str(model_type), ARCHITECTURES)
    arch = ARCHITECTURES[model_type]
    if model_type in ("bert", "roberta") and not _has(model, arch.blocks):
        # The bare encoder (BertModel) has no ``bert.`` prefix.
        arch = Architecture(_ENCODER, arch.mlp_out, arch.attn_out, arch.w_in)
    return arch


def _has(model: nn.Module, path: str) -> bool:
    try:
        model.get_submodule(path)
        return True
    except AttributeError:
        return False


def blocks(model: nn.Module) -> nn.ModuleList:
    """The model's transformer blocks, in order."""
    return model.get_submodule(architecture(model).blocks)


def n_layers(model: nn.Module, site: str = "mlp") -> int:
    """Number of layers of a site: the number of blocks, plus one for ``resid``."""
    _check_site(site)
    return len(blocks(model)) + (site == "resid")


def _in_features(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return module.in_features
    # transformers' Conv1D stores (in_features, out_features).
    return int(module.weight.shape[0])


def site_modules(model: nn.Module, site: str) -> list[nn.Module]:
    """The module whose *input* carries the site's neurons, one per layer (``mlp`` and ``attn``)."""
    _check_site(site)
    if site == "resid":
        raise ValueError("the residual site is the output of each block, not a module's input")
    arch = architecture(model)
    path = arch.mlp_out if site == "mlp" else arch.attn_out
    return [block.get_submodule(path) for block in blocks(model)]


def site_width(model: nn.Module, site: str) -> int:
    """Neurons per layer of a site: d_mlp (``mlp``), n_heads * d_head (``attn``), d_model (``resid``)."""
    _check_site(site)
    if site == "resid":
        return int(model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.n_embd)
    return _in_features(site_modules(model, site)[0])


def w_in(model: nn.Module, layer: int, *, which: str = "up") -> torch.Tensor:
    """``W_in`` of one layer as a tensor of shape ``(d_mlp, d_model)`` (one row per MLP neuron).

    Parameters
    ----------
    which : {"up", "gate", "concat"}
        For gated MLPs: ``up_proj`` (default, the modularity paper's code), ``gate_proj``, or both
        concatenated along the model dimension (shape ``(d_mlp, 2 * d_model)``). Non-gated MLPs only
        accept ``"up"``.

    Raises
    ------
    ValueError
        For ``which`` not in the list, or ``gate``/``concat`` on a non-gated MLP.
    """
    if which not in ("up", "gate", "concat"):
        raise ValueError(f"which must be one of 'up', 'gate', 'concat', got {which!r}")
    arch = architecture(model)
    block = blocks(model)[layer]

    def weight(path: str) -> torch.Tensor:
        w = block.get_submodule(path).weight.detach()
        return w.T if arch.w_in_transposed else w

    if which == "up":
        return weight(arch.w_in)
    if arch.gate is None:
        raise ValueError(f"W_in option {which!r} needs a gated MLP; {model.config.model_type} has none")
    if which == "gate":
        return weight(arch.gate)
    return torch.cat([weight(arch.w_in), weight(arch.gate)], dim=1)


def _check_site(site: str) -> None:
    if site not in SITES:
        raise UnknownNameError("neuron site", site, SITES)


def _layers(model: nn.Module, site: str, layers: Sequence[int] | None) -> list[int]:
    n = n_layers(model, site)
    if layers is None:
        return list(range(n))
    bad = [i for i in layers if not 0 <= i < n]
    if bad:
        raise ValueError(f"layers {bad} out of range for site {site!r} with {n} layers")
    return list(layers)


def _first(output):
    return output[0] if isinstance(output, tuple) else output


@contextmanager
def trace(
    model: nn.Module,
    site: str,
    fn: Callable[[int, torch.Tensor], None],
    *,
    layers: Sequence[int] | None = None,
) -> Iterator[None]:
    """Call ``fn(layer, activations)`` with the site's activations on every forward pass.

    Parameters
    ----------
    model : transformers.PreTrainedModel
    site : {"mlp", "attn", "resid"}
    fn : callable
        Receives the layer index and the activations, a tensor of shape ``(..., n_neurons)``
        (``(batch, seq, n_neurons)`` for text and images), detached. It must not modify them.
    layers : sequence of int, optional
        Layers to record (default: all). For ``resid``, layer 0 is the embedding output.

    Notes
    -----
    Hooks exist only inside the ``with`` block and are removed on the way out, also on error.
    """
    _check_site(site)
    handles = []
    try:
        if site == "resid":
            bl = blocks(model)
            for layer in _layers(model, site, layers):
                if layer == 0:
                    def pre(_m, args, kwargs, _l=layer):
                        x = args[0] if args else kwargs["hidden_states"]
                        fn(_l, x.detach())
                    handles.append(bl[0].register_forward_pre_hook(pre, with_kwargs=True))
                else:
                    def post(_m, _args, output, _l=layer):
                        fn(_l, _first(output).detach())
                    handles.append(bl[layer - 1].register_forward_hook(post))
        else:
            mods = site_modules(model, site)
            for layer in _layers(model, site, layers):
                def pre(_m, args, _l=layer):
                    fn(_l, args[0].detach())
                handles.append(mods[layer].register_forward_pre_hook(pre))
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def ablate(
    model: nn.Module,
    site: str,
    mask: torch.Tensor | Mapping[int, torch.Tensor],
    offset: torch.Tensor | Mapping[int, torch.Tensor] | float = 0.0,
) -> Iterator[None]:
    """Replace neurons: ``x_i <- m_i * x_i + (1 - m_i) * v_i`` (claims.md, "Ablation").

    Parameters
    ----------
    model : transformers.PreTrainedModel
    site : {"mlp", "attn"}
        Residual neurons (``resid``) are ablated on the output of each block (layer 0: the input of
        block 0), so the same formula applies to them.
    mask : tensor of shape (n_layers, n_neurons) or {layer: tensor of shape (n_neurons,)}
        1 keeps a neuron, 0 replaces it (bool or float). Layers whose mask is all ones get no hook.
    offset : float, tensor or {layer: tensor}
        ``v``: a scalar, shape ``(n_layers, n_neurons)`` / ``{layer: (n_neurons,)}`` for a constant
        per neuron (zero, mean, peak ablation), or ``(n_layers, seq, n_neurons)`` /
        ``{layer: (seq, n_neurons)}`` for a position-dependent value (resampling); then ``seq`` must
        be at least the input's sequence length and position ``t`` of the input takes row ``t``.

    Notes
    -----
    With an all-ones mask the model's output is bit for bit the unmodified one. Hooks are removed on
    the way out of the block, also on error.
    """
    _check_site(site)
    n = n_layers(model, site)
    masks = dict(mask) if isinstance(mask, Mapping) else {i: mask[i] for i in range(mask.shape[0])}
    if any(not 0 <= i < n for i in masks):
        raise ValueError(f"mask layers {sorted(masks)} out of range for site {site!r} with {n} layers")

    def offset_of(layer: int):
        if isinstance(offset, (int, float)):
            return float(offset)
        return offset[layer]

    plans = {}
    for layer, m in masks.items():
        m = m.to(torch.float32)
        if bool((m == 1).all()):
            continue
        v = offset_of(layer)
        keep = m
        # c = (1 - m) * v, precomputed: the hook then costs one multiply and one add.
        const = (1 - m) * (torch.as_tensor(v, dtype=torch.float32) if not torch.is_tensor(v) else v.float())
        plans[layer] = (keep, const)

    def apply(x: torch.Tensor, plan) -> torch.Tensor:
        keep, const = plan
        keep = keep.to(device=x.device, dtype=x.dtype)
        const = const.to(device=x.device, dtype=x.dtype)
        if const.ndim == 2:  # (seq, n): position-dependent offsets
            seq = x.shape[-2]
            if const.shape[0] < seq:
                raise ValueError(
                    f"position-dependent offset covers {const.shape[0]} positions, input has {seq}"
                )
            const = const[:seq]
        return x * keep + const

    handles = []
    try:
        if site == "resid":
            bl = blocks(model)
            for layer, plan in plans.items():
                if layer == 0:
                    def pre(_m, args, kwargs, _p=plan):
                        if args:
                            return (apply(args[0], _p), *args[1:]), kwargs
                        kwargs = dict(kwargs, hidden_states=apply(kwargs["hidden_states"], _p))
                        return args, kwargs
                    handles.append(bl[0].register_forward_pre_hook(pre, with_kwargs=True))
                else:
                    def post(_m, _args, output, _p=plan):
                        if isinstance(output, tuple):
                            return (apply(output[0], _p), *output[1:])
                        return apply(output, _p)
                    handles.append(bl[layer - 1].register_forward_hook(post))
        else:
            mods = site_modules(model, site)
            for layer, plan in plans.items():
                def pre(_m, args, _p=plan):
                    return (apply(args[0], _p), *args[1:])
                handles.append(mods[layer].register_forward_pre_hook(pre))
        yield
    finally:
        for h in handles:
            h.remove()
