"""MOD: neuron separability and MoEfication (the modularity paper in ``../shared/papers/``).

- :mod:`core.mod.moefication`: balanced k-means of ``W_in`` rows into experts (MOD Eq. 2).
- :mod:`core.mod.lorenz`: Lorenz curve, Lorenz AUC, Gini coefficient and the overlap matrix (MOD 4.1-4.2).
- :mod:`core.mod.experiment`: selective pruning by subset (MOD Eq. 1), the count search, the cross-pruning
  matrix and the nulls; results cached on disk.
- :mod:`core.mod.figures`: the MOD figures of the report.

Inputs: a model (:mod:`core.zoo`), subsets of the small or full tier's data (:mod:`core.data`), neuron
statistics (:mod:`core.neurons`). Outputs: a ``ModResult`` per model, which ``claims/test_modularity.py``
turns into verdicts with ``claims/mod_rules.py``.
"""
