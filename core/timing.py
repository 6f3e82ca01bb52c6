"""Stage times of a run: how long each main stage of an experiment took, for the cost plan to be
checked against (:mod:`core.plan`, ``python -m core.plan --from-run RUN_DIR``).

- :func:`stage`: a context manager (or :meth:`Stage.start` / :meth:`Stage.stop` around a block that
  is not worth re-indenting) that times one stage of one model and records
  ``{"stage", "model", "seconds", "device", "started", "pid"}``;
- :func:`log_to`: where this process appends its records as JSON lines (``conftest.py`` points every
  process, xdist workers included, at ``<run_dir>/stages.jsonl``; records made before are written
  then); :func:`recorded` the records of this process; :func:`read_log` the records of a file.

Only stages that ran are recorded: an experiment reloaded from the cache records nothing. A stage
that raises is not recorded. ``seconds`` is wall-clock time (``time.perf_counter``), ``cpu_seconds`` the
process's CPU time over all its threads (``time.process_time``): on a shared machine the wall time
grows with the load, the CPU time much less.
"""
from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["stage", "Stage", "log_to", "recorded", "read_log", "STAGES_FILE"]

#: The JSON-lines file of a run folder that every process of the run appends its stage times to.
STAGES_FILE = "stages.jsonl"

_lock = threading.Lock()
_records: list[dict] = []
_log: Path | None = None


def _device_of(on) -> str | None:
    if on is None:
        return None
    if isinstance(on, str):
        return on
    try:  # a torch module: the device of its first parameter
        return str(next(on.parameters()).device)
    except (AttributeError, StopIteration, TypeError):
        return str(on)


def _append(records: list[dict]) -> None:
    if _log is None or not records:
        return
    data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()
    _log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:  # one write per call with O_APPEND: lines of concurrent processes do not interleave
        os.write(fd, data)
    finally:
        os.close(fd)


class Stage:
    """One timed stage; see :func:`stage`."""

    def __init__(self, name: str, model: str, on=None, **details):
        if not name or not isinstance(name, str):
            raise ValueError(f"stage name: expected a non-empty str, got {name!r}")
        self.name, self.model, self.device, self.details = name, str(model), _device_of(on), details
        self._t0: float | None = None
        self.seconds: float | None = None

    def start(self) -> "Stage":
        self._t0, self._c0 = time.perf_counter(), time.process_time()
        self._started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return self

    def stop(self) -> dict:
        """Record the stage; returns the record. Raises RuntimeError when it was not started."""
        if self._t0 is None:
            raise RuntimeError(f"stage {self.name!r} of {self.model}: stop() before start()")
        self.seconds = time.perf_counter() - self._t0
        cpu = time.process_time() - self._c0
        self._t0 = None
        rec = {"stage": self.name, "model": self.model, "seconds": round(self.seconds, 3),
               "cpu_seconds": round(cpu, 3),
               "device": self.device, "started": self._started, "pid": os.getpid(), **self.details}
        with _lock:
            _records.append(rec)
            _append([rec])
        return rec

    def __enter__(self) -> "Stage":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.stop()


def stage(name: str, model: str, on=None, **details) -> Stage:
    """Time a stage of an experiment: ``with stage("mod count search", name, on=model): ...``.

    Parameters
    ----------
    name : str
        The stage (the names of :data:`core.plan.STAGE_NAMES`, so that the plan can be compared).
    model : str
        The model's name (BCL: ``"<model> on <corpus>"``).
    on : torch module or str, optional
        The model (its first parameter's device is recorded) or a device name; None: not recorded.
    details : JSON-serialisable values
        Added to the record (e.g. ``evaluations=163``).

    Returns
    -------
    Stage
        A context manager; outside a ``with``, call :meth:`Stage.start` and :meth:`Stage.stop`.
    """
    return Stage(name, model, on, **details)


def log_to(path: str | Path | None) -> None:
    """Append this process's records to the JSON-lines file ``path`` from now on (None: stop); the
    records made before the first call are appended at once."""
    global _log
    with _lock:
        new = None if path is None else Path(path)
        first = _log is None and new is not None
        _log = new
        if first:
            _append(list(_records))


def recorded() -> list[dict]:
    """The records of this process so far (copies)."""
    with _lock:
        return [dict(r) for r in _records]


def read_log(path: str | Path) -> list[dict]:
    """The records of a JSON-lines stage file, in file order; a missing file gives [], and an
    unreadable line (a process killed mid-write) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "stage" in rec and "seconds" in rec:
            out.append(rec)
    return out
