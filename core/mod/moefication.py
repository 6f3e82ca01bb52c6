"""MoEfication: balanced k-means of the MLP neurons' input weights (MOD Eq. 2, section 2.3.2).

``{C_1, ..., C_k} = BalancedKMeans(W_in^T, k)``: the rows of ``W_in`` (one per MLP neuron, length
d_model), L2-normalised, are clustered by balanced k-means into k clusters of exactly ``d_mlp / k``
neurons. ``claims.md``: k = 96 for ViT-base, 128 for Mistral-7B, ``d_mlp / 32`` for other models
(:func:`k_for`).

Two implementations (``algorithm``):

- ``"torch"`` (default): greedy k-means++ seeding and the Lloyd distances and means in torch on the
  device of the weights (GPU when the model is there, else CPU); each assignment step is the exact
  balanced assignment of the squared distances, a min-cost flow solved by OR-Tools on the CPU.
- ``"k-means-constrained"``: the library of the paper's code (Malinen and Franti 2014: Lloyd
  iterations whose assignment is a min-cost flow of the *unsquared* distances rounded to 1e-3, all
  in numpy on the CPU), kept as the reference. Its k-means++ seeding takes most of its time on wide
  layers (about 210 of 225-270 s on one Mistral-width layer).

Results are cached on disk under ``cache_dir("moefication")``, keyed by the hash of the weights, k,
the seed, the k-means settings, the algorithm, its library's version and (torch) the device type.
"""
from __future__ import annotations

import hashlib
import importlib.metadata

import numpy as np
import torch

from core.cache import atomic_path, cache_dir, cache_key, load_cached

__all__ = ["moefication", "inertia", "k_for", "ALGORITHMS", "PAPER_K", "CLUSTER_SIZE", "N_INIT"]

#: The paper's k per full-tier model (MOD section 2.3.2).
PAPER_K = {"vit-base-cifar100": 96, "mistral-7b-instruct": 128}
#: Mean cluster size for other models (claims.md: k = d_mlp / 32; ViT-base has 3072 / 96 = 32).
CLUSTER_SIZE = 32
#: k-means restarts. One restart: balanced k-means of one 1536 x 576 layer takes one to two seconds
#: on a CPU core, ten would take ten times as long (k-means-constrained's default); every random choice
#: is seeded all the same.
N_INIT = 1
#: Bumped when a change alters what a cached clustering holds (2: the torch algorithm, keyed by name).
CLUSTERING_VERSION = 2
#: The implementations of balanced k-means (see the module docstring); the first is the default.
ALGORITHMS = ("torch", "k-means-constrained")
#: Lloyd stops when the squared centre shift falls to TOL times the mean feature variance (the
#: criterion and value of scikit-learn and k-means-constrained).
TOL = 1e-4
#: Squared distances (in [0, 4]: rows have unit norm) are rounded to integer multiples of
#: 1 / COST_SCALE for the min-cost flow, so each assignment is optimal to within d_mlp / COST_SCALE
#: (k-means-constrained rounds unsquared distances to 1e-3).
COST_SCALE = 10**6


def k_for(model: str, d_mlp: int) -> int:
    """k of the MoEfication of a model: the paper's value for its models (and for their rehearsal models,
    ``rehearsal:<name>[@NL]``, which stand at the papers' widths), else ``d_mlp / 32``.

    Raises
    ------
    ValueError
        If ``d_mlp`` is not a multiple of 32 for a model without a paper value.
    """
    base = model.removesuffix(":random")
    if base.startswith("rehearsal:"):  # core.zoo.rehearsal's names: the paper model's name, a layer cut
        base = base.removeprefix("rehearsal:").split("@", 1)[0]
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
                cache: bool = True, algorithm: str = "torch", device=None) -> np.ndarray:
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
        Seed of the k-means++ draws (``random_state`` of ``KMeansConstrained``); restart r uses
        ``seed + r`` with the torch algorithm.
    n_init, max_iter : int
        k-means restarts (the lowest inertia wins) and Lloyd iterations (see :data:`N_INIT`).
    cache : bool, default True
        Reload from / save to ``cache_dir("moefication")``, keyed by the sha256 of the float32
        weights, k, seed, n_init, max_iter, the algorithm, its library's version and the device type.
    algorithm : {"torch", "k-means-constrained"}, default "torch"
        See the module docstring. Both give exactly balanced clusters; on real and random layers up to
        ViT-base width their inertias agree to within 1% (``tests/test_clustering.py``).
    device : str or torch.device, optional
        Where the torch algorithm runs: by default the device of ``w_in`` when it is a tensor (the
        model's), else the CPU. Float32 matrix products; the flow on the CPU. Deterministic given
        the seed on the CPU; on a GPU the labels may differ from the CPU's where distances tie to
        float32 rounding. Ignored by ``"k-means-constrained"`` (CPU only).

    Returns
    -------
    ndarray of shape (d_mlp,), int64
        Cluster label in [0, k) of every neuron; every label occurs exactly ``d_mlp / k`` times.

    Raises
    ------
    ValueError
        If ``w_in`` is not 2-D or holds non-finite values, if k is not an integer in [1, d_mlp], if
        k does not divide d_mlp (the message names the nearest divisors), if n_init or max_iter is
        not an integer >= 1, or for an unknown algorithm.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm: expected one of {ALGORITHMS}, got {algorithm!r}")
    if device is None:
        device = w_in.device if isinstance(w_in, torch.Tensor) else "cpu"
    device = torch.device(device)
    w = _as_array(w_in)
    d_mlp = w.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= d_mlp:
        raise ValueError(f"k: expected an integer in [1, d_mlp = {d_mlp}], got {k!r}")
    k = int(k)
    if d_mlp % k:
        raise ValueError(f"k = {k} does not divide d_mlp = {d_mlp}: balanced clusters of exactly "
                         f"d_mlp / k neurons need a divisor (e.g. k = {_divisors_near(d_mlp, k)})")
    if isinstance(n_init, bool) or not isinstance(n_init, (int, np.integer)) or n_init < 1:
        raise ValueError(f"n_init: expected an integer >= 1, got {n_init!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter: expected an integer >= 1, got {max_iter!r}")
    library = "torch" if algorithm == "torch" else "k-means-constrained"
    where = device.type if algorithm == "torch" else "cpu"
    path = None
    if cache:
        digest = hashlib.sha256(w.tobytes()).hexdigest()[:32]
        key = cache_key(kind="moefication", version=CLUSTERING_VERSION, weights=digest, shape=w.shape,
                        k=k, seed=seed, n_init=n_init, max_iter=max_iter, algorithm=algorithm,
                        library=importlib.metadata.version(library), device=where)
        path = cache_dir("moefication") / f"{key}.npy"
        if (found := load_cached(path, np.load)) is not None:  # a damaged file is named and refitted
            return found
    if algorithm == "torch":
        labels = fit_torch(w, k, seed=seed, n_init=n_init, max_iter=max_iter, device=device)
    else:
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


def inertia(w_in, labels) -> float:
    """Balanced k-means objective of a clustering: the total squared L2 distance of the L2-normalised
    rows of ``w_in`` (shape (d_mlp, d_model)) to the mean of their cluster (MOD Eq. 2's objective).
    ``labels``: (d_mlp,) integers. Computed in float64 on the CPU; unitless (rows have unit norm)."""
    x = _as_array(w_in).astype(np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms > 0, norms, 1.0)
    labels = np.asarray(labels)
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels: expected shape ({x.shape[0]},), got {labels.shape}")
    total = 0.0
    for c in np.unique(labels):
        rows = x[labels == c]
        total += float(((rows - rows.mean(0)) ** 2).sum())
    return total


def _normalised(w: np.ndarray, device: torch.device) -> torch.Tensor:
    """The rows of ``w`` scaled to unit L2 norm (zero rows stay zero), float32 on ``device``."""
    x = torch.from_numpy(w).to(device, torch.float32)
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    return x / torch.where(norms > 0, norms, torch.ones_like(norms))


def _sq_dist(x: torch.Tensor, sq: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(n, m) squared distances from the rows of x (squared norms ``sq``) to the rows of y, >= 0."""
    return (sq[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)).clamp_min_(0.0)


def _kmeans_pp(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur and Vassilvitskii 2007; ``2 + ln k`` trials a centre, as in
    scikit-learn): (k, d) initial centres, rows of ``x``. Random numbers come from the CPU generator
    ``gen`` whatever the device, so that a seed means the same draws everywhere."""
    n = x.shape[0]
    trials = 2 + int(np.log(k))
    sq = (x * x).sum(1)
    first = int(torch.randint(n, (1,), generator=gen))
    chosen = [first]
    closest = _sq_dist(x, sq, x[first:first + 1])[:, 0].double()
    for _ in range(1, k):
        cum = torch.cumsum(closest, 0)
        r = torch.rand(trials, generator=gen, dtype=torch.float64).to(x.device) * cum[-1]
        cand = torch.searchsorted(cum, r).clamp_(max=n - 1)
        dist = torch.minimum(closest[:, None], _sq_dist(x, sq, x[cand]).double())
        best = int(torch.argmin(dist.sum(0)))
        closest = dist[:, best]
        chosen.append(int(cand[best]))
    return x[torch.tensor(chosen, device=x.device)].clone()


def assign(dist: torch.Tensor, size: int) -> torch.Tensor:
    """Balanced assignment: the (n,) int64 labels minimising the total of ``dist[i, label_i]`` with
    exactly ``size`` rows a cluster. ``dist``: (n, k) squared distances, n = k * size, any device.

    A min-cost flow (OR-Tools ``SimpleMinCostFlow``, cost scaling; the solver k-means-constrained
    uses) from n unit supplies to k demands of ``size``, one arc per (row, cluster); costs are the
    distances rounded to multiples of 1 / COST_SCALE, so the total is optimal to within
    ``n / COST_SCALE``. Runs on the CPU whatever the device of ``dist``.
    """
    from ortools.graph.python.min_cost_flow import SimpleMinCostFlow

    n, k = dist.shape
    cost = torch.round(dist.double() * COST_SCALE).clamp_min_(0).to("cpu", torch.int64).numpy().reshape(-1)
    flow = SimpleMinCostFlow()
    tails = np.repeat(np.arange(n, dtype=np.int64), k)
    heads = np.tile(np.arange(n, n + k, dtype=np.int64), n)
    arcs = flow.add_arcs_with_capacity_and_unit_cost(tails, heads, np.ones(n * k, dtype=np.int64), cost)
    flow.set_nodes_supplies(np.arange(n + k, dtype=np.int64),
                            np.concatenate([np.ones(n, np.int64), np.full(k, -size, np.int64)]))
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"balanced assignment: min-cost flow returned status {status} (n = {n}, k = {k})")
    taken = flow.flows(arcs).reshape(n, k)
    return torch.from_numpy(taken.argmax(1).astype(np.int64)).to(dist.device)


def fit_torch(w: np.ndarray, k: int, *, seed: int, n_init: int, max_iter: int, device) -> np.ndarray:
    """Balanced k-means in torch, ``n_init`` restarts (seeds ``seed + r``), the lowest inertia kept."""
    dev = torch.device(device)
    x = _normalised(w, dev)
    n = x.shape[0]
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    best, best_inertia = None, float("inf")
    for r in range(n_init):
        labels, total = _lloyd(x, k, seed=seed + r, max_iter=max_iter)
        if total < best_inertia:
            best, best_inertia = labels, total
    out = best.cpu().numpy().astype(np.int64)
    if not (np.bincount(out, minlength=k) == n // k).all():  # the flow's guarantee, checked
        raise RuntimeError(f"balanced k-means returned unequal cluster sizes "
                           f"{np.bincount(out, minlength=k).tolist()}")
    return out


def _lloyd(x: torch.Tensor, k: int, *, seed: int, max_iter: int) -> tuple[torch.Tensor, float]:
    """One run: k-means++ seeding, then Lloyd iterations whose assignment step is the balanced
    assignment of :func:`assign` (exact to ``n / COST_SCALE``); stops when the labels repeat, when the
    squared centre shift is at most ``TOL`` times the mean feature variance, or after ``max_iter``.
    Returns the (n,) labels and the inertia (float)."""
    n, d = x.shape
    size = n // k
    gen = torch.Generator().manual_seed(seed)
    centres = _kmeans_pp(x, k, gen)
    tol = TOL * float(x.var(0).mean())
    sq = (x * x).sum(1)
    labels = None
    for _ in range(max_iter):
        new = assign(_sq_dist(x, sq, centres), size)
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        order = torch.sort(labels, stable=True).indices  # deterministic means (no atomic adds on GPU)
        moved = x[order].reshape(k, size, d).mean(1)
        shift = float(((moved - centres) ** 2).sum())
        centres = moved
        if shift <= tol:
            break
    total = float(((x - centres[labels]) ** 2).sum())
    return labels, total


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
