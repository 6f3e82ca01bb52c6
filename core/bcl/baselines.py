"""BCL random baselines (Zhang, Gu, Yao, section 5.5; claims.md, BCL): neuron sets that the intervention
compares a cluster with.

Baselines (claims.md, BCL), 5 seeds each (:data:`SEEDS`), the same number of neurons as the cluster:

- ``random``: neurons drawn from all layers (:func:`random_neurons`);
- ``random_layer``: the cluster's per-layer counts, drawn inside each layer (:func:`random_layer`);
- ``random_position``: random neuron indices, each ablated in every layer, until the count matches
  (:func:`random_position`).

Reading R4 (claims.md, "Readings") reads ``random_position`` as the cluster's indices kept, each moved
to a random layer (:func:`random_position_kept`). :func:`baseline_sets` draws the three baselines of a
cluster, one set per seed. Neuron sets are flat residual-neuron indices ``layer * width + index``, sorted.
"""
from __future__ import annotations

import numpy as np

SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
BASELINES: tuple[str, ...] = ("random", "random_layer", "random_position")


def random_neurons(size: int, n_layers: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """``random``: ``size`` distinct neurons drawn uniformly from all layers (flat indices, sorted)."""
    if not 0 <= size <= n_layers * width:
        raise ValueError(f"size must lie in [0, {n_layers * width}], got {size}")
    return np.sort(rng.choice(n_layers * width, size=size, replace=False)).astype(np.int64)


def random_layer(per_layer: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    """``random_layer``: ``per_layer[l]`` distinct neurons drawn inside each layer l (flat, sorted)."""
    out = [l * width + rng.choice(width, size=int(c), replace=False) for l, c in enumerate(per_layer)]
    return np.sort(np.concatenate(out)).astype(np.int64) if out else np.zeros(0, np.int64)


def random_position(size: int, n_layers: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """``random_position``: random indices, each ablated in every layer, until ``size`` neurons.

    ``size // n_layers`` distinct indices are ablated in every layer; the remainder ``size % n_layers``
    neurons take one more distinct index in that many random layers. Flat indices, sorted.
    """
    if not 0 <= size <= n_layers * width:
        raise ValueError(f"size must lie in [0, {n_layers * width}], got {size}")
    full, rest = divmod(size, n_layers)
    idx = rng.choice(width, size=full + (rest > 0), replace=False)
    out = [l * width + idx[:full] for l in range(n_layers)]
    if rest:
        layers = rng.choice(n_layers, size=rest, replace=False)
        out.append(layers * width + idx[full])
    return np.sort(np.concatenate(out)).astype(np.int64)


def random_position_kept(cluster: np.ndarray, n_layers: int, width: int,
                         rng: np.random.Generator) -> np.ndarray:
    """``random_position``, reading R4 (claims.md, "Readings"): the cluster's indices kept, each
    neuron moved to a random layer.

    A neuron ``(layer, index)`` of the cluster becomes ``(layer', index)`` with ``layer'`` uniform over
    all layers; the ``c`` neurons of the cluster that share an index take ``c`` distinct layers (drawn
    without replacement), so the set has the cluster's size and its per-index counts.

    Returns
    -------
    ndarray of int64, sorted
        Flat indices ``layer * width + index``.
    """
    cluster = np.asarray(cluster, dtype=np.int64)
    if cluster.size and (cluster.min() < 0 or cluster.max() >= n_layers * width):
        raise ValueError(f"cluster indices must lie in [0, {n_layers * width})")
    index, count = np.unique(cluster % width, return_counts=True)
    out = [rng.choice(n_layers, size=int(c), replace=False) * width + i for i, c in zip(index, count)]
    return np.sort(np.concatenate(out)).astype(np.int64) if out else np.zeros(0, np.int64)


def baseline_sets(cluster: np.ndarray, n_layers: int, width: int, seeds=SEEDS,
                  salt: tuple[int, ...] = ()) -> dict[str, list[np.ndarray]]:
    """The three baselines of a cluster, one neuron set per seed (``rng`` seeded by (seed, *salt))."""
    cluster = np.asarray(cluster, dtype=np.int64)
    per_layer = np.bincount(cluster // width, minlength=n_layers)
    out = {b: [] for b in BASELINES}
    for s in seeds:
        rng = np.random.default_rng([int(s), *map(int, salt)])
        out["random"].append(random_neurons(cluster.size, n_layers, width, rng))
        out["random_layer"].append(random_layer(per_layer, width, rng))
        out["random_position"].append(random_position(cluster.size, n_layers, width, rng))
    return out
