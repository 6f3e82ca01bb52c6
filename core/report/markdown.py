"""The Markdown report of a run, built only from the files in the run folder (and the runs beside it).

:func:`render_report` collects the run once (:func:`core.report.collect.collect`) and writes
``report.md`` (:func:`render_markdown`), ``report.html`` (:mod:`core.report.html`) and ``figures/*``
(:mod:`core.report.figures`), all atomically. The Markdown report shows:

1. the run metadata; 2. counts per verdict; 3. the verdict table (the *measured* verdict always;
an expected non-replication recorded for CI is marked "xfail" beside it, never in its place; paper
values only for the full tier, claims.md "Reference values for the full tier"); 4. what changed
since the previous run, and each claim's verdicts over the recent runs; 5. per claim, the
sub-statistics, sample sizes, seeds, data and rule (claims.md's words; the harness's reading of it
apart, as "Read as"); 6. unreadable files, figures not drawn, skipped
and errored results; 7. figures, one section per paper: the ABL figure (the peak-ablation paper's
Fig. 2, :mod:`core.abl.figures`), one column per model, top1 (%) and CE (nats) against the fraction
of attention pre-out neurons pruned, one line per ablation method; the MOD and BCL figures and tables
of their renderers.

The command line is :mod:`core.report.cli` (``python -m core.report``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from core.cache import atomic_write_text
from core.papers import citation
from core.report.collect import ReportData, collect, statements
from core.report.compare import to_markdown_lines
from core.report.format import (
    DASH,
    HISTORY_MARKS,
    _cell,
    _inline,
    _summary_line,
    fmt_interval,
    fmt_num,
    needed_text,
    readings_text,
    record_text,
    stat_text,
    verdict_text,
)
from core.report.history import HISTORY_LENGTH
from core.report.html import render_html
from core.provenance import report_line
from core.results import ClaimResult, claim_sort_key

REPORT_NAME = "report.md"

_SMALL_FOOTNOTE = (
    "[^small]: Small-tier results come from stand-in models and data and are never compared with "
    "the papers' numbers (claims.md, \"Reference values for the full tier\"); paper values are shown "
    "for the full tier only."
)
#: Said under the headline table of a run with rehearsal models (core.zoo.rehearsal).
REHEARSAL_NOTE = ("Rehearsal models (tier `rehearsal`, `rehearsal:X@NL`) are the papers' architectures at full "
                  "width with seeded random weights: their verdicts mean nothing; they show only that every "
                  "code path of the full tier runs at the papers' widths.")
_RUN_KEYS_FIRST = ("profile", "tier", "device", "git_commit", "commit", "started_at", "started",
                   "finished_at", "finished", "duration_s", "versions", "package_versions")


# ---------------------------------------------------------------------- formatting
def _statistic_text(result: ClaimResult) -> str:
    if result.statistic is None:
        return DASH
    decided = f"; decided by {result.decided_by}" if result.decided_by else ""
    return f"{fmt_num(result.statistic)} ({result.statistic_name}{decided})"


def _paper_text(result: ClaimResult) -> str:
    if result.tier != "full":
        return f"{DASH}[^small]"
    return result.paper_value if result.paper_value else DASH


# ---------------------------------------------------------------------- sections
def _metadata_lines(run: dict[str, Any]) -> list[str]:
    keys = [k for k in _RUN_KEYS_FIRST if k in run] + [k for k in run if k not in _RUN_KEYS_FIRST]
    return [f"- **{k}**: {_inline(run[k])}" for k in keys]


def _table_lines(results: list[ClaimResult]) -> list[str]:
    said = statements(results)
    lines = [
        "| claim | model | tier | statistic | 95% interval | verdict | readings | to decide | paper value "
        "| CI record |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        claim = f"**{r.claim}** {said[r.claim]}" if r.claim in said else r.claim
        cells = [claim, f"`{r.model}`", r.tier, _statistic_text(r), fmt_interval(r.interval),
                 verdict_text(r), readings_text(r), needed_text(r), _paper_text(r), record_text(r)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _value_lines(value: Any, indent: int) -> list[str]:
    """Nested bullet lines for a JSON value (dicts recurse; ``{"value", "interval"}`` on one line)."""
    pad = "  " * indent
    lines = []
    for key, v in value.items():
        text = stat_text(v)
        if text is not None:
            lines.append(f"{pad}- {key}: {text}")
        elif isinstance(v, dict) and v:
            lines.append(f"{pad}- {key}:")
            lines.extend(_value_lines(v, indent + 1))
        else:
            lines.append(f"{pad}- {key}: {_inline(v)}")
    return lines


def _details_lines(results: list[ClaimResult]) -> list[str]:
    lines: list[str] = []
    claims = sorted({r.claim for r in results}, key=claim_sort_key)
    for claim in claims:
        rows = [r for r in results if r.claim == claim]
        lines += [f"### {claim}", ""]
        said = next((r.statement for r in rows if r.statement), None)
        if said:
            lines += [f"Claim: {said}", ""]
        rule = next((r.rule for r in rows if r.rule), None)
        if rule:
            lines += [f"Rule: {rule}", ""]
        read_as = next((r.read_as for r in rows if r.read_as), None)
        if read_as:
            lines += [f"Read as: {read_as}", ""]
        for r in rows:
            stat = fmt_num(r.statistic)
            if r.interval is not None:
                stat += f" {fmt_interval(r.interval)}"
            lines += [
                "<details>",
                f"<summary>{claim} · {r.model} ({r.tier}): {_html_escape(verdict_text(r))}</summary>",
                "",
                f"- statistic: {stat} ({r.statistic_name})",
            ]
            if r.decided_by:
                lines.append(f"- decided by: {r.decided_by}")
            if r.needed:
                lines.append(f"- to decide: {r.needed.get('text', DASH)}")
            if r.readings:
                lines.append(f"- readings: {r.robustness or DASH}")
                for rid, alt in r.readings.items():
                    lines.append(f"  - {rid} ({alt.get('alternate', '')}): {alt.get('verdict')}, "
                                 f"{fmt_num(alt.get('statistic'))} {fmt_interval(alt.get('interval'))} "
                                 f"({alt.get('statistic_name', '')})")
            if r.readings_skipped:
                lines.append(f"- readings not run in this profile: {', '.join(r.readings_skipped)}")
            if r.details:
                lines.append("- details:")
                lines.extend(_value_lines(r.details, 1))
            lines.append(f"- sample sizes: {_inline(r.sample_sizes)}")
            lines.append(f"- seeds: {_inline(r.seeds)}")
            lines.append(f"- data: {_inline(r.data)}")
            lines.append(f"- profile: {r.profile}")
            if r.rule and r.rule != rule:
                lines.append(f"- rule: {r.rule}")
            if r.read_as and r.read_as != read_as:
                lines.append(f"- read as: {r.read_as}")
            if r.tier == "full":
                lines.append(f"- paper value: {r.paper_value or DASH}")
            if r.reason:
                lines.append(f"- reason: {r.reason}")
            if r.recorded is not None:
                lines.append(f"- recorded verdict (CI gating): {r.recorded}")
            if r.duration_s is not None:
                lines.append(f"- duration: {fmt_num(r.duration_s)} s")
            lines.append(f"- created: {r.created_at}")
            lines.append(f"- versions: {_inline(r.versions)}")
            lines += ["", "</details>", ""]
    return lines


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------------- Markdown
def _history_lines(data: ReportData) -> list[str]:
    runs = data.history_runs
    heads = [f"`{r.name}`" + (f" ({r.profile})" if r.profile else "") for r in runs]
    lines = [
        f"Verdicts over the last {len(runs)} runs in `{data.run_dir.parent}`, oldest first, this run "
        "last: " + ", ".join(f"{m} {v}" for v, m in HISTORY_MARKS.items()) + ", blank: not run.",
        "",
        "| claim | model | " + " | ".join(_cell(h) for h in heads) + " |",
        "| --- | --- | " + " | ".join("---" for _ in runs) + " |",
    ]
    for (claim, model), row in sorted(data.history.items(),
                                      key=lambda kv: (claim_sort_key(kv[0][0]), kv[0][1])):
        marks = [HISTORY_MARKS.get(r.verdict, r.verdict) if r is not None else " " for r in row]
        lines.append(f"| {claim} | `{_cell(model)}` | " + " | ".join(marks) + " |")
    return lines


def _comparison_lines(data: ReportData) -> list[str]:
    c = data.comparison
    return [f"Compared with `{data.previous.name}` (the latest earlier run of this profile in "
            f"`{data.run_dir.parent}`).", ""] + to_markdown_lines(c, heading="###")


def markdown_text(data: ReportData) -> str:
    """The Markdown report of ``data`` (figures linked as ``figures/<file>``)."""
    run_dir, results, run, problems = data.run_dir, data.results, data.run, data.problems
    lines = [f"# Neuron-claims replication report: `{run_dir.name}`", ""]
    if (line := report_line(results)):
        lines += [line, ""]
    if run:
        lines += ["## Run", ""] + _metadata_lines(run) + [""]

    lines += ["## Verdicts", "", _summary_line(results, len(problems)), ""]
    if results:
        lines += _table_lines(results) + [""]
        lines += [
            "Verdicts are the measured ones (claims.md). Where a rule has several parts, the statistic "
            "is the part that decided. \"readings\": `robust` when every alternate reading that ran "
            "(claims.md, Readings) gives the same verdict, `reading-dependent` when one does not. \"to "
            "decide\": for an inconclusive verdict, the sample that would make the interval exclude 0 "
            "if the effect held at its observed size. \"CI record\": an expected non-replication "
            "recorded for CI gating; the record never replaces the measurement.",
            "",
        ]
        by_reading: dict[str, set] = {}
        for r in results:
            for rid in r.readings_skipped or []:
                by_reading.setdefault(rid, set()).add(r.claim)
        if by_reading:
            parts = [f"{rid} ({', '.join(sorted(cs, key=claim_sort_key))})" for rid, cs in sorted(by_reading.items())]
            lines += ["Readings this run skipped (they did not fit the profile's budget; `--readings all` "
                      "runs them): " + "; ".join(parts), ""]
        if any(r.tier != "full" for r in results):
            lines += [_SMALL_FOOTNOTE, ""]
        if any(r.tier == "rehearsal" for r in results):
            lines += [REHEARSAL_NOTE, ""]
    else:
        lines += ["No results.", ""]

    if data.comparison is not None:
        lines += ["## Since the previous run", ""] + _comparison_lines(data)
    if data.history_runs:
        lines += ["## History", ""] + _history_lines(data) + [""]

    if results:
        lines += ["## Details", ""] + _details_lines(results)

    skipped = [r for r in results if r.verdict in ("skipped", "error")]
    if problems or skipped or data.not_drawn:
        lines += ["## Problems", ""]
        if problems:
            lines += ["Unreadable files:", ""]
            for path, msg in problems:
                rel = path.relative_to(run_dir) if path.is_relative_to(run_dir) else path
                lines.append(f"- `{rel}`: {' '.join(msg.split())}")
            lines.append("")
        if data.not_drawn:
            lines += ["Figures not drawn:", ""]
            for what, msg in data.not_drawn:
                lines.append(f"- {what}: {' '.join(msg.split())}")
            lines.append("")
        if skipped:
            lines += ["Skipped or errored:", ""]
            for r in skipped:
                lines.append(f"- {r.claim} · `{r.model}` ({r.tier}): {r.verdict}: {r.reason}")
            lines.append("")

    if data.figures:
        lines += ["## Figures", ""]
        for paper in data.papers:
            entries = [f for f in data.figures if f.paper == paper]
            if not entries:
                continue
            lines += [f"### {paper}: {citation(paper)}", ""]
            for f in entries:
                if f.path is not None:
                    rel = (f.path.relative_to(run_dir).as_posix() if f.path.is_relative_to(run_dir)
                           else f.path.as_posix())
                    lines += [f"![{f.title}]({rel})", ""]
                else:
                    lines += [f"**{f.title}**", ""]
                if f.caption:
                    lines += [f.caption, ""]
                if f.markdown:
                    lines += [f.markdown.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def render_markdown(run_dir: str | Path, *, data: ReportData | None = None) -> Path:
    """Write ``<run_dir>/report.md`` and ``<run_dir>/figures/*`` from the run's files.

    Parameters
    ----------
    run_dir : str or path
        A run folder (layout in :mod:`core.results`). ``run.json`` is optional.
    data : ReportData, optional
        Already collected (:func:`core.report.collect.collect`); collected here otherwise.

    Returns
    -------
    pathlib.Path
        The report file.

    Raises
    ------
    FileNotFoundError
        ``run_dir`` is not a folder. Unreadable result, curve or ``run.json`` files and failing
        figure renderers do not raise: the report lists them.
    """
    data = data if data is not None else collect(run_dir)
    return atomic_write_text(Path(run_dir) / REPORT_NAME, markdown_text(data))


def render_report(run_dir: str | Path, *, history: int = HISTORY_LENGTH) -> tuple[Path, Path]:
    """Write both reports of a run: ``report.md`` and the self-contained ``report.html``.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The Markdown and the HTML report. Raises ``FileNotFoundError`` for a missing folder only.
    """
    data = collect(run_dir, history=history)
    return render_markdown(run_dir, data=data), render_html(data)
