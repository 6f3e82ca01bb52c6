"""Core algorithms of the neuron-claims reproducibility harness.

Data flows one way: model zoo + data -> neuron statistics (collection split) -> method (ablation,
selection, clusters) -> evaluation (evaluation split) -> statistic + interval -> verdict -> report.
Nothing in ``core`` imports pytest or anything from ``claims/``.
"""
