"""Datasets of the harness, their disjoint splits, and the resampling inputs of ABL appendix 7.1.

Everything here reads files that packages install (small tier) or, for the full tier, a local
Hugging Face cache; nothing reaches the network unless ``HF_HUB_OFFLINE=0`` is set explicitly
(see :func:`core.data.catalog.load_dataset`). The sources are described in ``shared/offline-assets.md``.

- :mod:`core.data.small`: the small tier's text subsets (``TEXT_SUBSETS``, ``MMLU_GROUPS``,
  ``PACKED_SUBSETS``), read from the files of installed packages, cleaned and deduplicated (first
  occurrence kept; in prose subsets also near-duplicates), cached in memory and, for ``wiki``, on disk.
- :mod:`core.data.splits`: the disjoint splits ``SPLITS`` (``fit``, ``collect``, ``eval``; collection
  and evaluation never overlap) and :func:`~core.data.splits.split_indices`.
- :mod:`core.data.hub`: the full tier's Hub datasets (``HUB_DATASETS``, ``HUB_TEXT_SUBSETS``, named in
  ``HUB_TEXT_SUBSETS_DOC``), each split read from a few named files only (``HUB_FILES``; README.md,
  "Preparing the full tier", fetches them), offline unless allowed; :func:`~core.data.hub.hub_texts`
  (hash-assigned splits, streamed), :func:`~core.data.hub.hub_text_source` (the Hub splits a subset reads).
- :mod:`core.data.windows`: :func:`~core.data.windows.text_windows` -> LongTensor
  ``(n_windows, seq_len)`` of a small or Hub text subset (with ``with_docs=True`` also the source
  document of every position).
- :mod:`core.data.images`: Fashion-MNIST, CIFAR-100/20 and ImageNet; :func:`~core.data.images.image_split`
  -> ``(FloatTensor (n, 1, 28, 28), LongTensor (n,))`` or a processor's pixels,
  :func:`~core.data.images.hub_image_processor`, :func:`~core.data.images.vit_base_processor`.
- :mod:`core.data.resampling`: the resampling inputs of ABL appendix 7.1 (random characters, random
  token ids, generated text, random pixels).
- :mod:`core.data.catalog`: :func:`~core.data.catalog.list_datasets`,
  :func:`~core.data.catalog.load_dataset` -> ``datasets.Dataset`` (one row per document, or per image),
  the a-priori related pairs ``RELATED_PAIRS`` and :func:`~core.data.catalog.related_pairs`.

The public names of these modules are re-exported here (``from core import data``, then
``data.text_windows(...)``). Private names, and ``FASHION_MNIST_DIR``, are not: patch and read them on the
module that defines them, where they are looked up.
"""
from core.data.catalog import RELATED_PAIRS, list_datasets, load_dataset, related_pairs
from core.data.hub import (
    HUB_DATASETS, HUB_FILES, HUB_TEXT_SUBSETS, HUB_TEXT_SUBSETS_DOC, MMLU_SUBJECTS, PILE_SETS, hub_text_source,
    hub_texts,
)
from core.data.images import (
    CIFAR20_CLASSES, FASHION_MNIST_CLASSES, FASHION_MNIST_GROUPS, HUB_IMAGE_DATASETS, IMAGE_DATASETS,
    VIT_PREPROCESSING, hub_image_processor, image_split, vit_base_processor,
)
from core.data.resampling import (
    generated_text, generated_window, random_characters, random_pixels, random_token_ids,
)
from core.data.small import MMLU_GROUPS, PACKED_SUBSETS, TEXT_SUBSETS
from core.data.splits import SPLITS, split_indices
from core.data.windows import text_windows

__all__ = [
    "CIFAR20_CLASSES", "FASHION_MNIST_CLASSES", "FASHION_MNIST_GROUPS", "HUB_DATASETS", "HUB_FILES",
    "HUB_IMAGE_DATASETS",
    "HUB_TEXT_SUBSETS", "HUB_TEXT_SUBSETS_DOC", "IMAGE_DATASETS", "MMLU_GROUPS", "MMLU_SUBJECTS",
    "PACKED_SUBSETS", "PILE_SETS", "RELATED_PAIRS", "SPLITS", "TEXT_SUBSETS", "VIT_PREPROCESSING",
    "generated_text", "generated_window", "hub_image_processor", "hub_text_source", "hub_texts", "image_split",
    "list_datasets", "load_dataset", "random_characters", "random_pixels", "random_token_ids",
    "related_pairs", "split_indices", "text_windows", "vit_base_processor",
]
