"""Drawing every paper's figures from a run's curve payloads, with the renderers of the manifest.

:func:`draw_figures` groups a run's curve files (``curves/*.json``, :func:`core.results.scan_curves`)
by their ``"experiment"`` key, finds the paper of each experiment in the manifest of papers
(:data:`core.papers.PAPERS`), checks each payload with the paper's ``check_payload`` and draws the
group with its ``render``. The renderers import matplotlib only when they draw. A payload that fails
its check is named, an unknown experiment or a failing renderer is listed, and neither stops the
report.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import papers as manifest
from core.results import CURVES_DIR

FIGURES_DIR = "figures"


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


def _paper_of(experiment: str) -> str:
    paper = manifest.for_experiment(experiment)
    return paper.key if paper is not None else experiment.upper()


def _function_name(fn: Any) -> str:
    """``"core.abl.figures.render_abl_figures"`` for a function; its repr for another callable."""
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    return f"{module}.{name}" if module and name else repr(fn)


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
    """Draw every paper's figures from the run's curve payloads with the manifest's renderers
    (:attr:`core.papers.Paper.render`).

    Returns
    -------
    figures : list of FigureEntry
        In report order (:data:`core.papers.PAPERS`, then others).
    bad_files : list of (pathlib.Path, str)
        Curve files that failed their experiment's check.
    not_drawn : list of (str, str)
        ``(what, message)`` for experiments that no paper draws or whose renderer failed.
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
    for experiment in sorted(groups, key=lambda e: manifest.report_rank(_paper_of(e))):
        items = groups[experiment]
        label = f"{_paper_of(experiment)} figures ({len(items)} curve file(s))"
        paper = manifest.for_experiment(experiment)
        if paper is None:
            not_drawn.append((label, f"no figure renderer for experiment {experiment!r}: no paper of "
                                     f"core/papers.py has it (known: "
                                     f"{', '.join(p.experiment for p in manifest.PAPERS)})"))
            continue
        via = _function_name(paper.render)
        payloads = []
        for name, payload in items:
            if paper.check_payload is not None:
                try:
                    paper.check_payload(payload)
                except (ValueError, TypeError) as e:
                    bad_files.append((run_dir / CURVES_DIR / f"{name}.json", f"ValueError: {e}"))
                    continue
            payloads.append(payload)
        if not payloads:
            continue
        try:
            figures_dir.mkdir(parents=True, exist_ok=True)
            figures += _normalise_figures(paper.render(payloads, figures_dir), paper.key, figures_dir)
        except Exception as e:  # noqa: BLE001 - one paper's figures never stop the report
            not_drawn.append((f"{label} via {via}", f"{type(e).__name__}: {e}"))
    return figures, bad_files, not_drawn
