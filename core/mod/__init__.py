"""MOD: neuron separability and MoEfication (the modularity paper in ``../shared/papers/``).

- :mod:`core.mod.moefication`: balanced k-means of ``W_in`` rows into experts (MOD Eq. 2).
- :mod:`core.mod.lorenz`: Lorenz curve, Lorenz AUC, Gini coefficient and the overlap matrix (MOD 4.1-4.2).
- :mod:`core.mod.selection`: the selective-pruning scores (MOD Eq. 1), the selections by fraction or count
  and the count search.
- :mod:`core.mod.nulls`: size-matched random neuron sets and the MOD-6 null.
- :mod:`core.mod.subsets`: the subsets per tier and profile, the MOD sample sizes, the evaluation and
  collection sets (``ModData``) and the MOD-3 evaluation halves.
- :mod:`core.mod.result`: ``ModResult``, what the claims and figures read; saved to and loaded from disk.
- :mod:`core.mod.experiment`: selective pruning by subset, the cross-pruning matrix, the nulls and the
  readings on a model and its random twin; results cached on disk.
- :mod:`core.mod.figures`: the MOD figures of the report.

Inputs: a model (:mod:`core.zoo`), subsets of the small or full tier's data (:mod:`core.data`), neuron
statistics (:mod:`core.neurons`). Outputs: a ``ModResult`` per model, which ``claims/test_modularity.py``
turns into verdicts with ``claims/mod_rules.py``.
"""


def experiment_versions() -> dict[str, int]:
    """The version constants that key this paper's experiment cache entries, recorded in every result's
    provenance (:func:`core.provenance.experiment_version`); bump one when a change alters what the
    experiment computes."""
    from core.mod.experiment import MOD_VERSION
    from core.mod.moefication import CLUSTERING_VERSION

    return {"MOD_VERSION": MOD_VERSION, "CLUSTERING_VERSION": CLUSTERING_VERSION}
