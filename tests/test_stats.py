"""Streaming per-neuron statistics (core.neurons.stats): hand-computed cases, a raw-storage reference
(torch.histc and torch's own reductions on the stored activations), and properties."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.neurons.stats import NeuronStats


def _two_pass(x: torch.Tensor, n_bins: int = 100, splits=None) -> NeuronStats:
    s = NeuronStats(x.shape[1], n_bins=n_bins)
    parts = x.split(splits) if splits is not None else [x]
    for p in parts:
        s.update(p)
    for p in parts:
        s.update_histogram(p)
    return s


def _reference_histc(x: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Per-neuron torch.histc over the neuron's own [min, max], from stored activations."""
    out = torch.zeros(x.shape[1], n_bins, dtype=torch.int64)
    for i in range(x.shape[1]):
        lo, hi = x[:, i].min().item(), x[:, i].max().item()
        out[i] = torch.histc(x[:, i], bins=n_bins, min=lo, max=hi).long()
    return out


# ---------------------------------------------------------------------------------------------
# hand-computed

def test_one_neuron_by_hand():
    # values 0, 1, 1, 2, 10; 5 bins of width 2 over [0, 10]: [0,2) holds 0,1,1; [2,4) holds 2;
    # [8,10] holds 10. mean 14/5 = 2.8; E[x^2] = 106/5 = 21.2; var = 21.2 - 2.8^2 = 13.36.
    x = torch.tensor([[0.0], [1.0], [1.0], [2.0], [10.0]])
    s = _two_pass(x, n_bins=5)
    assert s.count == 5
    assert s.mean.tolist() == pytest.approx([2.8])
    assert s.mean_abs.tolist() == pytest.approx([2.8])
    assert s.var.tolist() == pytest.approx([13.36])
    assert s.std.tolist() == pytest.approx([math.sqrt(13.36)])
    assert s.min.tolist() == [0.0] and s.max.tolist() == [10.0]
    assert s.histogram.tolist() == [[3, 1, 0, 0, 1]]
    assert s.peak.tolist() == [1.0]  # centre of [0, 2)
    assert s.bin_edges().tolist() == [[0.0, 2.0, 4.0, 6.0, 8.0, 10.0]]


def test_negative_values_mean_abs_and_dtypes_by_hand():
    x = torch.tensor([[-3.0, 5.0], [1.0, 5.0]])
    s = _two_pass(x, n_bins=4)
    assert s.mean.tolist() == [-1.0, 5.0]
    assert s.mean_abs.tolist() == [2.0, 5.0]
    assert s.var.tolist() == [4.0, 0.0]
    assert s.mean.dtype == torch.float32 and s.mean.device.type == "cpu"
    assert s.histogram.dtype == torch.int64 and s.histogram.shape == (2, 4)
    assert isinstance(s.count, int)


def test_value_at_max_goes_to_the_last_bin_and_ties_go_to_the_first_bin():
    x = torch.tensor([[0.0], [0.5], [3.0], [4.0]])  # 4 bins of width 1: 0, 0.5 -> bin 0; 3, 4 -> bin 3
    s = _two_pass(x, n_bins=4)
    assert s.histogram.tolist() == [[2, 0, 0, 2]]
    assert s.peak.tolist() == [0.5]  # tie between bins 0 and 3: the first wins


def test_constant_neuron_peak_is_its_value():
    x = torch.full((7, 2), 3.25)
    x[:, 1] = torch.arange(7.0)
    s = _two_pass(x, n_bins=10)
    assert s.var[0].item() == 0.0 and s.std[0].item() == 0.0
    assert s.histogram[0].tolist() == [7] + [0] * 9
    assert s.peak[0].item() == 3.25


def test_second_pass_values_outside_the_range_go_to_the_edge_bins():
    s = NeuronStats(1, n_bins=4)
    s.update(torch.tensor([[0.0], [4.0]]))
    s.update_histogram(torch.tensor([[-100.0], [-0.1], [2.5], [4.0001], [1e30]]))
    assert s.histogram.tolist() == [[2, 0, 1, 2]]


# ---------------------------------------------------------------------------------------------
# against a raw-storage reference

@pytest.fixture(scope="module")
def normal_data() -> torch.Tensor:
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(3001, 6, generator=g)
    return x * torch.tensor([1.0, 0.1, 5.0, 1.0, 2.0, 0.01]) + torch.tensor([0.0, 3.0, -7.0, 100.0, 0.5, 1.0])


def test_matches_stored_reference_over_uneven_batches(normal_data):
    x = normal_data
    s = _two_pass(x, splits=[1, 17, 1000, 983, 999, 1])
    xd = x.double()
    assert s.count == x.shape[0]
    assert torch.equal(s.histogram, _reference_histc(x, 100))
    assert torch.equal(s.min, x.min(0).values) and torch.equal(s.max, x.max(0).values)
    torch.testing.assert_close(s.mean.double(), xd.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s.mean_abs.double(), xd.abs().mean(0), rtol=1e-5, atol=0)
    torch.testing.assert_close(s.var.double(), xd.var(0, correction=0), rtol=1e-5, atol=0)
    torch.testing.assert_close(s.std.double(), xd.std(0, correction=0), rtol=1e-5, atol=0)
    centre = s.bin_edges()[:, :-1] + (s.max - s.min).double()[:, None] / 200
    expected_peak = centre[torch.arange(6), _reference_histc(x, 100).argmax(1)]
    torch.testing.assert_close(s.peak.double(), expected_peak, rtol=1e-6, atol=1e-6)


def test_many_chunks_in_one_batch(monkeypatch, normal_data):
    import core.neurons.stats

    monkeypatch.setattr(core.neurons.stats, "_CPU_CHUNK_VALUES", 60)  # 10 rows of 6 neurons per chunk
    x = normal_data
    s = _two_pass(x, splits=[5, 2996])
    assert torch.equal(s.histogram, _reference_histc(x, 100))
    torch.testing.assert_close(s.var.double(), x.double().var(0, correction=0), rtol=1e-5, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_dtypes_match_the_float_reference(dtype, normal_data):
    x = normal_data[:, :3].to(dtype)
    s = _two_pass(x, n_bins=50, splits=[100, 2901])
    ref = x.double()
    assert torch.equal(s.histogram, _reference_histc(x.float() if dtype != torch.float64 else x, 50))
    torch.testing.assert_close(s.mean.double(), ref.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s.var.double(), ref.var(0, correction=0), rtol=1e-5, atol=0)


def test_variance_stays_accurate_over_a_million_shifted_samples():
    g = torch.Generator().manual_seed(7)
    s = NeuronStats(2)
    sums = torch.zeros(2, dtype=torch.float64)
    batches = []
    for _ in range(250):  # 250 x 4096 = 1,024,000 samples, mean 1000, sd 0.01
        b = 1000.0 + 0.01 * torch.randn(4096, 2, generator=g)
        batches.append(b)
        s.update(b)
        sums += b.double().sum(0)
    mean = sums / s.count
    m2 = sum(((b.double() - mean) ** 2).sum(0) for b in batches)
    torch.testing.assert_close(s.mean.double(), mean, rtol=1e-7, atol=0)
    torch.testing.assert_close(s.var.double(), m2 / s.count, rtol=1e-4, atol=0)


def test_inference_mode_and_autograd_inputs():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():  # as inside a model's forward hooks
        s = NeuronStats(3).update(x)
    s.update(x.clone().requires_grad_())  # a hook outside no_grad: no graph, no error
    s.merge(NeuronStats(3).update(x))  # in-place merge outside inference mode
    with torch.inference_mode():
        s.update_histogram(x)
    s.update_histogram(x)
    assert s.count == 150 and s.histogram.sum(1).tolist() == [100, 100, 100]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(normal_data):
    cpu = _two_pass(normal_data, splits=[1000, 2001])
    gpu = _two_pass(normal_data.cuda(), splits=[1000, 2001])
    assert torch.equal(cpu.histogram, gpu.histogram)
    assert torch.equal(cpu.min, gpu.min) and torch.equal(cpu.max, gpu.max)
    torch.testing.assert_close(cpu.var, gpu.var, rtol=1e-5, atol=0)


# ---------------------------------------------------------------------------------------------
# merging, state, files

def test_merge_equals_a_single_pass(normal_data):
    x = normal_data
    whole = _two_pass(x)
    a, b = NeuronStats(6), NeuronStats(6)
    a.update(x[:1200])
    b.update(x[1200:])
    a.merge(b)
    assert a.count == whole.count
    assert torch.equal(a.min, whole.min) and torch.equal(a.max, whole.max)
    torch.testing.assert_close(a.mean, whole.mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(a.var, whole.var, rtol=1e-5, atol=0)
    # second pass on shards, with the merged first pass handed to every worker
    w1, w2 = NeuronStats.from_state_dict(a.state_dict()), NeuronStats.from_state_dict(a.state_dict())
    w1.update_histogram(x[:500])
    w2.update_histogram(x[500:])
    w1.merge(w2, histogram_only=True)
    assert torch.equal(w1.histogram, whole.histogram)
    assert torch.equal(w1.peak, whole.peak)


def test_merge_of_second_passes_over_the_same_ranges():
    x1 = torch.tensor([[0.0], [1.0], [4.0]])
    x2 = torch.tensor([[4.0], [2.0], [0.0]])
    a, b = _two_pass(x1, n_bins=4), _two_pass(x2, n_bins=4)
    a.merge(b)
    assert a.count == 6 and a.histogram.tolist() == [[2, 1, 1, 2]]
    assert a.mean.tolist() == pytest.approx([11 / 6])


def test_merge_refuses_what_cannot_be_combined():
    a = NeuronStats(2)
    with pytest.raises(ValueError, match="n_neurons=2"):
        a.merge(NeuronStats(3))
    with pytest.raises(ValueError, match="n_bins"):
        a.merge(NeuronStats(2, n_bins=10))
    with pytest.raises(TypeError):
        a.merge("stats")
    x = torch.tensor([[0.0, 1.0], [1.0, 2.0]])
    started = _two_pass(x)
    fresh = NeuronStats(2).update(x)
    with pytest.raises(ValueError, match="second pass"):
        fresh.merge(started)
    with pytest.raises(ValueError, match="second pass"):
        fresh.merge(NeuronStats(2).update(x), histogram_only=True)
    with pytest.raises(ValueError, match="ranges"):
        started.merge(_two_pass(x * 2))


def test_merge_into_an_empty_object_and_with_an_empty_object(normal_data):
    x = normal_data[:100]
    s = NeuronStats(6).merge(NeuronStats(6).update(x))
    s.merge(NeuronStats(6))
    assert s.count == 100
    torch.testing.assert_close(s.mean.double(), x.double().mean(0), rtol=1e-6, atol=1e-6)


def test_state_dict_round_trip(normal_data, tmp_path):
    s = _two_pass(normal_data[:500])
    d = s.state_dict()
    assert set(d) == {"count", "mean", "m2", "mean_abs", "min", "max", "hist", "phase"}
    assert all(isinstance(v, torch.Tensor) for v in d.values())
    for back in (NeuronStats.from_state_dict(d), NeuronStats.load(s.save(tmp_path / "s.safetensors"))):
        assert back.count == s.count and (back.n_neurons, back.n_bins) == (6, 100)
        for name in ("mean", "mean_abs", "var", "std", "min", "max", "peak", "histogram"):
            assert torch.equal(getattr(back, name), getattr(s, name)), name
        with pytest.raises(RuntimeError, match="frozen"):
            back.update(normal_data[:2])
    assert [p.name for p in tmp_path.iterdir()] == ["s.safetensors"]  # no temporary file left


def test_first_pass_state_round_trip_allows_more_updates(normal_data):
    s = NeuronStats(6).update(normal_data[:10])
    back = NeuronStats.from_state_dict(s.state_dict())
    back.update(normal_data[10:20])
    s.update(normal_data[10:20])
    assert torch.equal(back.mean, s.mean) and back.count == 20
    with pytest.raises(RuntimeError, match="update_histogram"):
        back.histogram


def test_bad_state_and_missing_file_raise(tmp_path):
    d = NeuronStats(3).update(torch.zeros(2, 3)).state_dict()
    with pytest.raises(ValueError, match="expected keys"):
        NeuronStats.from_state_dict({k: v for k, v in d.items() if k != "m2"})
    with pytest.raises(ValueError, match="'mean' of shape"):
        NeuronStats.from_state_dict({**d, "mean": torch.zeros(4, dtype=torch.float64)})
    with pytest.raises(FileNotFoundError):
        NeuronStats.load(tmp_path / "absent.safetensors")


# ---------------------------------------------------------------------------------------------
# bad input at the boundary

def test_bad_constructor_arguments():
    for bad in (0, -1, 2.0, True, "3"):
        with pytest.raises(ValueError, match="n_neurons"):
            NeuronStats(bad)
    with pytest.raises(ValueError, match="n_bins"):
        NeuronStats(3, n_bins=0)


@pytest.mark.parametrize("shape", [(4,), (4, 2), (4, 3, 1), (3, 4)])
def test_wrong_shapes_name_expected_and_got(shape):
    s = NeuronStats(3)
    with pytest.raises(ValueError, match=r"expected shape \(n_samples, 3\), got " + re_shape(shape)):
        s.update(torch.zeros(shape))
    s.update(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="got"):
        s.update_histogram(torch.zeros(shape))


def re_shape(shape) -> str:
    return re.escape(str(tuple(shape)))


def test_wrong_types_raise_type_error():
    s = NeuronStats(2)
    with pytest.raises(TypeError, match="floating-point"):
        s.update(torch.zeros(3, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        s.update(np.zeros((3, 2)))


def test_wrong_order_raises():
    s = NeuronStats(2)
    with pytest.raises(RuntimeError, match="before any update"):
        s.update_histogram(torch.zeros(3, 2))
    with pytest.raises(RuntimeError, match="no samples"):
        s.mean
    s.update(torch.zeros(0, 2))  # an empty batch is no data
    with pytest.raises(RuntimeError, match="before any update"):
        s.update_histogram(torch.zeros(3, 2))
    s.update(torch.ones(3, 2))
    with pytest.raises(RuntimeError, match="no update_histogram"):
        s.peak
    s.update_histogram(torch.ones(3, 2))
    with pytest.raises(RuntimeError, match="frozen"):
        s.update(torch.ones(3, 2))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_first_pass_raises_and_leaves_the_state_alone(bad):
    s = NeuronStats(3).update(torch.ones(4, 3))
    before = s.state_dict()
    x = torch.zeros(5, 3)
    x[2, 1] = bad
    with pytest.raises(FloatingPointError, match="1 non-finite"):
        s.update(x)
    after = s.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_overflowing_squares_raise():
    with pytest.raises(FloatingPointError, match="overflow"):
        NeuronStats(1).update(torch.tensor([[-3e38], [3e38]]))


def test_non_finite_second_pass_raises_and_poisons_the_object():
    s = NeuronStats(2).update(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    with pytest.raises(FloatingPointError, match="non-finite"):
        s.update_histogram(torch.tensor([[0.5, float("nan")]]))
    with pytest.raises(RuntimeError, match="discard"):
        s.histogram
    with pytest.raises(RuntimeError, match="discard"):
        s.update_histogram(torch.zeros(1, 2))


def test_deferred_finite_check_raises_on_the_next_read():
    s = NeuronStats(2, defer_finite_check=True)
    s.update(torch.tensor([[0.0, float("inf")], [1.0, 1.0]]))  # no error yet
    with pytest.raises(FloatingPointError, match="deferred"):
        s.mean
    with pytest.raises(RuntimeError, match="discard"):
        s.state_dict()
    ok = NeuronStats(2, defer_finite_check=True).update(torch.ones(2, 2))
    ok.update_histogram(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(FloatingPointError):
        ok.histogram


# ---------------------------------------------------------------------------------------------
# properties

_values = st.floats(-1e3, 1e3, width=32, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def _data_and_splits(draw):
    n = draw(st.integers(1, 200))
    d = draw(st.integers(1, 8))
    x = draw(arrays(np.float32, (n, d), elements=_values))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=5)))
    sizes = np.diff([0, *cuts, n]).tolist()
    n_bins = draw(st.sampled_from([1, 3, 10, 100]))
    return torch.from_numpy(x), sizes, n_bins


def _close(a: torch.Tensor, b: torch.Tensor, scale: float) -> None:
    torch.testing.assert_close(a.double(), b.double(), rtol=1e-5, atol=1e-5 * scale)


@settings(max_examples=60, deadline=None)
@given(_data_and_splits())
def test_results_do_not_depend_on_how_samples_are_batched(case):
    x, sizes, n_bins = case
    whole = _two_pass(x, n_bins=n_bins)
    split = _two_pass(x, n_bins=n_bins, splits=sizes)
    scale = float(x.abs().max()) + 1.0
    assert split.count == whole.count == x.shape[0]
    assert torch.equal(split.min, whole.min) and torch.equal(split.max, whole.max)
    assert torch.equal(split.histogram, whole.histogram)
    assert torch.equal(split.peak, whole.peak)
    _close(split.mean, whole.mean, scale)
    _close(split.mean_abs, whole.mean_abs, scale)
    _close(split.var, whole.var, scale * scale)


@settings(max_examples=60, deadline=None)
@given(_data_and_splits())
def test_invariants(case):
    x, sizes, n_bins = case
    s = _two_pass(x, n_bins=n_bins, splits=sizes)
    scale = float(x.abs().max()) + 1.0
    assert s.histogram.sum(1).tolist() == [x.shape[0]] * x.shape[1]
    varying = s.max > s.min  # torch.histc widens an empty range; a constant neuron fills bin 0 here
    assert torch.equal(s.histogram[varying], _reference_histc(x[:, varying], n_bins))
    assert bool((s.histogram[~varying, 0] == x.shape[0]).all())
    assert bool((s.min <= s.peak).all() and (s.peak <= s.max).all())
    assert bool((s.mean_abs >= s.mean.abs() - 1e-6 * scale).all())
    assert bool((s.var >= 0).all() and (s.std >= 0).all())
    _close(s.mean, x.double().mean(0), scale)
    _close(s.var, x.double().var(0, correction=0), scale * scale)


@settings(max_examples=40, deadline=None)
@given(_data_and_splits(), st.data())
def test_merge_equals_single_pass_property(case, data):
    x, _, n_bins = case
    k = data.draw(st.integers(0, x.shape[0]))
    whole = _two_pass(x, n_bins=n_bins)
    a, b = NeuronStats(x.shape[1], n_bins=n_bins), NeuronStats(x.shape[1], n_bins=n_bins)
    a.update(x[:k])
    b.update(x[k:])
    a.merge(b)
    scale = float(x.abs().max()) + 1.0
    assert a.count == whole.count
    assert torch.equal(a.min, whole.min) and torch.equal(a.max, whole.max)
    _close(a.mean, whole.mean, scale)
    _close(a.var, whole.var, scale * scale)
    w1, w2 = (NeuronStats.from_state_dict(a.state_dict()) for _ in range(2))
    w1.update_histogram(x[:k])
    w2.update_histogram(x[k:])
    assert torch.equal(w1.merge(w2, histogram_only=True).histogram, whole.histogram)


@settings(max_examples=30, deadline=None)
@given(_data_and_splits())
def test_state_dict_round_trip_property(case):
    x, sizes, n_bins = case
    s = _two_pass(x, n_bins=n_bins, splits=sizes)
    back = NeuronStats.from_state_dict(s.state_dict())
    for name in ("count", "mean", "mean_abs", "var", "min", "max", "histogram", "peak"):
        a, b = getattr(s, name), getattr(back, name)
        assert (a == b) if isinstance(a, int) else torch.equal(a, b), name
