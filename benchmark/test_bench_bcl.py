"""BCL benchmarks (issue targets): the representation pass against a bare forward pass, and
complete-linkage clustering of 9,984 neurons (BERT-base size) on synthetic representations.

Targets: the representation pass (BCL Eq. 1, index_add_ into per-token sums of every residual
neuron) costs at most 1.2x a bare forward pass over the same tokens; clustering 9,984 neurons
finishes, and its time and peak memory are recorded (``extra_info`` of the benchmark row: peak
resident memory in MiB, measured by ``resource.getrusage`` in a fresh process). Compare the rows of
one run:

    flock /tmp/neuron-claims-heavy.lock .venv/bin/pytest benchmark/test_bench_bcl.py \\
        --benchmark-only --benchmark-group-by=group -p no:cacheprovider
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.errors import MissingAssetError

ROOT = Path(__file__).resolve().parents[1]
N_WINDOWS, SEQ_LEN = 8, 128


@pytest.fixture(scope="module", params=["minilm-l6", "smollm2-135m"])
def lm(request):
    from core.zoo.models import load_model

    try:
        lm = load_model(request.param)
    except MissingAssetError as e:
        pytest.skip(e.reason)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20_000, (N_WINDOWS, SEQ_LEN), generator=g)
    return lm, ids


def _bare(model, ids):
    """The same body forward pass that the representation pass runs, without hooks."""
    with torch.inference_mode():
        model.base_model(input_ids=ids)


def _representations(model, ids):
    from core.bcl.representations import token_representations

    token_representations(model, ids, batch_size=N_WINDOWS)


@pytest.mark.benchmark(group="BCL representation pass, 1024 tokens")
def test_bare_forward(benchmark, lm):
    model, ids = lm[0].model, lm[1]
    benchmark.extra_info["model"] = lm[0].name
    benchmark.pedantic(_bare, args=(model, ids), rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group="BCL representation pass, 1024 tokens")
def test_representation_pass(benchmark, lm):
    model, ids = lm[0].model, lm[1]
    benchmark.extra_info["model"] = lm[0].name
    benchmark.pedantic(_representations, args=(model, ids), rounds=5, warmup_rounds=1)


_CLUSTER_SCRIPT = """
import json, resource, sys, time
import numpy as np
from core.bcl.neuron_clusters import cluster_neurons, normalize_rows
n, d = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
# 50 latent directions plus noise: structured like representations, not pure noise
x = normalize_rows(rng.normal(size=(n, 50)) @ rng.normal(size=(50, d)) + rng.normal(size=(n, d)))
t = time.perf_counter()
res = cluster_neurons(x, [20, 50, 200], refine_ks=[50, 200])
print(json.dumps({"seconds": time.perf_counter() - t,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _cluster_in_fresh_process(n: int, d: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _CLUSTER_SCRIPT, str(n), str(d)], cwd=ROOT, check=True,
                         capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.benchmark(group="BCL clustering")
@pytest.mark.parametrize("n_neurons", [9_984])
def test_cluster_bert_base_size(benchmark, n_neurons):
    """9,984 neurons x 2,000 tokens, K = 20, 50, 200, with refinement at 50 and 200."""
    facts = {}

    def run():
        facts.update(_cluster_in_fresh_process(n_neurons, 2_000))

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({"n_neurons": n_neurons, "n_tokens": 2_000, **facts})
