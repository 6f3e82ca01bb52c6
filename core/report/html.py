"""The HTML report of a run: one self-contained page (figures embedded as data URIs, no script).

:func:`render_html` writes ``<run_dir>/report.html`` from the :class:`core.report.collect.ReportData` that
:func:`core.report.collect.collect` gathers (the same data as the Markdown report), atomically. The page
opens from disk with no server and nothing fetched. It shows, in order:

1. a headline table of every claim (rows) against every model (columns): the measured verdict, the
   statistic and its 95% interval, and "xfail" where CI records an expected non-replication;
2. what changed since the previous run of the same profile (:mod:`core.report.compare`);
3. one section per paper (ABL, MOD, BCL): its figures, then per claim the rule of claims.md it
   applied (word for word) and, apart, how the harness reads it ("Read as"), and, per model, the statistic, interval, verdict, the paper's value (full tier only),
   the verdicts over the recent runs, and the sub-statistics, sample sizes, seeds and data;
4. skipped and errored results with their reasons; unreadable files and figures not drawn;
5. the run's metadata (git commit, device, profile, duration, package versions).
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

from core.cache import atomic_write_text
from core.papers import citation
from core.report.collect import ReportData, claim_family, statements
from core.report.compare import to_markdown_lines
from core.report.figures import FigureEntry
from core.report.format import (
    DASH,
    HISTORY_MARKS,
    _inline,
    _summary_line,
    fmt_interval,
    fmt_num,
    needed_text,
    readings_text,
    stat_text,
)
from core.provenance import experiment_summary, revision_text
from core.results import VERDICTS, ClaimResult, claim_sort_key

HTML_NAME = "report.html"

_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
         ".gif": "image/gif", ".webp": "image/webp"}

_CSS = """
:root { --ok:#1a7f37; --bad:#c62828; --mid:#b26a00; --skip:#6e7781; --err:#8250df;
        --line:#d0d7de; --soft:#f6f8fa; --text:#1f2328; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
       color:var(--text); background:#fff; }
header { padding:18px 24px 10px; border-bottom:1px solid var(--line); background:var(--soft); }
header h1 { margin:0 0 4px; font-size:22px; }
header .sub { color:#57606a; font-size:14px; }
nav { position:sticky; top:0; z-index:2; background:#fff; border-bottom:1px solid var(--line);
      padding:6px 24px; font-size:14px; }
nav a { margin-right:14px; color:#0969da; text-decoration:none; }
main { max-width:1280px; margin:0 auto; padding:8px 24px 48px; }
h2 { font-size:19px; margin:28px 0 8px; padding-bottom:4px; border-bottom:1px solid var(--line); }
h3 { font-size:16px; margin:18px 0 6px; }
.scroll { overflow-x:auto; }
table { border-collapse:collapse; font-size:13.5px; margin:6px 0 12px; }
th, td { border:1px solid var(--line); padding:4px 8px; vertical-align:top; text-align:left; }
thead th { background:var(--soft); position:sticky; top:0; }
td.num, span.num { font-variant-numeric:tabular-nums; }
.matrix td { min-width:150px; }
.matrix td.none { color:#8c959f; text-align:center; }
.verdict { display:inline-block; padding:1px 7px; border-radius:10px; color:#fff; font-weight:600;
           font-size:12.5px; white-space:nowrap; }
.v-replicated { background:var(--ok); } .v-contradicted { background:var(--bad); }
.v-inconclusive { background:var(--mid); } .v-skipped { background:var(--skip); }
.v-error { background:var(--err); }
.xfail { display:block; margin-top:2px; font-size:10.5px; color:#8c959f; }
.robust { display:inline-block; margin-left:4px; font-size:11.5px; color:#57606a; }
.dependent { display:inline-block; margin-left:4px; font-size:11.5px; color:#9a6700; font-weight:600; }
.need { display:block; font-size:11.5px; color:#57606a; }
.stat { display:block; margin-top:2px; }
.iv { color:#57606a; }
.muted { color:#57606a; }
.stmt { display:block; font-weight:normal; font-size:12px; color:#24292f; max-width:22em; }
.rule { font-weight:normal; color:#57606a; font-size:13px; display:block; margin-top:2px; }
tr.claim th { background:#eef2f6; }
.hist span { display:inline-block; width:18px; height:18px; line-height:18px; margin-right:2px;
             text-align:center; border-radius:4px; color:#fff; font-size:12px; font-weight:700; }
.hist span.absent { background:#eaeef2; color:#8c959f; }
.hist span.current { outline:2px solid #0969da; outline-offset:1px; }
figure { margin:12px 0 20px; }
figure img { max-width:100%; height:auto; border:1px solid var(--line); }
figcaption { font-size:13.5px; color:#57606a; max-width:960px; }
details summary { cursor:pointer; color:#0969da; }
details ul { margin:4px 0; padding-left:18px; }
.summary .verdict { margin-right:6px; }
.problem { color:var(--bad); }
code { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12.5px; }
.legend { font-size:13px; color:#57606a; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _verdict_chip(verdict: str) -> str:
    return f'<span class="verdict v-{_e(verdict)}">{_e(verdict)}</span>'


def _xfail_chip(r: ClaimResult) -> str:
    if not r.is_xfail:
        return ""
    note = f"recorded {r.recorded}" + (", measured differs" if r.recorded != r.verdict else "")
    return f'<span class="xfail" title="expected non-replication recorded for CI gating">xfail: {_e(note)}</span>'


def _readings_chip(r: ClaimResult) -> str:
    if not r.readings:
        return ""
    text = readings_text(r)
    cls = "dependent" if (r.robustness or text).startswith("reading-dependent") else "robust"
    return f'<span class="{cls}" title="alternate readings (claims.md, Readings)">{_e(text)}</span>'


def _need_line(r: ClaimResult) -> str:
    text = needed_text(r)
    if text == DASH:
        return ""
    return (f'<span class="need" title="{_e((r.needed or {}).get("text", ""))}">to decide: '
            f'{_e(text)}</span>')


def _inline_code(text: str) -> str:
    """Escape ``text`` and turn Markdown backticks into <code> and **bold** into <b>."""
    out = _e(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def markdown_to_html(text: str) -> str:
    """A small Markdown subset as HTML: pipe tables, ``-`` lists, paragraphs, `code`, **bold**.

    Used for the tables that figure renderers return (``"markdown"``) and for the comparison.
    """
    blocks, current = [], []
    for line in text.splitlines():
        if line.strip():
            current.append(line.rstrip())
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    out = []
    for block in blocks:
        if all(line.lstrip().startswith("|") for line in block):
            rows = [[c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
                    for line in block]
            rows = [[c.replace("\\|", "|") for c in row] for row in rows]
            body = [row for row in rows if not all(re.fullmatch(r":?-{3,}:?", c) for c in row)]
            has_head = len(rows) > 1 and all(re.fullmatch(r":?-{3,}:?", c) for c in rows[1])
            parts = ['<div class="scroll"><table>']
            start = 0
            if has_head:
                parts.append("<thead><tr>" + "".join(f"<th>{_inline_code(c)}</th>" for c in body[0])
                             + "</tr></thead>")
                start = 1
            parts.append("<tbody>")
            for row in body[start:]:
                parts.append("<tr>" + "".join(f"<td>{_inline_code(c)}</td>" for c in row) + "</tr>")
            parts.append("</tbody></table></div>")
            out.append("".join(parts))
        elif block[0].startswith("#"):
            level = min(len(block[0]) - len(block[0].lstrip("#")) + 1, 6)
            out.append(f"<h{level}>{_inline_code(block[0].lstrip('#').strip())}</h{level}>")
            if block[1:]:
                out.append(f"<p>{_inline_code(' '.join(block[1:]))}</p>")
        elif all(line.lstrip().startswith("- ") for line in block):
            out.append("<ul>" + "".join(f"<li>{_inline_code(line.lstrip()[2:])}</li>"
                                        for line in block) + "</ul>")
        else:
            out.append(f"<p>{_inline_code(' '.join(block))}</p>")
    return "\n".join(out)


def data_uri(path: str | Path) -> str:
    """The file as a ``data:<mime>;base64,...`` URI (mime from the suffix; PNG by default)."""
    path = Path(path)
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _stat_html(r: ClaimResult) -> str:
    if r.statistic is None:
        return ""
    return (f'<span class="stat num" title="{_e(r.statistic_name)}">{_e(fmt_num(r.statistic))} '
            f'<span class="iv">{_e(fmt_interval(r.interval))}</span></span>')


def _models_in_order(results: list[ClaimResult]) -> list[str]:
    tiers = {}
    for r in results:
        tiers.setdefault(r.model, r.tier)
    return sorted(tiers, key=lambda m: (tiers[m] != "small", m))


def _headline(data: ReportData) -> str:
    results = data.results
    if not results:
        return "<p>No results.</p>"
    models = _models_in_order(results)
    claims = sorted({r.claim for r in results}, key=claim_sort_key)
    cell = {(r.claim, r.model): r for r in results}
    tier = {r.model: r.tier for r in results}
    head = "".join(f'<th><code>{_e(m)}</code><br><span class="muted">{_e(tier[m])}</span></th>'
                   for m in models)
    said = statements(results)
    rows = []
    for claim in claims:
        tds = []
        for m in models:
            r = cell.get((claim, m))
            if r is None:
                tds.append('<td class="none" title="not run on this model">\u00b7</td>')
                continue
            title = r.reason if r.reason else r.statistic_name + (
                f"; decided by {r.decided_by}" if r.decided_by else "")
            tds.append(f'<td data-verdict="{_e(r.verdict)}" title="{_e(title)}">'
                       f"{_verdict_chip(r.verdict)}{_readings_chip(r)}{_stat_html(r)}{_need_line(r)}"
                       f"{_xfail_chip(r)}</td>")
        stmt = f'<span class="stmt">{_e(said[claim])}</span>' if claim in said else ""
        rows.append(f'<tr><th><a href="#{_e(claim)}">{_e(claim)}</a>{stmt}</th>{"".join(tds)}</tr>')
    return (f'<div class="scroll"><table id="headline" class="matrix"><thead><tr><th>claim</th>{head}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
            '<p class="legend">Each cell: the measured verdict (claims.md), the claim\'s statistic '
            "and its 95% interval (hover for what the statistic is). \u201cxfail\u201d: recorded as an "
            "expected non-replication for CI gating; the record never replaces the measurement. "
            "Small-tier results come from stand-in models and are never compared with the papers' "
            "numbers." + (" Rehearsal models (tier rehearsal) carry random weights at the papers' widths: "
                          "their verdicts mean nothing." if any(r.tier == "rehearsal" for r in results) else "")
            + "</p>")


def _summary(data: ReportData) -> str:
    text = _summary_line(data.results, len(data.problems))
    chips = []
    for v in VERDICTS:
        n = sum(r.verdict == v for r in data.results)
        if n:
            chips.append(f'<span class="verdict v-{v}">{n} {v}</span>')
    return f'<p class="summary">{"".join(chips)}</p><p class="muted">{_inline_code(text)}</p>'


def _history_html(data: ReportData, r: ClaimResult) -> str:
    row = data.history.get((r.claim, r.model))
    if not row:
        return ""
    spans = []
    for i, (run, res) in enumerate(zip(data.history_runs, row)):
        current = " current" if i == len(row) - 1 else ""
        label = f"{run.name}" + (f" ({run.profile})" if run.profile else "")
        if res is None:
            spans.append(f'<span class="absent{current}" title="{_e(label)}: not run">\u00b7</span>')
        else:
            tip = f"{label}: {res.verdict}"
            if res.statistic is not None:
                tip += f" {fmt_num(res.statistic)} {fmt_interval(res.interval)}"
            spans.append(f'<span class="v-{_e(res.verdict)}{current}" title="{_e(tip)}">'
                         f"{_e(HISTORY_MARKS.get(res.verdict, '?'))}</span>")
    return f'<span class="hist">{"".join(spans)}</span>'


def _value_items(value: dict[str, Any]) -> str:
    items = []
    for key, v in value.items():
        text = stat_text(v)
        if text is not None:
            items.append(f"<li>{_e(key)}: <span class=\"num\">{_e(text)}</span></li>")
        elif isinstance(v, dict) and v:
            items.append(f"<li>{_e(key)}:<ul>{_value_items(v)}</ul></li>")
        else:
            items.append(f"<li>{_e(key)}: {_e(_inline(v))}</li>")
    return "".join(items)


def _details_html(r: ClaimResult) -> str:
    items = [f"<li>statistic: {_e(r.statistic_name or DASH)}</li>"]
    if r.decided_by:
        items.append(f"<li>decided by: {_e(r.decided_by)}</li>")
    if r.needed:
        items.append(f"<li>to decide: {_e(r.needed.get('text', DASH))}</li>")
    if r.readings:
        alts = "".join(f"<li>{_e(rid)} ({_e(a.get('alternate', ''))}): {_e(a.get('verdict'))}, "
                       f"{_e(fmt_num(a.get('statistic')))} {_e(fmt_interval(a.get('interval')))} "
                       f"({_e(a.get('statistic_name', ''))})</li>" for rid, a in r.readings.items())
        items.append(f"<li>readings: {_e(r.robustness or DASH)}<ul>{alts}</ul></li>")
    if r.readings_skipped:
        items.append(f"<li>readings not run in this profile: {_e(', '.join(r.readings_skipped))}</li>")
    if r.details:
        items.append(f"<li>details:<ul>{_value_items(r.details)}</ul></li>")
    items += [f"<li>sample sizes: {_e(_inline(r.sample_sizes))}</li>",
              f"<li>seeds: {_e(_inline(r.seeds))}</li>",
              f"<li>data: {_e(_inline(r.data))}</li>",
              f"<li>profile: {_e(r.profile)}</li>"]
    if r.recorded is not None:
        items.append(f"<li>recorded verdict (CI gating): {_e(r.recorded)}</li>")
    if r.duration_s is not None:
        items.append(f"<li>duration: {_e(fmt_num(r.duration_s))} s</li>")
    items += [f"<li>created: {_e(r.created_at)}</li>",
              f"<li>versions: {_e(_inline(r.versions))}</li>"]
    return f"<details><summary>numbers</summary><ul>{''.join(items)}</ul></details>"


def _figure_html(f: FigureEntry) -> str:
    parts = []
    if f.path is not None:
        parts.append(f'<figure><img src="{data_uri(f.path)}" alt="{_e(f.title)}" '
                     f'data-figure="{_e(f.path.name)}"><figcaption><b>{_e(f.title)}.</b> '
                     f"{_inline_code(f.caption)}</figcaption></figure>")
    else:
        parts.append(f"<h3>{_e(f.title)}</h3>")
        if f.caption:
            parts.append(f'<p class="muted">{_inline_code(f.caption)}</p>')
    if f.markdown:
        parts.append(markdown_to_html(f.markdown))
    return "".join(parts)


def _paper_section(data: ReportData, paper: str) -> str:
    results = [r for r in data.results if claim_family(r.claim) == paper]
    figures = [f for f in data.figures if f.paper == paper]
    title = citation(paper)
    parts = [f'<section id="paper-{_e(paper)}"><h2>{_e(paper)} <span class="muted">\u00b7 '
             f"{_e(title)}</span></h2>"]
    if figures:
        parts += [_figure_html(f) for f in figures]
    if results:
        show_paper = any(r.tier == "full" for r in results)
        show_hist = bool(data.history_runs)
        heads = ["model", "tier", "statistic", "95% interval", "verdict"]
        if show_paper:
            heads.append("paper value (full tier)")
        if show_hist:
            heads.append(f"last {len(data.history_runs)} runs")
        heads.append("")
        rows = []
        for claim in sorted({r.claim for r in results}, key=claim_sort_key):
            rs = [r for r in results if r.claim == claim]
            rule = next((r.rule for r in rs if r.rule), None)
            rule_html = (f'<span class="rule">Rule: {_e(rule)}</span>' if rule
                         else '<span class="rule">Rule: not recorded in the result</span>')
            read_as = next((r.read_as for r in rs if r.read_as), None)
            if read_as:
                rule_html += f'<span class="rule">Read as: {_e(read_as)}</span>'
            said = next((r.statement for r in rs if r.statement), None)
            said_html = f" \u00b7 {_e(said)}" if said else ""
            rows.append(f'<tr class="claim" id="{_e(claim)}"><th colspan="{len(heads)}">{_e(claim)}'
                        f"{said_html}{rule_html}</th></tr>")
            for r in rs:
                verdict = _verdict_chip(r.verdict) + _readings_chip(r) + _need_line(r) + _xfail_chip(r)
                if r.reason:
                    verdict += f'<div class="muted">{_e(r.reason)}</div>'
                if r.rule and r.rule != rule:
                    verdict += f'<div class="rule">Rule: {_e(r.rule)}</div>'
                if r.read_as and r.read_as != read_as:
                    verdict += f'<div class="rule">Read as: {_e(r.read_as)}</div>'
                cells = [f"<code>{_e(r.model)}</code>", _e(r.tier),
                         f'<span class="num">{_e(fmt_num(r.statistic))}</span>'
                         + (f'<div class="muted">{_e(r.statistic_name)}</div>' if r.statistic_name else ""),
                         f'<span class="num">{_e(fmt_interval(r.interval))}</span>', verdict]
                if show_paper:
                    cells.append(_e(r.paper_value or DASH) if r.tier == "full"
                                 else f'<span class="muted" title="small tier: never compared with '
                                      f'the paper">{DASH}</span>')
                if show_hist:
                    cells.append(_history_html(data, r))
                cells.append(_details_html(r))
                rows.append(f'<tr data-claim="{_e(r.claim)}" data-model="{_e(r.model)}">'
                            + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append('<div class="scroll"><table class="claims"><thead><tr>'
                     + "".join(f"<th>{_e(h)}</th>" for h in heads)
                     + f'</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
    parts.append("</section>")
    return "".join(parts)


def _changes_section(data: ReportData) -> str:
    if data.comparison is None:
        return ""
    body = markdown_to_html("\n".join(to_markdown_lines(data.comparison, heading="###")))
    return (f'<section id="changes"><h2>Since the previous run</h2><p class="muted">Compared with '
            f"<code>{_e(data.previous.name)}</code>, the latest earlier run of this profile in "
            f"<code>{_e(data.run_dir.parent)}</code>.</p>{body}</section>")


def _skipped_section(data: ReportData) -> str:
    skipped = [r for r in data.results if r.verdict in ("skipped", "error")]
    if not skipped:
        return ""
    rows = "".join(f"<tr><td>{_e(r.claim)}</td><td><code>{_e(r.model)}</code></td><td>{_e(r.tier)}</td>"
                   f"<td>{_verdict_chip(r.verdict)}</td><td>{_e(r.reason)}</td></tr>" for r in skipped)
    return ('<section id="skipped"><h2>Skipped and errored</h2><div class="scroll"><table><thead><tr>'
            "<th>claim</th><th>model</th><th>tier</th><th>verdict</th><th>reason</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div></section>")


def _problems_section(data: ReportData) -> str:
    if not data.problems and not data.not_drawn:
        return ""
    items = []
    for path, msg in data.problems:
        rel = path.relative_to(data.run_dir) if path.is_relative_to(data.run_dir) else path
        items.append(f'<li class="problem"><code>{_e(rel)}</code>: {_e(" ".join(msg.split()))}</li>')
    for what, msg in data.not_drawn:
        items.append(f'<li class="problem">{_e(what)}: {_e(" ".join(msg.split()))}</li>')
    return (f'<section id="problems"><h2>Problems</h2><p>Unreadable files and figures not drawn '
            f"(the rest of the report is complete):</p><ul>{''.join(items)}</ul></section>")


def _run_section(data: ReportData) -> str:
    if not data.run:
        return ""
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_inline(v))}</td></tr>" for k, v in data.run.items())
    return f'<section id="run"><h2>Run</h2><div class="scroll"><table>{rows}</table></div></section>'


def _subtitle(data: ReportData) -> str:
    run = data.run or {}
    bits = []
    for key, label in (("profile", "profile"), ("device", "device"), ("started", "started"),
                       ("duration_s", "duration (s)"), ("workers", "workers")):
        if run.get(key) is not None:
            bits.append(f"{label} {_e(_inline(run[key]))}")
    if run.get("gpus"):
        bits.append(_e(", ".join(map(str, run["gpus"]))))
    if data.results:
        revisions = sorted({revision_text((r.provenance or {}).get("catalogue")) for r in data.results})
        bits.append(f"claims.md {_e(', '.join(revisions))}")
        exp = experiment_summary(data.results)
        if exp["re_read"]:
            bits.append(f'<span title="{_e("; ".join(exp["re_read"]))}">experiments: {len(exp["computed"])} '
                        f'result(s) computed, {len(exp["re_read"])} re-read from the cache</span>')
        elif exp["computed"]:
            bits.append(f"experiments: all {len(exp['computed'])} computed in this run")
    commit = run.get("git_commit") or run.get("commit")
    if commit:
        bits.append(f"commit <code>{_e(str(commit)[:12])}</code>"
                    + (" (with local changes)" if run.get("git_dirty") else ""))
    return " \u00b7 ".join(bits)


def html_text(data: ReportData) -> str:
    """The HTML report of ``data`` as one string (figures embedded)."""
    papers = data.papers
    nav = ['<a href="#top">headline</a>']
    if data.comparison is not None:
        nav.append('<a href="#changes">since previous run</a>')
    nav += [f'<a href="#paper-{_e(p)}">{_e(p)}</a>' for p in papers]
    if any(r.verdict in ("skipped", "error") for r in data.results):
        nav.append('<a href="#skipped">skipped</a>')
    if data.problems or data.not_drawn:
        nav.append('<a href="#problems">problems</a>')
    if data.run:
        nav.append('<a href="#run">run</a>')
    body = [
        f'<header id="top"><h1>Neuron-claims replication report: <code>{_e(data.run_dir.name)}</code></h1>'
        f'<div class="sub">{_subtitle(data)}</div></header>',
        f"<nav>{''.join(nav)}</nav><main>",
        f'<section id="verdicts"><h2>Verdicts</h2>{_summary(data)}{_headline(data)}</section>',
        _changes_section(data),
        *(_paper_section(data, p) for p in papers),
        _skipped_section(data), _problems_section(data), _run_section(data), "</main>",
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Replication report {_e(data.run_dir.name)}</title><style>{_CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


def render_html(data: ReportData) -> Path:
    """Write ``<run_dir>/report.html`` (atomically) from collected report data; returns the path."""
    return atomic_write_text(data.run_dir / HTML_NAME, html_text(data))
