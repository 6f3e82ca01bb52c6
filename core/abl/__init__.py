"""ABL: peak ablation of attention neurons (the ablation paper in ``../shared/papers/``).

- :mod:`core.abl.ablation`: zero, mean, peak and resampling ablation of MLP and attention pre-out
  neurons, and the ABL experiment (a sweep over ablated fractions and random draws, evaluated on
  documents of the evaluation split); results cached on disk.
- :mod:`core.abl.figures`: the ABL figure of the report (CE loss and top1 against the ablated fraction).

Inputs: a model (:mod:`core.zoo`), neuron statistics (:mod:`core.neurons`), evaluation sets
(:mod:`core.data`, :mod:`core.evaluate`). Outputs: per-unit scores by method, draw and document, which
``claims/test_peak_ablation.py`` turns into verdicts with :mod:`core.inference`.
"""


def experiment_versions() -> dict[str, int]:
    """The version constants that key this paper's experiment cache entries, recorded in every result's
    provenance (:func:`core.provenance.experiment_version`); bump one when a change alters what the
    experiment computes."""
    from core.abl.ablation import ABL_VERSION

    return {"ABL_VERSION": ABL_VERSION}
