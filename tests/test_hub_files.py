"""The full tier's Hub datasets read from a local Hugging Face Hub cache, file by file (no fake loader).

A tiny cache is written under ``tmp_path`` in the layout ``hf download`` writes
(``datasets--<org>--<name>/refs/main`` and ``snapshots/<commit>/<files>``), pointed at by ``HF_HUB_CACHE``,
with the real repositories' file names. Files the harness must not read are written as garbage: reading
one would fail the test. Nothing here reaches the network (``HF_HUB_OFFLINE=1``).
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import core.data.hub
from core.data.hub import PREPARE_SECTION, hub_split_of, hub_texts
from core.data.images import hub_image_table, image_split
from core.data.small import MMLU_GROUPS
from core.data.splits import SPLITS
from core.data.windows import WINDOW_MEMO, text_windows
from core.errors import DataShortfallError, MissingAssetError

datasets = pytest.importorskip("datasets")
pq = pytest.importorskip("pyarrow.parquet")
pa = pytest.importorskip("pyarrow")

GARBAGE = b"not a data file: the harness must never open this\n"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """``put(hub_id, path, bytes)`` into a fresh local HF Hub cache; offline; datasets' own cache in tmp."""
    root = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    _forget()

    def put(hub_id: str, path: str, data: bytes) -> Path:
        repo = root / f"datasets--{hub_id.replace('/', '--')}"
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(COMMIT)
        target = repo / "snapshots" / COMMIT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    yield put
    _forget()


def _forget():
    hub_image_table.cache_clear()
    WINDOW_MEMO.clear()


def _parquet(rows: list[dict]) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue().to_pybytes()


def mmlu_rows(subject: str, split: str, n: int) -> list[dict]:
    return [{"question": f"{split} question {i} on {subject}: what is {i} plus {subject}?", "subject": subject,
             "choices": [f"{subject} {split} {i} answer {c}" for c in "ABCD"], "answer": i % 4} for i in range(n)]


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _pile_rows(shard: int, n: int) -> list[dict]:
    sets = ("Ubuntu IRC", "Pile-CC", "PhilPapers")
    return [{"text": f"shard {shard} document {i} of {sets[i % 3]}: " + "irc chat line " * (5 + i % 7),
             "meta": {"pile_set_name": sets[i % 3]}} for i in range(n)]


# ------------------------------------------------------------------------------------------------
# Only the files needed are read
# ------------------------------------------------------------------------------------------------

def test_an_mmlu_group_reads_its_subjects_test_validation_and_dev_files_only(cache):
    subjects = MMLU_GROUPS["mmlu-bio"]
    sizes = {"test": 6, "validation": 3, "dev": 2}
    for subject in subjects:
        for split, n in sizes.items():
            cache("cais/mmlu", f"{subject}/{split}-00000-of-00001.parquet", _parquet(mmlu_rows(subject, split, n)))
    for decoy in ("all/test-00000-of-00001.parquet", "all/auxiliary_train-00000-of-00001.parquet",
                  "astronomy/test-00000-of-00001.parquet", "anatomy/train-00000-of-00001.parquet"):
        cache("cais/mmlu", decoy, GARBAGE)
    parts = {s: list(hub_texts("mmlu:bio", s)) for s in SPLITS}
    flat = [t for s in SPLITS for t in parts[s]]
    expected = [f"{r['question']}\n{r['choices'][r['answer']]}"
                for split in sizes for subject in subjects for r in mmlu_rows(subject, split, sizes[split])]
    assert sorted(flat) == sorted(expected) and len(expected) == 4 * 11  # every question, once
    assert not set(parts["collect"]) & set(parts["eval"]) and not set(parts["fit"]) & set(parts["eval"])
    for s in SPLITS:  # the hash split, in source order: test files, then validation, then dev
        assert parts[s] == [t for t in expected if hub_split_of(t) == s]


def _pile_names_as(monkeypatch, suffix: str):
    """The Pile's train files with another compression (the code path is the same)."""
    files = core.data.hub.HubFiles(("train/00.jsonl" + suffix, "train/01.jsonl" + suffix), "test")
    monkeypatch.setitem(core.data.hub.HUB_FILES, ("monology/pile-uncopyrighted", "train"), files)


def _zstd(data: bytes) -> bytes:
    zstandard = pytest.importorskip("zstandard")
    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize("suffix", [".zst", ".gz"])
def test_pile_subsets_read_train_shards_00_and_01_only(cache, monkeypatch, suffix):
    """``pile:<set>`` streams train/00 then train/01 (the real names end in ``.jsonl.zst``), never the
    validation or test files or any other shard."""
    pack = _zstd if suffix == ".zst" else gzip.compress
    if suffix != ".zst":
        _pile_names_as(monkeypatch, suffix)
    for shard in (0, 1):
        cache("monology/pile-uncopyrighted", f"train/0{shard}.jsonl{suffix}", pack(_jsonl(_pile_rows(shard, 60))))
    for decoy in ("train/02.jsonl.zst", "val.jsonl.zst", "test.jsonl.zst"):
        cache("monology/pile-uncopyrighted", decoy, GARBAGE)
    docs = [t for s in SPLITS for t in hub_texts("pile:Ubuntu IRC", s)]
    expected = [r["text"].strip() for shard in (0, 1) for r in _pile_rows(shard, 60)
                if r["meta"]["pile_set_name"] == "Ubuntu IRC"]
    assert sorted(docs) == sorted(expected) and len(expected) == 40
    assert any(t.startswith("shard 1 ") for t in hub_texts("pile:Ubuntu IRC", "eval"))  # reaches the second shard


def test_text_windows_stop_reading_once_they_are_full(cache, monkeypatch, tokenizer):
    """A subset that the first shard already fills never opens the second one (reading runs ahead by at most
    one tokenizer batch of 64 documents and one filter batch of 1,000 rows)."""
    _pile_names_as(monkeypatch, ".gz")
    cache("monology/pile-uncopyrighted", "train/00.jsonl.gz", gzip.compress(_jsonl(_pile_rows(0, 3000))))
    cache("monology/pile-uncopyrighted", "train/01.jsonl.gz", GARBAGE)  # corrupt: opening it would fail
    w, docs = text_windows("pile:Pile-CC", tokenizer, split="eval", n_tokens=8 * 32, seq_len=32, doc_windows=1,
                           with_docs=True)
    assert w.shape == (8, 32)
    ids = docs[docs >= 0].unique()
    assert len(ids) >= 8  # one window per document at most: 8 windows span at least 8 documents


def test_c4_and_yelp_read_one_file_each(cache, tokenizer):
    c4 = [{"text": f"web page {i}. " + "some words here " * 10, "timestamp": "2019-04-25T12:57:54Z",
           "url": f"https://example.org/{i}"} for i in range(60)]
    cache("allenai/c4", "en/c4-validation.00000-of-00008.json.gz", gzip.compress(_jsonl(c4)))
    cache("allenai/c4", "en/c4-validation.00001-of-00008.json.gz", GARBAGE)
    cache("allenai/c4", "en/c4-train.00000-of-01024.json.gz", GARBAGE)
    yelp = [{"label": i % 5, "text": f"review {i}: " + "good food " * 12} for i in range(60)]
    cache("Yelp/yelp_review_full", "yelp_review_full/test-00000-of-00001.parquet", _parquet(yelp))
    cache("Yelp/yelp_review_full", "yelp_review_full/train-00000-of-00001.parquet", GARBAGE)
    for name, rows in (("allenai/c4", c4), ("Yelp/yelp_review_full", yelp)):
        assert sorted(t for s in SPLITS for t in hub_texts(name, s)) == sorted(r["text"].strip() for r in rows)
        assert text_windows(name, tokenizer, split="collect", n_tokens=64, seq_len=32).shape == (2, 32)


def test_camel_zip_and_the_first_code_shard(cache):
    """CAMEL's ``<topic>.zip`` of one-object JSON files, and GitHub code's first parquet shard only."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for i in range(12):
            z.writestr(f"physics/{i:03d}.json", json.dumps({"role_1": "Physicist_RoleType.ASSISTANT",
                                                            "topic;": "optics", "sub_topic": f"sub {i}",
                                                            "message_1": f"Problem {i}: a lens?",
                                                            "message_2": f"Solution {i}: f = {i} cm."}, indent=2))
    cache("camel-ai/physics", "physics.zip", buffer.getvalue())
    cache("camel-ai/physics", "chemistry.zip", GARBAGE)
    texts = sorted(t for s in SPLITS for t in hub_texts("camel-ai/physics", s))
    assert texts == sorted(f"Problem {i}: a lens?\nSolution {i}: f = {i} cm." for i in range(12))
    code = [{"code": f"def f{i}():\n    return {i}\n", "repo_name": "r", "path": f"f{i}.py", "language": "Python",
             "license": "mit", "size": 20} for i in range(9)]
    cache("codeparrot/github-code-clean", "data/train-00000-of-00880.parquet", _parquet(code))
    cache("codeparrot/github-code-clean", "data/train-00001-of-00880.parquet", GARBAGE)
    assert sorted(t for s in SPLITS for t in hub_texts("codeparrot/github-code-clean", s)) == \
        sorted(r["code"].strip() for r in code)


def test_cifar100_images_read_from_their_parquet_files(cache, tmp_path):
    """Images are read (not streamed) from the split's files alone; their features (CIFAR-20 names) survive."""
    from tests.test_hub_data import CIFAR_COARSE_HUB_NAMES

    Image = pytest.importorskip("PIL.Image")
    features = datasets.Features({"img": datasets.Image(), "fine_label": datasets.ClassLabel(num_classes=100),
                                  "coarse_label": datasets.ClassLabel(names=CIFAR_COARSE_HUB_NAMES)})
    test = datasets.Dataset.from_dict({"img": [Image.new("RGB", (32, 32), (40 * i, 0, 0)) for i in range(6)],
                                       "fine_label": [10 + i for i in range(6)], "coarse_label": [1, 7] * 3},
                                      features=features)
    path = tmp_path / "test.parquet"
    test.to_parquet(str(path))
    cache("uoft-cs/cifar100", "cifar100/test-00000-of-00001.parquet", path.read_bytes())
    cache("uoft-cs/cifar100", "cifar100/train-00000-of-00001.parquet", GARBAGE)  # eval never reads train
    x, y = image_split("uoft-cs/cifar100", split="eval", classes=["insects"])  # coarse label 7
    assert x.shape == (3, 3, 224, 224) and y.tolist() == [11, 13, 15]
    assert torch.allclose(x[1, 0], torch.full((224, 224), (120 / 255 - 0.5) / 0.5), atol=1e-6)
    with pytest.raises(MissingAssetError, match="cifar100/train"):  # the collect split reads the (damaged) train file
        image_split("uoft-cs/cifar100", split="collect", n_images=1)


def test_the_cache_folder_follows_hf_hub_cache_then_hf_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "b"))
    assert core.data.hub.hub_cache() == tmp_path / "a"
    monkeypatch.delenv("HF_HUB_CACHE")
    assert core.data.hub.hub_cache() == tmp_path / "b" / "hub"


# ------------------------------------------------------------------------------------------------
# Bad input: absent files, short subsets
# ------------------------------------------------------------------------------------------------

def test_an_absent_dataset_skips_naming_it_its_files_and_the_readme_section(cache, tokenizer):
    with pytest.raises(MissingAssetError) as err:
        text_windows("pile:Ubuntu IRC", tokenizer, split="eval", n_tokens=64, seq_len=32)
    reason = err.value.reason
    for part in ("'monology/pile-uncopyrighted'", "train split", "train/00.jsonl.zst, train/01.jsonl.zst",
                 PREPARE_SECTION, 'hf download monology/pile-uncopyrighted --repo-type dataset '
                                  '--include "train/00.jsonl.zst" --include "train/01.jsonl.zst"'):
        assert part in reason, part


def test_a_partly_fetched_dataset_names_only_the_files_missing(cache):
    for subject in MMLU_GROUPS["mmlu-cs"]:
        cache("cais/mmlu", f"{subject}/test-00000-of-00001.parquet", _parquet(mmlu_rows(subject, "test", 3)))
    with pytest.raises(MissingAssetError) as err:
        list(hub_texts("mmlu:cs", "eval"))
    reason = err.value.reason
    assert "'cais/mmlu' (validation split)" in reason and "machine_learning/validation-*.parquet" in reason
    assert "test-*.parquet" not in reason and PREPARE_SECTION in reason


def test_a_short_subset_names_itself_its_split_and_the_tokens_found_and_needed(cache, tokenizer):
    for subject in MMLU_GROUPS["mmlu-cs"]:
        for split in ("test", "validation", "dev"):
            cache("cais/mmlu", f"{subject}/{split}-00000-of-00001.parquet", _parquet(mmlu_rows(subject, split, 2)))
    with pytest.raises(DataShortfallError) as err:
        text_windows("mmlu:cs", tokenizer, split="collect", n_tokens=10_000, seq_len=100)
    short = err.value
    assert short.needed == 10_000 and 0 <= short.found < short.needed and short.found % 100 == 0
    for part in ("'mmlu:cs'", "'collect' split", "cais/mmlu, test + validation + dev splits of", "machine_learning",
                 f"holds {short.found:,} tokens", "10,000 needed"):
        assert part in short.reason, part


# ------------------------------------------------------------------------------------------------
# A failed experiment skips every claim once, without computing again
# ------------------------------------------------------------------------------------------------

def _per_model(compute, monkeypatch):
    import claims._claim
    from claims._claim import per_model

    monkeypatch.setattr(claims._claim, "preflight_or_stop", lambda *a, **k: {"passed": True})  # a stand-in model
    config = SimpleNamespace(pluginmanager=SimpleNamespace(getplugin=lambda name: None))
    return per_model(config, None, compute, lambda model, result: {})


def test_per_model_skips_every_test_with_the_same_reason_after_one_attempt(monkeypatch):
    calls = []

    def compute(model):
        calls.append(model)
        raise DataShortfallError("mmlu:cs", "'collect' split", 5_994, 16_384)

    get = _per_model(compute, monkeypatch)
    reasons = []
    for _ in range(8):  # MOD's eight claims
        with pytest.raises(pytest.skip.Exception) as skipped:
            get("mistral-7b-instruct")
        reasons.append(skipped.value.msg)
    assert calls == ["mistral-7b-instruct"]
    assert len(set(reasons)) == 1 and "mmlu:cs" in reasons[0] and "16,384 needed" in reasons[0]


def test_per_model_remembers_other_errors_too(monkeypatch):
    calls = []

    def compute(model):
        calls.append(model)
        raise RuntimeError("boom")

    get = _per_model(compute, monkeypatch)
    for _ in range(3):
        with pytest.raises(RuntimeError, match="boom"):
            get("m")
    assert calls == ["m"]


def test_readme_has_the_section_the_skips_name():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "## Preparing the full tier" in readme
    for hub_id, split in core.data.hub.HUB_FILES:
        assert hub_id in readme, hub_id
