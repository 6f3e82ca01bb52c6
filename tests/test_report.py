"""Result records (core.results) and the Markdown report (core.report.markdown), on hand-made run folders."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from core.cache import atomic_write_json, atomic_write_text
from core.report.cli import main
from core.report.format import fmt_interval, fmt_num, verdict_text
from core.report.markdown import render_markdown
from core.results import (
    RESULT_FIELDS,
    ClaimResult,
    claim_sort_key,
    read_curves,
    read_results,
    result_path,
    scan_curves,
    write_curves,
    write_result,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SMALL_PAPER = "OPT-1.3B top1 44.54 vs 41.77 (never shown for small)"
FULL_PAPER = "OPT 44.54 vs 42.39, CE 2.93 vs 3.09"


def make_result(claim: str, model: str, verdict: str, **kw) -> ClaimResult:
    fields = dict(
        claim=claim, model=model, tier="small", profile="ci", verdict=verdict,
        statistic=None if verdict in ("skipped", "error") else 1.2345,
        statistic_name="top1(peak) - top1(zero), percentage points",
        interval=None if verdict in ("skipped", "error") else [0.5, 2.0],
        sample_sizes={"eval_tokens": 4096, "collect_tokens": 16384, "seeds": 3},
        seeds=[0, 1, 2], paper_value=SMALL_PAPER,
        data={"collect": "wikitext-2 train", "eval": "wikitext-2 test"},
        versions={"torch": "2.13.0"}, created_at="2025-01-31T12:00:00+00:00",
        rule="replicated if both differences > 0 with intervals excluding 0",
        details={"top1_diff": {"value": 1.2345, "interval": [0.5, 2.0], "unit": "pp"},
                 "ce_diff": {"value": 0.051, "interval": [0.01, 0.09], "unit": "nats"}},
    )
    fields.update(kw)
    return ClaimResult(**fields)


def abl_payload(model: str, kind: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    fractions = [round(0.1 * i, 1) for i in range(10)]
    f = np.asarray(fractions)
    methods = {}
    slopes = {"zero": 60, "mean": 55, "peak": 45, "resample-chars": 80, "resample-ids": 70,
              "resample-generated": 75}
    for method, slope in slopes.items():
        top1 = [list(40 - slope * f ** 1.5 * 0.6 + rng.normal(0, 0.8, f.size)) for _ in range(3)]
        ce = [list(3 + slope / 10 * f ** 1.5 + rng.normal(0, 0.05, f.size)) for _ in range(3)]
        methods[method] = {"top1": top1, "ce": ce}
    return {"experiment": "abl", "model": model, "kind": kind, "fractions": fractions,
            "methods": methods, "units": {"top1": "percent", "ce": "nats"}, "seeds": [0, 1, 2]}


# (claim, model, measured verdict, extra fields)
CASES = [
    ("ABL-10", "smollm2-135m", "inconclusive", {}),
    ("ABL-1", "smollm2-135m", "replicated", {}),
    ("ABL-2", "facebook/opt-1.3b", "contradicted", {"tier": "full", "paper_value": FULL_PAPER}),
    ("ABL-4", "smollm2-135m", "skipped", {"reason": "needs package llm-foo (pip install llm-foo)"}),
    ("ABL-5", "smollm2-135m", "replicated", {"recorded": "contradicted"}),
    ("ABL-7", "roberta:tiny", "contradicted", {"recorded": "contradicted"}),
    ("MOD-1", "vit-tiny", "error", {"reason": "NaN activations in layer 3"}),
    ("BCL-2", "bert/base:uncased", "replicated", {}),
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    for claim, model, verdict, extra in CASES:
        write_result(run, make_result(claim, model, verdict, **extra))
    # a result file truncated mid-write by something that did not write atomically
    good = json.dumps(make_result("ABL-3", "smollm2-135m", "replicated").to_dict())
    atomic_write_text(run / "results" / "ABL-3__smollm2-135m.json", good[: len(good) // 2])
    write_curves(run, "abl__smollm2-135m", abl_payload("smollm2-135m", "causal", 0))
    write_curves(run, "abl__roberta-tiny", abl_payload("roberta:tiny", "masked", 1))
    write_curves(run, "other", {"experiment": "mod", "x": [1, 2]})
    atomic_write_json(run / "run.json", {"profile": "ci", "device": "cpu", "git_commit": "abc123",
                                         "started_at": "2025-01-31T11:00:00+00:00",
                                         "versions": {"torch": "2.13.0", "numpy": "2.4.6"}})
    return run


@pytest.fixture(scope="module")
def report(run_dir) -> str:
    path = render_markdown(run_dir)
    assert path == run_dir / "report.md"
    return path.read_text(encoding="utf-8")


def table_rows(report: str) -> dict[tuple[str, str], list[str]]:
    """(claim, model) -> cells of the verdict table."""
    rows = {}
    for line in report.splitlines():
        if line.startswith("| ") and not line.startswith(("| claim", "| ---")):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[(cells[0], cells[1].strip("`"))] = cells
    return rows


# ---------------------------------------------------------------------- the report
def test_every_row_with_its_measured_verdict(report):
    rows = table_rows(report)
    assert set(rows) == {(c, m) for c, m, _, _ in CASES}
    for claim, model, verdict, extra in CASES:
        cells = rows[(claim, model)]
        assert cells[5].startswith(verdict), (claim, cells[5])
        if verdict == "skipped":
            assert cells[5].startswith(f"skipped: {extra['reason']}")
    assert "1.23 (top1(peak) - top1(zero), percentage points)" in rows[("ABL-1", "smollm2-135m")]
    assert rows[("ABL-1", "smollm2-135m")][4] == "[0.500, 2.00]"


def test_recorded_verdict_never_replaces_measured(report):
    rows = table_rows(report)
    # the CI record has a column of its own, out of the verdict's way
    assert rows[("ABL-5", "smollm2-135m")][5] == "replicated"
    xfail_differs = rows[("ABL-5", "smollm2-135m")][9]
    assert "xfail" in xfail_differs and "measured differs" in xfail_differs
    assert rows[("ABL-7", "roberta:tiny")][5] == "contradicted"
    xfail_same = rows[("ABL-7", "roberta:tiny")][9]
    assert "xfail" in xfail_same and "measured differs" not in xfail_same
    assert "xfail" not in rows[("ABL-1", "smollm2-135m")][9]


def test_sort_order(report):
    order = list(table_rows(report))
    claims = [c for c, _ in order]
    assert claims == ["ABL-1", "ABL-2", "ABL-4", "ABL-5", "ABL-7", "ABL-10", "MOD-1", "BCL-2"]
    assert report.index("### ABL-2") < report.index("### ABL-10") < report.index("### MOD-1")


def test_corrupt_file_named_and_others_read(run_dir, report):
    results, errors = read_results(run_dir)
    assert len(results) == len(CASES)
    assert [p.name for p, _ in errors] == ["ABL-3__smollm2-135m.json"]
    assert "JSONDecodeError" in errors[0][1]
    assert "results/ABL-3__smollm2-135m.json" in report
    assert "## Problems" in report


def test_paper_values_only_for_full_tier(report):
    rows = table_rows(report)
    assert rows[("ABL-2", "facebook/opt-1.3b")][8] == FULL_PAPER
    assert rows[("ABL-1", "smollm2-135m")][8] == "\u2014[^small]"
    assert SMALL_PAPER not in report
    assert "[^small]: Small-tier results" in report


def test_summary_metadata_details(report):
    assert "**8 result(s):** 3 replicated, 2 contradicted, 1 inconclusive, 1 skipped, 1 error" in report
    assert "2 recorded as expected non-replication (xfail)" in report
    assert "- **git_commit**: abc123" in report
    assert "- **versions**: torch=2.13.0, numpy=2.4.6" in report
    assert report.count("<details>") == len(CASES) == report.count("</details>")
    assert "- top1_diff: 1.23 [0.500, 2.00] pp" in report
    assert "- seeds: [0, 1, 2]" in report
    assert "Rule: replicated if both differences > 0" in report
    assert "NaN activations in layer 3" in report


def test_abl_figure_is_a_png(run_dir, report):
    png = run_dir / "figures" / "abl.png"
    assert "](figures/abl.png)" in report
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 20_000  # a drawn figure, not an empty canvas
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert width > height > 300  # two model columns side by side, two rows
    assert "`roberta:tiny`, `smollm2-135m`" in report


def test_no_temporary_files_left(run_dir, report):
    assert not [p for p in run_dir.rglob(".*")]


def test_empty_run_folder(tmp_path):
    text = render_markdown(tmp_path).read_text()
    assert "No results." in text
    assert not (tmp_path / "figures").exists()


def test_invalid_abl_payload_is_listed_not_raised(tmp_path):
    bad = abl_payload("m", "causal", 0)
    bad["methods"]["zero"]["top1"] = [[1.0, 2.0]]  # wrong length
    write_curves(tmp_path, "abl__m", bad)
    text = render_markdown(tmp_path).read_text()
    assert "curves/abl__m.json" in text and "'zero'" in text


def test_cli(run_dir, capsys, tmp_path):
    assert main([str(run_dir)]) == 0
    assert capsys.readouterr().out.split() == [str(run_dir / "report.md"), str(run_dir / "report.html")]
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "missing")])
    assert exc.value.code == 2
    assert "run folder not found" in capsys.readouterr().err


# ---------------------------------------------------------------------- records
def test_round_trip_and_file_name(tmp_path):
    r = make_result("ABL-1", "org/model:q4", "replicated", duration_s=3)
    path = write_result(tmp_path, r)
    assert path == tmp_path / "results" / "ABL-1__org--model_q4.json"
    assert path == result_path(tmp_path, "ABL-1", "org/model:q4")
    obj = json.loads(path.read_text())
    assert set(RESULT_FIELDS) <= set(obj)
    assert ClaimResult.from_dict(obj) == r


@pytest.mark.parametrize("change, field", [
    ({"verdict": "passed"}, "verdict"),
    ({"tier": "medium"}, "tier"),
    ({"statistic": None}, "statistic"),  # a measured verdict without numbers
    ({"interval": [2.0, 1.0]}, "interval"),
    ({"seeds": [0, "1"]}, "seeds"),
    ({"created_at": "2025-01-31T12:00:00"}, "created_at"),  # no time zone
    ({"recorded": "xfail"}, "recorded"),
])
def test_from_dict_rejects_bad_values(change, field):
    d = make_result("ABL-1", "m", "replicated").to_dict() | change
    with pytest.raises(ValueError, match=rf"some/file\.json: field '{field}'"):
        ClaimResult.from_dict(d, source="some/file.json")


def test_from_dict_missing_field_and_skip_without_reason():
    d = make_result("ABL-1", "m", "replicated").to_dict()
    del d["seeds"], d["data"]
    with pytest.raises(ValueError, match=r"f\.json: missing required field\(s\): seeds, data"):
        ClaimResult.from_dict(d, source="f.json")
    with pytest.raises(ValueError, match="reason"):
        make_result("ABL-1", "m", "skipped", reason=None)


def test_claim_sort_key():
    ids = ["BCL-1", "ABL-10", "MOD-2", "ABL-2", "XYZ-1", "ABL-1", "MOD-10", "odd"]
    assert sorted(ids, key=claim_sort_key) == [
        "ABL-1", "ABL-2", "ABL-10", "MOD-2", "MOD-10", "BCL-1", "XYZ-1", "odd"]


def test_curves_round_trip(tmp_path):
    payload = {"experiment": "abl", "fractions": np.linspace(0, 0.9, 10), "n": np.int64(3)}
    write_curves(tmp_path, "abl__m", payload)
    atomic_write_text(tmp_path / "curves" / "broken.json", '{"experiment": ')
    with pytest.warns(UserWarning, match="broken.json"):
        curves = read_curves(tmp_path)
    assert list(curves) == ["abl__m"] and curves["abl__m"]["n"] == 3
    assert [p.name for p, _ in scan_curves(tmp_path)[1]] == ["broken.json"]
    with pytest.raises(ValueError):
        write_curves(tmp_path, "../escape", {})


def test_number_formatting():
    assert [fmt_num(x) for x in (44.54, 2.93, 0.01234, 1234.5, 1e-5, 0.0, None, 7, float("nan"))] \
        == ["44.5", "2.93", "0.0123", "1234", "1.00e-05", "0", "\u2014", "7", "nan"]
    assert fmt_interval([-0.1234, 2]) == "[-0.123, 2]"
    assert verdict_text(make_result("ABL-1", "m", "skipped", reason="no GPU")) == "skipped: no GPU"


def _result(**kw):
    from core.results import ClaimResult

    base = dict(claim="ABL-2", model="smollm2-135m", tier="small", profile="ci", verdict="inconclusive",
                statistic=0.3, statistic_name="CE(mean) - CE(peak) at 50%, nats", interval=[-0.1, 0.7],
                sample_sizes={"eval_documents": 16}, seeds=[0, 1, 2], paper_value=None, data="news")
    return ClaimResult(**{**base, **kw})


def test_readings_needed_and_record_cells():
    from core.report.format import needed_text, readings_text, record_text, verdict_text

    r = _result(readings={"R1": {"alternate": "lower count", "verdict": "replicated", "statistic": 0.4,
                                 "interval": [0.1, 0.7], "statistic_name": "x"}},
                robustness="reading-dependent", recorded="inconclusive",
                needed={"level": "documents", "have": 16, "needed": 70, "text": "about 70 documents"})
    assert verdict_text(r) == "inconclusive"          # the CI record stays out of the verdict
    assert record_text(r) == "xfail: recorded inconclusive"
    assert readings_text(r) == "reading-dependent (R1: replicated)"
    assert needed_text(r) == "~70 documents (now 16)"
    same = _result(verdict="contradicted", interval=[0.1, 0.5], readings={"R2": {"verdict": "contradicted"}},
                   robustness="robust")
    assert readings_text(same) == "robust (R2)" and needed_text(same) == "\u2014"
    assert readings_text(_result()) == "\u2014" and record_text(_result()) == "\u2014"


def test_markdown_shows_decided_by_needed_and_readings(tmp_path):
    from core.report.markdown import render_markdown
    from core.results import write_result

    write_result(tmp_path, _result(decided_by="CE(mean) - CE(peak)",
                                   needed={"level": "documents", "have": 16, "needed": 70,
                                           "text": "about 70 documents would decide it"},
                                   readings_skipped=["R1"]))
    text = render_markdown(tmp_path).read_text()
    assert "decided by CE(mean) - CE(peak)" in text
    assert "~70 documents (now 16)" in text and "about 70 documents would decide it" in text
    assert "Readings this run skipped" in text and "R1 (ABL-2)" in text
