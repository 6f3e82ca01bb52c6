"""The modularity experiment (MOD, Pochinkov, Jones, Rahman 2024): selective pruning, cross-pruning,
overlaps, MoEfication and the Lorenz AUC of selected neurons over clusters.

- :func:`run_mod`: the relative-accuracy matrix ``R[u, v]`` = top1 on v
  after pruning for u / baseline top1 on v (MOD section 3, Figs. 1-2), overlaps (section 4.1),
  MoEfication clusters (:mod:`core.mod.moefication`) and Lorenz AUCs (:mod:`core.mod.lorenz`), for a model and
  its random twin, with the counts of :func:`core.mod.selection.bisect_count` on the scores of MOD Eq. 1
  (:mod:`core.mod.selection`) and the MOD-6 null (:mod:`core.mod.nulls`); with the alternate readings R1
  (the lower count of a bracket closed at adjacent counts) and R2 (Eq. 1 as printed) when asked
  (:attr:`core.mod.result.ModResult.readings`);
- :func:`mod_experiment`: the whole experiment on a model of the zoo with the tier's subsets
  (:mod:`core.mod.subsets`), cached.

The claims' statistics and rules on these arrays are in :mod:`claims.mod_rules` (claim logic stays out of core).

Selected neurons are mean-ablated (``claims.md``): the offset is the neuron's mean over the balanced
reference set's collection sample.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from core.zoo import sites
from core.data.hub import HUB_DATA_VERSION
from core.data.images import hub_image_processor, model_image_processor
from core.cache import (CacheEntry, atomic_path, cache_entry, cache_key, cached_experiment, checkpointed,
                        one_at_a_time)
from core.errors import check_name
from core.evaluate import EvalSet, evaluate
from core.mod.nulls import NULL_DRAWS, lottery_null
from core.timing import stage
from core.mod.result import ModResult
from core.mod.selection import (EPS, ONE_NEURON, TOLERANCE, bisect_count, selected_count, selection_scores,
                                top_fraction)
from core.mod.subsets import (MOD_IMAGE_DATA, ModData, check_subset, eval_halves, image_data, sub_evalset,
                              subsets_for, text_data)

__all__ = ["MOD_READINGS", "run_mod", "mod_experiment"]

SITE = "mlp"
#: Reading R1's status of a subset whose lower count is 0: no neuron selected, no selected set.
R1_EMPTY = "no neuron selected (R1: lower count 0)"
#: The readings of claims.md's Readings table that the MOD experiment computes as alternates: R1 (the
#: lower count of a bracket closed at adjacent counts) and R2 (Eq. 1 as printed).
MOD_READINGS = ("R1", "R2")
#: Targets: top1 after pruning relative to baseline. ViT: 50% drop (and 80% drop for MOD-2); language
#: models: 20% drop (claims.md, MOD setup).
TARGETS = {"image": {"drop50": 0.5, "drop80": 0.2}, "causal": {"drop20": 0.8}}
PRIMARY = {"image": "drop50", "causal": "drop20"}
#: Per-layer selection for MOD-8..10 (MOD section 4.2): ViT 12.5%, language models 3.4%.
PER_LAYER_FRACTION = {"image": 0.125, "causal": 0.034}
#: Bumped when a change alters what a cached experiment holds.
MOD_VERSION = 4  # 4: revision 2 (integer-count search, readings R1/R2, MOD-3 halves) + documents
#: The version of the collection statistics' cache (they depend on the models and the data only).
MOD_STATS_VERSION = 1


# ---------------------------------------------------------------------------------------------
# the experiment on one model and its random twin
# ---------------------------------------------------------------------------------------------

def _per_subset_top1(top1: np.ndarray, unit_subset: np.ndarray, n: int) -> np.ndarray:
    counts = np.bincount(unit_subset, minlength=n)
    return np.bincount(unit_subset, weights=top1.astype(np.float64), minlength=n) / counts


@dataclass
class ModelSide:
    """Statistics and selections of one model (trained or random twin) in the experiment."""

    mean_abs: dict  # {sample: {subset: (n_layers, d_mlp) float64}}
    mean: dict  # {sample: {subset: (n_layers, d_mlp) float64}}

    def reference(self, sample: str, what: str = "mean_abs") -> np.ndarray:
        table = self.mean_abs if what == "mean_abs" else self.mean
        return np.mean(np.stack(list(table[sample].values())), axis=0)

    def scores(self, subset: str, sample: str = "A", orientation: str = "code") -> np.ndarray:
        return selection_scores(self.mean_abs[sample][subset], self.reference(sample), orientation=orientation)


def _side_stats(model, name: str, data: ModData, samples: Sequence[str], batch_size: int, key: str,
                progress: bool) -> ModelSide:
    from core.neurons.activations import collect_stats

    mean_abs: dict = {}
    mean: dict = {}
    for sample in samples:
        mean_abs[sample], mean[sample] = {}, {}
        for subset in data.reference:
            # Only the first pass (moments) is needed; its two arrays are cached here, small, instead of
            # the whole NeuronStats state (whose unused histogram buffer is d_mlp x 100 per layer).
            entry = cache_entry("mod", "mod-side-stats", MOD_STATS_VERSION, key,
                                {"side": name, "subset": subset, "sample": sample},
                                label=f"{name}-{subset}-{sample}", suffix=".npz", folder=("stats",))

            def compute(subset=subset, sample=sample) -> tuple[np.ndarray, np.ndarray]:
                st = collect_stats(model, SITE, data.collect[sample][subset], batch_size=batch_size,
                                   histogram=False, progress=progress, model_name=f"{name} {subset} {sample}")
                return (torch.stack([s.mean_abs for s in st]).double().numpy(),
                        torch.stack([s.mean for s in st]).double().numpy())

            # a damaged file is named and recomputed
            mean_abs[sample][subset], mean[sample][subset] = cached_experiment(
                entry, compute, load=load_side_stats, save=save_side_stats)
    return ModelSide(mean_abs, mean)


def save_side_stats(value: tuple[np.ndarray, np.ndarray], path: Path) -> None:
    """Write one side's MOD statistics cache entry: ``mean_abs`` and ``mean``, float64 of shape
    (n_layers, d_mlp), atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, mean_abs=value[0], mean=value[1])


def load_side_stats(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read what :func:`save_side_stats` wrote: ``(mean_abs, mean)``."""
    with np.load(path) as z:
        return z["mean_abs"], z["mean"]


def _group_top1(top1: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(groups, weights=top1.astype(np.float64), minlength=n) / np.bincount(groups, minlength=n)


def _relative(top1: np.ndarray, base: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(base > 0, top1 / np.where(base > 0, base, 1.0), np.nan)


def _pruned_units(model, evalset: EvalSet, selected: np.ndarray, offsets: torch.Tensor, batch_size: int):
    """Per-unit top1 (0/1) of ``evalset`` with ``selected`` neurons mean-ablated."""
    keep = torch.from_numpy(~selected).float()
    with sites.ablate(model, SITE, keep, offsets):
        return evaluate(model, evalset, batch_size=batch_size).top1


def run_mod(trained, random, *, name: str, data: ModData, batch_size: int, stats_key: str,
            k: int, progress: bool = True, info: dict | None = None, w_in_which: str = "up",
            null_draws: int = NULL_DRAWS, seed: int = 0, random_cross_pruning: bool = True,
            readings: Iterable[str] = (), checkpoint=None) -> ModResult:
    """The MOD experiment on a model and its random twin.

    Parameters
    ----------
    trained, random : transformers models of the same config (causal LM or image classifier)
    name : str
        Zoo name of the trained model.
    data : ModData
    batch_size : int or core.batching.Budget
        Items per forward pass (:func:`core.batching.items_per_batch`; the profile's
        :meth:`core.profiles.Profile.batch_size_for` the device).
    stats_key : str
        Cache key prefix of the collection statistics.
    k : int
        MoEfication clusters per layer (must divide d_mlp).
    w_in_which : {"up", "gate", "concat"}
        Which ``W_in`` of gated MLPs MoEfication clusters (``up``: the paper code's).
    null_draws, seed : size-matched random selections of the null Lorenz AUC and the MOD-6 null
    random_cross_pruning : bool, default True
        Evaluate the random twin's relative-accuracy matrix at the primary reading (else its rows
        stay NaN; its selections and overlaps are computed either way).
    readings : iterable of {"R1", "R2"}
        Alternate readings to compute beside the primary one (claims.md, "Readings"): ``R1`` the
        lower count of a bracket closed at adjacent counts (only rows whose count differs are
        evaluated again), ``R2`` Eq. 1 as printed (its own searches, matrices, selections and AUCs).
    checkpoint : core.cache.Checkpoint, optional
        Keeps every finished search and cross-pruning row, so that a run interrupted part-way
        resumes from them; the result equals an uninterrupted one.

    Returns
    -------
    ModResult
        ``info["cost"]`` holds, per reading, the seconds and the evaluations it added (search
        evaluations on one subset's items; full passes over every subset's evaluation items).
    """
    import time

    from core.mod.moefication import moefication
    from core.mod.lorenz import cluster_counts, lorenz_auc, null_lorenz_auc, overlap_matrix

    readings = sorted(set(readings))
    for r in readings:
        check_name("MOD reading", r, MOD_READINGS)
    kind = data.kind
    targets, primary = TARGETS[kind], PRIMARY[kind]
    n_layers, width = sites.n_layers(trained, SITE), sites.site_width(trained, SITE)
    n_all = n_layers * width
    shape = (n_layers, width)
    n_sub = len(data.subsets)
    arrays: dict[str, np.ndarray] = {}
    status: dict[str, list] = {}
    histories: dict[str, list] = {}
    cost: dict[str, dict] = {}

    with stage("mod statistics", name, on=trained): side_t = _side_stats(trained, name, data, ("A", "B"), batch_size, stats_key, progress)
    with stage("mod statistics", name, on=random): side_r = _side_stats(random, f"{name}:random", data, ("A",), batch_size, stats_key, progress)
    offsets = {("t", "A"): torch.from_numpy(side_t.reference("A", "mean")).float(),
               ("t", "B"): torch.from_numpy(side_t.reference("B", "mean")).float(),
               ("r", "A"): torch.from_numpy(side_r.reference("A", "mean")).float()}
    models = {"t": trained, "r": random}
    sides = {"t": side_t, "r": side_r}

    base_units = evaluate(trained, data.evalset, batch_size=batch_size).top1
    base = arrays["base_top1"] = _per_subset_top1(base_units, data.unit_subset, n_sub)
    base_r = arrays["base_top1_random"] = _per_subset_top1(
        evaluate(random, data.evalset, batch_size=batch_size).top1, data.unit_subset, n_sub)
    half, half_info = eval_halves(data)
    halves = data.unit_subset * 2 + half  # group 2 v + h: subset v, half h
    base_half = _group_top1(base_units, halves, 2 * n_sub)
    arrays["eval_units"] = np.bincount(data.unit_subset, minlength=n_sub).astype(np.int64)
    arrays["eval_groups"] = np.asarray(half_info["groups_per_subset"], dtype=np.int64)

    orders: dict = {}

    def order_of(which: str, sample: str, orient: str, subset: str) -> np.ndarray:
        key = (which, sample, orient, subset)
        if key not in orders:
            s = sides[which].scores(subset, sample, orient)
            orders[key] = np.argsort(-s.ravel(), kind="stable")
        return orders[key]

    def mask(which, sample, orient, subset, m) -> np.ndarray:
        out = np.zeros(n_all, dtype=bool)
        out[order_of(which, sample, orient, subset)[:int(m)]] = True
        return out.reshape(shape)

    units: dict = {}  # (which, sample, orient, subset, m) -> per-unit top1 over the whole evaluation set

    def pruned(which, sample, orient, subset, m) -> np.ndarray:
        key = (which, sample, orient, subset, int(m))
        if key not in units:
            units[key] = np.asarray(_pruned_units(models[which], data.evalset, mask(*key), offsets[(which, sample)],
                                                  batch_size), dtype=np.float32)
        return units[key]

    # ---- searches: primary (code orientation) and, for R2, Eq. 1 as printed
    orients = {"": "code", **({"R2__": "printed"} if "R2" in readings else {})}
    sub_sets = [sub_evalset(data, i) for i in range(n_sub)]
    searches: dict = {}
    bar = tqdm(total=n_sub * len(targets) * len(orients), desc=f"{name}: MOD count search", disable=not progress)
    timed = stage("mod count search", name, on=trained).start()
    for pre, orient in orients.items():
        start, n_evals = time.perf_counter(), 0
        for t, target in targets.items():
            found = []
            for i, subset in enumerate(data.subsets):
                bar.set_postfix_str(f"{pre}{t} {subset}")

                def relative(m, i=i, subset=subset, orient=orient):
                    keep = torch.from_numpy(~mask("t", "A", orient, subset, m)).float()
                    with sites.ablate(trained, SITE, keep, offsets[("t", "A")]):
                        s = evaluate(trained, sub_sets[i], batch_size=batch_size)
                    return float(s.top1.mean()) / base[i] if base[i] > 0 else float("nan")

                found.append(checkpointed(checkpoint, ("search", pre, t, subset),  # resumes after Ctrl-C
                                          lambda relative=relative: bisect_count(relative, target, n_all)))
                n_evals += found[-1].n_evals
                bar.update()
            searches[(pre, t)] = found
        cost[pre.rstrip("_") or "primary"] = {"search_s": round(time.perf_counter() - start, 2),
                                              "search_evaluations": n_evals}
    bar.close()
    timed.stop()

    # ---- MoEfication clusters (shared by every reading) and the null Lorenz AUC
    per_layer = PER_LAYER_FRACTION[kind]
    labels = []
    auc_null = np.zeros((n_layers, n_sub))
    timed = stage("mod moefication", name, on="cpu", layers=n_layers, k=k).start()
    for layer in tqdm(range(n_layers), desc=f"{name}: MoEfication", disable=not progress, leave=False):
        lab_t = moefication(sites.w_in(trained, layer, which=w_in_which), k, seed=seed)
        lab_r = moefication(sites.w_in(random, layer, which=w_in_which), k, seed=seed)
        labels.append((lab_t, lab_r))
        auc_null[layer] = null_lorenz_auc(lab_t, selected_count(per_layer, width), n_draws=null_draws,
                                          seed=seed + layer)
    timed.stop()
    arrays["auc_null"] = auc_null

    def aucs(pre: str, orient: str) -> None:
        auc_t, auc_r = np.zeros((n_layers, n_sub)), np.zeros((n_layers, n_sub))
        for layer, (lab_t, lab_r) in enumerate(labels):
            for i, subset in enumerate(data.subsets):
                st_ = side_t.scores(subset, "A", orient)[layer:layer + 1]
                sr_ = side_r.scores(subset, "A", orient)[layer:layer + 1]
                ct = cluster_counts(top_fraction(st_, per_layer, per_layer=True)[0], lab_t, k)
                cr = cluster_counts(top_fraction(sr_, per_layer, per_layer=True)[0], lab_r, k)
                auc_t[layer, i], auc_r[layer, i] = lorenz_auc(ct), lorenz_auc(cr)
                if layer == 0 and i == 0 and not pre:
                    arrays["lorenz_trained"], arrays["lorenz_random"] = ct, cr
        arrays[pre + "auc_trained"], arrays[pre + "auc_random"] = auc_t, auc_r

    # ---- the matrices, selections and nulls of one reading
    def reading(pre: str, orient: str, counts: dict, rel: dict, st: dict, overshoot: dict, found: dict | None):
        label = pre.rstrip("_") or "primary"
        start, before = time.perf_counter(), len(units)
        timed = stage("mod cross-pruning", name, on=trained, reading=label).start()
        desc = f"{name}: cross-pruning" + (f" ({label})" if pre else "")
        bar = tqdm(total=n_sub * (len(targets) + 1), desc=desc, disable=not progress, leave=False)
        for t in targets:
            c = np.asarray(counts[t], dtype=np.int64)
            ok = np.array([s_ in ("reached", ONE_NEURON) for s_ in st[t]]) & (c > 0)
            R = np.full((n_sub, n_sub), np.nan)
            for i, subset in enumerate(data.subsets):
                if ok[i]:
                    R[i] = _relative(_per_subset_top1(pruned("t", "A", orient, subset, c[i]), data.unit_subset,
                                                      n_sub), base)
                bar.update()
            arrays[pre + f"count_{t}"] = c
            arrays[pre + f"fraction_{t}"] = np.where(c >= 0, c / n_all, np.nan)
            arrays[pre + f"relative_{t}"] = np.asarray(rel[t], dtype=np.float64)
            arrays[pre + f"overshoot_{t}"] = np.asarray(overshoot[t], dtype=np.float64)
            arrays[pre + f"R_{t}"], arrays[pre + f"diag_{t}"] = R, np.diag(R).copy()
            status[pre + t] = list(st[t])
            if found is not None:
                arrays[pre + f"evals_{t}"] = np.array([f.n_evals for f in found[t]], dtype=np.int64)
                arrays[pre + f"bracket_{t}"] = np.array([[*f.lower, *f.upper] for f in found[t]], dtype=np.float64)
                histories[pre + t] = [[[m, r] for m, r in f.history] for f in found[t]]
        c = np.asarray(counts[primary], dtype=np.int64)
        ok = np.array([s_ in ("reached", ONE_NEURON) for s_ in st[primary]]) & (c > 0)
        sel, sel_r = np.zeros((n_sub, n_all), dtype=bool), np.zeros((n_sub, n_all), dtype=bool)
        ra1, rb2, rr = (np.full((n_sub, n_sub), np.nan) for _ in range(3))
        for i, subset in enumerate(data.subsets):
            bar.update()
            if not ok[i]:
                continue
            sel[i] = mask("t", "A", orient, subset, c[i]).ravel()
            sel_r[i] = mask("r", "A", orient, subset, c[i]).ravel()
            ra1[i] = _relative(_group_top1(pruned("t", "A", orient, subset, c[i]), halves, 2 * n_sub),
                               base_half).reshape(n_sub, 2)[:, 0]
            rb2[i] = _relative(_group_top1(pruned("t", "B", orient, subset, c[i]), halves, 2 * n_sub),
                               base_half).reshape(n_sub, 2)[:, 1]
            if random_cross_pruning and not pre:
                rr[i] = _relative(_per_subset_top1(pruned("r", "A", orient, subset, c[i]), data.unit_subset, n_sub),
                                  base_r)
        bar.close()
        timed.stop()
        arrays[pre + "selected"], arrays[pre + "selected_random"] = sel, sel_r
        arrays[pre + "R_A_half1"], arrays[pre + "R_B_half2"], arrays[pre + "R_random"] = ra1, rb2, rr
        # MOD-6 null: overlaps of size-matched random neuron sets against the trained overlaps
        both = sel.any(1) & sel_r.any(1)
        arrays[pre + "lottery_null"] = np.full(null_draws, np.nan)
        if both.sum() >= 3:
            # on a GPU the draws run there (same distribution, other draws than the CPU's numpy ones)
            where = next(trained.parameters()).device
            with stage("mod lottery null", name, on="cuda" if where.type == "cuda" else "cpu", reading=label):
                arrays[pre + "lottery_null"] = lottery_null(overlap_matrix(sel[both]), sel_r[both].sum(1), n_all,
                                                            n_draws=null_draws, seed=seed,
                                                            device=where if where.type == "cuda" else None)
        entry = cost.setdefault(label, {})
        entry["cross_pruning_s"] = round(time.perf_counter() - start, 2)
        entry["full_evaluation_passes"] = len(units) - before

    def from_searches(pre: str) -> tuple:
        found = {t: searches[(pre, t)] for t in targets}
        return ({t: [f.count for f in fs] for t, fs in found.items()},
                {t: [f.relative for f in fs] for t, fs in found.items()},
                {t: [f.status for f in fs] for t, fs in found.items()},
                {t: [f.overshoot for f in fs] for t, fs in found.items()}, found)

    reading("", "code", *from_searches(""))
    aucs("", "code")
    if "R1" in readings:
        found = {t: searches[("", t)] for t in targets}
        counts = {t: [f.alternate for f in fs] for t, fs in found.items()}
        rel = {t: [f.alternate_relative for f in fs] for t, fs in found.items()}
        st = {t: [R1_EMPTY if f.status == ONE_NEURON and f.alternate == 0 else f.status for f in fs]
              for t, fs in found.items()}
        over = {t: [f.target - f.alternate_relative if f.status == ONE_NEURON else f.overshoot for f in fs]
                for t, fs in found.items()}
        reading("R1__", "code", counts, rel, st, over, None)
    if "R2" in readings:
        start = time.perf_counter()
        reading("R2__", "printed", *from_searches("R2__"))
        aucs("R2__", "printed")
        cost["R2"]["cross_pruning_s"] = round(time.perf_counter() - start, 2)

    info = dict(info or {})
    info.update({"random_cross_pruning": random_cross_pruning, "n_layers": n_layers, "d_mlp": width, "k": k,
                 "cluster_size": width // k, "n_neurons": n_all,
                 "w_in": w_in_which, "per_layer_fraction": per_layer, "null_draws": null_draws,
                 "tolerance_pp": 100 * TOLERANCE,
                 "search": "bisection over the integer count m in [0, N], N every MLP neuron; the first count "
                           "within the tolerance, else the upper count of a bracket closed at adjacent counts",
                 "orientation": "code", "readings": readings, "cost": cost,
                 "eval_halves": half_info, "search_history": histories,
                 "eps": EPS[SITE], "ablation": "mean (balanced reference set, collection sample)",
                 "reference": list(data.reference), "sizes": {**data.sizes, **data.counts()},
                 "per_subset": data.per_subset(), "data": data.described})
    return ModResult.from_flat(name, kind, list(data.subsets), dict(targets), primary, arrays, status, info)


# ---------------------------------------------------------------------------------------------
# the experiment on a model of the zoo, cached
# ---------------------------------------------------------------------------------------------

def _subsets_note(kind: str, subsets: list, reference: list) -> str:
    if len(subsets) == len(reference):
        return f"all {len(reference)} subsets of the family"
    return (f"{len(subsets)} of the {len(reference)} subsets (for the ci profile: those of the a-priori related "
            f"pairs, fixed before any run, to bound the run time); all {len(reference)} form the reference set")


@one_at_a_time("mod", lambda name, profile, **_: f"experiment-{name}-{profile.name}")
def mod_experiment(name: str, profile, *, device: str = "cpu", progress: bool = True,
                   subsets: Sequence[str] | None = None, readings: Iterable[str] = frozenset()) -> ModResult:
    """The MOD experiment on a zoo model and its random twin, with the tier's subsets, cached on disk.

    Parameters
    ----------
    name : str
        A zoo name (a causal LM or an image classifier; not a ``:random`` twin).
    profile : core.profiles.Profile
        Sample sizes (its :attr:`~core.profiles.Profile.mod` holds the MOD-specific ones).
    device : str
    subsets : sequence of str, optional
        The subsets to prune and evaluate (default: the profile's, ``profile.mod.text_subsets``); each must be a
        subset of the model's data family. The reference set is always every subset of the family.
    readings : iterable of str, default none
        Reading ids of claims.md's Readings table to compute as alternates (the ``readings`` session
        fixture); those of MOD (:data:`MOD_READINGS`: R1, R2) run, the others are ignored. The
        readings computed are part of the cache key.

    Returns
    -------
    ModResult
        Reloaded from ``cache_dir("mod")`` when an identical experiment already ran.

    Raises
    ------
    MissingAssetError
        When the model or its data is not available (tests skip with the reason).
    ValueError
        For a masked LM (the modularity paper studies decoders and ViT), or a profile without MOD sizes.
    UnknownNameError
        For a subset that the model's data family lacks (the message lists the valid ones), or an
        unknown reading id (the message lists the valid ones).
    """
    from core.mod.moefication import k_for
    from core.zoo.models import get_spec, load_model, model_identity
    from core.readings import READINGS

    mod_readings = sorted({check_name("reading", r, READINGS) for r in readings} & set(MOD_READINGS))

    spec = get_spec(name)
    if spec.kind not in TARGETS:
        raise ValueError(f"MOD runs on causal LMs and image classifiers; {name} is a {spec.kind} model")
    sizes = profile.sizes_of("mod")
    if spec.tier == "full":
        load_model(name, device=device)  # a missing model is the first reason to skip
    chosen, reference = subsets_for(spec.kind, spec.tier, profile)
    if subsets is not None:
        chosen = [check_subset(name, s, reference) for s in subsets]
        if len(chosen) < 3 or len(set(chosen)) != len(chosen):
            raise ValueError(f"subsets: expected at least 3 distinct subsets, got {list(subsets)}")
    subsets = chosen
    lm = load_model(name, device=device)
    twin = load_model(name + ":random", device=device)
    d_mlp = sites.site_width(lm.model, SITE)
    k = k_for(name, d_mlp)

    # the full tier's entries also key on what its Hub subsets read (core.data.hub.HUB_DATA_VERSION)
    hub = {"hub_data": HUB_DATA_VERSION} if spec.tier == "full" and spec.kind != "image" else {}
    identity = [model_identity(lm), model_identity(twin)]  # the trained model, then its random twin

    def entry_for(rs) -> CacheEntry:
        return cache_entry("mod", "mod", MOD_VERSION, identity, dict(
            **hub, profile=profile.to_dict(), sizes=sizes.to_dict(), subsets=subsets, reference=reference, k=k,
            targets=TARGETS[lm.kind], tolerance=TOLERANCE, per_layer=PER_LAYER_FRACTION[lm.kind],
            null_draws=NULL_DRAWS, device=lm.device.type, search="integer count bisection", readings=list(rs),
            # on a GPU the MOD-6 null is drawn there (other draws than numpy's)
            **({"null_on": "cuda torch"} if lm.device.type == "cuda" else {})), label=name, suffix=".npz")

    # the collection statistics depend only on the models and the data, not on the search
    stats_key = cache_key(experiment="mod-stats", model=identity,
                          seq_len=profile.seq_len, batch_size=profile.batch_size,
                          collect={k_: v for k_, v in sizes.to_dict().items() if k_.startswith("collect")},
                          reference=reference, device=lm.device.type, **hub)
    # an experiment cached with more readings serves this one too (it holds the primary and these)
    supersets = [sorted(c) for size in range(len(MOD_READINGS) + 1) for c in combinations(MOD_READINGS, size)
                 if set(mod_readings) <= set(c)]
    entry = next((e for e in map(entry_for, supersets) if e.path.exists()), entry_for(mod_readings))

    def compute(checkpoint) -> ModResult:
        if lm.kind == "image" and lm.tier == "full":
            data = image_data(profile, subsets, sizes, MOD_IMAGE_DATA["full"], hub_image_processor(lm.spec.hub_id))
        elif lm.kind == "image" and lm.spec.origin is not None:  # a model outside the zoo: its processor
            location = lm.spec.location if lm.spec.origin in ("folder", "hub") else None
            data = image_data(profile, subsets, sizes, processor=model_image_processor(lm.model.config, location))
        elif lm.kind == "image":
            data = image_data(profile, subsets, sizes)
        else:
            data = text_data(lm, profile, subsets, reference, sizes)
        return run_mod(lm.model, twin.model, name=name, data=data, batch_size=profile.batch_size_for(lm.device),
                       stats_key=stats_key, k=k, progress=progress,
                       random_cross_pruning=lm.kind == "image" or sizes.random_cross_pruning_text,
                       readings=mod_readings, checkpoint=checkpoint,  # an interrupted run resumes from it
                       info={"profile": profile.name, "subsets_note": _subsets_note(lm.kind, subsets, reference)})

    # a damaged entry is named and rebuilt
    result = cached_experiment(entry, compute, load=ModResult.load, save=lambda r, path: r.save(path), note=name,
                               checkpoint=True)
    return result
