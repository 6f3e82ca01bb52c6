"""What a run prints on the terminal: one short line per verdict and a closing table of the run.

The numbers behind a verdict (every sub-statistic, the sample sizes, the data) stay in the result files
and the report; the terminal gets what a person reads at a glance (after lm-evaluation-harness's
closing table):

- :func:`statistic_text`: ``<statistic> = -1.23 [-2.01, -0.45]``, what the one-line reason of an
  xfail or a failure says of the numbers (``ABL-1: contradicted (as recorded); <statistic> = ...``);
- :func:`closing_table`: claim, model, verdict and statistic [95% interval] of every result of the run,
  one row each, no line wider than ``width`` columns (100 by default).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from core.results import VERDICTS, ClaimResult, result_sort_key

#: Widest line the closing table writes, in columns.
TABLE_WIDTH = 100

#: Longest statistic name a verdict line shows (longer ones are cut, ending in "…").
NAME_WIDTH = 40

#: Longest model name the closing table shows (longer ones keep their end, starting with "…").
MODEL_WIDTH = 28


def short_statistic(value: float | None, low: float | None, high: float | None) -> str:
    """``"-1.23 [-2.01, -0.45]"``: the value and its 95% interval, 3 significant digits each
    (``"—"`` for a missing value; the value alone without an interval)."""
    if value is None:
        return "—"
    if low is None or high is None:
        return f"{value:.3g}"
    return f"{value:.3g} [{low:.3g}, {high:.3g}]"


def clip(text: str, width: int, *, keep_end: bool = False) -> str:
    """``text`` on one line (whitespace runs become one space), at most ``width`` characters: cut,
    with "…" where the cut is (at the end, or at the start with ``keep_end``).

    Raises
    ------
    ValueError
        For ``width`` < 1.
    """
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    return "…" + text[len(text) - width + 1:] if keep_end else text[:width - 1] + "…"


def statistic_text(statistic_name: str, value: float | None, low: float | None, high: float | None) -> str:
    """``"<name> = <value> [<low>, <high>]"``, the name cut to :data:`NAME_WIDTH` characters."""
    return f"{clip(statistic_name, NAME_WIDTH)} = {short_statistic(value, low, high)}"


def closing_table(results: Iterable[ClaimResult], *, width: int = TABLE_WIDTH) -> list[str]:
    """The run's closing table: a header, a rule, one row per result (claim order, then model), and a
    tally of the verdicts; every line at most ``width`` columns.

    A result without a statistic (skipped, error) shows its reason in the statistic column, cut to fit.

    Raises
    ------
    ValueError
        For ``width`` < 60 (the table needs that much).
    """
    if width < 60:
        raise ValueError(f"closing table width must be at least 60 columns, got {width}")
    rows = sorted(results, key=result_sort_key)
    if not rows:
        return ["no results in this run"]
    claim_w = max(5, *(len(r.claim) for r in rows))
    model_w = min(MODEL_WIDTH, max(5, *(len(r.model) for r in rows)))
    verdict_w = max(7, *(len(r.verdict) for r in rows))
    stat_w = width - claim_w - model_w - verdict_w - 6

    def line(claim: str, model: str, verdict: str, stat: str) -> str:
        return (f"{clip(claim, claim_w):<{claim_w}}  {clip(model, model_w, keep_end=True):<{model_w}}  "
                f"{verdict:<{verdict_w}}  {clip(stat, stat_w)}").rstrip()

    out = [line("claim", "model", "verdict", "statistic [95% interval]"),
           line("-" * claim_w, "-" * model_w, "-" * verdict_w, "-" * min(stat_w, 24))]
    for r in rows:
        if r.statistic is None:
            stat = r.reason or r.statistic_name
        else:
            lo, hi = r.interval if r.interval else (None, None)
            stat = short_statistic(r.statistic, lo, hi)
        out.append(line(r.claim, r.model, r.verdict, stat))
    tally = Counter(r.verdict for r in rows)
    order = [v for v in VERDICTS if v in tally] + sorted(set(tally) - set(VERDICTS))
    out.append(clip(f"{len(rows)} results: " + ", ".join(f"{tally[v]} {v}" for v in order), width))
    return out
