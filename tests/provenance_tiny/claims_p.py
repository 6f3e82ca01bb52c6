"""A claim-like module on a tiny checkpoint folder, run by ``tests/test_provenance.py`` in a subprocess
(``pytest tests/provenance_tiny/claims_p.py --run-dir DIR``; not collected by ``pytest tests``): it loads
the model through the zoo, records its "experiment" as computed, and hands a measurement to
``conclude``, whose result file must then carry the provenance."""
from __future__ import annotations

import os

import numpy as np

from claims._claim import Claim, Outcome
from core.cache import cache_dir, note_experiment
from core.inference.bootstrap import cluster_bootstrap
from core.inference.rules import directional
from core.zoo.models import load_model
from core.zoo.own import resolve

MODEL = resolve(os.environ["PROVENANCE_TINY_MODEL"])
RULE = "replicated if the mean of 1..19 > 0 with interval excluding 0"
TST_9 = Claim("TST-9", "a toy statement", "the mean of 1..19", RULE, None, ("causal",), paper="ABL")


def test_tst_9(conclude):
    load_model(MODEL)
    note_experiment("abl", MODEL, cache_dir("abl") / "toy-entry", computed=True)
    est = cluster_bootstrap(np.arange(1.0, 20.0), where="toy")
    conclude(TST_9, MODEL, Outcome(verdict=directional(est), statistic=est, statistic_name="mean",
                                       sample_sizes={"n": 19}, seeds=[0], data="1..19"))
