"""The full tier's Hub datasets: offline access to a local Hugging Face cache, and the Hub text subsets.

Nothing here reaches the network unless ``HF_HUB_OFFLINE=0`` is set explicitly (see ``_hub_dataset``):
without a local HF cache that holds a dataset, every entry point raises MissingAssetError naming its
Hub id. The sources are described in ``shared/offline-assets.md``.

Provides
--------
Registries
    ``HUB_DATASETS`` (every Hub id the harness reads), ``HUB_TEXT_SUBSETS`` (names in
    ``HUB_TEXT_SUBSETS_DOC``: Hub ids, ``pile:<set>``, ``mmlu:<group>``, ``mmlu:<subject>``),
    ``PILE_SETS``, ``MMLU_SUBJECTS``.
Loading
    ``_hub_dataset`` (offline unless allowed; also used by :mod:`core.data.images` and
    :func:`core.data.catalog.load_dataset`), :func:`hub_texts` (hash-assigned splits, streamed).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator

from core.data.small import MMLU_GROUPS
from core.data.splits import _SPLIT_SEED, SPLITS, _check_split
from core.errors import MissingAssetError, check_name


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
