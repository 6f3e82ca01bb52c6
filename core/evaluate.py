"""Evaluation: top1 and cross-entropy (CE, nats) per evaluation unit.

Claims compare methods on the *same* evaluation units (tokens for text, images for vision), so every
evaluator returns one value per unit, in a fixed order, instead of a mean: paired bootstrap intervals
(``core.inference``) are built from those.

- causal LMs: next-token prediction at every position but the last of each window;
- masked LMs: 15% of the positions (never special tokens) chosen with a fixed seed, of which 80% are
  replaced by the mask token, 10% by a random token and 10% kept (BERT's 80/10/10 rule); units are
  the chosen positions;
- image classifiers: one unit per image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


@dataclass(frozen=True)
class UnitScores:
    """Per-unit results of one evaluation.

    Attributes
    ----------
    top1 : numpy.ndarray of shape (n_units,), dtype bool
        Whether the model's arg-max prediction is the target.
    ce : numpy.ndarray of shape (n_units,), dtype float32
        Cross-entropy of the target under the model, in nats.
    """

    top1: np.ndarray
    ce: np.ndarray

    @property
    def n_units(self) -> int:
        return int(self.top1.shape[0])

    def summary(self) -> dict[str, float]:
        """Mean top1 in percent and mean CE in nats."""
        return {"top1": 100.0 * float(self.top1.mean()), "ce": float(self.ce.mean())}


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    special_ids: list[int] | set[int],
    mask_id: int,
    vocab_size: int,
    seed: int,
    mask_prob: float = 0.15,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose masked-LM targets with BERT's 80/10/10 rule, deterministically.

    Parameters
    ----------
    input_ids : LongTensor of shape (n_windows, seq_len)
    special_ids : ids never chosen as targets ([CLS], [SEP], [PAD], ...)
    mask_id : id of the mask token
    vocab_size : random replacements are drawn from [0, vocab_size) minus special ids
    seed : seeds a private ``torch.Generator``
    mask_prob : fraction of non-special positions chosen (0.15)

    Returns
    -------
    inputs : LongTensor of shape (n_windows, seq_len)
        The corrupted inputs.
    labels : LongTensor of shape (n_windows, seq_len)
        The original id at chosen positions, -100 elsewhere.
    """
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must have shape (n_windows, seq_len), got {tuple(input_ids.shape)}")
    g = torch.Generator().manual_seed(seed)
    special = torch.tensor(sorted(set(special_ids)), dtype=torch.long)
    is_special = torch.isin(input_ids, special)
    u = torch.rand(input_ids.shape, generator=g)
    chosen = (u < mask_prob) & ~is_special
    action = torch.rand(input_ids.shape, generator=g)
    allowed = torch.ones(vocab_size, dtype=torch.bool)
    allowed[special[special < vocab_size]] = False
    pool = allowed.nonzero().squeeze(1)
    random_ids = pool[torch.randint(len(pool), input_ids.shape, generator=g)]
    inputs = input_ids.clone()
    inputs[chosen & (action < 0.8)] = mask_id
    swap = chosen & (action >= 0.8) & (action < 0.9)
    inputs[swap] = random_ids[swap]
    labels = torch.full_like(input_ids, -100)
    labels[chosen] = input_ids[chosen]
    return inputs, labels


KINDS = ("causal", "masked", "image")


@dataclass(frozen=True)
class EvalSet:
    """Inputs and targets of one evaluation, with a fixed unit order.

    Attributes
    ----------
    kind : {"causal", "masked", "image"}
    inputs : tensor
        Causal LMs: LongTensor (n_windows, seq_len), the targets are the next tokens. Masked LMs:
        LongTensor (n_windows, seq_len), already corrupted by :func:`mask_tokens`. Images:
        FloatTensor (n_images, channels, height, width).
    labels : LongTensor or None
        Causal: None. Masked: (n_windows, seq_len) with -100 at unchosen positions. Images: (n_images,).
    """

    kind: str
    inputs: torch.Tensor
    labels: torch.Tensor | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind != "causal" and self.labels is None:
            raise ValueError(f"a {self.kind} evaluation set needs labels")

    @property
    def n_units(self) -> int:
        """Tokens (causal: seq_len - 1 per window; masked: chosen positions) or images."""
        if self.kind == "causal":
            return int(self.inputs.shape[0] * (self.inputs.shape[1] - 1))
        if self.kind == "masked":
            return int((self.labels != -100).sum())
        return int(self.inputs.shape[0])

    def model_inputs(self, start: int, stop: int, device) -> dict[str, torch.Tensor]:
        """Keyword arguments of the model's forward for items ``start:stop``."""
        key = "pixel_values" if self.kind == "image" else "input_ids"
        return {key: self.inputs[start:stop].to(device)}


def make_eval_set(kind: str, inputs: torch.Tensor, *, labels: torch.Tensor | None = None,
                  tokenizer=None, seed: int = 0) -> EvalSet:
    """Build an :class:`EvalSet`; masked LMs get their targets from :func:`mask_tokens` (``seed``)."""
    if kind == "masked" and labels is None:
        if tokenizer is None:
            raise ValueError("a masked-LM evaluation set needs the tokenizer to choose targets")
        inputs, labels = mask_tokens(inputs, special_ids=tokenizer.all_special_ids,
                                     mask_id=tokenizer.mask_token_id, vocab_size=len(tokenizer),
                                     seed=seed)
    return EvalSet(kind, inputs, labels)


def _unit_scores(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = logits.float()
    ce = F.cross_entropy(logits, targets, reduction="none")
    top1 = logits.argmax(-1) == targets
    return top1, ce


@torch.inference_mode()
def evaluate(model, data: EvalSet, *, batch_size: int = 8, progress: bool = False,
             desc: str = "evaluate") -> UnitScores:
    """top1 and CE (nats) of ``model`` on every unit of ``data``, in the set's unit order.

    Parameters
    ----------
    model : transformers model with ``.logits`` output (causal LM, masked LM or image classifier)
    data : EvalSet
    batch_size : windows or images per forward pass

    Returns
    -------
    UnitScores
        ``top1`` (bool) and ``ce`` (float32, nats), each of shape ``(data.n_units,)``.

    Raises
    ------
    FloatingPointError
        If the model produces a non-finite loss (e.g. after an ablation with non-finite offsets).
    """
    device = next(model.parameters()).device
    n = data.inputs.shape[0]
    tops, ces = [], []
    for start in tqdm(range(0, n, batch_size), desc=desc, disable=not progress, leave=False):
        stop = min(start + batch_size, n)
        logits = model(**data.model_inputs(start, stop, device)).logits
        if data.kind == "causal":
            targets = data.inputs[start:stop, 1:].to(device)
            top1, ce = _unit_scores(logits[:, :-1].flatten(0, 1), targets.flatten())
        elif data.kind == "masked":
            labels = data.labels[start:stop].to(device)
            chosen = labels != -100
            top1, ce = _unit_scores(logits[chosen], labels[chosen])
        else:
            top1, ce = _unit_scores(logits, data.labels[start:stop].to(device))
        tops.append(top1.cpu())
        ces.append(ce.cpu())
    top1 = torch.cat(tops).numpy()
    ce = torch.cat(ces).numpy().astype(np.float32)
    if not np.isfinite(ce).all():
        raise FloatingPointError(f"{int((~np.isfinite(ce)).sum())} non-finite CE values in {desc}")
    return UnitScores(top1=top1, ce=ce)
