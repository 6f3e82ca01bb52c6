"""The full tier's Hub datasets: offline access to a local Hugging Face cache, and the Hub text subsets.

Nothing here reaches the network unless ``HF_HUB_OFFLINE=0`` is set explicitly (see ``_local_files``).
Every split of a Hub dataset is read from a few named files only (``HUB_FILES``; ``datasets.load_dataset``
with ``data_files=``, text streamed), never by preparing the whole dataset, so the local HF Hub cache needs
just those files (README.md, "Preparing the full tier", fetches them). Without one of them, every entry
point raises MissingAssetError naming the dataset, the files and that section. The sources are described
in ``shared/offline-assets.md``.

Provides
--------
Registries
    ``HUB_DATASETS`` (every Hub id the harness reads), ``HUB_FILES`` (the files of each Hub split read),
    ``HUB_TEXT_SUBSETS`` (names in ``HUB_TEXT_SUBSETS_DOC``: Hub ids, ``pile:<set>``, ``mmlu:<group>``,
    ``mmlu:<subject>``), ``PILE_SETS``, ``MMLU_SUBJECTS``, ``HUB_DATA_VERSION``, ``PREPARE_SECTION``.
Loading
    ``hub_dataset`` (one Hub split from its files; also used by :mod:`core.data.images` and
    :func:`core.data.catalog.load_dataset`), :func:`hub_texts` (hash-assigned splits, streamed),
    :func:`hub_text_source` and :func:`describe_hub_source` (what a text subset reads),
    :func:`hub_file_patterns`.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from core.data.small import MMLU_GROUPS
from core.data.splits import SPLIT_SEED, SPLITS, check_split
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

#: The README section that fetches the full tier's files (named by every "not in the local cache" skip).
PREPARE_SECTION = 'README.md, section "Preparing the full tier"'

#: Bumped when what a full-tier subset reads changes (files, splits, order): the MOD experiment keys its
#: full-tier cache entries on it. 2: the Pile's subsets from train shards 00-01 (not the validation
#: split), MMLU's subjects from their own test, validation and dev files (not ``all/test``).
HUB_DATA_VERSION = 2


@dataclass(frozen=True)
class HubFiles:
    """The files of one split of a full-tier Hub dataset that the harness reads, and nothing else.

    Attributes
    ----------
    patterns : tuple of str
        Glob patterns inside the dataset's repository (``hf download --include`` takes the same), read in
        this order; ``{subject}`` (MMLU) is replaced by each subject asked for, in order.
    size : str
        Disk space of those files (for ``README.md``, "Preparing the full tier").
    """

    patterns: tuple[str, ...]
    size: str


#: (Hub id, Hub split) -> the files that split is read from. Only these are ever opened: text is streamed
#: from them (``datasets.load_dataset(builder, data_files=..., streaming=True)``), images are read from
#: them alone, so no other file of a dataset needs to be in the local cache.
HUB_FILES: dict[tuple[str, str], HubFiles] = {
    ("monology/pile-uncopyrighted", "validation"): HubFiles(("val.jsonl.zst",), "338 MB"),
    ("monology/pile-uncopyrighted", "train"): HubFiles(("train/00.jsonl.zst", "train/01.jsonl.zst"),
                                                        "about 2 x 11 GB (estimated)"),
    ("ILSVRC/imagenet-1k", "validation"): HubFiles(("data/validation-*.parquet",), "about 6.7 GB"),
    ("uoft-cs/cifar100", "train"): HubFiles(("cifar100/train-*.parquet",), "about 110 MB"),
    ("uoft-cs/cifar100", "test"): HubFiles(("cifar100/test-*.parquet",), "about 22 MB"),
    ("cais/mmlu", "test"): HubFiles(("{subject}/test-*.parquet",), "under 1 MB per subject, 3.5 MB for all"),
    ("cais/mmlu", "validation"): HubFiles(("{subject}/validation-*.parquet",), "under 0.1 MB per subject"),
    ("cais/mmlu", "dev"): HubFiles(("{subject}/dev-*.parquet",), "under 0.1 MB per subject"),
    ("codeparrot/github-code-clean", "train"): HubFiles(("data/train-00000-of-*.parquet",),
                                                         "one shard, under 1 GB (estimated)"),
    **{(f"camel-ai/{t}", "train"): HubFiles((f"{t}.zip",), size) for t, size in (
        ("biology", "27 MB"), ("physics", "about 25 MB (estimated)"), ("chemistry", "about 25 MB (estimated)"))},
    ("allenai/c4", "validation"): HubFiles(("en/c4-validation.00000-of-00008.json.gz",), "about 40 MB"),
    ("Yelp/yelp_review_full", "test"): HubFiles(("yelp_review_full/test-*.parquet",), "about 23 MB"),
}

#: The Hub split of each dataset that ``load_dataset(hub_id)`` reads when no split is given.
_DEFAULT_SPLIT: dict[str, str] = {
    "monology/pile-uncopyrighted": "validation", "ILSVRC/imagenet-1k": "validation", "uoft-cs/cifar100": "test",
    "cais/mmlu": "test", "codeparrot/github-code-clean": "train", "camel-ai/biology": "train",
    "camel-ai/physics": "train", "camel-ai/chemistry": "train", "allenai/c4": "validation",
    "Yelp/yelp_review_full": "test",
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


def hub_cache() -> Path:
    """The local Hugging Face Hub cache, read at call time: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
    huggingface_hub's default (``~/.cache/huggingface/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    import huggingface_hub.constants as hub_constants

    return Path(hub_constants.HF_HUB_CACHE)


def hub_file_patterns(hub_id: str, split: str, subjects: tuple[str, ...] | None = None) -> list[str]:
    """The glob patterns (inside the repository) of the files one Hub split is read from (``HUB_FILES``).

    Parameters
    ----------
    hub_id : str
        One of ``HUB_DATASETS``.
    split : str
        A Hub split of it that ``HUB_FILES`` lists.
    subjects : tuple of str or None
        MMLU only: the subject folders to read, in order (None: ``all``).

    Raises
    ------
    UnknownNameError
        For a dataset or split the harness does not read (the message lists the valid ones).
    """
    check_name("Hub dataset", hub_id, HUB_DATASETS)
    check_name(f"split of {hub_id}", split, [s for h, s in HUB_FILES if h == hub_id])
    patterns = HUB_FILES[(hub_id, split)].patterns
    return [p.format(subject=s) for s in (subjects or ("all",)) for p in patterns] if hub_id == "cais/mmlu" \
        else list(patterns)


def _download_command(hub_id: str, patterns: list[str]) -> str:
    include = " ".join(f'--include "{p}"' for p in patterns)
    return f"hf download {hub_id} --repo-type dataset {include}"


def _local_files(hub_id: str, split: str, patterns: list[str]) -> list[str]:
    """Local paths of the files matching ``patterns``, pattern by pattern, each sorted by name.

    Looked up in the local Hugging Face Hub cache (:func:`hub_cache`, the layout ``hf download`` writes);
    with ``HF_HUB_OFFLINE=0`` the missing ones are downloaded first (those files only).

    Raises
    ------
    MissingAssetError
        When the dataset or one of the files is not in the cache: the reason names the dataset, the split,
        the files missing, the command that fetches them and ``PREPARE_SECTION``.
    """
    from huggingface_hub import snapshot_download

    cache = hub_cache()
    try:
        root = Path(snapshot_download(hub_id, repo_type="dataset", allow_patterns=patterns, cache_dir=str(cache),
                                      local_files_only=not _hub_allowed()))
    except Exception:  # not in the cache (LocalEntryNotFoundError), or the download failed
        root = None
    found = {p: sorted(root.glob(p)) if root is not None else [] for p in patterns}
    missing = [p for p, paths in found.items() if not paths]
    if missing:
        raise MissingAssetError(
            f"Hub dataset {hub_id!r} ({split} split) is not in the local Hugging Face Hub cache {cache}: it needs "
            f"{', '.join(missing)}; fetch them on a machine with Hub access with "
            f"`{_download_command(hub_id, missing)}` "
            f"({PREPARE_SECTION}), or set HF_HUB_OFFLINE=0 where the Hub is reachable")
    return [str(path) for p in patterns for path in found[p]]


def _builder(paths: list[str]) -> str:
    """The ``datasets`` packaged builder of the files: ``parquet``, else ``json`` (JSON lines, possibly
    ``.gz``/``.zst``-compressed, or a ``.zip`` of JSON files)."""
    return "parquet" if all(p.endswith(".parquet") for p in paths) else "json"


def hub_dataset(name: str, split: str | None, streaming: bool, subjects: tuple[str, ...] | None = None):
    """One split of a full-tier Hub dataset, read from its ``HUB_FILES`` only.

    Streaming (``IterableDataset``): the files are read lazily, as far as the caller iterates. Not
    streaming (``Dataset``, random access, for images): ``datasets`` prepares an Arrow copy of these
    files alone in its own cache.

    Raises
    ------
    MissingAssetError
        When a file is not in the local HF Hub cache (see :func:`_local_files`), or ``datasets`` cannot read
        the files (the reason names the dataset).
    """
    import datasets

    split = split or _DEFAULT_SPLIT[name]
    paths = _local_files(name, split, hub_file_patterns(name, split, subjects))
    try:
        with _offline_hub():
            return datasets.load_dataset(_builder(paths), data_files=paths, split="train", streaming=streaming)
    except Exception as err:  # a damaged or unreadable file
        raise MissingAssetError(
            f"Hub dataset {name!r} ({split} split) could not be read from {', '.join(paths)[:300]} "
            f"({type(err).__name__}: {str(err)[:200]}); fetch the files again ({PREPARE_SECTION})") from err


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
    """Rows of these subjects; a row without a subject (read from a subject's own files, which select it)
    is kept too."""
    chosen = frozenset(subjects)
    return lambda row: not row.get("subject") or row.get("subject") in chosen


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
``message_1`` + newline + ``message_2`` (CAMEL problem and solution).

Hub splits read (:func:`hub_text_source`, files in ``HUB_FILES``): ``pile:<set>`` the Pile's train shards 00
and 01; the whole Pile and C4 their validation split (C4: its first file); MMLU each subject's test, then
validation, then dev questions; Yelp test; GitHub code (first shard) and CAMEL train."""

_MMLU_SPLITS = ("test", "validation", "dev")


def hub_text_source(name: str) -> tuple[str, tuple[str, ...], tuple[str, ...] | None]:
    """(Hub id, Hub splits read in this order, MMLU subject folders or None) of a full-tier text subset.

    - ``pile:<set>``: the Pile's train split, shards ``train/00.jsonl.zst`` and ``train/01.jsonl.zst``
      (its validation split holds only a few dozen documents of Ubuntu IRC, PhilPapers or Gutenberg);
      the whole Pile (``monology/pile-uncopyrighted``, ABL) keeps the validation split, ``val.jsonl.zst``;
    - ``mmlu:<group>`` and ``mmlu:<subject>``: each subject's own test, validation and dev files, in that
      order (the test split alone leaves about 7,000 collection tokens for the smallest groups); ``cais/mmlu``
      whole: the ``all`` folder's test, validation and dev files (``auxiliary_train`` has no subjects);
    - every other subset: its dataset's split of ``_DEFAULT_SPLIT`` (C4 validation, Yelp test, GitHub
      code and CAMEL train).

    Raises
    ------
    UnknownNameError
        For an unknown subset (the message lists the valid ones).
    """
    check_name("Hub text subset", name, HUB_TEXT_SUBSETS)
    hub_id = HUB_TEXT_SUBSETS[name][0]
    if name.startswith("pile:"):
        return hub_id, ("train",), None
    if name.startswith("mmlu:"):
        group = f"mmlu-{name.removeprefix('mmlu:')}"
        return hub_id, _MMLU_SPLITS, tuple(MMLU_GROUPS.get(group, (name.removeprefix("mmlu:"),)))
    if name == "cais/mmlu":
        return hub_id, _MMLU_SPLITS, None
    return hub_id, (_DEFAULT_SPLIT[hub_id],), None


def describe_hub_source(name: str) -> str:
    """What a full-tier text subset reads, in words: ``"monology/pile-uncopyrighted, train split
    (train/00.jsonl.zst, train/01.jsonl.zst)"``; for messages and results."""
    hub_id, splits, subjects = hub_text_source(name)
    if hub_id == "cais/mmlu":
        return (f"{hub_id}, {' + '.join(splits)} splits of {', '.join(subjects or ('all',))} "
                f"(<subject>/<split>-*.parquet)")
    parts = [f"{split} ({', '.join(hub_file_patterns(hub_id, split, subjects))})" for split in splits]
    return f"{hub_id}, {' + '.join(parts)} split{'s' if len(splits) > 1 else ''}"


def hub_split_of(text: str) -> str:
    """The split of a Hub document: ``SPLITS[h % 3]``, h the first 8 bytes (big-endian) of
    ``blake2b(f"{SPLIT_SEED}:{text}")``. A function of the cleaned text only: the same rule on any
    machine, any order of reading, and duplicates always fall in the same split."""
    digest = hashlib.blake2b(f"{SPLIT_SEED}:{text}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return SPLITS[int.from_bytes(digest, "big") % len(SPLITS)]


def _only_pile_set(rows, set_name: str):
    """The rows of a streamed Pile split whose ``meta.pile_set_name`` is ``set_name``, filtered on Arrow
    batches of 1,000 rows before any row becomes a Python dict: reading a rare subset (Ubuntu IRC is about
    0.2% of the Pile's documents) costs the files' decompression and JSON parsing, not a Python object per
    document (4-5 times faster on 1%-rare rows)."""
    import pyarrow.compute as pc

    def keep(table):
        return pc.fill_null(pc.equal(pc.struct_field(table["meta"], "pile_set_name"), set_name), False)

    return rows.with_format("arrow").filter(keep, batched=True, batch_size=1000).with_format(None)


def _hub_rows(name: str):
    """Rows of a full-tier text subset's Hub splits (:func:`hub_text_source`), in source order, streamed
    from their ``HUB_FILES`` only (read as far as the caller iterates).

    A load failure, or a read failure part-way through a stream (``OSError``), raises MissingAssetError
    naming the dataset.
    """
    hub_id, splits, subjects = hub_text_source(name)
    for split in splits:
        rows = hub_dataset(hub_id, split, True, subjects)
        if name.startswith("pile:") and hasattr(rows, "with_format"):
            rows = _only_pile_set(rows, name.removeprefix("pile:"))
        try:
            yield from rows
        except OSError as err:
            raise MissingAssetError(f"Hub dataset {hub_id!r} ({split} split) could not be read to the end "
                                    f"({type(err).__name__}: {str(err)[:200]})") from err


def hub_texts(name: str, split: str) -> Iterator[str]:
    """Documents of one split of a full-tier text subset, lazily, in source order.

    Rule (the same for every Hub text subset, so that huge datasets never need to be read whole):
    rows of the subset's Hub splits (:func:`hub_text_source`: the Pile's subsets from train shards 00-01,
    the whole Pile and C4 from validation, MMLU from each subject's test, validation and dev files, Yelp
    test, GitHub code and CAMEL train) are streamed in source order from their files alone (``HUB_FILES``);
    rows failing the subset's filter (``meta.pile_set_name``, MMLU ``subject``) are skipped; the text is
    stripped, empty texts and texts already seen are dropped; each remaining text belongs to the split
    :func:`hub_split_of` gives it (a seeded hash of the text, so about a third each, disjoint,
    deterministic). The first documents of the split are therefore the first ones of the source that fall
    in it.

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
        When a file the subset reads is neither in the local HF Hub cache nor reachable (HF_HUB_OFFLINE=0):
        the reason names the dataset, its split, the files and ``PREPARE_SECTION``.
    """
    check_name("Hub text subset", name, HUB_TEXT_SUBSETS)
    check_split(split)
    hub_id, read, keep = HUB_TEXT_SUBSETS[name]
    seen: set[bytes] = set()
    for row in _hub_rows(name):
        if keep is not None and not keep(row):
            continue
        text = (read(row) or "").strip()
        if not text:
            continue
        fingerprint = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        if fingerprint in seen:
            continue
        seen.add(fingerprint)
        if hub_split_of(text) == split:
            yield text
