"""pytest-xdist: two workers on tiny models give the same result files and one report as a serial run.

Runs the claim-like modules of ``tests/xdist_tiny/`` (toy claims on tiny random models) twice in
subprocesses, serially and with ``-n 2``, each with its own empty cache, and compares the run folders.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("xdist", reason="pytest-xdist is not installed (pip install pytest-xdist)")

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["tests/xdist_tiny/claims_a.py", "tests/xdist_tiny/claims_b.py"]
MODELS = ("tiny-llama", "tiny-gpt2", "tiny-bert")
VOLATILE = {"created_at", "duration_s"}  # differ between any two runs


def _pytest(tmp: Path, name: str, *extra: str, modules=MODULES):
    """Run pytest on ``modules`` with its own cache; the run folder is made under tmp/<name>/."""
    env = dict(os.environ, NEURON_CLAIMS_CACHE=str(tmp / f"cache-{name}"),
               TINY_CLAIMS_LOG=str(tmp / f"{name}.log"))
    env.pop("PYTEST_XDIST_WORKER", None)
    root = tmp / name
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *modules, "-p", "no:cacheprovider", "-v", "--results-dir",
         str(root), *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    folders = sorted(root.iterdir()) if root.is_dir() else []
    return proc, folders


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xdist")
    serial, (serial_dir,) = _pytest(tmp, "serial")
    parallel, (parallel_dir,) = _pytest(tmp, "parallel", "-n", "2")  # the controller's new folder
    return tmp, (serial, serial_dir), (parallel, parallel_dir)


def _results(run_dir: Path) -> dict[str, dict]:
    out = {}
    for path in sorted((run_dir / "results").iterdir()):
        obj = json.loads(path.read_text())
        out[path.name] = {k: v for k, v in obj.items() if k not in VOLATILE}
    return out


def test_both_runs_pass(runs):
    _, (serial, _), (parallel, _) = runs
    for proc in (serial, parallel):
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "6 passed, 3 skipped" in proc.stdout


def test_same_result_files_as_serial(runs):
    _, (_, serial_dir), (_, parallel_dir) = runs
    serial, parallel = _results(serial_dir), _results(parallel_dir)
    assert set(serial) == {f"TST-{i}__{m}.json" for i in (1, 2, 3) for m in MODELS}
    assert parallel == serial
    verdicts = {name: r["verdict"] for name, r in parallel.items()}
    assert sorted(set(verdicts.values())) == ["replicated", "skipped"]
    curves = sorted(p.name for p in (parallel_dir / "curves").iterdir())
    assert curves == sorted(p.name for p in (serial_dir / "curves").iterdir()) == sorted(
        f"tst__{m}.json" for m in MODELS)


def test_two_workers_wrote_one_report(runs):
    tmp, _, (proc, run_dir) = runs
    workers = {m.group(1): set() for m in re.finditer(r"\[(gw\d)\]", proc.stdout)}
    for m in re.finditer(r"\[(gw\d)\] \[\s*\d+%\] \w+ (tests/xdist_tiny/\w+\.py)", proc.stdout):
        workers[m.group(1)].add(m.group(2))
    assert set(workers) == {"gw0", "gw1"}
    # --dist loadscope (implied by -n): one module per worker, both filling the same cache entries
    assert sorted(len(mods) for mods in workers.values()) == [1, 1]
    assert proc.stdout.count("replication report") == 1
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "curves", "figures", "report.html", "report.md", "results", "run.json"]  # figures: the forest plots
    assert not [p for p in run_dir.rglob(".*") if p.is_file()]  # no temporary files left
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["workers"] == 2 and meta["profile"] == "small"
    assert re.fullmatch(r"\d{8}T\d{6}Z-small", run_dir.name)
    report = (run_dir / "report.md").read_text()
    for i in (1, 2, 3):
        for m in MODELS:
            assert f"| TST-{i} | `{m}` |" in report


def test_shared_cache_entries_computed_once(runs):
    tmp, _, _ = runs
    for name in ("serial", "parallel"):
        assert sorted((tmp / f"{name}.log").read_text().split()) == sorted(MODELS), name


def test_no_run_folder_left_when_nothing_was_measured(tmp_path):
    proc, folders = _pytest(tmp_path, "empty", "-n", "2", "-k", "no_such_test")
    assert proc.returncode == 5 and folders == []  # 5: no tests ran
