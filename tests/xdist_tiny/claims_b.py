"""Toy claim TST-2 on tiny random models (see ``common.py``)."""
from __future__ import annotations

import pytest

from tests.xdist_tiny.common import TINY, TST_2, measure, tiny  # noqa: F401 - tiny is a fixture


@pytest.mark.claim("TST-2")
@pytest.mark.parametrize("model", list(TINY))
def test_tst_2(model, tiny, conclude):  # noqa: F811
    conclude(TST_2, model, measure(tiny(model)["spread"], "logit standard deviation, nats"))
