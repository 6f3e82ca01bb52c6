"""On-disk cache and atomic writes.

The cache folder is ``$NEURON_CLAIMS_CACHE`` if set, else ``~/.cache/neuron-claims``. Every cached
artefact lives under a key derived from everything that determines it (:func:`cache_key`). Every file
the harness writes goes through :func:`atomic_write_bytes` (write to a temporary file in the same
folder, fsync, ``os.replace``), so an interrupted run never leaves a half-written file behind.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

ENV_VAR = "NEURON_CLAIMS_CACHE"

#: Bumped whenever a change to the harness changes what a cached artefact contains.
CACHE_VERSION = 1


def cache_dir(*parts: str) -> Path:
    """The cache folder (created), or a sub-folder of it.

    Returns
    -------
    pathlib.Path
        ``$NEURON_CLAIMS_CACHE/<parts...>`` or ``~/.cache/neuron-claims/<parts...>``.
    """
    root = Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "neuron-claims")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


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
