"""The result of the modularity experiment for one model and its random twin (:class:`ModResult`): the
searches, relative-accuracy matrices R (MOD section 3, Figs. 1-2), selections and overlaps (section 4.1),
Lorenz AUCs (section 4.2), the MOD-6 null and the alternate readings R1/R2, saved to and loaded from one
``.npz`` file, and the figure payload of :mod:`core.mod.figures`.

Written by :func:`core.mod.experiment.run_mod`; ``claims/test_modularity.py`` reads it with
``claims/mod_rules.py``.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.cache import atomic_path
from core.errors import check_name
from core.mod.selection import ONE_NEURON, TOLERANCE

__all__ = ["ModResult"]

@dataclass
class ModResult:
    """Everything the MOD claims and figures read, for one model and its random twin.

    Attributes
    ----------
    model : str
    kind : {"causal", "image"}
    subsets : list of str
    targets : {name: relative top1}
        E.g. ``{"drop50": 0.5, "drop80": 0.2}`` (ViT) or ``{"drop20": 0.8}`` (language models).
    primary : str
        The target of MOD-1, 3-7 (ViT 50% drop, language models 20% drop).
    arrays : dict of str to ndarray
        ``base_top1`` and ``base_top1_random`` (n_subsets,) fractions; ``eval_units`` and
        ``eval_groups`` (n_subsets,) int: evaluation units (tokens, images) per subset and the
        documents (or windows, images; ``info["eval_halves"]["groups"]`` says which) they come from.
        Per target t, the search (:func:`core.mod.selection.bisect_count`): ``count_<t>`` (n_subsets,) int, the selected
        count m (-1 where unreachable), ``fraction_<t>`` = m / N (NaN where unreachable),
        ``relative_<t>`` (r at m), ``evals_<t>`` (evaluations spent), ``overshoot_<t>`` (target - r
        for a bracket closed at adjacent counts, else 0), ``bracket_<t>`` (n_subsets, 4): lower count,
        its r, upper count, its r; then ``R_<t>`` (n_subsets, n_subsets) and ``diag_<t>`` (its
        measured diagonal R[u, u]). At the primary target: ``R_A_half1`` and ``R_B_half2`` (MOD-3's
        noise floor: scores from collection sample A evaluated on the first half of every subset's
        evaluation documents, and from sample B on the second half, same counts); ``R_random``
        (random twin, its own scores, the trained counts; NaN rows where not computed); ``selected``
        and ``selected_random`` (n_subsets, n_layers * d_mlp) bool; ``auc_trained``,
        ``auc_random``, ``auc_null`` (n_layers, n_subsets) Lorenz AUCs of the per-layer selection;
        ``lorenz_trained``, ``lorenz_random`` (k,) cluster counts of the example (layer 0, subset 0);
        ``lottery_null`` (null_draws,) the MOD-6 null.
        An alternate reading ``Rx`` that ran (``info["readings"]``) stores the arrays it changes
        under ``Rx__<name>``; :meth:`reading` returns its view.
    status : {target: [status per subset]}
        Status of every search (:data:`core.mod.selection.SEARCH_STATUSES`); ``Rx__<target>`` for the readings.
    info : dict
        Sizes, k, data description, per-layer fraction, null draws, search histories.
    """

    model: str
    kind: str
    subsets: list
    targets: dict
    primary: str
    arrays: dict
    status: dict
    info: dict = field(default_factory=dict)

    def fraction(self, target: str | None = None) -> np.ndarray:
        return self.arrays[f"fraction_{target or self.primary}"]

    def R(self, target: str | None = None) -> np.ndarray:
        return self.arrays[f"R_{target or self.primary}"]

    @property
    def readings(self) -> list[str]:
        """The alternate readings this result holds (ids of claims.md's Readings table)."""
        return list(self.info.get("readings", []))

    @property
    def n_neurons(self) -> int:
        return int(self.info["n_layers"]) * int(self.info["d_mlp"])

    def reading(self, rid: str) -> ModResult:
        """The result under the alternate reading ``rid`` (``"R1"``: the lower count of a bracket
        closed at adjacent counts; ``"R2"``: Eq. 1 as printed): the arrays and statuses that reading
        changes, the primary's elsewhere.

        Raises
        ------
        UnknownNameError
            When ``rid`` did not run for this result (the message lists those that did).
        """
        check_name(f"reading computed for {self.model}", rid, self.readings)
        pre = f"{rid}__"
        arrays = {k: v for k, v in self.arrays.items() if "__" not in k}
        arrays.update({k[len(pre):]: v for k, v in self.arrays.items() if k.startswith(pre)})
        status = {t: list(self.status[pre + t]) for t in self.targets}
        info = {**self.info, "reading": rid}
        return ModResult(self.model, self.kind, list(self.subsets), dict(self.targets), self.primary, arrays,
                         status, info)

    def failed(self, target: str | None = None) -> list[str]:
        """Subsets without a selection at ``target`` (unreachable; under R1 also a lower count of 0),
        as ``"subset (status...)"``; an unreachable subset with the relative top1 with every neuron
        pruned and the target."""
        t = target or self.primary
        out = []
        for i, (s, st) in enumerate(zip(self.subsets, self.status[t])):
            if st == "unreachable":
                r_all = float(self.arrays[f"bracket_{t}"][i, 3])
                out.append(f"{s} (unreachable: relative top1 {r_all:.4f} with all {self.n_neurons} MLP neurons "
                           f"pruned, target {self.targets[t]} +- {TOLERANCE})")
            elif st not in ("reached", ONE_NEURON):
                out.append(f"{s} ({st})")
        return out

    def reached(self, targets: Sequence[str] | None = None) -> list[int]:
        """Indices of the subsets with a selection at every one of ``targets`` (default: primary)."""
        ts = list(targets or [self.primary])
        return [i for i in range(len(self.subsets))
                if all(self.status[t][i] in ("reached", ONE_NEURON) for t in ts)]

    def restrict(self, keep: Sequence[int]) -> ModResult:
        """The same result on the subsets ``keep`` only (indices into :attr:`subsets`, in order).

        Per-subset vectors, matrices over subset pairs (``R_*``), selections and per-(layer, subset)
        AUCs are sliced; the MOD-6 null (``lottery_null``) is kept as it is, since :func:`core.mod.experiment.run_mod`
        computes it over the subsets that have a selection.
        """
        keep = list(keep)
        n = len(self.subsets)
        idx = np.asarray(keep, dtype=np.int64)
        arrays = {}
        for key, a in self.arrays.items():
            base = key.split("__")[-1]
            if base.startswith("auc_"):
                arrays[key] = a[:, idx]
            elif base.startswith("R_"):
                arrays[key] = a[np.ix_(idx, idx)]
            elif a.ndim >= 1 and a.shape[0] == n and not base.startswith(("lorenz_", "lottery_")):
                arrays[key] = a[idx]
            else:
                arrays[key] = a
        status = {t: [v[i] for i in keep] for t, v in self.status.items()}
        return ModResult(self.model, self.kind, [self.subsets[i] for i in keep], dict(self.targets), self.primary,
                         arrays, status, dict(self.info))

    def overlap(self, random: bool = False) -> np.ndarray:
        """O[u, v] at the primary target, shape (n_subsets, n_subsets); NaN rows and columns for
        subsets without a selection."""
        from core.mod.lorenz import overlap_matrix

        sel = self.arrays["selected_random" if random else "selected"]
        ok = sel.any(1)
        out = np.full((len(ok), len(ok)), np.nan)
        if ok.any():
            out[np.ix_(ok, ok)] = overlap_matrix(sel[ok])
        return out

    def search(self, target: str | None = None) -> dict:
        """The search of every subset at ``target`` as the report shows it: ``{subset: {...}}`` with
        the status, the count m of N, the fraction (percent), r, the evaluations, the final bracket
        (both counts and both r), the overshoot (one-neuron resolution) and the measured R[u, u]."""
        t = target or self.primary
        a = self.arrays
        out = {}
        for i, s in enumerate(self.subsets):
            lo_m, lo_r, hi_m, hi_r = a[f"bracket_{t}"][i]
            st = self.status[t][i]
            row = {"status": st, "count": int(a[f"count_{t}"][i]), "of N": self.n_neurons,
                   "evaluations": int(a[f"evals_{t}"][i]),
                   "bracket": {"lower": [_int_or_none(lo_m), _float_or_none(lo_r)],
                               "upper": [_int_or_none(hi_m), _float_or_none(hi_r)]}}
            if st == "unreachable":
                row["r with every neuron pruned"] = _float_or_none(hi_r)
                row["target"] = self.targets[t]
            else:
                row.update({"fraction (percent)": round(100 * float(a[f"fraction_{t}"][i]), 4),
                            "r": _float_or_none(a[f"relative_{t}"][i]),
                            "measured R[u, u]": _float_or_none(a[f"diag_{t}"][i])})
                if st == ONE_NEURON:
                    row["overshoot (target - r)"] = _float_or_none(a[f"overshoot_{t}"][i])
            out[s] = row
        return out

    def samples(self) -> tuple[dict, dict, dict]:
        """Per-unit data for :func:`core.samples.write_samples`: ``(arrays, schema, meta)``.

        MOD's units are its subsets (MOD-1, 2, 5), subset pairs (MOD-3, 4, 6, 7) and layers (MOD-8..10):
        every array of :attr:`arrays` (their meanings in this class's docstring), with ``subset`` naming
        the subsets in order; an alternate reading's arrays keep their ``Rx__`` prefix.
        """
        arrays = {k: np.asarray(v) for k, v in self.arrays.items()}
        schema = {k: _mod_schema(k.split("__", 1)[-1], v.ndim) for k, v in arrays.items()}
        arrays["subset"] = np.asarray(self.subsets, dtype=str)
        schema["subset"] = (["subset"], "subset names, in the order of every subset dimension")
        return arrays, schema, {"kind": self.kind, "targets": self.targets, "primary": self.primary,
                                "status": self.status}

    def save(self, path: Path) -> None:
        meta = {"model": self.model, "kind": self.kind, "subsets": self.subsets, "targets": self.targets,
                "primary": self.primary, "status": self.status, "info": self.info}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **self.arrays,
                                    __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))

    @classmethod
    def load(cls, path: Path) -> ModResult:
        with np.load(path) as z:
            meta = json.loads(z["__meta__"].tobytes().decode())
            arrays = {k: z[k] for k in z.files if k != "__meta__"}
        return cls(meta["model"], meta["kind"], meta["subsets"], meta["targets"], meta["primary"], arrays,
                   meta["status"], meta["info"])

    def curves(self) -> dict:
        """The figure payload (``"experiment": "mod"``) for :mod:`core.mod.figures`."""
        from core.mod.lorenz import lorenz_curve

        def clean(a):
            a = np.asarray(a, dtype=np.float64)
            return [[None if not np.isfinite(x) else float(x) for x in row] for row in np.atleast_2d(a)]

        o_t, o_r = self.overlap(False), self.overlap(True)
        ex = {}
        for side in ("trained", "random"):
            counts = self.arrays[f"lorenz_{side}"]
            if counts.sum() > 0:
                x, y = lorenz_curve(counts)
                ex[side] = {"x": x.tolist(), "y": y.tolist()}
        return {
            "experiment": "mod", "model": self.model, "kind": self.kind, "subsets": list(self.subsets),
            "targets": self.targets, "primary": self.primary,
            "R": {t: clean(self.R(t)) for t in self.targets},
            "R_random": clean(self.arrays["R_random"]),
            "fractions": {t: clean(self.fraction(t))[0] for t in self.targets},
            "search": {t: self.search(t) for t in self.targets},
            "overlap": {"trained": clean(o_t), "random": clean(o_r)},
            "auc": {k: clean(self.arrays[f"auc_{k}"]) for k in ("trained", "random", "null")},
            "lorenz_example": {"layer": 0, "subset": self.subsets[0], **ex},
            "info": {k: v for k, v in self.info.items() if k != "search_history"},
        }


#: Dimensions and meaning of ModResult's arrays, by name (prefix before "_<target>" where one follows).
_MOD_DIMS = {
    "base_top1": (["subset"], "baseline top1 of the trained model per subset, fraction"),
    "base_top1_random": (["subset"], "baseline top1 of the random twin per subset, fraction"),
    "eval_units": (["subset"], "evaluation units (tokens, images) per subset"),
    "eval_groups": (["subset"], "evaluation documents (or windows, images) per subset"),
    "count": (["subset"], "selected MLP neurons m of the count search (-1: unreachable)"),
    "fraction": (["subset"], "selected fraction m / N (NaN: unreachable)"),
    "relative": (["subset"], "relative top1 r at the selected count"),
    "evals": (["subset"], "evaluations the search spent"),
    "overshoot": (["subset"], "target - r where the bracket closed at adjacent counts, else 0"),
    "bracket": (["subset", "bracket"], "lower count, its r, upper count, its r"),
    "diag": (["subset"], "measured diagonal R[u, u]"),
    "R": (["pruned_for", "evaluated_on"], "relative top1 R[u, v] on subset v after pruning for subset u"),
    "selected": (["subset", "mlp_neuron"], "MLP neurons selected for the subset (layer-major), bool"),
    "auc": (["layer", "subset"], "Lorenz AUC of the per-layer selection over the MoE clusters"),
    "lorenz": (["cluster"], "selected neurons per cluster of the example (layer 0, first subset)"),
    "lottery_null": (["draw"], "MOD-6 null: rho of size-matched random neuron sets"),
}


def _mod_schema(name: str, ndim: int) -> tuple[list[str], str]:
    for key in sorted(_MOD_DIMS, key=len, reverse=True):
        if name == key or name.startswith(key + "_"):
            dims, what = _MOD_DIMS[key]
            if len(dims) == ndim:
                return dims, f"{what} ({name})"
    return [f"d{i}" for i in range(ndim)], f"{name}: see core/mod/result.py, ModResult.arrays"


def _int_or_none(x) -> int | None:
    return int(x) if np.isfinite(x) and x >= 0 else None


def _float_or_none(x) -> float | None:
    return float(x) if np.isfinite(x) else None
