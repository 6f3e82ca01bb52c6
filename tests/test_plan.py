"""The cost plan (:mod:`core.plan`) and the stage times (:mod:`core.timing`): counts of a tiny profile
computed by hand, the published parameter count, the table, the comparison with a run, and stage
times landing in a run's ``run.json``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from core import plan, timing
from core.plan import Dims, Rates, StageCost
from core.profiles import Profile, get_profile

ROOT = Path(__file__).resolve().parents[1]
#: A toy decoder: 2 layers, d_model 8, d_mlp 16, 2 heads, vocabulary 50.
TOY = Dims("llama", "causal", 2, 8, 16, 2, 2, 50, 64)
TOY_DIMS = {"toy": TOY}
#: The same with d_mlp 64 (MoEfication's k = d_mlp / 32 must be an integer).
TOY_MOD = {"toy": replace(TOY, d_mlp=64)}


def rates(s_per_flop=1e-9, **kw) -> Rates:
    base = dict(device="test", forward_s_per_flop={"*": s_per_flop}, forward_source="test", call_s_per_layer=0.0,
                stats_s_per_element=0.0, kmeans_s_per_unit=1e-9, draw_s_per_element=1e-9,
                lorenz_s_per_element=1e-9, linkage_s_per_n2=1e-6, cpu_s_per_flop=1e-10, cpu_source="test")
    return Rates(**{**base, **kw})


def test_toy_flops_per_token_by_hand():
    # layer: q, o 8x8 each, k, v 8x8 each (2 kv heads of 4), MLP 2 x 8 x 16 -> 512; 2 layers: 1024
    assert TOY.layer_params == 512 and TOY.params == 1024
    # 2 * 1024 + 4 * 2 layers * 8 * (10 / 2) + 1 * 2 * 8 * 50
    assert TOY.flops_per_token(10, 1.0) == 2048 + 320 + 800


def test_mistral_parameters_match_the_published_count():
    # Mistral-7B-v0.1: 7,241,732,096 weights = layer matrices + 2 x 32000 x 4096 embeddings and head
    # + 65 RMSNorm vectors of 4096
    assert plan.DIMS["mistral-7b"].params == 7_241_732_096 - 2 * 32000 * 4096 - 65 * 4096


def test_abl_counts_by_hand():
    p = Profile("t", collect_tokens=100, eval_tokens=40, collect_images=6, eval_images=4, seq_len=20,
                batch_size=3, eval_seq_len=10)
    stats, sweep = plan.plan_abl("toy", p, tier="small", dims=TOY_DIMS)
    # statistics: 100 / 20 = 5 windows, 2 passes (moments, histogram), batches of 3 -> 2 x 2 calls
    assert (stats.passes, stats.tokens, stats.layer_calls) == (4, 200, 8)
    assert stats.stats_elements == 200 * 2 * 8
    # sweep: 1 + 3 seeds x 9 fractions x 6 methods = 163 evaluations of 4 windows of 10 (2 calls each)
    assert (sweep.passes, sweep.tokens) == (326, 6520)
    assert sweep.flops == 6520 * (2048 + 320 + 800)


def test_abl_image_counts_by_hand():
    vit = Dims("vit", "image", 1, 4, 8, 1, 1, 10, None, image_tokens=5)
    p = Profile("t", collect_tokens=1, eval_tokens=1, collect_images=6, eval_images=4, seq_len=1, batch_size=4)
    stats, sweep = plan.plan_abl("v", p, tier="small", dims={"v": vit})
    assert (stats.passes, stats.tokens) == (2 * 2, 2 * 6 * 5)
    evals = 1 + 3 * 9 * 4  # three constant methods and resample-pixels
    assert (sweep.passes, sweep.tokens) == (evals * 1, evals * 4 * 5)


def test_mod_counts_by_hand_ci():
    ci = get_profile("ci")  # seq_len 128, batch 8; MOD ci: 512 collection tokens per sample, 256 x 16
    st = {s.stage: s for s in plan.plan_mod("toy", ci, tier="small", dims=TOY_MOD)}
    # statistics: 2 x 512 / 128 = 8 windows, halves of 4; A and B (trained) and A (twin) of 16 subsets
    assert (st["mod statistics"].passes, st["mod statistics"].tokens) == (3 * 16, 3 * 16 * 4 * 128)
    # search: N = 2 x 64 = 128 neurons -> at most 7 + 1 evaluations, 1 target, 10 subsets of 16 windows
    assert st["mod count search"].passes == 10 * 8 * 2
    assert st["mod count search"].tokens == 10 * 8 * 256
    # cross-pruning: trained A and B per subset (ci: no twin rows), each over all 10 x 16 windows
    assert st["mod cross-pruning"].passes == 20 * 20
    assert st["mod baseline"].passes == 2 * 20
    assert st["mod lottery null"].cpu == {"draw_elements": 1000 * 10 * 128}
    # MoEfication: trained and twin, 2 layers each, 64 x 8 with k = 64 / 32
    assert st["mod moefication"].cpu == {"kmeans": [(64, 8, 2, 4)], "lorenz_elements": 2 * 1000 * 64}


def test_mod_readings_add_search_and_rows():
    ci = get_profile("ci")
    base = {s.stage: s for s in plan.plan_mod("toy", ci, tier="small", dims=TOY_MOD)}
    more = {s.stage: s for s in plan.plan_mod("toy", ci, tier="small", readings={"R1", "R2"}, dims=TOY_MOD)}
    assert more["mod count search"].passes == 2 * base["mod count search"].passes
    assert more["mod cross-pruning"].passes == base["mod cross-pruning"].passes * 3  # + R1 and R2 rows
    assert more["mod lottery null"].cpu["draw_elements"] == 3 * base["mod lottery null"].cpu["draw_elements"]


def test_bcl_counts_by_hand_ci():
    ci = get_profile("ci")  # BCL ci: 16,384 tokens in windows of 128, sentences of 32, 2 per cluster
    rep, clus, inter = plan.plan_bcl("toy", "news", ci, dims=TOY_DIMS)
    # the toy's windows stop at 64 tokens: 256 windows, batches of 8
    assert (rep.passes, rep.tokens) == (32, 16384)
    # 3 x 8 = 24 residual neurons: K 50 and 200 both scale to 2; filter and refine -> 2 x (2 + 2) clusters,
    # each 2 sentences x 17 conditions = 34 rows = one call of 34 rows
    assert (inter.passes, inter.tokens) == (8, 8 * 34 * 32)
    assert clus.cpu["linkage"][0][0] == 24
    _, _, r = plan.plan_bcl("toy", "news", ci, readings={"R3", "R4", "R5"}, dims=TOY_DIMS)
    assert r.tokens == 8 * 2 * (17 + 16 + 5 + 17) * 32


def test_full_tier_plan_covers_every_paper_and_model():
    stages = plan.plan_stages("full", get_profile("paper"))
    models = {s.model.split(" on ")[0] for s in stages}
    assert models == {"opt-1.3b", "mistral-7b", "roberta-large", "vit-base", "mistral-7b-instruct",
                      "vit-base-cifar100", "bert-base-uncased"}
    assert {s.stage for s in stages} <= set(plan.STAGE_NAMES)
    assert all(s.tokens > 0 and s.flops > 0 for s in stages if s.bound == "device")


def test_unknown_model_is_named():
    with pytest.raises(KeyError, match="no config sizes for model 'nope'"):
        plan.plan_abl("nope", get_profile("ci"), tier="small")


def test_predict_and_render():
    stages = plan.predict(plan.plan_stages("small", get_profile("ci"), papers=("MOD",)), rates(2e-9))
    dev = [s for s in stages if s.bound == "device"]
    assert all(s.seconds == pytest.approx(s.flops * 2e-9) for s in dev)
    over = plan.predict(plan.plan_stages("small", get_profile("ci"), papers=("MOD",)), rates(2e-9, call_s_per_layer=1e-3))
    assert all(o.seconds == pytest.approx(s.seconds + s.layer_calls * 1e-3) for o, s in zip(over, stages)
               if s.bound == "device")
    text = plan.render(stages, rates(2e-9), tier="small", profile="ci")
    assert "| MOD | mod count search | smollm2-135m |" in text
    assert "| MOD |" in text.split("| paper | device time")[1] and "| all |" in text


def test_render_flags_long_cpu_stages():
    st = [StageCost("MOD", "mod moefication", "m", bound="cpu", cpu={"kmeans": [(100, 10, 10, 1)]}),
          StageCost("MOD", "mod lottery null", "m", bound="cpu", cpu={"draw_elements": 10})]
    r = rates(kmeans_s_per_unit=1.0)  # 10,000 s of k-means
    text = plan.render(plan.predict(st, r), r, tier="full", profile="paper")
    assert "GPU waits > 5 min" in text and "mod moefication m 2.8 h" in text
    assert text.count("GPU waits > 5 min") == 1


def test_predicted_gpu_is_labelled(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(plan, "_cpu_figures", lambda recalibrate=False: {
        "kmeans_s_per_unit": 1e-9, "draw_s_per_element": 1e-9, "lorenz_s_per_element": 1e-9,
        "linkage_s_per_n2": 1e-6, "cpu_s_per_flop": 1e-10, "threads": 2})
    r = plan.load_rates("cuda", utilisation=0.5)
    assert r.forward("mistral-7b") == pytest.approx(1 / (989e12 * 0.5))
    assert r.forward_source.startswith("PREDICTED") and "50%" in r.forward_source
    with pytest.raises(ValueError, match="utilisation"):
        plan.load_rates("cuda", utilisation=1.5)
    k = plan.load_rates("cuda", kmeans_fit_s=250.0)
    assert plan.kmeans_fit_seconds(14336, 4096, 128, k) == pytest.approx(250.0)
    assert plan.kmeans_fit_seconds(7168, 4096, 128, k) == pytest.approx(125.0)


def test_kmeans_fit_by_hand():
    """On the CPU a fit scales by n k d; on a GPU the seeding and distances run at the device's rate and
    the KMEANS_ASSIGNMENTS flows at the CPU's, per n k."""
    import math

    cpu = rates(1e-12, kmeans_s_per_unit=1e-9)
    assert plan.kmeans_fit_seconds(100, 10, 4, cpu) == pytest.approx(4e-6)
    gpu = rates(1e-12, kmeans_s_per_unit=1e-9, kmeans_assign_s_per_unit=1e-6, device="cuda (h100, predicted)")
    columns = 4 * (2 + math.log(4)) + plan.KMEANS_ASSIGNMENTS * 4
    want = columns * 2 * 100 * 10 * 1e-12 + plan.KMEANS_ASSIGNMENTS * 100 * 4 * 1e-6
    assert plan.kmeans_fit_seconds(100, 10, 4, gpu) == pytest.approx(want)


def test_compare_run():
    st = plan.predict([StageCost("ABL", "abl sweep", "m", flops=1e9)], rates(1e-9))
    text = plan.compare_run(st, [{"stage": "abl sweep", "model": "m", "seconds": 2.0, "cpu_seconds": 3.0},
                                 {"stage": "abl sweep", "model": "m:random", "seconds": 1.0},
                                 {"stage": "mod statistics", "model": "m", "seconds": 1.0}])
    assert "| abl sweep | m | 1.0 s | 3.0 s | 3.00 | 3.0 s |" in text  # the twin's time is the model's
    assert "| mod statistics | m | not planned | 1.0 s | - | 0.0 s |" in text


def test_infer_tier():
    assert plan.infer_tier([{"model": "minilm-l6 on news"}, {"model": "tiny-vit-fmnist:random"}]) == "small"
    assert plan.infer_tier([{"model": "minilm-l6"}, {"model": "mistral-7b"}]) == "full"
    assert plan.infer_tier([]) == "full"


# ---- core.timing

def test_stage_records_and_logs(tmp_path, monkeypatch):
    monkeypatch.setattr(timing, "_records", [])
    monkeypatch.setattr(timing, "_log", None)
    with timing.stage("abl sweep", "m", on="cpu", evaluations=3) as s:
        pass
    t = timing.stage("mod count search", "m").start()
    rec = t.stop()
    assert s.seconds >= 0 and rec["stage"] == "mod count search" and rec["device"] is None
    assert rec["cpu_seconds"] >= 0
    with pytest.raises(RuntimeError):
        t.stop()
    with pytest.raises(ZeroDivisionError):
        with timing.stage("bcl clustering", "m"):
            1 / 0
    assert [r["stage"] for r in timing.recorded()] == ["abl sweep", "mod count search"]  # not the failed one
    log = tmp_path / "stages.jsonl"
    timing.log_to(log)  # earlier records are written at once
    with timing.stage("bcl interventions", "m on news"):
        pass
    with open(log, "a") as f:
        f.write('{"stage": "trunc')  # a process killed mid-line
    got = timing.read_log(log)
    assert [r["stage"] for r in got] == ["abl sweep", "mod count search", "bcl interventions"]
    assert got[0]["evaluations"] == 3 and got[0]["device"] == "cpu"
    assert timing.read_log(tmp_path / "absent.jsonl") == []


def test_run_metadata_holds_stages(tmp_path):
    from core.report.history import run_metadata

    meta = run_metadata(profile="ci", sizes={}, device="cpu", started=0.0, finished=1.0, root=tmp_path,
                        stages=[{"stage": "abl sweep", "model": "m", "seconds": 1.5}])
    assert meta["stages"] == [{"stage": "abl sweep", "model": "m", "seconds": 1.5}]
    assert "stages" not in run_metadata(profile="ci", sizes={}, device="cpu", started=0.0, finished=1.0,
                                         root=tmp_path)


def test_stage_times_land_in_run_json(tmp_path):
    env = dict(os.environ, NEURON_CLAIMS_CACHE=str(tmp_path / "cache"))
    env.pop("PYTEST_XDIST_WORKER", None)
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/timing_tiny/claims_timed.py", "-p",
                           "no:cacheprovider", "--profile", "ci", "--run-dir", str(run)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert (run / "run.json").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    stages = json.loads((run / "run.json").read_text())["stages"]
    assert [(s["stage"], s["model"], s["evaluations"]) for s in stages] == [("abl sweep", "tiny-llama", 3)]
    assert plan.recorded_stages(run) == stages


def test_layer_timing_is_positive_and_finite():
    import math

    s = plan.time_layer(plan.DIMS["tiny-vit-fmnist"], "cpu", tokens=64, reps=1)
    assert 0 < s < math.inf
    g = plan.time_layer(Dims("llama", "causal", 1, 32, 64, 4, 2, 10, 128, gated=True), "cpu", tokens=64, reps=1)
    assert 0 < g < math.inf


def test_dims_from_a_transformers_config():
    import transformers

    cfg = transformers.MistralConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                     num_attention_heads=32, num_key_value_heads=8, vocab_size=32000,
                                     max_position_embeddings=32768, architectures=["MistralForCausalLM"])
    assert plan.dims_from_config(cfg) == plan.DIMS["mistral-7b"]
    vit = transformers.ViTConfig(architectures=["ViTForImageClassification"],
                                 id2label={i: str(i) for i in range(1000)})
    assert plan.dims_from_config(vit) == plan.DIMS["vit-base"]
