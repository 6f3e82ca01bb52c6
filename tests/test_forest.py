"""The report says what was claimed: claim statements beside their ids, and one forest plot per claim
(core.report.forest) drawn from the result files."""
from __future__ import annotations

import json

import hypothesis.strategies as st
from hypothesis import given, settings

from core.report.collect import collect
from core.report.forest import FOREST_PREFIX, MAX_ROWS, claim_parts, render_forest
from core.report.markdown import render_report
from core.results import ClaimResult, result_path, write_result

from tests.test_report import make_result

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STATEMENT = "On decoders, peak ablation degrades less than zero ablation"


def test_parts_by_hand():
    r = make_result("ABL-1", "m", "replicated", decided_by="top1_diff", details={
        "top1_diff": {"value": 1.2345, "interval": [0.5, 2.0], "unit": "pp"},   # the headline again
        "ce_diff": {"value": 0.051, "interval": [0.01, 0.09], "unit": "nats"},
        "10%": [{"value": -1.0, "interval": [-2.0, 0.5], "unit": "nats"},
                {"value": float("nan"), "interval": [0.0, 1.0], "unit": "nats"}],  # not finite: left out
        "count": 3,
    })
    parts = claim_parts(r)
    assert [(p.name, p.value, p.low, p.high, p.unit, p.headline) for p in parts] == [
        ("top1_diff", 1.2345, 0.5, 2.0, "percentage points", True),
        ("ce_diff", 0.051, 0.01, 0.09, "nats", False),
        ("10% / [0]", -1.0, -2.0, 0.5, "nats", False),
    ]


def test_skipped_results_have_no_parts():
    assert claim_parts(make_result("ABL-1", "m", "skipped", reason="no model")) == []


_est = st.builds(lambda v, a, b: {"value": v, "interval": sorted([a, b]), "unit": "u"},
                 st.floats(-100, 100), st.floats(-100, 100), st.floats(-100, 100))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text("abc", min_size=1, max_size=4), st.one_of(_est, st.lists(_est, max_size=3)),
                       max_size=6))
def test_every_finite_estimate_is_a_part(details):
    r = make_result("MOD-1", "m", "inconclusive", statistic=0.25, interval=[-1.0, 1.5], details=details,
                    decided_by=None)
    leaves = [e for v in details.values() for e in (v if isinstance(v, list) else [v])]
    repeats = sum((e["value"], *e["interval"]) == (0.25, -1.0, 1.5) for e in leaves)
    parts = claim_parts(r)
    assert parts[0].headline and (parts[0].value, parts[0].low, parts[0].high) == (0.25, -1.0, 1.5)
    assert len(parts) == 1 + len(leaves) - repeats
    assert all(p.low <= p.high for p in parts)


def test_one_forest_plot_per_claim(tmp_path):
    results = [make_result("ABL-1", m, v, statement=STATEMENT) for m, v in
               [("a", "replicated"), ("b", "inconclusive")]]
    results += [make_result("ABL-1", "c", "skipped", reason="no model"),
                make_result("MOD-2", "a", "contradicted", statistic=-1.0, interval=[-2.0, -0.5],
                            tier="full", paper_value="Fig. 1")]
    out = render_forest(results, tmp_path)
    assert [f["claim"] for f in out] == ["ABL-1", "MOD-2"]
    for f in out:
        assert f["path"].name == f"{FOREST_PREFIX}{f['claim']}.png"
        assert f["path"].read_bytes()[:8] == PNG_SIGNATURE
    assert "(a: replicated, b: inconclusive)" in out[0]["caption"]  # the skipped model has no row


def test_many_parts_are_cut_with_a_note(tmp_path):
    details = {f"p{i}": {"value": float(i), "interval": [i - 1.0, i + 1.0], "unit": "nats"} for i in range(60)}
    out = render_forest([make_result("ABL-3", "a", "replicated", details=details)], tmp_path)
    assert "not drawn" in out[0]["caption"]
    assert str(60 + 1 - MAX_ROWS) in out[0]["caption"]


def test_report_shows_statements_and_forest_plots(tmp_path):
    run = tmp_path / "run"
    write_result(run, make_result("ABL-1", "a", "replicated", statement=STATEMENT))
    write_result(run, make_result("ABL-2", "a", "inconclusive"))  # written before statements were recorded
    md, html = render_report(run)
    text = md.read_text()
    assert f"**ABL-1** {STATEMENT}" in text and f"Claim: {STATEMENT}" in text
    assert (run / "figures" / f"{FOREST_PREFIX}ABL-1.png").is_file()
    assert f"figures/{FOREST_PREFIX}ABL-1.png" in text
    page = html.read_text()
    assert f'<span class="stmt">{STATEMENT}</span>' in page
    assert 'data-figure="forest__ABL-1.png"' in page
    data = collect(run)
    assert [f.paper for f in data.figures if f.path.name.startswith(FOREST_PREFIX)] == ["ABL", "ABL"]


def test_old_result_files_without_a_statement_load(tmp_path):
    r = make_result("ABL-1", "a", "replicated")
    d = r.to_dict()
    del d["statement"]
    path = result_path(tmp_path, "ABL-1", "a")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(d))
    assert ClaimResult.from_dict(json.loads(path.read_text())).statement is None
