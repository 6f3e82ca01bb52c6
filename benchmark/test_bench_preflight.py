"""The model preflight (core.zoo.preflight) on the small tier's three models: the
checks alone (the model loaded, its inputs made), and the whole cost a claim run pays once per model
(load from the cache, inputs, checks). Target: under 5 s per model on 2 cores.

    .venv/bin/pytest benchmark/test_bench_preflight.py --benchmark-only --benchmark-group-by=group
"""
from __future__ import annotations

import pytest

from core.errors import MissingAssetError

SMALL = ("smollm2-135m", "minilm-l6", "tiny-vit-fmnist")


def _loaded(name: str):
    from core.zoo.models import load_model
    from core.zoo.preflight import preflight_inputs

    try:
        lm = load_model(name)
        return lm, *preflight_inputs(lm)
    except MissingAssetError as e:
        pytest.skip(e.reason)


@pytest.mark.benchmark(group="preflight: checks")
@pytest.mark.parametrize("name", SMALL)
def test_preflight_checks(benchmark, name):
    from core.zoo.preflight import preflight

    lm, x, about = _loaded(name)
    report = benchmark.pedantic(preflight, args=(lm, x), kwargs={"about": about}, rounds=3, iterations=1)
    assert report.passed, report.message()


@pytest.mark.benchmark(group="preflight: load + inputs + checks")
@pytest.mark.parametrize("name", SMALL)
def test_preflight_with_load(benchmark, name):
    from core.zoo import models
    from core.zoo.preflight import preflight

    _loaded(name)  # built into the cache already

    def whole():
        models.load_once.cache_clear()
        lm, x, about = _loaded(name)
        return preflight(lm, x, about=about)

    assert benchmark.pedantic(whole, rounds=2, iterations=1).passed
