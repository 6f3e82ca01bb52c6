"""A rehearsal of the full tier in CI: the claims of each paper, end to end through the
same claim modules, fixtures, result files and report as the full tier, on a one-layer cut of the paper's
own architecture at full width (core.zoo.rehearsal), with random weights. It fails if any stage errors:
an error, a failure or a skip of any claim test (a verdict is never gated: a rehearsal model's verdicts
mean nothing, and a non-replicated one is an xfail).

What is cut, and why (2 CPU cores, at most 5 minutes for the three papers):

- depth: one layer of each model (``@1L``), two for MOD, whose MOD-8 and MOD-9 compare layers (a
  bootstrap over layers needs two); every width is the paper's (hidden size, MLP width, heads, KV heads,
  vocabulary and LM head, image size and patches);
- sizes: profile ``rehearsal-ci`` (core.profiles), the ``ci`` design (16 evaluation documents of one
  window each, the same fractions 0-90%, seeds, methods, subsets and readings) with ABL evaluation
  windows of 4 tokens on decoders (16 on masked LMs), 1,024 collection tokens, 8 evaluation and 32
  collection images; MOD with 8 images per class (``Profile.mod`` of ``rehearsal-ci``); BCL on a 4,096-token
  corpus (its ``Profile.bcl``). One full-width forward costs what ~100-1,000 forwards of the small
  tier's models cost, and an ABL sweep is 163 evaluations (109 on a ViT): the ``ci`` sizes at full width
  would take over an hour;
- models, one per code path of each paper: ABL on OPT-1.3B (decoders: every decoder claim, the model
  generating its own resampling text), RoBERTa-large (masked LMs) and ViT-base (images, 224 px through a
  processor built from the config); MOD on the CIFAR-100 ViT-base (MLP width 3,072, the paper's k = 96);
  BCL on BERT-base-uncased. Not here: Mistral-7B's width (the decoder path runs on OPT's; one Mistral
  layer and its 32,000 x 4,096 head cost about twice OPT's per token) and MOD on Mistral-7B-Instruct
  (its MoEfication of 14,336 neurons per layer takes minutes per layer on a CPU).

Measured on the 2-core development machine while other jobs shared it (load 5-6): 8.2 minutes, 351
CPU-seconds (ABL 383 s, MOD 64 s, BCL 44 s of wall time); the ABL module, and in it OPT's sweep, costs most.

``pytest --profile rehearsal --models rehearsal:mistral-7b,...`` runs the papers' sizes on the full depth
(the device run of the GPU issue).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from core.papers import PAPERS

ROOT = Path(__file__).resolve().parents[1]



def _fresh_cache(tmp_path: Path) -> Path:
    """An empty experiment cache that shares the model cache's folders (the small tier's converted
    models, which the stand-in tokenizers and the resampling generator come from) and the data cache:
    every experiment runs, none is read back from an earlier run."""
    from core.cache import cache_dir

    cache = tmp_path / "cache"
    cache.mkdir()
    for shared in ("models", "data"):
        (cache / shared).symlink_to(cache_dir(shared), target_is_directory=True)
    return cache


@pytest.mark.parametrize("paper", PAPERS, ids=lambda p: Path(p.claims).name)
def test_every_claim_of_the_paper_runs_on_its_rehearsal_models(paper, tmp_path):
    """Every claim of the paper's claims module on its rehearsal models (``Paper.rehearsal``)."""
    module, models = paper.claims, list(paper.rehearsal)
    run_dir, junit = tmp_path / "run", tmp_path / "junit.xml"
    env = {**os.environ, "NEURON_CLAIMS_CACHE": str(_fresh_cache(tmp_path))}
    command = [sys.executable, "-m", "pytest", module, "-p", "no:cacheprovider", "-q",
               "--profile", "rehearsal-ci", "--models", ",".join(models), "--run-dir", str(run_dir),
               f"--junitxml={junit}"]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
    assert junit.is_file(), f"no junit report: {' '.join(command)}\n{tail}"

    cases = ET.parse(junit).getroot().iter("testcase")
    outcomes: dict[str, str] = {}
    for case in cases:
        bad = [child for child in case if child.tag in ("error", "failure")]
        skipped = [child for child in case if child.tag == "skipped"]
        if bad:
            outcomes[case.get("name")] = f"{bad[0].tag}: {(bad[0].get('message') or '')[:300]}"
        elif skipped and skipped[0].get("type") != "pytest.xfail":
            outcomes[case.get("name")] = f"skipped: {(skipped[0].get('message') or '')[:300]}"
        else:
            outcomes[case.get("name")] = "ran"
    broken = {name: what for name, what in outcomes.items() if what != "ran"}
    assert not broken, f"{module} on {models}:\n" + "\n".join(f"{k}: {v}" for k, v in broken.items()) + f"\n{tail}"
    assert proc.returncode == 0, tail

    # every model got a case of every claim of its kind, each with a result file of tier rehearsal
    results = [json.loads(p.read_text()) for p in sorted((run_dir / "results").glob("*.json"))]
    assert len(results) == len(outcomes) > 0
    for model in models:
        assert any(r["model"] == model for r in results), f"no result of {model}"
    for r in results:
        assert r["tier"] == "rehearsal" and r["verdict"] in ("replicated", "contradicted", "inconclusive"), r
        assert "mean nothing" in r["details"]["model"]
    assert "their verdicts mean nothing" in (run_dir / "report.md").read_text()
