"""A toy claim whose "experiment" records a stage time (:mod:`core.timing`), run by
``tests/test_plan.py`` to check that the run's ``run.json`` holds the stage times. Not collected by
``pytest tests`` (the name does not start with ``test_``)."""
from __future__ import annotations

import numpy as np

from core.timing import stage
from tests.xdist_tiny.common import TST_1, measure


def test_timed(conclude):
    with stage("abl sweep", "tiny-llama", on="cpu", evaluations=3):
        values = np.linspace(0.5, 1.5, 64)
    conclude(TST_1, "tiny-llama", measure(values, "max logit - mean logit, nats"))
