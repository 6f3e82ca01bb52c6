"""Neuron sites per architecture family, and hooks that record or ablate them.

One table (:data:`ARCHITECTURES`) says, for every architecture family, where the three kinds of
neurons of ``claims.md`` live; nothing else in the harness branches on architecture:

- ``mlp``: MLP neurons, the MLP's hidden units after the activation function, i.e. the *input* of
  ``W_out`` (for gated MLPs: the input of ``down_proj``, ``act(gate(x)) * up(x)``);
- ``attn``: attention pre-out neurons (the "z" activations), the *input* of the attention output
  projection, one per head dimension (ABL section 3.2);
- ``resid``: residual neurons (BCL), the hidden state after the embedding layer (the input of block
  0) and after every block, so ``n_layers + 1`` layers. Layer ``l < n_layers`` is read at the input
  of block ``l`` and the last one at the output of the last block, so that whatever a model runs
  between blocks belongs to the layer before (DeBERTa-v2's convolution after block 0), as in
  ``output_hidden_states``.

``W_in`` is the MLP's input matrix, returned with shape ``(d_mlp, d_model)`` (one row per MLP neuron,
MOD Eq. 2), whatever the storage convention of the family.

The table also says where a language model's output head is (:func:`split_head`) and how many
position ids a family reserves (:func:`position_offset`).

Hooks are short-lived context managers over an unmodified Hugging Face model (as in baukit's
``nethook``): :func:`trace` records, :func:`ablate` replaces ``x_i <- m_i x_i + (1 - m_i) v_i``,
:func:`resid_hooks` reads or edits the residual stream. All remove every hook on the way out, also
when the body raises.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch
from torch import nn

from core.errors import UnknownNameError

SITES = ("mlp", "attn", "resid")


@dataclass(frozen=True)
class Architecture:
    """Where the neurons of one architecture family are.

    Attributes
    ----------
    blocks : str
        Dotted path of the ``nn.ModuleList`` of transformer blocks, from the task model
        (``LlamaForCausalLM``, ``BertForMaskedLM``); a bare base model (``LlamaModel``, ``BertModel``)
        is found by the same path less its first component.
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
    w_in_chunk, gate_chunk : (int, int) or None
        ``(i, k)`` where one fused module computes several projections (Phi-3's ``gate_up_proj``,
        whose output ``chunk(2, dim=-1)`` is ``gate, up``): the weight's output rows are ``k`` equal
        chunks and the projection is chunk ``i``. None: the whole weight.
    head : str or None
        Path, from the task model, of its output head: the one module that maps the base model's last
        hidden state (``model.base_model(...)[0]``, shape ``(batch, seq, d_model)``) to the logits
        ``(batch, seq, vocab)`` position by position (BERT's ``cls``, RoBERTa's and the decoders'
        ``lm_head``), so that :func:`split_head` can run it only where a loss is scored. None where the
        task model computes its logits otherwise: in several modules (DistilBERT's ``vocab_*``,
        ELECTRA's generator head), soft-capped (Gemma-2's ``final_logit_softcapping``) or from a
        pooled token (image classifiers); such models run whole.
    position_offset : int
        Position ids the family reserves before a text's first token (RoBERTa's and XLM-R's positions
        start at ``padding_idx + 1 = 2``): a text holds at most ``max_position_embeddings -
        position_offset`` tokens (:func:`position_offset`).
    """

    blocks: str
    mlp_out: str
    attn_out: str
    w_in: str
    w_in_transposed: bool = False
    gate: str | None = None
    w_in_chunk: tuple[int, int] | None = None
    gate_chunk: tuple[int, int] | None = None
    head: str | None = None
    position_offset: int = 0


_LM_HEAD = "lm_head"
_LLAMA = Architecture("model.layers", "mlp.down_proj", "self_attn.o_proj", "mlp.up_proj",
                      gate="mlp.gate_proj", head=_LM_HEAD)
_ENCODER = "encoder.layer"


def _bert_like(prefix: str, head: str | None, position_offset: int = 0) -> Architecture:
    """BERT's block layout (``BertLayer``) under the base model ``prefix``."""
    return Architecture(f"{prefix}.{_ENCODER}", "output.dense", "attention.output.dense", "intermediate.dense",
                        head=head, position_offset=position_offset)


def _vit_like(prefix: str) -> Architecture:
    """ViT's block layout (``ViTLayer``, transformers 5) under the base model ``prefix``."""
    return Architecture(f"{prefix}.layers", "mlp.fc2", "attention.o_proj", "mlp.fc1")


#: ``config.model_type`` -> :class:`Architecture`. Blocks that run attention and MLP in parallel on
#: the same input (``gptj``, ``phi``, ``falcon``, ``gpt_neox`` and ``stablelm`` with
#: ``use_parallel_residual``) have the same three sites: the input of the output projection, the
#: input of ``W_out``, the stream between blocks. Fused input projections (Falcon's and GPT-NeoX's
#: ``query_key_value``, Phi-3's ``qkv_proj``) do not touch them; Phi-3's fused ``gate_up_proj`` is
#: split by ``w_in_chunk``/``gate_chunk``.
ARCHITECTURES: dict[str, Architecture] = {
    # decoders
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "olmo2": _LLAMA,
    "gemma": _LLAMA,
    "gemma2": replace(_LLAMA, head=None),  # lm_head's logits are then soft-capped
    "stablelm": _LLAMA,
    "phi3": Architecture("model.layers", "mlp.down_proj", "self_attn.o_proj", "mlp.gate_up_proj",
                         gate="mlp.gate_up_proj", w_in_chunk=(1, 2), gate_chunk=(0, 2), head=_LM_HEAD),
    "phi": Architecture("model.layers", "mlp.fc2", "self_attn.dense", "mlp.fc1", head=_LM_HEAD),
    "gpt2": Architecture("transformer.h", "mlp.c_proj", "attn.c_proj", "mlp.c_fc", w_in_transposed=True,
                         head=_LM_HEAD),
    "gptj": Architecture("transformer.h", "mlp.fc_out", "attn.out_proj", "mlp.fc_in", head=_LM_HEAD),
    "gpt_neox": Architecture("gpt_neox.layers", "mlp.dense_4h_to_h", "attention.dense", "mlp.dense_h_to_4h",
                             head=_LM_HEAD),
    "falcon": Architecture("transformer.h", "mlp.dense_4h_to_h", "self_attention.dense", "mlp.dense_h_to_4h",
                           head=_LM_HEAD),
    "opt": Architecture("model.decoder.layers", "fc2", "self_attn.out_proj", "fc1", head=_LM_HEAD),
    # encoders
    "bert": _bert_like("bert", "cls"),
    "roberta": _bert_like("roberta", _LM_HEAD, position_offset=2),
    "xlm-roberta": _bert_like("roberta", _LM_HEAD, position_offset=2),
    "electra": _bert_like("electra", None),  # generator_predictions, then generator_lm_head
    # DeBERTa-v2's legacy head (``config.legacy``, the default); the other one, lm_predictions, also
    # takes the word embeddings, and such a model runs whole (split_head)
    "deberta-v2": _bert_like("deberta", "cls"),
    "distilbert": Architecture("distilbert.transformer.layer", "ffn.lin2", "attention.out_lin", "ffn.lin1"),
    # vision
    "vit": _vit_like("vit"),
    "deit": _vit_like("deit"),
}


def architecture(model: nn.Module) -> Architecture:
    """The :class:`Architecture` of a Hugging Face model, from ``model.config.model_type``.

    For a bare base model (``BertModel`` rather than ``BertForMaskedLM``) the returned ``blocks``
    path is the row's less its first component (the base-model prefix).

    Raises
    ------
    UnknownNameError
        If the family is not in :data:`ARCHITECTURES` (the message lists the known families).
    """
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in ARCHITECTURES:
        raise UnknownNameError("architecture family", str(model_type), ARCHITECTURES)
    arch = ARCHITECTURES[model_type]
    if not _has(model, arch.blocks):
        bare = arch.blocks.split(".", 1)[-1]
        if _has(model, bare):
            arch = replace(arch, blocks=bare)
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
        raise ValueError("the residual site is the stream between blocks, not a module's input")
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

    def weight(path: str, chunk: tuple[int, int] | None) -> torch.Tensor:
        w = block.get_submodule(path).weight.detach()
        w = w.T if arch.w_in_transposed else w
        return w if chunk is None else w.chunk(chunk[1], dim=0)[chunk[0]]

    if which == "up":
        return weight(arch.w_in, arch.w_in_chunk)
    if arch.gate is None:
        raise ValueError(f"W_in option {which!r} needs a gated MLP; {model.config.model_type} has none")
    if which == "gate":
        return weight(arch.gate, arch.gate_chunk)
    return torch.cat([weight(arch.w_in, arch.w_in_chunk), weight(arch.gate, arch.gate_chunk)], dim=1)


def position_offset(config) -> int:
    """Position ids a family reserves before a text's first token (:attr:`Architecture.position_offset`),
    from a ``transformers`` config; 0 for a family outside :data:`ARCHITECTURES`."""
    arch = ARCHITECTURES.get(getattr(config, "model_type", None))
    return 0 if arch is None else arch.position_offset


def split_head(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """``(body, head)`` of a language model at its output head (:attr:`Architecture.head`), or None.

    ``body(input_ids=...)[0]`` is the last hidden state, shape ``(batch, seq, d_model)``, and ``head``
    maps hidden states ``(..., d_model)`` to logits ``(..., vocab)``, so that logits can be computed
    only where a loss is scored: ``head(body(input_ids=x)[0])`` equals ``model(input_ids=x).logits``.

    Returns
    -------
    (body, head), or None where the family's row has no head (the logits come from several modules,
    soft-capping or a pooled token) or the model lacks the module at the row's path (a bare base model,
    DeBERTa-v2 with ``legacy=False``): run the whole model instead.

    Raises
    ------
    UnknownNameError
        If the family is not in :data:`ARCHITECTURES`.
    """
    path = architecture(model).head
    if path is None or not _has(model, path):
        return None
    return model.base_model, model.get_submodule(path)


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
    if site == "resid":
        def read(layer, x):
            fn(layer, x.detach())
        with resid_hooks(model, _layers(model, site, layers), read, edit=False):
            yield
        return
    handles = []
    try:
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
def resid_hooks(
    model: nn.Module,
    layers: Sequence[int],
    fn: Callable[[int, torch.Tensor], torch.Tensor | None],
    *,
    edit: bool,
) -> Iterator[None]:
    """Pass the residual stream of each of ``layers`` to ``fn(layer, x)`` on every forward pass; with
    ``edit=True`` what ``fn`` returns replaces it (baukit's ``Trace(..., edit_output=fn)``).

    Where the harness reads and writes residual neurons, one definition for :func:`trace`,
    :func:`ablate` and BCL's :func:`core.bcl.intervention.replace_resid`: layer ``l < n_blocks`` is
    the input of block ``l`` (positional or ``hidden_states=``), layer ``n_blocks`` the output of the
    last block. ``x`` has shape ``(batch, seq, d_model)`` and is not detached; ``fn`` must return a
    tensor of the same shape when ``edit`` is True, and must not modify ``x`` in place when it is False.

    Notes
    -----
    Hooks exist only inside the ``with`` block and are removed on the way out, also on error.
    """
    bl = blocks(model)
    handles = []
    try:
        for layer in layers:
            if layer < len(bl):
                def pre(_m, args, kwargs, _l=layer):
                    if args:
                        x = fn(_l, args[0])
                        return ((x, *args[1:]), kwargs) if edit else None
                    x = fn(_l, kwargs["hidden_states"])
                    return (args, dict(kwargs, hidden_states=x)) if edit else None
                handles.append(bl[layer].register_forward_pre_hook(pre, with_kwargs=True))
            else:
                def post(_m, _args, output, _l=layer):
                    if isinstance(output, tuple):
                        x = fn(_l, output[0])
                        return (x, *output[1:]) if edit else None
                    x = fn(_l, output)
                    return x if edit else None
                handles.append(bl[-1].register_forward_hook(post))
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
        Residual neurons (``resid``) are ablated where they are read (the input of block ``l``, the
        output of the last block), so the same formula applies to them.
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
        plans[layer] = (keep, const, {})  # {(device, dtype): (keep, const) there}, filled on first use

    def apply(x: torch.Tensor, plan) -> torch.Tensor:
        keep, const, placed = plan
        where = (x.device, x.dtype)
        if where not in placed:  # copied to the activations' device and dtype once per block, not per call
            placed[where] = (keep.to(device=x.device, dtype=x.dtype), const.to(device=x.device, dtype=x.dtype))
        keep, const = placed[where]
        if const.ndim == 2:  # (seq, n): position-dependent offsets
            seq = x.shape[-2]
            if const.shape[0] < seq:
                raise ValueError(
                    f"position-dependent offset covers {const.shape[0]} positions, input has {seq}"
                )
            const = const[:seq]
        return x * keep + const

    if site == "resid":
        with resid_hooks(model, sorted(plans), lambda layer, x: apply(x, plans[layer]), edit=True):
            yield
        return
    handles = []
    try:
        mods = site_modules(model, site)
        for layer, plan in plans.items():
            def pre(_m, args, _p=plan):
                return (apply(args[0], _p), *args[1:])
            handles.append(mods[layer].register_forward_pre_hook(pre))
        yield
    finally:
        for h in handles:
            h.remove()
