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
