"""Result records: one JSON file per (claim, model) under ``<run_dir>/results/``.

A claim test hands its measured verdict to :func:`write_result` as a :class:`ClaimResult`; the
report (:mod:`core.report.collect`) is built only from these files (and the curve files written by
:func:`write_curves`), never from test output. Every verdict carries its numbers (claims.md, "Rules
that hold for every claim"): the statistic, its 95% interval, the sample sizes, the model, the data,
the seeds and the paper's value where there is one.

Layout of a run folder::

    <run_dir>/run.json                          run metadata (written by the runner, any dict)
    <run_dir>/results/<claim>__<model>.json     one ClaimResult each
    <run_dir>/curves/<name>.json                curve data for figures
    <run_dir>/report.md, <run_dir>/figures/     written by core.report.markdown

Reading never raises on one bad file: :func:`read_results` returns the good records and a list of
``(path, error message)`` for truncated or invalid ones, so that the report can name them.
"""
from __future__ import annotations

import json
import re
import warnings
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.cache import atomic_write_json, package_versions

#: Verdicts a result can carry; the first three are claims.md's, the last two the harness's own.
VERDICTS = ("replicated", "contradicted", "inconclusive", "skipped", "error")

#: Verdicts that come from a measurement and so must carry a statistic.
MEASURED_VERDICTS = ("replicated", "contradicted", "inconclusive")

#: Tiers: "small" runs on CPU-sized stand-in models, "full" on the papers' own models.
TIERS = ("small", "full", "rehearsal")

#: The fields every result file must hold.
RESULT_FIELDS = (
    "claim", "model", "tier", "profile", "verdict", "statistic", "statistic_name", "interval",
    "sample_sizes", "seeds", "paper_value", "data", "versions", "created_at",
)

#: Fields a result file may hold besides :data:`RESULT_FIELDS`.
OPTIONAL_FIELDS = ("rule", "details", "reason", "recorded", "duration_s", "decided_by", "needed",
                   "readings", "robustness", "readings_skipped", "provenance", "statement", "read_as")

#: Order of the claim families in listings; other families follow, alphabetically. These are the keys of
#: the manifest of papers (:data:`core.papers.PAPERS`), which sits above this module's layer: a paper
#: added after these sorts after them by itself (``tests/test_papers.py`` checks that listings follow
#: the manifest's order).
CLAIM_FAMILIES = ("ABL", "MOD", "BCL")

RESULTS_DIR = "results"
CURVES_DIR = "curves"

_CLAIM_RE = re.compile(r"^([A-Za-z]+)-(\d+)(.*)$")
_UNSAFE_RE = re.compile(r"[^A-Za-z0-9._-]")
_CURVE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string, e.g. ``2025-01-31T12:00:00+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(kw_only=True)
class ClaimResult:
    """The measured verdict of one claim on one model.

    All arguments are keyword-only. Invalid values raise ``ValueError`` naming the field.

    Attributes
    ----------
    claim : str
        Claim id from claims.md, e.g. ``"ABL-1"``.
    model : str
        Model name as the model zoo spells it (may contain ``/`` and ``:``).
    tier : {"small", "full", "rehearsal"}
        Small tier (stand-in models; never compared with paper numbers), full tier, or a rehearsal
        model (:mod:`core.zoo.rehearsal`: the papers' widths with random weights; its verdicts mean
        nothing).
    profile : str
        The run profile (e.g. ``"ci"``, ``"default"``).
    verdict : {"replicated", "contradicted", "inconclusive", "skipped", "error"}
        The *measured* verdict. It is never overwritten by :attr:`recorded`.
    statistic : float or None
        The claim's headline statistic. Required (not None) for replicated, contradicted and
        inconclusive; None for skipped and error results.
    statistic_name : str
        What :attr:`statistic` is, with units, e.g.
        ``"top1(peak) - top1(zero), percentage points"``.
    interval : list of 2 floats or None
        The 95% interval ``[low, high]`` of the statistic, ``low <= high``.
    sample_sizes : dict of str to number
        E.g. ``{"eval_tokens": 4096, "collect_tokens": 16384, "seeds": 3}``.
    seeds : list of int
        The seeds the measurement pooled.
    paper_value : str or None
        The paper's number(s) as claims.md gives them; shown in the report for the full tier only.
    data : dict or str
        The data sets and splits used (collection and evaluation).
    versions : dict of str to str
        Package versions; defaults to :func:`core.cache.package_versions`.
    created_at : str
        ISO 8601 timestamp in UTC; defaults to now.
    rule : str or None
        The decision rule, as claims.md states it (its "verdict rule" column, word for word).
    details : dict
        Every sub-statistic, preferably as ``{"name": {"value": v, "interval": [lo, hi],
        "unit": "..."}}``, plus any other numbers worth keeping (JSON-serialisable).
    reason : str or None
        Why the claim was skipped or errored; required for those verdicts.
    recorded : str or None
        The verdict recorded in the repository for CI gating (a verdict other than
        ``"replicated"`` marks an expected non-replication, i.e. an xfail).
    duration_s : float or None
        Wall-clock seconds the measurement took.
    decided_by : str or None
        Where a rule has several parts, the part that decided the verdict (the headline statistic
        is that part), e.g. ``"CE(mean) - CE(peak)"``.
    needed : dict or None
        For an inconclusive verdict: what would decide it (:func:`core.inference.needed`), e.g.
        ``{"level": "documents", "have": 16, "needed": 70, "text": "..."}``.
    readings : dict or None
        Alternate readings that ran (claims.md, "Readings"): ``{reading id: {"alternate",
        "verdict", "statistic", "interval", "statistic_name"}}``.
    robustness : {"robust", "reading-dependent"} or None
        Whether every alternate's verdict agrees with :attr:`verdict`; None when none ran.
    readings_skipped : list of str or None
        Readings that touch this claim but did not run in this profile.
    provenance : dict or None
        What the result was measured under (:func:`core.provenance.result_provenance`): ``catalogue``
        (claims.md's ``revision`` and ``sha256``, or ``found: False``), ``rule_sha256`` (of
        :attr:`rule`), ``experiment`` (its version constants and ``status``: ``computed`` or
        ``re-read`` from the cache, with the entries re-read), ``model`` (``dtype``, ``device``,
        ``weights``: what identifies the weights). None in result files written before it existed.
    statement : str or None
        What the paper claimed, in claims.md's words (its "claim" column); the report shows it beside
        the id. None in result files written before it was recorded.
    read_as : str or None
        How the harness reads :attr:`rule` where claims.md leaves room (a contradicted branch, the
        bootstrap units): the claim record's ``read_as``, shown in the report as
        "read as", never as the rule. None where there is none, and in older result files.
    """

    claim: str
    model: str
    tier: str
    profile: str
    verdict: str
    statistic: float | None
    statistic_name: str
    interval: list[float] | None
    sample_sizes: dict[str, Any]
    seeds: list[int]
    paper_value: str | None
    data: dict[str, Any] | str
    versions: dict[str, str] = field(default_factory=package_versions)
    created_at: str = field(default_factory=utc_now)
    rule: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    recorded: str | None = None
    duration_s: float | None = None
    decided_by: str | None = None
    needed: dict[str, Any] | None = None
    readings: dict[str, Any] | None = None
    robustness: str | None = None
    readings_skipped: list[str] | None = None
    provenance: dict[str, Any] | None = None
    statement: str | None = None
    read_as: str | None = None

    def __post_init__(self) -> None:
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        for name in ("claim", "model", "profile", "statistic_name"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                _bad(name, "a non-empty string", value)
        if self.tier not in TIERS:
            _bad("tier", f"one of {TIERS}", self.tier)
        if self.verdict not in VERDICTS:
            _bad("verdict", f"one of {VERDICTS}", self.verdict)
        if self.recorded is not None and self.recorded not in VERDICTS:
            _bad("recorded", f"None or one of {VERDICTS}", self.recorded)

        if self.statistic is not None:
            if not is_number(self.statistic):
                _bad("statistic", "a number or null", self.statistic)
            self.statistic = float(self.statistic)
        elif self.verdict in MEASURED_VERDICTS:
            _bad("statistic", f"a number for verdict {self.verdict!r} (a verdict without numbers "
                              "is a defect)", self.statistic)

        if self.interval is not None:
            iv = self.interval
            if (not isinstance(iv, (list, tuple)) or len(iv) != 2
                    or not all(is_number(x) for x in iv)):
                _bad("interval", "[low, high] (two numbers) or null", iv)
            low, high = float(iv[0]), float(iv[1])
            if low > high:
                _bad("interval", "low <= high", iv)
            self.interval = [low, high]

        if not isinstance(self.sample_sizes, dict) or not all(
                isinstance(k, str) and is_number(v) for k, v in self.sample_sizes.items()):
            _bad("sample_sizes", "a dict of name to number", self.sample_sizes)
        if isinstance(self.seeds, tuple):
            self.seeds = list(self.seeds)
        if not isinstance(self.seeds, list) or not all(
                isinstance(s, int) and not isinstance(s, bool) for s in self.seeds):
            _bad("seeds", "a list of int", self.seeds)
        if self.paper_value is not None and not isinstance(self.paper_value, str):
            _bad("paper_value", "a string or null", self.paper_value)
        if not isinstance(self.data, (dict, str)) or (isinstance(self.data, str) and not self.data):
            _bad("data", "a dict or a non-empty string naming the data sets and splits", self.data)
        if not isinstance(self.versions, dict):
            _bad("versions", "a dict of package to version", self.versions)
        _check_utc(self.created_at)

        if self.rule is not None and not isinstance(self.rule, str):
            _bad("rule", "a string or null", self.rule)
        if self.statement is not None and not isinstance(self.statement, str):
            _bad("statement", "a string or null", self.statement)
        if self.read_as is not None and not isinstance(self.read_as, str):
            _bad("read_as", "a string or null", self.read_as)
        if not isinstance(self.details, dict):
            _bad("details", "a dict", self.details)
        if self.reason is not None and not isinstance(self.reason, str):
            _bad("reason", "a string or null", self.reason)
        if self.verdict in ("skipped", "error") and not (self.reason or "").strip():
            _bad("reason", f"a non-empty string for verdict {self.verdict!r}", self.reason)
        if self.provenance is not None and not isinstance(self.provenance, dict):
            _bad("provenance", "a dict or null", self.provenance)
        if self.duration_s is not None:
            if not is_number(self.duration_s) or self.duration_s < 0:
                _bad("duration_s", "a non-negative number or null", self.duration_s)
            self.duration_s = float(self.duration_s)

    # ------------------------------------------------------------------ conversion
    @property
    def is_xfail(self) -> bool:
        """True when the recorded verdict marks an expected non-replication."""
        return self.recorded is not None and self.recorded != "replicated"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict with every field (optional ones included, possibly None)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | Path | None = None) -> ClaimResult:
        """Build and validate a result from a dict such as :meth:`to_dict` returns.

        Parameters
        ----------
        d : dict
            Must hold every field of :data:`RESULT_FIELDS`; may hold :data:`OPTIONAL_FIELDS`.
        source : str or path, optional
            Where ``d`` came from (a file name), prefixed to error messages.

        Raises
        ------
        ValueError
            A required field is missing, a field is unknown, or a value is invalid (wrong
            verdict, tier, types, ...). The message names the source and the field.
        """
        prefix = f"{source}: " if source is not None else ""
        if not isinstance(d, dict):
            raise ValueError(f"{prefix}expected a JSON object, got {type(d).__name__}")
        missing = [k for k in RESULT_FIELDS if k not in d]
        if missing:
            raise ValueError(f"{prefix}missing required field(s): {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in d if k not in known)
        if unknown:
            raise ValueError(f"{prefix}unknown field(s): {', '.join(unknown)}")
        kwargs = dict(d)
        if kwargs.get("details") is None:
            kwargs["details"] = {}
        try:
            return cls(**kwargs)
        except ValueError as e:
            raise ValueError(f"{prefix}{e}") from None


def is_number(x: Any) -> bool:
    """A JSON number (int or float, not bool)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _bad(name: str, expected: str, got: Any) -> None:
    raise ValueError(f"field {name!r}: expected {expected}, got {got!r}")


def _check_utc(value: Any) -> None:
    if not isinstance(value, str):
        _bad("created_at", "an ISO 8601 UTC timestamp string", value)
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        _bad("created_at", "an ISO 8601 UTC timestamp", value)
    if ts.tzinfo is None or ts.utcoffset() != timezone.utc.utcoffset(None):
        _bad("created_at", "a UTC timestamp (with a +00:00 or Z offset)", value)


# ---------------------------------------------------------------------- ordering and names
def claim_sort_key(claim: str) -> tuple:
    """Sort key for claim ids: ABL-1 < ABL-2 < ... < ABL-10 < MOD-1 < ... < BCL-1 < others.

    Families follow :data:`CLAIM_FAMILIES`, then unknown families alphabetically; within a family
    the number sorts numerically. Ids that do not look like ``FAMILY-N`` sort last, by text.
    """
    m = _CLAIM_RE.match(claim)
    if m is None:
        return (len(CLAIM_FAMILIES) + 1, claim, 0, "")
    family, number, rest = m.group(1).upper(), int(m.group(2)), m.group(3)
    rank = CLAIM_FAMILIES.index(family) if family in CLAIM_FAMILIES else len(CLAIM_FAMILIES)
    return (rank, family, number, rest)


def result_sort_key(result: ClaimResult) -> tuple:
    """Sort key for results: claim order (:func:`claim_sort_key`), then model, then tier."""
    return (claim_sort_key(result.claim), result.model, result.tier)


def safe_name(text: str) -> str:
    """``text`` made safe as part of a file name: ``/`` becomes ``--``, other unsafe chars ``_``."""
    return _UNSAFE_RE.sub("_", text.replace("/", "--"))


def result_path(run_dir: str | Path, claim: str, model: str) -> Path:
    """``<run_dir>/results/<claim>__<model>.json`` with unsafe characters replaced."""
    return Path(run_dir) / RESULTS_DIR / f"{safe_name(claim)}__{safe_name(model)}.json"


# ---------------------------------------------------------------------- results I/O
def write_result(run_dir: str | Path, result: ClaimResult) -> Path:
    """Write ``result`` atomically to :func:`result_path`; an older file for the pair is replaced.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    if not isinstance(result, ClaimResult):
        raise TypeError(f"expected a ClaimResult, got {type(result).__name__}")
    result._validate()  # fields may have been changed after construction
    return atomic_write_json(result_path(run_dir, result.claim, result.model), result.to_dict())


def read_results(run_dir: str | Path) -> tuple[list[ClaimResult], list[tuple[Path, str]]]:
    """Read every result file of a run.

    Parameters
    ----------
    run_dir : str or path
        The run folder; a missing ``results/`` sub-folder means no results.

    Returns
    -------
    results : list of ClaimResult
        Sorted by :func:`result_sort_key` (ABL-2 before ABL-10; families ABL, MOD, BCL).
    errors : list of (pathlib.Path, str)
        Files that could not be read (truncated JSON, invalid fields, ...) with the error message.
        One bad file never stops the others from being read.
    """
    folder = Path(run_dir) / RESULTS_DIR
    results: list[ClaimResult] = []
    errors: list[tuple[Path, str]] = []
    if not folder.is_dir():
        return results, errors
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):  # temporary files of an interrupted atomic write
            continue
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
            results.append(ClaimResult.from_dict(obj, source=path.name))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError) as e:
            errors.append((path, f"{type(e).__name__}: {e}"))
    results.sort(key=result_sort_key)
    return results, errors


# ---------------------------------------------------------------------- curves I/O
def write_curves(run_dir: str | Path, name: str, payload: dict[str, Any]) -> Path:
    """Write curve data for figures atomically to ``<run_dir>/curves/<name>.json``.

    Parameters
    ----------
    name : str
        File stem, letters, digits, ``.``, ``_`` and ``-`` only (e.g. ``"abl__smollm2-135m"``);
        use :func:`safe_name` on model names.
    payload : dict
        JSON-serialisable; an ``"experiment"`` key says which figure it feeds (see
        :mod:`core.abl.figures` for the ``"abl"`` format). numpy arrays and scalars are converted.

    Raises
    ------
    ValueError
        ``name`` is not a safe file stem. ``TypeError``: ``payload`` is not a dict.
    """
    if not isinstance(name, str) or not _CURVE_NAME_RE.match(name):
        raise ValueError(f"curve name: expected letters, digits, '.', '_' or '-', got {name!r}")
    if not isinstance(payload, dict):
        raise TypeError(f"curve payload: expected a dict, got {type(payload).__name__}")
    return atomic_write_json(Path(run_dir) / CURVES_DIR / f"{name}.json", payload)


def scan_curves(run_dir: str | Path) -> tuple[dict[str, dict[str, Any]], list[tuple[Path, str]]]:
    """Read every curve file of a run, like :func:`read_results`.

    Returns
    -------
    curves : dict of str to dict
        Payload by file stem, in file-name order.
    errors : list of (pathlib.Path, str)
        Unreadable files (truncated JSON, not an object) with the error message.
    """
    folder = Path(run_dir) / CURVES_DIR
    curves: dict[str, dict[str, Any]] = {}
    errors: list[tuple[Path, str]] = []
    if not folder.is_dir():
        return curves, errors
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            errors.append((path, f"{type(e).__name__}: {e}"))
            continue
        if not isinstance(obj, dict):
            errors.append((path, f"ValueError: expected a JSON object, got {type(obj).__name__}"))
            continue
        curves[path.stem] = obj
    return curves, errors


def read_curves(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Curve payloads by name (file stem); unreadable files are skipped with a warning.

    Use :func:`scan_curves` to get the unreadable files as well.
    """
    curves, errors = scan_curves(run_dir)
    for path, msg in errors:
        warnings.warn(f"skipping unreadable curve file {path}: {msg}", stacklevel=2)
    return curves
