"""Comparing runs (core.report.compare), run history (core.report.history) and the ``compare`` command line."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.cache import atomic_write_json, atomic_write_text
from core.report.compare import compare_runs, statistic_moved, write_comparison
from core.report.history import list_runs, new_run_dir, previous_run, recent_runs, verdict_history
from core.report.cli import main
from core.report.collect import collect
from core.report.markdown import render_markdown
from core.results import write_result
from tests.test_report import make_result

# (claim, model) -> (verdict, statistic, interval) of the earlier and of the later run
OLD = {
    ("ABL-1", "smollm2-135m"): ("replicated", 1.2, [0.5, 2.0]),
    ("ABL-2", "opt-1.3b"): ("contradicted", -1.0, [-1.5, -0.5]),
    ("ABL-4", "smollm2-135m"): ("skipped", None, None),
    ("ABL-5", "smollm2-135m"): ("inconclusive", 0.1, [-0.2, 0.4]),
    ("ABL-7", "roberta:tiny"): ("contradicted", -2.0, [-3.0, -1.0]),
    ("ABL-10", "smollm2-135m"): ("replicated", 3.0, [2.0, 4.0]),
    ("MOD-1", "tiny-vit-fmnist"): ("error", None, None),
}
NEW = {
    ("ABL-1", "smollm2-135m"): ("contradicted", -0.8, [-1.2, -0.3]),  # verdict changed, moved
    ("ABL-2", "opt-1.3b"): ("contradicted", -2.5, [-3.0, -2.0]),      # same verdict, moved
    ("ABL-4", "smollm2-135m"): ("replicated", 0.9, [0.2, 1.6]),       # skipped -> replicated
    ("ABL-5", "smollm2-135m"): ("inconclusive", 0.3, [0.0, 0.6]),     # inside the old interval
    ("MOD-1", "tiny-vit-fmnist"): ("error", None, None),              # unchanged
    ("BCL-2", "bert-base-uncased"): ("replicated", 1.0, [0.5, 1.5]),  # claim and model added
}


def _write_run(folder: Path, pairs: dict, *, profile: str = "ci", started: str | None = None) -> Path:
    for (claim, model), (verdict, stat, iv) in pairs.items():
        extra = {"reason": "no GPU"} if verdict in ("skipped", "error") else {}
        write_result(folder, make_result(claim, model, verdict, statistic=stat, interval=iv,
                                         profile=profile, **extra))
    if started:
        atomic_write_json(folder / "run.json", {"profile": profile, "started": started})
    return folder


@pytest.fixture
def two_runs(tmp_path):
    old = _write_run(tmp_path / "runs" / "old", OLD, started="2026-01-01T00:00:00+00:00")
    new = _write_run(tmp_path / "runs" / "new", NEW, started="2026-01-02T00:00:00+00:00")
    atomic_write_text(new / "results" / "ABL-3__smollm2-135m.json", '{"claim": "ABL-3", ')
    return old, new


def test_lists_exactly_the_verdicts_that_changed(two_runs):
    c = compare_runs(*two_runs)
    assert [(ch.claim, ch.model, ch.old_verdict, ch.new_verdict) for ch in c.verdict_changes] == [
        ("ABL-1", "smollm2-135m", "replicated", "contradicted"),
        ("ABL-4", "smollm2-135m", "skipped", "replicated"),
    ]
    assert [(ch.claim, ch.model) for ch in c.moved] == [("ABL-1", "smollm2-135m"),
                                                       ("ABL-2", "opt-1.3b")]
    assert c.unchanged == 2  # ABL-5 (inside the old interval) and MOD-1


def test_added_and_removed(two_runs):
    c = compare_runs(*two_runs)
    assert c.added_claims == ["BCL-2"]
    assert c.removed_claims == ["ABL-7", "ABL-10"]
    assert c.added_models == ["bert-base-uncased"]
    assert c.removed_models == ["roberta:tiny"]
    assert c.added_pairs == [("BCL-2", "bert-base-uncased")]
    assert c.removed_pairs == [("ABL-7", "roberta:tiny"), ("ABL-10", "smollm2-135m")]
    assert [p.name for p, _ in c.problems] == ["ABL-3__smollm2-135m.json"]


def test_identical_runs_have_no_changes(two_runs):
    old, _ = two_runs
    c = compare_runs(old, old)
    assert not c.has_changes and c.unchanged == len(OLD)


def test_written_files(two_runs):
    old, new = two_runs
    md, js = write_comparison(compare_runs(old, new))
    assert md == new / "comparison__old.md" and js == new / "comparison__old.json"
    text = md.read_text()
    assert "**2 verdict(s) changed, 2 statistic(s) moved outside the earlier interval, 1 result(s) " \
           "added, 2 removed, 2 unchanged.**" in text
    assert "| ABL-1 | `smollm2-135m` | replicated | contradicted | 1.20 [0.500, 2.00] | " \
           "-0.800 [-1.20, -0.300] |" in text
    assert "- Claims removed: ABL-7, ABL-10" in text and "- Models added: `bert-base-uncased`" in text
    assert "ABL-3__smollm2-135m.json" in text
    obj = json.loads(js.read_text())
    assert [d["claim"] for d in obj["verdict_changes"]] == ["ABL-1", "ABL-4"]


def test_cli_compare(two_runs, capsys):
    old, new = two_runs
    assert main(["compare", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "2 verdict(s) changed" in out and "comparison__old.md" in out
    assert main(["compare", "--previous", str(new)]) == 0  # finds "old": same profile, earlier
    assert "`old` \u2192 `new`" in capsys.readouterr().out
    assert main(["compare", "--previous", str(old)]) == 0
    assert "nothing to compare" in capsys.readouterr().out
    for argv in (["compare", str(old)], ["compare", str(old), str(new), "--previous"],
                 ["compare", str(old), str(new.parent / "missing")]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2


@given(low=st.floats(-1e6, 1e6), width=st.floats(0, 1e6), x=st.floats(-3e6, 3e6))
def test_statistic_moved_property(low, width, x):
    high = low + width
    assert statistic_moved([low, high], x) == (not low <= x <= high)
    assert not statistic_moved(None, x) and not statistic_moved([low, high], None)


# ---------------------------------------------------------------------- history
def test_history_and_previous_run(tmp_path):
    root = tmp_path / "runs"
    verdicts = ["replicated", "inconclusive", "replicated", "contradicted"]
    runs = []
    for day, verdict in enumerate(verdicts, start=1):
        profile = "small" if day == 3 else "ci"
        runs.append(_write_run(root / f"run{day}", {("ABL-1", "m"): (verdict, 1.0, [0.5, 1.5])},
                               profile=profile, started=f"2026-01-0{day}T00:00:00+00:00"))
    (root / "not-a-run").mkdir()
    assert [r.name for r in list_runs(root)] == ["run1", "run2", "run3", "run4"]
    assert [r.name for r in recent_runs(runs[2], n=10)] == ["run1", "run2", "run3"]
    assert [r.name for r in recent_runs(runs[3], n=2)] == ["run3", "run4"]
    assert previous_run(runs[3]).name == "run2"  # run3 has another profile
    assert previous_run(runs[3], same_profile=False).name == "run3"
    assert previous_run(runs[0]) is None
    hist = verdict_history(list_runs(root))
    assert [r.verdict for r in hist[("ABL-1", "m")]] == verdicts

    data = collect(runs[3])
    assert data.previous.name == "run2" and not data.comparison.verdict_changes[0].moved
    text = render_markdown(runs[3], data=data).read_text()
    assert "## Since the previous run" in text and "Compared with `run2`" in text
    assert "| ABL-1 | `m` | \u2713 | ~ | \u2713 | \u2717 |" in text


def test_new_run_dir_is_unique(tmp_path):
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    names = [new_run_dir(tmp_path, "ci", now=now).name for _ in range(3)]
    assert names == ["20260102T030405Z-ci", "20260102T030405Z-ci-2", "20260102T030405Z-ci-3"]


def test_run_metadata():
    import subprocess

    from core.report.history import run_metadata

    root = Path(__file__).resolve().parents[1]
    meta = run_metadata(profile="ci", sizes={"eval_tokens": 1}, device="cpu", started=1_700_000_000.0,
                        finished=1_700_000_090.04, root=root, workers=2, args=["-n", "2"])
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                          text=True).stdout.strip()
    assert meta["git_commit"] == head and isinstance(meta["git_dirty"], bool)
    assert meta["started"] == "2023-11-14T22:13:20+00:00" and meta["duration_s"] == 90.0
    assert meta["profile"] == "ci" and meta["device"] == "cpu" and meta["workers"] == 2
    assert {"torch", "transformers", "accelerate", "pytest-xdist"} <= set(meta["versions"])
    assert json.loads(json.dumps(meta)) == meta
    assert run_metadata(profile="ci", sizes={}, device="cpu", started=0.0, finished=1.0,
                        root="/")["git_commit"] is None  # outside a checkout: no commit, no error
