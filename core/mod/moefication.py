"""MoEfication: balanced k-means of the MLP neurons' input weights (MOD Eq. 2, section 2.3.2).

``{C_1, ..., C_k} = BalancedKMeans(W_in^T, k)``: the rows of ``W_in`` (one per MLP neuron, length
d_model), L2-normalised, are clustered by balanced k-means (``k-means-constrained``, Malinen and
Franti 2014) into k clusters of exactly ``d_mlp / k`` neurons. ``claims.md``: k = 96 for ViT-base, 128
for Mistral-7B, ``d_mlp / 32`` for other models (:func:`k_for`). Results are cached on disk under
``cache_dir("moefication")``, keyed by the hash of the weights, k, the seed, the k-means settings and
the library's version.
"""
from __future__ import annotations

import hashlib
import importlib.metadata

import numpy as np
import torch

from core.cache import atomic_path, cache_dir, cache_key, load_cached

__all__ = ["moefication", "k_for", "PAPER_K", "CLUSTER_SIZE", "N_INIT"]

#: The paper's k per full-tier model (MOD section 2.3.2).
PAPER_K = {"vit-base-cifar100": 96, "mistral-7b-instruct": 128}
#: Mean cluster size for other models (claims.md: k = d_mlp / 32; ViT-base has 3072 / 96 = 32).
CLUSTER_SIZE = 32
#: k-means restarts. One restart: balanced k-means of one 1536 x 576 layer takes about a second on a
#: CPU core, ten would take ten (the library's default); every random choice is seeded all the same.
N_INIT = 1
#: Bumped when a change alters what a cached clustering holds.
CLUSTERING_VERSION = 1


def k_for(model: str, d_mlp: int) -> int:
    """k of the MoEfication of a model: the paper's value for its models, else ``d_mlp / 32``.

    Raises
    ------
    ValueError
        If ``d_mlp`` is not a multiple of 32 for a model without a paper value.
    """
    base = model.removesuffix(":random")
    if base in PAPER_K:
        return PAPER_K[base]
    if d_mlp % CLUSTER_SIZE:
        raise ValueError(f"MoEfication of {model}: d_mlp = {d_mlp} is not a multiple of {CLUSTER_SIZE}, "
                         f"so k = d_mlp / {CLUSTER_SIZE} is not an integer")
    return d_mlp // CLUSTER_SIZE


def _as_array(w_in) -> np.ndarray:
    if isinstance(w_in, torch.Tensor):
        w_in = w_in.detach().to("cpu", torch.float32).numpy()
    w = np.asarray(w_in, dtype=np.float32)
    if w.ndim != 2:
        raise ValueError(f"w_in: expected shape (d_mlp, d_model), got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("w_in holds NaN or infinite values")
    return np.ascontiguousarray(w)


def moefication(w_in, k: int, *, seed: int = 0, n_init: int = N_INIT, max_iter: int = 300,
                cache: bool = True) -> np.ndarray:
    """Balanced k-means clusters of the L2-normalised rows of ``W_in`` (MOD Eq. 2).

    Parameters
    ----------
    w_in : ndarray or Tensor of shape (d_mlp, d_model), float
        One row per MLP neuron (``core.zoo.sites.w_in``). For gated MLPs ``up_proj`` is the paper code's
        choice; pass ``gate_proj`` or their concatenation (``which="gate"``/``"concat"``) to cluster
        those instead.
    k : int
        Number of clusters; must divide d_mlp (every cluster holds exactly ``d_mlp / k`` neurons).
    seed : int, default 0
        ``random_state`` of ``KMeansConstrained``.
    n_init, max_iter : int
        k-means restarts and iterations (see :data:`N_INIT`).
    cache : bool, default True
        Reload from / save to ``cache_dir("moefication")``, keyed by the sha256 of the float32
        weights, k, seed, n_init, max_iter and the ``k-means-constrained`` version.

    Returns
    -------
    ndarray of shape (d_mlp,), int64
        Cluster label in [0, k) of every neuron; every label occurs exactly ``d_mlp / k`` times.

    Raises
    ------
    ValueError
        If ``w_in`` is not 2-D or holds non-finite values, if k is not an integer in [1, d_mlp], or if
        k does not divide d_mlp.
    """
    w = _as_array(w_in)
    d_mlp = w.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= d_mlp:
        raise ValueError(f"k: expected an integer in [1, d_mlp = {d_mlp}], got {k!r}")
    k = int(k)
    if d_mlp % k:
        raise ValueError(f"k = {k} does not divide d_mlp = {d_mlp}: balanced clusters of exactly "
                         f"d_mlp / k neurons need a divisor (e.g. k = {_divisors_near(d_mlp, k)})")
    version = importlib.metadata.version("k-means-constrained")
    path = None
    if cache:
        digest = hashlib.sha256(w.tobytes()).hexdigest()[:32]
        key = cache_key(kind="moefication", version=CLUSTERING_VERSION, weights=digest, shape=w.shape,
                        k=k, seed=seed, n_init=n_init, max_iter=max_iter, library=version)
        path = cache_dir("moefication") / f"{key}.npy"
        if (found := load_cached(path, np.load)) is not None:  # a damaged file is named and refitted
            return found
    labels = _fit(w, k, seed=seed, n_init=n_init, max_iter=max_iter)
    if path is not None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, labels)
    return labels


def _divisors_near(n: int, k: int) -> str:
    divs = [d for d in range(1, n + 1) if n % d == 0]
    near = sorted(divs, key=lambda d: abs(d - k))[:2]
    return " or ".join(str(d) for d in sorted(near))


def _fit(w: np.ndarray, k: int, *, seed: int, n_init: int, max_iter: int) -> np.ndarray:
    from k_means_constrained import KMeansConstrained

    x = w.astype(np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms > 0, norms, 1.0)
    size = x.shape[0] // k
    if k == 1:
        return np.zeros(x.shape[0], dtype=np.int64)
    km = KMeansConstrained(n_clusters=k, size_min=size, size_max=size, random_state=seed,
                           n_init=n_init, max_iter=max_iter)
    labels = km.fit_predict(x).astype(np.int64)
    if not (np.bincount(labels, minlength=k) == size).all():  # the library's guarantee, checked
        raise RuntimeError(f"k-means-constrained returned unequal cluster sizes "
                           f"{np.bincount(labels, minlength=k).tolist()}")
    return labels
