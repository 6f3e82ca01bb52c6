"""Run metadata and run history: which runs sit beside a run, and each claim's verdicts over them.

Every run folder holds a ``run.json`` written at the end of the run by the controlling process
(``conftest.py``) from :func:`run_metadata`: the git commit (and whether the checkout had local
changes), the package versions, the device (with the GPU names where there are GPUs), the profile
and its sizes, the start and finish times (ISO 8601, UTC) and the duration in seconds.

A *results root* is the folder of run folders (``runs/`` by default). :func:`list_runs` finds every
run folder in it (a folder with a ``results/`` sub-folder), ordered by start time; the report shows
each claim's verdicts over :func:`recent_runs`, and compares a run with :func:`previous_run` (the
latest earlier run of the same profile).
"""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.cache import package_versions
from core.results import RESULTS_DIR, ClaimResult, read_results

RUN_JSON = "run.json"

#: Packages whose versions every run.json records (besides the defaults of package_versions).
RUN_PACKAGES = ("torch", "transformers", "accelerate", "datasets", "numpy", "scipy", "scikit-learn",
                "k-means-constrained", "safetensors", "matplotlib", "pytest", "pytest-xdist")

#: How many runs (this one included) the report's history shows.
HISTORY_LENGTH = 6


def git_info(root: str | Path) -> dict[str, Any]:
    """``{"git_commit": sha or None, "git_dirty": bool or None}`` of the checkout at ``root``.

    ``git_dirty`` is True when tracked files differ from the commit. Never raises: without git or
    outside a checkout both values are None.
    """
    def _git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit.strip() if commit else None,
            "git_dirty": None if status is None else bool(status.strip())}


def device_info(device: str) -> dict[str, Any]:
    """What ``device`` is: ``{"device": "cuda", "gpus": ["NVIDIA H100 80GB HBM3", ...]}``.

    ``gpus`` lists every visible CUDA device (empty on CPU-only machines); ``cpu_count`` the CPU
    cores. Never raises.
    """
    info: dict[str, Any] = {"device": device, "cpu_count": os.cpu_count(), "gpus": []}
    try:
        import torch

        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception as e:  # noqa: BLE001 - metadata must never stop a run
        info["gpus_error"] = f"{type(e).__name__}: {e}"
    return info


def run_metadata(*, profile: str, sizes: dict[str, Any], device: str, started: float,
                 finished: float, root: str | Path, workers: int | None = None,
                 args: list[str] | None = None, stages: list[dict] | None = None) -> dict[str, Any]:
    """The ``run.json`` record of a run.

    Parameters
    ----------
    profile : str
        Profile name (``"paper"``, ``"small"``, ``"ci"``).
    sizes : dict
        The profile's sizes (``Profile.to_dict()``).
    device : str
        The ``--device`` of the run.
    started, finished : float
        Unix times in seconds.
    root : path
        The checkout, for the git commit.
    workers : int, optional
        Number of pytest-xdist workers (None for a serial run).
    args : list of str, optional
        The pytest command-line arguments.
    stages : list of dict, optional
        The stage times of the run (:mod:`core.timing`: ``stage``, ``model``, ``seconds``, ``device``,
        ...), for ``python -m core.plan --from-run``; absent when None.

    Returns
    -------
    dict
        JSON-serialisable: profile, sizes, device (with GPU names), git_commit, git_dirty, python,
        platform, host, workers, args, started, finished (ISO 8601 UTC), duration_s, versions, and
        ``stages`` when given.
    """
    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")

    dev = device_info(device)
    out = {
        "profile": profile, "device": device, "gpus": dev["gpus"], **git_info(root),
        "started": iso(started), "finished": iso(finished),
        "duration_s": round(finished - started, 1), "workers": workers,
        "versions": package_versions(*RUN_PACKAGES), "python": platform.python_version(),
        "platform": platform.platform(), "host": socket.gethostname(), "cpu_count": dev["cpu_count"],
        "args": list(args or []), "sizes": sizes,
        "cache": os.environ.get("NEURON_CLAIMS_CACHE", "~/.cache/neuron-claims"),
        "experiment_cache": os.environ.get("NEURON_CLAIMS_EXPERIMENT_CACHE") or "the cache's",
    }
    if stages is not None:
        out["stages"] = list(stages)
    return out


def new_run_dir(results_root: str | Path, profile: str, *, now: datetime | None = None) -> Path:
    """Create and return a new, unique run folder ``<results_root>/<UTC time>-<profile>``.

    The time is to the second (``20250131T120000Z``); when another run already took that name (two
    runs started in the same second), ``-2``, ``-3``, ... is appended. The folder is created with an
    exclusive ``mkdir``, so two processes never get the same folder.

    Raises
    ------
    FileExistsError
        When 999 runs of the same profile started in the same second.
    """
    root = Path(results_root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    for i in range(1, 1000):
        path = root / (f"{stamp}-{profile}" + (f"-{i}" if i > 1 else ""))
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free run folder name for {stamp}-{profile} in {root}")


def read_run_json(run_dir: str | Path) -> tuple[dict[str, Any] | None, tuple[Path, str] | None]:
    """``(metadata, None)``, ``(None, None)`` when there is no ``run.json``, or ``(None, (path,
    message))`` when it cannot be read (truncated, not a JSON object)."""
    path = Path(run_dir) / RUN_JSON
    if not path.exists():
        return None, None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(obj, dict):
            raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, (path, f"{type(e).__name__}: {e}")
    return obj, None


@dataclass
class RunInfo:
    """A run folder and what its ``run.json`` says (an empty dict where it has none).

    ``started`` is the run's start (ISO 8601 UTC) from ``run.json``, else the folder's modification
    time; runs are ordered by it, then by name.
    """

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def started(self) -> str:
        value = self.meta.get("started") or self.meta.get("started_at")
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value).astimezone(timezone.utc).isoformat()
            except ValueError:
                pass
        mtime = self.path.stat().st_mtime if self.path.exists() else 0.0
        return datetime.fromtimestamp(mtime, timezone.utc).isoformat()

    @property
    def profile(self) -> str | None:
        value = self.meta.get("profile")
        return value if isinstance(value, str) else None

    def sort_key(self) -> tuple[str, str]:
        return (self.started, self.name)


def run_info(run_dir: str | Path) -> RunInfo:
    """The :class:`RunInfo` of one run folder (an unreadable ``run.json`` counts as none)."""
    meta, _ = read_run_json(run_dir)
    return RunInfo(Path(run_dir), meta or {})


def list_runs(results_root: str | Path) -> list[RunInfo]:
    """Every run folder directly inside ``results_root`` (one holding ``results/``), oldest first.

    A missing ``results_root`` gives an empty list. Hidden folders are ignored.
    """
    root = Path(results_root)
    if not root.is_dir():
        return []
    runs = [run_info(p) for p in root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / RESULTS_DIR).is_dir()]
    return sorted(runs, key=RunInfo.sort_key)


def recent_runs(run_dir: str | Path, n: int = HISTORY_LENGTH) -> list[RunInfo]:
    """The last ``n`` runs beside ``run_dir`` that started no later than it, ``run_dir`` last.

    Runs of every profile count (the report names each run's profile).
    """
    run_dir = Path(run_dir)
    this = run_info(run_dir)
    others = [r for r in list_runs(run_dir.parent)
              if r.path.resolve() != run_dir.resolve() and r.sort_key() <= this.sort_key()]
    return (others + [this])[-n:] if n > 0 else []


def previous_run(run_dir: str | Path, *, same_profile: bool = True) -> RunInfo | None:
    """The latest run beside ``run_dir`` that started before it (of the same profile by default);
    None where there is none."""
    runs = recent_runs(run_dir, n=10**9)[:-1]
    if same_profile:
        profile = run_info(run_dir).profile
        if profile is None:
            results, _ = read_results(run_dir)
            profile = results[0].profile if results else None
        runs = [r for r in runs if profile is None or r.profile in (None, profile)]
    return runs[-1] if runs else None


def verdict_history(runs: list[RunInfo]) -> dict[tuple[str, str], list[ClaimResult | None]]:
    """Each (claim, model) pair's result in every run of ``runs`` (None where a run lacks it).

    Returns
    -------
    dict of (claim, model) to list of ClaimResult or None
        One entry per run, in the order of ``runs``. Unreadable result files count as missing.
    """
    per_run: list[dict[tuple[str, str], ClaimResult]] = []
    for run in runs:
        results, _ = read_results(run.path)
        per_run.append({(r.claim, r.model): r for r in results})
    pairs = {k for d in per_run for k in d}
    return {k: [d.get(k) for d in per_run] for k in pairs}
