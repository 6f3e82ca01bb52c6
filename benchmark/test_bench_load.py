"""Loading a converted model from the cache (the any-model issue's target: under 2 s for a 135M model).

Times ``load_model("smollm2-135m")`` once the fp32 conversion is cached and transformers' modelling
modules are imported (the first load in a process also pays for those lazy imports):

    .venv/bin/pytest benchmark/test_bench_load.py --benchmark-only
"""
from __future__ import annotations

import pytest

from core.zoo import models
from core.errors import MissingAssetError


@pytest.fixture(scope="module")
def built():
    try:
        models.load_model("smollm2-135m")  # builds the conversion if absent; imports the modules
    except MissingAssetError as e:
        pytest.skip(e.reason)


def _load():
    models.load_once.cache_clear()
    return models.load_model("smollm2-135m")


def test_bench_load_converted_smollm2_from_the_cache(benchmark, built):
    lm = benchmark.pedantic(_load, rounds=3, iterations=1)
    assert lm.kind == "causal"
