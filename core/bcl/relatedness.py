"""BCL-8: semantic relatedness of a cluster's top tokens (claims.md, BCL-8, revision 2).

:func:`token_relatedness`: the mean pairwise cosine of the word embeddings (:mod:`core.bcl.embeddings`)
of each cluster's top words, deduplicated, against random size-matched sets of distinct words.
"""
from __future__ import annotations

import numpy as np


def token_relatedness(top_cols: list[np.ndarray], words: list, vectors: np.ndarray, *,
                      n_random_sets: int = 100, seed: int = 0) -> dict:
    """Mean pairwise cosine of each cluster's top words' embeddings vs random size-matched sets (BCL-8).

    Revision 2: tokens are mapped to embedding words and deduplicated first, one vector per distinct
    word, in the cluster and in the random sets alike: ``house``, ``##house`` and ``Ġhouse`` in a
    cluster's top tokens count once (they would otherwise score cosine 1 with each other, which
    random sets almost never do). A cluster's ``m`` distinct words are compared with random sets of
    ``m`` distinct words drawn uniformly from the distinct words of the filtered vocabulary.

    Parameters
    ----------
    top_cols : list of ndarray of int
        Per cluster, its top-token columns of the filtered vocabulary.
    words : sequence of (str or None), length n_tokens
        The embedding word of every filtered token (None: no vector), :func:`core.bcl.embeddings.token_vectors`.
    vectors : ndarray of shape (n_tokens, d)
        Their vectors (tokens mapped to the same word have the same vector).

    Returns
    -------
    dict
        ``cluster`` (clusters used: at least 2 distinct words), ``observed`` and ``random`` (mean over
        ``n_random_sets`` random sets), ``diff`` = observed - random, per used cluster; ``n_mapped``
        (top tokens with a word) and ``n_words`` (distinct words) per cluster; ``n_vocab_words``.
    """
    from core.bcl.embeddings import mean_pairwise_cosine

    if len(words) != len(vectors):
        raise ValueError(f"token_relatedness: {len(words)} words but {len(vectors)} vectors")
    first: dict[str, int] = {}
    for j, w in enumerate(words):
        if w is not None:
            first.setdefault(w, j)
    pool = np.asarray(sorted(first.values()), dtype=np.int64)  # one column per distinct word
    rng = np.random.default_rng(seed)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    out = {"cluster": [], "observed": [], "random": [], "diff": [], "n_mapped": [], "n_words": [],
           "n_vocab_words": int(pool.size)}
    for c, cols in enumerate(top_cols):
        mapped = [words[int(j)] for j in cols if words[int(j)] is not None]
        distinct = [first[w] for w in dict.fromkeys(mapped)]
        out["n_mapped"].append(len(mapped))
        out["n_words"].append(len(distinct))
        m = len(distinct)
        if m < 2 or pool.size < m:
            continue
        obs = mean_pairwise_cosine(vectors[distinct])
        sets = np.stack([rng.choice(pool, size=m, replace=False) for _ in range(n_random_sets)])
        v = unit[sets]  # (n_sets, m, d)
        g = np.einsum("smd,snd->smn", v, v)
        rand = float(((g.sum((1, 2)) - np.trace(g, axis1=1, axis2=2)) / (m * (m - 1))).mean())
        out["cluster"].append(c)
        out["observed"].append(obs)
        out["random"].append(rand)
        out["diff"].append(obs - rand)
    return out

