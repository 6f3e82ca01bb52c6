"""Tiers, command-line options, shared fixtures and the report hook.

Options
-------
--profile {paper,small,ci}   sample sizes (default: small)
--device DEVICE              "cpu" (default) or "cuda"/"cuda:N" where there is one
--results-dir DIR            where run folders go (default: runs/)
--run-dir DIR                write this run into DIR instead of a new timestamped folder
--models A,B                 run the claim tests only on these models: zoo names, checkpoint folders,
                             .gguf files or Hub ids (org/name, local Hugging Face cache only); a model
                             outside the zoo gets a case of every claim of its kind
--readings R                 alternate readings to run beside the primary one (claims.md, "Readings"):
                             default (the profile's), all, primary (none), or ids such as R1,R3
--log-samples                write every experiment's per-unit scores into <run>/samples/ (core.samples)

Every claim test hands its :class:`claims._claim.Outcome` to the ``conclude`` fixture, which
writes the result file (atomically) and gates on it against ``claims/recorded_verdicts.json``:
``replicated`` passes; a verdict that the file records for this profile, claim and model is a strict
xfail; any other verdict fails; each reason is one line (verdict, headline statistic and interval:
:mod:`core.report.terminal`). At the end of the session ``run.json`` (git commit, package versions,
device, profile, duration: :func:`core.report.history.run_metadata`; ``preflight``: every model's
preflight, from the files ``claims._claim.preflight_or_stop`` writes) and the Markdown and HTML reports
are written into the run folder, and the terminal ends in a table of every result
(:func:`core.report.terminal.closing_table`) and the reports' paths.

With pytest-xdist (``-n 2``, ``-n auto``) the controller picks the run folder and hands it to every
worker; workers write the result and curve files, and only the controller writes ``run.json`` and the
one report, after every worker has finished. Without an explicit ``--dist``, ``-n`` distributes
whole modules (``--dist loadscope``): the claims of one paper run on one worker, which computes each
of that paper's experiments once; caches that several workers fill use :func:`core.cache.cache_lock`.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parent
RECORDED = ROOT / "claims" / "recorded_verdicts.json"


def pytest_addoption(parser):
    g = parser.getgroup("neuron-claims")
    g.addoption("--profile", default="small", help="sample-size profile: paper, small or ci")
    g.addoption("--device", default="cpu", help="torch device for models: cpu, cuda, cuda:N")
    g.addoption("--results-dir", default=str(ROOT / "runs"), help="folder of run folders")
    g.addoption("--run-dir", default=None, help="write this run's results into this folder")
    g.addoption("--models", default=None,
                help="comma-separated models: zoo names, checkpoint folders (config.json + weights), .gguf "
                     "files or Hub ids (org/name, local Hugging Face cache only); run claim tests only on "
                     "these (a model outside the zoo gets a case of every claim of its kind)")
    g.addoption("--log-samples", action="store_true", default=False,
                help="write every experiment's per-unit scores into <run>/samples/ (README, Per-unit data)")
    g.addoption("--readings", default="default",
                help="alternate readings to run: default (the profile's), all, primary, or e.g. R1,R3")


def _resolve_models(config) -> list[str] | None:
    """``--models`` as model names (None: not given). Models outside the zoo are handed to
    :func:`pytest_generate_tests` (through ``config.stash``), so that every claim of their kind gets a
    case for them; a Hub id missing from the local cache gets a case of every claim, which skips naming it.
    An unknown name, a path that is not a model, an unsupported family or a kind no claim measures is a
    usage error whose message says what was expected."""
    wanted = config.getoption("--models")
    if not wanted:
        return None
    from core.errors import MissingAssetError, UnknownNameError, UnsupportedModelError
    from core.zoo.models import get_spec
    from core.zoo.own import resolve
    from core.zoo.registry import MODELS, RANDOM_SUFFIX

    names, own = [], []
    invoked = os.environ.get("NEURON_CLAIMS_CWD")  # scripts/main.sh: where the command was typed
    for entry in (n.strip() for n in wanted.split(",")):
        if not entry:
            continue
        if invoked and not os.path.isabs(entry) and (Path(invoked) / entry).exists():
            entry = str(Path(invoked) / entry)
        try:
            name = resolve(entry)
            kind = get_spec(name).kind
        except MissingAssetError:
            name, kind = entry, None
        except (UnknownNameError, UnsupportedModelError) as e:
            raise pytest.UsageError(f"--models: {e}") from None
        names.append(name)
        if name.removesuffix(RANDOM_SUFFIX) not in MODELS:
            own.append((name, kind))
    config.stash[OWN_MODELS] = own
    return names


#: Models outside the zoo given with ``--models``: [(name, kind or None)], for :func:`pytest_generate_tests`.
OWN_MODELS = pytest.StashKey[list]()


def pytest_generate_tests(metafunc):
    """A test marked ``@measures(CLAIM)`` (:func:`claims._claim.measures`) gets a ``model`` parameter
    per model the claim applies to (:func:`claims._claim.claim_params`), ``--models`` outside the zoo
    included."""
    marker = metafunc.definition.get_closest_marker("measures")
    if marker is None:
        return
    from claims._claim import claim_params

    metafunc.parametrize("model", claim_params(marker.args[0], metafunc.config.stash.get(OWN_MODELS, [])))


def _check_claim_modules(items) -> None:
    """Every claim test in ``claims/`` lies in a paper's claims module (the manifest of papers,
    :data:`core.papers.PAPERS`) and measures a claim whose id starts with that paper's key; else a usage
    error naming the module and the claim."""
    from core.papers import PAPERS

    claims_dir = (ROOT / "claims").resolve()
    modules = {(ROOT / p.claims).resolve(): p for p in PAPERS}
    for item in items:
        marker = item.get_closest_marker("claim")
        path = Path(str(item.path)).resolve()
        if marker is None or path.parent != claims_dir:
            continue
        paper = modules.get(path)
        if paper is None:
            raise pytest.UsageError(
                f"claims/{path.name} holds claim tests but is no paper's claims module in core/papers.py "
                f"(expected one of: {', '.join(p.claims for p in PAPERS)}); add its paper to PAPERS")
        claim_id = str(marker.args[0]) if marker.args else ""
        if claim_id and not claim_id.startswith(f"{paper.key}-"):
            raise pytest.UsageError(f"{item.nodeid}: claim {claim_id} in {paper.claims}, whose claims are "
                                    f"{paper.key}-N (core/papers.py); expected an id starting {paper.key}-")


def pytest_collection_modifyitems(config, items):
    """Every claim test in ``claims/`` must lie in its paper's claims module (:func:`_check_claim_modules`).
    ``--models a,b``: deselect claim tests of every other model. A model outside the zoo for which
    the collected claim modules hold no claim of its kind is a usage error naming it."""
    _check_claim_modules(items)
    names = _state(config).get("models")
    if not names:
        return
    keep, drop = [], []
    measured = set()
    for item in items:
        model = getattr(item, "callspec", None) and item.callspec.params.get("model")
        is_claim = item.get_closest_marker("claim") is not None
        (drop if is_claim and model not in names else keep).append(item)
        if is_claim:
            measured.add(model)
    if measured:
        from core.errors import MissingAssetError
        from core.zoo.models import get_spec
        from core.zoo.registry import MODELS, RANDOM_SUFFIX

        for name in names:
            if name in measured or name.removesuffix(RANDOM_SUFFIX) in MODELS:
                continue
            try:
                spec = get_spec(name)
            except MissingAssetError:
                continue
            kinds = sorted({MODELS[m].kind for m in measured if m in MODELS})
            raise pytest.UsageError(
                f"--models: {spec.location} is a {spec.kind} model ({spec.architecture}), and none of the "
                f"claims collected applies to {spec.kind} models; they measure {', '.join(kinds)} models. "
                f"Expected a model of one of those kinds, or the claim modules of its kind (claims/)")
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_configure(config):
    config.addinivalue_line("markers", "claim(id): the claim a test case measures (set by claims._claim.claim_params)")
    config.addinivalue_line("markers", "measures(claim): the Claim record a test measures (claims._claim.measures)")
    from core.errors import UnknownNameError
    from core.profiles import get_profile

    try:
        profile = get_profile(config.getoption("--profile"))
    except UnknownNameError as e:
        raise pytest.UsageError(str(e)) from None
    from core.readings import parse_readings

    try:
        readings = parse_readings(config.getoption("--readings"), profile.readings)
    except UnknownNameError as e:
        raise pytest.UsageError(str(e)) from None
    device = config.getoption("--device")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError(f"--device {device}: CUDA is not available on this machine")
    config._neuron_claims = {"profile": profile, "device": device, "readings": readings,
                             "started": time.time(),
                             "run_dir": None, "wrote": False, "created": False}
    config._neuron_claims["models"] = _resolve_models(config)
    if getattr(config.option, "dist", None) == "load" and not any(
            a == "--dist" or a.startswith("--dist=") for a in config.invocation_params.args):
        config.option.dist = "loadscope"  # -n without --dist: one claim module (paper) per worker


def _state(config) -> dict:
    return config._neuron_claims


def _run_dir(config) -> Path:
    """This run's folder, created on first use.

    ``--run-dir`` if given; in an xdist worker, the folder the controller picked; else a new folder
    ``<results-dir>/<UTC time>-<profile>`` (``-2``, ``-3``, ... appended when another run started in
    the same second, so that two runs never share a folder by accident).
    """
    st = _state(config)
    if st["run_dir"] is None:
        explicit = config.getoption("--run-dir")
        worker = getattr(config, "workerinput", {}).get("neuron_claims_run_dir")
        if worker or explicit:
            path = Path(worker or explicit)
            path.mkdir(parents=True, exist_ok=True)
        else:
            from core.report.history import new_run_dir

            path = new_run_dir(config.getoption("--results-dir"), st["profile"].name)
            st["created"] = True
        st["run_dir"] = path
        from core import timing

        timing.log_to(path / timing.STAGES_FILE)  # every process appends its stage times (core.plan)
    return st["run_dir"]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist controller: every worker writes into the controller's run folder."""
    node.workerinput["neuron_claims_run_dir"] = str(_run_dir(node.config))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist controller: note whether a worker wrote results (then the controller reports)."""
    if getattr(node, "workeroutput", {}).get("neuron_claims_wrote"):
        _state(node.config)["wrote"] = True


@pytest.fixture(scope="session")
def profile(pytestconfig):
    """The :class:`core.profiles.Profile` of this run."""
    return _state(pytestconfig)["profile"]


@pytest.fixture(scope="session")
def readings(pytestconfig) -> frozenset:
    """Alternate readings to run beside the primary one (``--readings``; :mod:`core.readings`)."""
    return _state(pytestconfig)["readings"]


@pytest.fixture(scope="session")
def device(pytestconfig) -> str:
    return _state(pytestconfig)["device"]


@pytest.fixture(scope="session")
def run_dir(pytestconfig) -> Path:
    """This run's folder: results/, curves/, figures/, report.md."""
    return _run_dir(pytestconfig)


@pytest.fixture(scope="session")
def recorded_verdicts(profile) -> dict:
    """{claim: {model: verdict}} recorded for CI gating under this profile."""
    if not RECORDED.exists():
        return {}
    return json.loads(RECORDED.read_text()).get(profile.name, {})


def _tier(spec) -> str:
    """A result's tier: the spec's, or ``"rehearsal"`` for a rehearsal model (core.zoo.rehearsal), whose
    verdicts mean nothing."""
    return "rehearsal" if spec.origin == "rehearsal" else spec.tier


def _gate(claim_id: str, model: str, measured: str, recorded: str | None, summary: str) -> None:
    """Pass, xfail or fail on the measured verdict; every reason is one line, ``summary`` the headline
    statistic and its interval (:func:`core.report.terminal.statistic_text`)."""
    if measured == "replicated":
        if recorded not in (None, "replicated"):
            pytest.fail(f"{claim_id} on {model}: measured replicated, {RECORDED.name} records {recorded} "
                        f"(update the record); {summary}", pytrace=False)
        return
    if recorded == measured:  # the summary line's test id names the model already
        pytest.xfail(f"{claim_id}: {measured} (as recorded); {summary}")
    pytest.fail(f"{claim_id} on {model}: measured {measured}, recorded {recorded or 'nothing'}; {summary}",
                pytrace=False)


@pytest.fixture
def conclude(pytestconfig, run_dir, profile, recorded_verdicts):
    """``conclude(claim, model, measurement)``: write the result, then gate on it (a model outside the
    zoo is not gated: a verdict other than ``replicated`` is a non-strict xfail showing the numbers).
    The result records its provenance (:func:`core.provenance.result_provenance`: catalogue revision,
    rule hash, experiment version and whether it was computed or re-read, weights, dtype, device)."""
    from core.inference.sample_size import needed
    from core.provenance import result_provenance
    from core.zoo.models import loaded_provenance
    from core.report.terminal import statistic_text
    from core.zoo.models import get_spec
    from core.readings import robustness, skipped_for
    from core.results import ClaimResult, write_result

    start = time.time()
    ran = _state(pytestconfig)["readings"]

    def _conclude(claim, model: str, m) -> None:
        recorded = recorded_verdicts.get(claim.id, {}).get(model)
        est = m.statistic
        need = m.needed
        if need is None and m.verdict == "inconclusive":
            need = needed(m.parts or [est]) or None
        spec = get_spec(model)
        result = ClaimResult(
            claim=claim.id, model=model, tier=_tier(spec), profile=profile.name,
            verdict=m.verdict, statistic=float(est.value), statistic_name=m.statistic_name,
            interval=[float(est.low), float(est.high)], sample_sizes=m.sample_sizes, seeds=list(m.seeds),
            paper_value=claim.paper_value, data=m.data, rule=claim.rule, statement=getattr(claim, "statement", None),
            read_as=getattr(claim, "read_as", None),
            details=m.details if spec.origin is None else {**m.details, "model": spec.source},
            recorded=recorded, duration_s=round(time.time() - start, 2),
            decided_by=m.decided_by, needed=need if m.verdict == "inconclusive" else None,
            readings=m.readings or None, robustness=robustness(m.verdict, m.readings),
            readings_skipped=skipped_for(claim.id, ran) or None,
            provenance=result_provenance(paper=getattr(claim, "paper", None), model=model, rule=claim.rule,
                                         loaded=loaded_provenance(model, _state(pytestconfig)["device"])),
        )
        write_result(run_dir, result)
        _state(pytestconfig)["wrote"] = True
        # one line: the headline statistic; every other number stays in the result file and the report
        summary = statistic_text(m.statistic_name, float(est.value), float(est.low), float(est.high))
        if spec.origin == "rehearsal" and m.verdict != "replicated":
            pytest.xfail(f"{claim.id} on {model}: {m.verdict} (a rehearsal model: random weights, its verdict "
                         f"means nothing); {summary}")
        if spec.origin is not None and m.verdict != "replicated":  # your own model: reported, not gated
            pytest.xfail(f"{claim.id} on {model}: {m.verdict} (outside the zoo: reported, not gated); "
                         f"{summary}")
        _gate(claim.id, model, m.verdict, recorded, summary)

    return _conclude


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Write a ``skipped`` result for a claim test that skipped (e.g. a Hub model not available)."""
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("claim")
    preflight = getattr(getattr(call.excinfo, "value", None), "preflight", None)
    if marker is not None and report.failed and call.when == "call" and preflight is not None:
        _write_preflight_error(item, marker.args[0], preflight)
        return
    if marker is None or not report.skipped or hasattr(report, "wasxfail") or call.when == "teardown":
        return
    from core.zoo.models import get_spec
    from core.provenance import catalogue_info
    from core.results import ClaimResult, write_result

    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    model = item.callspec.params.get("model", "?") if hasattr(item, "callspec") else "?"
    st = _state(item.config)
    try:
        tier = _tier(get_spec(model))
    except Exception:
        tier = "small"
    write_result(_run_dir(item.config), ClaimResult(
        claim=marker.args[0], model=model, tier=tier, profile=st["profile"].name, verdict="skipped",
        statistic=None, statistic_name="not measured (skipped)", interval=None, sample_sizes={},
        seeds=[], paper_value=None, data="none (skipped before measuring)", reason=reason,
        provenance={"catalogue": catalogue_info()},
        statement=_statement(item, marker.args[0])))
    st["wrote"] = True


def _statement(item, claim_id: str) -> str | None:
    """The statement of the claim ``claim_id`` as its test module defines it (None if not found)."""
    from claims._claim import Claim

    return next((v.statement for v in vars(item.module).values()
                 if isinstance(v, Claim) and v.id == claim_id), None)


def _write_preflight_error(item, claim_id: str, preflight: dict) -> None:
    """An ``error`` result for a claim test stopped by its model's failed preflight
    (``claims._claim.preflight_or_stop``), the preflight's one-line message as the reason."""
    from core.zoo.models import get_spec
    from core.results import ClaimResult, write_result

    model = item.callspec.params.get("model", "?") if hasattr(item, "callspec") else "?"
    st = _state(item.config)
    try:
        tier = get_spec(model).tier
    except Exception:
        tier = "small"
    write_result(_run_dir(item.config), ClaimResult(
        claim=claim_id, model=model, tier=tier, profile=st["profile"].name, verdict="error",
        statistic=None, statistic_name="not measured (the model failed its preflight)", interval=None,
        sample_sizes={}, seeds=[], paper_value=None, data="none (stopped before measuring)",
        reason=preflight["message"], statement=_statement(item, claim_id)))
    st["wrote"] = True


def _preflights(run_dir: Path, since: float) -> dict:
    """``{model: {"passed", "seconds", "message", "file"}}`` from the preflight reports this run's
    processes wrote into ``<run_dir>/preflight/`` (``claims._claim.preflight_or_stop``; each check's
    expected, found and seconds stay in that file). Files older than the run's start, from an earlier
    run into the same ``--run-dir``, are left out."""
    from claims._claim import PREFLIGHT_DIR

    out = {}
    for path in sorted((run_dir / PREFLIGHT_DIR).glob("*.json")):
        try:
            if path.stat().st_mtime < since - 1:
                continue
            d = json.loads(path.read_text())
            out[d.get("model", path.stem)] = {"passed": d["passed"], "seconds": d["seconds"],
                                             "message": d["message"], "file": f"{PREFLIGHT_DIR}/{path.name}"}
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def pytest_sessionfinish(session, exitstatus):
    """Controller (or serial run): write run.json and the reports; a worker only reports back."""
    config = session.config
    st = getattr(config, "_neuron_claims", None)
    if not st:
        return
    if hasattr(config, "workerinput"):
        config.workeroutput["neuron_claims_wrote"] = st["wrote"]
        return
    run_dir = st["run_dir"]
    workers = getattr(config.option, "numprocesses", None) if config.pluginmanager.hasplugin(
        "xdist") else None
    if workers and run_dir is not None and any((run_dir / "results").glob("*.json")):
        st["wrote"] = True  # a worker that crashed could not report back; its results count
    if not st["wrote"]:
        if st["created"] and run_dir is not None:  # picked for xdist workers that wrote nothing
            try:
                run_dir.rmdir()
            except OSError:
                pass
        return
    from core.cache import atomic_write_json
    from core.report.history import run_metadata
    from core.report.markdown import render_report
    from core.timing import STAGES_FILE, read_log

    meta = run_metadata(
        profile=st["profile"].name, sizes=st["profile"].to_dict(), device=st["device"],
        started=st["started"], finished=time.time(), root=ROOT, workers=workers or None,
        args=list(config.invocation_params.args) or sys.argv[1:], stages=read_log(run_dir / STAGES_FILE))
    preflights = _preflights(run_dir, st["started"])  # every model's checks (claims._claim)
    if preflights:
        meta["preflight"] = st["preflight"] = preflights
    atomic_write_json(run_dir / "run.json", meta)
    st["report"], st["html"] = render_report(run_dir)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    st = getattr(config, "_neuron_claims", None)
    if st and st.get("report"):
        from core.report.terminal import TABLE_WIDTH, clip, closing_table
        from core.results import read_results

        terminalreporter.write_sep("=", "replication report")
        for line in closing_table(read_results(st["run_dir"])[0]):
            terminalreporter.write_line(line)
        for outcome in st.get("preflight", {}).values():  # one line per model; the checks in run.json
            terminalreporter.write_line(clip(outcome["message"], TABLE_WIDTH))
        terminalreporter.write_line(f"report: {st['report']}")
        terminalreporter.write_line(f"HTML report: {st['html']}")
