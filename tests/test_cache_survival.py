"""Long runs that survive: a damaged cache entry is named and rebuilt; an interrupted sweep resumes.

The ABL experiment runs here on a tiny random Llama with tiny data (``abl_experiment`` with its model
and inputs replaced), so the whole grid (3 seeds x 9 fractions x 4 methods) takes about a second.
"""
from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pytest
import torch

from core.abl import ablation
from core import cache
from core.abl.ablation import AblationSweep
from core.neurons.activations import collect_stats
from core.cache import CacheDamagedWarning, Checkpoint, load_cached, load_or_rebuild, partial_path
from core.evaluate import EvalSet
from core.zoo.models import LoadedModel
from core.zoo.registry import ModelSpec
from core.profiles import get_profile
from tests.tiny_models import VOCAB, build


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_CLAIMS_CACHE", str(tmp_path / "cache"))


# --- load_or_rebuild / load_cached ---------------------------------------------------------------

def test_load_or_rebuild_builds_once_then_loads(tmp_path):
    path, built = tmp_path / "entry.json", []

    def build():
        built.append(1)
        return {"x": 1}

    def save(value, p):
        cache.atomic_write_json(p, value)

    def load(p):
        return json.loads(p.read_text())

    assert load_or_rebuild(path, load, build, save=save) == {"x": 1}
    assert load_or_rebuild(path, load, build, save=save) == {"x": 1} and len(built) == 1


def test_a_damaged_entry_is_named_in_a_warning_removed_and_rebuilt(tmp_path):
    path = tmp_path / "entry.json"
    path.write_text('{"x": ')  # a truncated write of another tool
    with pytest.warns(CacheDamagedWarning, match=rf"{path}.*JSONDecodeError.*rebuilding"):
        value = load_or_rebuild(path, lambda p: json.loads(p.read_text()), lambda: {"x": 2},
                                save=lambda v, p: cache.atomic_write_json(p, v))
    assert value == {"x": 2} and json.loads(path.read_text()) == {"x": 2}
    folder = tmp_path / "model-folder"
    folder.mkdir()
    (folder / "card.json").write_text("{")
    with pytest.warns(CacheDamagedWarning, match=str(folder)):
        assert load_cached(folder, lambda p: json.loads((p / "card.json").read_text())) is None
    assert not folder.exists()  # removed, so that the caller builds it again
    assert load_cached(tmp_path / "absent.npz", np.load) is None


def _loaders():
    from core.bcl.experiment import read_json
    from core.mod.experiment import load_side_stats
    from core.mod.result import ModResult
    from core.bcl.representations import Representations

    return {"abl sweep": AblationSweep.load, "mod result": ModResult.load, "mod statistics": load_side_stats,
            "bcl representations": Representations.load, "bcl json": read_json, "moefication": np.load}


@pytest.mark.parametrize("what", list(_loaders()))
def test_every_experiment_cache_loader_detects_a_truncated_file(tmp_path, what):
    good = tmp_path / "good.npz"
    with open(good, "wb") as f:
        np.savez_compressed(f, x=np.arange(1000))
    path = tmp_path / f"entry{'.json' if 'json' in what else '.npz'}"
    path.write_bytes(good.read_bytes()[:200])
    with pytest.warns(CacheDamagedWarning, match=str(path)):
        assert load_cached(path, _loaders()[what]) is None


def test_a_truncated_statistics_cache_is_recomputed(tmp_path):
    model = build("llama")
    data = EvalSet("causal", torch.randint(5, VOCAB, (3, 10), generator=torch.Generator().manual_seed(0)))
    first = collect_stats(model, "attn", data, key="damaged")
    path = tmp_path / "cache" / "stats" / "damaged.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(CacheDamagedWarning, match=str(path)):
        again = collect_stats(model, "attn", data, key="damaged")
    assert all(torch.equal(a.peak, b.peak) for a, b in zip(first, again))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        collect_stats(model, "attn", data, key="damaged")  # rewritten whole: loads without a warning


# --- the ABL experiment: damaged entry, interrupted sweep ----------------------------------------

def _tiny_abl(monkeypatch):
    """abl_experiment on a tiny random Llama: its model and inputs replaced, everything else real."""
    lm = LoadedModel(name="tiny", spec=ModelSpec("tiny", "small", "causal", "tests"), model=build("llama"),
                     tokenizer=None, card={"cache_key": "tiny-llama-seed-0"})
    monkeypatch.setattr("core.zoo.models.load_model", lambda name, device="cpu": lm)
    g = torch.Generator().manual_seed(0)
    collect = EvalSet("causal", torch.randint(5, VOCAB, (4, 12), generator=g))
    evalset = EvalSet("causal", torch.randint(5, VOCAB, (4, 12), generator=g))
    resample = {"resample-ids": {"input_ids": torch.randint(5, VOCAB, (1, 12), generator=g)}}
    monkeypatch.setattr(ablation, "_text_inputs", lambda *a, **k: (collect, evalset, resample, {}, {}))
    return lambda: ablation.abl_experiment("tiny", get_profile("ci"), progress=False)


def _entry(tmp_path):
    entries = list((tmp_path / "cache" / "abl").glob("tiny-*.npz"))
    assert len(entries) == 1
    return entries[0]


def _same(a: AblationSweep, b: AblationSweep) -> None:
    assert a.methods == b.methods and a.fractions == b.fractions and a.seeds == b.seeds
    assert np.array_equal(a.top1, b.top1) and np.array_equal(a.ce, b.ce)
    assert np.array_equal(a.peak_over_std, b.peak_over_std) and a.info == b.info


def test_a_truncated_abl_sweep_is_named_and_rebuilt(tmp_path, monkeypatch):
    run = _tiny_abl(monkeypatch)
    first = run()
    path = _entry(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.warns(CacheDamagedWarning, match=rf"{path}.*(BadZipFile|EOFError|ValueError)"):
        again = run()
    _same(first, again)
    _same(first, AblationSweep.load(path))


class Interrupt(KeyboardInterrupt):
    """Ctrl-C, injected after a number of evaluations."""


def test_an_interrupted_abl_sweep_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    run = _tiny_abl(monkeypatch)
    real = ablation.evaluate
    calls = []

    def counting(*a, after=None, **k):
        calls.append(1)
        if after is not None and len(calls) > after:
            raise Interrupt
        return real(*a, **k)

    monkeypatch.setattr(ablation, "evaluate", counting)
    uninterrupted = run()
    total = len(calls)
    assert total == 1 + 3 * 9 * 4  # the unablated model, then seeds x fractions x methods
    path = _entry(tmp_path)
    path.unlink()
    assert not partial_path(path).exists()  # a finished sweep leaves no checkpoint behind

    k = 40
    calls.clear()
    monkeypatch.setattr(ablation, "evaluate", lambda *a, **kw: counting(*a, after=k, **kw))
    with pytest.raises(Interrupt):
        run()
    assert not path.exists() and partial_path(path).exists()
    assert len(Checkpoint(partial_path(path), key="whatever")) == 0  # another key: nothing reused
    calls.clear()
    monkeypatch.setattr(ablation, "evaluate", counting)
    resumed = run()
    assert len(calls) == total - k  # only the evaluations the interrupted run had not finished
    _same(uninterrupted, resumed)
    assert not partial_path(path).exists()


# --- Checkpoint ----------------------------------------------------------------------------------

def test_a_checkpoint_written_every_step_survives_a_killed_process(tmp_path):
    path = tmp_path / "entry.npz.partial"
    ck = Checkpoint(path, key="k", interval_s=0)
    for i in range(3):
        ck.step(("step", i), lambda i=i: np.full(4, i))
    # no flush, no exception handler ran (as after SIGKILL): a new process sees every finished step
    again = Checkpoint(path, key="k")
    assert again.resumed == 3 and np.array_equal(again[("step", 2)], np.full(4, 2))
    assert again.step(("step", 1), lambda: pytest.fail("recomputed a finished step")).tolist() == [1] * 4
    again.complete()
    assert not path.exists()


def test_a_checkpoint_holds_back_writes_within_its_interval_but_not_on_an_error(tmp_path):
    path = tmp_path / "p.partial"
    ck = Checkpoint(path, key="k", interval_s=3600)
    ck.step("a", lambda: 1)
    assert not path.exists()  # within the interval
    with pytest.raises(ZeroDivisionError):
        ck.step("b", lambda: 1 / 0)
    assert Checkpoint(path, key="k").resumed == 1  # written on the way out


def test_a_damaged_checkpoint_is_named_and_ignored(tmp_path):
    path = tmp_path / "p.partial"
    path.write_bytes(pickle.dumps({"format": Checkpoint.FORMAT, "key": "k", "steps": {"a": 1}})[:20])
    with pytest.warns(CacheDamagedWarning, match=str(path)):
        ck = Checkpoint(path, key="k")
    assert ck.resumed == 0


@pytest.mark.parametrize("error", [ImportError("no module named 'sentencepiece'"), MemoryError()])
def test_an_error_that_is_no_fault_of_the_entry_passes_through_and_keeps_it(tmp_path, error):
    path = tmp_path / "entry.json"
    path.write_text("{}")

    def load(p):
        raise error

    with pytest.raises(type(error)):
        load_cached(path, load)
    assert path.exists()


def test_an_interrupted_mod_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    from core.mod import experiment
    from tests.test_modularity import tiny_image_data, vit_pair

    trained, random = vit_pair()
    data = tiny_image_data(trained, n_subsets=3, per=30)
    real, calls = experiment.evaluate, []

    def counting(*a, after=None, **k):
        calls.append(1)
        if after is not None and len(calls) > after:
            raise Interrupt
        return real(*a, **k)

    def run(path):
        return experiment.run_mod(trained, random, name="tiny", data=data, batch_size=30, stats_key="t", k=8,
                                  progress=False, null_draws=5, checkpoint=Checkpoint(path, key="mod"))

    monkeypatch.setattr(experiment, "evaluate", counting)
    uninterrupted = run(tmp_path / "a.partial")
    total = len(calls)
    calls.clear()
    monkeypatch.setattr(experiment, "evaluate", lambda *a, **kw: counting(*a, after=total // 2, **kw))
    with pytest.raises(Interrupt):
        run(tmp_path / "b.partial")
    finished = len(Checkpoint(tmp_path / "b.partial", key="mod"))
    assert finished > 0  # searches or cross-pruning rows kept
    calls.clear()
    monkeypatch.setattr(experiment, "evaluate", counting)
    resumed = run(tmp_path / "b.partial")
    assert len(calls) < total  # the finished steps were not evaluated again
    (want, want_meta), (got, got_meta) = uninterrupted.to_flat(), resumed.to_flat()
    assert want_meta["status"] == got_meta["status"] and want.keys() == got.keys()
    for name, a in want.items():
        assert np.array_equal(a, got[name], equal_nan=True), name
