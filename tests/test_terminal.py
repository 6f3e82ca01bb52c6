"""What a run prints: one-line verdict reasons (conftest's gate) and the closing table within 100 columns."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.report.terminal import TABLE_WIDTH, clip, closing_table, short_statistic, statistic_text
from core.results import ClaimResult

LONG_NAME = ("top1(peak) - top1(zero) at 50% pruned, percentage points of top-1 accuracy over the "
             "evaluation tokens, pooled over draws")


def _result(claim="ABL-1", model="smollm2-135m", verdict="contradicted", stat=-1.23456, interval=(-2.0, -0.5),
            reason=None, name=LONG_NAME):
    measured = verdict in ("replicated", "contradicted", "inconclusive")
    return ClaimResult(claim=claim, model=model, tier="small", profile="ci", verdict=verdict,
                       statistic=stat if measured else None, statistic_name=name,
                       interval=list(interval) if measured else None, sample_sizes={}, seeds=[0],
                       paper_value=None, data="wiki", reason=reason,
                       details={"a": {"value": 1.0, "interval": [0.0, 2.0], "unit": "pp"}} if measured else {})


def test_short_statistic_by_hand():
    assert short_statistic(-1.23456, -2.0, -0.45) == "-1.23 [-2, -0.45]"
    assert short_statistic(0.000123456, 1e-5, 2e-4) == "0.000123 [1e-05, 0.0002]"
    assert short_statistic(3.0, None, None) == "3"
    assert short_statistic(None, None, None) == "—"


def test_clip_by_hand():
    assert clip("a  b\nc", 10) == "a b c"
    assert clip("abcdefghij", 5) == "abcd…"
    assert clip("org/very-long-model", 8, keep_end=True) == "…g-model"
    with pytest.raises(ValueError, match="width must be at least 1, got 0"):
        clip("x", 0)


def test_statistic_text_is_one_short_line_with_statistic_and_interval():
    text = statistic_text(LONG_NAME + "\nsecond line", -1.23456, -2.0, -0.45)
    assert "\n" not in text
    assert text == "top1(peak) - top1(zero) at 50% pruned, … = -1.23 [-2, -0.45]"


def test_the_gate_gives_one_line_reasons():
    from conftest import _gate

    summary = statistic_text(LONG_NAME, -1.23456, -2.0, -0.45)
    with pytest.raises(pytest.xfail.Exception) as xf:
        _gate("ABL-1", "smollm2-135m", "contradicted", "contradicted", summary)
    assert str(xf.value) == f"ABL-1: contradicted (as recorded); {clip(LONG_NAME, 40)} = -1.23 [-2, -0.45]"
    assert len(str(xf.value)) <= 100
    with pytest.raises(pytest.fail.Exception) as failed:
        _gate("ABL-1", "smollm2-135m", "inconclusive", "contradicted", summary)
    assert "\n" not in str(failed.value)
    assert "measured inconclusive, recorded contradicted; " in str(failed.value)
    assert "-1.23 [-2, -0.45]" in str(failed.value)


def test_closing_table_by_hand():
    rows = [_result(), _result("ABL-10", "tiny-vit-fmnist", "replicated", 0.5, (0.25, 0.75)),
            _result("MOD-1", "minilm-l6", "skipped", reason="no GPU"),
            _result("ABL-2", "smollm2-135m", "inconclusive", 1e-4, (-2e-4, 3e-4))]
    lines = closing_table(rows)
    assert lines == [
        "claim   model            verdict       statistic [95% interval]",
        "------  ---------------  ------------  ------------------------",
        "ABL-1   smollm2-135m     contradicted  -1.23 [-2, -0.5]",
        "ABL-2   smollm2-135m     inconclusive  0.0001 [-0.0002, 0.0003]",
        "ABL-10  tiny-vit-fmnist  replicated    0.5 [0.25, 0.75]",
        "MOD-1   minilm-l6        skipped       no GPU",
        "4 results: 1 replicated, 1 contradicted, 1 inconclusive, 1 skipped",
    ]


def test_closing_table_cuts_long_models_and_reasons_to_100_columns():
    rows = [_result(model="/home/someone/checkpoints/a-very-long-folder-name/model-final-v3:random"),
            _result("MOD-2", "x", "error", reason="preflight of x failed check widths-match-config: " * 5)]
    lines = closing_table(rows)
    assert max(len(line) for line in lines) <= TABLE_WIDTH
    assert "…-name/model-final-v3:random  contradicted" in lines[2]
    assert lines[3].startswith("MOD-2  x") and lines[3].endswith("…") and "error" in lines[3]


def test_closing_table_of_nothing_and_too_narrow():
    assert closing_table([]) == ["no results in this run"]
    with pytest.raises(ValueError, match="at least 60 columns, got 40"):
        closing_table([_result()], width=40)


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=150).filter(
    str.strip)
_NUM = st.floats(allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.from_regex(r"[A-Z]{3}-[0-9]{1,3}[a-z]?", fullmatch=True), _TEXT,
                          st.sampled_from(["replicated", "contradicted", "inconclusive", "skipped", "error"]),
                          _NUM, _NUM, _NUM, _TEXT), min_size=1, max_size=12),
       st.integers(60, 140))
def test_every_line_of_the_closing_table_fits_the_width(rows, width):
    results = [_result(c, m, v, a, sorted((lo, hi)), reason=r) for c, m, v, a, lo, hi, r in rows]
    lines = closing_table(results, width=width)
    assert all(len(line) <= width and "\n" not in line for line in lines)
    assert len(lines) == len(rows) + 3
