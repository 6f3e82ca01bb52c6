"""Collecting a run for its reports: everything the Markdown and HTML reports show, read once.

:func:`collect` reads ``run.json`` (optional run metadata, :mod:`core.report.history`), the result
records (:func:`core.results.read_results`) and the curve files (:func:`core.results.scan_curves`),
draws every paper's figures (:func:`core.report.figures.draw_figures`; a missing or failing renderer
is listed, never fatal), finds the recent runs beside it (:mod:`core.report.history`) and compares it
with the previous run of its profile (:mod:`core.report.compare`), into one :class:`ReportData`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.papers import report_rank
from core.report.compare import compare_runs
from core.report.figures import FIGURES_DIR, FigureEntry, draw_figures
from core.report.history import HISTORY_LENGTH, previous_run, read_run_json, recent_runs, verdict_history
from core.results import ClaimResult, read_results, scan_curves


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
        return sorted(keys, key=report_rank)


def draw_forest(run_dir: Path, results: list[ClaimResult]
                ) -> tuple[list[FigureEntry], list[tuple[str, str]]]:
    """The forest plot of every claim (:func:`core.report.forest.render_forest`) as figure entries of
    its paper; a failure is listed as a figure not drawn, never raised."""
    from core.report.forest import render_forest

    try:
        drawn = render_forest(results, run_dir / FIGURES_DIR)
    except Exception as e:  # noqa: BLE001 - a figure never stops the report
        return [], [("forest plots of the claims", f"{type(e).__name__}: {e}")]
    return [FigureEntry(paper=claim_family(f["claim"]), title=f["title"], path=f["path"],
                        caption=f["caption"]) for f in drawn], []


def statements(results: list[ClaimResult]) -> dict[str, str]:
    """claim id -> what was claimed (claims.md's words), from the results that record it."""
    out: dict[str, str] = {}
    for r in results:
        if r.statement and r.claim not in out:
            out[r.claim] = r.statement
    return out


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
    if figures:
        forest, failed = draw_forest(run_dir, results)
        drawn = forest + drawn  # each paper's section opens with its claims' forest plots
        not_drawn += failed
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
