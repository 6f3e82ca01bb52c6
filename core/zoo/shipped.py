"""The small tier's own-built weights, shipped with the harness so that every machine runs the same models.

Two small-tier models are built by the harness itself (:mod:`core.zoo.build`): ``tiny-vit-fmnist``
(a small ViT trained on Fashion-MNIST, about 7 minutes on 2 cores) and the masked-LM head of
``minilm-l6`` (fitted on the ``news`` text, about 5 minutes). Training is deterministic on one machine
and thread count, but not across them (the tiny ViT reaches 85.5% top1 trained with 2 threads, 86.0%
with 1), so a verdict measured on one machine would be about a slightly different model on another.
The weights built once by the recipe are therefore shipped in ``core/zoo/assets/`` (0.8 MB and 0.7 MB)
and a fresh machine materialises them into its model cache instead of training:

- ``assets/<model>-<key>/`` holds the weights (``tiny-vit-fmnist``: the whole ``model.safetensors``;
  ``minilm-l6``: ``head.safetensors`` with the five fitted head tensors, the encoder coming from its
  package as in the build), the build's ``card.json`` (training facts, thread count, accuracy), and
  ``manifest.json`` with the SHA-256 of every file;
- ``<key>`` is the recipe's cache key (:func:`core.zoo.build.recipe_key`): a changed recipe has a new
  key, finds no shipped asset and trains; ``tests/test_shipped.py`` fails until the asset is re-shipped;
- an asset whose files do not match its manifest is named in a warning and the model is trained;
- ``NEURON_CLAIMS_REBUILD_MODELS=1`` ignores the shipped assets and trains from the recipe (to check
  that it reproduces them: ``python -m core.zoo.build check``).

Re-shipping after a recipe change: build the model (``NEURON_CLAIMS_REBUILD_MODELS=1``, e.g. by loading
it), then ``python -m core.zoo.build ship tiny-vit-fmnist minilm-l6``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import torch

from core.cache import CacheDamagedWarning, atomic_write_json

ASSETS = Path(__file__).parent / "assets"
#: Set to 1 to train the own-built models from their recipe instead of using the shipped weights.
REBUILD_ENV = "NEURON_CLAIMS_REBUILD_MODELS"
#: The shipped models and the weight files each ships.
SHIPPED: dict[str, tuple[str, ...]] = {
    "tiny-vit-fmnist": ("config.json", "model.safetensors"),
    "minilm-l6": ("head.safetensors",),
}
#: The masked-LM head tensors of ``minilm-l6`` that the harness fits (the decoder is the tied word
#: embeddings of the package's encoder).
MLM_HEAD_TENSORS = ("cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
                    "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
                    "cls.predictions.bias")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def asset_folder(name: str, key: str) -> Path:
    """``core/zoo/assets/<name>-<key>`` (it may not exist)."""
    return ASSETS / f"{name}-{key}"


def rebuild_requested() -> bool:
    """Whether ``$NEURON_CLAIMS_REBUILD_MODELS`` asks to train instead of using shipped weights."""
    return os.environ.get(REBUILD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def shipped_asset(name: str, key: str) -> Path | None:
    """The shipped asset folder of ``name`` built by the recipe with cache key ``key``, if it is intact.

    Returns None when none is shipped for that key, when a rebuild is requested
    (:data:`REBUILD_ENV`), or when the folder's files do not match its manifest; the last case is
    named in a :class:`core.cache.CacheDamagedWarning` (the caller then trains).
    """
    folder = asset_folder(name, key)
    if name not in SHIPPED or rebuild_requested() or not folder.is_dir():
        return None
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        files = (*SHIPPED[name], "card.json")
        bad = [f for f in files if not (folder / f).is_file() or _sha256(folder / f) != manifest["sha256"][f]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        bad = [f"manifest.json ({err})"]
    if bad:
        warnings.warn(f"shipped weights {folder} are damaged ({', '.join(bad)} do not match manifest.json): "
                      f"training {name} from its recipe instead", CacheDamagedWarning, stacklevel=2)
        return None
    return folder


def shipped_card(asset: Path) -> dict:
    """The build's card of a shipped asset, with where the weights came from added."""
    card = json.loads((asset / "card.json").read_text())
    for k in ("seconds", "created_at", "versions", "cache_key"):
        card.pop(k, None)
    card["shipped"] = {"asset": f"core/zoo/assets/{asset.name}",
                       "sha256": json.loads((asset / "manifest.json").read_text())["sha256"],
                       "note": f"weights built once by the recipe and shipped with the harness; set "
                               f"{REBUILD_ENV}=1 to train them here instead"}
    return card


def copy_weights(asset: Path, folder: Path) -> None:
    """Copy the whole-model files of a shipped asset (``tiny-vit-fmnist``) into a model folder."""
    for f in SHIPPED["tiny-vit-fmnist"]:
        shutil.copyfile(asset / f, folder / f)


def load_head(asset: Path, model) -> None:
    """Load the shipped masked-LM head tensors into a ``BertForMaskedLM`` (the decoder stays tied).

    Raises
    ------
    RuntimeError
        If the file's tensors are not exactly :data:`MLM_HEAD_TENSORS` with the model's shapes.
    """
    from safetensors.torch import load_file

    tensors = load_file(asset / "head.safetensors")
    state = model.state_dict()
    wrong = sorted(set(tensors) ^ set(MLM_HEAD_TENSORS)) + sorted(
        k for k in tensors if k in state and tuple(state[k].shape) != tuple(tensors[k].shape))
    if wrong:
        raise RuntimeError(f"{asset / 'head.safetensors'} does not hold the masked-LM head of this model: {wrong}")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for k, v in tensors.items():
            params[k].copy_(v)


def ship(name: str, built: Path) -> Path:
    """Copy a model folder built by the recipe (``cache_dir("models")/<name>-<key>``) into the assets.

    Parameters
    ----------
    name : one of :data:`SHIPPED`
    built : the built folder; its ``card.json`` names the key

    Returns
    -------
    Path of the asset folder (an older asset of the same model is removed).
    """
    from safetensors.torch import load_file, save_file

    card = json.loads((built / "card.json").read_text())
    if "shipped" in card:
        raise ValueError(f"{built} was materialised from shipped weights; build it with {REBUILD_ENV}=1 first")
    dest = asset_folder(name, card["cache_key"])
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if name == "minilm-l6":
        state = load_file(built / "model.safetensors")
        save_file({k: state[k].contiguous() for k in MLM_HEAD_TENSORS}, tmp / "head.safetensors")
    else:
        for f in SHIPPED[name]:
            shutil.copyfile(built / f, tmp / f)
    shutil.copyfile(built / "card.json", tmp / "card.json")
    atomic_write_json(tmp / "manifest.json", {
        "model": name, "cache_key": card["cache_key"],
        "sha256": {f: _sha256(tmp / f) for f in (*SHIPPED[name], "card.json")}})
    for old in ASSETS.glob(f"{name}-*"):
        shutil.rmtree(old)
    os.rename(tmp, dest)
    return dest
