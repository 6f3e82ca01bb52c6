"""A claim as a small record, and what a claim test returns (after lm-evaluation-harness's tasks).

``Claim`` holds the row of ``../shared/claims.md`` (id, statement, measurement, decision rule, paper
value) and which models it applies to; ``Measurement`` is the structured result a claim test hands to
the ``conclude`` fixture of ``conftest.py``, which writes it and gates on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from core.inference.estimate import Estimate
from core.zoo.registry import MODELS


@dataclass(frozen=True)
class Claim:
    """One row of the claim catalogue.

    Attributes
    ----------
    id : str
        "ABL-1", ...
    statement, measured, rule : str
        The catalogue's words: the claim, how it is measured, the verdict rule.
    paper_value : str or None
    kinds : tuple of str
        Model kinds it applies to: "causal" (decoders), "masked" (masked LMs), "image" (ViT).
    paper : str
        "ABL", "MOD" or "BCL": which full-tier models are the paper's own.
    read_as : str or None
        The harness's own interpretation of the rule where the catalogue leaves room (a contradicted
        branch, the bootstrap units, "read as ..."): shown in the report as "read as", never as the rule.
    """

    id: str
    statement: str
    measured: str
    rule: str
    paper_value: str | None
    kinds: tuple[str, ...]
    paper: str
    read_as: str | None = None

    def models(self) -> list:
        """pytest params: every small-tier model of the claim's kinds, and the paper's own full-tier
        models marked ``gpu`` (``pytest -m gpu`` selects the full tier, ``-m "not gpu"`` the small);
        then every model outside the zoo given with ``--models`` (:func:`use_own_models`) whose kind is
        one of the claim's (or whose kind is unknown: a Hub id missing from the local cache, which
        skips naming it)."""
        params = []
        for spec in MODELS.values():
            if spec.kind not in self.kinds:
                continue
            marks = [pytest.mark.claim(self.id)]
            if spec.tier == "full":
                if self.paper not in spec.papers:
                    continue
                marks.append(pytest.mark.gpu)
            params.append(pytest.param(spec.name, id=spec.name, marks=marks))
        for name, kind in _OWN_MODELS:
            if kind is None or kind in self.kinds:
                params.append(pytest.param(name, id=name, marks=[pytest.mark.claim(self.id)]))
        return params


#: Models outside the zoo given with ``--models``: (name, kind or None). Set by conftest before collection.
_OWN_MODELS: list[tuple[str, str | None]] = []


def use_own_models(models) -> None:
    """Give every claim of their kind a case for these models outside the zoo (``conftest.py`` calls
    this for ``--models`` before the claim modules are collected).

    Parameters
    ----------
    models : iterable of (name, kind or None)
        Names as :func:`core.zoo.own.resolve` gives them; kind None parametrizes every claim.
    """
    _OWN_MODELS[:] = [(str(n), k) for n, k in models]


@dataclass
class Measurement:
    """What a claim test measured: the verdict with its numbers.

    Attributes
    ----------
    verdict : {"replicated", "contradicted", "inconclusive"}
    statistic : Estimate
        The headline statistic with its 95% interval.
    statistic_name : str
        What it is, with units ("top1(peak) - top1(zero), percentage points").
    details : dict
        Every other sub-statistic, as {"value", "interval", "unit"} dicts or plain values.
    sample_sizes : dict
    seeds : list of int
    data : dict or str
    decided_by : str or None
        Where the rule has several parts: the part that decided the verdict (``statistic`` is it).
    readings : dict
        Alternate readings that ran: ``{reading id: alternate(...)}`` (see :func:`alternate`).
    needed : dict or None
        What an inconclusive verdict would need (:func:`core.inference.needed`); filled in by
        ``conclude`` from ``estimates`` when not given.
    estimates : dict of part name to Estimate, or list of Estimate
        Every estimate the rule read (for ``needed``, which names the part that needs the most when
        they are named); defaults to ``[statistic]``.
    """

    verdict: str
    statistic: Estimate
    statistic_name: str
    details: dict = field(default_factory=dict)
    sample_sizes: dict = field(default_factory=dict)
    seeds: list = field(default_factory=list)
    data: dict | str = ""
    decided_by: str | None = None
    readings: dict = field(default_factory=dict)
    needed: dict | None = None
    estimates: dict | list = field(default_factory=list)


def alternate(reading: str, m: Measurement) -> dict:
    """An alternate reading's measurement as a result file keeps it (claims.md, "Readings")."""
    from core.readings import READINGS

    est = m.statistic
    return {"alternate": READINGS[reading].alternate, "verdict": m.verdict,
            "statistic": float(est.value), "interval": [float(est.low), float(est.high)],
            "statistic_name": m.statistic_name, "decided_by": m.decided_by}


def decisive(verdict: str, parts: dict, direction: int = +1) -> str:
    """The part of a several-part directional rule that decided ``verdict`` (issue 11, item 7).

    ``parts`` maps a name to an Estimate of a difference claimed > 0 (``direction=+1``).
    ``contradicted``: the part whose interval lies farthest below 0; ``replicated``: the part whose
    interval lies closest to 0 (the weakest that still holds); ``inconclusive``: the part whose
    interval crosses 0 with the smallest value.
    """
    signed = {k: e.scaled(direction) for k, e in parts.items()}
    if verdict == "contradicted":
        return min((k for k, e in signed.items() if e.high < 0), key=lambda k: signed[k].high)
    if verdict == "replicated":
        return min(signed, key=lambda k: signed[k].low)
    crossing = [k for k, e in signed.items() if e.low <= 0 <= e.high] or list(signed)
    return min(crossing, key=lambda k: signed[k].value)


def detail(est: Estimate, unit: str) -> dict:
    """A sub-statistic as the report shows it."""
    return {"value": est.value, "interval": [est.low, est.high], "unit": unit}


def per_model(pytestconfig, run_dir, compute, curves, samples=None):
    """``get(model)`` for a session fixture: ``compute(model)`` once per session (the experiments
    cache on disk too); a :class:`core.errors.MissingAssetError` (a model or data set not in the cache, a
    data subset below the profile's size) skips the test with its reason, and
    ``curves(model, result) -> {name: payload}`` is written into ``run_dir`` (the session's run folder,
    conftest's ``run_dir`` fixture) for the report.

    A failure is remembered: every later test of the same model skips with the same reason (or, for any
    other exception, raises the same error) without computing again, so an experiment that cannot run
    costs one attempt per session, not one per claim.

    With ``--log-samples``, ``samples(model, result) -> {(experiment, part or None): (arrays, schema,
    meta)}`` is written with :func:`core.samples.write_samples` into ``run_dir/samples/`` (README,
    "Per-unit data").

    pytest's output capture is suspended while ``compute`` runs, so that its progress bars reach the
    terminal (the main job takes tens of minutes; a silent terminal looks hung).

    Before the first ``compute(model)`` the model's preflight runs (:func:`preflight_or_stop`): a model
    that fails it fails every claim test that asks for it, with the same one-line message."""
    import contextlib
    import sys

    from core.errors import MissingAssetError
    from core.results import safe_name, write_curves

    done: dict = {}
    failed: dict = {}  # model -> the MissingAssetError's reason, or the other exception raised

    def get(model: str):
        if model in failed:
            if isinstance(failed[model], str):
                pytest.skip(failed[model])
            raise failed[model]
        if model not in done:
            preflight_or_stop(pytestconfig, run_dir, model)
            capture = pytestconfig.pluginmanager.getplugin("capturemanager")
            visible = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
            try:
                with visible:
                    sys.stderr.write("\n")  # the bars start below pytest's progress line
                    result = compute(model)
            except MissingAssetError as e:
                failed[model] = e.reason
                pytest.skip(e.reason)
            except Exception as e:
                failed[model] = e
                raise
            for name, payload in curves(model, result).items():
                write_curves(run_dir, safe_name(name), payload)
            if samples is not None and pytestconfig.getoption("--log-samples", False):
                from core.samples import samples_path, write_samples

                for (experiment, part), (arrays, schema, meta) in samples(model, result).items():
                    write_samples(samples_path(run_dir, experiment, model, part), arrays, schema,
                                  experiment=experiment, model=model, **meta)
            done[model] = result
        return done[model]

    return get


#: Preflight outcomes of this process: (model, device) -> (report dict, or None) and the skip reason.
_PREFLIGHTS: dict[tuple[str, str], tuple[dict | None, str | None]] = {}

#: Folder of the run folder where every process writes its preflight outcomes (one JSON per model);
#: the controller merges them into ``run.json`` (``conftest.py``).
PREFLIGHT_DIR = "preflight"


def preflight_or_stop(pytestconfig, run_dir, model: str) -> dict:
    """Run :func:`core.zoo.preflight.preflight` on ``model`` once per process and device, write its
    outcome to ``<run_dir>/preflight/<model>.json`` (atomically), and stop the calling claim test when
    the model fails it: ``pytest.fail`` with the report's one-line message (the check, what it expected
    and found, the family's row), the report dict attached to the exception as ``preflight``. A model
    that cannot load for a missing asset skips, as its computation would.

    Returns
    -------
    dict
        The report (:meth:`core.zoo.preflight.PreflightReport.to_dict`) of a model that passed.
    """
    from core.cache import atomic_write_json
    from core.errors import MissingAssetError
    from core.results import safe_name
    from core.zoo.models import load_model
    from core.zoo.preflight import preflight, preflight_inputs

    device = pytestconfig.getoption("--device")
    key = (model, device)
    if key not in _PREFLIGHTS:
        try:
            lm = load_model(model, device=device)
            inputs, about = preflight_inputs(lm)
        except MissingAssetError as e:
            _PREFLIGHTS[key] = (None, e.reason)
        else:
            report = preflight(lm, inputs, name=model, about=about)
            d = {**report.to_dict(), "device": device, "message": report.message()}
            atomic_write_json(run_dir / PREFLIGHT_DIR / f"{safe_name(model)}.json", d)
            _PREFLIGHTS[key] = (d, None)
    report, skipped = _PREFLIGHTS[key]
    if report is None:
        pytest.skip(skipped)
    if not report["passed"]:
        try:
            pytest.fail(report["message"], pytrace=False)
        except pytest.fail.Exception as e:
            e.preflight = report
            raise
    return report
