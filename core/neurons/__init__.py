"""Neuron statistics: one streaming pass over a collection split, in bounded memory.

- :mod:`core.neurons.stats`: :class:`~core.neurons.stats.NeuronStats`, streaming moments, histograms and
  peaks (the mode of the activation distribution) per neuron, mergeable across batches and devices.
- :mod:`core.neurons.stats_io`: saving and loading those statistics (state dicts, ``.safetensors``
  files), the base class of :class:`~core.neurons.stats.NeuronStats`.
- :mod:`core.neurons.activations`: the collection pass that feeds a model's activations at a site
  (:mod:`core.zoo.sites`) into those statistics, cached on disk.

Inputs are a loaded model (:mod:`core.zoo`) and an evaluation set of a data split (:mod:`core.data`,
:mod:`core.evaluate`); outputs are the per-neuron statistics every paper's method starts from.
"""
