"""The one cached-experiment pattern (:func:`core.cache.cache_entry`, :func:`core.cache.cached_experiment`)
and the one model identity (:func:`core.zoo.models.model_identity`) that the three papers' experiments use.
"""
from __future__ import annotations

import json
import string

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import cache
from core.cache import CacheDamagedWarning, cache_entry, cached_experiment, experiment_record, partial_path
from core.zoo.models import LoadedModel, model_identity, weights_id
from core.zoo.registry import ModelSpec
from tests.tiny_models import build


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_CLAIMS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEURON_CLAIMS_EXPERIMENT_CACHE", raising=False)
    monkeypatch.setattr(cache, "_EXPERIMENTS", {})


def _save(value, path):
    cache.atomic_write_json(path, value)


def _load(path):
    return json.loads(path.read_text())


# --- the key -----------------------------------------------------------------------------------

names = st.text(string.ascii_lowercase, min_size=1, max_size=6)
values = st.one_of(st.integers(-10**6, 10**6), st.text(max_size=8), st.booleans(), st.none(),
                   st.lists(st.integers(0, 9), max_size=4))
inputs = st.dictionaries(names, values, min_size=1, max_size=6)
_FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _key(identity, version, fields, experiment="e"):
    return cache_entry("abl", experiment, version, identity, fields, label="m", suffix=".json").key


@_FAST
@given(inputs, st.data())
def test_the_key_changes_when_any_input_changes_and_not_otherwise(fields, data):
    identity = {"name": "m", "weights": "recipe:abc", "dtype": "float32"}
    key = _key(identity, 1, fields)
    assert _key(dict(identity), 1, dict(reversed(list(fields.items())))) == key  # order does not matter
    name = data.draw(st.sampled_from(sorted(fields)))
    other = data.draw(values.filter(lambda v: json.dumps(v) != json.dumps(fields[name])))
    assert _key(identity, 1, {**fields, name: other}) != key
    assert _key(identity, 1, {**fields, name + "x": fields[name]}) != key  # another input
    assert _key(identity, 2, fields) != key  # the version
    assert _key(identity, 1, fields, experiment="f") != key  # the experiment
    assert _key({**identity, "dtype": "bfloat16"}, 1, fields) != key  # the model's identity


def test_the_entry_is_named_by_label_and_key_in_its_kind_folder(tmp_path):
    entry = cache_entry("mod", "mod-side-stats", 1, "k", {"subset": "a/b"}, label="m:random-a/b",
                        suffix=".npz", folder=("stats",))
    assert entry.kind == "mod" and len(entry.key) == 16
    assert entry.path == tmp_path / "cache" / "mod" / "stats" / f"m_random-a_b-{entry.key}.npz"


def test_inputs_that_are_not_a_dict_are_refused():
    with pytest.raises(TypeError, match="expected a dict.*got list"):
        cache_entry("abl", "abl", 1, "m", [("a", 1)], label="m", suffix=".npz")


# --- load or compute, lock, checkpoint, note -------------------------------------------------------

def test_computes_once_then_loads_and_notes_which():
    entry = cache_entry("bcl", "bcl", 1, "m", {"n": 1}, label="m", suffix=".json")
    calls = []

    def compute():
        calls.append(1)
        return {"x": len(calls)}

    assert cached_experiment(entry, compute, load=_load, save=_save, note="m") == {"x": 1}
    assert experiment_record("bcl", "m")["status"] == "computed"
    assert cached_experiment(entry, compute, load=_load, save=_save, note="m") == {"x": 1} and len(calls) == 1
    assert experiment_record("bcl", "m")["status"] == "partly re-read"
    assert experiment_record("bcl", "m")["re_read"] == [str(entry.path)]
    assert not partial_path(entry.path).exists()


def test_a_sub_cache_is_not_noted_as_an_experiment():
    entry = cache_entry("bcl", "bcl-repr", 1, "m", {}, label="repr-m", suffix=".json")
    cached_experiment(entry, lambda: [1], load=_load, save=_save)
    assert experiment_record("bcl", "m") is None


def test_a_damaged_entry_is_named_and_rebuilt():
    entry = cache_entry("abl", "abl", 1, "m", {}, label="m", suffix=".json")
    entry.path.parent.mkdir(parents=True, exist_ok=True)
    entry.path.write_text('{"x": ')
    with pytest.warns(CacheDamagedWarning, match=rf"{entry.path}.*JSONDecodeError"):
        assert cached_experiment(entry, lambda: {"x": 2}, load=_load, save=_save, note="m") == {"x": 2}
    assert _load(entry.path) == {"x": 2}
    assert experiment_record("abl", "m")["status"] == "computed"


def test_an_error_that_is_no_fault_of_the_entry_passes_through_and_keeps_it():
    entry = cache_entry("abl", "abl", 1, "m", {}, label="m", suffix=".json")
    entry.path.parent.mkdir(parents=True, exist_ok=True)
    entry.path.write_text("{}")

    def load(path):
        raise ImportError("no module named 'sentencepiece'")

    with pytest.raises(ImportError):
        cached_experiment(entry, lambda: pytest.fail("computed"), load=load, save=_save)
    assert entry.path.exists()


class Interrupt(KeyboardInterrupt):
    """Ctrl-C in the middle of a computation."""


def test_an_interrupted_computation_resumes_from_its_checkpoint_under_the_entry_key():
    entry = cache_entry("abl", "abl", 1, "m", {"steps": 6}, label="m", suffix=".json")
    done = []

    def square(i, stop):
        if i == stop:
            raise Interrupt  # inside a step, as Ctrl-C in a forward pass: the finished steps are written
        done.append(i)
        return i * i

    def compute(checkpoint, stop=None):
        return [checkpoint.step(i, lambda i=i: square(i, stop)) for i in range(6)]

    with pytest.raises(Interrupt):
        cached_experiment(entry, lambda ck: compute(ck, stop=4), load=_load, save=_save, checkpoint=True)
    assert not entry.path.exists() and cache.Checkpoint(partial_path(entry.path), key=entry.key).resumed == 4
    done.clear()
    assert cached_experiment(entry, compute, load=_load, save=_save, checkpoint=True) == [0, 1, 4, 9, 16, 25]
    assert done == [4, 5]  # only the steps the interrupted run had not finished
    assert not partial_path(entry.path).exists()


def test_it_computes_under_the_entry_lock():
    entry = cache_entry("abl", "abl", 1, "m", {}, label="m", suffix=".json")
    held = []

    def compute():
        from filelock import FileLock, Timeout

        try:
            FileLock(str(entry.path.parent / f".{entry.path.name}.lock"), timeout=0).acquire()
            held.append(False)
        except Timeout:
            held.append(True)
        return 1

    cached_experiment(entry, compute, load=_load, save=_save)
    assert held == [True]  # another holder of the lock (another process, in practice) is refused
    cached_experiment(cache_entry("abl", "abl", 1, "n", {}, label="n", suffix=".json"), compute, load=_load,
                      save=_save, lock=False)
    assert held == [True, False]  # lock=False: the caller holds it


# --- the model identity ------------------------------------------------------------------------------

def _loaded(name, card, dtype=torch.float32):
    return LoadedModel(name=name, spec=ModelSpec(name.removesuffix(":random"), "small", "causal", "tests"),
                       model=build("llama").to(dtype), tokenizer=None, card=card)


def test_the_identity_of_a_model_by_hand():
    assert model_identity(_loaded("tiny", {"cache_key": "abc"})) == {
        "name": "tiny", "weights": "recipe:abc", "dtype": "float32"}
    assert model_identity(_loaded("tiny", {"cache_key": "abc"}, torch.bfloat16))["dtype"] == "bfloat16"


def test_a_random_twin_is_its_own_identity():
    trained = {"cache_key": "abc"}
    twin = _loaded("tiny:random", {"name": "tiny:random", "seed": 0, "twin_of": trained})
    on_gpu = _loaded("tiny:random", {"name": "tiny:random", "seed": 0, "twin_of": trained,
                                     "init": {"device": "cuda", "dtype": "bfloat16"}})
    ids = [model_identity(_loaded("tiny", trained)), model_identity(twin), model_identity(on_gpu)]
    assert ids[1]["weights"] == weights_id(twin.card) == "random(seed 0) of recipe:abc"
    assert ids[2]["init"] == {"device": "cuda", "dtype": "bfloat16"} and "init" not in ids[1]
    assert len({_key(i, 1, {}) for i in ids}) == 3  # three entries, not one
