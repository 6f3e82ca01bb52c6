"""The ABL figure of the report (the peak-ablation paper's Fig. 2), redrawn from the ABL curve payloads.

One figure for every ABL payload of a run (:meth:`core.abl.ablation.AblationSweep.curves` writes the
payload): one column per model, top1 (%) and CE (nats) against the fraction of attention pre-out
neurons pruned, one line per ablation method (mean over seeds; band: min-max over seeds), each method
in a fixed colour and line style (:data:`METHOD_STYLES`).

ABL curve payload (``curves/<name>.json``)::

    {"experiment": "abl", "model": "smollm2-135m", "kind": "causal" | "masked" | "image",
     "fractions": [0.0, 0.1, ..., 0.9],                       # fraction pruned, in [0, 1]
     "methods": {"zero": {"top1": [[...] per seed], "ce": [[...] per seed]}, "mean": ..., ...},
     "units": {"top1": "percent", "ce": "nats"}, "seeds": [0, 1, 2]}

The report reaches this module only through the manifest of papers (:data:`core.papers.PAPERS`:
ABL's ``check_payload`` is :func:`check_abl_payload`, its ``render`` :func:`render_abl_figures`); it
draws with matplotlib's Agg backend and saves the PNG atomically.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.cache import atomic_path

ABL_FIGURE = "abl.png"


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


def render_abl_figures(payloads: list[dict[str, Any]], figures_dir: str | Path) -> list[dict[str, Any]]:
    """ABL's renderer in the manifest of papers (:data:`core.papers.PAPERS`): :func:`plot_abl` of
    every ABL payload, one figure."""
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
