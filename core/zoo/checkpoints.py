"""Opening a model checkpoint: the transformers auto class of each kind (:data:`AUTO`), a checkpoint
folder (a folder of the model cache is removed and rebuilt when it does not load), the random twin of a
config (seed :data:`core.zoo.registry.RANDOM_SEED`), and where a model goes when several GPUs are visible.

Shared by the zoo's loads (:mod:`core.zoo.models`) and those of models outside the zoo (:mod:`core.zoo.own`).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import torch
import transformers

from core.cache import load_or_rebuild
from core.errors import UnsupportedModelError
from core.zoo.registry import RANDOM_SEED, ModelSpec

AUTO = {
    "causal": transformers.AutoModelForCausalLM,
    "masked": transformers.AutoModelForMaskedLM,
    "image": transformers.AutoModelForImageClassification,
}


def open_folder(folder: Path, kind: str, random: bool, dtype=torch.float32, placement: dict | None = None,
                 loading_info: bool = False):
    """(model, tokenizer, config) of a checkpoint folder, and with ``loading_info`` a fourth item: the
    weights that did not fit, ``{"missing_keys", "unexpected_keys", "mismatched_keys"}`` (sets of
    parameter names: weights of the model the checkpoint lacked, weights of the checkpoint the model has
    no place for, weights of another shape; all empty for a random twin, which reads no weights;
    checked by :func:`core.zoo.own.check_weights`). The random twin is built from the config."""
    config = transformers.AutoConfig.from_pretrained(folder)
    tokenizer = None if kind == "image" else transformers.AutoTokenizer.from_pretrained(folder)
    info: dict = {"missing_keys": set(), "unexpected_keys": set(), "mismatched_keys": set()}
    if random:
        model = twin_of_kind(kind, config)
    elif loading_info:
        model, loaded = AUTO[kind].from_pretrained(folder, dtype=dtype, output_loading_info=True,
                                                    **(placement or {}))
        info = loading_report(loaded)
    else:
        model = AUTO[kind].from_pretrained(folder, dtype=dtype, **(placement or {}))
    return (model, tokenizer, config, info) if loading_info else (model, tokenizer, config)


def loading_report(loaded: dict) -> dict:
    """transformers' ``output_loading_info`` dict as sets of parameter names: ``missing_keys``,
    ``unexpected_keys`` and ``mismatched_keys`` (the latter's entries may be ``(name, shapes...)``
    tuples; their names are kept)."""
    mismatched = {m[0] if isinstance(m, (tuple, list)) else m for m in loaded.get("mismatched_keys") or ()}
    return {"missing_keys": set(loaded.get("missing_keys") or ()),
            "unexpected_keys": set(loaded.get("unexpected_keys") or ()), "mismatched_keys": mismatched}


def open_cached(builder: Callable[[], Path], kind: str, random: bool):
    """(model, tokenizer, card) of a model folder of the cache, built by ``builder`` if absent; a folder
    that does not load (a truncated weight file, a corrupt card) is named in a warning, removed and
    rebuilt (:func:`core.cache.load_or_rebuild`)."""

    def load(folder: Path):
        card = json.loads((folder / "card.json").read_text())
        model, tokenizer, _ = open_folder(folder, kind, random)
        return model, tokenizer, card

    folder = builder()
    return load_or_rebuild(folder, load, lambda: load(builder()), lock=False)


def random_twin(spec: ModelSpec, config, *, dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu") -> torch.nn.Module:
    return twin_of_kind(spec.kind, config, dtype=dtype, device=device)


def twin_of_kind(kind: str, config, *, dtype: torch.dtype = torch.float32,
          device: str | torch.device = "cpu") -> torch.nn.Module:
    """A fresh initialisation of ``config`` under seed :data:`RANDOM_SEED` (global RNG untouched).

    Built directly on ``device`` in ``dtype`` (a full-tier twin: bfloat16 on the GPU, like the trained
    model, without 29 GB of fp32 weights on the host first). On the CPU in float32 (the default) it is
    bit for bit the twin the harness always built; on a GPU the weights come from torch's CUDA
    generator under the same seed (the same distribution, other values than the CPU's).
    """
    device = torch.device(device)
    cuda = [*range(torch.cuda.device_count())] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # manual_seed seeds every CUDA device too: restore them all
        torch.manual_seed(RANDOM_SEED)
        if device.type == "cpu":
            return AUTO[kind].from_config(config, dtype=dtype)
        with device:
            return AUTO[kind].from_config(config, dtype=dtype)


def device_placement(device: str) -> dict:
    """``{"device_map": "auto"}`` for ``device == "cuda"`` on a machine with more than one CUDA
    device (accelerate then spreads a full-tier model too large for one GPU over all of them);
    ``{}`` otherwise (``"cuda:N"`` pins one GPU; CPU)."""
    if device == "cuda" and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return {"device_map": "auto"}
    return {}


class WeightsMismatchError(UnsupportedModelError):
    """A checkpoint whose weights do not fit the model it loads into: weights the model needs that the
    checkpoint lacks (transformers would initialise them at random), weights of the checkpoint the model
    has no place for (a renamed or unconverted layer; transformers would drop them) or weights of
    another shape. Every number measured on such a model would be meaningless, so the load fails; the
    message names the checkpoint and the keys.

    Attributes
    ----------
    missing, unexpected, mismatched : list of str
        The parameter names, sorted.
    """

    def __init__(self, message: str, missing=(), unexpected=(), mismatched=()):
        self.missing, self.unexpected, self.mismatched = sorted(missing), sorted(unexpected), sorted(mismatched)
        super().__init__(message)


#: Weights a checkpoint may hold that the class a claim loads has no place for, and that no claim reads:
#: pattern -> why. A BERT checkpoint saved as ``BertForPreTraining`` (bert-base-uncased) holds the pooler
#: and the next-sentence head, which ``BertForMaskedLM`` does not have; ``RobertaModel`` checkpoints hold
#: a pooler; older Llama-family checkpoints hold the rotary ``inv_freq`` buffer, which is recomputed from
#: the config. They are left out and listed in the model card (``unused_weights``), never silently.
UNUSED_WEIGHTS = {
    r"(^|\.)pooler\.": "the pooler (a sentence-level head on [CLS]; no claim reads it)",
    r"(^|\.)seq_relationship\.": "the next-sentence-prediction head (BERT pretraining; no claim reads it)",
    r"(^|\.)rotary_emb\.inv_freq$": "the rotary frequencies (a buffer recomputed from the config)",
}


def _names(keys, limit: int = 6) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:limit]) + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def check_weights(where: str, kind: str, info: dict) -> list[str]:
    """Check that a checkpoint's weights filled the model exactly.

    Parameters
    ----------
    where : str
        The checkpoint (folder, Hub id and snapshot), named in the message.
    kind : {"causal", "masked", "image"}
        The kind loaded (its auto class is named).
    info : dict
        :func:`core.zoo.checkpoints.loading_report` of the load: ``missing_keys``,
        ``unexpected_keys``, ``mismatched_keys`` (iterables of parameter names).

    Returns
    -------
    list of str
        The unexpected weights left out as :data:`UNUSED_WEIGHTS` allows (sorted; for the card).

    Raises
    ------
    WeightsMismatchError
        When any weight is missing or of another shape, or any unexpected weight is not one of
        :data:`UNUSED_WEIGHTS`; the message names the keys (the first six of each and their number).
    """
    missing = set(info.get("missing_keys") or ())
    mismatched = set(info.get("mismatched_keys") or ())
    unexpected = set(info.get("unexpected_keys") or ())
    unused = {k for k in unexpected if any(re.search(p, k) for p in UNUSED_WEIGHTS)}
    unexpected -= unused
    if missing or unexpected or mismatched:
        cls = AUTO[kind].__name__
        parts = []
        if missing:
            parts.append(f"lacks {len(missing)} weight(s) of {cls} ({_names(missing)}), which would be "
                         f"initialised at random")
        if unexpected:
            parts.append(f"holds {len(unexpected)} weight(s) that {cls} has no place for "
                         f"({_names(unexpected)}), which would be dropped")
        if mismatched:
            parts.append(f"holds {len(mismatched)} weight(s) of another shape ({_names(mismatched)})")
        raise WeightsMismatchError(
            f"{where}: the checkpoint {'; it '.join(parts)}. Every number measured on this model would be "
            f"meaningless, so it does not load. Expected a checkpoint of the whole {cls} (save_pretrained of "
            f"the model the claims measure)", missing, unexpected, mismatched)
    return sorted(unused)
