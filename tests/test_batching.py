"""Batches that fill a device: a batch size per device kind, results equal to the
batch-8 ones to float precision, and a batch that does not fit backs off (halving, retrying, warning)
instead of crashing. No GPU is needed: out-of-memory errors are raised by fake forwards."""
from __future__ import annotations

import warnings

import pytest
import torch

from core.batching import (GPU_BUDGET, BatchBackoffWarning, Budget, is_out_of_memory, items_per_batch,
                           with_backoff)
from core.bcl.representations import token_representations
from core.errors import MissingAssetError
from core.evaluate import EvalSet, evaluate, make_eval_set
from core.neurons.activations import collect_stats
from core.profiles import PROFILES, get_profile
from core.zoo import sites
from tests import tiny_models

OOM = torch.cuda.OutOfMemoryError


# ---------------------------------------------------------------------------------------------
# the batch size of a device

def test_items_per_batch_by_hand():
    assert items_per_batch(8, seq_len=64) == 8 and items_per_batch(8, seq_len=None) == 8
    assert items_per_batch(Budget(tokens=16_384, images=512), seq_len=1_000) == 16  # a 7B model's windows
    assert items_per_batch(Budget(tokens=16_384, images=512), seq_len=64) == 256
    assert items_per_batch(Budget(tokens=100, images=512), seq_len=1_000) == 1  # at least one window
    assert items_per_batch(Budget(tokens=16_384, images=512), seq_len=None) == 512  # images
    assert items_per_batch(Budget(tokens=16_384, images=512), seq_len=None, n_items=40) == 40  # no larger
    assert items_per_batch(8, seq_len=64, n_items=3) == 3 and items_per_batch(8, seq_len=64, n_items=0) == 1
    for bad in (0, -3, 2.5, True, "8", None):
        with pytest.raises(ValueError, match="batch_size must be a positive int or a core.batching.Budget"):
            items_per_batch(bad, seq_len=64)
    with pytest.raises(ValueError, match="Budget.tokens must be a positive int, got 0"):
        Budget(tokens=0, images=4)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_cpu_keeps_batch_8_and_a_gpu_gets_the_budget(name):
    profile = get_profile(name)
    assert profile.batch_size_for("cpu") == profile.batch_size == 8
    assert profile.batch_size_for(torch.device("cpu")) == 8
    assert profile.batch_size_for("cuda") == profile.batch_size_for("cuda:1") == GPU_BUDGET
    # the GPU budget is not a sample size: the profiles' cache keys stay as they were
    assert not {"gpu_tokens_per_batch", "gpu_images_per_batch"} & set(profile.to_dict())


# ---------------------------------------------------------------------------------------------
# backing off

def _fake_pass(limit: int, calls: list):
    def run(bs: int):
        calls.append(bs)
        if bs > limit:
            raise OOM(f"CUDA out of memory. Tried to allocate {bs} GiB")
        return f"ran at {bs}"
    return run


def test_backoff_halves_until_the_batch_fits_and_remembers_it():
    owner = torch.nn.Linear(1, 1)
    calls = []
    with pytest.warns(BatchBackoffWarning) as record:
        assert with_backoff(_fake_pass(5, calls), 32, what="fake pass", owner=owner) == "ran at 4"
    assert calls == [32, 16, 8, 4]
    assert [str(w.message).split(" (")[0] for w in record] == [
        f"fake pass: a batch of {n} does not fit in memory" for n in (32, 16, 8)]
    assert "halving to 16 and running the pass again" in str(record[0].message)
    calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the next pass starts at the size that fitted: no warning
        assert with_backoff(_fake_pass(5, calls), 32, what="fake pass", owner=owner) == "ran at 4"
    assert calls == [4]
    calls.clear()  # another pass of the same model is tried at its own size
    with pytest.warns(BatchBackoffWarning):
        with_backoff(_fake_pass(5, calls), 32, what="another pass", owner=owner)
    assert calls == [32, 16, 8, 4]


def test_backoff_recognises_out_of_memory_errors_only():
    assert is_out_of_memory(OOM("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory: 9 GB"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))

    def broken(bs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        with_backoff(broken, 8, what="broken pass")


def test_backoff_gives_up_at_one_item_with_a_message():
    calls = []
    with pytest.warns(BatchBackoffWarning), pytest.raises(MemoryError, match="huge pass: one item per forward"):
        with_backoff(_fake_pass(0, calls), 4, what="huge pass")
    assert calls == [4, 2, 1]
    for bad in (0, 2.0, Budget(tokens=8, images=8)):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            with_backoff(lambda bs: bs, bad, what="x")


def _oom_above(model, limit: int, module=None):
    """A forward pre-hook (on ``module``, default the model) that fails like a full GPU above ``limit``
    items; on a late block, the earlier blocks' hooks have already run when it fails."""
    def pre(_m, args, kwargs):
        x = args[0] if args else next(iter(kwargs.values()))
        if x.shape[0] > limit:
            raise OOM(f"CUDA out of memory (fake: batch {x.shape[0]} > {limit})")
    return (module or model).register_forward_pre_hook(pre, with_kwargs=True)


# ---------------------------------------------------------------------------------------------
# the same results at every batch size

def _sets():
    g = torch.Generator().manual_seed(0)
    causal = make_eval_set("causal", torch.randint(3, tiny_models.VOCAB, (40, 12), generator=g))
    masked = EvalSet("masked", *_masked(g))
    image = EvalSet("image", torch.randn(40, 1, 28, 28, generator=g), torch.randint(0, 10, (40,), generator=g))
    return {"llama": causal, "bert": masked, "vit": image}


def _masked(g):
    ids = torch.randint(3, tiny_models.VOCAB, (40, 12), generator=g)
    labels = torch.where(torch.rand(ids.shape, generator=g) < 0.3, ids, torch.full_like(ids, -100))
    return ids, labels


def _assert_scores_equal(a, b):
    assert (a.top1 == b.top1).all()
    torch.testing.assert_close(torch.from_numpy(a.ce), torch.from_numpy(b.ce), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family", ["llama", "bert", "vit"])
def test_evaluate_equals_batch_8_at_any_batch(family):
    model, data = tiny_models.build(family), _sets()[family]
    base = evaluate(model, data, batch_size=8)
    assert base.n_units == data.n_units
    for batch in (32, Budget(tokens=120, images=13), GPU_BUDGET):
        _assert_scores_equal(evaluate(model, data, batch_size=batch), base)


@pytest.mark.parametrize("family", ["llama", "vit"])
def test_collect_stats_equal_batch_8_at_any_batch(family):
    model, data = tiny_models.build(family), _sets()[family]
    base = collect_stats(model, "mlp", data, batch_size=8)
    for batch in (32, GPU_BUDGET):
        got = collect_stats(model, "mlp", data, batch_size=batch)
        for s, t in zip(got, base):
            for field in ("mean", "std", "min", "max", "mean_abs"):
                torch.testing.assert_close(getattr(s, field), getattr(t, field), rtol=1e-5, atol=1e-6)
            assert s.count == t.count
            assert (s.histogram.sum(1) == t.histogram.sum(1)).all()


def test_evaluate_backs_off_and_still_scores_every_unit():
    model, data = tiny_models.build("llama"), _sets()["llama"]
    base = evaluate(model, data, batch_size=8)
    handle = _oom_above(model, 6)
    try:
        with pytest.warns(BatchBackoffWarning) as record:
            got = evaluate(model, data, batch_size=32, desc="tiny llama: evaluate")
    finally:
        handle.remove()
    assert [str(w.message).split(";")[1] for w in record] == [f" halving to {n} and running the pass again"
                                                             for n in (16, 8, 4)]
    _assert_scores_equal(got, base)


def test_collect_stats_back_off_from_a_clean_slate():
    """An OOM in the last block, after the first block's hooks ran: the pass restarts from empty
    statistics, so nothing is counted twice."""
    model, data = tiny_models.build("llama"), _sets()["llama"]
    base = collect_stats(model, "mlp", data, batch_size=4)
    handle = _oom_above(model, 5, module=sites.blocks(model)[-1])
    try:
        with pytest.warns(BatchBackoffWarning) as record:
            got = collect_stats(model, "mlp", data, batch_size=GPU_BUDGET, model_name="tiny llama")
    finally:
        handle.remove()
    # 40 windows, then 20, 10, 5; the peaks' pass starts at the 5 that fitted (no more warnings)
    assert [str(w.message).split(";")[1] for w in record] == [f" halving to {n} and running the pass again"
                                                             for n in (20, 10, 5)]
    for s, t in zip(got, base):
        assert s.count == t.count == 40 * 12
        assert torch.equal(s.histogram.sum(1), t.histogram.sum(1))
        torch.testing.assert_close(s.mean, t.mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(s.peak, t.peak, rtol=1e-5, atol=1e-6)


def test_representations_back_off_from_a_clean_slate():
    model = tiny_models.build("bert")
    ids = torch.randint(3, tiny_models.VOCAB, (30, 10), generator=torch.Generator().manual_seed(4))
    base = token_representations(model, ids, batch_size=8)
    handle = _oom_above(model, 3, module=sites.blocks(model)[-1])
    try:
        with pytest.warns(BatchBackoffWarning):
            got = token_representations(model, ids, batch_size=32)
    finally:
        handle.remove()
    assert (got.counts == base.counts).all() and got.n_positions == base.n_positions
    torch.testing.assert_close(torch.from_numpy(got.mean), torch.from_numpy(base.mean), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.from_numpy(got.neuron_mean), torch.from_numpy(base.neuron_mean),
                               rtol=1e-6, atol=1e-8)


def test_small_tier_decoder_scores_equal_at_batch_8_and_the_gpu_budget():
    """SmolLM2-135M on the small profile's ABL evaluation set (16 windows of 64 tokens): batch 8 (the
    CPU's) and all 16 windows at once (the GPU budget) give the same top1 and CE per unit."""
    from core.abl.ablation import ABL_DATA, eval_set
    from core.zoo.models import load_model

    try:
        lm = load_model("smollm2-135m")
    except MissingAssetError as e:
        pytest.skip(e.reason)
    data = eval_set(lm.tokenizer, "causal", get_profile("small"), ABL_DATA[("small", "text")], lm.max_length)
    assert items_per_batch(GPU_BUDGET, seq_len=data.inputs.shape[1]) >= data.inputs.shape[0]
    _assert_scores_equal(evaluate(lm.model, data, batch_size=GPU_BUDGET), evaluate(lm.model, data, batch_size=8))
