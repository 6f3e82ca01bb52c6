"""The reports of a run, built only from the files in the run folder (and the runs beside it).

:func:`collect` reads ``run.json`` (optional run metadata), the result records
(:func:`core.results.read_results`) and the curve files (:func:`core.results.scan_curves`), draws
every paper's figures through the registry :data:`FIGURE_RENDERERS` (experiment -> renderer,
imported lazily; a missing or failing renderer is listed, never fatal), finds the recent runs beside
it (:mod:`core.report.history`) and compares it with the previous run of its profile (:mod:`core.report.compare`).
:func:`render_report` writes ``report.md`` (:func:`render_markdown`), ``report.html``
(:mod:`core.report.html`) and ``figures/*``, all atomically. The Markdown report shows:

1. the run metadata; 2. counts per verdict; 3. the verdict table (the *measured* verdict always;
an expected non-replication recorded for CI is marked "xfail" beside it, never in its place; paper
values only for the full tier, claims.md "Reference values for the full tier"); 4. what changed
since the previous run, and each claim's verdicts over the recent runs; 5. per claim, the
sub-statistics, sample sizes, seeds, data and rule; 6. unreadable files, figures not drawn, skipped
and errored results; 7. figures, one section per paper: the ABL figure (the peak-ablation paper's
Fig. 2), one column per model, top1 (%) and CE (nats) against the fraction of attention pre-out
neurons pruned, one line per ablation method; the MOD and BCL figures and tables of their renderers.

ABL curve payload (``curves/<name>.json``)::

    {"experiment": "abl", "model": "smollm2-135m", "kind": "causal" | "masked" | "image",
     "fractions": [0.0, 0.1, ..., 0.9],                       # fraction pruned, in [0, 1]
     "methods": {"zero": {"top1": [[...] per seed], "ce": [[...] per seed]}, "mean": ..., ...},
     "units": {"top1": "percent", "ce": "nats"}, "seeds": [0, 1, 2]}

Command line (:func:`main`): ``python -m core.report RUN_DIR`` re-renders both reports and prints
their paths; ``python -m core.report compare OLD NEW`` (or ``compare --previous NEW``) prints the
comparison of two runs and writes it into NEW.
"""
from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.cache import atomic_path, atomic_write_text
from core.report.history import HISTORY_LENGTH
from core.results import (
    CURVES_DIR,
    VERDICTS,
    ClaimResult,
    claim_sort_key,
    read_results,
    scan_curves,
)

REPORT_NAME = "report.md"
FIGURES_DIR = "figures"
ABL_FIGURE = "abl.png"
DASH = "\u2014"  # shown for a missing value

#: Fixed colour and line style per ablation method, so that every panel and report agree.
METHOD_STYLES: dict[str, dict[str, Any]] = {
    "zero": {"color": "#1f77b4", "linestyle": "-"},
    "mean": {"color": "#ff7f0e", "linestyle": "-"},
    "peak": {"color": "#2ca02c", "linestyle": "-", "linewidth": 2.2},
    "resample-chars": {"color": "#d62728", "linestyle": "--"},
    "resample-ids": {"color": "#9467bd", "linestyle": "--"},
    "resample-generated": {"color": "#8c564b", "linestyle": "--"},
    "resample-pixels": {"color": "#e377c2", "linestyle": "--"},
}
_EXTRA_COLOURS = ("#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#843c39")

_SMALL_FOOTNOTE = (
    "[^small]: Small-tier results come from stand-in models and data and are never compared with "
    "the papers' numbers (claims.md, \"Reference values for the full tier\"); paper values are shown "
    "for the full tier only."
)
_RUN_KEYS_FIRST = ("profile", "tier", "device", "git_commit", "commit", "started_at", "started",
                   "finished_at", "finished", "duration_s", "versions", "package_versions")


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


def _table_lines(results: list[ClaimResult]) -> list[str]:
    lines = [
        "| claim | model | tier | statistic | 95% interval | verdict | readings | to decide | paper value "
        "| CI record |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        cells = [r.claim, f"`{r.model}`", r.tier, _statistic_text(r), fmt_interval(r.interval),
                 verdict_text(r), readings_text(r), needed_text(r), _paper_text(r), record_text(r)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


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
        rule = next((r.rule for r in rows if r.rule), None)
        if rule:
            lines += [f"Rule: {rule}", ""]
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


# ---------------------------------------------------------------------- ABL figure
def check_abl_payload(payload: dict[str, Any]) -> None:
    """Check an ABL curve payload (format in the module docstring).

    Raises
    ------
    ValueError
        A key is missing, or a method's ``top1``/``ce`` is not (n_seeds, n_fractions).
    """
    for key in ("model", "fractions", "methods"):
        if key not in payload:
            raise ValueError(f"missing key {key!r}")
    n = len(payload["fractions"])
    if n == 0:
        raise ValueError("'fractions' is empty")
    if not isinstance(payload["methods"], dict) or not payload["methods"]:
        raise ValueError("'methods' must be a non-empty dict")
    for method, metrics in payload["methods"].items():
        for metric in ("top1", "ce"):
            if metric not in metrics:
                raise ValueError(f"method {method!r}: missing {metric!r}")
            arr = np.asarray(metrics[metric], dtype=float)
            if arr.ndim == 1:
                arr = arr[None, :]
            if arr.ndim != 2 or arr.shape[1] != n or arr.shape[0] == 0:
                raise ValueError(f"method {method!r}, {metric!r}: expected shape (n_seeds, {n}), "
                                 f"got {np.shape(metrics[metric])}")


def _method_style(method: str, extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if method in METHOD_STYLES:
        return METHOD_STYLES[method]
    if method not in extra:
        extra[method] = {"color": _EXTRA_COLOURS[len(extra) % len(_EXTRA_COLOURS)],
                         "linestyle": ":"}
    return extra[method]


def _method_order(methods: list[str]) -> list[str]:
    known = [m for m in METHOD_STYLES if m in methods]
    return known + sorted(m for m in methods if m not in METHOD_STYLES)


def plot_abl(payloads: list[dict[str, Any]], path: str | Path) -> Path:
    """Draw the ABL figure (peak-ablation paper, Fig. 2) and save it atomically as PNG.

    Parameters
    ----------
    payloads : list of dict
        ABL curve payloads (checked with :func:`check_abl_payload`), one column each, in order.
    path : str or path
        The PNG file to write.

    Returns
    -------
    pathlib.Path
        ``path``. Each column has top1 (top row) and CE (bottom row) against the percentage of
        neurons pruned; each method is drawn as the mean over seeds with a min-max band.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(payloads)
    fig = Figure(figsize=(max(3.6 * n + 0.8, 6.4), 6.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, n, squeeze=False, sharex=True)
    extra: dict[str, dict[str, Any]] = {}
    handles: dict[str, Any] = {}
    for col, payload in enumerate(payloads):
        x = 100.0 * np.asarray(payload["fractions"], dtype=float)
        units = payload.get("units") or {}
        for row, metric in enumerate(("top1", "ce")):
            ax = axes[row][col]
            for method in _method_order(list(payload["methods"])):
                arr = np.asarray(payload["methods"][method][metric], dtype=float)
                if arr.ndim == 1:
                    arr = arr[None, :]
                if metric == "top1" and units.get("top1") == "fraction":
                    arr = 100.0 * arr
                style = _method_style(method, extra)
                mean = np.nanmean(arr, axis=0)
                (line,) = ax.plot(x, mean, label=method, marker="o", markersize=2.5, **style)
                if arr.shape[0] > 1:
                    ax.fill_between(x, np.nanmin(arr, axis=0), np.nanmax(arr, axis=0),
                                    color=style["color"], alpha=0.18, linewidth=0)
                handles.setdefault(method, line)
            ax.grid(True, alpha=0.3)
            if row == 0:
                kind = payload.get("kind")
                seeds = payload.get("seeds")
                title = str(payload["model"]) + (f" ({kind})" if kind else "")
                if seeds:
                    title += f"\n{len(seeds)} seed(s)"
                ax.set_title(title, fontsize=10)
            else:
                ax.set_xlabel("neurons pruned (%)")
            if col == 0:
                if metric == "top1":
                    ax.set_ylabel("top-1 accuracy (%)")
                else:
                    ax.set_ylabel(f"cross-entropy ({units.get('ce', 'nats')})")
    order = _method_order(list(handles))
    fig.legend([handles[m] for m in order], order, loc="outside lower center",
               ncol=min(len(order), 4 if n <= 2 else 7), fontsize=9, frameon=False)
    fig.suptitle("Ablating attention pre-out neurons (mean over seeds; band: min-max)",
                 fontsize=11)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, metadata={"Software": None})
    return path


# ---------------------------------------------------------------------- figures of every paper
#: The papers in report order, with their citations (README).
PAPERS: dict[str, str] = {
    "ABL": "Pochinkov, Pasero, Shibayama (2024), Investigating Neuron Ablation in Attention Heads: "
           "The Case for Peak Activation Centering",
    "MOD": "Pochinkov, Jones, Rahman (2024), Modularity in Transformers: Investigating Neuron "
           "Separability & Specialization",
    "BCL": "Zhang, Gu, Yao, Semantically Interpretable Neuron Clusters in BERT",
}

#: Figure registry: a curve payload's ``"experiment"`` -> ``"module:function"`` that draws it.
#: A renderer is called as ``render(payloads, figures_dir)`` with every payload of its experiment
#: (list of dict, in file-name order) and returns a list of dicts ``{"title": str, "path": Path or
#: None, "caption": str, "markdown": optional str (a Markdown table)}``. Modules are imported only
#: when a run has curves of their experiment; a missing module or a renderer that raises is listed
#: under the report's problems and the rest of the report renders.
FIGURE_RENDERERS: dict[str, str] = {
    "abl": "core.report.markdown:render_abl_figures",
    "mod": "core.mod.figures:render",
    "bcl": "core.bcl.figures:render",
}

#: Per-file checks run before a renderer sees the payloads: a payload that fails is named, not drawn.
PAYLOAD_CHECKS: dict[str, Any] = {"abl": check_abl_payload}

HTML_NAME = "report.html"


@dataclass
class FigureEntry:
    """One figure (or table) of a paper's section of the report.

    ``path`` is the image in ``figures/`` (None for a table-only entry); ``markdown`` an optional
    Markdown table shown under it.
    """

    paper: str
    title: str
    path: Path | None
    caption: str = ""
    markdown: str | None = None


def render_abl_figures(payloads: list[dict[str, Any]], figures_dir: str | Path) -> list[dict[str, Any]]:
    """The ABL entry of :data:`FIGURE_RENDERERS`: :func:`plot_abl` of every ABL payload, one figure."""
    payloads = sorted(payloads, key=lambda p: (str(p["model"]), str(p.get("kind", ""))))
    path = plot_abl(payloads, Path(figures_dir) / ABL_FIGURE)
    models = ", ".join(f"`{p['model']}`" for p in payloads)
    return [{
        "title": "ABL: top1 and CE against the fraction of attention pre-out neurons pruned",
        "path": path,
        "caption": f"ABL (peak-ablation paper, Fig. 2) on {models}: top-1 accuracy (%, top) and "
                   "cross-entropy (nats, bottom) against the percentage of attention pre-out "
                   "neurons ablated, one line per ablation method (mean over seeds; shaded: min-max "
                   "over seeds).",
    }]


def _paper_of(experiment: str) -> str:
    return experiment.upper()


def _experiment_order(experiment: str) -> tuple:
    paper = _paper_of(experiment)
    keys = list(PAPERS)
    return (keys.index(paper) if paper in keys else len(keys), experiment)


def _resolve(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _normalise_figures(out: Any, paper: str, figures_dir: Path) -> list[FigureEntry]:
    if not isinstance(out, (list, tuple)):
        raise TypeError(f"expected a list of figure dicts, got {type(out).__name__}")
    entries = []
    for i, item in enumerate(out):
        if not isinstance(item, dict) or not isinstance(item.get("title"), str):
            raise TypeError(f"figure {i}: expected a dict with a 'title' string, got {item!r:.200}")
        path = item.get("path")
        if path is not None:
            path = Path(path)
            if not path.is_absolute() and not path.exists():
                path = figures_dir / path
            if not path.is_file():
                raise FileNotFoundError(f"figure {item['title']!r}: no image at {path}")
        markdown = item.get("markdown")
        entries.append(FigureEntry(paper=paper, title=item["title"], path=path,
                                   caption=str(item.get("caption") or ""),
                                   markdown=markdown if isinstance(markdown, str) else None))
    return entries


def draw_figures(run_dir: Path, curves: dict[str, dict[str, Any]]
                 ) -> tuple[list[FigureEntry], list[tuple[Path, str]], list[tuple[str, str]]]:
    """Draw every paper's figures from the run's curve payloads with :data:`FIGURE_RENDERERS`.

    Returns
    -------
    figures : list of FigureEntry
        In paper order (ABL, MOD, BCL, then others).
    bad_files : list of (pathlib.Path, str)
        Curve files that failed their experiment's check.
    not_drawn : list of (str, str)
        ``(what, message)`` for experiments whose renderer is missing, failed or is unknown.
    """
    figures_dir = run_dir / FIGURES_DIR
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    bad_files: list[tuple[Path, str]] = []
    not_drawn: list[tuple[str, str]] = []
    for name, payload in curves.items():
        experiment = payload.get("experiment")
        if not isinstance(experiment, str) or not experiment:
            bad_files.append((run_dir / CURVES_DIR / f"{name}.json",
                              "ValueError: no 'experiment' key naming the figure it feeds"))
            continue
        groups.setdefault(experiment.lower(), []).append((name, payload))
    figures: list[FigureEntry] = []
    for experiment in sorted(groups, key=_experiment_order):
        items = groups[experiment]
        label = f"{_paper_of(experiment)} figures ({len(items)} curve file(s))"
        spec = FIGURE_RENDERERS.get(experiment)
        if spec is None:
            not_drawn.append((label, f"no figure renderer for experiment {experiment!r} "
                                     f"(known: {', '.join(FIGURE_RENDERERS)})"))
            continue
        check = PAYLOAD_CHECKS.get(experiment)
        payloads = []
        for name, payload in items:
            if check is not None:
                try:
                    check(payload)
                except (ValueError, TypeError) as e:
                    bad_files.append((run_dir / CURVES_DIR / f"{name}.json", f"ValueError: {e}"))
                    continue
            payloads.append(payload)
        if not payloads:
            continue
        try:
            figures_dir.mkdir(parents=True, exist_ok=True)
            render = _resolve(spec)
            figures += _normalise_figures(render(payloads, figures_dir), _paper_of(experiment),
                                          figures_dir)
        except Exception as e:  # noqa: BLE001 - one paper's figures never stop the report
            not_drawn.append((f"{label} via {spec}", f"{type(e).__name__}: {e}"))
    return figures, bad_files, not_drawn


# ---------------------------------------------------------------------- what a report shows
@dataclass
class ReportData:
    """Everything a report of one run shows, read and drawn once for the Markdown and HTML reports.

    Attributes
    ----------
    run_dir : pathlib.Path
    run : dict or None
        ``run.json`` (None when absent or unreadable).
    results : list of ClaimResult
        In claim order.
    problems : list of (pathlib.Path, str)
        Unreadable result, curve and ``run.json`` files with the error message.
    not_drawn : list of (str, str)
        Figures that could not be drawn, with the error message.
    figures : list of FigureEntry
    history_runs : list of core.report.history.RunInfo
        Recent runs beside this one, oldest first, this one last.
    history : dict of (claim, model) to list of ClaimResult or None
        One entry per run of ``history_runs``.
    previous : core.report.history.RunInfo or None
        The latest earlier run of the same profile.
    comparison : core.report.compare.Comparison or None
        ``previous`` compared with this run.
    """

    run_dir: Path
    run: dict[str, Any] | None
    results: list[ClaimResult]
    problems: list[tuple[Path, str]]
    not_drawn: list[tuple[str, str]]
    figures: list[FigureEntry]
    history_runs: list[Any] = field(default_factory=list)
    history: dict[tuple[str, str], list[ClaimResult | None]] = field(default_factory=dict)
    previous: Any = None
    comparison: Any = None

    @property
    def papers(self) -> list[str]:
        """Paper keys with results or figures, in report order."""
        keys = {claim_family(r.claim) for r in self.results} | {f.paper for f in self.figures}
        return sorted(keys, key=lambda k: (list(PAPERS).index(k) if k in PAPERS else len(PAPERS), k))


def claim_family(claim: str) -> str:
    """``"ABL-10" -> "ABL"``; an id without a family prefix is its own family."""
    return claim.split("-", 1)[0].upper()


def collect(run_dir: str | Path, *, history: int = HISTORY_LENGTH, figures: bool = True) -> ReportData:
    """Read a run folder, draw its figures, find its history and compare it with the previous run.

    Parameters
    ----------
    run_dir : str or path
        A run folder (layout in :mod:`core.results`).
    history : int
        How many recent runs (this one included) to show; 0 or 1 turns history and the comparison
        with the previous run off.
    figures : bool
        Whether to draw the figures.

    Raises
    ------
    FileNotFoundError
        ``run_dir`` is not a folder. Nothing else raises: unreadable files and failed figures are
        listed in the returned data.
    """
    from core.report.compare import compare_runs
    from core.report.history import previous_run, read_run_json, recent_runs, verdict_history

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder not found: {run_dir}")
    results, result_errors = read_results(run_dir)
    curves, curve_errors = scan_curves(run_dir)
    problems: list[tuple[Path, str]] = list(result_errors) + list(curve_errors)
    run, run_problem = read_run_json(run_dir)
    if run_problem:
        problems.append(run_problem)
    drawn, bad_files, not_drawn = draw_figures(run_dir, curves) if figures else ([], [], [])
    problems += bad_files
    data = ReportData(run_dir=run_dir, run=run, results=results, problems=problems,
                      not_drawn=not_drawn, figures=drawn)
    if history > 1:
        runs = recent_runs(run_dir, n=history)
        if len(runs) > 1:
            data.history_runs = runs
            data.history = verdict_history(runs)
        data.previous = previous_run(run_dir)
        if data.previous is not None:
            data.comparison = compare_runs(data.previous.path, run_dir)
    return data


# ---------------------------------------------------------------------- Markdown
#: One character per verdict in history tables.
HISTORY_MARKS = {"replicated": "\u2713", "contradicted": "\u2717", "inconclusive": "~",
                 "skipped": "s", "error": "!"}


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
    from core.report.compare import to_markdown_lines

    c = data.comparison
    return [f"Compared with `{data.previous.name}` (the latest earlier run of this profile in "
            f"`{data.run_dir.parent}`).", ""] + to_markdown_lines(c, heading="###")


def markdown_text(data: ReportData) -> str:
    """The Markdown report of ``data`` (figures linked as ``figures/<file>``)."""
    run_dir, results, run, problems = data.run_dir, data.results, data.run, data.problems
    lines = [f"# Neuron-claims replication report: `{run_dir.name}`", ""]
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
            lines += [f"### {paper}: {PAPERS.get(paper, paper)}", ""]
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
        Already collected (:func:`collect`); collected here otherwise.

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
    from core.report.html import render_html

    data = collect(run_dir, history=history)
    return render_markdown(run_dir, data=data), render_html(data)


# ---------------------------------------------------------------------- command line
def _compare_main(argv: list[str]) -> int:
    from core.report.compare import compare_runs, to_markdown, write_comparison
    from core.report.history import previous_run

    parser = argparse.ArgumentParser(
        prog="python -m core.report compare",
        description="Compare two runs: verdicts that changed, statistics that moved outside the "
                    "earlier 95%% interval, claims and models added and removed (the nightly "
                    "summary). Prints it and writes comparison__<OLD>.md/.json into NEW.",
    )
    parser.add_argument("old", type=Path, nargs="?", help="the earlier run folder")
    parser.add_argument("new", type=Path, help="the later run folder")
    parser.add_argument("--previous", action="store_true",
                        help="compare NEW with the latest earlier run of its profile beside it "
                             "(instead of naming OLD)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the comparison files (default: NEW)")
    args = parser.parse_args(argv)
    if not args.new.is_dir():
        parser.error(f"run folder not found: {args.new}")
    if args.previous == (args.old is not None):
        parser.error("give either OLD NEW or --previous NEW")
    old = args.old
    if args.previous:
        prev = previous_run(args.new)
        if prev is None:
            print(f"no earlier run of the same profile beside {args.new}; nothing to compare")
            return 0
        old = prev.path
    if not old.is_dir():
        parser.error(f"run folder not found: {old}")
    c = compare_runs(old, args.new)
    md, js = write_comparison(c, args.out)
    print(to_markdown(c), end="")
    print(f"\nwritten: {md} and {js}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line.

    ``python -m core.report RUN_DIR [--no-history]``: re-render ``report.md`` and ``report.html`` of a
    run from its files and print their paths.

    ``python -m core.report compare OLD NEW`` (or ``compare --previous NEW``): print the comparison
    of two runs and write it into NEW (:mod:`core.report.compare`).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":
        return _compare_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m core.report",
        description="Render report.md, report.html and the figures of a neuron-claims run folder. "
                    "'python -m core.report compare OLD NEW' compares two runs.",
    )
    parser.add_argument("run_dir", type=Path, help="the run folder (holds results/, curves/)")
    parser.add_argument("--no-history", action="store_true",
                        help="leave out the history and the comparison with the previous run")
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        parser.error(f"run folder not found: {args.run_dir}")
    md, html = render_report(args.run_dir, history=0 if args.no_history else HISTORY_LENGTH)
    print(md)
    print(html)
    return 0


if __name__ == "__main__":
    sys.exit(main())
