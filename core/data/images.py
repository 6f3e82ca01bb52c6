"""Image datasets and their splits: Fashion-MNIST (small tier), CIFAR-100/20 and ImageNet (full tier).

Fashion-MNIST is read from the Debian package ``dataset-fashion-mnist``; the Hub image datasets from the
local Hugging Face cache (or the Hub with ``HF_HUB_OFFLINE=0``, see :mod:`core.data.hub`).

Provides
--------
Registries
    ``IMAGE_DATASETS``, ``FASHION_MNIST_CLASSES``, ``FASHION_MNIST_GROUPS``, ``HUB_IMAGE_DATASETS``,
    ``CIFAR20_CLASSES``, ``VIT_PREPROCESSING``.
Splits
    :func:`image_split` -> ``(FloatTensor (n, 1, 28, 28), LongTensor (n,))`` for Fashion-MNIST, or the
    processor's ``pixel_values`` for a model's own preprocessing and the Hub datasets.
Processors
    :func:`hub_image_processor`, :func:`vit_base_processor`, :func:`model_image_processor` (a model
    outside the zoo: its own processor, or one built from its config).
"""
from __future__ import annotations

import functools
import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from core.data.hub import hub_dataset
from core.data.small import INSTALL
from core.data.splits import SPLIT_SEED, SPLITS, check_split
from core.errors import MissingAssetError, check_name


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


_FASHION_SPLITS = ("train", "test")
_N_COLLECT_IMAGES = 5000  # the first 5,000 test images collect, the last 5,000 evaluate


def fashion_dataset(split: str | None):
    import datasets
    import pyarrow as pa
    from datasets.features.features import Array2DExtensionType
    from datasets.table import InMemoryTable

    if split is None:
        raise ValueError(f"fashion-mnist needs split=, one of: {', '.join(_FASHION_SPLITS)}")
    images, labels = fashion_arrays(check_name("split", split, _FASHION_SPLITS))
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


def _read_idx(path: Path) -> np.ndarray:
    """An IDX array (``*-idx?-ubyte.gz``): magic 0x0000 08 <ndim>, big-endian int32 sizes, uint8 data."""
    raw = gzip.decompress(path.read_bytes())
    if raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@functools.lru_cache(maxsize=2)
def fashion_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, 28, 28), labels uint8 (n,)) of the "train" or "test" file pair."""
    prefix = {"train": "train", "test": "t10k"}[split]
    paths = [FASHION_MNIST_DIR / f"{prefix}-{kind}-ubyte.gz" for kind in ("images-idx3", "labels-idx1")]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise MissingAssetError(
            f"Fashion-MNIST files missing ({', '.join(missing)}): {INSTALL['fashion-mnist']}")
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
    check_split(split)
    if name in HUB_IMAGE_DATASETS:
        return _hub_image_split(name, split, n_images, classes, processor)
    images, labels = fashion_arrays("train" if split == "fit" else "test")
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
def hub_image_table(hub_id: str, hub_split: str):
    return hub_dataset(hub_id, hub_split, False)


def _hub_image_rows(name: str, split: str) -> tuple[object, np.ndarray, np.ndarray, np.ndarray | None]:
    """(dataset, row indices of the split in split order, labels, CIFAR-20 superclass ids or None)."""
    if name == "uoft-cs/cifar100":
        ds = hub_image_table(name, "test" if split == "eval" else "train")
        names = _label_names(ds, "coarse_label")
        if names is not None and [_coarse_name(n) for n in names] != list(CIFAR20_CLASSES):
            raise ValueError(f"uoft-cs/cifar100 coarse_label names {names} are not the CIFAR-20 superclasses "
                             f"{list(CIFAR20_CLASSES)} in order")
        n = len(ds)
        rows = {"fit": np.arange(min(_CIFAR_FIT_IMAGES, n)), "collect": np.arange(_CIFAR_FIT_IMAGES, n),
                "eval": np.arange(n)}[split]
        labels = np.asarray(ds["fine_label"], dtype=np.int64)
        return ds, rows, labels, np.asarray(ds["coarse_label"], dtype=np.int64)
    ds = hub_image_table(name, "validation")
    permutation = np.random.default_rng(SPLIT_SEED).permutation(len(ds))
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


def model_image_processor(config, location: str | None = None):
    """The image processor through which an image model outside the zoo sees Fashion-MNIST, or None for
    a model that takes the harness's own input (one channel, ``config.num_channels == 1``: the grey
    images at 28 x 28, normalised to [-1, 1], as ``tiny-vit-fmnist``).

    A model of RGB images (``num_channels`` 3) gets each grey image as RGB (the grey value in all three
    channels, :func:`image_split`), through its own image processor where its checkpoint folder (or its
    Hub snapshot in the local cache) holds one (``preprocessor_config.json``), else through
    :func:`vit_base_processor` at the config's ``image_size`` (ViT-base's resize and normalisation).

    Parameters
    ----------
    config : transformers.PretrainedConfig
        The model's config (``num_channels``, ``image_size``).
    location : str or None
        The checkpoint folder or Hub id where its processor may be; None: built from the config.

    Returns
    -------
    transformers image processor or None
        Its ``pixel_values`` of a batch of n images have shape (n, 3, H, W) (H = W = ``image_size`` for
        the processor built from the config).

    Raises
    ------
    ValueError
        When the config names neither one nor three channels, or has no ``image_size`` and no processor
        of its own is found.
    """
    channels = int(getattr(config, "num_channels", 3) or 3)
    if channels == 1:
        return None
    if channels != 3:
        raise ValueError(f"image model with config.num_channels = {channels}: expected 1 (grey, the harness's "
                         f"28 x 28 input) or 3 (RGB, through an image processor)")
    own = hub_image_processor(location) if location else None
    if own is not None:
        return own
    size = getattr(config, "image_size", None)
    if not size:
        raise ValueError(f"image model{f' at {location}' if location else ''}: no image processor of its own "
                         f"and no config.image_size to build one from; expected preprocessor_config.json "
                         f"beside config.json, or image_size in the config")
    size = size[0] if isinstance(size, (list, tuple)) else size
    return vit_base_processor(size=int(size))


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
