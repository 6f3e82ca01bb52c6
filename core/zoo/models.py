"""The model zoo's loads: :func:`load_model` gives a :class:`LoadedModel` for any model name, whatever its
source, and :func:`get_spec` its :class:`~core.zoo.registry.ModelSpec`.

- Small tier (offline, from packages; :data:`core.zoo.registry.MODELS`): a folder of
  ``core.cache.cache_dir("models")`` built once by :mod:`core.zoo.build` (a GGUF conversion, a fitted
  head, a training), keyed by everything that determines it, with a model card (``card.json``:
  provenance, package versions, config, seed, accuracy on its evaluation split, time taken).
- Full tier (the papers' models, by Hugging Face id): loaded only from a local Hub cache, since no
  machine of this project reaches the Hub (:func:`_load_hub`).
- Your own model (``pytest --models``): a checkpoint folder, a ``.gguf`` file or a Hub id, named and
  checked by :func:`core.zoo.own.resolve` and loaded by :func:`core.zoo.own._load_own`.

Every name ``X`` also has ``X:random``, the same config with a fresh initialisation from a fixed seed
(the modularity paper's "random model", :func:`core.zoo.checkpoints._twin`).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import torch
import transformers

from core.cache import cache_key, package_versions
from core.errors import MissingAssetError
from core.zoo.build import _SMALL_BUILDERS
from core.zoo.checkpoints import _AUTO, _open_cached, _placement, _random_twin
from core.zoo.own import _OWN, _is_path_or_id, _load_own, resolve
from core.zoo.registry import MODELS, RANDOM_SEED, RANDOM_SUFFIX, ModelSpec, UnknownModelError


@dataclass
class LoadedModel:
    """A model of the zoo, ready to run.

    Attributes
    ----------
    name : str
        Model name (``X`` or ``X:random``): a zoo name, or the name :func:`resolve` gave a folder,
        ``.gguf`` file or Hub id.
    spec : ModelSpec
    model : transformers.PreTrainedModel
        In eval mode, on ``device``.
    tokenizer : transformers tokenizer or None
        None for image models.
    card : dict
        The model card.
    """

    name: str
    spec: ModelSpec
    model: torch.nn.Module
    tokenizer: object | None
    card: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def tier(self) -> str:
        return self.spec.tier

    @property
    def is_random(self) -> bool:
        return self.name.endswith(RANDOM_SUFFIX)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def max_length(self) -> int | None:
        cfg = self.model.config
        n = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
        if n and cfg.model_type == "roberta":
            n -= 2  # RoBERTa's positions start after the padding index
        return n


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a zoo name, of a name :func:`resolve` gave, or of a folder, ``.gguf``
    file or Hub id (a ``:random`` suffix is allowed).

    Raises
    ------
    UnknownNameError
        For a name that is neither in the zoo nor a path or a Hub id.
    UnsupportedModelError, MissingAssetError
        As :func:`resolve`.
    """
    base = name.removesuffix(RANDOM_SUFFIX)
    if base in MODELS:
        return MODELS[base]
    if base in _OWN:
        return _OWN[base]
    if _is_path_or_id(base) or base.startswith("rehearsal:"):
        return get_spec(resolve(base))
    raise UnknownModelError(name)


def load_model(name_or_path: str | os.PathLike, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model of the zoo by name, or your own by folder, ``.gguf`` file or Hub id.

    Parameters
    ----------
    name_or_path : str or path-like
        One of :func:`core.zoo.registry.list_models`; or a folder holding a Hugging Face checkpoint; or a
        ``.gguf`` file (converted once into a cached fp32 checkpoint); or a Hub id ``org/name`` in the
        local Hugging Face cache. ``X:random`` is the random twin of any of them (same config, seed 0).
    device : str or torch.device
        ``"cpu"`` or a CUDA device. Full-tier models and models outside the zoo load in bfloat16 on
        CUDA, float32 on CPU (small-tier zoo models always in float32); with ``"cuda"`` on a machine
        with several GPUs they load across all of them with accelerate's ``device_map="auto"``
        (``"cuda:N"`` keeps a model on GPU N).

    Returns
    -------
    LoadedModel
        The same type whatever the source; ``name`` is :func:`resolve`'s name. Loading a converted
        ``.gguf`` model from the cache costs a ``stat`` of the file and the checkpoint's load.

    Raises
    ------
    UnknownNameError
        For a name not in the zoo that is not a path or a Hub id (the message lists the valid names).
    UnsupportedModelError
        For a path that is not a checkpoint (no ``config.json``, no weights, no tokenizer for a text
        model), a GGUF file transformers cannot read, a family without a row in
        :data:`core.zoo.sites.ARCHITECTURES`, or a model of a kind no claim measures; the message names
        the path and what was expected.
    MissingAssetError
        When the package carrying a small-tier model is not installed, a Hub model is not in the local
        Hugging Face cache (the reason names the id and the cache folder), or a checkpoint lacks
        weights its kind needs (a masked LM without an MLM head); tests skip with the reason.
    """
    name = resolve(name_or_path)
    return _load(name, str(torch.device(device)))


@functools.lru_cache(maxsize=4)
def _load(name: str, device: str) -> LoadedModel:
    transformers.utils.logging.disable_progress_bar()  # the harness shows its own progress
    spec = get_spec(name)
    random = name.endswith(RANDOM_SUFFIX)
    if spec.origin is not None:
        model, tokenizer, card = _load_own(spec, device, random)
    elif spec.tier == "small":
        model, tokenizer, card = _open_cached(_SMALL_BUILDERS[spec.name], spec.kind, random)
    else:
        model, tokenizer, card = _load_hub(spec, device, random)
    if random:
        card = {"name": name, "provenance": f"random initialisation (seed {RANDOM_SEED}) of the config "
                f"of {spec.name}", "seed": RANDOM_SEED, "config": model.config.to_dict(),
                "twin_of": card}
        if spec.origin is not None:  # the experiments' caches key a model outside the zoo by its files
            card["cache_key"] = cache_key(twin_of=card["twin_of"].get("cache_key"), seed=RANDOM_SEED)
    if not getattr(model, "hf_device_map", None):  # a device_map="auto" model is placed already
        model = model.to(device)
    model = model.eval()
    return LoadedModel(name=name, spec=spec, model=model, tokenizer=tokenizer, card=card)


# ---------------------------------------------------------------------------------------------
# Full tier
# ---------------------------------------------------------------------------------------------

def _load_hub(spec: ModelSpec, device: str, random: bool):
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    kw = {"local_files_only": True}
    try:
        config = transformers.AutoConfig.from_pretrained(spec.hub_id, **kw)
        if spec.kind == "image":
            tokenizer = None
        else:
            tokenizer = transformers.AutoTokenizer.from_pretrained(spec.hub_id, **kw)
        if random:
            model = _random_twin(spec, config)
        else:
            model = _AUTO[spec.kind].from_pretrained(spec.hub_id, dtype=dtype, **kw, **_placement(device))
    except (OSError, ValueError) as e:
        raise MissingAssetError(
            f"full-tier model {spec.name!r} ({spec.hub_id}) is neither reachable nor in the local "
            f"Hugging Face cache (HF_HOME); this machine has no Hub access ({type(e).__name__})"
        ) from None
    card = {"name": spec.name, "provenance": f"Hugging Face Hub {spec.hub_id} (local cache)",
            "config": config.to_dict(), "versions": package_versions()}
    return model, tokenizer, card
