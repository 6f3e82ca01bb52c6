"""The ABL authors' own library, ``taker``, as an oracle for the harness (claims.md, "ABL").

On the same checkpoint folder and the same token ids, the harness must agree with ``taker`` (pinned
in ``requirements-oracle.txt``, installed by ``scripts/setup.sh`` with ``--no-deps``):

- statistics of the attention pre-out neurons (ABL section 3.2, the input of ``o_proj``): per-neuron
  count, mean, variance, min and max of :func:`core.neurons.activations.collect_stats` equal those of
  taker's :class:`taker.data_classes.ActivationCollector` fed as ``taker.activations.get_midlayer_data``
  feeds it (``collect_recent_attn_pre_out`` after each forward pass, rearranged
  ``b l t nh dh -> (b t) l nh dh``; the loop is repeated here because ``get_midlayer_data`` reads a
  Hugging Face dataset by name). taker's summary field named ``std`` holds the *ddof=1 variance*
  (``Welford.var_s``), the harness keeps the population one, so ``m2 / (n - 1)`` is compared with it.
  Min and max come from the collector's raw activations (``collect_raw=True``);
- top1 and CE (nats) of the harness's :func:`core.abl.ablation.run_abl` for zero, mean and peak
  ablation equal those of taker's own hooks: the same neurons (the harness's
  :func:`~core.abl.ablation.nested_masks`) removed with ``NeuronMask.delete_neurons`` and the
  harness's offsets (:func:`~core.abl.ablation.offsets_for`) set as ``NeuronMask`` offsets, scored by
  taker's ``Evaluator.top_k_tokens`` / ``Evaluator.evaluate_ce_losses`` on ``Model.get_logits``.

Models: a tiny random Llama config saved with a word-level tokenizer built offline (always), and
``smollm2-135m`` where its converted checkpoint is in the cache (skipped otherwise, naming it).

taker imports ``wandb`` (only to log, never called here), whose package is large: where it is not
installed, a bare module stands in for it while taker's modules are imported, and is removed from
``sys.modules`` right after (so no other test sees it). Where taker or a package it imports is not
installed, every test here skips, naming the package and ``requirements-oracle.txt``.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import numpy as np
import pytest
import torch

from core.abl.ablation import CONSTANT_METHODS, nested_masks, offsets_for, run_abl
from core.cache import cache_dir
from core.evaluate import EvalSet
from core.neurons.activations import collect_stats
from core.zoo import sites

SITE = "attn"
_INSTALL = "pip install --no-deps -r requirements-oracle.txt"


def _import_taker():
    """``(Model, ActivationCollector, Evaluator)`` of taker, or a pytest skip naming what is missing."""
    if importlib.util.find_spec("taker") is None:
        pytest.skip(f"package 'taker' (the ABL authors' library, the oracle) is not installed: run `{_INSTALL}`")
    import accelerate  # noqa: F401  (it probes for wandb at import: before any stand-in exists)
    import transformers  # noqa: F401

    stand_in = importlib.util.find_spec("wandb") is None
    if stand_in:
        sys.modules["wandb"] = types.ModuleType("wandb")
    try:
        model = importlib.import_module("taker.model")
        data_classes = importlib.import_module("taker.data_classes")
        evaluation = importlib.import_module("taker.eval")
    except ImportError as e:
        pytest.skip(f"taker cannot be imported: package {e.name!r} is missing ({e}); run `{_INSTALL}`")
    finally:
        if stand_in:
            sys.modules.pop("wandb", None)
    return model.Model, data_classes.ActivationCollector, evaluation.Evaluator


@pytest.fixture(scope="module")
def taker():
    return _import_taker()


# ---------------------------------------------------------------------------------------------
# the two models

@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A tiny random LlamaForCausalLM (2 layers, 4 heads of 8) with a word-level tokenizer, saved."""
    import transformers as T
    from tokenizers import Tokenizer, models, pre_tokenizers

    folder = tmp_path_factory.mktemp("tiny-llama")
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i for i in range(3, 95)}, "a": 95, "b": 96}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    T.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                              eos_token="</s>").save_pretrained(folder)
    config = T.LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                           bos_token_id=1, eos_token_id=2, pad_token_id=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = T.LlamaForCausalLM(config).eval()
        with torch.no_grad():  # biased, wider-spread pre-out neurons, so that mean, peak and zero differ
            for layer in model.model.layers:
                layer.self_attn.v_proj.weight.mul_(4.0)
    model.save_pretrained(folder)
    return folder


def _smollm2_folder():
    if not any(cache_dir("models").glob("smollm2-135m-*/card.json")):
        pytest.skip(f"smollm2-135m is not in the cache ({cache_dir('models')}): "
                    f"`python -c \"from core.zoo.models import load_model; load_model('smollm2-135m')\"` builds it")
    from core.zoo.build import build_small

    return build_small("smollm2-135m")


def _load_harness(folder):
    from core.zoo.models import load_model

    return load_model(str(folder)).model


def _load_taker(Model, folder):
    opt = Model(str(folder), dtype="fp32", model_device="cpu", use_accelerator=False)
    opt.predictor.eval()
    return opt


# ---------------------------------------------------------------------------------------------
# taker's side

def _taker_stats(opt, ActivationCollector, ids: torch.Tensor, batch_size: int):
    """taker's attention pre-out summary (as get_midlayer_data collects it) and raw min / max."""
    import einops

    shape = (opt.cfg.n_layers, opt.cfg.n_heads, opt.cfg.d_head)
    collector = ActivationCollector(shape, "cpu", collect_raw=True)
    opt.hooks.disable_all_collect_hooks()
    opt.hooks.enable_collect_hooks(["attn_pre_out"])
    with torch.no_grad():
        for start in range(0, ids.shape[0], batch_size):
            opt.get_outputs_embeds(input_ids=ids[start:start + batch_size])
            acts = einops.rearrange(opt.collect_recent_attn_pre_out(), "b l t nh dh -> (b t) l nh dh")
            collector.add_all(acts)
    opt.hooks.disable_all_collect_hooks()
    raw = collector.get_raw().flatten(2)  # (samples, layer, neuron), neuron = head * d_head + dim
    return collector, raw


def _taker_scores(opt, Evaluator, ids: torch.Tensor, batch_size: int, mask=None, offset=None):
    """Per-unit (top1, CE) of taker on next-token prediction, with its NeuronMasks set if given."""
    nn_masks = opt.hooks["attn_pre_out"]["mask"]
    shape = (opt.cfg.n_heads, opt.cfg.d_head)
    for layer, nn_mask in enumerate(nn_masks):
        nn_mask.reset()
        if mask is not None:
            nn_mask.set_offset(offset[layer].reshape(shape).to(nn_mask.offset.dtype))
    if mask is not None:
        opt.hooks["attn_pre_out"].delete_neurons((mask == 0).reshape(-1, *shape))
    ev = Evaluator()
    tops, ces = [], []
    try:
        with torch.no_grad():
            for start in range(0, ids.shape[0], batch_size):
                batch = ids[start:start + batch_size]
                logits = opt.get_logits(input_ids=batch)[:, :-1]
                expected = batch[:, 1:]
                tops.append((ev.top_k_tokens(logits, 1)[..., 0] == expected).flatten())
                ces.append(ev.evaluate_ce_losses(expected, logits).flatten())
    finally:
        for nn_mask in nn_masks:
            nn_mask.reset()
    return torch.cat(tops).numpy(), torch.cat(ces).float().numpy()


# ---------------------------------------------------------------------------------------------
# the checks

def _check_stats(model, opt, ActivationCollector, ids, batch_size):
    stats = collect_stats(model, SITE, EvalSet("causal", ids), batch_size=batch_size)
    collector, raw = _taker_stats(opt, ActivationCollector, ids, batch_size)
    n = ids.numel()
    assert collector.n_points == n and all(s.count == n for s in stats)
    summary = collector.summary(dtype=torch.float64)
    # taker's field named "std" is the ddof=1 variance (Welford.var_s)
    assert torch.equal(summary.std, collector.all.var_s.double())
    mean = torch.stack([s.state_dict()["mean"] for s in stats])
    var_ddof1 = torch.stack([s.state_dict()["m2"] for s in stats]) / (n - 1)
    scale = float(raw.abs().max())
    torch.testing.assert_close(mean, summary.mean.flatten(1), rtol=1e-5, atol=1e-6 * scale)
    torch.testing.assert_close(var_ddof1, summary.std.flatten(1), rtol=1e-5, atol=1e-6 * scale ** 2)
    # ranges: exact (min and max never round)
    assert torch.equal(torch.stack([s.min for s in stats]), raw.min(0).values)
    assert torch.equal(torch.stack([s.max for s in stats]), raw.max(0).values)
    # the check has teeth: the population variance differs from taker's where n is small enough
    assert not torch.allclose(torch.stack([s.var for s in stats]).double(), summary.std.flatten(1),
                              rtol=0.1 / n, atol=0)
    return stats


def _check_ablation(model, opt, Evaluator, stats, ids, batch_size, fractions):
    evalset = EvalSet("causal", ids)
    sweep = run_abl(model, name="oracle", collect=evalset, evalset=evalset, resample_inputs={},
                    fractions=fractions, seeds=(0,), batch_size=batch_size, progress=False)
    assert sweep.methods == CONSTANT_METHODS
    masks = nested_masks(sites.n_layers(model, SITE), sites.site_width(model, SITE), fractions, seed=0)
    base_top1, base_ce = _taker_scores(opt, Evaluator, ids, batch_size)
    seen = {}
    for f, frac in enumerate(fractions):
        for m, method in enumerate(CONSTANT_METHODS):
            if frac == 0:
                top1, ce = base_top1, base_ce
            else:
                offset = offsets_for(method, stats, {})
                top1, ce = _taker_scores(opt, Evaluator, ids, batch_size, masks[f], offset)
            np.testing.assert_array_equal(sweep.top1[m, 0, f], top1, err_msg=f"top1, {method} at {frac}")
            np.testing.assert_allclose(sweep.ce[m, 0, f], ce, rtol=1e-5, atol=1e-5,
                                       err_msg=f"CE, {method} at {frac}")
            seen[method, frac] = float(ce.mean())
    # the methods do differ, so that agreeing on each is not agreeing on one
    top = max(fractions)
    assert len({round(seen[m, top], 4) for m in CONSTANT_METHODS}) == 3, seen


def _ids(vocab: int, n: int, seq: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, vocab, (n, seq), generator=g)


def test_tiny_llama_agrees_with_taker(taker, tiny_llama):
    Model, ActivationCollector, Evaluator = taker
    model = _load_harness(tiny_llama)
    opt = _load_taker(Model, tiny_llama)
    assert (opt.cfg.n_heads * opt.cfg.d_head, opt.cfg.n_layers) == (sites.site_width(model, SITE), 2)
    ids = _ids(model.config.vocab_size, n=6, seq=16, seed=1)
    stats = _check_stats(model, opt, ActivationCollector, ids, batch_size=4)
    _check_ablation(model, opt, Evaluator, stats, ids, batch_size=4, fractions=(0.0, 0.5, 1.0))


def test_smollm2_agrees_with_taker(taker):
    Model, ActivationCollector, Evaluator = taker
    folder = _smollm2_folder()
    model = _load_harness(folder)
    opt = _load_taker(Model, folder)
    assert opt.cfg.n_heads * opt.cfg.d_head == sites.site_width(model, SITE)
    ids = _ids(model.config.vocab_size, n=2, seq=32, seed=1)
    stats = _check_stats(model, opt, ActivationCollector, ids, batch_size=1)
    _check_ablation(model, opt, Evaluator, stats, ids, batch_size=1, fractions=(0.0, 0.5))


def test_absent_taker_skips_naming_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "taker" else real(name, *a))
    with pytest.raises(pytest.skip.Exception, match="'taker'.*requirements-oracle.txt"):
        _import_taker()
