"""How many windows or images one forward pass carries, and what happens when they do not fit.

On a CPU the harness runs 8 windows or images per forward pass (the profiles' ``batch_size``); a GPU is
bound by launch latency at that size, so there a profile gives a :class:`Budget` instead: about
``tokens`` text tokens per forward (a 7B model's 1,000-token windows go 16 at a time) or ``images``
images. Results do not depend on the batch beyond float rounding (every window and image is scored
alone; no padding joins them).

:func:`with_backoff` runs a pass at a batch size and, when the device runs out of memory, halves it and
runs the pass again from the start (warning once per size), so that a batch too large for a device is
never an out-of-memory crash.
"""
from __future__ import annotations

import gc
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

__all__ = ["Budget", "GPU_BUDGET", "BatchBackoffWarning", "items_per_batch", "with_backoff", "is_out_of_memory"]

T = TypeVar("T")


@dataclass(frozen=True)
class Budget:
    """Items per forward pass on a device with room for large batches (a GPU).

    Attributes
    ----------
    tokens : int
        Text: windows per forward = ``max(1, tokens // seq_len)``.
    images : int
        Images per forward.
    """

    tokens: int
    images: int

    def __post_init__(self):
        for name in ("tokens", "images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Budget.{name} must be a positive int, got {value!r}")


#: The default budget on a GPU (:meth:`core.profiles.Profile.batch_size_for`): 16,384 tokens (a 7B
#: model's 1,000-token windows 16 at a time) or 512 images per forward pass.
GPU_BUDGET = Budget(tokens=16_384, images=512)


def items_per_batch(batch_size: int | Budget, *, seq_len: int | None, n_items: int | None = None) -> int:
    """Windows or images per forward pass.

    Parameters
    ----------
    batch_size : int or Budget
        An int is the number of items itself; a :class:`Budget` gives ``tokens // seq_len`` windows
        (at least 1) for text, ``images`` for images.
    seq_len : int or None
        Tokens per window for text; None for images.
    n_items : int, optional
        Items of the whole pass: the result is at most this (at least 1), so that a back-off halves
        from a batch that exists.

    Raises
    ------
    ValueError
        If ``batch_size`` is neither a positive int nor a :class:`Budget`.
    """
    if isinstance(batch_size, Budget):
        size = batch_size.images if seq_len is None else max(1, batch_size.tokens // max(1, int(seq_len)))
    elif isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or a core.batching.Budget, got {batch_size!r}")
    else:
        size = batch_size
    return size if n_items is None else max(1, min(size, int(n_items)))


class BatchBackoffWarning(UserWarning):
    """A batch did not fit the device's memory and was halved."""


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is a device (or host allocator) running out of memory."""
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


#: The batch size that last fitted, per model and pass: later passes start there (no repeated failure).
_FITTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def with_backoff(run: Callable[[int], T], batch_size: int, *, what: str, owner: object | None = None) -> T:
    """``run(batch_size)``; when it runs out of memory, ``run(batch_size // 2)``, and so on.

    ``run`` must redo its whole pass from the start (resetting what it accumulates), since a failed
    forward may have fed some of its hooks. The size that fitted is remembered for ``owner`` (e.g. the
    model) and ``what``, so later calls start there.

    Parameters
    ----------
    run : callable taking the batch size
    batch_size : int
        Items per forward pass to try first (positive).
    what : str
        The pass, for the warning (e.g. ``"smollm2-135m: evaluate"``) and the remembered size.
    owner : object, optional
        Weak-referenceable key of the remembered size (the model); None: nothing is remembered.

    Returns
    -------
    What ``run`` returns.

    Warns
    -----
    BatchBackoffWarning
        Each time a batch is halved, naming the pass, the sizes and the error.

    Raises
    ------
    ValueError
        If ``batch_size`` is not a positive int.
    MemoryError
        If even one item per forward pass does not fit (naming the pass and the error).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    remembered = _FITTED.get(owner, {}) if owner is not None else {}
    size = min(batch_size, remembered.get((what, batch_size), batch_size))
    while True:
        failure = None
        try:
            result = run(size)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as err:
            if not is_out_of_memory(err):
                raise
            failure = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
        if failure is None:
            if owner is not None and size != batch_size:
                _FITTED.setdefault(owner, {})[(what, batch_size)] = size
            return result
        # outside the except block: the failed pass's frames (and tensors) are gone
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if size == 1:
            raise MemoryError(f"{what}: one item per forward pass does not fit in memory ({failure})")
        warnings.warn(f"{what}: a batch of {size} does not fit in memory ({failure}); halving to {size // 2} "
                      f"and running the pass again", BatchBackoffWarning, stacklevel=2)
        size //= 2
