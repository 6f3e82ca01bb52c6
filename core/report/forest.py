"""Forest plots of the claims: one figure per claim, every part's value and 95% interval per model.

A claim's *parts* are the estimates its rule reads: the headline statistic and every sub-statistic of
the result's ``details`` that carries ``{"value", "interval", "unit"}`` (nested dicts and lists are
walked, their keys joined with `` / ``). :func:`claim_parts` extracts them from a
:class:`core.results.ClaimResult`; :func:`render_forest` draws one figure per claim from the run's
result files only (never from curve files or caches), one panel per unit (percentage points, nats,
...), one row per (model, part), a vertical line at 0 (the null of every directional rule), the
headline part drawn solid and the others hollow, and the verdict of each model beside its name. On
the full tier the paper's value (claims.md's text) is printed under the model's rows: the papers give
levels, not the differences the rules read, so it is marked, not plotted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.results import ClaimResult, claim_sort_key, safe_name

__all__ = ["Part", "claim_parts", "render_forest", "FOREST_PREFIX", "MAX_ROWS"]

#: File-name prefix of the forest plots in ``figures/``.
FOREST_PREFIX = "forest__"
#: Rows drawn per claim at most (a claim with more parts, e.g. ABL-3's 18, keeps the headline part
#: of every model and then the parts in order; the caption says how many were left out).
MAX_ROWS = 40

_VERDICT_COLOURS = {"replicated": "#1a7f37", "contradicted": "#cf222e", "inconclusive": "#9a6700"}


@dataclass(frozen=True)
class Part:
    """One estimate a claim's rule read, on one model.

    Attributes
    ----------
    model : str
    name : str
        The part's name (the ``details`` key path, or the statistic's name for the headline).
    value, low, high : float
        The estimate and its 95% interval, in ``unit``.
    unit : str
    headline : bool
        Whether this is the headline statistic (the part that decided, where the rule has several).
    """

    model: str
    name: str
    value: float
    low: float
    high: float
    unit: str
    headline: bool = False


def _finite(*xs: Any) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in xs)


def _unit_of(statistic_name: str) -> str:
    """The unit a statistic name ends with (``"..., percentage points"`` -> ``"percentage points"``)."""
    return statistic_name.rsplit(", ", 1)[1] if ", " in statistic_name else ""


def _walk(value: Any, path: tuple[str, ...]):
    if isinstance(value, dict):
        if {"value", "interval"} <= set(value):
            yield path, value
            return
        for k, v in value.items():
            yield from _walk(v, path + (str(k),))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, path + (f"[{i}]",))


def claim_parts(result: ClaimResult) -> list[Part]:
    """Every part of ``result`` that has a finite value and interval, headline first.

    Parameters
    ----------
    result : ClaimResult
        A measured result (a skipped or errored one has no parts).

    Returns
    -------
    list of Part
        The headline (named ``decided_by`` where given, else the statistic's name) and each
        ``details`` estimate; a ``details`` estimate equal to the headline (same value and interval)
        is not repeated.
    """
    if result.statistic is None or result.interval is None:
        return []
    parts: list[Part] = []
    head = (float(result.statistic), float(result.interval[0]), float(result.interval[1]))
    if _finite(*head):
        name = result.decided_by or result.statistic_name.rsplit(", ", 1)[0]
        parts.append(Part(result.model, name, *head, unit=_unit_of(result.statistic_name), headline=True))
    for path, est in _walk(result.details or {}, ()):
        interval = est.get("interval")
        if not (isinstance(interval, (list, tuple)) and len(interval) == 2):
            continue
        value, low, high = est.get("value"), interval[0], interval[1]
        if not _finite(value, low, high):
            continue
        if parts and parts[0].headline and (value, low, high) == (parts[0].value, parts[0].low,
                                                                 parts[0].high):
            if not parts[0].unit:
                parts[0] = Part(parts[0].model, parts[0].name, *head, unit=str(est.get("unit") or ""),
                                headline=True)
            continue
        parts.append(Part(result.model, " / ".join(path), float(value), float(low), float(high),
                          unit=str(est.get("unit") or ""), headline=False))
    return parts


def _rows(results: list[ClaimResult]) -> tuple[list[Part], int]:
    """The rows of one claim's plot, model by model, cut to :data:`MAX_ROWS` (headlines kept first)."""
    per_model = [claim_parts(r) for r in results]
    total = sum(len(p) for p in per_model)
    if total <= MAX_ROWS:
        return [p for ps in per_model for p in ps], 0
    budget = MAX_ROWS - sum(1 for ps in per_model if ps)  # one headline row per model
    kept = []
    for ps in per_model:
        extra = ps[1:]
        take = max(0, min(len(extra), budget // max(1, len(per_model))))
        kept.append(ps[:1] + extra[:take])
    rows = [p for ps in kept for p in ps]
    return rows, total - len(rows)


def render_forest(results: list[ClaimResult], figures_dir: str | Path) -> list[dict[str, Any]]:
    """Draw one forest plot per claim into ``figures_dir``.

    Parameters
    ----------
    results : list of ClaimResult
        A run's results (skipped and errored ones are left out).
    figures_dir : str or path
        Created when there is something to draw; files are ``forest__<claim>.png``.

    Returns
    -------
    list of dict
        One ``{"claim", "title", "path", "caption"}`` per claim with at least one part, in claim order.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures_dir = Path(figures_dir)
    out = []
    by_claim: dict[str, list[ClaimResult]] = {}
    for r in results:
        if r.statistic is not None:
            by_claim.setdefault(r.claim, []).append(r)
    for claim in sorted(by_claim, key=claim_sort_key):
        rs = sorted(by_claim[claim], key=lambda r: (r.tier != "small", r.model))
        rows, left_out = _rows(rs)
        if not rows:
            continue
        verdict = {r.model: r.verdict for r in rs}
        units = list(dict.fromkeys(p.unit for p in rows))
        height = 0.9 + 0.28 * len(rows) + 0.35 * sum(r.tier == "full" and bool(r.paper_value) for r in rs)
        fig, axes = plt.subplots(1, len(units), figsize=(4.2 * len(units) + 3.2, max(2.2, height)),
                                 sharey=True, squeeze=False)
        labels = [f"{p.model} · {p.name}" for p in rows]
        ys = list(range(len(rows)))[::-1]
        for ax, unit in zip(axes[0], units):
            for y, p in zip(ys, rows):
                if p.unit != unit:
                    continue
                colour = _VERDICT_COLOURS.get(verdict.get(p.model, ""), "#57606a")
                ax.plot([p.low, p.high], [y, y], color=colour, lw=1.6)
                ax.plot([p.value], [y], "o", color=colour, mfc=colour if p.headline else "white", ms=5)
            ax.axvline(0, color="#57606a", lw=0.8, ls="--")
            ax.set_xlabel(unit or "value")
            ax.grid(axis="x", color="#d0d7de", lw=0.5)
        axes[0][0].set_yticks(ys)
        axes[0][0].set_yticklabels([_short(t) for t in labels], fontsize=7)
        models = ", ".join(f"{m}: {v}" for m, v in verdict.items())
        fig.suptitle(f"{claim} — {rs[0].statement or ''}".rstrip(" —"), fontsize=9, x=0.01, ha="left")
        notes = [f"{r.model}: paper value {r.paper_value}" for r in rs if r.tier == "full" and r.paper_value]
        if notes:
            fig.text(0.01, 0.005, "\n".join(notes), fontsize=6.5, va="bottom", ha="left")
        fig.tight_layout(rect=(0, 0.03 * len(notes), 1, 0.95))
        figures_dir.mkdir(parents=True, exist_ok=True)
        path = figures_dir / f"{FOREST_PREFIX}{safe_name(claim)}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        caption = (f"Every part of {claim}'s rule per model: value (dot; filled: the headline part) and "
                   f"95% interval, coloured by the model's verdict ({models}); dashed line: 0.")
        if left_out:
            caption += f" {left_out} further part(s) not drawn (see the numbers below)."
        out.append({"claim": claim, "title": f"{claim} across models", "path": path, "caption": caption})
    return out


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"
