"""The modularity paper's figures, redrawn from the MOD curve payloads (``"experiment": "mod"``).

One set per model (:meth:`core.mod.result.ModResult.curves` writes the payload):

- relative-accuracy heatmap R[u, v] at each target (MOD Figs. 1-2);
- overlap heatmaps O[u, v] of the trained model and of its random twin, side by side (Figs. 3-4);
- the off-diagonal overlaps of both, sorted, with their difference (Fig. 5);
- a Lorenz curve example (layer 0, first subset) and the Lorenz AUC per layer for the trained model,
  the random twin and the null of size-matched random selections (Fig. 6).

:func:`render` is what the report calls; it draws with matplotlib's Agg backend and saves every file
atomically.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.cache import atomic_path
from core.results import safe_name

__all__ = ["render"]


def _arr(x) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in x], dtype=np.float64)


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _heatmap(ax, m: np.ndarray, labels: list[str], title: str, vmin=None, vmax=None, cmap="viridis"):
    im = ax.imshow(m, vmin=vmin, vmax=vmax, cmap=cmap)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_title(title, fontsize=9)
    return im


def _offdiag(m: np.ndarray) -> np.ndarray:
    return m[~np.eye(m.shape[0], dtype=bool)]


def _search_note(p: dict) -> str:
    """One sentence per target on the count searches (status counts, overshoot, evaluations, the
    measured diagonal R[u, u]); empty for payloads without them."""
    notes = []
    for t, per in (p.get("search") or {}).items():
        rows = list(per.values())
        if not rows:
            continue
        st = [r["status"] for r in rows]
        over = [r["overshoot (target - r)"] for r in rows if r.get("overshoot (target - r)") is not None]
        diag = [r["measured R[u, u]"] for r in rows if r.get("measured R[u, u]") is not None]
        ev = [r["evaluations"] for r in rows]
        text = (f" {t}: {st.count('reached')} of {len(st)} searches within 0.02 of the target, "
                f"{st.count('reached at one-neuron resolution')} reached at one-neuron resolution")
        if over:
            text += f" (overshoot up to {100 * max(over):.1f} points)"
        text += f", {st.count('unreachable')} unreachable; {min(ev)}-{max(ev)} evaluations per search"
        if diag:
            text += f"; measured diagonal R[u, u] {100 * min(diag):.1f}-{100 * max(diag):.1f}%"
        notes.append(text + ".")
    return "".join(notes)


def render(payloads: list[dict], figures_dir: Path) -> list[dict]:
    """Draw the MOD figures of every payload.

    Parameters
    ----------
    payloads : list of dict
        Curve payloads with ``"experiment": "mod"`` (others are ignored).
    figures_dir : pathlib.Path
        Where the PNG files go (created).

    Returns
    -------
    list of dict
        One ``{"title": str, "path": pathlib.Path, "caption": str}`` per figure, in drawing order.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures_dir = Path(figures_dir)
    out: list[dict] = []
    for p in payloads:
        if p.get("experiment") != "mod":
            continue
        model, subsets = p["model"], list(p["subsets"])
        stem = f"mod-{safe_name(model)}"
        n = len(subsets)
        size = max(4.0, 0.35 * n + 2)

        # Figs. 1-2: relative accuracy
        targets = list(p["targets"])
        fig, axes = plt.subplots(1, len(targets), figsize=(size * len(targets), size), squeeze=False)
        for ax, t in zip(axes[0], targets):
            im = _heatmap(ax, 100 * _arr(p["R"][t]), subsets,
                          f"{t}: target {100 * p['targets'][t]:.0f}% of baseline", 0, 120, "RdYlGn")
            ax.set_ylabel("subset pruned (u)")
            ax.set_xlabel("subset evaluated (v)")
        fig.colorbar(im, ax=axes[0].tolist(), shrink=0.7, label="top1 relative to baseline, %")
        fig.suptitle(f"{model}: relative top1 after selective pruning", fontsize=10)
        out.append({"title": f"MOD {model}: relative accuracy after selective pruning",
                    "path": _save(fig, figures_dir / f"{stem}-relative-accuracy.png"),
                    "caption": "R[u, v] = top1 on subset v after mean-ablating the MLP neurons selected for "
                               "subset u / baseline top1 on v, in percent (MOD Figs. 1-2). Blank rows: the "
                               "target is unreachable for u." + _search_note(p)})

        # Figs. 3-4: overlaps, trained vs random twin
        o_t, o_r = (100 * _arr(p["overlap"][s]) for s in ("trained", "random"))
        fig, axes = plt.subplots(1, 2, figsize=(2 * size, size))
        _heatmap(axes[0], o_t, subsets, "trained", 0, 100)
        im = _heatmap(axes[1], o_r, subsets, "random twin", 0, 100)
        fig.colorbar(im, ax=axes.tolist(), shrink=0.7, label="|N_u & N_v| / |N_u|, %")
        fig.suptitle(f"{model}: overlap of selected neurons ({p['primary']})", fontsize=10)
        out.append({"title": f"MOD {model}: overlaps, trained vs random twin",
                    "path": _save(fig, figures_dir / f"{stem}-overlaps.png"),
                    "caption": "O[u, v] = |N_u & N_v| / |N_u| (rows u) of the neurons selected at the primary "
                               "target, for the trained model (left) and its random twin with its own scores "
                               "and the trained fractions (right) (MOD Figs. 3-4)."})

        # Fig. 5: sorted overlaps and their difference
        a, b = _offdiag(o_t), _offdiag(o_r)
        ok = np.isfinite(a) & np.isfinite(b)
        a, b = a[ok], b[ok]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        if a.size:
            order = np.argsort(a)
            ax.plot(a[order], label="trained", lw=1.5)
            ax.plot(b[order], label="random twin", lw=1, alpha=0.8)
            ax.plot(a[order] - b[order], label="trained - random", lw=1, ls="--")
            ax.axhline(0, color="grey", lw=0.5)
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no subset reached its target", ha="center", transform=ax.transAxes)
        ax.set_xlabel("subset pairs (u, v), u != v, sorted by trained overlap")
        ax.set_ylabel("overlap, %")
        ax.set_title(f"{model}: sorted overlaps", fontsize=10)
        out.append({"title": f"MOD {model}: sorted overlaps",
                    "path": _save(fig, figures_dir / f"{stem}-sorted-overlaps.png"),
                    "caption": "Off-diagonal overlaps of the trained model and its random twin, sorted by the "
                               "trained overlap, with their difference (MOD Fig. 5)."})

        # Fig. 6: Lorenz curve example and AUC per layer
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        ex = p.get("lorenz_example", {})
        for side in ("trained", "random"):
            if side in ex:
                axes[0].plot(ex[side]["x"], ex[side]["y"], label=side if side == "trained" else "random twin")
        axes[0].plot([0, 1], [0, 1], color="grey", lw=0.5, ls=":", label="even")
        axes[0].set_xlabel("fraction of clusters (largest first)")
        axes[0].set_ylabel("fraction of selected neurons")
        axes[0].set_title(f"Lorenz curve, layer {ex.get('layer', 0)}, {ex.get('subset', '')}", fontsize=9)
        axes[0].legend(fontsize=8)
        for side, label in (("trained", "trained"), ("random", "random twin"), ("null", "null (random sets)")):
            auc = _arr(p["auc"][side])  # (n_layers, n_subsets)
            mean = np.nanmean(auc, axis=1)
            layers = np.arange(len(mean))
            axes[1].plot(layers, mean, marker="o", ms=3, label=label)
            if side != "null":
                axes[1].fill_between(layers, np.nanmin(auc, 1), np.nanmax(auc, 1), alpha=0.15)
        from matplotlib.ticker import MaxNLocator

        axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[1].set_xlabel("layer")
        axes[1].set_ylabel("Lorenz AUC")
        info = p.get("info", {})
        axes[1].set_title(f"AUC per layer (k = {info.get('k', '?')}, top {100 * info.get('per_layer_fraction', 0):.1f}% "
                          f"per layer)", fontsize=9)
        axes[1].legend(fontsize=8)
        fig.suptitle(f"{model}: selected neurons over MoEfication clusters", fontsize=10)
        out.append({"title": f"MOD {model}: Lorenz curve and AUC per layer",
                    "path": _save(fig, figures_dir / f"{stem}-lorenz.png"),
                    "caption": "Left: Lorenz curve of the neurons selected per layer over the balanced k-means "
                               "clusters of W_in (example layer and subset). Right: mean Lorenz AUC over subsets "
                               "per layer (band: min to max over subsets) for the trained model, the random "
                               "twin (its own clusters) and size-matched random selections (MOD Fig. 6)."})
    return out
