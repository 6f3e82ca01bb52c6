"""Scoring only where a loss is read: masked LMs' head at the chosen positions, causal interventions up
to the last scored position (the main job's 45 minutes).

- ``minilm-l6`` ABL evaluation set of the small profile (32 windows x 128 tokens, 15% scored):
  :func:`core.evaluate.evaluate` (head at the chosen positions) against the whole model's logits.
  Measured on 2 cores: 1.0 s against 2.1 s.
- ``smollm2-135m`` BCL intervention on one cluster of the small profile (4 sentences of 32 tokens,
  22 conditions with reading R4): :func:`core.bcl.intervention.intervene` against the same rows run
  whole (what it cost before it stopped at the last scored position). Measured: 3.2 s against 5.3 s.

    .venv/bin/pytest benchmark/test_bench_scoring.py --benchmark-only --benchmark-group-by=group
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.common import load_or_skip
from core.errors import MissingAssetError


@pytest.fixture(scope="module")
def minilm_set():
    from core.abl.ablation import eval_set
    from core.profiles import get_profile

    lm = load_or_skip("minilm-l6")
    try:
        data = eval_set(lm.tokenizer, lm.kind, get_profile("small"), "news", lm.max_length)
    except MissingAssetError as e:
        pytest.skip(e.reason)
    return lm.model, data


@torch.inference_mode()
def _whole_logits(model, data, batch_size=8):
    for start in range(0, data.inputs.shape[0], batch_size):
        logits = model(input_ids=data.inputs[start:start + batch_size]).logits
        logits[data.labels[start:start + batch_size] != -100].float().log_softmax(-1)


@pytest.mark.benchmark(group="minilm-l6 masked evaluation, 32 x 128 tokens")
def test_masked_evaluate_head_at_chosen_positions(benchmark, minilm_set):
    from core.evaluate import evaluate
    from core.zoo.sites import split_head

    model, data = minilm_set
    benchmark.pedantic(evaluate, args=(model, data), kwargs={"batch_size": 8, "split": split_head(model)},
                       rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="minilm-l6 masked evaluation, 32 x 128 tokens")
def test_masked_whole_model_logits(benchmark, minilm_set):
    model, data = minilm_set
    benchmark.pedantic(_whole_logits, args=(model, data), rounds=3, warmup_rounds=1)


@pytest.fixture(scope="module")
def smollm2_cluster():
    from core.bcl.experiment import eval_pool
    from core.profiles import get_profile
    from core.bcl.sentences import cluster_sentences
    from core.zoo import sites

    lm = load_or_skip("smollm2-135m")
    try:
        pool, _ = eval_pool("news", lm.tokenizer, get_profile("small").bcl, 32)
    except MissingAssetError as e:
        pytest.skip(e.reason)
    n_layers, width = sites.n_layers(lm.model, "resid"), sites.site_width(lm.model, "resid")
    rng = np.random.default_rng(0)
    values, counts = np.unique(pool.numpy(), return_counts=True)
    top = rng.choice(values[counts > 3], 10, replace=False)
    rows, _ = cluster_sentences(pool, top, kind="causal", max_sentences=4)
    cluster = rng.choice(n_layers * width, 300, replace=False)
    return lm.model, pool, top, cluster, n_layers, width, pool[rows]


@pytest.mark.benchmark(group="smollm2-135m BCL intervention, one cluster (4 sentences x 22 conditions)")
def test_intervention_up_to_the_last_scored_position(benchmark, smollm2_cluster):
    from core.bcl.intervention import intervene

    model, pool, top, cluster, n_layers, width, _ = smollm2_cluster
    benchmark.pedantic(intervene, args=(model,), kwargs=dict(
        kind="causal", windows=pool, cluster=cluster, top_ids=top, n_layers=n_layers, width=width,
        max_sentences=4, readings=frozenset({"R4"})), rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="smollm2-135m BCL intervention, one cluster (4 sentences x 22 conditions)")
def test_the_same_rows_run_whole(benchmark, smollm2_cluster):
    model, *_, sentences = smollm2_cluster
    rows = sentences.repeat(22, 1)

    @torch.inference_mode()
    def whole():
        for start in range(0, rows.shape[0], 34):
            model.base_model(input_ids=rows[start:start + 34])

    benchmark.pedantic(whole, rounds=3, warmup_rounds=1)
