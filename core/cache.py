"""On-disk cache and atomic writes.

The cache folder is ``$NEURON_CLAIMS_CACHE`` if set, else ``~/.cache/neuron-claims``; the experiments'
caches (:func:`is_experiment_kind`) go to ``$NEURON_CLAIMS_EXPERIMENT_CACHE`` instead where that is set (a
nightly run's fresh folder), and :func:`note_experiment` records whether each experiment was computed
or re-read. Every cached
artefact lives under a key derived from everything that determines it (:func:`cache_key`). Every file
the harness writes goes through :func:`atomic_write_bytes` (write to a temporary file in the same
folder, fsync, ``os.replace``), so an interrupted run never leaves a half-written file behind.

A damaged entry (one that exists but does not load) is detected, named in a warning and rebuilt by
:func:`load_or_rebuild`; a long computation keeps its finished steps in a :class:`Checkpoint` beside its
entry, so that an interrupted run resumes from them. :func:`cache_entry` and :func:`cached_experiment` are
the one pattern every experiment (and sub-cache) follows: key, path, lock, load or rebuild, checkpoint,
note. :func:`file_digest` hashes a file once per version.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import tempfile
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ENV_VAR = "NEURON_CLAIMS_CACHE"

#: Environment variable that points the experiment caches (:func:`is_experiment_kind`) at another folder,
#: e.g. a fresh one per nightly run, so that the run measures instead of re-reading (README, "Preparing the full tier");
#: the other kinds stay under :data:`ENV_VAR`'s folder.
EXPERIMENTS_ENV_VAR = "NEURON_CLAIMS_EXPERIMENT_CACHE"

#: Cache kinds that are not what an experiment computes: converted and trained models, data
#: downloads and digests, the cost plan's calibration. Every other kind (each paper's experiment:
#: ``abl``, ``mod``, ``bcl``, ...; activation statistics ``stats``; MoEfication clusterings) is an
#: experiment kind (:func:`is_experiment_kind`), so a new paper's cache needs no entry here.
SHARED_KINDS = ("models", "data", "digests", "plan")


def is_experiment_kind(kind: str) -> bool:
    """Whether cache ``kind`` holds what an experiment computes (everything but :data:`SHARED_KINDS`):
    those go to ``$NEURON_CLAIMS_EXPERIMENT_CACHE`` where it is set."""
    return kind not in SHARED_KINDS

#: Bumped whenever a change to the harness changes what a cached artefact contains.
CACHE_VERSION = 1


def cache_dir(*parts: str) -> Path:
    """The cache folder (created), or a sub-folder of it.

    Returns
    -------
    pathlib.Path
        ``$NEURON_CLAIMS_CACHE/<parts...>`` or ``~/.cache/neuron-claims/<parts...>``; for an experiment
        kind (``parts[0]``, :func:`is_experiment_kind`) ``$NEURON_CLAIMS_EXPERIMENT_CACHE/<parts...>``
        when that is set.
    """
    root = Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "neuron-claims")
    if parts and is_experiment_kind(parts[0]) and os.environ.get(EXPERIMENTS_ENV_VAR):
        root = Path(os.environ[EXPERIMENTS_ENV_VAR]).expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


#: Experiments run in this process: ``(kind, model) -> [{"entry", "computed"}, ...]`` (:func:`note_experiment`).
_EXPERIMENTS: dict[tuple[str, str], list[dict]] = {}


def note_experiment(kind: str, model: str, entry: str | os.PathLike, *, computed: bool) -> None:
    """Record that this process computed (``computed=True``) or re-read from the cache the experiment
    entry ``entry`` of kind ``kind`` (``"abl"``, ``"mod"``, ``"bcl"``) for ``model``; the experiments call
    it where they return, :func:`experiment_record` reads it for the result files."""
    _EXPERIMENTS.setdefault((kind, model), []).append({"entry": str(entry), "computed": bool(computed)})


def experiment_record(kind: str, model: str) -> dict | None:
    """Whether this process computed the experiment ``kind`` on ``model`` or re-read it (None: neither
    was recorded here).

    Returns
    -------
    dict or None
        ``{"status": "computed" | "re-read" | "partly re-read", "re_read": [entries re-read],
        "cache": the kind's cache folder}``; ``partly`` when some entries (e.g. one BCL corpus of two)
        were re-read and others computed.
    """
    notes = _EXPERIMENTS.get((kind, model))
    if not notes:
        return None
    reread = sorted({n["entry"] for n in notes if not n["computed"]})
    status = "computed" if not reread else "re-read" if all(not n["computed"] for n in notes) else "partly re-read"
    return {"status": status, "re_read": reread, "cache": str(cache_dir(kind))}


def cache_key(**fields: Any) -> str:
    """A short stable hash (16 hex digits) of keyword fields, JSON-encoded with sorted keys.

    Non-JSON values are encoded with ``str``. The cache version is always part of the key.
    """
    payload = json.dumps({"cache_version": CACHE_VERSION, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    For writers that take a file name (``safetensors.torch.save_file``, ``matplotlib.savefig``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix or ".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def cache_lock(path: str | os.PathLike, timeout: float = -1):
    """Hold an inter-process lock on the cache entry ``path`` while the block runs.

    For "compute once" caches filled by several processes at once (pytest-xdist workers, two runs):
    inside the block, check whether ``path`` exists, else compute and write it (atomically); a second
    process waits at the lock and then finds the entry. The lock file is ``.<name>.lock`` beside
    ``path`` (a ``filelock.FileLock``; released when the process dies). ``timeout`` in seconds
    (-1: wait for ever); ``filelock.Timeout`` is raised when it runs out.
    """
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.parent / f".{path.name}.lock"), timeout=timeout):
        yield


def one_at_a_time(kind: str, entry: Callable[..., str]):
    """Decorator for a "load the cached result or compute it" function: calls with the same entry run
    one at a time across processes (pytest-xdist workers, two runs at once).

    ``entry(*args, **kwargs) -> str`` names what the call computes (for example model and profile);
    the call holds :func:`cache_lock` on ``cache_dir(kind) / entry(...)``, so a second process waits
    and then finds the first one's cache entries instead of computing them again.
    """

    def wrap(fn):
        @functools.wraps(fn)
        def locked(*args, **kwargs):
            name = "".join(c if c.isalnum() or c in "._-" else "_" for c in entry(*args, **kwargs))
            with cache_lock(cache_dir(kind) / name):
                return fn(*args, **kwargs)

        return locked

    return wrap


def package_versions(*names: str) -> dict[str, str]:
    """Installed versions of the given distributions (default: the harness's main dependencies)."""
    names = names or ("torch", "transformers", "datasets", "numpy", "scipy", "scikit-learn",
                      "k-means-constrained", "safetensors")
    out = {}
    for n in names:
        try:
            out[n] = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            out[n] = "absent"
    return out


# ---------------------------------------------------------------------------------------------
# Long runs that survive: damaged entries are rebuilt, interrupted computations resume
# ---------------------------------------------------------------------------------------------

class CacheDamagedWarning(UserWarning):
    """A cache entry that exists but does not load (truncated, corrupt, of an unreadable format);
    the message names the entry and the error, and the entry is removed and rebuilt."""


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _is_damage(e: Exception) -> bool:
    """Whether a load error means the entry itself is damaged. A missing package, a missing asset or
    running out of memory is no fault of the entry: it passes through, and the entry is kept."""
    from core.errors import MissingAssetError

    return not (isinstance(e, (ImportError, MemoryError, MissingAssetError))
                or type(e).__name__ == "OutOfMemoryError")  # torch.OutOfMemoryError (CUDA)


def _short(e: BaseException, limit: int = 300) -> str:
    text = f"{type(e).__name__}: {e}".replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


def load_or_rebuild(path: str | os.PathLike, load: Callable[[Path], Any], build: Callable[[], Any], *,
                    save: Callable[[Any, Path], Any] | None = None, lock: bool = True) -> Any:
    """The cache entry at ``path``, loaded if it exists and loads, else built (and saved).

    An entry that exists but fails to load (a truncated ``.npz``, a corrupt JSON or safetensors file,
    a model folder with a damaged weight file) is named in a :class:`CacheDamagedWarning`, removed
    and rebuilt, instead of failing every caller with an error that names no file.

    Parameters
    ----------
    path : path-like
        The entry: a file or a folder.
    load : callable ``load(path) -> value``
        Reads the entry. An ``Exception`` it raises marks the entry damaged, except ``ImportError``,
        ``MemoryError``, CUDA out-of-memory and :class:`core.errors.MissingAssetError`, which pass
        through and leave the entry in place (as do ``KeyboardInterrupt`` and other
        ``BaseException``).
    build : callable ``build() -> value``
        Computes the value. Without ``save`` it must write the entry itself (atomically).
    save : callable ``save(value, path)``, optional
        Writes a built value to ``path`` (atomically).
    lock : bool, default True
        Build while holding :func:`cache_lock` on ``path``, so that concurrent processes build an
        entry once (a second one waits, then loads). Pass False where the caller holds that lock.

    Returns
    -------
    The loaded or built value.

    Warns
    -----
    CacheDamagedWarning
        Naming ``path`` and the error, when an existing entry does not load.
    """
    path = Path(path)
    if path.exists():
        try:
            return load(path)
        except Exception:  # checked again under the lock: another process may be replacing it
            pass
    with (cache_lock(path) if lock else nullcontext()):
        found = load_cached(path, load, stacklevel=3)
        if found is not None:
            return found
        value = build()
        if save is not None:
            save(value, path)
        return value


def load_cached(path: str | os.PathLike, load: Callable[[Path], Any], *, stacklevel: int = 2) -> Any:
    """``load(path)`` of a cache entry; None when it is absent, or damaged: then a
    :class:`CacheDamagedWarning` names it and the error, and it is removed, so that the caller
    computes and writes it again. The two-line form of :func:`load_or_rebuild` for a load site whose
    computation follows inline::

        if (found := load_cached(path, Result.load)) is not None:
            return found

    ``load`` must not return None for an entry that exists. Errors that are no fault of the entry
    pass through as in :func:`load_or_rebuild`.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        return load(path)
    except Exception as e:
        if not _is_damage(e):
            raise
        warnings.warn(CacheDamagedWarning(
            f"damaged cache entry {path} ({_short(e)}); removing it and rebuilding it"), stacklevel=stacklevel + 1)
        _remove(path)
        return None


def partial_path(entry: str | os.PathLike) -> Path:
    """Where the :class:`Checkpoint` of a cache entry lives: ``<entry>.partial`` beside it."""
    entry = Path(entry)
    return entry.with_name(entry.name + ".partial")


class Checkpoint:
    """Finished steps of a long computation, kept beside its cache entry so that a run interrupted
    part-way (Ctrl-C, a killed job) resumes from them instead of starting over.

    Steps are named by hashable, picklable keys (e.g. ``(seed, fraction, method)``) and hold picklable
    values (numpy arrays). :meth:`step` returns a finished step's value or computes and records it.
    The file is rewritten atomically (:func:`atomic_write_bytes`) at most every ``interval_s``
    seconds, and always when a step raises (so Ctrl-C keeps everything finished before it); a killed
    process loses at most ``interval_s`` seconds of steps. It holds ``key`` too: a file written for
    another computation, or one that does not load, is ignored (with a :class:`CacheDamagedWarning`
    for the latter) and replaced. :meth:`complete` deletes the file once the entry is written.

    Parameters
    ----------
    path : path-like
        The partial file, normally ``partial_path(entry)``.
    key : str
        What the computation is (the entry's cache key): steps are reused only under the same key.
    interval_s : float, default 30
        Seconds between writes (0: after every step).

    Attributes
    ----------
    resumed : int
        Number of steps loaded from an earlier run.
    """

    FORMAT = "neuron-claims-checkpoint-1"

    def __init__(self, path: str | os.PathLike, *, key: str, interval_s: float = 30.0):
        import time

        self.path = Path(path)
        self.key = str(key)
        self.interval_s = float(interval_s)
        self._steps: dict = self._read()
        self.resumed = len(self._steps)
        self._dirty = False
        self._last = time.monotonic()

    def _read(self) -> dict:
        import pickle

        if not self.path.exists():
            return {}
        try:
            state = pickle.loads(self.path.read_bytes())
            if not isinstance(state, dict) or state.get("format") != self.FORMAT:
                raise ValueError("not a checkpoint file")
        except Exception as e:
            warnings.warn(CacheDamagedWarning(
                f"damaged checkpoint {self.path} ({_short(e)}); starting the computation over"), stacklevel=3)
            return {}
        return dict(state["steps"]) if state.get("key") == self.key else {}

    def __contains__(self, step) -> bool:
        return step in self._steps

    def __getitem__(self, step):
        return self._steps[step]

    def __len__(self) -> int:
        return len(self._steps)

    def put(self, step, value) -> None:
        """Record a finished step; writes the file when ``interval_s`` has passed since the last write."""
        import time

        self._steps[step] = value
        self._dirty = True
        if time.monotonic() - self._last >= self.interval_s:
            self.flush()

    def step(self, step, compute: Callable[[], Any]) -> Any:
        """The value of ``step``: recorded earlier, or ``compute()`` (then recorded). When
        ``compute`` raises (also ``KeyboardInterrupt``), the steps finished so far are written first."""
        if step in self._steps:
            return self._steps[step]
        try:
            value = compute()
        except BaseException:
            self.flush()
            raise
        self.put(step, value)
        return value

    def flush(self) -> None:
        """Write every recorded step now (atomically), if any changed since the last write."""
        import pickle
        import time

        if self._dirty:
            atomic_write_bytes(self.path, pickle.dumps(
                {"format": self.FORMAT, "key": self.key, "steps": self._steps}, protocol=pickle.HIGHEST_PROTOCOL))
            self._dirty = False
        self._last = time.monotonic()

    def complete(self) -> None:
        """The computation is finished and its entry written: delete the partial file."""
        self._steps, self._dirty = {}, False
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def checkpointed(checkpoint: Checkpoint | None, step, compute: Callable[[], Any]) -> Any:
    """``checkpoint.step(step, compute)``, or ``compute()`` without a checkpoint: the one-line hook
    of a loop whose steps a :class:`Checkpoint` may keep."""
    return compute() if checkpoint is None else checkpoint.step(step, compute)



# ---------------------------------------------------------------------------------------------
# One cached experiment: key, path, lock, load or rebuild, checkpoint, note
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CacheEntry:
    """Where one cached computation lives.

    Attributes
    ----------
    kind : str
        The cache kind (:func:`is_experiment_kind` for what experiments compute), the first folder under
        the cache root.
    key : str
        :func:`cache_key` of everything that determines the entry (16 hex digits).
    path : pathlib.Path
        ``cache_dir(kind, *folder) / "<label>-<key><suffix>"``.
    """

    kind: str
    key: str
    path: Path


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in label)


def cache_entry(kind: str, experiment: str, version: int, identity: Any, inputs: dict, *, label: str,
                suffix: str, folder: tuple[str, ...] = ()) -> CacheEntry:
    """The entry of a computation: its key and path.

    Parameters
    ----------
    kind : str
        The cache kind (folder), e.g. ``"abl"``.
    experiment : str
        What is computed (``"abl"``, ``"mod-stats"``, ``"bcl-repr"``...); part of the key.
    version : int
        The computation's cache version, bumped when a change alters what the entry holds; part of the
        key (with :data:`CACHE_VERSION`).
    identity : JSON-able
        What identifies the models' weights (``core.zoo.models.model_identity``, one dict or a list of
        them), or the key of an entry it derives from; part of the key.
    inputs : dict
        Everything else that determines the entry (data, sizes, grid, device); JSON-encoded with sorted
        keys, non-JSON values by ``str``.
    label, suffix : str
        The file name: ``<label>-<key><suffix>`` (characters other than letters, digits, ``._-`` in
        ``label`` become ``_``).
    folder : tuple of str
        Sub-folders under ``cache_dir(kind)``.

    Raises
    ------
    TypeError
        When ``inputs`` is not a dict.
    """
    if not isinstance(inputs, dict):
        raise TypeError(f"inputs: expected a dict of what determines the entry, got {type(inputs).__name__}")
    key = cache_key(experiment=experiment, version=version, model=identity, inputs=inputs)
    return CacheEntry(kind, key, cache_dir(kind, *folder) / f"{_safe(label)}-{key}{suffix}")


def cached_experiment(entry: CacheEntry, compute: Callable[..., Any], *, load: Callable[[Path], Any],
                      save: Callable[[Any, Path], Any], note: str | None = None, checkpoint: bool = False,
                      lock: bool = True) -> Any:
    """The value of ``entry``: loaded from the cache, or computed, saved and returned.

    One pattern for every cached experiment and sub-cache: an entry that exists and loads is returned
    (:func:`load_cached`; a damaged one is named in a :class:`CacheDamagedWarning`, removed and
    rebuilt); else, under :func:`cache_lock` on the entry (concurrent processes compute it once: the
    second waits, then loads), ``compute`` runs, optionally with a :class:`Checkpoint` beside the entry
    that an interrupted run resumes from, ``save`` writes the value, the checkpoint is deleted, and
    :func:`note_experiment` records whether it was computed or re-read.

    Parameters
    ----------
    entry : CacheEntry
        From :func:`cache_entry`.
    compute : callable
        ``compute()``, or ``compute(checkpoint)`` with ``checkpoint=True`` (a :class:`Checkpoint` keyed on
        ``entry.key``, at :func:`partial_path` of the entry).
    load : callable ``load(path) -> value``
        Reads the entry (must not return None); errors as in :func:`load_or_rebuild`.
    save : callable ``save(value, path)``
        Writes the value atomically (:func:`atomic_path`, :func:`atomic_write_json`).
    note : str, optional
        The model name under which :func:`note_experiment` records the entry (kind ``entry.kind``);
        None for a sub-cache that is no experiment of its own.
    checkpoint : bool, default False
        Pass a :class:`Checkpoint` to ``compute``.
    lock : bool, default True
        Compute under :func:`cache_lock` on the entry; False where the caller holds a lock already.

    Returns
    -------
    The loaded or computed value.

    Warns
    -----
    CacheDamagedWarning
        Naming the entry and the error, when it exists but does not load.
    """
    def noted(value, computed: bool):
        if note is not None:
            note_experiment(entry.kind, note, entry.path, computed=computed)
        return value

    if (found := load_cached(entry.path, load)) is not None:  # its warning names the caller
        return noted(found, False)
    with (cache_lock(entry.path) if lock else nullcontext()):
        if (found := load_cached(entry.path, load)) is not None:  # another process wrote it
            return noted(found, False)
        if checkpoint:
            partial = Checkpoint(partial_path(entry.path), key=entry.key)
            value = compute(partial)
        else:
            partial, value = None, compute()
        save(value, entry.path)
        if partial is not None:
            partial.complete()
    return noted(value, True)


def file_digest(path: str | os.PathLike) -> str:
    """sha256 (64 hex digits) of a file's bytes, computed once per version of the file.

    The digest is remembered under ``cache_dir("digests")``, keyed by the file's absolute path, size,
    modification time (ns), inode and device, so a later call costs one ``stat`` and a small read,
    while a changed file (any of those differs) is hashed again.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path).resolve()
    st = path.stat()
    memo = cache_dir("digests") / (cache_key(path=str(path), size=st.st_size, mtime_ns=st.st_mtime_ns,
                                             inode=st.st_ino, device=st.st_dev) + ".sha256")
    try:
        known = memo.read_text().strip()
        if len(known) == 64 and all(c in "0123456789abcdef" for c in known):
            return known
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    digest = h.hexdigest()
    atomic_write_text(memo, digest + "\n")
    return digest
