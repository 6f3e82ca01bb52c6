"""The ABL experiment's pieces: nested selections, offsets, statistics over a model, the sweep."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.zoo import sites
from core.abl.ablation import AblationSweep, nested_masks, offsets_for, peak_over_std, run_abl
from core.neurons.activations import collect_stats, record
from core.errors import NonFiniteActivationError
from core.evaluate import EvalSet, evaluate, make_eval_set, mask_tokens
from core.neurons.stats import NeuronStats
from tests.tiny_models import VOCAB, build, inputs


def test_nested_masks_by_hand():
    m = nested_masks(1, 10, (0.0, 0.1, 0.5, 0.9), seed=0)
    assert m.shape == (4, 1, 10)
    assert [int((m[i] == 0).sum()) for i in range(4)] == [0, 1, 5, 9]


@settings(deadline=None, max_examples=40)
@given(n_layers=st.integers(1, 4), width=st.integers(1, 50), seed=st.integers(0, 2**31 - 1))
def test_nested_masks_are_nested_and_exact(n_layers, width, seed):
    fractions = tuple(round(0.1 * i, 1) for i in range(10))
    m = nested_masks(n_layers, width, fractions, seed)
    pruned = m == 0
    for a, b in zip(pruned[:-1], pruned[1:]):
        assert bool((a <= b).all())  # each step keeps the previous step's neurons
    for f, p in zip(fractions, pruned):
        assert (p.sum(-1) == round(f * width)).all()  # the same count in every layer
    assert torch.equal(m, nested_masks(n_layers, width, fractions, seed))


def test_nested_masks_differ_across_seeds_and_reject_bad_fractions():
    assert not torch.equal(nested_masks(2, 40, (0.5,), 0), nested_masks(2, 40, (0.5,), 1))
    with pytest.raises(ValueError, match="increasing"):
        nested_masks(1, 10, (0.5, 0.1), 0)


def test_peak_over_std_handles_constant_neurons():
    s = NeuronStats(3)
    s.update(torch.tensor([[0.0, 2.0, -1.0], [0.0, 2.0, 1.0], [0.0, 2.0, 1.0]]))
    s.update_histogram(torch.tensor([[0.0, 2.0, -1.0], [0.0, 2.0, 1.0], [0.0, 2.0, 1.0]]))
    r = peak_over_std([s])
    assert r[0] == 0.0 and np.isinf(r[1])
    # third neuron: values -1, 1, 1: peak in the last bin, centre 0.99; std = sqrt(8/9)
    assert r[2] == pytest.approx(0.99 / np.sqrt(8 / 9), rel=1e-5)


def _text_set(kind="causal", n=4, seq=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (n, seq), generator=g)
    if kind == "masked":
        inp, labels = mask_tokens(ids, special_ids=[0, 1, 2], mask_id=3, vocab_size=VOCAB, seed=seed)
        return EvalSet("masked", inp, labels)
    return EvalSet("causal", ids)


def test_causal_ce_matches_the_models_own_loss():
    model = build("llama")
    data = _text_set()
    scores = evaluate(model, data, batch_size=3)
    with torch.no_grad():
        loss = model(input_ids=data.inputs, labels=data.inputs).loss
    assert scores.n_units == 4 * 11
    assert scores.ce.mean() == pytest.approx(float(loss), rel=1e-5)


def test_masked_and_image_units():
    model = build("bert")
    data = _text_set("masked")
    scores = evaluate(model, data, batch_size=2)
    with torch.no_grad():
        loss = model(input_ids=data.inputs, labels=data.labels).loss
    assert scores.n_units == int((data.labels != -100).sum())
    assert scores.ce.mean() == pytest.approx(float(loss), rel=1e-5)
    vit = build("vit")
    x = inputs("vit", batch=5)["pixel_values"]
    y = torch.arange(5)
    s = evaluate(vit, EvalSet("image", x, y), batch_size=2)
    with torch.no_grad():
        assert s.ce.mean() == pytest.approx(float(vit(pixel_values=x, labels=y).loss), rel=1e-5)


def test_make_eval_set_needs_a_tokenizer_for_masked_lms():
    with pytest.raises(ValueError, match="tokenizer"):
        make_eval_set("masked", torch.zeros(1, 4, dtype=torch.long))


@pytest.mark.parametrize("site", ["mlp", "attn", "resid"])
def test_collect_stats_equals_raw_activations(site):
    model = build("gpt2")
    data = _text_set(n=5, seq=7)
    stats = collect_stats(model, site, data, batch_size=2)
    raw = {}
    with sites.trace(model, site, lambda l, a: raw.setdefault(l, []).append(a.reshape(-1, a.shape[-1]))):
        with torch.no_grad():
            model(input_ids=data.inputs)
    for layer, s in enumerate(stats):
        x = torch.cat(raw[layer])
        assert s.count == x.shape[0] == 35
        torch.testing.assert_close(s.mean, x.mean(0), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(s.max, x.max(0).values)
        assert bool(((s.peak >= s.min) & (s.peak <= s.max)).all())


def test_collect_stats_caches_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_CLAIMS_CACHE", str(tmp_path))
    model = build("llama")
    data = _text_set()
    first = collect_stats(model, "attn", data, key="unit-test")
    assert (tmp_path / "stats" / "unit-test.safetensors").exists()
    again = collect_stats(build("llama", seed=5), "attn", data, key="unit-test")  # reloaded, not recomputed
    for a, b in zip(first, again):
        assert torch.equal(a.peak, b.peak) and torch.equal(a.mean, b.mean)


def test_non_finite_activations_name_model_site_and_layer():
    model = build("llama")
    with torch.no_grad():
        model.model.layers[1].self_attn.v_proj.weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteActivationError, match=r"'tiny'.*'attn'.*layer 1"):
        collect_stats(model, "attn", _text_set(), model_name="tiny")


def test_run_abl_end_to_end_on_a_tiny_model(tmp_path):
    model = build("llama")
    collect, evalset = _text_set(seed=1), _text_set(seed=2)
    resample = {"resample-ids": {"input_ids": torch.randint(5, VOCAB, (1, 12))}}
    sweep = run_abl(model, name="tiny", collect=collect, evalset=evalset, resample_inputs=resample,
                    fractions=(0.0, 0.5, 1.0), seeds=(0, 1), batch_size=2, progress=False)
    assert sweep.methods == ("zero", "mean", "peak", "resample-ids")
    assert sweep.top1.shape == (4, 2, 3, evalset.n_units)
    base = evaluate(model, evalset)
    assert np.array_equal(sweep.ce[:, :, 0], np.broadcast_to(base.ce, sweep.ce[:, :, 0].shape))
    # at 100% every method replaces every neuron: zero ablation equals a model with o_proj zeroed
    with sites.ablate(model, "attn", torch.zeros(2, 32), 0.0):
        zeroed = evaluate(model, evalset)
    np.testing.assert_allclose(sweep.ce[0, 0, 2], zeroed.ce, rtol=1e-5)
    np.testing.assert_allclose(sweep.ce[0, 1, 2], zeroed.ce, rtol=1e-5)
    assert sweep.peak_over_std.shape == (2 * 32,)
    path = tmp_path / "sweep.npz"
    sweep.save(path)
    back = AblationSweep.load(path)
    assert back.methods == sweep.methods and np.array_equal(back.ce, sweep.ce)
    assert back.top1_at("peak", 0.5).shape == (2, evalset.n_units)
    with pytest.raises(KeyError, match="fraction"):
        back.ce_at("peak", 0.3)


def test_offsets_and_record_shapes():
    model = build("llama")
    data = _text_set()
    stats = collect_stats(model, "attn", data)
    resampled = {"resample-ids": record(model, "attn", {"input_ids": data.inputs[:1]})}
    assert resampled["resample-ids"].shape == (2, 12, 32)
    assert offsets_for("zero", stats, resampled).abs().sum() == 0
    assert torch.equal(offsets_for("peak", stats, resampled)[1], stats[1].peak)
    assert offsets_for("resample-ids", stats, resampled).shape == (2, 12, 32)
    with pytest.raises(KeyError):
        offsets_for("median", stats, resampled)
