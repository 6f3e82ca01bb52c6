"""Full-tier loads across GPUs: accelerate's device_map="auto" when several CUDA devices are visible.

No GPU is needed: torch.cuda's device count and the Hugging Face loaders are replaced by fakes that
record what they were asked for; the model is a tiny random one (tests/tiny_models.py).
"""
from __future__ import annotations

import pytest
import torch

from core.zoo import checkpoints, models
from core.zoo import own as zoo_own
from tests import tiny_models


class _FakeAuto:
    """Stands in for transformers.AutoModelFor*: records from_pretrained's keyword arguments."""

    calls: list[dict] = []
    model: torch.nn.Module | None = None

    @classmethod
    def from_pretrained(cls, hub_id, **kw):
        cls.calls.append(kw)
        model = cls.model
        if kw.get("device_map") == "auto":
            model.hf_device_map = {"model.decoder.layers.0": 0, "model.decoder.layers.1": 1}
        if kw.get("output_loading_info"):
            return model, {"missing_keys": set(), "unexpected_keys": set(), "mismatched_keys": []}
        return model


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    _FakeAuto.model = tiny_models.build("opt").train()  # built before CUDA is faked
    cfg = _FakeAuto.model.config
    monkeypatch.setattr(models.transformers.AutoConfig, "from_pretrained", lambda *a, **k: cfg)
    monkeypatch.setattr(models.transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: None)
    monkeypatch.setitem(checkpoints.AUTO, "causal", _FakeAuto)
    monkeypatch.setattr(zoo_own, "hub_snapshot", lambda hub_id: tmp_path / "snapshots" / ("0" * 40))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    _FakeAuto.calls = []
    models.load_once.cache_clear()
    yield monkeypatch
    models.load_once.cache_clear()


@pytest.mark.parametrize("n_gpus, device, expected", [
    (2, "cuda", {"device_map": "auto"}),
    (8, "cuda", {"device_map": "auto"}),
    (1, "cuda", {}),
    (2, "cuda:1", {}),  # an explicit GPU keeps the model on it
    (2, "cpu", {}),
])
def test_placement(fake_hub, n_gpus, device, expected):
    fake_hub.setattr(torch.cuda, "device_count", lambda: n_gpus)
    assert checkpoints.device_placement(device) == expected


def test_full_tier_load_spreads_over_gpus(fake_hub):
    fake_hub.setattr(torch.cuda, "device_count", lambda: 2)
    lm = models.load_model("opt-1.3b", device="cuda")  # .to("cuda") would fail on this machine
    assert _FakeAuto.calls == [{"dtype": torch.bfloat16, "output_loading_info": True, "local_files_only": True,
                                "device_map": "auto"}]
    assert lm.model.hf_device_map and not lm.model.training


def test_one_gpu_or_cpu_loads_without_device_map(fake_hub):
    fake_hub.setattr(torch.cuda, "device_count", lambda: 1)
    lm = models.load_model("opt-1.3b", device="cpu")
    assert _FakeAuto.calls == [{"dtype": torch.float32, "output_loading_info": True, "local_files_only": True}]
    assert lm.device == torch.device("cpu")
