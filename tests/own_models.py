"""Tiny models outside the zoo, written offline: checkpoint folders, GGUF files, a Hub cache entry.

Everything is built from configs with a fixed seed (global RNG untouched) and a byte-level BPE
tokenizer of 259 tokens (the 256 bytes, three merges, three special tokens), so the tests that use
them need neither the network nor any model package.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as T

SPECIALS = ("<unk>", "<s>", "</s>")
MERGES = ("h e", "Ġ t", "Ġt he")


def _byte_vocab() -> list[str]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return [*SPECIALS, *bytes_to_unicode().values(), "he", "Ġt", "Ġthe"]


def tokenizer(masked: bool = False):
    """A byte-level BPE tokenizer (``PreTrainedTokenizerFast``); with ``masked``, a ``[MASK]`` token too."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {t: i for i, t in enumerate(_byte_vocab())}
    if masked:
        vocab["[MASK]"] = len(vocab)
    bpe = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split()) for m in MERGES], unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    extra = {"mask_token": "[MASK]"} if masked else {}
    return T.PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", bos_token="<s>",
                                     eos_token="</s>", pad_token="</s>", **extra)


def _seeded(make, seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make().eval()


def causal(seed: int = 0, **kw):
    """A tiny LlamaForCausalLM with the tokenizer's vocabulary (259 tokens)."""
    cfg = dict(vocab_size=len(_byte_vocab()), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    cfg.update(kw)
    return _seeded(lambda: T.LlamaForCausalLM(T.LlamaConfig(**cfg)), seed)


def bert(cls=T.BertForMaskedLM, seed: int = 0, **kw):
    """A tiny BERT of class ``cls`` (``BertForMaskedLM``, ``BertModel``, ...)."""
    cfg = T.BertConfig(vocab_size=len(_byte_vocab()) + 1, hidden_size=32, intermediate_size=64,
                       num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64, **kw)
    return _seeded(lambda: cls(cfg), seed)


def vit(seed: int = 0):
    cfg = T.ViTConfig(image_size=28, patch_size=7, num_channels=1, hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_labels=10)
    return _seeded(lambda: T.ViTForImageClassification(cfg), seed)


def save(model, folder: Path, *, with_tokenizer: bool = True, masked: bool = False) -> Path:
    """``save_pretrained`` of the model (and the tokenizer) into ``folder``."""
    folder = Path(folder)
    model.save_pretrained(folder)
    if with_tokenizer:
        tokenizer(masked).save_pretrained(folder)
    return folder


def write_gguf(path: Path, *, seed: int = 0, architecture: str = "llama", n_layer: int = 2, d: int = 32,
               ff: int = 64, heads: int = 4, kv: int = 2, skip: tuple[str, ...] = ()) -> Path:
    """A tiny float32 GGUF file of a Llama-architecture model (random weights from ``seed``) with a
    byte-level ``gpt2`` tokenizer, written with the ``gguf`` package. ``architecture`` is written as
    ``general.architecture`` (with the llama tensors), to make files transformers cannot read; tensors
    named in ``skip`` (e.g. ``"blk.1.ffn_down.weight"``) are left out."""
    import gguf

    rng = np.random.default_rng(seed)
    vocab = _byte_vocab()
    w = gguf.GGUFWriter(str(path), architecture)
    w.add_name("tiny-llama-test")
    w.add_block_count(n_layer)
    w.add_context_length(64)
    w.add_embedding_length(d)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(d // heads)
    w.add_vocab_size(len(vocab))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(vocab)
    w.add_token_types([3] * len(SPECIALS) + [1] * (len(vocab) - len(SPECIALS)))
    w.add_token_merges(list(MERGES))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)

    add_tensor = w.add_tensor
    w.add_tensor = lambda name, t: None if name in skip else add_tensor(name, t)

    def rand(*shape):
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)

    ones = np.ones(d, np.float32)
    w.add_tensor("token_embd.weight", rand(len(vocab), d))
    w.add_tensor("output_norm.weight", ones)
    w.add_tensor("output.weight", rand(len(vocab), d))
    hd = d // heads
    for i in range(n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", ones)
        w.add_tensor(p + "attn_q.weight", rand(d, d))
        w.add_tensor(p + "attn_k.weight", rand(kv * hd, d))
        w.add_tensor(p + "attn_v.weight", rand(kv * hd, d))
        w.add_tensor(p + "attn_output.weight", rand(d, d))
        w.add_tensor(p + "ffn_norm.weight", ones)
        w.add_tensor(p + "ffn_gate.weight", rand(ff, d))
        w.add_tensor(p + "ffn_up.weight", rand(ff, d))
        w.add_tensor(p + "ffn_down.weight", rand(d, ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(path)


def hub_cache_entry(cache: Path, hub_id: str, folder: Path, commit: str = "0" * 40) -> Path:
    """Lay ``folder``'s files out as the Hugging Face Hub cache does (``models--org--name/snapshots/
    <commit>/`` and ``refs/main``) under ``cache``; returns the snapshot folder."""
    repo = cache / ("models--" + hub_id.replace("/", "--"))
    snap = repo / "snapshots" / commit
    shutil.copytree(folder, snap)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snap


def isolate(tmp_path, monkeypatch) -> None:
    """An empty harness cache and Hugging Face cache under ``tmp_path``, the Hub offline."""
    monkeypatch.setenv("NEURON_CLAIMS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def forget_loaded_models() -> None:
    """Forget every model resolved or loaded in this process (the own-model registry and the load cache)."""
    from core.zoo import models, own as zoo_own

    zoo_own.OWN.clear()
    zoo_own.own_spec.cache_clear()
    models.load_once.cache_clear()


@pytest.fixture(autouse=True)
def fresh(tmp_path, monkeypatch):
    """Autouse in the modules that import it: an empty cache and Hugging Face cache (:func:`isolate`);
    no model of an earlier test remembered (:func:`forget_loaded_models`)."""
    isolate(tmp_path, monkeypatch)
    forget_loaded_models()
    yield
    forget_loaded_models()
