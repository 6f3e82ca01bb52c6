"""Token windows of a text subset's split, for any tokenizer (:func:`text_windows`).

Windows of the small tier's subsets (:mod:`core.data.small`, split by :func:`core.data.splits.split_indices`)
or of the full tier's Hub subsets (:func:`core.data.hub.hub_texts`), read only as far as the windows
need. The tokenizer helpers here (special-token template, prefix ids, ordinary ids) are shared with the
resampling inputs (:mod:`core.data.resampling`).

Provides
--------
:func:`text_windows` -> LongTensor ``(n_windows, seq_len)`` (with ``with_docs=True`` also the source
document of every position, same shape).
"""
from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

from core.data.hub import HUB_TEXT_SUBSETS, describe_hub_source, hub_texts
from core.data.small import PACKED_SUBSETS, TEXT_SUBSETS, subset_documents
from core.data.splits import check_split, split_indices
from core.errors import DataShortfallError, check_name


def _special_template(tokenizer) -> tuple[list[int], list[int]]:
    """(prefix, suffix): the special ids the tokenizer puts around a single sequence.

    Derived by encoding a probe with and without special tokens; used where the tokenizer has no
    ``build_inputs_with_special_tokens`` (transformers 5's tokenizers-backed classes).
    """
    probe = "hello world"
    core = tokenizer(probe, add_special_tokens=False)["input_ids"]
    if not core:  # a vocabulary without these letters and no unknown token: probe with its own tokens
        probe = tokenizer.decode(ordinary_ids(tokenizer)[:8].tolist())
        core = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    n_special = tokenizer.num_special_tokens_to_add(pair=False)
    for start in range(len(full) - len(core) + 1):
        if core and full[start:start + len(core)] == core and len(full) - len(core) == n_special:
            return full[:start], full[start + len(core):]
    raise ValueError(f"cannot tell where {type(tokenizer).__name__} puts its {n_special} special tokens: "
                     f"{probe!r} encodes to {full} with them and {core} without")


def window_wrapper(tokenizer) -> Callable[[list[int]], list[int]]:
    """A function that turns a piece of ids into a window, as the tokenizer would."""
    build = getattr(tokenizer, "build_inputs_with_special_tokens", None)
    if callable(build):
        return lambda piece: list(build(list(piece)))
    prefix, suffix = _special_template(tokenizer)
    return lambda piece: [*prefix, *piece, *suffix]


def piece_length(tokenizer, seq_len: int) -> int:
    n_special = tokenizer.num_special_tokens_to_add(pair=False)
    if seq_len <= n_special:
        raise ValueError(f"seq_len={seq_len} leaves no room beside the tokenizer's "
                         f"{n_special} special tokens")
    return seq_len - n_special


def _token_ids(texts: Iterable[str], tokenizer, max_tokens: int, batch_size: int = 64) -> Iterator[list[int]]:
    """Ids of each text, without special tokens, cut to ``max_tokens``; tokenised lazily in batches, so
    a stream of texts (a Hub dataset) is read only as far as the windows need."""
    iterator = iter(texts)
    while batch := list(itertools.islice(iterator, batch_size)):
        out = tokenizer(batch, add_special_tokens=False, verbose=False)
        yield from (ids[:max_tokens] for ids in out["input_ids"])


def _pieces(docs: Iterable[tuple[int, list[int]]], length: int, separator: int | None, pack: bool,
            doc_windows: int | None = None) -> Iterator[tuple[list[int], list[int]]]:
    """Full-length pieces: per document (tails dropped), or from the packed stream of documents.

    ``docs`` yields ``(document id, token ids)``; every piece comes with the document id of each of its
    tokens (-1 at a separator), a list of the piece's length. ``doc_windows`` (see :func:`text_windows`)
    keeps at most that many pieces of a document: unpacked, drawn at random (seeded by the document
    id) among its full pieces and kept in document order; packed, the document is cut first so that it
    and its separator fill at most that many pieces.
    """
    if not pack:
        for doc, ids in docs:
            starts = range(0, len(ids) - length + 1, length)
            if doc_windows is not None and len(starts) > doc_windows:
                rng = np.random.default_rng((_WINDOW_SEED, doc))
                starts = sorted(rng.choice(starts, size=doc_windows, replace=False).tolist())
            for start in starts:
                yield ids[start:start + length], [doc] * length
        return
    buffer: list[int] = []
    owner: list[int] = []
    for doc, ids in docs:
        if doc_windows is not None:  # the document and its separator fill at most doc_windows pieces
            ids = ids[:doc_windows * length - (separator is not None)]
        if separator is not None and buffer:
            buffer.append(separator)
            owner.append(-1)
        buffer.extend(ids)
        owner.extend([doc] * len(ids))
        while len(buffer) >= length:
            yield buffer[:length], owner[:length]
            buffer, owner = buffer[length:], owner[length:]


def _separator(tokenizer) -> int | None:
    """The id that separates packed documents: EOS, else SEP, else BOS (a SentencePiece tokenizer with
    only ``<s>``); None for a tokenizer with none of them (documents are then joined directly)."""
    for attr in ("eos_token_id", "sep_token_id", "bos_token_id"):
        value = getattr(tokenizer, attr, None)
        if isinstance(value, int):
            return value
    return None


WINDOW_MEMO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_WINDOW_SEED = 0  # seeds, with a document's id, which of its windows doc_windows= keeps


def text_windows(name: str, tokenizer, *, split: str, n_tokens: int, seq_len: int,
                 max_doc_tokens: int = 1000, pack: bool | None = None, doc_windows: int | None = None,
                 with_docs: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Token windows of one split of a text subset.

    The split's documents, in split order (:func:`split_indices`), are tokenised without special
    tokens and cut to their first ``max_doc_tokens`` tokens. Each is chunked into pieces of
    ``seq_len - n_special`` tokens (``n_special = tokenizer.num_special_tokens_to_add(pair=False)``);
    each piece gets the tokenizer's special tokens (``build_inputs_with_special_tokens``, or the same
    template read off the tokenizer); only full-length windows are kept, and tokenising stops as soon
    as ``ceil(n_tokens / seq_len)`` windows are there. With ``pack=True`` the documents are first
    joined into one stream (separated by the tokenizer's EOS, else SEP, token), so short documents
    (tweets, MMLU questions) still fill windows; a window may then span documents of the same split.

    Parameters
    ----------
    name : str
        One of ``TEXT_SUBSETS``, or (full tier) of ``HUB_TEXT_SUBSETS`` (``HUB_TEXT_SUBSETS_DOC``), whose
        documents come from :func:`hub_texts`, read only as far as the windows need.
    tokenizer : transformers fast tokenizer
    split : {"fit", "collect", "eval"}
    n_tokens : int
        Tokens wanted, > 0; windows are added until they hold at least this many.
    seq_len : int
        Window length, special tokens included.
    max_doc_tokens : int, default 1000
        Each document is cut to its first ``max_doc_tokens`` tokens (the papers' 1,000).
    pack : bool or None, default None
        None: pack exactly the subsets of ``PACKED_SUBSETS`` (short documents) and every Hub subset
        (Yelp reviews, MMLU questions, most C4 and Pile documents are shorter than a window).
    doc_windows : int or None, default None
        The most windows one document may give (evaluation sets spread over documents, claims.md
        "Sample design"). Unpacked: that many of the document's full windows (within its first
        ``max_doc_tokens`` tokens), drawn without replacement by
        ``numpy.random.default_rng((0, document id))`` and kept in document order, so a document gives
        text from anywhere in its first ``max_doc_tokens`` tokens, not only its opening. Packed: each
        document is cut to ``doc_windows * (seq_len - n_special)`` tokens less one for its separator
        before packing, so that ``n`` windows always span at least ``n / doc_windows`` documents. None:
        every window, in order.
    with_docs : bool, default False
        Also return the source document of every position.

    Returns
    -------
    windows : torch.LongTensor of shape (ceil(n_tokens / seq_len), seq_len)
        A fresh tensor (results are memoised per tokenizer, and copied on the way out). The same
        windows whatever ``with_docs``.
    docs : torch.LongTensor of shape (ceil(n_tokens / seq_len), seq_len), only with ``with_docs=True``
        The source document of every position: a stable id, the document's index in the subset's
        document list (``load_dataset(name)`` row, source order; :func:`split_indices` gives the same
        indices) for the small tier, its running index in the split's document stream
        (:func:`hub_texts`, 0 for the first) for Hub subsets; -1 at special tokens and separators.
        Without packing a window holds one document; a packed window may hold several.

    Raises
    ------
    UnknownNameError
        For an unknown subset or split.
    ValueError
        When ``n_tokens``, ``seq_len`` or ``max_doc_tokens`` is not positive, or when the split of a
        small-tier subset runs out of documents before ``n_tokens`` (the message says how many tokens it had).
    DataShortfallError
        (a MissingAssetError) When the split of a Hub subset runs out of documents before ``n_tokens``: the
        reason names the subset, the split and the Hub files it read, the tokens found and needed.
    MissingAssetError
        When the subset's package is not installed, or its Hub dataset's files are not in the local cache
        (the reason names the Hub id, the files and README.md's "Preparing the full tier").
    """
    check_name("dataset", name, (*TEXT_SUBSETS, *HUB_TEXT_SUBSETS))
    check_split(split)
    if n_tokens <= 0 or max_doc_tokens <= 0:
        raise ValueError(f"n_tokens and max_doc_tokens must be positive, got {n_tokens} and {max_doc_tokens}")
    if doc_windows is not None and doc_windows <= 0:
        raise ValueError(f"doc_windows must be positive or None, got {doc_windows}")
    pack = (name in PACKED_SUBSETS or name in HUB_TEXT_SUBSETS) if pack is None else bool(pack)
    key = (name, split, n_tokens, seq_len, max_doc_tokens, pack, doc_windows)
    memo = _memo_for(tokenizer)
    if key not in memo:
        memo[key] = _build_windows(name, tokenizer, split, n_tokens, seq_len, max_doc_tokens, pack, doc_windows)
    windows, docs = memo[key]
    return (windows.clone(), docs.clone()) if with_docs else windows.clone()


def _memo_for(tokenizer) -> dict:
    try:
        return WINDOW_MEMO.setdefault(tokenizer, {})
    except TypeError:  # not weak-referenceable or not hashable: no memo
        return {}


def _build_windows(name, tokenizer, split, n_tokens, seq_len, max_doc_tokens, pack,
                   doc_windows=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(windows, document id of every position), each a LongTensor (n_windows, seq_len)."""
    length = piece_length(tokenizer, seq_len)
    n_windows = math.ceil(n_tokens / seq_len)
    if name in HUB_TEXT_SUBSETS:
        texts = hub_texts(name, split)
        ids = enumerate(_token_ids(texts, tokenizer, max_doc_tokens))
    else:
        docs = subset_documents(name)
        order = split_indices(name, split)
        ids = zip(order.tolist(), _token_ids([docs[i][1] for i in order], tokenizer, max_doc_tokens))
    wrap = window_wrapper(tokenizer)
    n_prefix = len(prefix_ids(tokenizer))
    windows, owners = [], []
    for piece, owner in itertools.islice(_pieces(ids, length, _separator(tokenizer), pack, doc_windows), n_windows):
        window = wrap(piece)
        if window[n_prefix:n_prefix + length] != piece:
            raise ValueError(f"{type(tokenizer).__name__} does not keep a window's tokens in place after "
                             f"its {n_prefix} prefix special tokens; cannot tell each position's document")
        windows.append(window)
        owners.append([-1] * n_prefix + owner + [-1] * (len(window) - n_prefix - length))
    if len(windows) < n_windows and name in HUB_TEXT_SUBSETS:  # the data is not there: a skip, not a defect
        raise DataShortfallError(
            name, f"{split!r} split (documents of {describe_hub_source(name)})", len(windows) * seq_len,
            n_windows * seq_len, f"{len(windows)} of the {n_windows} full windows of seq_len={seq_len} asked for "
                                 f"n_tokens={n_tokens}; documents cut at {max_doc_tokens} tokens, pack={pack}, "
                                 f"doc_windows={doc_windows}")
    if len(windows) < n_windows:
        raise ValueError(
            f"subset {name!r}, split {split!r} has only {len(windows) * seq_len} tokens in "
            f"{len(windows)} full windows of seq_len={seq_len} (documents cut at {max_doc_tokens} tokens, "
            f"pack={pack}, doc_windows={doc_windows}); asked for n_tokens={n_tokens}"
        )
    return torch.tensor(windows, dtype=torch.long), torch.tensor(owners, dtype=torch.long)


def ordinary_ids(tokenizer) -> np.ndarray:
    """Ids of the tokenizer's vocabulary (added tokens included) less its special ids, ascending."""
    special = set(tokenizer.all_special_ids)
    return np.array([i for i in range(len(tokenizer)) if i not in special], dtype=np.int64)


def prefix_ids(tokenizer) -> list[int]:
    """The special ids a window starts with (e.g. BOS or [CLS]; empty for GPT-2-like tokenizers)."""
    marker = int(ordinary_ids(tokenizer)[0])
    window = window_wrapper(tokenizer)([marker])
    return window[:window.index(marker)]
