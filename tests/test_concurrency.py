"""Several processes at once: cache entries computed once and never corrupted, result folders and run
folders shared safely (core.cache.cache_lock, atomic writes, core.report.history.new_run_dir)."""
from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

from core.cache import atomic_write_text, cache_lock
from core.report.history import new_run_dir
from core.results import read_results, write_result
from tests.test_report import make_result

CTX = mp.get_context("fork")


def _fill(path: str, log: str, barrier) -> None:
    barrier.wait()
    with cache_lock(path):
        if not Path(path).exists():
            with open(log, "a") as f:
                f.write("computed\n")
            time.sleep(0.2)  # a slow computation: the others must wait, not compute again
            atomic_write_text(path, json.dumps({"value": list(range(1000))}))
    assert json.loads(Path(path).read_text())["value"][-1] == 999


def _run_all(target, args_list) -> None:
    procs = [CTX.Process(target=target, args=args) for args in args_list]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def test_cache_entry_computed_once(tmp_path):
    path, log = tmp_path / "entry.json", tmp_path / "log"
    barrier = CTX.Barrier(4)
    _run_all(_fill, [(str(path), str(log), barrier)] * 4)
    assert log.read_text() == "computed\n"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "entry.json", "log"]
    assert not list(tmp_path.glob(".*.tmp"))


def _write_results(run_dir: str, worker: int, barrier) -> None:
    barrier.wait()
    for i in range(40):
        # the same pair from every process (last writer wins), and pairs of this process only
        write_result(run_dir, make_result("ABL-1", "shared", "replicated", statistic=float(worker)))
        write_result(run_dir, make_result(f"ABL-{i + 2}", f"w{worker}", "inconclusive"))


def _read_while_writing(run_dir: str, barrier, out) -> None:
    barrier.wait()
    bad = 0
    for _ in range(40):
        bad += len(read_results(run_dir)[1])
    out.put(bad)


def test_two_runs_writing_one_results_folder(tmp_path):
    barrier, out = CTX.Barrier(3), CTX.Queue()
    reader = CTX.Process(target=_read_while_writing, args=(str(tmp_path), barrier, out))
    reader.start()
    _run_all(_write_results, [(str(tmp_path), w, barrier) for w in (1, 2)])
    reader.join(60)
    assert out.get(timeout=10) == 0  # a reader never saw a half-written file
    results, errors = read_results(tmp_path)
    assert errors == [] and len(results) == 1 + 2 * 40
    assert next(r for r in results if r.model == "shared").statistic in (1.0, 2.0)
    assert not list((tmp_path / "results").glob(".*"))


def _new_dirs(root: str, barrier, out) -> None:
    barrier.wait()
    out.put([new_run_dir(root, "ci").name for _ in range(5)])


def test_concurrent_runs_get_distinct_run_folders(tmp_path):
    barrier, out = CTX.Barrier(3), CTX.Queue()
    _run_all(_new_dirs, [(str(tmp_path), barrier, out)] * 3)
    names = [n for _ in range(3) for n in out.get(timeout=10)]
    assert len(names) == len(set(names)) == 15


def test_cache_lock_times_out(tmp_path):
    path = tmp_path / "entry"
    with cache_lock(path):
        proc = CTX.Process(target=_hold_and_fail, args=(str(path), 0.2))
        proc.start()
        proc.join(30)
    assert proc.exitcode == 0, "the second locker should have timed out"


def _hold_and_fail(path: str, timeout: float) -> None:
    from filelock import Timeout

    try:
        with cache_lock(path, timeout=timeout):
            raise SystemExit(1)
    except Timeout:
        raise SystemExit(0)


def _experiment(log: str, barrier) -> None:
    from core.cache import one_at_a_time

    @one_at_a_time("exp", lambda name, profile: f"experiment-{name}-{profile}")
    def experiment(name, profile):
        with open(log, "a") as f:
            f.write("start\n")
        time.sleep(0.2)
        with open(log, "a") as f:
            f.write("end\n")

    barrier.wait()
    experiment("m:random", "ci")


def test_one_at_a_time_serialises_the_same_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_CLAIMS_CACHE", str(tmp_path / "cache"))
    log = tmp_path / "log"
    barrier = CTX.Barrier(3)
    _run_all(_experiment, [(str(log), barrier)] * 3)
    # never two "start" in a row: each call ran alone
    assert log.read_text().split() == ["start", "end"] * 3
    assert (tmp_path / "cache" / "exp" / ".experiment-m_random-ci.lock").exists()
