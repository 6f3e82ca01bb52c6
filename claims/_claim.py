"""The claim protocol: a claim as a small record, what its test returns, and how a test is
parametrized (after lm-evaluation-harness's tasks).

- :class:`Claim` holds the row of ``../shared/claims.md`` (id, statement, measurement, decision rule,
  paper value; ``tests/test_catalogue.py`` checks them against the catalogue), the harness's own
  reading of the rule (``read_as``) and the model kinds it applies to.
- :func:`measures` marks a test as measuring a claim; ``conftest.py``'s ``pytest_generate_tests``
  parametrizes its ``model`` argument with :func:`claim_params`.
- :class:`Outcome` is what a rule returns and what a claim test hands to ``conftest.py``'s
  ``conclude``, which writes it and gates on it. The rules themselves live beside each paper's test
  module (``claims/abl_rules.py``, ``claims/mod_rules.py``, ``claims/bcl_rules.py``); which part of a
  several-part rule decided the verdict is :mod:`core.inference.rules`'s business (one function per
  rule kind).
- :func:`with_readings` adds the alternate readings (claims.md, "Readings") to any claim's outcome.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import pytest

from core.inference.estimate import Estimate
from core.zoo.registry import MODELS

@dataclass(frozen=True)
class Claim:
    """One row of the claim catalogue (claims.md), and the models it applies to.

    Attributes
    ----------
    id : str
        "ABL-1", ...
    statement, measured, rule : str
        The catalogue's words, verbatim: the claim, how it is measured, the verdict rule.
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


def claim_params(claim: Claim, own_models: Iterable[tuple[str, str | None]] = ()) -> list:
    """The ``model`` parameters of a test of ``claim``: every small-tier model of the claim's kinds, and
    the paper's own full-tier models marked ``gpu`` (``pytest -m gpu`` selects the full tier,
    ``-m "not gpu"`` the small); then every model outside the zoo given with ``--models`` whose kind
    is one of the claim's (or whose kind is unknown: a Hub id missing from the local cache, which
    skips naming it).

    Parameters
    ----------
    claim : Claim
    own_models : iterable of (name, kind or None)
        Models outside the zoo (``conftest.py`` resolves ``--models``).

    Returns
    -------
    list of pytest.param
        Each with the id of its model and the marker ``claim(<id>)``.
    """
    params = []
    for spec in MODELS.values():
        if spec.kind not in claim.kinds:
            continue
        marks = [pytest.mark.claim(claim.id)]
        if spec.tier == "full":
            if claim.paper not in spec.papers:
                continue
            marks.append(pytest.mark.gpu)
        params.append(pytest.param(spec.name, id=spec.name, marks=marks))
    for name, kind in own_models:
        if kind is None or kind in claim.kinds:
            params.append(pytest.param(name, id=name, marks=[pytest.mark.claim(claim.id)]))
    return params


def measures(claim: Claim):
    """Mark a test function as the measurement of ``claim``: ``conftest.py`` parametrizes its
    ``model`` argument with :func:`claim_params` (the session's ``--models`` outside the zoo
    included), without module globals.

    Usage: ``@measures(ABL_1)`` above ``def test_abl_1_...(model, abl, conclude)``.
    """
    if not isinstance(claim, Claim):
        raise TypeError(f"measures: expected a Claim, got {type(claim).__name__}")
    return pytest.mark.measures(claim)


@dataclass
class Outcome:
    """A claim's verdict with the numbers it came from: what a rule returns, and (with the sample
    sizes, seeds and data filled in) what a claim test hands to ``conclude``.

    Attributes
    ----------
    verdict : {"replicated", "contradicted", "inconclusive"}
    statistic : Estimate
        The headline statistic with its 95% interval: where the rule has several parts, the part
        that decided the verdict.
    statistic_name : str
        What it is, with units ("top1(peak) - top1(zero), percentage points").
    parts : dict of str to Estimate
        Every estimate the rule read, each placed so that the rule asks whether its interval excludes
        0 (a threshold subtracted where the rule has one); :func:`core.inference.needed` reads them
        for an inconclusive verdict. Empty: the headline alone.
    details : dict
        Every other sub-statistic, as {"value", "interval", "unit"} dicts (:func:`detail`) or plain
        values.
    sample_sizes : dict
        The units of the interval and every other count (name -> int).
    seeds : list of int
    data : dict or str
        What was measured on (datasets, splits, subsets).
    decided_by : str or None
        Where the rule has several parts: the key of the part that decided (``statistic`` is it).
    readings : dict
        Alternate readings that ran: ``{reading id: alternate(...)}`` (:func:`with_readings`).
    needed : dict or None
        What an inconclusive verdict would need (:func:`core.inference.needed`); filled in by
        ``conclude`` from ``parts`` when not given.
    """

    verdict: str
    statistic: Estimate
    statistic_name: str = ""
    parts: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    sample_sizes: dict = field(default_factory=dict)
    seeds: list = field(default_factory=list)
    data: dict | str = ""
    decided_by: str | None = None
    readings: dict = field(default_factory=dict)
    needed: dict | None = None

    def but(self, **changes) -> "Outcome":
        """A copy with ``changes`` (``dataclasses.replace``)."""
        return replace(self, **changes)


def alternate(reading: str, m: Outcome) -> dict:
    """An alternate reading's outcome as a result file keeps it (claims.md, "Readings")."""
    from core.readings import READINGS

    est = m.statistic
    return {"alternate": READINGS[reading].alternate, "verdict": m.verdict,
            "statistic": float(est.value), "interval": [float(est.low), float(est.high)],
            "statistic_name": m.statistic_name, "decided_by": m.decided_by}


def with_readings(claim: Claim, measure: Callable[[str | None], Outcome], computed: Iterable[str]) -> Outcome:
    """``measure(None)``, the primary reading's outcome, with ``measure(rid)`` beside it for every
    alternate reading ``rid`` in ``computed`` (the readings the experiment computed) that touches
    ``claim`` (claims.md, "Readings"), in id order."""
    from core.readings import READINGS

    m = measure(None)
    for rid in sorted(set(computed)):
        if claim.id in READINGS[rid].claims:
            m.readings[rid] = alternate(rid, measure(rid))
    return m


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
