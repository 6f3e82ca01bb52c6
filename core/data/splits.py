"""The disjoint splits ``fit``, ``collect`` and ``eval``, and the small tier's documents per split.

Collection and evaluation never overlap: every document (or image) falls in exactly one split, by a
permutation seeded with ``SPLIT_SEED``. The Hub subsets (:mod:`core.data.hub`) and the image datasets
(:mod:`core.data.images`) split by their own rules, over the same ``SPLITS``.

Provides
--------
``SPLITS``, :func:`split_indices` -> int64 array of source-order document indices.
"""
from __future__ import annotations

import numpy as np

from core.data.small import TEXT_SUBSETS, subset_documents
from core.errors import check_name


#: The disjoint splits: ``fit`` (fit heads, train), ``collect`` (statistics), ``eval`` (every metric).
SPLITS: tuple[str, ...] = ("fit", "collect", "eval")

SPLIT_SEED = 0  # seed of the permutation that assigns documents to splits


def check_split(split: str) -> str:
    return check_name("split", split, SPLITS)


def split_indices(name: str, split: str) -> np.ndarray:
    """Source-order indices of the documents of a text subset that fall in ``split``.

    A permutation of the document indices, drawn by ``numpy.random.default_rng(0)``, sends the
    document at position ``j`` of the permutation to ``SPLITS[j % 3]``; the returned indices keep the
    permutation's order. The three splits are disjoint and cover every document.

    Parameters
    ----------
    name : str
        One of ``TEXT_SUBSETS``.
    split : {"fit", "collect", "eval"}

    Returns
    -------
    ndarray of shape (n_split_docs,), dtype int64

    Raises
    ------
    UnknownNameError
        For an unknown subset or split.
    MissingAssetError
        When the package that holds the subset is not installed (the reason gives the command).
    """
    check_name("dataset", name, TEXT_SUBSETS)
    position = SPLITS.index(check_split(split))
    permutation = np.random.default_rng(SPLIT_SEED).permutation(len(subset_documents(name)))
    return permutation[position::len(SPLITS)].astype(np.int64)
