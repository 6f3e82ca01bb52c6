"""The random twin built where it runs, in the trained model's dtype, and one model-cache key per device.
No GPU is needed except for the test marked ``gpu``."""
from __future__ import annotations

import pytest
import torch

from core.zoo import checkpoints, models
from core.zoo.registry import RANDOM_SEED
from tests import tiny_models


def _config(family: str):
    return tiny_models.build(family).config


def _former_twin(kind: str, config):
    """The twin as the harness first built it: fp32 on the CPU under the seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        return checkpoints.AUTO[kind].from_config(config, dtype=torch.float32)


@pytest.mark.parametrize("family, kind", [("llama", "causal"), ("bert", "masked"), ("vit", "image")])
def test_cpu_twin_is_bit_for_bit_the_former_one(family, kind):
    config = _config(family)
    want = _former_twin(kind, config).state_dict()
    for got in (checkpoints.twin_of_kind(kind, config),
                checkpoints.twin_of_kind(kind, config, dtype=torch.float32, device="cpu")):
        sd = got.state_dict()
        assert sd.keys() == want.keys()
        assert all(torch.equal(sd[k], want[k]) and sd[k].dtype == torch.float32 for k in want)


def test_twin_in_a_dtype_leaves_the_global_rng_alone():
    config = _config("llama")
    before = torch.random.get_rng_state()
    twin = checkpoints.twin_of_kind("causal", config, dtype=torch.bfloat16)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert {p.dtype for p in twin.parameters()} == {torch.bfloat16}
    again = checkpoints.twin_of_kind("causal", config, dtype=torch.bfloat16)
    assert all(torch.equal(a, b) for a, b in zip(twin.state_dict().values(), again.state_dict().values()))


@pytest.mark.gpu
def test_gpu_twin_is_built_on_the_device_in_bf16():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    config = _config("llama")
    before = torch.cuda.get_rng_state()
    twin = checkpoints.twin_of_kind("causal", config, dtype=torch.bfloat16, device="cuda")
    assert torch.equal(torch.cuda.get_rng_state(), before)
    assert {p.device.type for p in twin.parameters()} == {"cuda"}
    assert {p.dtype for p in twin.parameters()} == {torch.bfloat16}
    again = checkpoints.twin_of_kind("causal", config, dtype=torch.bfloat16, device="cuda")
    assert all(torch.equal(a, b) for a, b in zip(twin.state_dict().values(), again.state_dict().values()))
    # the same distribution as the CPU twin: every weight matrix's std within 10% of the CPU one's
    cpu = checkpoints.twin_of_kind("causal", config).state_dict()
    for k, v in twin.state_dict().items():
        if v.ndim == 2 and v.numel() >= 1000:
            assert abs(v.float().std().item() / cpu[k].std().item() - 1) < 0.1, k


@pytest.mark.parametrize("n_gpus, device, expected", [
    (0, "cpu", "cpu"),
    (1, "cuda", "cuda:0"),
    (1, "cuda:0", "cuda:0"),
    (1, torch.device("cuda"), "cuda:0"),
    (2, "cuda", "cuda"),  # several GPUs: "cuda" spreads a model over all of them
    (2, "cuda:1", "cuda:1"),
])
def test_device_key_names_one_place_once(monkeypatch, n_gpus, device, expected):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n_gpus)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n_gpus > 0)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert models.device_key(device) == expected


def test_cuda_and_cuda_0_share_one_cache_entry(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    seen = []
    monkeypatch.setattr(models, "load_once", lambda name, device: seen.append((name, device)) or (name, device))
    assert models.load_model("opt-1.3b", device="cuda") == models.load_model("opt-1.3b", device="cuda:0")
    assert seen == [("opt-1.3b", "cuda:0")] * 2


def test_device_key_rejects_what_is_not_a_device():
    with pytest.raises(RuntimeError):
        models.device_key("gpu-please")
