"""BCL: semantically interpretable neuron clusters in BERT (the clusters paper in ``../shared/papers/``).

- :mod:`core.bcl.representations`: a neuron's representation from its activations over tokens.
- :mod:`core.bcl.embeddings`: word embeddings (GloVe from a package) for the relatedness of top tokens.
- :mod:`core.bcl.neuron_clusters`: agglomerative clustering of neurons and the clusters' top tokens.
- :mod:`core.bcl.intervention`: the intervention on a cluster's neurons, sentence selection, random
  baselines and the BCL experiment; results cached on disk.
- :mod:`core.bcl.figures`: the BCL figures of the report.

Inputs: a masked or causal LM (:mod:`core.zoo`), text windows (:mod:`core.data`). Outputs: cluster scores
per seed and baseline, which ``claims/test_bert_clusters.py`` turns into verdicts with
``claims/bcl_rules.py``.
"""
