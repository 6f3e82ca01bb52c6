"""Per-unit data of a run (``pytest --log-samples``): the scores behind every interval, as documented files.

Every experiment's per-unit scores (ABL: per method, draw, fraction and evaluation unit; MOD: per
subset; BCL: per setup, cluster, condition and seed) are written into ``<run_dir>/samples/`` as one
``.npz`` file per experiment and model, so that a researcher can reload them and recompute a claim's
statistic, or analyse them otherwise. A file holds plain arrays (no pickles) and one JSON string array
``__meta__`` with:

- ``format``: ``"neuron-claims samples"``; ``version``: :data:`SAMPLES_VERSION` (a file of another
  version is refused by :func:`read_samples`, naming its version);
- ``experiment`` (``"abl"``, ``"mod"``, ``"bcl"``), ``model``, and the experiment's own keys
  (e.g. ``corpus`` for BCL);
- ``arrays``: for every array, its dimensions (names, in order) and what it holds with its unit.

The schema of each experiment is in the README ("Per-unit data"). :func:`write_samples` writes
atomically; :func:`read_samples` returns a :class:`Samples`.
"""
from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.cache import atomic_write_bytes

__all__ = ["SAMPLES_VERSION", "SAMPLES_DIR", "FORMAT", "Samples", "SamplesVersionError", "samples_path",
           "write_samples", "read_samples"]

#: Version of the file layout; bumped whenever an array's meaning or dimensions change.
SAMPLES_VERSION = 1
#: Folder of the samples files in a run folder.
SAMPLES_DIR = "samples"
FORMAT = "neuron-claims samples"
_META = "__meta__"


class SamplesVersionError(ValueError):
    """A samples file of a version this harness does not read."""


@dataclass
class Samples:
    """One experiment's per-unit data on one model.

    Attributes
    ----------
    arrays : dict of str to ndarray
    meta : dict
        ``format``, ``version``, ``experiment``, ``model``, ``arrays`` (name -> {"dims", "what"}) and the
        experiment's own keys.
    path : pathlib.Path or None
    """

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    path: Path | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.arrays:
            raise KeyError(f"{self.path or 'samples'}: no array {name!r}; it holds {', '.join(self.arrays)}")
        return self.arrays[name]

    def dims(self, name: str) -> list[str]:
        """The dimension names of array ``name``."""
        return list(self.meta["arrays"][name]["dims"])


def samples_path(run_dir: str | Path, experiment: str, model: str, part: str | None = None) -> Path:
    """``<run_dir>/samples/<experiment>__<model>[__<part>].npz`` (``/`` becomes ``--``, other unsafe
    characters ``_``, as result file names)."""
    stem = "__".join(re.sub(r"[^A-Za-z0-9._-]", "_", x.replace("/", "--")) for x in (experiment, model, part) if x)
    return Path(run_dir) / SAMPLES_DIR / f"{stem}.npz"


def write_samples(path: str | Path, arrays: dict[str, Any], schema: dict[str, tuple[list[str], str]],
                  *, experiment: str, model: str, **meta: Any) -> Path:
    """Write one experiment's per-unit data atomically.

    Parameters
    ----------
    path : str or path
        Usually :func:`samples_path`.
    arrays : dict of str to array-like
        Plain numeric, boolean or string arrays (no objects).
    schema : dict of str to (dims, what)
        For every array: its dimension names (as many as it has dimensions) and what it holds, with
        its unit.
    experiment, model : str
    **meta
        JSON-serialisable keys of the experiment (e.g. ``corpus``).

    Raises
    ------
    ValueError
        An array without a schema entry (or the reverse), dimension names that do not match the
        array's dimensions, or an object array.
    """
    out: dict[str, np.ndarray] = {}
    if set(arrays) != set(schema):
        raise ValueError(f"samples of {experiment} on {model}: arrays {sorted(arrays)} and schema "
                         f"{sorted(schema)} differ")
    for name, value in arrays.items():
        a = np.asarray(value)
        if a.dtype == object:
            raise ValueError(f"samples {name!r}: expected a numeric, boolean or string array, got objects")
        dims, _ = schema[name]
        if len(dims) != a.ndim:
            raise ValueError(f"samples {name!r}: {a.ndim} dimension(s) of shape {a.shape}, but the schema "
                             f"names {len(dims)}: {dims}")
        out[name] = a
    head = {"format": FORMAT, "version": SAMPLES_VERSION, "experiment": experiment, "model": model, **meta,
            "arrays": {n: {"dims": list(d), "what": w, "shape": list(out[n].shape)}
                       for n, (d, w) in schema.items()}}
    buf = io.BytesIO()
    np.savez_compressed(buf, **out, **{_META: np.array(json.dumps(head, default=str))})
    return atomic_write_bytes(path, buf.getvalue())


def read_samples(path: str | Path) -> Samples:
    """Load a samples file written by :func:`write_samples`.

    Raises
    ------
    FileNotFoundError
        No such file.
    SamplesVersionError
        A file of another :data:`SAMPLES_VERSION` (the message names both versions) or not a samples
        file at all.
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        if _META not in z.files:
            raise SamplesVersionError(f"{path}: not a {FORMAT} file (no {_META})")
        meta = json.loads(str(z[_META]))
        if meta.get("format") != FORMAT:
            raise SamplesVersionError(f"{path}: not a {FORMAT} file (format {meta.get('format')!r})")
        if meta.get("version") != SAMPLES_VERSION:
            raise SamplesVersionError(
                f"{path}: samples file version {meta.get('version')!r}; this harness reads version "
                f"{SAMPLES_VERSION} only (rerun with --log-samples to write it again)")
        arrays = {k: z[k] for k in z.files if k != _META}
    return Samples(arrays=arrays, meta=meta, path=path)
