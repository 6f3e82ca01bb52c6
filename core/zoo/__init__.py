"""The model zoo: which models the harness measures, how each is loaded, and where its neurons are.

- :mod:`core.zoo.models`: loading the small and full tiers' models by name, and any model by path,
  ``.gguf`` file or Hub id; loads come from ``cache_dir("models")`` (built offline from packages) or the
  local Hugging Face cache, never the Hub.
- :mod:`core.zoo.registry`: the zoo's names (``ModelSpec``, ``MODELS``) and the random twin's suffix and
  seed.
- :mod:`core.zoo.checkpoints`: opening a checkpoint folder (a damaged one of the model cache rebuilt),
  the random twin of a config, and a model's placement over several GPUs.
- :mod:`core.zoo.build`: the small tier's builders (the GGUF conversion, the fitted MLM head, the tiny
  ViT), each a folder of the model cache with its model card.
- :mod:`core.zoo.own`: models outside the zoo (checkpoint folder, ``.gguf`` file, Hub id): naming,
  checks of kind and family, loading.
- :mod:`core.zoo.sites`: the architecture table (one row per family) and the hooks at MLP neurons and
  attention pre-out neurons that every experiment reads and ablates.
- :mod:`core.zoo.training`: fitting the small tier's own models (masked-LM head, tiny ViT on Fashion-MNIST).

Data comes in from :mod:`core.data` (the text the small tier's models are fitted on); loaded models go out
to the neuron statistics (:mod:`core.neurons`) and to the papers' experiments.
"""
