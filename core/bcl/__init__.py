"""BCL: semantically interpretable neuron clusters in BERT (the clusters paper in ``../shared/papers/``).

- :mod:`core.bcl.representations`: a neuron's representation from its activations over tokens.
- :mod:`core.bcl.embeddings`: word embeddings (GloVe from a package) for the relatedness of top tokens.
- :mod:`core.bcl.neuron_clusters`: agglomerative clustering of neurons and the clusters' top tokens.
- :mod:`core.bcl.baselines`: the random baselines of a cluster (``random``, ``random_layer``,
  ``random_position``, and reading R4's).
- :mod:`core.bcl.sentences`: the evaluation sentences of each cluster, drawn apart and over many documents.
- :mod:`core.bcl.intervention`: the causal intervention on a cluster's neurons, with its baselines, in one
  batched pass.
- :mod:`core.bcl.relatedness`: BCL-8, the embedding relatedness of the clusters' top words.
- :mod:`core.bcl.experiment`: the BCL experiment on a model and corpus; results cached on disk.
- :mod:`core.bcl.result`: its result as typed records, with the figure payload and the per-unit data.
- :mod:`core.bcl.figures`: the BCL figures of the report.

Inputs: a masked or causal LM (:mod:`core.zoo`), text windows (:mod:`core.data`). Outputs: a
:class:`core.bcl.result.BclResult` (cluster scores per seed and baseline, BCL-7 and BCL-8), which
``claims/test_bert_clusters.py`` turns into verdicts with ``claims/bcl_rules.py``.
"""


def experiment_versions() -> dict[str, int]:
    """The version constants that key this paper's experiment cache entries, recorded in every result's
    provenance (:func:`core.provenance.experiment_version`); bump one when a change alters what the
    experiment computes."""
    from core.bcl.experiment import BCL_VERSION, REPR_VERSION

    return {"BCL_VERSION": BCL_VERSION, "REPR_VERSION": REPR_VERSION}
