"""The papers: one record per paper, in report order, that the report and ``conftest.py`` read.

Each :class:`Paper` names the paper's key (the prefix of its claim ids in ``../shared/claims.md``),
its citation, its experiment (the ``"experiment"`` key of its curve payloads and its cache kind), its
package in ``core/``, its figure renderer and payload check (the functions themselves, in the paper's
``figures`` module), its claims module in ``claims/`` and the test of its decision rules in ``tests/``.

- The report (:mod:`core.report`) orders papers, titles their sections and draws their figures from
  :data:`PAPERS` (:func:`core.report.figures.draw_figures`).
- ``conftest.py`` refuses a claim test in ``claims/`` whose module is no paper's claims module, or
  whose claim id does not start with that paper's key.
- ``tests/test_papers.py`` checks that the manifest, the claim modules, the claim ids and the
  import-linter contracts of ``pyproject.toml`` agree.

Which full-tier models are a paper's own is model data: :attr:`core.zoo.registry.ModelSpec.papers`.

Importing this module imports the papers' ``figures`` modules, which import numpy and the
foundations only; matplotlib is imported inside the renderers, when a report draws.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.abl import figures as abl_figures
from core.bcl import figures as bcl_figures
from core.errors import UnknownNameError
from core.mod import figures as mod_figures

#: ``render(payloads, figures_dir)``: every curve payload of the paper's experiment (list of dict, in
#: file-name order) -> a list of dicts ``{"title": str, "path": Path or None, "caption": str,
#: "markdown": optional str (a Markdown table)}``; images are written into ``figures_dir``.
Renderer = Callable[[list[dict[str, Any]], Path], list[dict[str, Any]]]

#: ``check(payload)``: raises ValueError or TypeError, naming the field, for a payload its renderer
#: cannot draw; returns None otherwise.
PayloadCheck = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Paper:
    """One paper of the harness.

    Attributes
    ----------
    key : str
        Upper-case prefix of the paper's claim ids (``"ABL"`` for ``ABL-1`` ...) and
        :attr:`claims._claim.Claim.paper`.
    citation : str
        Authors (year), title: the heading of the paper's section of the report.
    experiment : str
        Lower-case: the ``"experiment"`` key of the paper's curve payloads and its cache kind
        (:func:`core.cache.cache_dir`).
    package : str
        The paper's package in ``core/`` (``"core.abl"``): its experiment and figures.
    render : Renderer
        Draws the paper's figures from its curve payloads (see :data:`Renderer`).
    claims : str
        The paper's claims module, relative to the repository root (``"claims/test_peak_ablation.py"``).
    rule_tests : str
        The test of the paper's decision rules on known answers, relative to the repository root.
    rehearsal : tuple of str
        Rehearsal models (:mod:`core.zoo.rehearsal`), one per code path of the paper's claims, on which
        ``tests/test_rehearsal_run.py`` runs every claim of :attr:`claims` in CI.
    check_payload : PayloadCheck or None
        Run on every payload before :attr:`render` sees it (see :data:`PayloadCheck`); None: none.
    """

    key: str
    citation: str
    experiment: str
    package: str
    render: Renderer
    claims: str
    rule_tests: str
    rehearsal: tuple[str, ...]
    check_payload: PayloadCheck | None = None


#: The papers, in report order.
PAPERS: tuple[Paper, ...] = (
    Paper(key="ABL",
          citation="Pochinkov, Pasero, Shibayama (2024), Investigating Neuron Ablation in Attention Heads: "
                   "The Case for Peak Activation Centering",
          experiment="abl", package="core.abl",
          render=abl_figures.render_abl_figures, check_payload=abl_figures.check_abl_payload,
          claims="claims/test_peak_ablation.py", rule_tests="tests/test_abl_claims.py",
          rehearsal=("rehearsal:opt-1.3b@1L", "rehearsal:roberta-large@1L", "rehearsal:vit-base@1L")),
    Paper(key="MOD",
          citation="Pochinkov, Jones, Rahman (2024), Modularity in Transformers: Investigating Neuron "
                   "Separability & Specialization",
          experiment="mod", package="core.mod", render=mod_figures.render,
          claims="claims/test_modularity.py", rule_tests="tests/test_mod_claims.py",
          rehearsal=("rehearsal:vit-base-cifar100@2L",)),
    Paper(key="BCL",
          citation="Zhang, Gu, Yao, Semantically Interpretable Neuron Clusters in BERT",
          experiment="bcl", package="core.bcl", render=bcl_figures.render,
          claims="claims/test_bert_clusters.py", rule_tests="tests/test_bcl_claims.py",
          rehearsal=("rehearsal:bert-base-uncased@1L",)),
)


def keys() -> tuple[str, ...]:
    """The papers' keys in report order: ``("ABL", "MOD", "BCL")``."""
    return tuple(p.key for p in PAPERS)


def get_paper(key: str) -> Paper:
    """The paper of ``key`` (``"ABL"``); raises :class:`core.errors.UnknownNameError` listing the keys."""
    for p in PAPERS:
        if p.key == key:
            return p
    raise UnknownNameError("paper", key, keys())


def for_experiment(experiment: str) -> Paper | None:
    """The paper whose curve payloads carry ``"experiment": experiment`` (any case); None if none."""
    for p in PAPERS:
        if p.experiment == experiment.lower():
            return p
    return None


def citation(key: str) -> str:
    """The citation of paper ``key``, or ``key`` itself for a key outside the manifest."""
    for p in PAPERS:
        if p.key == key:
            return p.citation
    return key


def report_rank(key: str) -> tuple[int, str]:
    """Sort key of a paper key in report order: the manifest's papers first, in their order, then
    any other key alphabetically."""
    order = keys()
    return (order.index(key) if key in order else len(order), key)
