"""The manifest of papers (core.papers) agrees with the claim modules, the claim ids, the catalogue, the
import contracts, the README and the report, and the report and conftest.py read it.

These are the checks that make "adding a paper" (README, Contributing) a list of files that a test
names when one is missing.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import replace
from html import escape
from pathlib import Path
from types import SimpleNamespace

import pytest

from core import papers
from core.errors import UnknownNameError
from core.papers import PAPERS, citation, for_experiment, get_paper, keys, report_rank
from core.provenance import catalogue_candidates
from core.report.figures import draw_figures
from core.report.markdown import render_report
from core.results import claim_sort_key, write_curves, write_result
from tests.test_report import make_result

ROOT = Path(__file__).resolve().parents[1]

#: A claim id as a string literal of a claims module: ``"ABL-10"``.
CLAIM_LITERAL = re.compile(r"""["']([A-Z]{2,})-(\d+)["']""")


def _claim_prefixes(path: Path) -> set[str]:
    assert path.is_file(), f"no claims module {path.relative_to(ROOT)} (core/papers.py names it)"
    return {m.group(1) for m in CLAIM_LITERAL.finditer(path.read_text(encoding="utf-8"))}


# ---------------------------------------------------------------------- the manifest itself
def test_keys_and_experiments_are_unique_and_well_formed():
    assert len(set(keys())) == len(PAPERS) == len({p.experiment for p in PAPERS}) > 0
    for p in PAPERS:
        assert re.fullmatch(r"[A-Z]{2,}", p.key), p.key
        assert p.experiment == p.experiment.lower() and p.experiment, p.experiment
        assert p.citation.strip() and p.key not in p.citation, p


def test_every_paper_has_its_package_claims_module_rule_test_and_figures_module():
    for p in PAPERS:
        package = ROOT / Path(*p.package.split("."))
        assert (package / "__init__.py").is_file(), f"{p.key}: no package {p.package}"
        assert (ROOT / p.claims).is_file(), f"{p.key}: no claims module {p.claims}"
        assert (ROOT / p.rule_tests).is_file(), f"{p.key}: no rule test {p.rule_tests}"
        for fn in (p.render, p.check_payload):
            if fn is not None:
                assert callable(fn) and fn.__module__ == f"{p.package}.figures", (p.key, fn)
        assert p.rehearsal and all(m.startswith("rehearsal:") for m in p.rehearsal), p.rehearsal


def test_lookups():
    abl = get_paper("ABL")
    assert abl.key == "ABL" and for_experiment("ABL") is abl and for_experiment("abl") is abl
    assert for_experiment("xyz") is None
    assert citation("ABL") == abl.citation and citation("XYZ") == "XYZ"
    with pytest.raises(UnknownNameError, match="unknown paper 'XYZ'; expected one of: ABL, BCL, MOD"):
        get_paper("XYZ")
    assert sorted(["XYZ", *reversed(keys()), "AAA"], key=report_rank) == [*keys(), "AAA", "XYZ"]


def test_importing_the_manifest_imports_no_model_or_plotting_library():
    code = ("import sys, core.papers, core.report.markdown; "
            "print(sorted(m for m in ('torch', 'transformers', 'matplotlib', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------- the claims agree with it
def test_every_papers_claims_module_names_only_its_own_claim_ids():
    """The claim-id literals of each claims module are its paper's (conftest.py checks the same of the
    claim markers of every collected claim test, and refuses a claim test outside these modules)."""
    for p in PAPERS:
        prefixes = _claim_prefixes(ROOT / p.claims)
        assert prefixes <= {p.key}, f"{p.claims}: claim ids of {sorted(prefixes - {p.key})}, not {p.key}"
    found = set().union(*(_claim_prefixes(ROOT / p.claims) for p in PAPERS))
    assert found == set(keys()), f"claim ids in the claims modules: {sorted(found)}"


def test_the_catalogue_has_a_section_per_paper_and_no_other_claims():
    catalogue = next((c for c in catalogue_candidates() if c.is_file()), None)
    if catalogue is None:
        pytest.skip(f"no claim catalogue in {', '.join(map(str, catalogue_candidates()))}")
    text = catalogue.read_text(encoding="utf-8")
    sections = re.findall(r"^## ([A-Z]{2,}):", text, re.M)
    assert sections == list(keys()), f"{catalogue}: paper sections {sections}, manifest {list(keys())}"
    ids = {m.group(1) for m in re.finditer(r"^\|\s*([A-Z]{2,})-\d+\s*\|", text, re.M)}
    assert ids <= set(keys()), f"{catalogue}: claims of papers outside core/papers.py: {ids - set(keys())}"


def test_every_papers_experiment_is_found_below_the_manifests_layer():
    """core.cache and core.provenance sit below the manifest's layer and find each paper's experiment
    by convention (README, Adding a paper): its cache kind is an experiment kind, and its package
    ``core.<kind>`` says which versions key it."""
    from core.cache import is_experiment_kind
    from core.provenance import experiment_version

    for p in PAPERS:
        assert is_experiment_kind(p.experiment), f"core/cache.py SHARED_KINDS holds {p.experiment!r}"
        assert p.package == f"core.{p.experiment}" and p.experiment == p.key.lower(), p
        found = experiment_version(p.key)
        assert found["experiment"] == p.experiment and len(found) > 2, \
            f"{p.package}: expected experiment_versions() naming its version constants, found {found}"


def test_listings_follow_the_manifests_order():
    """core.results sits below the manifest's layer and keeps its own order of the families
    (CLAIM_FAMILIES); a paper appended to the manifest must still list in the manifest's order."""
    assert sorted(keys(), key=lambda k: claim_sort_key(f"{k}-1")) == list(keys())


def test_pyproject_contracts_name_every_papers_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    contracts = {c["name"]: c for c in config["contracts"]}
    packages = [p.package for p in PAPERS]
    layers = next(c for name, c in contracts.items() if name.startswith("core's layers"))["layers"]
    assert "core.papers" in layers and " | ".join(packages) in layers, layers
    assert layers.index("core.report") < layers.index("core.papers") < layers.index(" | ".join(packages))
    independent = next(c for c in contracts.values() if c["type"] == "independence")
    assert independent["modules"] == packages
    report = next(c for name, c in contracts.items() if name.startswith("the report reads"))
    assert set(packages) <= set(report["forbidden_modules"])


def test_readme_lists_every_paper_with_its_citation():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("\n## ", 1)[0]  # the table of papers, above the first section
    rows = dict(re.findall(r"^\| ([A-Z]{2,}) \| (.+?) \|$", table, re.M))
    assert list(rows) == list(keys()), f"README's table of papers: {list(rows)}"
    for p in PAPERS:
        assert rows.get(p.key, "").replace("*", "") == p.citation, f"README's row of {p.key}"
    section = readme.split("### Adding a paper", 1)[-1].split("\n## ", 1)[0]
    assert "core/papers.py" in section and "pyproject.toml" in section


# ---------------------------------------------------------------------- the report reads it
def test_report_sections_follow_the_manifest_and_show_its_citations(tmp_path):
    for p in reversed(PAPERS):
        write_result(tmp_path, make_result(f"{p.key}-1", "m", "replicated"))
    md, html = render_report(tmp_path, history=0)
    text = md.read_text(encoding="utf-8")
    heads = re.findall(r"^### ([A-Z]+): (.+)$", text, re.M)
    assert heads == [(p.key, p.citation) for p in PAPERS]
    page = html.read_text(encoding="utf-8")
    assert all(escape(p.citation) in page for p in PAPERS)


def test_figures_are_drawn_by_the_manifests_renderer_after_its_check(tmp_path, monkeypatch):
    seen: list = []

    def check(payload):
        if payload.get("bad"):
            raise ValueError("'bad' is set")

    def render(payloads, figures_dir):
        seen.append([q["model"] for q in payloads])
        return [{"title": "stand-in", "path": None, "caption": "", "markdown": "| a |\n| --- |\n| 1 |"}]

    target = PAPERS[-1]
    monkeypatch.setattr(papers, "PAPERS", tuple(replace(p, render=render, check_payload=check)
                                                if p is target else p for p in PAPERS))
    curves = {"one": {"experiment": target.experiment.upper(), "model": "a"},
              "two": {"experiment": target.experiment, "model": "b", "bad": True},
              "three": {"experiment": "xyz"}}
    figures, bad, not_drawn = draw_figures(tmp_path, curves)
    assert seen == [["a"]]
    assert [(f.paper, f.title) for f in figures] == [(target.key, "stand-in")]
    assert bad == [(tmp_path / "curves" / "two.json", "ValueError: 'bad' is set")]
    assert len(not_drawn) == 1 and "no figure renderer for experiment 'xyz'" in not_drawn[0][1]


# ---------------------------------------------------------------------- conftest.py reads it
def _claim_item(path: Path, claim: str | None):
    marker = None if claim is None else pytest.mark.claim(claim).mark
    return SimpleNamespace(path=path, nodeid=f"{path.name}::test_x[m]",
                           get_closest_marker=lambda name: marker if name == "claim" else None)


def test_conftest_checks_claim_tests_against_the_manifest():
    from conftest import _check_claim_modules

    first, last = PAPERS[0], PAPERS[-1]
    _check_claim_modules([_claim_item(ROOT / first.claims, f"{first.key}-3"),
                          _claim_item(ROOT / "claims" / "test_stray.py", None),  # not a claim test
                          _claim_item(ROOT / "tests" / "test_stray.py", "ZZZ-1")])  # outside claims/
    with pytest.raises(pytest.UsageError, match="claims/test_stray.py holds claim tests but is no paper's "
                                                "claims module in core/papers.py"):
        _check_claim_modules([_claim_item(ROOT / "claims" / "test_stray.py", f"{first.key}-1")])
    with pytest.raises(pytest.UsageError, match=f"claim {first.key}-1 in {last.claims}, whose claims are "
                                                f"{last.key}-N"):
        _check_claim_modules([_claim_item(ROOT / last.claims, f"{first.key}-1")])
