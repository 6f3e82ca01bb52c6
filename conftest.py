"""Tiers, command-line options, shared fixtures and the report hook.

Options
-------
--profile {paper,small,ci}   sample sizes (default: small)
--device DEVICE              "cpu" (default) or "cuda"/"cuda:N" where there is one
--results-dir DIR            where run folders go (default: runs/)
--run-dir DIR                write this run into DIR instead of a new timestamped folder
--models A,B                 run the claim tests only on these zoo models

Every claim test hands its :class:`claims._claim.Measurement` to the ``conclude`` fixture, which
writes the result file (atomically) and gates on it against ``claims/recorded_verdicts.json``:
``replicated`` passes; a verdict that the file records for this profile, claim and model is a strict
xfail showing the numbers; any other verdict fails. At the end of the session the Markdown report is
rendered into the run folder and its path printed.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from datetime import datetime, timezone
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
                help="comma-separated zoo names: run claim tests only on these models")


def pytest_collection_modifyitems(config, items):
    """``--models a,b``: deselect claim tests of every other model (unknown names are an error)."""
    wanted = config.getoption("--models")
    if not wanted:
        return
    from core.errors import UnknownNameError, check_name
    from core.models import list_models

    names = [n.strip() for n in wanted.split(",") if n.strip()]
    try:
        for n in names:
            check_name("model", n, list_models())
    except UnknownNameError as e:
        raise pytest.UsageError(str(e)) from None
    keep, drop = [], []
    for item in items:
        model = getattr(item, "callspec", None) and item.callspec.params.get("model")
        is_claim = item.get_closest_marker("claim") is not None
        (drop if is_claim and model not in names else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_configure(config):
    config.addinivalue_line("markers", "claim(id): the claim a test measures")
    from core.errors import UnknownNameError
    from core.profiles import get_profile

    try:
        profile = get_profile(config.getoption("--profile"))
    except UnknownNameError as e:
        raise pytest.UsageError(str(e)) from None
    device = config.getoption("--device")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise pytest.UsageError(f"--device {device}: CUDA is not available on this machine")
    config._neuron_claims = {"profile": profile, "device": device, "started": time.time(),
                             "run_dir": None, "wrote": False}


def _state(config) -> dict:
    return config._neuron_claims


def _run_dir(config) -> Path:
    st = _state(config)
    if st["run_dir"] is None:
        explicit = config.getoption("--run-dir")
        if explicit:
            path = Path(explicit)
        else:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            path = Path(config.getoption("--results-dir")) / f"{stamp}-{st['profile'].name}"
        path.mkdir(parents=True, exist_ok=True)
        st["run_dir"] = path
    return st["run_dir"]


@pytest.fixture(scope="session")
def profile(pytestconfig):
    """The :class:`core.profiles.Profile` of this run."""
    return _state(pytestconfig)["profile"]


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


def _gate(claim_id: str, model: str, measured: str, recorded: str | None, summary: str) -> None:
    if measured == "replicated":
        if recorded not in (None, "replicated"):
            pytest.fail(f"{claim_id} on {model}: measured replicated but {RECORDED.name} records "
                        f"{recorded}; update the record. {summary}", pytrace=False)
        return
    if recorded == measured:
        pytest.xfail(f"{claim_id} on {model}: {measured} (as recorded). {summary}")
    pytest.fail(f"{claim_id} on {model}: measured {measured}, recorded {recorded or 'nothing'}. "
                f"{summary}", pytrace=False)


@pytest.fixture
def conclude(pytestconfig, run_dir, profile, recorded_verdicts):
    """``conclude(claim, model, measurement)``: write the result, then gate on it."""
    from core.results import ClaimResult, write_result
    from core.models import get_spec

    start = time.time()

    def _conclude(claim, model: str, m) -> None:
        recorded = recorded_verdicts.get(claim.id, {}).get(model)
        est = m.statistic
        result = ClaimResult(
            claim=claim.id, model=model, tier=get_spec(model).tier, profile=profile.name,
            verdict=m.verdict, statistic=float(est.value), statistic_name=m.statistic_name,
            interval=[float(est.low), float(est.high)], sample_sizes=m.sample_sizes, seeds=list(m.seeds),
            paper_value=claim.paper_value, data=m.data, rule=claim.rule, details=m.details,
            recorded=recorded, duration_s=round(time.time() - start, 2),
        )
        write_result(run_dir, result)
        _state(pytestconfig)["wrote"] = True
        summary = (f"{m.statistic_name} = {est.value:.4g} [{est.low:.4g}, {est.high:.4g}]; "
                   f"details: {json.dumps(m.details, default=str)}")
        _gate(claim.id, model, m.verdict, recorded, summary)

    return _conclude


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Write a ``skipped`` result for a claim test that skipped (e.g. a Hub model not available)."""
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("claim")
    if marker is None or not report.skipped or hasattr(report, "wasxfail") or call.when == "teardown":
        return
    from core.models import get_spec
    from core.results import ClaimResult, write_result

    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    model = item.callspec.params.get("model", "?") if hasattr(item, "callspec") else "?"
    st = _state(item.config)
    try:
        tier = get_spec(model).tier
    except Exception:
        tier = "small"
    write_result(_run_dir(item.config), ClaimResult(
        claim=marker.args[0], model=model, tier=tier, profile=st["profile"].name, verdict="skipped",
        statistic=None, statistic_name="", interval=None, sample_sizes={}, seeds=[], paper_value=None,
        data="", reason=reason))
    st["wrote"] = True


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def pytest_sessionfinish(session, exitstatus):
    st = getattr(session.config, "_neuron_claims", None)
    if not st or not st["wrote"] or hasattr(session.config, "workerinput"):
        return
    from core.cache import atomic_write_json, package_versions
    from core.report import render_markdown

    run_dir = st["run_dir"]
    atomic_write_json(run_dir / "run.json", {
        "profile": st["profile"].name, "sizes": st["profile"].to_dict(), "device": st["device"],
        "git_commit": _git_commit(), "python": platform.python_version(),
        "started": datetime.fromtimestamp(st["started"], timezone.utc).isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - st["started"], 1), "versions": package_versions(),
        "cache": os.environ.get("NEURON_CLAIMS_CACHE", "~/.cache/neuron-claims"),
    })
    st["report"] = render_markdown(run_dir)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    st = getattr(config, "_neuron_claims", None)
    if st and st.get("report"):
        terminalreporter.write_sep("=", "replication report")
        terminalreporter.write_line(f"report: {st['report']}")
