"""Every dataset by name: the list of names, loading one as a ``datasets.Dataset``, and the a-priori
related pairs of subsets (MOD-4).

Provides
--------
:func:`list_datasets`, :func:`load_dataset` -> ``datasets.Dataset`` (one row per document, or per
image), ``RELATED_PAIRS`` (one list of pairs per family, fixed in ``shared/offline-assets.md`` before any
run), :func:`related_pairs`.
"""
from __future__ import annotations

import itertools

import numpy as np

from core.data.hub import HUB_DATASETS, hub_dataset
from core.data.images import FASHION_MNIST_GROUPS, IMAGE_DATASETS, fashion_dataset
from core.data.small import TEXT_SUBSETS, subset_documents
from core.data.splits import SPLITS, split_indices
from core.errors import check_name


def list_datasets() -> list[str]:
    """Every valid dataset name: the text subsets, the image datasets, then the Hub ids.

    Returns
    -------
    list of str
    """
    return [*TEXT_SUBSETS, *IMAGE_DATASETS, *HUB_DATASETS]


def load_dataset(name: str, *, split: str | None = None, streaming: bool = False):
    """Load a dataset by name as an in-memory ``datasets.Dataset``.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`.
    split : str or None
        Text subsets: None for every document in source order, or one of ``SPLITS`` for that split's
        documents in split order (:func:`split_indices`). ``fashion-mnist``: "train" or "test"
        (required). Hub ids: a split of the Hub dataset that ``core.data.hub.HUB_FILES`` lists (read
        from those files only); None for its default (``_DEFAULT_SPLIT``).
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
        and the install command (for a Hub dataset: the files it needs and README.md's section
        "Preparing the full tier"). Hub datasets are loaded offline (local HF cache only) unless the
        environment sets ``HF_HUB_OFFLINE=0`` explicitly, so that no test ever waits on the network.
    """
    check_name("dataset", name, list_datasets())
    if name in TEXT_SUBSETS:
        return _text_dataset(name, split)
    if name in IMAGE_DATASETS:
        return fashion_dataset(split)
    return hub_dataset(name, split, streaming)


def _text_dataset(name: str, split: str | None):
    import datasets

    docs = subset_documents(name)
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
