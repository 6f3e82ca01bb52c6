"""Evaluation: top1 and cross-entropy (CE, nats) per evaluation unit.

Claims compare methods on the *same* evaluation units (tokens for text, images for vision), so every
evaluator returns one value per unit, in a fixed order, instead of a mean: paired bootstrap intervals
(``core.inference``) are built from those.

- causal LMs: next-token prediction at every position but the last of each window;
- masked LMs: 15% of the positions (never special tokens) chosen with a fixed seed, of which 80% are
  replaced by the mask token, 10% by a random token and 10% kept (BERT's 80/10/10 rule); units are
  the chosen positions;
- image classifiers: one unit per image.

Every unit belongs to a source document (claims.md, "Intervals": documents, not tokens):
:meth:`EvalSet.unit_docs` gives it in the same unit order (images are their own documents).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from core.batching import Budget, items_per_batch, with_backoff


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
    docs : LongTensor or None
        Text: the source document of every input position, shape (n_windows, seq_len) like ``inputs``,
        -1 at special tokens and separators (:func:`core.data.windows.text_windows` with ``with_docs=True``);
        None where unknown. Images: None (every image is its own document).
    name : str or None
        What the set is (e.g. ``"news, eval split"``), for messages.

    Raises
    ------
    ValueError
        On an unknown kind, missing labels, ``docs`` for images, or ``docs`` whose shape differs from
        the inputs' (the message names both shapes).
    """

    kind: str
    inputs: torch.Tensor
    labels: torch.Tensor | None = None
    docs: torch.Tensor | None = None
    name: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind != "causal" and self.labels is None:
            raise ValueError(f"a {self.kind} evaluation set needs labels")
        if self.docs is None:
            return
        if self.kind == "image":
            raise ValueError(f"{self._what()}: images are their own documents; pass docs=None")
        docs = torch.as_tensor(self.docs)
        if tuple(docs.shape) != tuple(self.inputs.shape):
            raise ValueError(f"{self._what()}: docs has shape {tuple(docs.shape)}, but the inputs have shape "
                             f"{tuple(self.inputs.shape)}; docs must give the document of every input position")
        if docs.is_floating_point() or docs.is_complex() or docs.dtype == torch.bool:
            raise ValueError(f"{self._what()}: docs must hold integer document ids, got dtype {docs.dtype}")
        object.__setattr__(self, "docs", docs.long())

    def _what(self) -> str:
        shape = "x".join(map(str, self.inputs.shape))
        return f"{self.kind} evaluation set {self.name!r} ({shape})" if self.name else \
            f"{self.kind} evaluation set ({shape})"

    @property
    def n_units(self) -> int:
        """Tokens (causal: seq_len - 1 per window; masked: chosen positions) or images."""
        if self.kind == "causal":
            return int(self.inputs.shape[0] * (self.inputs.shape[1] - 1))
        if self.kind == "masked":
            return int((self.labels != -100).sum())
        return int(self.inputs.shape[0])

    @property
    def has_docs(self) -> bool:
        """Whether :meth:`unit_docs` is known (images always; text when ``docs`` is set)."""
        return self.kind == "image" or self.docs is not None

    def unit_docs(self) -> np.ndarray:
        """The source document of every evaluation unit, in the unit order of :func:`evaluate`.

        Causal: the document of each target token (``docs[:, 1:]``, row by row); a target that is a
        special token or separator (document -1: a window's closing [SEP], the EOS between packed
        documents) belongs to the document of the last document token before it in its window (the
        text it is predicted from), or, where none precedes it, to the window's first document.
        Masked: ``docs[labels != -100]`` (chosen positions are never special). Images:
        ``np.arange(n_images)``.

        Returns
        -------
        ndarray of shape (n_units,), int64

        Raises
        ------
        ValueError
            For a text set without ``docs`` (the message names the set), or a unit left without a
            document.
        """
        if self.kind == "image":
            return np.arange(self.inputs.shape[0], dtype=np.int64)
        if self.docs is None:
            raise ValueError(f"{self._what()} has no document ids (docs=None): build its windows with "
                             f"core.data.text_windows(..., with_docs=True) and pass docs= to make_eval_set")
        if self.kind == "causal":
            units = _fill_specials(self.docs)[:, 1:].reshape(-1)
        else:
            units = self.docs[self.labels != -100]
        units = units.numpy().astype(np.int64)
        if (units < 0).any():
            raise ValueError(f"{self._what()}: {int((units < 0).sum())} of {units.size} units have no document "
                             f"(a window of special tokens only)")
        return units

    def n_documents(self) -> int:
        """Distinct documents among the units (:meth:`unit_docs`)."""
        return int(np.unique(self.unit_docs()).size)

    def model_inputs(self, start: int, stop: int, device) -> dict[str, torch.Tensor]:
        """Keyword arguments of the model's forward for items ``start:stop``."""
        key = "pixel_values" if self.kind == "image" else "input_ids"
        return {key: self.inputs[start:stop].to(device)}


def _fill_specials(docs: torch.Tensor) -> torch.Tensor:
    """``docs`` (n_windows, seq_len) with each -1 replaced by the last id >= 0 before it in its row, or,
    before the row's first id, by that first id (rows without any id stay -1)."""
    pos = torch.arange(docs.shape[1]).expand_as(docs)
    valid = docs >= 0
    last = torch.where(valid, pos, torch.full_like(pos, -1)).cummax(dim=1).values
    first = valid.long().argmax(dim=1, keepdim=True).expand_as(docs)
    source = torch.where(last >= 0, last, first)
    return torch.where(valid.any(dim=1, keepdim=True), docs.gather(1, source), torch.full_like(docs, -1))


def make_eval_set(kind: str, inputs: torch.Tensor, *, labels: torch.Tensor | None = None,
                  tokenizer=None, seed: int = 0, docs: torch.Tensor | None = None,
                  name: str | None = None) -> EvalSet:
    """Build an :class:`EvalSet`; masked LMs get their targets from :func:`mask_tokens` (``seed``).

    ``docs`` (text: LongTensor of the inputs' shape, see :class:`EvalSet`) and ``name`` are passed
    through; masking leaves the positions, so ``docs`` stays valid for the corrupted inputs.
    """
    if kind == "masked" and labels is None:
        if tokenizer is None:
            raise ValueError("a masked-LM evaluation set needs the tokenizer to choose targets")
        inputs, labels = mask_tokens(inputs, special_ids=tokenizer.all_special_ids,
                                     mask_id=tokenizer.mask_token_id, vocab_size=len(tokenizer),
                                     seed=seed)
    return EvalSet(kind, inputs, labels, docs, name)


def _unit_scores(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = logits.float()
    ce = F.cross_entropy(logits, targets, reduction="none")
    top1 = logits.argmax(-1) == targets
    return top1, ce


@torch.inference_mode()
def evaluate(model, data: EvalSet, *, batch_size: int | Budget = 8, split=None, progress: bool = False,
             desc: str = "evaluate") -> UnitScores:
    """top1 and CE (nats) of ``model`` on every unit of ``data``, in the set's unit order.

    Parameters
    ----------
    model : transformers model with ``.logits`` output (causal LM, masked LM or image classifier)
    data : EvalSet
    batch_size : int or core.batching.Budget
        Windows or images per forward pass, or a budget of tokens / images per forward
        (:func:`core.batching.items_per_batch`). The scores do not depend on it beyond float rounding.
        A batch that does not fit the device's memory is halved and the evaluation rerun
        (:func:`core.batching.with_backoff`, with a :class:`core.batching.BatchBackoffWarning`).
    split : (body, head) or None
        The model cut at its output head, :func:`core.zoo.sites.split_head` (the architecture table
        knows where each family's head is; this module sits below it). A masked LM then runs the head
        only at the chosen positions, ``head(body(input_ids=x)[0][chosen])``: the same logits there as
        the whole model's, at about half the cost for a small encoder (MiniLM-L6's head has a
        30,522-word decoder on 384 dimensions). None: the whole model runs. Ignored for other kinds.

    Returns
    -------
    UnitScores
        ``top1`` (bool) and ``ce`` (float32, nats), each of shape ``(data.n_units,)``.

    Raises
    ------
    FloatingPointError
        If the model produces a non-finite loss (e.g. after an ablation with non-finite offsets).
    MemoryError
        If one window or image per forward pass does not fit in memory.
    """
    size = items_per_batch(batch_size, seq_len=None if data.kind == "image" else data.inputs.shape[1],
                           n_items=data.inputs.shape[0])
    return with_backoff(lambda bs: _evaluate(model, data, bs, split, progress, desc), size, what=desc, owner=model)


def _evaluate(model, data: EvalSet, batch_size: int, split, progress: bool, desc: str) -> UnitScores:
    device = next(model.parameters()).device
    n = data.inputs.shape[0]
    # masked LMs: the output head only at the chosen positions (about 15%; the head of a small
    # encoder costs as much as its body)
    tops, ces = [], []
    for start in tqdm(range(0, n, batch_size), desc=desc, disable=not progress, leave=False):
        stop = min(start + batch_size, n)
        inputs = data.model_inputs(start, stop, device)
        if data.kind == "masked":
            labels = data.labels[start:stop].to(device)
            chosen = labels != -100
            if split is not None:
                body, head = split
                chosen_logits = head(body(**inputs)[0][chosen])
            else:
                chosen_logits = model(**inputs).logits[chosen]
            top1, ce = _unit_scores(chosen_logits, labels[chosen])
        elif data.kind == "causal":
            targets = data.inputs[start:stop, 1:].to(device)
            top1, ce = _unit_scores(model(**inputs).logits[:, :-1].flatten(0, 1), targets.flatten())
        else:
            top1, ce = _unit_scores(model(**inputs).logits, data.labels[start:stop].to(device))
        tops.append(top1.cpu())
        ces.append(ce.cpu())
    top1 = torch.cat(tops).numpy()
    ce = torch.cat(ces).numpy().astype(np.float32)
    if not np.isfinite(ce).all():
        raise FloatingPointError(f"{int((~np.isfinite(ce)).sum())} non-finite CE values in {desc}")
    return UnitScores(top1=top1, ce=ce)
