"""The report's shared text formatting: numbers, intervals, verdicts and the lines the Markdown and
HTML reports both show.

:func:`fmt_num` (3 significant digits) and :func:`fmt_interval` format every number of the reports
(:mod:`core.report.markdown`, :mod:`core.report.html`, :mod:`core.report.compare`);
:func:`verdict_text`, :func:`record_text`, :func:`readings_text`, :func:`needed_text` and
:func:`stat_text` turn a :class:`core.results.ClaimResult` (or a sub-statistic) into the few words a
table cell shows; :data:`DASH` stands for a missing value and :data:`HISTORY_MARKS` for a verdict in
history tables.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from core.results import VERDICTS, ClaimResult

DASH = "\u2014"  # shown for a missing value


#: One character per verdict in history tables.
HISTORY_MARKS = {"replicated": "\u2713", "contradicted": "\u2717", "inconclusive": "~",
                 "skipped": "s", "error": "!"}


# ---------------------------------------------------------------------- formatting
def fmt_num(x: Any) -> str:
    """A number with 3 significant digits (all integer digits kept); ``—`` for None.

    Examples: ``44.54 -> "44.5"``, ``2.93 -> "2.93"``, ``0.01234 -> "0.0123"``, ``1234.5 -> "1234"``
    (rounded half to even), ``1e-5 -> "1.00e-05"``, ``nan -> "nan"``. Non-numbers are returned as
    ``str``.
    """
    if x is None:
        return DASH
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        return str(x)
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude < -3 or magnitude >= 7:
        return f"{x:.2e}"
    decimals = max(0, 2 - magnitude)
    return f"{x:.{decimals}f}"


def fmt_interval(interval: Any) -> str:
    """``[low, high]`` with :func:`fmt_num`; ``—`` for None."""
    if interval is None:
        return DASH
    if isinstance(interval, (list, tuple)) and len(interval) == 2:
        return f"[{fmt_num(interval[0])}, {fmt_num(interval[1])}]"
    return str(interval)


def _cell(text: Any) -> str:
    """Text made safe for one Markdown table cell (no pipes, no line breaks)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _inline(value: Any) -> str:
    """A short one-line rendering of a JSON value."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_inline(v)}" for k, v in value.items()) or DASH
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return fmt_num(value)
    if value is None:
        return DASH
    return str(value)


def verdict_text(result: ClaimResult) -> str:
    """The measured verdict as the report shows it.

    ``replicated``, ``contradicted``, ``inconclusive``, ``skipped: <reason>``, ``error: <reason>``.
    The CI record is not part of it (see :func:`record_text`): a reader comes for the verdict.
    """
    text = result.verdict
    if result.verdict in ("skipped", "error") and result.reason:
        text = f"{result.verdict}: {result.reason}"
    return text


def record_text(result: ClaimResult) -> str:
    """The CI-gating mark, for a column of its own: ``xfail: recorded <verdict>`` (plus
    ``, measured differs`` when the measurement no longer matches the record), else a dash."""
    if not result.is_xfail:
        return DASH
    note = f"xfail: recorded {result.recorded}"
    if result.recorded != result.verdict:
        note += ", measured differs"
    return note


def readings_text(result: ClaimResult) -> str:
    """``robust`` / ``reading-dependent (R1: contradicted)`` over the alternates that ran; a dash
    when none ran."""
    if not result.readings:
        return DASH
    differing = [f"{rid}: {alt.get('verdict')}" for rid, alt in result.readings.items()
                 if alt.get("verdict") != result.verdict]
    text = result.robustness or ("robust" if not differing else "reading-dependent")
    return f"{text} ({'; '.join(differing)})" if differing else f"{text} ({', '.join(result.readings)})"


def needed_text(result: ClaimResult) -> str:
    """What an inconclusive verdict would need, in a few words; a dash otherwise."""
    need = result.needed or {}
    if result.verdict != "inconclusive" or not need:
        return DASH
    if need.get("needed") and need.get("level") and "too small" not in need.get("text", ""):
        return f"~{need['needed']} {need['level']} (now {need.get('have')})"
    return str(need.get("text", DASH))


def _summary_line(results: list[ClaimResult], n_unreadable: int) -> str:
    counts = Counter(r.verdict for r in results)
    parts = [f"{counts[v]} {v}" for v in VERDICTS if counts[v]]
    n_xfail = sum(r.is_xfail for r in results)
    line = f"**{len(results)} result(s):** " + (", ".join(parts) if parts else "none")
    if n_xfail:
        line += f"; {n_xfail} recorded as expected non-replication (xfail)"
    if n_unreadable:
        line += f"; {n_unreadable} unreadable file(s)"
    return line + "."


def stat_text(v: Any) -> str | None:
    """``{"value", "interval"?, "unit"?, "n"?}`` as one line ("0.12 [0.05, 0.20] nats (n=9)"); None for
    anything else."""
    if not (isinstance(v, dict) and "value" in v and set(v) <= {"value", "interval", "unit", "n"}):
        return None
    text = fmt_num(v["value"])
    if "interval" in v:
        text += f" {fmt_interval(v['interval'])}"
    if v.get("unit"):
        text += f" {v['unit']}"
    if "n" in v:
        text += f" (n={fmt_num(v['n'])})"
    return text
