"""Data for any model: text windows for every kind of tokenizer, Fashion-MNIST through a model's own
image processor (core.data).

The tokenizers are built in code with the ``tokenizers`` library (no Hub): byte-level BPE with and
without BOS (GPT-2, Pythia, Qwen; Llama-3), SentencePiece-style Unigram with Metaspace and ``<s>``
(Llama-2, Gemma; with ``</s>`` after: XLM-R, DeBERTa-v3), WordPiece (BERT), and one with only a BOS
token; besides them the MiniLM tokenizer of the small tier, and SmolLM2's (GGUF) where the model
cache holds its conversion.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from core.data.images import (
    FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, fashion_arrays, hub_image_processor, image_split, vit_base_processor,
)
from core.data.resampling import generated_window, random_characters, random_token_ids
from core.data.small import subset_documents
from core.data.splits import split_indices
from core.data.windows import prefix_ids, text_windows
from core.errors import MissingAssetError

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Markets rose on Monday as technology shares gained; the firm said profits would grow.",
    "The government said the new policy would start next year, after talks with the unions.",
    "Mobile phone makers and software companies reported sales of games and music online.",
    "def f(x):\n    return x + 1\n",
] * 3


@dataclass(frozen=True)
class Case:
    """A tokenizer and what it must put around a window: ``prefix``/``suffix`` (token strings) and the
    separator of packed documents."""

    build: object
    prefix: tuple[str, ...]
    suffix: tuple[str, ...]
    separator: str | None


def _fast(tok, **special):
    import transformers

    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, **special)


def _template(tok, single: str, tokens: list[str]):
    from tokenizers import processors

    tok.post_processor = processors.TemplateProcessing(
        single=single, pair=f"{single} $B", special_tokens=[(t, tok.token_to_id(t)) for t in tokens])


def _byte_level_bpe(bos: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|begin_of_text|>"]
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if not bos:
        return _fast(tok, eos_token="<|endoftext|>")
    _template(tok, "<|begin_of_text|> $A", ["<|begin_of_text|>"])
    return _fast(tok, bos_token="<|begin_of_text|>", eos_token="<|endoftext|>")


def _sentencepiece(single: str, eos: bool = True):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    tok.train_from_iterator(CORPUS, trainers.UnigramTrainer(
        vocab_size=150, special_tokens=["<unk>", "<s>", "</s>"], unk_token="<unk>"))
    _template(tok, single, ["<s>", "</s>"])
    return _fast(tok, bos_token="<s>", unk_token="<unk>", **({"eos_token": "</s>"} if eos else {}))


def _wordpiece():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(
        vocab_size=250, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    _template(tok, "[CLS] $A [SEP]", ["[CLS]", "[SEP]"])
    return _fast(tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                 mask_token="[MASK]")


CASES = {
    "byte-level BPE": Case(lambda: _byte_level_bpe(bos=False), (), (), "<|endoftext|>"),
    "byte-level BPE with BOS": Case(lambda: _byte_level_bpe(bos=True), ("<|begin_of_text|>",), (),
                                    "<|endoftext|>"),
    "SentencePiece with BOS": Case(lambda: _sentencepiece("<s> $A"), ("<s>",), (), "</s>"),
    "SentencePiece with BOS and EOS": Case(lambda: _sentencepiece("<s> $A </s>"), ("<s>",), ("</s>",), "</s>"),
    "SentencePiece with BOS only": Case(lambda: _sentencepiece("<s> $A", eos=False), ("<s>",), (), "<s>"),
    "WordPiece": Case(_wordpiece, ("[CLS]",), ("[SEP]",), "[SEP]"),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    spec = CASES[request.param]
    return spec, spec.build()


def _ids(tokenizer, tokens) -> list[int]:
    return [tokenizer.convert_tokens_to_ids(t) for t in tokens]


def _key(ids) -> str:
    return "," + ",".join(map(str, ids)) + ","


@functools.lru_cache(maxsize=None)
def _first_docs(name: str, split: str, n: int = 100) -> tuple[str, ...]:
    """The split's first ``n`` documents in split order: the windows asked for here need fewer."""
    docs = subset_documents(name)
    return tuple(docs[int(i)][1] for i in split_indices(name, split)[:n])


def _split_docs(name: str, split: str) -> tuple[str, ...]:
    try:
        return _first_docs(name, split)
    except MissingAssetError as err:
        pytest.skip(err.reason)


def _check_windows(windows, tokenizer, prefix, suffix, separator, name, split, pack, max_doc_tokens=1000):
    """Every window is prefix + piece + suffix; every piece, cut at separators when packed, is a run
    of tokens of one of the split's first documents, and the runs inside a piece are whole documents."""
    n_pre, n_suf = len(prefix), len(suffix)
    docs = [_key(tokenizer(t, add_special_tokens=False)["input_ids"][:max_doc_tokens])
            for t in _split_docs(name, split)]
    special = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    for window in windows.tolist():
        assert window[:n_pre] == prefix and window[len(window) - n_suf:] == suffix
        piece = window[n_pre:len(window) - n_suf]
        if not pack:
            assert not set(piece) & special
            assert any(_key(piece) in d for d in docs)
            continue
        runs, run = [], []
        for i in piece:
            if i == separator:
                runs.append(run)
                run = []
            else:
                run.append(i)
        runs.append(run)
        assert all(not set(r) & special for r in runs)
        assert all(any(_key(r) in d for d in docs) for r in runs if r)
        assert all(_key(r) in docs for r in runs[1:-1])  # between two separators: a whole document


def test_windows_carry_the_tokenizers_special_tokens_around_runs_of_split_documents(case):
    spec, tokenizer = case
    prefix, suffix = _ids(tokenizer, spec.prefix), _ids(tokenizer, spec.suffix)
    # what the tokenizer itself puts around a text
    full = tokenizer("Sales rose.")["input_ids"]
    core = tokenizer("Sales rose.", add_special_tokens=False)["input_ids"]
    assert full == prefix + core + suffix
    separator = None if spec.separator is None else tokenizer.convert_tokens_to_ids(spec.separator)
    for name, pack in (("bbc-tech", False), ("health-tweets", True)):
        w = text_windows(name, tokenizer, split="eval", n_tokens=600, seq_len=48)
        assert w.shape == (math.ceil(600 / 48), 48) and w.dtype == torch.long
        assert torch.equal(w, text_windows(name, tokenizer, split="eval", n_tokens=600, seq_len=48))
        _check_windows(w, tokenizer, prefix, suffix, separator, name, "eval", pack)
        if pack:  # documents separated inside the pieces
            assert (w[:, len(prefix):48 - len(suffix)] == separator).any()


def test_resampling_windows_carry_the_same_special_tokens(case):
    spec, tokenizer = case
    prefix, suffix = _ids(tokenizer, spec.prefix), _ids(tokenizer, spec.suffix)
    for window in (random_characters(tokenizer, 24, seed=0), random_token_ids(tokenizer, 24, seed=0),
                   generated_window("Markets rose on Monday.", tokenizer, 24)):
        ids = window.tolist()
        assert len(ids) == 24
        assert ids[:len(prefix)] == prefix and ids[24 - len(suffix):] == suffix
        assert not set(ids[len(prefix):24 - len(suffix)]) & set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    assert prefix_ids(tokenizer) == prefix


def test_a_tokenizer_that_cannot_spell_the_probe_still_gets_its_template():
    """A BPE without unknown token drops characters it has no token for; the special template is then
    read with the tokenizer's own tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["0123 4567 89 0011 2233"] * 4, trainers.BpeTrainer(
        vocab_size=40, special_tokens=["<s>", "</s>"]))
    _template(tok, "<s> $A", ["<s>"])
    tokenizer = _fast(tok, bos_token="<s>", eos_token="</s>")
    assert tokenizer("hello world", add_special_tokens=False)["input_ids"] == []
    window = random_token_ids(tokenizer, 8, seed=0).tolist()
    assert window[0] == tokenizer.bos_token_id and len(window) == 8
    assert tokenizer.bos_token_id not in window[1:]


def test_minilm_windows_are_cls_piece_sep(tokenizer):
    _split_docs("bbc-tech", "eval")
    w = text_windows("bbc-tech", tokenizer, split="eval", n_tokens=600, seq_len=48)
    _check_windows(w, tokenizer, [tokenizer.cls_token_id], [tokenizer.sep_token_id], tokenizer.sep_token_id,
                   "bbc-tech", "eval", pack=False)


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    """SmolLM2's tokenizer (byte-level BPE, BOS in the vocabulary but not added) from the model cache's
    fp32 conversion; reading it from the GGUF takes half a minute, so without the cache it skips."""
    import transformers

    from core.cache import cache_dir

    folders = sorted(p for p in cache_dir("models").glob("smollm2-135m-*") if (p / "tokenizer.json").is_file())
    if not folders:
        pytest.skip("smollm2-135m is not built in the model cache yet (bash scripts/main.sh builds it)")
    return transformers.AutoTokenizer.from_pretrained(folders[-1])


def test_smollm2_windows_have_no_special_tokens_and_pack_with_eos(smollm2_tokenizer):
    tok = smollm2_tokenizer
    assert tok.num_special_tokens_to_add() == 0 and tok.bos_token_id is not None
    for name, pack in (("bbc-tech", False), ("health-tweets", True)):
        _split_docs(name, "eval")
        w = text_windows(name, tok, split="eval", n_tokens=600, seq_len=48)
        assert w.shape == (13, 48)
        _check_windows(w, tok, [], [], tok.eos_token_id, name, "eval", pack)


# ------------------------------------------------------------------------------------------------
# Fashion-MNIST through a model's own image processor
# ------------------------------------------------------------------------------------------------

def needs_fashion_mnist():
    if not FASHION_MNIST_DIR.is_dir():
        pytest.skip("Fashion-MNIST missing: apt-get install dataset-fashion-mnist")


def test_fashion_mnist_through_a_vit_processor_is_grey_rgb_resized_and_normalised_by_hand():
    from PIL import Image

    needs_fashion_mnist()
    raw, labels = fashion_arrays("test")
    x, y = image_split(split="eval", n_images=4, processor=vit_base_processor(size=56))
    assert x.shape == (4, 3, 56, 56) and x.dtype == torch.float32
    assert torch.equal(y, torch.from_numpy(labels[-5000:][:4].astype(np.int64)))
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])  # grey in every channel
    for i in range(4):
        grey = Image.fromarray(raw[-5000 + i]).resize((56, 56), Image.BILINEAR)
        expected = (torch.from_numpy(np.asarray(grey, dtype=np.float32)) / 255 - 0.5) / 0.5
        torch.testing.assert_close(x[i, 0], expected, rtol=0, atol=2 / 255 * 2)  # within one grey level
    assert image_split(split="eval", n_images=2, processor=vit_base_processor())[0].shape == (2, 3, 224, 224)
    plain, plain_y = image_split(split="eval", n_images=4)  # without processor: as before
    assert plain.shape == (4, 1, 28, 28) and torch.equal(plain_y, y)


def test_a_checkpoints_own_processor_feeds_its_model(tmp_path):
    """A DeiT checkpoint folder with its processor (resize, centre crop, ImageNet mean and std): the
    processor loads from the folder, Fashion-MNIST comes out at the model's input size and runs."""
    import transformers

    needs_fashion_mnist()
    cls = getattr(transformers, "DeiTImageProcessorPil", transformers.DeiTImageProcessor)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    cls(size={"height": 40, "width": 40}, crop_size={"height": 32, "width": 32}, image_mean=mean,
        image_std=std).save_pretrained(tmp_path)
    processor = hub_image_processor(str(tmp_path))
    assert processor is not None
    x, y = image_split(split="collect", n_images=3, classes=["Bag"], processor=processor)
    assert x.shape == (3, 3, 32, 32) and (y == FASHION_MNIST_CLASSES.index("Bag")).all()
    # one grey value per pixel, normalised per channel
    grey = [x[:, c] * s + m for c, (m, s) in enumerate(zip(mean, std))]
    torch.testing.assert_close(grey[0], grey[1], rtol=0, atol=1e-5)
    torch.testing.assert_close(grey[0], grey[2], rtol=0, atol=1e-5)
    config = transformers.DeiTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32,
                                     intermediate_size=48, num_hidden_layers=1, num_attention_heads=4,
                                     num_labels=10)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = transformers.DeiTForImageClassification(config).eval()
    with torch.no_grad():
        assert model(pixel_values=x).logits.shape == (3, 10)
