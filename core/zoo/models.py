"""The model zoo's loads: :func:`load_model` gives a :class:`LoadedModel` for any model name, whatever its
source, and :func:`get_spec` its :class:`~core.zoo.registry.ModelSpec`.

- Small tier (offline, from packages; :data:`core.zoo.registry.MODELS`): a folder of
  ``core.cache.cache_dir("models")`` built once by :mod:`core.zoo.build` (a GGUF conversion, a fitted
  head, a training), keyed by everything that determines it, with a model card (``card.json``:
  provenance, package versions, config, seed, accuracy on its evaluation split, time taken).
- Full tier (the papers' models, by Hugging Face id): loaded only from a local Hub cache, since no
  machine of this project reaches the Hub (:func:`_load_hub`).
- Your own model (``pytest --models``): a checkpoint folder, a ``.gguf`` file or a Hub id, named and
  checked by :func:`core.zoo.own.resolve` and loaded by :func:`core.zoo.own.load_own`.

Every name ``X`` also has ``X:random``, the same config with a fresh initialisation from a fixed seed
(the modularity paper's "random model", :func:`core.zoo.checkpoints.twin_of_kind`).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import torch
import transformers

from core.cache import cache_key, package_versions
from core.errors import MissingAssetError
from core.zoo.build import SMALL_BUILDERS
from core.zoo.checkpoints import AUTO, device_placement, loading_report, open_cached, random_twin
from core.zoo.own import OWN, is_path_or_id, load_own, resolve
from core.zoo import sites
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
    def provenance(self) -> dict:
        """What this model ran as, for the result files (claims.md, "Rules that hold for every claim":
        every verdict carries its numbers):

        - ``dtype``: of its parameters, e.g. ``"float32"``, ``"bfloat16"`` (several, comma-separated,
          if they differ);
        - ``device``: where it runs, e.g. ``"cpu"``, ``"cuda:0"`` (several, comma-separated, for a model
          spread over GPUs by ``device_map="auto"``);
        - ``weights``: what identifies its weights without hashing them on every load (:func:`weights_id`);
        - ``unused_weights``: checkpoint weights left out (:data:`core.zoo.own.UNUSED_WEIGHTS`), if any.
        """
        params = list(self.model.parameters())
        dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in params})
        devices = sorted({str(p.device) for p in params})
        out = {"dtype": ",".join(dtypes), "device": ",".join(devices), "weights": weights_id(self.card)}
        if self.card.get("unused_weights"):
            out["unused_weights"] = list(self.card["unused_weights"])
        return out

    @property
    def max_length(self) -> int | None:
        cfg = self.model.config
        n = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
        # RoBERTa's positions start after the padding index (the architecture table's position_offset)
        return n - sites.position_offset(cfg) if n else n


#: :attr:`LoadedModel.provenance` of every model loaded in this process, by name and device (the latest
#: load of a name also under the name alone); read by ``conftest.py``'s ``conclude``.
_PROVENANCE: dict[str, dict] = {}


def weights_id(card: dict) -> str:
    """What identifies a model's weights, from its card, cheaply (no weight file is read):

    - small tier: ``recipe:<cache key>``, the key of its cache folder (derived from the package's file
      digest or the shipped weights and the recipe, :mod:`core.zoo.build`);
    - full tier and Hub ids: ``hub:<id>@<commit>``, the snapshot's commit (content-addressed by the Hub);
    - a checkpoint folder: ``files:<cache key>``, a hash of the sha256 of each of its files (each file
      hashed once per version, :func:`core.cache.file_digest`); a GGUF file: its conversion's key, which
      holds the file's sha256;
    - a random twin: ``random(seed 0) of <its model's id>``;
    - a card without any of these: ``unknown (<provenance>)``.
    """
    if "twin_of" in card:
        return f"random(seed {card.get('seed', RANDOM_SEED)}) of {weights_id(card['twin_of'] or {})}"
    key = card.get("cache_key")
    if isinstance(key, str) and key.startswith("hub:"):
        return key
    if key and card.get("origin") in ("folder", "gguf"):
        return f"files:{key}"
    if key:
        return f"recipe:{key}"
    return f"unknown ({card.get('provenance', 'no model card')})"



def model_identity(lm) -> dict:
    """What identifies a loaded model for the experiments' caches (:func:`core.cache.cache_entry`): the
    one model-identity key of the three papers.

    Returns
    -------
    dict
        ``name``; ``weights``: :func:`weights_id` of its card (a random twin is its own identity:
        ``random(seed 0) of <its model's id>``); ``dtype``: of its parameters (``"float32"``,
        ``"bfloat16"``); ``init``: where a random twin was initialised on a GPU (other draws than on a
        CPU), absent otherwise.
    """
    params = lm.model.parameters()
    out = {"name": lm.name, "weights": weights_id(lm.card),
           "dtype": ",".join(sorted({str(p.dtype).removeprefix("torch.") for p in params}))}
    if lm.card.get("init"):
        out["init"] = lm.card["init"]
    return out


def loaded_provenance(name: str, device: str | None = None) -> dict | None:
    """:attr:`LoadedModel.provenance` of ``name`` as last loaded in this process (on ``device`` if given;
    ``"cuda"`` also matches ``"cuda:0"``), or None when it was not loaded here."""
    if device is not None:
        return _PROVENANCE.get(f"{name}@{torch.device(device)}") or _PROVENANCE.get(name)
    return _PROVENANCE.get(name)


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
    if base in OWN:
        return OWN[base]
    if is_path_or_id(base) or base.startswith("rehearsal:"):
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
        Hugging Face cache (the reason names the id and the cache folder), or a checkpoint is a bare
        encoder without the head its kind needs (a masked LM without an MLM head); tests skip with the
        reason.
    WeightsMismatchError
        (:class:`core.zoo.own.WeightsMismatchError`, an UnsupportedModelError) When a checkpoint folder,
        a ``.gguf`` file or a full-tier model's snapshot lacks weights of the model, holds weights it has
        no place for (a misnamed layer; :data:`core.zoo.own.UNUSED_WEIGHTS` excepted, and listed in the
        card) or weights of another shape: the message names the keys, and the load fails instead of
        running with random weights.
    """
    name = resolve(name_or_path)
    return load_once(name, device_key(device))


def device_key(device: str | torch.device) -> str:
    """One name per place a model can be: ``"cuda"`` on a machine with one visible GPU (or none) is
    ``"cuda:<current>"``, so that ``"cuda"`` and ``"cuda:0"`` share the model cache (a model's
    ``.device`` reads ``cuda:0``; RoBERTa's text generator, OPT-1.3B, was loaded twice). With several
    GPUs ``"cuda"`` stays ``"cuda"``: it spreads a full-tier model over all of them (:func:`device_placement`).

    Raises
    ------
    RuntimeError
        For a string torch cannot read as a device (torch's message).
    """
    d = torch.device(device)
    if d.type == "cuda" and d.index is None and torch.cuda.device_count() <= 1:
        d = torch.device("cuda", torch.cuda.current_device() if torch.cuda.is_available() else 0)
    return str(d)


@functools.lru_cache(maxsize=4)
def load_once(name: str, device: str) -> LoadedModel:
    transformers.utils.logging.disable_progress_bar()  # the harness shows its own progress
    spec = get_spec(name)
    random = name.endswith(RANDOM_SUFFIX)
    if spec.origin is not None:
        model, tokenizer, card = load_own(spec, device, random)
    elif spec.tier == "small":
        model, tokenizer, card = open_cached(SMALL_BUILDERS[spec.name], spec.kind, random)
    else:
        model, tokenizer, card = _load_hub(spec, device, random)
    if random:
        card = {"name": name, "provenance": f"random initialisation (seed {RANDOM_SEED}) of the config "
                f"of {spec.name}", "seed": RANDOM_SEED, "config": model.config.to_dict(),
                "twin_of": card}
        if spec.origin is not None:  # the experiments' caches key a model outside the zoo by its files
            card["cache_key"] = cache_key(twin_of=card["twin_of"].get("cache_key"), seed=RANDOM_SEED)
        if spec.origin is None and spec.tier != "small" and device.startswith("cuda"):
            # built on the GPU in bfloat16: other weights than the former fp32 CPU twin
            card["init"] = {"device": "cuda", "dtype": "bfloat16"}
    if not getattr(model, "hf_device_map", None):  # a device_map="auto" model is placed already
        model = model.to(device)
    model = model.eval()
    loaded = LoadedModel(name=name, spec=spec, model=model, tokenizer=tokenizer, card=card)
    _PROVENANCE[name] = _PROVENANCE[f"{name}@{device}"] = loaded.provenance
    return loaded


# ---------------------------------------------------------------------------------------------
# Full tier
# ---------------------------------------------------------------------------------------------

def _twin_device(device: str) -> str:
    """Where a full-tier twin is built: ``device``, or with ``"cuda"`` on several GPUs (the trained model
    spread by ``device_map="auto"``) the current GPU (a twin in bfloat16 fits one)."""
    return f"cuda:{torch.cuda.current_device()}" if device == "cuda" else device


def _load_hub(spec: ModelSpec, device: str, random: bool):
    """(model, tokenizer, card) of a full-tier model from the local Hugging Face cache (never the network).

    The snapshot folder is found in the cache the environment names now (``HF_HUB_CACHE``, ``HF_HOME``;
    :func:`core.zoo.own.hub_snapshot`); its name is the Hub commit, which identifies the weights
    (content-addressed: the card's ``cache_key`` is ``hub:<id>@<commit>``, no weight file is hashed).
    The weights must fill the model exactly (:func:`core.zoo.own.check_weights`).

    Raises
    ------
    MissingAssetError
        The model, or a file of it, is not in the local cache (the reason names the id and the folder).
    WeightsMismatchError
        The checkpoint lacks weights of the model, holds weights it has no place for (other than
        :data:`core.zoo.own.UNUSED_WEIGHTS`) or of another shape; the message names the keys.
    """
    from core.zoo.own import check_weights, hf_hub_cache, hub_snapshot

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    missing = (f"full-tier model {spec.name!r} ({spec.hub_id}) is neither reachable nor in the local "
               f"Hugging Face cache (HF_HOME / HF_HUB_CACHE; looked in {hf_hub_cache()}); this machine has "
               f"no Hub access")
    try:
        folder = hub_snapshot(spec.hub_id)
    except MissingAssetError:
        raise MissingAssetError(missing) from None
    info: dict = {}
    kw = {"local_files_only": True}
    try:
        config = transformers.AutoConfig.from_pretrained(folder, **kw)
        if spec.kind == "image":
            tokenizer = None
        else:
            tokenizer = transformers.AutoTokenizer.from_pretrained(folder, **kw)
        if random:  # built where it runs, in the trained model's dtype
            model = random_twin(spec, config, dtype=dtype, device=_twin_device(device))
        else:
            model, info = AUTO[spec.kind].from_pretrained(folder, dtype=dtype, output_loading_info=True, **kw,
                                                           **device_placement(device))
    except (OSError, ValueError) as e:
        raise MissingAssetError(f"{missing} ({type(e).__name__})") from None
    unused = [] if random else check_weights(f"{spec.hub_id} (snapshot {folder})", spec.kind,
                                             loading_report(info))
    card = {"name": spec.name, "provenance": f"Hugging Face Hub {spec.hub_id} (local cache)",
            "config": config.to_dict(), "versions": package_versions(),
            "cache_key": f"hub:{spec.hub_id}@{folder.name}"}
    if unused:
        card["unused_weights"] = unused
    return model, tokenizer, card
