"""What a result was measured under (claims.md, "Rules that hold for every claim": every verdict
carries its numbers): the claim catalogue's
revision and a hash of the rule applied, the experiment's version and whether this run computed it or
re-read it from the cache, and the model's weights, dtype and device.

``conftest.py``'s ``conclude`` puts :func:`result_provenance` into every result file
(:attr:`core.results.ClaimResult.provenance`); the report shows the catalogue's revision.

The catalogue is ``../shared/claims.md`` beside the repository where present, else the copy the
repository ships (``core/claims.md``, :data:`SHIPPED_CATALOGUE`); ``$NEURON_CLAIMS_CATALOGUE`` overrides
both, and a file it names that does not exist records ``{"found": False, "looked_in": [...]}`` instead
of failing. :mod:`core.catalogue` parses the file found here.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import os
import re
from pathlib import Path

#: Environment variable naming the claim catalogue file (default: :func:`catalogue_candidates`).
CATALOGUE_ENV_VAR = "NEURON_CLAIMS_CATALOGUE"

ROOT = Path(__file__).resolve().parents[1]

#: The copy of the catalogue that the repository ships (package data), read where ``../shared/`` has none.
SHIPPED_CATALOGUE = Path(__file__).resolve().with_name("claims.md")

#: Where each paper's experiment says which version constants key it: the paper's package
#: ``core.<key in lower case>`` (also its cache kind) defines ``experiment_versions() -> {NAME: value}``
#: (README, "Adding a paper"), so a new paper needs no entry here.
EXPERIMENT_PACKAGE = "core.{kind}"

_REVISION = re.compile(r"^\*\*(Revision\s+\d+)\s*(\(([^)]*)\))?")


def sha256_text(text: str) -> str:
    """sha256 (64 hex digits) of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def catalogue_candidates() -> list[Path]:
    """Where the catalogue is looked for, in order: ``$NEURON_CLAIMS_CATALOGUE`` alone where set; else
    ``<repo>/../shared/claims.md``, then ``<repo>/../../shared/claims.md`` (a git worktree one level
    deeper than the main checkout), then the shipped copy :data:`SHIPPED_CATALOGUE`."""
    env = os.environ.get(CATALOGUE_ENV_VAR)
    if env:
        return [Path(env).expanduser()]
    return [ROOT.parent / "shared" / "claims.md", ROOT.parent.parent / "shared" / "claims.md",
            SHIPPED_CATALOGUE]


def _source(path: Path, given: bool) -> str:
    """Which catalogue ``path`` is: ``"given"`` (a path argument), ``"env"`` (``$NEURON_CLAIMS_CATALOGUE``),
    ``"shipped"`` (:data:`SHIPPED_CATALOGUE`) or ``"shared"`` (``../shared/claims.md``)."""
    if given:
        return "given"
    if os.environ.get(CATALOGUE_ENV_VAR):
        return "env"
    return "shipped" if path == SHIPPED_CATALOGUE else "shared"


def catalogue_info(path: str | os.PathLike | None = None) -> dict:
    """The claim catalogue's revision, read from its last section ("Revisions").

    Parameters
    ----------
    path : path-like, optional
        The catalogue file; default the first of :func:`catalogue_candidates` that exists.

    Returns
    -------
    dict
        Found: ``{"found": True, "path", "source", "revision": "Revision 2 (2026-11-29)", "sha256"}``
        (``source``: which file was read, ``"shared"`` (``../shared/claims.md``), ``"shipped"`` (the
        repository's copy), ``"env"`` or ``"given"``; the revision is that of the last ``**Revision N
        (date)...**`` line; ``"revision 1 (no Revisions section)"`` when the file has none; ``sha256``
        is of the whole file). Not found: ``{"found": False, "looked_in": [paths]}``. Never raises for
        a missing or unreadable file (``"error"`` then names why).
    """
    candidates = [Path(path)] if path is not None else catalogue_candidates()
    for candidate in candidates:
        if candidate.is_file():
            try:
                text = candidate.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                return {"found": False, "looked_in": [str(c) for c in candidates],
                        "error": f"{candidate}: {type(e).__name__}: {e}"}
            return {"found": True, "path": str(candidate), "source": _source(candidate, path is not None),
                    "revision": _revision(text), "sha256": sha256_text(text)}
    return {"found": False, "looked_in": [str(c) for c in candidates]}


def _revision(text: str) -> str:
    section = text.split("\n## Revisions", 1)
    if len(section) < 2:
        return "revision 1 (no Revisions section)"
    found = None
    for line in section[1].splitlines():
        m = _REVISION.match(line.strip())
        if m:
            found = f"{m.group(1)} ({m.group(3)})" if m.group(3) else m.group(1)
    return found or "revision 1 (no revision listed)"


def revision_text(catalogue: dict | None) -> str:
    """One line for the report: ``"Revision 2 (2026-11-29)"`` (``"... (shipped copy)"`` where the
    repository's own copy was read for want of ``../shared/claims.md``), or ``"catalogue not found"``,
    or ``"not recorded"`` (a result file older than this field)."""
    if not catalogue:
        return "not recorded"
    if not catalogue.get("found"):
        return "catalogue not found"
    text = str(catalogue.get("revision") or "not recorded")
    return f"{text} (shipped copy)" if catalogue.get("source") == "shipped" else text


@functools.lru_cache(maxsize=None)
def experiment_version(paper: str) -> dict:
    """The versions that key the experiment of ``paper`` ("ABL", "MOD", "BCL"): ``{"experiment": cache
    kind, "NAME": value, ..., "CACHE_VERSION": value}`` from its package's ``experiment_versions()``
    (:data:`EXPERIMENT_PACKAGE`); ``{"experiment": "unknown"}`` for a paper without one. Imports the
    experiment's module (already imported by the claim tests)."""
    from core.cache import CACHE_VERSION

    kind = str(paper).lower()
    try:
        package = importlib.import_module(EXPERIMENT_PACKAGE.format(kind=kind)) if kind.isidentifier() else None
    except ImportError:
        package = None
    versions = getattr(package, "experiment_versions", None)
    if versions is None:
        return {"experiment": "unknown"}
    out: dict = {"experiment": kind, **versions()}
    out["CACHE_VERSION"] = CACHE_VERSION
    return out


def result_provenance(*, paper: str | None, model: str, rule: str | None, loaded: dict | None = None) -> dict:
    """The ``provenance`` field of a result file.

    Parameters
    ----------
    paper : str
        The claim's paper ("ABL", "MOD", "BCL"): names its experiment.
    model : str
        The model's name as loaded (:func:`core.zoo.models.load_model`).
    rule : str or None
        The decision rule the test applied (its text is hashed).
    loaded : dict, optional
        The model's load record (:func:`core.zoo.models.loaded_provenance`: ``dtype``, ``device``,
        ``weights``), passed in by the caller so that this module (which the report reads) never imports
        the model zoo; None when the model was not loaded in this process.

    Returns
    -------
    dict
        ``catalogue`` (:func:`catalogue_info`), ``rule_sha256`` (sha256 of the rule text, or None),
        ``experiment`` (:func:`experiment_version` and, from :func:`core.cache.experiment_record`,
        ``status``: ``"computed"``, ``"re-read"`` or ``"partly re-read"``, the ``re_read`` entries and
        the ``cache`` folder; ``status`` ``"not recorded in this process"`` when the experiment ran
        elsewhere), ``model`` (:attr:`core.zoo.models.LoadedModel.provenance`: ``dtype``, ``device``,
        ``weights``; ``{"loaded": False}`` when the model was not loaded in this process).
    """
    from core.cache import experiment_record

    exp = dict(experiment_version(paper))
    record = experiment_record(exp["experiment"], model)
    exp.update(record or {"status": "not recorded in this process"})
    return {"catalogue": catalogue_info(), "rule_sha256": sha256_text(rule) if rule else None,
            "experiment": exp, "model": dict(loaded) if loaded else {"loaded": False}}


def experiment_summary(results) -> dict:
    """Which results of a run measured their experiment and which re-read it from the cache.

    Parameters
    ----------
    results : iterable of :class:`core.results.ClaimResult`

    Returns
    -------
    dict
        ``computed``, ``re_read`` (``"partly re-read"`` included), ``unrecorded`` (measured results
        without a record: older files, or experiments outside ABL/MOD/BCL): lists of ``"claim on
        model"``; skipped and errored results are left out.
    """
    out: dict = {"computed": [], "re_read": [], "unrecorded": []}
    for r in results:
        if r.verdict in ("skipped", "error"):
            continue
        status = ((r.provenance or {}).get("experiment") or {}).get("status")
        label = f"{r.claim} on {r.model}"
        if status == "computed":
            out["computed"].append(label)
        elif status in ("re-read", "partly re-read"):
            out["re_read"].append(label)
        else:
            out["unrecorded"].append(label)
    return out


def summary_text(run_dir) -> str:
    """The lines ``python -m core.provenance RUN_DIR`` prints: the catalogue revision the run applied and
    how many results computed their experiment or re-read it (naming those re-read)."""
    from core.results import read_results

    results, _ = read_results(run_dir)
    revisions = sorted({revision_text((r.provenance or {}).get("catalogue")) for r in results})
    s = experiment_summary(results)
    lines = [f"Catalogue: {', '.join(revisions) or 'no results'}",
             f"Experiments: {len(s['computed'])} result(s) computed in this run, {len(s['re_read'])} re-read "
             f"from the cache, {len(s['unrecorded'])} without a record"]
    if s["re_read"]:
        lines.append("Re-read: " + "; ".join(s["re_read"]))
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python -m core.provenance RUN_DIR")
    print(summary_text(sys.argv[1]))


def report_line(results) -> str:
    """One line for the report's head: the catalogue revision(s) the results applied and how many
    computed their experiment or re-read it, e.g. ``"Catalogue: Revision 2 (2026-11-29). Experiments:
    30 result(s) computed in this run, 0 re-read from the cache."``; ``""`` without results. Result
    files older than these fields read ``not recorded``."""
    results = list(results)
    if not results:
        return ""
    revisions = sorted({revision_text((r.provenance or {}).get("catalogue")) for r in results})
    s = experiment_summary(results)
    text = f"Catalogue: {', '.join(revisions)}."
    if s["computed"] or s["re_read"]:
        text += (f" Experiments: {len(s['computed'])} result(s) computed in this run, {len(s['re_read'])} "
                 f"re-read from the cache" + (f" ({'; '.join(s['re_read'][:8])}"
                                              f"{', ...' if len(s['re_read']) > 8 else ''})" if s["re_read"] else "")
                 + ".")
    return text
