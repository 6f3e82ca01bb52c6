"""Tests of core.zoo.training on tiny random models and synthetic data (fast, CPU only)."""
from __future__ import annotations

import functools
import math

import pytest
import torch
import transformers

from core.evaluate import evaluate, make_eval_set, mask_tokens
from core.zoo.training import (FASHION_MNIST_CLASSES, TINY_VIT_CONFIG, fit_mlm_head,
                           train_tiny_vit)

# ----------------------------------------------------------------------------------------------------
# tiny ViT

TINY = {"image_size": 8, "patch_size": 4, "num_channels": 1, "hidden_size": 16, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 32, "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0, "num_labels": 2}


def _stripes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """8x8 images: class 0 bright on top, class 1 bright at the bottom (flip-invariant), plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(2, (n,), generator=g)
    rows = torch.where(torch.arange(8) < 4, 0.6, -0.6)  # (8,)
    sign = 1.0 - 2.0 * labels.float()  # class 0: +, class 1: -
    images = sign[:, None, None, None] * rows[None, None, :, None].expand(n, 1, 8, 8)
    images = images + 0.3 * torch.randn(images.shape, generator=g)
    return images.clamp(-1, 1), labels


@pytest.fixture(scope="module")
def stripes():
    return _stripes(192, seed=1), _stripes(128, seed=2)


@pytest.fixture(scope="module")
def trained_vit(stripes):
    (x, y), (xe, ye) = stripes
    return train_tiny_vit(x, y, config=TINY, seed=3, epochs=10, batch_size=32, lr=5e-3,
                          eval_images=xe, eval_labels=ye, progress=False)


def test_tiny_vit_config_fits_fashion_mnist():
    cfg = transformers.ViTConfig(**TINY_VIT_CONFIG)
    assert (cfg.image_size, cfg.patch_size, cfg.num_channels) == (28, 4, 1)
    assert (cfg.image_size // cfg.patch_size) ** 2 == 49
    assert cfg.num_hidden_layers >= 4 and cfg.num_attention_heads >= 4
    assert cfg.hidden_size % cfg.num_attention_heads == 0
    assert cfg.num_labels == 10
    assert [cfg.id2label[i] for i in range(10)] == list(FASHION_MNIST_CLASSES)
    assert cfg.label2id["Ankle boot"] == 9


def test_train_tiny_vit_learns_a_separable_task(trained_vit, stripes):
    model, facts = trained_vit
    (x, y), _ = stripes
    assert isinstance(model, transformers.ViTForImageClassification)
    assert not model.training
    assert facts["eval_top1"] >= 95.0
    assert facts["eval_ce"] < 0.3
    assert facts["train_ce"] < math.log(2) / 2
    assert facts["n_train"] == 192 and facts["n_eval"] == 128
    assert facts["n_steps"] == 10 * 6
    assert {"seed", "epochs", "batch_size", "lr", "train_seconds"} <= facts.keys()
    # the facts agree with the shared evaluator
    scores = evaluate(model, make_eval_set("image", x, labels=y), batch_size=64)
    assert scores.summary()["top1"] >= 95.0


def test_train_tiny_vit_lowers_the_loss_against_its_initialisation(trained_vit, stripes):
    (x, y), _ = stripes
    untrained, _ = train_tiny_vit(x, y, config=TINY, seed=3, epochs=1, batch_size=32, lr=1e-9,
                                  progress=False)
    trained, _ = trained_vit
    before = evaluate(untrained, make_eval_set("image", x, labels=y), batch_size=64).summary()["ce"]
    after = evaluate(trained, make_eval_set("image", x, labels=y), batch_size=64).summary()["ce"]
    assert after < before / 2


def test_train_tiny_vit_is_deterministic_for_a_seed(stripes):
    (x, y), _ = stripes
    x, y = x[:64], y[:64]
    kw = dict(config=TINY, epochs=2, batch_size=16, progress=False)
    a, fa = train_tiny_vit(x, y, seed=5, **kw)
    b, fb = train_tiny_vit(x, y, seed=5, **kw)
    c, _ = train_tiny_vit(x, y, seed=6, **kw)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert fa["train_ce"] == fb["train_ce"]
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_train_tiny_vit_leaves_the_global_rng_alone(stripes):
    (x, y), _ = stripes
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    train_tiny_vit(x[:32], y[:32], config=TINY, seed=0, epochs=1, batch_size=16, progress=False)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("bad", ["shape", "dtype", "label_range", "pixel_range", "eval_half", "epochs"])
def test_train_tiny_vit_rejects_bad_input(stripes, bad):
    (x, y), (xe, ye) = stripes
    kw = dict(config=TINY, epochs=1, progress=False)
    if bad == "shape":
        x = x[:, :, :7]
    elif bad == "dtype":
        y = y.int()
    elif bad == "label_range":
        y = y + 1
    elif bad == "pixel_range":
        x = x * 255
    elif bad == "eval_half":
        kw["eval_images"] = xe
    else:
        kw["epochs"] = 0
    with pytest.raises(ValueError):
        train_tiny_vit(x, y, **kw)


# ----------------------------------------------------------------------------------------------------
# masked-LM head

SPECIAL = [0, 1, 2, 3]  # [PAD], [CLS], [SEP], [MASK]
VOCAB = 100


def _mlm(seed: int = 0) -> transformers.BertForMaskedLM:
    cfg = transformers.BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32,
                                  max_position_embeddings=32, pad_token_id=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return transformers.BertForMaskedLM(cfg)


def _windows(n: int, seed: int, seq_len: int = 16) -> torch.Tensor:
    """[CLS] w ... w [SEP] with Zipf-like token frequencies over ids 4..99."""
    g = torch.Generator().manual_seed(seed)
    weights = 1.0 / torch.arange(1, VOCAB - 3, dtype=torch.float64)
    body = 4 + torch.multinomial(weights, n * (seq_len - 2), replacement=True, generator=g)
    ids = torch.empty(n, seq_len, dtype=torch.long)
    ids[:, 0], ids[:, -1] = 1, 2
    ids[:, 1:-1] = body.view(n, seq_len - 2)
    return ids


def _mask_fn(ids, seed):
    return mask_tokens(ids, special_ids=SPECIAL, mask_id=3, vocab_size=VOCAB, seed=seed, mask_prob=0.3)


def _masked_ce(model, ids, seed) -> float:
    inputs, labels = _mask_fn(ids, seed)
    return evaluate(model, make_eval_set("masked", inputs, labels=labels), batch_size=32).summary()["ce"]


@pytest.fixture(scope="module")
def fitted_head():
    model = _mlm()
    ids, eval_ids = _windows(96, seed=1), _windows(32, seed=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ce_before = _masked_ce(model, ids, seed=4)
    facts = fit_mlm_head(model, ids, mask_fn=_mask_fn, seed=4, epochs=4, batch_size=64, lr=1e-2,
                         eval_input_ids=eval_ids, progress=False)
    return model, before, ce_before, facts, ids, eval_ids


def test_fit_mlm_head_changes_only_the_head_transform_and_bias(fitted_head):
    model, before, *_ = fitted_head
    after = model.state_dict()
    fitted = {"cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
              "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
              "cls.predictions.bias", "cls.predictions.decoder.bias"}
    assert set(after) == set(before)
    for name in after:
        if name in fitted:
            assert not torch.equal(after[name], before[name]), name
        else:  # encoder, embeddings and the tied decoder weight: bit-identical
            assert torch.equal(after[name], before[name]), name


def test_fit_mlm_head_keeps_the_decoder_tied(fitted_head):
    model, *_ = fitted_head
    head = model.cls.predictions
    assert head.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert head.decoder.bias is head.bias
    assert not model.training


def test_fit_mlm_head_lowers_the_masked_ce(fitted_head):
    model, _, ce_before, facts, ids, eval_ids = fitted_head
    assert _masked_ce(model, ids, seed=4) < ce_before - 0.5
    # the reported eval metrics are those of the full model on eval_ids masked with seed + 1
    inputs, labels = _mask_fn(eval_ids, 5)
    scores = evaluate(model, make_eval_set("masked", inputs, labels=labels), batch_size=32)
    assert facts["eval_ce"] == pytest.approx(scores.summary()["ce"], rel=1e-5)
    assert facts["eval_top1"] == pytest.approx(scores.summary()["top1"])
    assert facts["n_eval_masked"] == scores.n_units
    assert facts["eval_ce"] < math.log(VOCAB)
    assert facts["n_train_windows"] == 96
    assert facts["n_train_masked"] == int((_mask_fn(ids, 4)[1] != -100).sum())


def test_fit_mlm_head_ties_an_untied_decoder():
    model = _mlm()
    head = model.cls.predictions
    head.decoder.weight = torch.nn.Parameter(head.decoder.weight.detach().clone())
    assert head.decoder.weight is not model.bert.embeddings.word_embeddings.weight
    fit_mlm_head(model, _windows(16, seed=1), mask_fn=_mask_fn, epochs=1, progress=False)
    assert head.decoder.weight is model.bert.embeddings.word_embeddings.weight


def test_fit_mlm_head_is_deterministic_and_leaves_the_global_rng_alone():
    ids = _windows(32, seed=1)
    torch.manual_seed(99)
    state = torch.get_rng_state()
    a, b = _mlm(), _mlm()
    fa = fit_mlm_head(a, ids, mask_fn=_mask_fn, seed=7, epochs=2, batch_size=32, progress=False,
                      init="default")
    fb = fit_mlm_head(b, ids, mask_fn=_mask_fn, seed=7, epochs=2, batch_size=32, progress=False,
                      init="default")
    assert torch.equal(torch.get_rng_state(), state)
    assert fa["train_ce"] == fb["train_ce"]
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_fit_mlm_head_rejects_bad_input():
    ids = _windows(8, seed=1)
    with pytest.raises(TypeError):
        fit_mlm_head(torch.nn.Linear(2, 2), ids, mask_fn=_mask_fn, progress=False)
    with pytest.raises(ValueError):
        fit_mlm_head(_mlm(), ids[0], mask_fn=_mask_fn, progress=False)
    with pytest.raises(ValueError):
        fit_mlm_head(_mlm(), ids + VOCAB, mask_fn=_mask_fn, progress=False)
    with pytest.raises(ValueError):
        fit_mlm_head(_mlm(), ids, mask_fn=_mask_fn, init="zeros", progress=False)
    with pytest.raises(ValueError, match="no positions"):
        fit_mlm_head(_mlm(), ids, mask_fn=lambda i, s: (i, torch.full_like(i, -100)), progress=False)


def test_fit_mlm_head_in_bfloat16_matches_float32():
    ids, eval_ids = _windows(64, seed=1), _windows(16, seed=2)
    kw = dict(mask_fn=_mask_fn, seed=4, epochs=3, batch_size=64, lr=1e-2, eval_input_ids=eval_ids,
              progress=False)
    f32 = fit_mlm_head(_mlm(), ids, **kw)
    bf16 = fit_mlm_head(_mlm(), ids, decoder_dtype=torch.bfloat16, **kw)
    assert bf16["decoder_dtype"] == "bfloat16" and f32["decoder_dtype"] == "float32"
    assert bf16["eval_ce"] == pytest.approx(f32["eval_ce"], abs=0.05)
    with pytest.raises(ValueError):
        fit_mlm_head(_mlm(), ids, mask_fn=_mask_fn, decoder_dtype=torch.int64, progress=False)
