"""Your own model: wherever a zoo name is accepted (:func:`core.zoo.models.load_model`, ``pytest
--models``), so is

- a local folder holding a Hugging Face checkpoint (``config.json`` and the weights, as
  ``save_pretrained`` writes them, with the tokenizer for text models), loaded from where it is;
- a ``.gguf`` file, read with transformers' GGUF loader and converted once into a plain fp32
  checkpoint in the cache, keyed by the file's sha256 (as ``smollm2-135m`` is,
  :func:`core.zoo.build.gguf_conversion`);
- a Hub id ``org/name``, loaded from the local Hugging Face cache only (no machine of this project
  reaches the Hub); a Hub id of a zoo model is that zoo model;
- a rehearsal model ``rehearsal:X`` or ``rehearsal:X@NL`` (:mod:`core.zoo.rehearsal`): the published
  config of the full-tier model ``X`` at full width, cut to ``N`` layers, with seeded random weights.

Its kind (causal, masked, image) comes from the config's ``architectures`` (:func:`kind_of`); its family
(``config.model_type``) must have a row in :data:`core.zoo.sites.ARCHITECTURES` (:func:`check_family`).
It runs on the small tier's offline data and is named by its folder or file name (the Hub id for an id):
see :func:`resolve`, which registers it for the process in :data:`OWN`. :func:`load_own` loads it.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
from pathlib import Path

import torch
import transformers

from core.cache import cache_dir, cache_key, file_digest, package_versions
from core.errors import MissingAssetError, UnsupportedModelError
from core.zoo.build import cached_folder, gguf_conversion
from core.zoo.checkpoints import UNUSED_WEIGHTS, WeightsMismatchError, check_weights  # noqa: F401 (public here)
from core.zoo.checkpoints import AUTO, device_placement, open_cached, open_folder
from core.zoo.registry import MODELS, RANDOM_SUFFIX, ModelSpec, UnknownModelError
from core.zoo.rehearsal import is_rehearsal, load_rehearsal, rehearsal_spec

#: Models outside the zoo that :func:`resolve` has named in this process: name -> spec.
OWN: dict[str, ModelSpec] = {}
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")
#: Files of a checkpoint folder that hold weights (save_pretrained, sharded or not).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
#: Files of which a text model's folder must hold one (tokenizer.save_pretrained writes them).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model",
                   "spiece.model", "sentencepiece.bpe.model")
KIND_WORDS = {"causal": "a causal LM (…ForCausalLM)", "masked": "a masked LM (…ForMaskedLM; a bare "
              "encoder …Model is a masked LM without its head)", "image": "an image classifier "
              "(…ForImageClassification)"}


def is_path_or_id(text: str) -> bool:
    return ("/" in text or os.sep in text or text.endswith(".gguf") or text.startswith(("~", "."))
            or Path(text).expanduser().exists())


def resolve(name_or_path: str | os.PathLike) -> str:
    """The name the harness uses for a model: a zoo name as it is; a folder, ``.gguf`` file or Hub id
    named and registered for this process (``load_model(name)``, ``get_spec(name)`` then find it).

    A folder is named by its folder name, a ``.gguf`` file by its file name without ``.gguf``, both
    with ``-<6 hex digits of the path's hash>`` appended where that name is a zoo name or another
    path's name; a Hub id is named by itself, and a Hub id of a zoo model is that zoo model. A
    ``:random`` suffix is kept. The folder, file or config is checked here, so that a run fails
    before it starts.

    Parameters
    ----------
    name_or_path : str or path-like

    Returns
    -------
    str

    Raises
    ------
    UnknownNameError
        For a name that is neither in the zoo nor a path or a Hub id.
    UnsupportedModelError
        A path that does not exist or is not a checkpoint folder or ``.gguf`` file; a folder without
        ``config.json``, weights or (text models) tokenizer; a GGUF file transformers cannot read; a
        family without a row in :data:`core.zoo.sites.ARCHITECTURES`; a model of a kind no claim measures.
        The message names the path and what was expected.
    MissingAssetError
        A Hub id that is not in the local Hugging Face cache (the reason names the id and the cache
        folder it looked in).
    """
    text = os.fspath(name_or_path)
    base = text.removesuffix(RANDOM_SUFFIX)
    suffix = text[len(base):]
    if base in MODELS or base in OWN:
        return text
    if is_rehearsal(base):  # rehearsal:X[@NL]: the paper's config at full width, seeded random weights
        spec = rehearsal_spec(base)
        OWN[spec.name] = spec
        return spec.name + suffix
    if not is_path_or_id(base):
        raise UnknownModelError(text)
    return own_spec(base).name + suffix


@functools.lru_cache(maxsize=None)
def own_spec(base: str) -> ModelSpec:
    path = Path(base).expanduser()
    if path.exists():
        path = path.resolve()
        if path.is_dir():
            return _register(path.name, str(path), "folder", _checkpoint_folder(path))
        if path.suffix.lower() == ".gguf":
            return _register(path.stem, str(path), "gguf", _gguf_config(path))
        raise UnsupportedModelError(f"{path}: not a model; expected a folder holding a Hugging Face "
                                    f"checkpoint (config.json and weights) or a .gguf file")
    if _HUB_ID.match(base) and not base.startswith((".", "~")):
        for spec in MODELS.values():
            if spec.hub_id == base:
                return spec
        return _register(base, base, "hub", _checkpoint_folder(hub_snapshot(base), hub_id=base))
    raise UnsupportedModelError(f"{base}: no such file or folder; expected a folder holding a Hugging "
                                f"Face checkpoint (config.json and weights), a .gguf file, or a Hub id "
                                f"org/name in the local Hugging Face cache")


def _register(label: str, location: str, origin: str, config) -> ModelSpec:
    kind, architecture = kind_of(config, location)
    check_family(config, location)
    if origin != "hub":
        label = re.sub(r"[^A-Za-z0-9._-]", "_", label)
        taken = OWN.get(label)
        if label in MODELS or (taken is not None and taken.location != location):
            label = f"{label}-{hashlib.sha256(location.encode()).hexdigest()[:6]}"
    words = {"folder": f"checkpoint folder {location}", "gguf": f"GGUF file {location}, converted to fp32",
             "hub": f"Hugging Face Hub {location} (local cache)"}[origin]
    spec = ModelSpec(name=label, tier="small", kind=kind, source=words, papers=(), location=location,
                     origin=origin, architecture=architecture)
    OWN[label] = spec
    return spec


def kind_of(config, where: str = "model") -> tuple[str, str]:
    """(kind, architecture) of a model from its config: the kind of ``config.architectures[0]`` in
    transformers' auto mappings (causal LM, masked LM, image classification; a bare ``…Model`` or
    ``…ForPreTraining`` encoder is a masked LM whose head :func:`core.zoo.models.load_model` checks),
    else of ``config.model_type``.

    Raises
    ------
    UnsupportedModelError
        For a model of a kind no claim measures (a seq2seq model, a sequence classifier, ...),
        naming ``where``, what came and the kinds expected.
    """
    from transformers.models.auto import modeling_auto as ma

    def names(mapping) -> set:
        out = set()
        for v in mapping.values():
            out.update((v,) if isinstance(v, str) else v)
        return out

    heads = {"causal": ma.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, "masked": ma.MODEL_FOR_MASKED_LM_MAPPING_NAMES,
             "image": ma.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES}
    model_type = getattr(config, "model_type", None)
    archs = list(getattr(config, "architectures", None) or [])
    if not archs:  # e.g. a GGUF config: the family's first kind
        for kind, mapping in heads.items():
            if model_type in mapping:
                return kind, str(model_type)
    elif archs[0] in names(heads["masked"]):  # BertLMHeadModel is causal, BertForMaskedLM masked: by class
        return "masked", archs[0]
    else:
        for kind, mapping in heads.items():
            if archs[0] in names(mapping):
                return kind, archs[0]
        bare = names(ma.MODEL_MAPPING_NAMES) | names(ma.MODEL_FOR_PRETRAINING_MAPPING_NAMES)
        if archs[0] in bare:
            for kind in ("masked", "causal", "image"):
                if model_type in heads[kind]:
                    return kind, archs[0]
    came = archs[0] if archs else f"model_type {model_type!r}"
    raise UnsupportedModelError(
        f"{where}: {came} is of no kind the claims measure; expected "
        + ", ".join(KIND_WORDS.values()))


def unsupported_family_message(model_type: str, where: str = "model") -> str:
    """The error for a family without a row in :data:`core.zoo.sites.ARCHITECTURES`: the supported families
    and the one-row recipe."""
    from core.zoo.sites import ARCHITECTURES

    return (f"{where}: architecture family {model_type!r} (config.model_type) is not supported; supported: "
            f"{', '.join(sorted(ARCHITECTURES))}. To add it, add one row to core/zoo/sites.py ARCHITECTURES "
            f"keyed by {model_type!r}: the path of the block list and, inside a block, of W_out (its input is "
            f"the MLP neurons), the attention output projection (its input is the attention pre-out neurons) "
            f"and W_in, and the output head where one module gives the logits, e.g. \"llama\": "
            f"Architecture(\"model.layers\", \"mlp.down_proj\", \"self_attn.o_proj\", \"mlp.up_proj\", "
            f"gate=\"mlp.gate_proj\", head=\"lm_head\"); and a tiny random config of the family in "
            f"tests/tiny_models.py, on which tests/test_sites.py and tests/test_families.py run (see README, "
            f"\"Your own model\")")


def check_family(config, where: str = "model") -> None:
    """Raise :class:`UnsupportedModelError` (:func:`unsupported_family_message`) unless
    ``config.model_type`` has a row in :data:`core.zoo.sites.ARCHITECTURES`."""
    from core.zoo.sites import ARCHITECTURES

    model_type = getattr(config, "model_type", None)
    if model_type not in ARCHITECTURES:
        raise UnsupportedModelError(unsupported_family_message(str(model_type), where))


def _checkpoint_folder(folder: Path, *, hub_id: str | None = None):
    """The config of a checkpoint folder, after checking that it holds config.json and weights (and,
    for a text model, a tokenizer). For a Hub snapshot, missing files are a MissingAssetError."""
    where = f"{hub_id} (in the local Hugging Face cache, {folder})" if hub_id else str(folder)

    def fail(what: str):
        if hub_id:
            raise MissingAssetError(f"{where}: {what}; download the whole model where the Hub is reachable "
                                    f"(`hf download {hub_id}`) and copy the cache")
        raise UnsupportedModelError(f"{where}: {what}")

    if not (folder / "config.json").is_file():
        ggufs = sorted(folder.glob("*.gguf"))
        hint = f" (for a GGUF model pass the file itself, e.g. {ggufs[0]})" if ggufs else ""
        fail("no config.json; expected a Hugging Face checkpoint folder (config.json and weights, as "
             f"save_pretrained writes them) or a .gguf file{hint}")
    if not any((folder / f).is_file() for f in WEIGHT_FILES) and not any(folder.glob("*.safetensors")):
        fail(f"no weights; expected {' or '.join(WEIGHT_FILES[::2])} (or shards with their .index.json) "
             f"beside config.json, as save_pretrained writes them")
    try:
        config = transformers.AutoConfig.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as e:
        fail(f"config.json does not load with transformers {transformers.__version__} "
             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    kind, _ = kind_of(config, where)
    if kind != "image" and not any((folder / f).is_file() for f in TOKENIZER_FILES):
        fail(f"no tokenizer; a {kind} LM needs its tokenizer beside the weights (expected "
             f"{' or '.join(TOKENIZER_FILES[:2])}, as tokenizer.save_pretrained writes them)")
    return config


def hf_hub_cache() -> Path:
    """The Hugging Face Hub cache folder, read from the environment now (HF_HUB_CACHE, HF_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_snapshot(hub_id: str) -> Path:
    """The snapshot folder of ``hub_id`` in the local Hugging Face cache (never the network)."""
    from huggingface_hub import snapshot_download

    cache = hf_hub_cache()
    try:
        return Path(snapshot_download(hub_id, cache_dir=cache, local_files_only=True))
    except Exception as e:  # LocalEntryNotFoundError, a malformed cache, ...
        raise MissingAssetError(
            f"model {hub_id!r} is not in the local Hugging Face cache (looked in {cache}); this machine has "
            f"no Hub access: download it where there is (`hf download {hub_id}`) and copy the cache, or set "
            f"HF_HOME / HF_HUB_CACHE to a cache that holds it ({type(e).__name__})") from None


def _gguf_config(path: Path):
    """The config of a GGUF model: of its converted folder if the cache holds one, else read from the
    file's metadata. A file transformers cannot read is an UnsupportedModelError naming its
    architecture and the ones transformers reads."""
    folder = _gguf_folder_path(path)
    if (folder / "card.json").is_file():
        try:
            return transformers.AutoConfig.from_pretrained(folder)
        except Exception:  # a damaged conversion: read the file; load_model rebuilds the folder
            pass
    if importlib.util.find_spec("gguf") is None:
        raise MissingAssetError("package 'gguf' is not installed: run `pip install gguf`")
    try:
        return transformers.AutoConfig.from_pretrained(path.parent, gguf_file=path.name)
    except Exception as e:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

        readable = sorted(set(GGUF_SUPPORTED_ARCHITECTURES) - {"general", "tokenizer"})
        try:
            from gguf import GGUFReader

            field = GGUFReader(str(path)).fields["general.architecture"]
            came = f"GGUF architecture {field.contents()!r}"
        except Exception as e2:
            raise UnsupportedModelError(f"{path}: not a GGUF file that transformers can read "
                                        f"({type(e2).__name__}: {e2})") from None
        raise UnsupportedModelError(
            f"{path}: {came}, which transformers {transformers.__version__}'s GGUF loader cannot read "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); it reads: {', '.join(readable)}. "
            f"Pass the original Hugging Face checkpoint folder instead") from None


def _gguf_folder_path(path: Path) -> Path:
    """Where the fp32 conversion of a GGUF file lives: keyed by the file's sha256
    (:func:`core.cache.file_digest`, hashed once per version of the file) and transformers' major
    version."""
    return cache_dir("models") / f"gguf-{_gguf_key(path)[0]}"


def _gguf_key(path: Path) -> tuple[str, str]:
    """(folder name without the ``gguf-`` prefix, cache key) of a GGUF file's conversion."""
    key = cache_key(model="gguf", sha256=file_digest(path), transformers=transformers.__version__.split(".")[0])
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", path.stem)
    return f"{stem}-{key}", key


def own_weights_key(spec: ModelSpec, folder: Path) -> str:
    """What identifies the weights of a model outside the zoo, for the experiments' cache keys: the
    snapshot's commit for a Hub id (content-addressed), else the sha256 of every file of the folder
    (each hashed once per version, :func:`core.cache.file_digest`)."""
    if spec.origin == "hub":
        return f"hub:{spec.location}@{folder.name}"
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return cache_key(files={p.name: file_digest(p) for p in files})


def load_own(spec: ModelSpec, device: str, random: bool):
    """(model, tokenizer, card) of a model outside the zoo."""
    if spec.origin == "rehearsal":
        return load_rehearsal(spec, device, random)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    if spec.origin == "gguf":
        path = Path(spec.location)
        stem_key, key = _gguf_key(path)
        builder = functools.partial(cached_folder, "gguf-" + stem_key.rsplit("-", 1)[0], key, gguf_conversion(
            path, f"GGUF file {path} (sha256 {file_digest(path)}), dequantised to fp32", card_accuracy=False))
        model, tokenizer, card = open_cached(builder, spec.kind, random)
        card = {**card, "name": spec.name, "location": spec.location, "origin": "gguf"}
        return model, tokenizer, card
    folder = hub_snapshot(spec.location) if spec.origin == "hub" else Path(spec.location)
    config = _checkpoint_folder(folder, hub_id=spec.location if spec.origin == "hub" else None)
    if not random:
        _check_head(spec, config)
    placement = device_placement(device) if not random else {}
    model, tokenizer, config, info = open_folder(folder, spec.kind, random, dtype=dtype,
                                                  placement=placement, loading_info=True)
    unused = _check_loaded(spec, info)
    card = {"name": spec.name, "provenance": spec.source, "location": spec.location, "origin": spec.origin,
            "architecture": spec.architecture, "kind": spec.kind, "config": config.to_dict(),
            "cache_key": own_weights_key(spec, folder), "versions": package_versions("torch", "transformers")}
    if unused:
        card["unused_weights"] = unused
    return model, tokenizer, card


def _check_head(spec: ModelSpec, config) -> None:
    """A bare encoder (``…Model``) has no masked-LM head to measure: MissingAssetError (tests skip)."""
    from transformers.models.auto import modeling_auto as ma

    archs = list(getattr(config, "architectures", None) or [])
    bare = archs and archs[0] in set(ma.MODEL_MAPPING_NAMES.values()) and spec.kind != "causal"
    if bare:
        what = "masked-LM head" if spec.kind == "masked" else "classification head"
        raise MissingAssetError(
            f"{spec.location} is a bare {archs[0]} without its {what}: the claims on {spec.kind} models "
            f"measure its predictions, so they skip. Fit a head and save the whole model "
            f"({AUTO[spec.kind].__name__}.save_pretrained), as the harness does for minilm-l6")


def _check_loaded(spec: ModelSpec, info: dict) -> list[str]:
    """:func:`check_weights` of a model outside the zoo."""
    return check_weights(spec.location, spec.kind, info)
