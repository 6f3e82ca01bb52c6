"""The model zoo: which models the harness measures, how each is loaded, and where its neurons are.

- :mod:`core.zoo.models`: the small and full tiers' models by name, and any model by path, ``.gguf`` file
  or Hub id; loads come from ``cache_dir("models")`` (built offline from packages) or the local Hugging
  Face cache, never the Hub.
- :mod:`core.zoo.sites`: the architecture table (one row per family) and the hooks at MLP neurons and
  attention pre-out neurons that every experiment reads and ablates.
- :mod:`core.zoo.training`: fitting the small tier's own models (masked-LM head, tiny ViT on Fashion-MNIST).

Data comes in from :mod:`core.data` (the text the small tier's models are fitted on); loaded models go out
to the neuron statistics (:mod:`core.neurons`) and to the papers' experiments.
"""
