"""The figure registry of the report: every paper's figures, drawn from a run's curve payloads.

:func:`draw_figures` groups a run's curve files (``curves/*.json``, :func:`core.results.scan_curves`)
by their ``"experiment"`` key, checks each payload with :data:`PAYLOAD_CHECKS` and draws each group
with its renderer in :data:`FIGURE_RENDERERS`. Both registries name functions as ``"module:function"``
strings, imported only when a run has curves of their experiment (ABL in :mod:`core.abl.figures`,
MOD in :mod:`core.mod.figures`, BCL in :mod:`core.bcl.figures`); the report never imports them
directly. A payload that fails its check is named, a missing or failing renderer is listed, and
neither stops the report. :data:`PAPERS` holds the papers in report order with their citations.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.results import CURVES_DIR

FIGURES_DIR = "figures"


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
    "abl": "core.abl.figures:render_abl_figures",
    "mod": "core.mod.figures:render",
    "bcl": "core.bcl.figures:render",
}

#: Per-file checks run before a renderer sees the payloads: a payload that fails is named, not drawn.
#: Checks are ``"module:function"`` strings too, imported like the renderers; a check that cannot
#: be imported leaves its experiment's figures not drawn (listed), like a missing renderer.
PAYLOAD_CHECKS: dict[str, str] = {"abl": "core.abl.figures:check_abl_payload"}


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
        check_spec = PAYLOAD_CHECKS.get(experiment)
        try:
            check = _resolve(check_spec) if check_spec is not None else None
        except Exception as e:  # noqa: BLE001 - a missing check is a figure not drawn, never a crash
            not_drawn.append((f"{label} via {check_spec}", f"{type(e).__name__}: {e}"))
            continue
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
