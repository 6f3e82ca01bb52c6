"""Toy claims TST-1 and TST-3 on tiny random models (see ``common.py``)."""
from __future__ import annotations

import pytest

from tests.xdist_tiny.common import TINY, TST_1, measure, tiny  # noqa: F401 - tiny is a fixture


@pytest.mark.claim("TST-1")
@pytest.mark.parametrize("model", list(TINY))
def test_tst_1(model, tiny, conclude):  # noqa: F811
    conclude(TST_1, model, measure(tiny(model)["gap"], "max logit - mean logit, nats"))


@pytest.mark.claim("TST-3")
@pytest.mark.parametrize("model", list(TINY))
def test_tst_3(model):
    pytest.skip(f"TST-3 needs an asset that {model} lacks (install: nothing, this is a test)")
