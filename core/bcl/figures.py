"""Figures and tables of the BCL paper, redrawn from a run's ``bcl`` curve payloads.

:func:`render` draws, for every (model, corpus) payload (:meth:`core.bcl.result.BclResult.curves`,
written into a run's ``curves/`` by ``claims/test_bert_clusters.py``):

- within-cluster distance against K (BCL Fig. 2): mean over clusters of the average and the max
  pairwise ``1 - cos`` distance, K = 20, 50, 200 scaled to the model;
- the Table 3 analogue: % increase of the CE on each cluster's top tokens with the cluster ablated and
  under the three baselines (mean over evaluated clusters; baselines averaged over 5 seeds), per setup;
- top tokens of the clusters that score best in the intervention (Tables 1 and 4);
- where the neurons of the largest K=50 clusters sit, layer against index (Fig. 5);
- the max distance to the centre during refinement of 8 random K=50 clusters (Fig. 1).

Payload (``"experiment": "bcl"``): ``model``, ``corpus``, ``kind``, ``profile``, ``n_layers``, ``width``,
``ks`` (paper K -> scaled K), ``threshold``, ``n_positions``, ``n_kept``, ``distances`` (paper K ->
``avg``/``max`` per cluster, None for singletons), ``table`` (setup -> ``method``, ``k_paper``, ``k``,
``n_clusters``, ``skipped``, ``evaluated``, ``n_sentences``, ``n_documents`` (optional), ``cluster``,
``random``, ``random_layer``, ``random_position``, ``best``: [{``cluster``, ``cluster_pct``,
``top_tokens``}]), ``positions`` (cluster -> flat neuron indices), ``refine_trace`` (cluster -> max
distance per step), ``refined_sizes``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.cache import atomic_path

BASELINES = ("random", "random_layer", "random_position")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    _plt().close(fig)
    return path


def _label(p: dict) -> str:
    return f"{p['model']} / {p['corpus']}"


def _stem(p: dict) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{p['model']}-{p['corpus']}")


def _mean(values) -> float:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else float("nan")


def _fmt(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.2f}"


def plot_distances(payloads: list[dict], path: Path) -> Path:
    """BCL Fig. 2: mean within-cluster average and max distance against K, one line pair per payload."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, p in enumerate(payloads):
        ks = sorted(p["distances"], key=int)
        x = [p["ks"][k] for k in ks]
        color = f"C{i}"
        ax.plot(x, [_mean(p["distances"][k]["avg"]) for k in ks], "o-", color=color,
                label=f"{_label(p)}: average")
        ax.plot(x, [_mean(p["distances"][k]["max"]) for k in ks], "s--", color=color,
                label=f"{_label(p)}: max")
    ax.set_xscale("log")
    ax.set_xlabel("K (number of clusters, scaled to the model)")
    ax.set_ylabel("mean within-cluster distance (1 - cos)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def table3_markdown(payloads: list[dict]) -> str:
    """The Table 3 analogue as Markdown: % CE increase of cluster and baselines per setup."""
    lines = ["| model / corpus | setup | K (scaled) | evaluated / skipped | sentences / documents | cluster "
             "| random | random_layer | random_position |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in payloads:
        for name, row in sorted(p["table"].items(), key=lambda kv: (kv[1]["k_paper"], kv[1]["method"])):
            vals = {c: row.get(c) for c in ("cluster", *BASELINES)}
            finite = {c: v for c, v in vals.items() if v is not None}
            best = max(finite, key=finite.get) if finite else None
            cells = [f"**{_fmt(v)}**" if c == best else _fmt(v) for c, v in vals.items()]
            spread = f"{row.get('n_sentences', 'n/a')} / {row.get('n_documents', 'n/a')}"
            lines.append(f"| {_label(p)} | {row['method']} | {row['k_paper']} ({row['k']}) | "
                         f"{row['evaluated']} / {row['skipped']} | {spread} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_table3(payloads: list[dict], path: Path) -> Path:
    """Grouped bars of the Table 3 analogue, one panel per payload."""
    plt = _plt()
    n = len(payloads)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.8), squeeze=False)
    for ax, p in zip(axes[0], payloads):
        rows = sorted(p["table"].values(), key=lambda r: (r["k_paper"], r["method"]))
        x = np.arange(len(rows))
        for j, c in enumerate(("cluster", *BASELINES)):
            ax.bar(x + (j - 1.5) * 0.2, [np.nan if r.get(c) is None else r[c] for r in rows], 0.2, label=c)
        ax.set_xticks(x, [f"{r['method']}\nK={r['k_paper']} ({r['k']})" for r in rows], fontsize=7)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(_label(p), fontsize=9)
        ax.set_ylabel("CE increase on the top tokens (%)")
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def best_tokens_markdown(payloads: list[dict]) -> str:
    """Tables 1 and 4 analogue: top tokens of the clusters with the largest intervention effect."""
    lines = ["| model / corpus | setup | cluster | CE increase (%) | top-10 tokens |", "| --- | --- | --- | --- | --- |"]
    for p in payloads:
        for name, row in sorted(p["table"].items()):
            if row["method"] == "refine":
                continue
            for b in row.get("best", [])[:2]:
                toks = ", ".join(str(t).replace("|", "\\|") for t in b["top_tokens"])
                lines.append(f"| {_label(p)} | {name} | {b['cluster']} | {_fmt(b['cluster_pct'])} | {toks} |")
    return "\n".join(lines)


def plot_positions(p: dict, path: Path) -> Path:
    """BCL Fig. 5: layer against index of the neurons of the largest K=50 clusters."""
    plt = _plt()
    clusters = list(p["positions"])
    fig, axes = plt.subplots(1, len(clusters), figsize=(3.2 * len(clusters), 3.2), squeeze=False)
    for ax, c in zip(axes[0], clusters):
        idx = np.asarray(p["positions"][c], dtype=np.int64)
        ax.scatter(idx // p["width"], idx % p["width"], s=4)
        ax.set_xlim(-0.5, p["n_layers"] - 0.5)
        ax.set_ylim(0, p["width"])
        ax.set_title(f"cluster {c} ({idx.size} neurons)", fontsize=8)
        ax.set_xlabel("layer")
    axes[0][0].set_ylabel("index in layer")
    fig.suptitle(f"{_label(p)}, K=50 ({p['ks']['50']}), filter", fontsize=9)
    return _save(fig, path)


def plot_refinement(p: dict, path: Path) -> Path:
    """BCL Fig. 1: max distance to the centre against neurons remaining, 8 random K=50 clusters."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for c, trace in p["refine_trace"].items():
        # trace[i] is the max distance with (initial size - i) members; the last step kept
        # refined_sizes[c] members, so the cluster started with refined + len(trace) - 1
        initial = p["refined_sizes"][int(c)] + len(trace) - 1
        ax.plot(initial - np.arange(len(trace)), trace, lw=1, label=f"cluster {c}")
    ax.axhline(0.6, color="k", ls=":", lw=0.8, label="threshold 0.6")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("neurons remaining in the cluster")
    ax.set_ylabel("max Euclidean distance to the centre")
    ax.set_title(f"{_label(p)}, K=50 ({p['ks']['50']}), filter", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    return _save(fig, path)


def render(payloads: list[dict], figures_dir: Path) -> list[dict]:
    """Draw the BCL figures and tables of a run.

    Parameters
    ----------
    payloads : list of dict
        The run's ``"experiment": "bcl"`` curve payloads (one per model and corpus).
    figures_dir : pathlib.Path
        Where the PNG files go (written atomically).

    Returns
    -------
    list of dict
        ``{"title", "path" (Path or None), "caption", "markdown" (optional)}`` per figure or table.
    """
    figures_dir = Path(figures_dir)
    payloads = sorted(payloads, key=lambda p: (p["model"], p["corpus"]))
    if not payloads:
        return []
    out = []
    ks_note = "; ".join(f"{_label(p)}: K 20/50/200 -> {p['ks']['20']}/{p['ks']['50']}/{p['ks']['200']}, "
                        f"frequency threshold {p['threshold']} ({p['n_kept']} tokens kept of "
                        f"{p['n_positions']} collection tokens)" for p in payloads)
    out.append({"title": "BCL Fig. 2: within-cluster distance against K",
                "path": plot_distances(payloads, figures_dir / "bcl-distance-vs-k.png"),
                "caption": "Mean over clusters of the average (solid) and max (dashed) pairwise 1 - cos "
                           f"distance, filter representations (singletons left out). {ks_note}."})
    out.append({"title": "BCL Table 3: causal intervention, cluster against the three baselines",
                "path": plot_table3(payloads, figures_dir / "bcl-table3.png"),
                "caption": "% increase of the CE (nats) on each cluster's top tokens in evaluation-split "
                           "sentences (masked-token loss for masked LMs, next-token loss for causal LMs) "
                           "with the neurons replaced by the mean of their layer's residual neurons at "
                           "each token, on the live hidden state (claims.md revision 2); mean over the "
                           "evaluated clusters, baselines averaged over 5 seeds; the largest value of each "
                           "row in bold. Skipped: clusters whose top tokens never occur in the evaluation "
                           "sentences. Sentences / documents: the union of the evaluated clusters' "
                           "sentences, drawn so that clusters share as few as possible.",
                "markdown": table3_markdown(payloads)})
    out.append({"title": "BCL Tables 1 and 4: top tokens of the best-scoring clusters",
                "path": None,
                "caption": "The two evaluated clusters with the largest CE increase per setup.",
                "markdown": best_tokens_markdown(payloads)})
    for p in payloads:
        out.append({"title": f"BCL Fig. 5: neuron positions, {_label(p)}",
                    "path": plot_positions(p, figures_dir / f"bcl-positions-{_stem(p)}.png"),
                    "caption": "Layer (x; 0 = embedding output) against index (y) of the neurons of the "
                               "four largest K=50 clusters."})
        out.append({"title": f"BCL Fig. 1: refinement, {_label(p)}",
                    "path": plot_refinement(p, figures_dir / f"bcl-refinement-{_stem(p)}.png"),
                    "caption": "Max Euclidean distance of a member to the cluster centre after each "
                               "refinement step, 8 random K=50 clusters; refinement stops below 0.6. "
                               f"Median refined size {float(np.median(p['refined_sizes'])):.1f}."})
    return out
