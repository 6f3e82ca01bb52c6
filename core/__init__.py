"""Core algorithms of the neuron-claims reproducibility harness.

Data flows one way, and the folders follow it::

    core.data + core.zoo  ->  core.neurons (statistics of the collection split)
        ->  core.abl / core.mod / core.bcl (each paper's method and experiment; evaluation split)
        ->  core.inference (statistic + interval -> verdict, applied in claims/)  ->  core.report

The foundations at the top of ``core`` (errors, cache, profiles, readings, evaluate, results,
inference) import nothing above them; the paper folders never import each other; the report reads only
result and curve files. ``pyproject.toml``'s import-linter contracts check these layers in CI. Nothing
in ``core`` imports pytest or anything from ``claims/``, ``benchmark/`` or ``tests/``.
"""
