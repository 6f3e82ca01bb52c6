"""The result of the modularity experiment for one model and its random twin (:class:`ModResult`), a
typed record: the count searches and relative-accuracy matrices R per target (MOD section 3, Figs.
1-2; :class:`Search`), MOD-3's noise floor (:class:`NoiseFloor`), the random twin's numbers
(:class:`RandomTwin`), the selections and overlaps (section 4.1), the Lorenz AUCs (section 4.2;
:class:`LorenzAUC`), the MOD-6 null and the alternate readings R1/R2 (claims.md, "Readings"), each
a :class:`ModResult` of its own.

On disk it is one ``.npz`` file of flat arrays (``R_drop20``, ``count_<target>``, ``R1__<name>`` for a
reading) and a JSON ``__meta__``; :meth:`ModResult.from_flat` and :meth:`ModResult.to_flat` are the
one place that maps the two, so the cached format never changes with the record.

Written by :func:`core.mod.experiment.run_mod`; ``claims/test_modularity.py`` reads it with
``claims/mod_rules.py``; :meth:`ModResult.curves` is the figure payload of :mod:`core.mod.figures`.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from core.cache import atomic_path
from core.errors import check_name
from core.mod.selection import ONE_NEURON, TOLERANCE

__all__ = ["ModResult", "Search", "NoiseFloor", "RandomTwin", "LorenzAUC"]

#: Status of a search with a selection (:data:`core.mod.selection.SEARCH_STATUSES`).
SELECTED = ("reached", ONE_NEURON)


@dataclass
class Search:
    """The count search at one target, for every subset, and the cross-pruning matrix R at the
    counts it selected (claims.md, MOD setup: the bisection over the integer count m in [0, N];
    :func:`core.mod.selection.bisect_count`).

    Attributes
    ----------
    status : list of str, length n_subsets
        Per subset, one of :data:`core.mod.selection.SEARCH_STATUSES` (``"reached"``, ``"reached at
        one-neuron resolution"``, ``"unreachable"``; reading R1 adds
        :data:`core.mod.experiment.R1_EMPTY`).
    count : ndarray of shape (n_subsets,), int64
        The selected count m of MLP neurons; -1 where unreachable.
    fraction : ndarray of shape (n_subsets,), float64
        m / N, a fraction of all MLP neurons (not percent); NaN where unreachable.
    relative : ndarray of shape (n_subsets,), float64
        Relative top1 r = top1 / baseline top1 (a ratio) of the subset at m, as the search measured it.
    evaluations : ndarray of shape (n_subsets,), int64
        Evaluations the search spent.
    overshoot : ndarray of shape (n_subsets,), float64
        target - r (ratio) where the bracket closed at adjacent counts, else 0.
    bracket : ndarray of shape (n_subsets, 4), float64
        The final bracket: lower count, its r, upper count, its r (counts as floats; NaN where none).
        For an unreachable subset the upper count is N and its r the relative top1 with every MLP
        neuron pruned.
    R : ndarray of shape (n_subsets, n_subsets), float64
        R[u, v] = top1 on subset v after pruning the neurons selected for u / baseline top1 on v
        (ratio; MOD Figs. 1-2); NaN rows for subsets without a selection.
    diagonal : ndarray of shape (n_subsets,), float64
        The measured diagonal R[u, u] (ratio).
    """

    status: list
    count: np.ndarray
    fraction: np.ndarray
    relative: np.ndarray
    evaluations: np.ndarray
    overshoot: np.ndarray
    bracket: np.ndarray
    R: np.ndarray
    diagonal: np.ndarray

    def restrict(self, idx: np.ndarray) -> Search:
        """The search on the subsets ``idx`` only (int64 indices, in order)."""
        return Search([self.status[i] for i in idx], self.count[idx], self.fraction[idx], self.relative[idx],
                      self.evaluations[idx], self.overshoot[idx], self.bracket[idx], self.R[np.ix_(idx, idx)],
                      self.diagonal[idx])


@dataclass
class NoiseFloor:
    """MOD-3's noise floor at the primary target (claims.md, MOD-3, revision 2): two relative-accuracy
    matrices from disjoint collection samples and disjoint evaluation halves, at the same counts.

    Attributes
    ----------
    R_A_half1 : ndarray of shape (n_subsets, n_subsets), float64
        R[u, v] (ratio) with the scores of collection sample A, evaluated on the first half of every
        subset's evaluation documents (``info["eval_halves"]`` says which groups); NaN rows for subsets
        without a selection.
    R_B_half2 : ndarray of shape (n_subsets, n_subsets), float64
        The same with collection sample B, on the second half.
    """

    R_A_half1: np.ndarray
    R_B_half2: np.ndarray

    def restrict(self, idx: np.ndarray) -> NoiseFloor:
        return NoiseFloor(self.R_A_half1[np.ix_(idx, idx)], self.R_B_half2[np.ix_(idx, idx)])


@dataclass
class RandomTwin:
    """The random twin's numbers (claims.md, MOD setup: its own scores, the trained counts).

    Attributes
    ----------
    base_top1 : ndarray of shape (n_subsets,), float64
        Baseline top1 of the twin per subset (fraction of evaluation units).
    selected : ndarray of shape (n_subsets, n_layers * d_mlp), bool
        MLP neurons (layer-major) selected on the twin's scores at the trained model's count, at the
        primary target; all False for subsets without a selection.
    R : ndarray of shape (n_subsets, n_subsets), float64
        The twin's relative-accuracy matrix at the primary target (ratio to the twin's baseline); NaN
        rows where not computed (``info["random_cross_pruning"]``, and under every alternate reading).
    """

    base_top1: np.ndarray
    selected: np.ndarray
    R: np.ndarray

    def restrict(self, idx: np.ndarray) -> RandomTwin:
        return RandomTwin(self.base_top1[idx], self.selected[idx], self.R[np.ix_(idx, idx)])


@dataclass
class LorenzAUC:
    """Lorenz AUCs of the per-layer selection over the MoEfication clusters (MOD section 4.2, Fig. 6;
    :func:`core.mod.lorenz.lorenz_auc`: 0.5 for even counts, 1 - 1/(2k) for one cluster).

    Attributes
    ----------
    trained, random, null : ndarray of shape (n_layers, n_subsets), float64
        AUC of the trained model's selection over its clusters, of the random twin's over its own
        clusters, and the mean AUC of size-matched uniformly random selections over the trained
        clusters (:func:`core.mod.lorenz.null_lorenz_auc`; the same for every subset of a layer).
    example_trained, example_random : ndarray of shape (k,), int64
        Selected neurons per cluster of the figure's example (layer 0, first subset), trained and twin.
    """

    trained: np.ndarray
    random: np.ndarray
    null: np.ndarray
    example_trained: np.ndarray
    example_random: np.ndarray

    def restrict(self, idx: np.ndarray) -> LorenzAUC:
        """The AUCs of the subsets ``idx``; the example's counts are kept (a figure, not a claim's input)."""
        return LorenzAUC(self.trained[:, idx], self.random[:, idx], self.null[:, idx], self.example_trained,
                         self.example_random)


#: The flat array name of every per-target field of :class:`Search` (``<name>_<target>`` on disk), in
#: the order run_mod writes them.
_SEARCH_KEYS = {"count": "count", "fraction": "fraction", "relative": "relative", "overshoot": "overshoot",
                "R": "R", "diag": "diagonal", "evals": "evaluations", "bracket": "bracket"}
#: The flat array name of every other field (before the searches / after them), as (record, attribute).
_HEAD_KEYS = {"base_top1": (None, "base_top1"), "base_top1_random": ("random", "base_top1"),
              "eval_units": (None, "eval_units"), "eval_groups": (None, "eval_groups"),
              "auc_null": ("auc", "null")}
_TAIL_KEYS = {"selected": (None, "selected"), "selected_random": ("random", "selected"),
              "R_A_half1": ("noise_floor", "R_A_half1"), "R_B_half2": ("noise_floor", "R_B_half2"),
              "R_random": ("random", "R"), "lottery_null": (None, "lottery_null"),
              "lorenz_trained": ("auc", "example_trained"), "lorenz_random": ("auc", "example_random"),
              "auc_trained": ("auc", "trained"), "auc_random": ("auc", "random")}
_RECORDS = {"random": RandomTwin, "noise_floor": NoiseFloor, "auc": LorenzAUC}


@dataclass
class ModResult:
    """Everything the MOD claims and figures read, for one model and its random twin, under one reading
    (the primary one, or an alternate of :attr:`readings`).

    Attributes
    ----------
    model : str
        Zoo name (or own model's name) of the trained model.
    kind : {"causal", "image"}
    subsets : list of str, length n_subsets
        The subsets pruned and evaluated, in the order of every subset dimension below.
    targets : dict of str to float
        Target relative top1 (ratio to baseline) per target name, e.g. ``{"drop50": 0.5, "drop80": 0.2}``
        (ViT) or ``{"drop20": 0.8}`` (language models).
    primary : str
        The target of MOD-1, 3-7 (ViT 50% drop, language models 20% drop).
    base_top1 : ndarray of shape (n_subsets,), float64
        Baseline top1 of the trained model per subset (fraction of evaluation units).
    eval_units : ndarray of shape (n_subsets,), int64
        Evaluation units (tokens, images) per subset.
    eval_groups : ndarray of shape (n_subsets,), int64
        The documents (or windows, images; ``info["eval_halves"]["groups"]`` says which) they come from.
    searches : dict of str to Search
        The count search and R at every target (keys: :attr:`targets`, in order); :meth:`search`.
    noise_floor : NoiseFloor
        MOD-3's two R from disjoint samples, at the primary target.
    random : RandomTwin
        The random twin's baseline, selections and R, at the primary target.
    selected : ndarray of shape (n_subsets, n_layers * d_mlp), bool
        MLP neurons (layer-major) selected for each subset at the primary target; all False for
        subsets without a selection (MOD-4, 6, 7 read their overlaps, :meth:`overlap`).
    auc : LorenzAUC
        Lorenz AUCs per (layer, subset) of the trained model, the random twin and the null (MOD-8..10).
    lottery_null : ndarray of shape (null_draws,), float64
        MOD-6's null: Spearman rho of size-matched random neuron sets (:func:`core.mod.nulls.lottery_null`);
        all NaN when fewer than 3 subsets have selections on both models. Computed over the subsets
        with a selection, so :meth:`restrict` keeps it whole.
    readings : dict of str to ModResult
        The alternate readings that ran (ids of claims.md's Readings table: ``"R1"`` the lower count
        of a bracket closed at adjacent counts, ``"R2"`` Eq. 1 as printed), each a whole result:
        the fields that reading changes, the primary's elsewhere. Empty for a reading itself.
    info : dict
        Sizes, k, data description, per-layer fraction, null draws, costs, search histories (JSON).
    reading : str or None
        The reading this result is (None: the primary one).
    shared : tuple of str
        For a reading, the flat array names (:meth:`to_flat`) it takes unchanged from the primary
        result, so not saved again under its prefix; empty for the primary result.
    """

    model: str
    kind: str
    subsets: list
    targets: dict
    primary: str
    base_top1: np.ndarray
    eval_units: np.ndarray
    eval_groups: np.ndarray
    searches: dict
    noise_floor: NoiseFloor
    random: RandomTwin
    selected: np.ndarray
    auc: LorenzAUC
    lottery_null: np.ndarray
    readings: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    reading: str | None = None
    shared: tuple = ()

    def __post_init__(self):
        """Check every field's shape against the subsets (ValueError naming the field, the shape
        expected and the shape that came)."""
        n = len(self.subsets)
        if np.ndim(self.auc.trained) != 2:
            raise ValueError(f"MOD result {self.model}: auc.trained expected shape (n_layers, n_subsets = {n}), "
                             f"got {np.shape(self.auc.trained)}")
        layers = np.shape(self.auc.trained)[0]
        want = {"base_top1": (self.base_top1, (n,)), "eval_units": (self.eval_units, (n,)),
                "eval_groups": (self.eval_groups, (n,)), "random.base_top1": (self.random.base_top1, (n,)),
                "noise_floor.R_A_half1": (self.noise_floor.R_A_half1, (n, n)),
                "noise_floor.R_B_half2": (self.noise_floor.R_B_half2, (n, n)), "random.R": (self.random.R, (n, n)),
                "selected": (self.selected, (n, np.shape(self.selected)[-1])),
                "random.selected": (self.random.selected, np.shape(self.selected)),
                "auc.trained": (self.auc.trained, (layers, n)), "auc.random": (self.auc.random, (layers, n)),
                "auc.null": (self.auc.null, (layers, n)),
                "lottery_null": (self.lottery_null, (np.size(self.lottery_null),))}
        if list(self.searches) != list(self.targets):
            raise ValueError(f"MOD result {self.model}: expected a search per target {list(self.targets)}, "
                             f"got {list(self.searches)}")
        for t, s in self.searches.items():
            want.update({f"searches[{t!r}].{a}": (getattr(s, a), (n,)) for a in
                         ("count", "fraction", "relative", "evaluations", "overshoot", "diagonal")})
            want.update({f"searches[{t!r}].bracket": (s.bracket, (n, 4)), f"searches[{t!r}].R": (s.R, (n, n)),
                         f"searches[{t!r}].status": (np.empty(len(s.status)), (n,))})
        for name, (a, shape) in want.items():
            if np.shape(a) != shape:
                raise ValueError(f"MOD result {self.model}: {name} expected shape {shape} "
                                 f"(n_subsets = {n}), got {np.shape(a)}")

    # -- the flat form (the .npz on disk, the samples) -------------------------------------------

    @classmethod
    def from_flat(cls, model: str, kind: str, subsets: Sequence[str], targets: dict, primary: str,
                  arrays: dict, status: dict, info: dict) -> ModResult:
        """The record of the flat form that :func:`core.mod.experiment.run_mod` computes and the
        ``.npz`` holds.

        Parameters
        ----------
        arrays : dict of str to ndarray
            ``base_top1``, ``base_top1_random``, ``eval_units``, ``eval_groups``, ``auc_null``; per target
            t ``count_t``, ``fraction_t``, ``relative_t``, ``overshoot_t``, ``R_t``, ``diag_t``,
            ``evals_t``, ``bracket_t``; ``selected``, ``selected_random``, ``R_A_half1``, ``R_B_half2``,
            ``R_random``, ``lottery_null``, ``lorenz_trained``, ``lorenz_random``, ``auc_trained``,
            ``auc_random`` (shapes and meanings: the fields they fill). A reading ``Rx`` of
            ``info["readings"]`` stores the arrays it changes as ``Rx__<name>``.
        status : dict of str to list of str
            Per target, the status of every subset's search; ``Rx__<target>`` for a reading.
        info : dict

        Raises
        ------
        ValueError
            When an array is missing, or carries the prefix of a reading that ``info["readings"]`` lacks
            (the message names it and what was expected).
        """
        ran = list(info.get("readings", []))
        unknown = sorted({k.split("__", 1)[0] for k in arrays if "__" in k} - set(ran))
        if unknown:
            raise ValueError(f"MOD result {model}: arrays of readings {unknown}, expected only those of "
                             f"info['readings'] = {ran}")
        base = {k: v for k, v in arrays.items() if "__" not in k}
        res = cls._of(model, kind, subsets, targets, primary, base, status, "", info)
        for rid in ran:
            pre = f"{rid}__"
            own = {k[len(pre):]: v for k, v in arrays.items() if k.startswith(pre)}
            one = cls._of(model, kind, subsets, targets, primary, {**base, **own}, status, pre,
                          {**info, "reading": rid})
            one.reading, one.shared = rid, tuple(k for k in base if k not in own)
            res.readings[rid] = one
        return res

    @classmethod
    def _of(cls, model, kind, subsets, targets, primary, flat: dict, status: dict, pre: str, info: dict):
        def get(name: str) -> np.ndarray:
            if name not in flat:
                raise ValueError(f"MOD result {model}{f' ({pre[:-2]})' if pre else ''}: no array {name!r}; "
                                 f"it holds {', '.join(flat)}")
            return flat[name]

        def record(name: str):
            keys = {**_HEAD_KEYS, **_TAIL_KEYS}
            return _RECORDS[name](**{attr: get(k) for k, (rec, attr) in keys.items() if rec == name})

        searches = {t: Search(list(status[pre + t]), **{attr: get(f"{k}_{t}") for k, attr in _SEARCH_KEYS.items()})
                    for t in targets}
        return cls(model, kind, list(subsets), dict(targets), primary, base_top1=get("base_top1"),
                   eval_units=get("eval_units"), eval_groups=get("eval_groups"), searches=searches,
                   noise_floor=record("noise_floor"), random=record("random"), selected=get("selected"),
                   auc=record("auc"), lottery_null=get("lottery_null"), info=info)

    def _flat_arrays(self) -> dict:
        """Every array of this reading under its flat name, unprefixed, in run_mod's order."""
        def value(rec, attr):
            return getattr(self if rec is None else getattr(self, rec), attr)

        out = {k: value(*where) for k, where in _HEAD_KEYS.items()}
        for t, s in self.searches.items():
            out.update({f"{k}_{t}": getattr(s, attr) for k, attr in _SEARCH_KEYS.items()})
        out.update({k: value(*where) for k, where in _TAIL_KEYS.items()})
        return out

    def to_flat(self) -> tuple[dict, dict]:
        """The flat form (the inverse of :meth:`from_flat`): ``(arrays, meta)``, ``meta`` holding the
        model, kind, subsets, targets, primary, the flat statuses and the info."""
        arrays = self._flat_arrays()
        status = {t: list(s.status) for t, s in self.searches.items()}
        for rid, r in self.readings.items():
            arrays.update({f"{rid}__{k}": v for k, v in r._flat_arrays().items() if k not in r.shared})
            status.update({f"{rid}__{t}": list(s.status) for t, s in r.searches.items()})
        meta = {"model": self.model, "kind": self.kind, "subsets": self.subsets, "targets": self.targets,
                "primary": self.primary, "status": status, "info": self.info}
        return arrays, meta

    def save(self, path: Path) -> None:
        """Write the flat form to ``path`` (``.npz``, atomically)."""
        arrays, meta = self.to_flat()
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **arrays, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))

    @classmethod
    def load(cls, path: Path) -> ModResult:
        """Read what :meth:`save` wrote (raises ``ValueError``, ``KeyError`` or ``OSError`` for a damaged file)."""
        with np.load(path) as z:
            meta = json.loads(z["__meta__"].tobytes().decode())
            arrays = {k: z[k] for k in z.files if k != "__meta__"}
        return cls.from_flat(meta["model"], meta["kind"], meta["subsets"], meta["targets"], meta["primary"],
                             arrays, meta["status"], meta["info"])

    # -- what the claims read --------------------------------------------------------------------

    @property
    def n_neurons(self) -> int:
        """N: every MLP neuron of the model (n_layers * d_mlp)."""
        return int(self.info["n_layers"]) * int(self.info["d_mlp"])

    def search(self, target: str | None = None) -> Search:
        """The search and R at ``target`` (default: the primary target)."""
        return self.searches[check_name(f"MOD target of {self.model}", target or self.primary, list(self.searches))]

    def alternate(self, rid: str) -> ModResult:
        """The result under the alternate reading ``rid`` (:attr:`readings`).

        Raises
        ------
        UnknownNameError
            When ``rid`` did not run for this result (the message lists those that did).
        """
        return self.readings[check_name(f"reading computed for {self.model}", rid, list(self.readings))]

    def failed(self, target: str | None = None) -> list[str]:
        """Subsets without a selection at ``target`` (unreachable; under R1 also a lower count of 0),
        as ``"subset (status...)"``; an unreachable subset with the relative top1 with every neuron
        pruned and the target."""
        t = target or self.primary
        s = self.search(t)
        out = []
        for i, (name, st) in enumerate(zip(self.subsets, s.status)):
            if st == "unreachable":
                out.append(f"{name} (unreachable: relative top1 {float(s.bracket[i, 3]):.4f} with all "
                           f"{self.n_neurons} MLP neurons pruned, target {self.targets[t]} +- {TOLERANCE})")
            elif st not in SELECTED:
                out.append(f"{name} ({st})")
        return out

    def reached(self, targets: Sequence[str] | None = None) -> list[int]:
        """Indices of the subsets with a selection at every one of ``targets`` (default: primary)."""
        ss = [self.search(t) for t in (targets or [self.primary])]
        return [i for i in range(len(self.subsets)) if all(s.status[i] in SELECTED for s in ss)]

    def restrict(self, keep: Sequence[int]) -> ModResult:
        """The same result (and its readings) on the subsets ``keep`` only (indices into
        :attr:`subsets`, in order): every per-subset vector, matrix over subset pairs, selection and
        per-(layer, subset) AUC is sliced; :attr:`lottery_null` is kept whole, since
        :func:`core.mod.experiment.run_mod` computes it over the subsets that have a selection.
        """
        keep = [int(i) for i in keep]
        idx = np.asarray(keep, dtype=np.int64)
        return replace(self, subsets=[self.subsets[i] for i in keep], base_top1=self.base_top1[idx],
                       eval_units=self.eval_units[idx], eval_groups=self.eval_groups[idx],
                       searches={t: s.restrict(idx) for t, s in self.searches.items()},
                       noise_floor=self.noise_floor.restrict(idx), random=self.random.restrict(idx),
                       selected=self.selected[idx], auc=self.auc.restrict(idx),
                       readings={rid: r.restrict(keep) for rid, r in self.readings.items()}, info=dict(self.info))

    def overlap(self, random: bool = False) -> np.ndarray:
        """O[u, v] = |N_u & N_v| / |N_u| at the primary target (MOD section 4.1), of the trained model
        or of its random twin: shape (n_subsets, n_subsets), float64, NaN rows and columns for subsets
        without a selection."""
        from core.mod.lorenz import overlap_matrix

        sel = self.random.selected if random else self.selected
        ok = sel.any(1)
        out = np.full((len(ok), len(ok)), np.nan)
        if ok.any():
            out[np.ix_(ok, ok)] = overlap_matrix(sel[ok])
        return out

    def search_table(self, target: str | None = None) -> dict:
        """The search of every subset at ``target`` as the report shows it: ``{subset: {...}}`` with
        the status, the count m of N, the fraction (percent), r, the evaluations, the final bracket
        (both counts and both r), the overshoot (one-neuron resolution) and the measured R[u, u]."""
        t = target or self.primary
        s = self.search(t)
        out = {}
        for i, name in enumerate(self.subsets):
            lo_m, lo_r, hi_m, hi_r = s.bracket[i]
            st = s.status[i]
            row = {"status": st, "count": int(s.count[i]), "of N": self.n_neurons,
                   "evaluations": int(s.evaluations[i]),
                   "bracket": {"lower": [_int_or_none(lo_m), _float_or_none(lo_r)],
                               "upper": [_int_or_none(hi_m), _float_or_none(hi_r)]}}
            if st == "unreachable":
                row["r with every neuron pruned"] = _float_or_none(hi_r)
                row["target"] = self.targets[t]
            else:
                row.update({"fraction (percent)": round(100 * float(s.fraction[i]), 4),
                            "r": _float_or_none(s.relative[i]), "measured R[u, u]": _float_or_none(s.diagonal[i])})
                if st == ONE_NEURON:
                    row["overshoot (target - r)"] = _float_or_none(s.overshoot[i])
            out[name] = row
        return out

    # -- payloads ---------------------------------------------------------------------------------

    def samples(self) -> tuple[dict, dict, dict]:
        """Per-unit data for :func:`core.samples.write_samples`: ``(arrays, schema, meta)``.

        MOD's units are its subsets (MOD-1, 2, 5), subset pairs (MOD-3, 4, 6, 7) and layers (MOD-8..10):
        every array of the flat form (:meth:`to_flat`; meanings: the fields they fill), with ``subset``
        naming the subsets in order; an alternate reading's arrays keep their ``Rx__`` prefix.
        """
        flat, meta = self.to_flat()
        arrays = {k: np.asarray(v) for k, v in flat.items()}
        schema = {k: _mod_schema(k.split("__", 1)[-1], v.ndim) for k, v in arrays.items()}
        arrays["subset"] = np.asarray(self.subsets, dtype=str)
        schema["subset"] = (["subset"], "subset names, in the order of every subset dimension")
        return arrays, schema, {"kind": self.kind, "targets": self.targets, "primary": self.primary,
                                "status": meta["status"]}

    def curves(self) -> dict:
        """The figure payload (``"experiment": "mod"``) for :mod:`core.mod.figures`."""
        from core.mod.lorenz import lorenz_curve

        def clean(a):
            a = np.asarray(a, dtype=np.float64)
            return [[None if not np.isfinite(x) else float(x) for x in row] for row in np.atleast_2d(a)]

        o_t, o_r = self.overlap(False), self.overlap(True)
        ex = {}
        for side, counts in (("trained", self.auc.example_trained), ("random", self.auc.example_random)):
            if counts.sum() > 0:
                x, y = lorenz_curve(counts)
                ex[side] = {"x": x.tolist(), "y": y.tolist()}
        return {
            "experiment": "mod", "model": self.model, "kind": self.kind, "subsets": list(self.subsets),
            "targets": self.targets, "primary": self.primary,
            "R": {t: clean(self.search(t).R) for t in self.targets},
            "R_random": clean(self.random.R),
            "fractions": {t: clean(self.search(t).fraction)[0] for t in self.targets},
            "search": {t: self.search_table(t) for t in self.targets},
            "overlap": {"trained": clean(o_t), "random": clean(o_r)},
            "auc": {"trained": clean(self.auc.trained), "random": clean(self.auc.random), "null": clean(self.auc.null)},
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
    return [f"d{i}" for i in range(ndim)], f"{name}: see core/mod/result.py, ModResult.from_flat"


def _int_or_none(x) -> int | None:
    return int(x) if np.isfinite(x) and x >= 0 else None


def _float_or_none(x) -> float | None:
    return float(x) if np.isfinite(x) else None
