"""Claim-like modules on tiny random models, run by ``tests/test_xdist.py`` (serial and ``-n 2``).

``claims_a.py`` and ``claims_b.py`` are not collected by ``pytest tests`` (their names do not start
with ``test_``); the test runs them explicitly: ``pytest tests/xdist_tiny/claims_a.py
tests/xdist_tiny/claims_b.py --run-dir DIR``. They follow the pattern of
``claims/test_peak_ablation.py``: a session fixture (here) computes each model's "experiment" once
per process, through an on-disk cache filled under :func:`core.cache.cache_lock` (so that xdist
workers filling it at once neither corrupt it nor compute an entry twice), writes its curves, and
one test per claim hands its measurement to ``conclude``. Both modules read the same cache entries,
and ``-n 2`` (``--dist loadscope``) runs them on different workers. The claims are toy statements
about tiny random models (``tests/tiny_models.py``), registered in the zoo of the running process
only (this module is imported by those two modules alone).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from claims._claim import Outcome, detail
from core.cache import atomic_path, cache_dir, cache_key, cache_lock
from core.inference.bootstrap import cluster_bootstrap
from core.inference.rules import directional
from core.zoo.registry import MODELS, ModelSpec
from core.results import safe_name, write_curves
from tests import tiny_models

#: zoo name -> (tiny_models family, kind)
TINY = {"tiny-llama": ("llama", "causal"), "tiny-gpt2": ("gpt2", "causal"),
        "tiny-bert": ("bert", "masked")}
for _name, (_family, _kind) in TINY.items():
    MODELS.setdefault(_name, ModelSpec(_name, "small", _kind, "tests/tiny_models.py", papers=("TST",)))

#: Where each computation is logged (one line per cache fill), so the test can count them.
LOG_ENV = "TINY_CLAIMS_LOG"


class ToyClaim:
    """The fields of :class:`claims._claim.Claim` that ``conclude`` reads."""

    def __init__(self, id: str, rule: str):
        self.id, self.rule, self.paper_value = id, rule, None


TST_1 = ToyClaim("TST-1", "replicated if max logit - mean logit > 0 with interval excluding 0")
TST_2 = ToyClaim("TST-2", "replicated if logit spread > 0 with interval excluding 0")


def _experiment(name: str) -> dict:
    """Per-token max-minus-mean logit and logit spread of a tiny model; cached on disk."""
    family = TINY[name][0]
    path = cache_dir("tiny-xdist") / f"{safe_name(name)}-{cache_key(model=name, v=1)}.npz"
    with cache_lock(path):
        if not path.exists():
            logits = tiny_models.logits(tiny_models.build(family, seed=0),
                                        tiny_models.inputs(family, seed=1, batch=4, seq=16))
            arrays = {"gap": (logits.max(-1).values - logits.mean(-1)).flatten().numpy(),
                      "spread": logits.std(-1).flatten().numpy()}
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, **arrays)
            if os.environ.get(LOG_ENV):
                with open(os.environ[LOG_ENV], "a") as log:
                    log.write(f"{name}\n")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def tiny(run_dir):
    done: dict[str, dict] = {}

    def get(model: str) -> dict:
        if model not in done:
            done[model] = _experiment(model)
            write_curves(run_dir, f"tst__{safe_name(model)}",
                         {"experiment": "tst", "model": model, "gap": done[model]["gap"][:8]})
        return done[model]

    return get


def measure(values: np.ndarray, name: str) -> Outcome:
    est = cluster_bootstrap(np.ravel(values), where=name)
    return Outcome(verdict=directional(est), statistic=est, statistic_name=name,
                       details={name: detail(est, "nats")}, sample_sizes={"tokens": values.size},
                       seeds=[0], data="tests/tiny_models.inputs(seed=1, batch=4, seq=16)")
