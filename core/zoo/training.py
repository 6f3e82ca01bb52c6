"""Training of the harness's own small-tier models: the tiny ViT and the MiniLM masked-LM head.

Both functions are pure: they take tensors and a model, train on the CPU with every random choice drawn
from a seed (the global torch RNG is forked around them, so the caller's random state is untouched), and
return the trained module together with a small dict of facts for the model's card. They load no data
and cache nothing; :mod:`core.zoo.build` does both.

- :func:`train_tiny_vit` trains ``tiny-vit-fmnist``, the small-tier stand-in for ViT-base
  (the project's offline-assets notes, small tier, row ``tiny-vit-fmnist``): a ``ViTForImageClassification``
  with :data:`TINY_VIT_CONFIG` on Fashion-MNIST.
- :func:`fit_mlm_head` fits the masked-LM head of ``minilm-l6`` (row ``minilm-l6``): all-MiniLM-L6-v2
  is a sentence-embedding encoder without an MLM head, so the harness fits the head's transform
  (dense, GELU, LayerNorm) and output bias on a split no evaluation uses, with the decoder tied to the
  frozen word embeddings and the encoder frozen.

Results are deterministic for a seed on the CPU with a fixed ``torch.get_num_threads()`` (the order of
floating-point reductions in the kernels depends on the thread count).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
import transformers
from tqdm.auto import tqdm

from core.evaluate import evaluate, make_eval_set
from core.zoo import sites

#: Bumped whenever a change here changes the weights :func:`train_tiny_vit` returns (a cache key part).
TINY_VIT_VERSION = 1
#: Bumped whenever a change here changes the head :func:`fit_mlm_head` fits (a cache key part).
MLM_FIT_VERSION = 1

#: The ten Fashion-MNIST classes, in label order 0-9.
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")

#: ``transformers.ViTConfig`` keyword arguments of ``tiny-vit-fmnist``: 28x28 grayscale images cut into
#: 4x4 patches (49 patches + [CLS] = 50 tokens), 4 layers of width 64 with 4 heads of 16 dimensions (64
#: attention pre-out neurons per layer) and an MLP of 256 neurons per layer. No dropout (its masks would
#: draw random numbers in training). Chosen by measurement on 2 CPU cores: with :func:`train_tiny_vit`'s
#: defaults (5 epochs at batch 64, about 5 minutes) it reaches 85.5% top1 on the 10,000 Fashion-MNIST test
#: images (86.0% with 1 thread); width 96 reached only 84.1% in 3 epochs (about the same time) and 85.4% in
#: 4 epochs (1.3 times the time).
TINY_VIT_CONFIG: dict = {
    "image_size": 28,
    "patch_size": 4,
    "num_channels": 1,
    "hidden_size": 64,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 256,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "layer_norm_eps": 1e-12,
    "qkv_bias": True,
    "num_labels": 10,
    "id2label": {i: name for i, name in enumerate(FASHION_MNIST_CLASSES)},
    "label2id": {name: i for i, name in enumerate(FASHION_MNIST_CLASSES)},
}


# ----------------------------------------------------------------------------------------------------
# shared helpers

def _warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warmup from 0 to 1 over ``warmup_steps``, then cosine to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _check_positive(**values) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")


# ----------------------------------------------------------------------------------------------------
# tiny ViT

def _check_images(images: torch.Tensor, labels: torch.Tensor, config: transformers.ViTConfig,
                  what: str) -> None:
    shape = (config.num_channels, config.image_size, config.image_size)
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.ndim != 4 \
            or tuple(images.shape[1:]) != shape:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{what} images must be a float tensor of shape (n, {shape[0]}, {shape[1]}, "
                         f"{shape[2]}), got {got}")
    if images.shape[0] == 0:
        raise ValueError(f"{what} images are empty")
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long \
            or tuple(labels.shape) != (images.shape[0],):
        got = (labels.dtype, tuple(labels.shape)) if isinstance(labels, torch.Tensor) else type(labels)
        raise ValueError(f"{what} labels must be a LongTensor of shape ({images.shape[0]},), got {got}")
    if labels.min() < 0 or labels.max() >= config.num_labels:
        raise ValueError(f"{what} labels must lie in [0, {config.num_labels}), got range "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    lo, hi = float(images.min()), float(images.max())
    if not (-1.0 - 1e-4 <= lo and hi <= 1.0 + 1e-4):
        raise ValueError(f"{what} images must be normalised to [-1, 1], got range [{lo:.3g}, {hi:.3g}]")


def train_tiny_vit(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    config: dict = TINY_VIT_CONFIG,
    seed: int = 0,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    warmup_fraction: float = 0.05,
    flip: bool = False,
    eval_images: torch.Tensor | None = None,
    eval_labels: torch.Tensor | None = None,
    eval_batch_size: int = 500,
    progress: bool = True,
) -> tuple[transformers.ViTForImageClassification, dict]:
    """Train a ``ViTForImageClassification`` from scratch on images, with a private seed.

    The model is built from ``config`` and initialised under ``seed``; minibatches are drawn without
    replacement from a fresh permutation per epoch; with ``flip`` each image is mirrored left-right
    with probability 1/2. AdamW (betas 0.9/0.999, decoupled weight decay on matrices only) with a
    linear warmup over ``warmup_fraction`` of the steps and a cosine decay to 0. Initialisation,
    permutations and flips all come from ``seed``: the global torch RNG is forked around the call
    (:func:`torch.random.fork_rng`), so the caller's random state is the same after the call as
    before. Bit-for-bit deterministic for a seed on the CPU with the same ``torch.get_num_threads()``.

    This is the harness's ``tiny-vit-fmnist`` (small tier, stand-in for ViT-base; see the model
    zoo's ``offline-assets`` notes); no paper section prescribes it.

    Parameters
    ----------
    images : FloatTensor of shape (n, num_channels, image_size, image_size)
        Training images, already normalised to [-1, 1] (Fashion-MNIST: (n, 1, 28, 28)).
    labels : LongTensor of shape (n,)
        Class ids in [0, num_labels).
    config : dict, default TINY_VIT_CONFIG
        ``transformers.ViTConfig`` keyword arguments.
    seed : int, default 0
        Seeds the initialisation, the permutations and the flips.
    epochs : int, default 5
        Passes over the training images.
    batch_size : int, default 64
        Images per step; the last step of an epoch takes the remainder.
    lr : float, default 3e-3
        Peak learning rate.
    weight_decay : float, default 0.0
        AdamW's decoupled weight decay, applied to weight matrices only (not to biases, LayerNorm
        parameters, position embeddings or the [CLS] token).
    warmup_fraction : float, default 0.05
        Fraction of all steps spent in the linear warmup.
    flip : bool, default False
        Random horizontal flips (probability 1/2 per image and step).
    eval_images : FloatTensor of shape (m, num_channels, image_size, image_size), optional
    eval_labels : LongTensor of shape (m,), optional
        Held-out images scored after training; both or neither.
    eval_batch_size : int, default 500
        Images per forward pass in the evaluation.
    progress : bool, default True
        Show a tqdm bar over the training steps.

    Returns
    -------
    model : transformers.ViTForImageClassification
        On the CPU, in eval mode.
    facts : dict
        ``seed``, ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``n_train`` (images),
        ``n_steps``, ``n_threads`` (``torch.get_num_threads()``), ``train_seconds`` (wall clock of the
        training loop, s), ``train_ce`` (mean training cross-entropy over the last epoch, nats, on the
        augmented batches), ``eval_top1`` (percent) and ``eval_ce`` (nats) on the held-out images, or
        None for both without them, and ``n_eval`` (images, 0 without them).

    Raises
    ------
    ValueError
        If the images or labels do not have the shapes, dtypes or ranges above, if only one of
        ``eval_images`` / ``eval_labels`` is given, or if ``epochs``, ``batch_size`` or ``lr`` is not
        positive.
    """
    cfg = transformers.ViTConfig(**config)
    _check_images(images, labels, cfg, "training")
    if (eval_images is None) != (eval_labels is None):
        raise ValueError("give both eval_images and eval_labels, or neither")
    if eval_images is not None:
        _check_images(eval_images, eval_labels, cfg, "evaluation")
    _check_positive(epochs=epochs, batch_size=batch_size, lr=lr, eval_batch_size=eval_batch_size)
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must lie in [0, 1), got {warmup_fraction!r}")

    n = images.shape[0]
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = epochs * steps_per_epoch
    warmup_steps = max(1, round(warmup_fraction * total_steps))
    images = images.detach().to("cpu", torch.float32)
    labels = labels.detach().to("cpu")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.ViTForImageClassification(cfg)
        gen = torch.Generator().manual_seed(seed)
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            (decay if p.ndim >= 2 and "position_embeddings" not in name and "cls_token" not in name
             else no_decay).append(p)
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(total_steps, warmup_steps))
        model.train()
        start = time.perf_counter()
        bar = tqdm(total=total_steps, desc="train tiny ViT", disable=not progress, leave=False)
        for epoch in range(epochs):
            order = torch.randperm(n, generator=gen)
            ce_sum = 0.0
            for s in range(steps_per_epoch):
                idx = order[s * batch_size:(s + 1) * batch_size]
                x, y = images[idx], labels[idx]
                if flip:
                    mirror = torch.rand(len(idx), generator=gen) < 0.5
                    x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
                loss = F.cross_entropy(model(pixel_values=x).logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                ce_sum += loss.item() * len(idx)
                bar.update(1)
                if s % 20 == 0:
                    bar.set_postfix(epoch=epoch, ce=f"{loss.item():.3f}")
            train_ce = ce_sum / n
        bar.close()
        train_seconds = time.perf_counter() - start
        model.eval()

    facts = {"seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr,
             "weight_decay": weight_decay, "n_train": n, "n_steps": total_steps,
             "n_threads": torch.get_num_threads(), "train_seconds": round(train_seconds, 1),
             "train_ce": train_ce, "eval_top1": None, "eval_ce": None, "n_eval": 0}
    if eval_images is not None:
        scores = evaluate(model, make_eval_set("image", eval_images.to(torch.float32), labels=eval_labels),
                          batch_size=eval_batch_size, progress=progress, desc="evaluate tiny ViT")
        facts.update({"eval_top1": scores.summary()["top1"], "eval_ce": scores.summary()["ce"],
                      "n_eval": scores.n_units})
    return model, facts


# ----------------------------------------------------------------------------------------------------
# masked-LM head

def _check_mlm(model) -> None:
    try:
        head = model.cls.predictions
        head.transform.dense, head.transform.LayerNorm, head.decoder, head.bias  # noqa: B018
        model.bert.embeddings.word_embeddings  # noqa: B018
    except AttributeError as err:
        raise TypeError("model must be a transformers.BertForMaskedLM (with .bert and .cls.predictions "
                        f"holding transform.dense, transform.LayerNorm, decoder and bias), got "
                        f"{type(model).__name__}") from err


def _check_ids(ids: torch.Tensor, vocab_size: int, what: str) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long or ids.ndim != 2 or ids.numel() == 0:
        got = (ids.dtype, tuple(ids.shape)) if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise ValueError(f"{what} must be a non-empty LongTensor of shape (n_windows, seq_len), got {got}")
    if ids.min() < 0 or ids.max() >= vocab_size:
        raise ValueError(f"{what} must lie in [0, {vocab_size}), got range [{int(ids.min())}, "
                         f"{int(ids.max())}]")


def tie_decoder(model) -> None:
    """Make the decoder weight the word-embedding matrix and the decoder bias the head's bias."""
    head = model.cls.predictions
    embeddings = model.bert.embeddings.word_embeddings.weight
    if head.decoder.weight is not embeddings:
        head.decoder.weight = embeddings
    if head.decoder.bias is not head.bias:
        head.decoder.bias = head.bias


def _masked_features(encoder, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int,
                     progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Last hidden states (n_masked, hidden) and targets (n_masked,) at the chosen positions."""
    feats, targets = [], []
    device = encoder.embeddings.word_embeddings.weight.device
    with torch.no_grad():  # not inference_mode: the features are inputs of autograd ops later
        for start in tqdm(range(0, inputs.shape[0], batch_size), desc="encode masked windows",
                          disable=not progress, leave=False):
            x, y = inputs[start:start + batch_size].to(device), labels[start:start + batch_size].to(device)
            chosen = y != -100
            if not chosen.any():
                continue
            hidden = encoder(input_ids=x).last_hidden_state
            feats.append(hidden[chosen])
            targets.append(y[chosen])
    if not feats:
        raise ValueError("mask_fn chose no positions in input_ids")
    return torch.cat(feats), torch.cat(targets)


def _init_head(head, targets: torch.Tensor, init: str, gen: torch.Generator) -> None:
    """Initialise the head's transform and bias in place; random draws come from ``gen`` (CPU)."""
    with torch.no_grad():
        dense, norm = head.transform.dense, head.transform.LayerNorm
        if init == "identity":
            dense.weight.copy_(torch.eye(dense.out_features, dense.in_features))
        else:
            dense.weight.copy_(0.02 * torch.randn(dense.weight.shape, generator=gen))
        dense.bias.zero_()
        norm.weight.fill_(1.0)
        norm.bias.zero_()
        # output bias: log of the add-one smoothed unigram frequency of the targets
        counts = torch.bincount(targets, minlength=head.bias.shape[0]).to(torch.float32) + 1.0
        head.bias.copy_((counts / counts.sum()).log())


def fit_mlm_head(
    model,
    input_ids: torch.Tensor,
    *,
    mask_fn: Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]],
    seed: int = 0,
    epochs: int = 6,
    batch_size: int = 256,
    lr: float = 2e-3,
    weight_decay: float = 0.0,
    init: str = "identity",
    decoder_dtype: torch.dtype = torch.float32,
    eval_input_ids: torch.Tensor | None = None,
    encode_batch_size: int = 32,
    progress: bool = True,
) -> dict:
    """Fit the masked-LM head of a frozen BERT encoder (the transform and the output bias only).

    ``model.cls.predictions`` computes ``logits = LayerNorm(GELU(h W_d^T + b_d)) E^T + b`` from the
    encoder's last hidden state ``h``. The decoder weight ``E`` is the (frozen) word-embedding matrix:
    if ``model.cls.predictions.decoder.weight`` is not already the very tensor
    ``model.bert.embeddings.word_embeddings.weight`` it is tied to it here (and the decoder's bias to
    ``model.cls.predictions.bias``). Only ``W_d``, ``b_d``, the LayerNorm's weight and bias and the
    output bias ``b`` are fitted; every ``model.bert`` parameter is left bit-for-bit unchanged.

    How: ``input_ids`` are masked once with ``mask_fn(input_ids, seed)``; the frozen encoder runs once
    over them (no gradients, in batches) and its last hidden states at the chosen positions are kept;
    the head is then trained on those cached features for ``epochs`` epochs of minibatches of masked
    positions, with AdamW, linear warmup (5% of steps) and cosine decay, minimising the mean
    cross-entropy over the whole vocabulary. Before fitting, the transform is initialised (``init``:
    ``"identity"``: ``W_d = I``; ``"default"``: BERT's N(0, 0.02)), ``b_d = 0``, the LayerNorm to
    (1, 0), and ``b`` to the log of the add-one-smoothed unigram frequencies of the training targets.
    Initialisation and minibatch order come from a ``torch.Generator`` seeded with ``seed`` (and the
    global torch RNG is forked around the fit), so the caller's random state is untouched;
    deterministic for a seed on the CPU with the same thread count. The fit runs on the device the
    model is on.

    This is the harness's ``minilm-l6`` head (all-MiniLM-L6-v2 has none; see the model zoo's
    ``offline-assets`` notes); no paper section prescribes it.

    Parameters
    ----------
    model : transformers.BertForMaskedLM
        Encoder weights loaded into ``model.bert``; the head is (re)initialised and fitted in place.
    input_ids : LongTensor of shape (n_windows, seq_len)
        Tokenised text windows with the special tokens ([CLS] ... [SEP]).
    mask_fn : callable ``(input_ids, seed) -> (inputs, labels)``
        Chooses the targets, e.g. a partial of :func:`core.evaluate.mask_tokens`; ``labels`` is -100
        at positions that are not targets.
    seed : int, default 0
        Seeds the training masking (``seed``), the evaluation masking (``seed + 1``), the
        initialisation and the minibatch order.
    epochs : int, default 6
        Passes over the masked positions.
    batch_size : int, default 256
        Masked positions per step.
    lr : float, default 2e-3
        Peak learning rate.
    weight_decay : float, default 0.0
        AdamW's decoupled weight decay on ``W_d``.
    init : {"identity", "default"}, default "identity"
        Initialisation of the transform's dense weight. Measured on news (48,782 masked tokens,
        6 epochs): "identity" 13.7% masked top1 / 6.38 nats, "default" 13.2% / 6.39 nats.
    decoder_dtype : torch.dtype, default torch.float32
        dtype of the decoder product ``transform(h) E^T`` during fitting (the logits are cast back to
        float32 before the bias and the softmax). ``torch.bfloat16`` is about 1.7 times faster on CPUs
        with native bf16 (AVX512-BF16/AMX) and gave the same held-out top1 and CE to within 0.01, but
        is much slower on CPUs without it. The evaluation and the saved model are float32 either way.
    eval_input_ids : LongTensor of shape (m_windows, seq_len), optional
        Held-out windows, masked with ``mask_fn(eval_input_ids, seed + 1)`` and scored through the full
        model (:func:`core.evaluate.evaluate`) after fitting.
    encode_batch_size : int, default 32
        Windows per encoder forward pass when caching features.
    progress : bool, default True
        Show tqdm bars.

    Returns
    -------
    dict
        ``seed``, ``epochs``, ``lr``, ``batch_size``, ``init``, ``decoder_dtype``, ``n_train_windows``,
        ``n_train_masked`` (masked positions fitted on), ``n_threads``, ``fit_seconds`` (wall clock,
        s, encoding included, evaluation not), ``train_ce`` (mean CE over the last epoch, nats),
        ``eval_top1`` (percent) and ``eval_ce`` (nats) of the masked tokens of ``eval_input_ids``
        (None without them) and ``n_eval_masked`` (0 without them).

    Raises
    ------
    TypeError
        If ``model`` does not have the structure of a ``BertForMaskedLM``.
    ValueError
        If ``input_ids`` or ``eval_input_ids`` is not a non-empty 2-D LongTensor of ids below the
        vocabulary size, if ``mask_fn`` chooses no position, if ``init`` is unknown, or if ``epochs``,
        ``batch_size`` or ``lr`` is not positive.
    """
    _check_mlm(model)
    vocab_size = model.bert.embeddings.word_embeddings.weight.shape[0]
    _check_ids(input_ids, vocab_size, "input_ids")
    if eval_input_ids is not None:
        _check_ids(eval_input_ids, vocab_size, "eval_input_ids")
    _check_positive(epochs=epochs, batch_size=batch_size, lr=lr, encode_batch_size=encode_batch_size)
    if init not in ("identity", "default"):
        raise ValueError(f"init must be 'identity' or 'default', got {init!r}")
    if decoder_dtype not in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
        raise ValueError(f"decoder_dtype must be a floating torch.dtype, got {decoder_dtype!r}")

    tie_decoder(model)
    head = model.cls.predictions
    embeddings = model.bert.embeddings.word_embeddings.weight
    model.eval()
    start = time.perf_counter()
    inputs, labels = mask_fn(input_ids, seed)
    feats, targets = _masked_features(model.bert, inputs, labels, encode_batch_size, progress)
    n_masked = targets.shape[0]
    steps_per_epoch = math.ceil(n_masked / batch_size)
    total_steps = epochs * steps_per_epoch
    warmup_steps = max(1, round(0.05 * total_steps))
    transform = head.transform
    params = [transform.dense.weight, transform.dense.bias, transform.LayerNorm.weight,
              transform.LayerNorm.bias, head.bias]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        _init_head(head, targets, init, gen)
        opt = torch.optim.AdamW([{"params": params[:1], "weight_decay": weight_decay},
                                 {"params": params[1:], "weight_decay": 0.0}], lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(total_steps, warmup_steps))
        # frozen (detached): no gradient flows into the word embeddings
        decoder_weight = embeddings.detach().to(decoder_dtype)
        bar = tqdm(total=total_steps, desc="fit MLM head", disable=not progress, leave=False)
        for epoch in range(epochs):
            order = torch.randperm(n_masked, generator=gen)
            ce_sum = 0.0
            for s in range(steps_per_epoch):
                idx = order[s * batch_size:(s + 1) * batch_size]
                hidden = transform(feats[idx]).to(decoder_dtype)
                logits = F.linear(hidden, decoder_weight).float() + head.bias
                loss = F.cross_entropy(logits, targets[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                ce_sum += loss.item() * len(idx)
                bar.update(1)
                if s % 20 == 0:
                    bar.set_postfix(epoch=epoch, ce=f"{loss.item():.3f}")
            train_ce = ce_sum / n_masked
        bar.close()
    fit_seconds = time.perf_counter() - start
    for p in params:
        p.grad = None

    facts = {"seed": seed, "epochs": epochs, "lr": lr, "batch_size": batch_size, "init": init,
             "decoder_dtype": str(decoder_dtype).removeprefix("torch."),
             "n_train_windows": int(input_ids.shape[0]), "n_train_masked": int(n_masked),
             "n_threads": torch.get_num_threads(), "fit_seconds": round(fit_seconds, 1),
             "train_ce": train_ce, "eval_top1": None, "eval_ce": None, "n_eval_masked": 0}
    if eval_input_ids is not None:
        eval_inputs, eval_labels = mask_fn(eval_input_ids, seed + 1)
        scores = evaluate(model, make_eval_set("masked", eval_inputs, labels=eval_labels),
                          batch_size=8, split=sites.split_head(model), progress=progress,
                          desc="evaluate MLM head")
        facts.update({"eval_top1": scores.summary()["top1"], "eval_ce": scores.summary()["ce"],
                      "n_eval_masked": scores.n_units})
    return facts
