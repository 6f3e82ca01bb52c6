"""Extra memory of the statistics passes on smollm2-135m (the harness issue's target).

Target: the two streaming passes (moments, then the 100-bin histogram for the peak) over every MLP
and attention pre-out neuron add at most 100 MB to a bare forward pass, and the extra does not grow
with the number of tokens. Each measurement runs in a fresh interpreter: it loads the model, runs bare
forward passes over the tokens (peak resident memory A), then both statistics passes over the same
tokens (peak B); the extra is B - A, reported in ``extra_info`` (MB) for 1,024 and 8,192 tokens.

    .venv/bin/pytest benchmark/test_bench_memory.py --benchmark-only
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT_MB = 100.0

_SCRIPT = r"""
import json, resource, sys, torch
from core.zoo import sites
from core.errors import MissingAssetError
from core.zoo.models import load_model
from core.neurons.stats import NeuronStats

n_windows, seq_len, batch = int(sys.argv[1]), 128, 8
try:
    model = load_model("smollm2-135m").model
except MissingAssetError as e:
    print(json.dumps({"skip": e.reason})); sys.exit(0)
ids = torch.randint(100, 40_000, (n_windows, seq_len), generator=torch.Generator().manual_seed(0))
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB -> MB
with torch.inference_mode():
    for i in range(0, n_windows, batch):
        model(input_ids=ids[i:i + batch])
    bare = peak()
    stats = {s: [NeuronStats(sites.site_width(model, s)) for _ in range(sites.n_layers(model, s))]
             for s in ("mlp", "attn")}
    for method in ("update", "update_histogram"):
        with sites.trace(model, "mlp", lambda l, x: getattr(stats["mlp"][l], method)(x.reshape(-1, x.shape[-1]))), \
                sites.trace(model, "attn", lambda l, x: getattr(stats["attn"][l], method)(x.reshape(-1, x.shape[-1]))):
            for i in range(0, n_windows, batch):
                model(input_ids=ids[i:i + batch])
state = sum(t.numel() * t.element_size() for ss in stats.values() for s in ss
            for t in s.state_dict().values()) / 2**20
print(json.dumps({"bare_mb": bare, "stats_mb": peak(), "state_mb": state}))
"""


def _measure(n_windows: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(n_windows)], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.benchmark(group="smollm2 statistics memory")
@pytest.mark.parametrize("n_windows", [8, 64], ids=["1024-tokens", "8192-tokens"])
def test_statistics_extra_memory(benchmark, n_windows):
    res = benchmark.pedantic(_measure, args=(n_windows,), rounds=1, iterations=1)
    if "skip" in res:
        pytest.skip(res["skip"])
    extra = res["stats_mb"] - res["bare_mb"]
    benchmark.extra_info.update(tokens=n_windows * 128, extra_mb=round(extra, 1),
                                state_mb=round(res["state_mb"], 1), bare_peak_mb=round(res["bare_mb"], 1))
    print(f"\n{n_windows * 128} tokens: extra peak memory {extra:.1f} MB "
          f"(statistics state {res['state_mb']:.1f} MB)")
    assert extra <= LIMIT_MB, f"statistics passes add {extra:.1f} MB > {LIMIT_MB} MB"
