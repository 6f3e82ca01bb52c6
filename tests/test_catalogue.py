"""The claim catalogue checked against the code (claims.md, the ABL, MOD and BCL tables).

- The parser (:mod:`core.catalogue`) on small hand-written catalogues, well-formed and malformed: a
  malformed one fails naming the file, the line and what was expected.
- Every claim record of ``claims/`` (statement, measurement, rule, paper value) equals its catalogue
  row word for word; every catalogue id has a record and every record an id. The harness's own
  interpretations live in ``Claim.read_as``, never in the rule.
- The copy the repository ships equals ``../shared/claims.md`` where that exists.
- A result file carries ``read_as`` apart from the rule, the report shows both, and a result file
  written before ``read_as`` existed still loads.
"""
from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import provenance
from core.catalogue import (COLUMNS, CatalogueError, CatalogueRow, cell_text, parse_catalogue,
                            read_catalogue)
from core.provenance import CATALOGUE_ENV_VAR, SHIPPED_CATALOGUE, catalogue_candidates, catalogue_info, revision_text
from core.papers import keys

HEADER = "| id | claim | measured as | verdict rule | paper value |"
SEPARATOR = "| --- | --- | --- | --- | --- |"

SMALL = f"""# A catalogue

| key | paper | file |
| --- | --- | --- |
| ABL | someone | `a.md` |

## ABL: peak ablation

Some prose.

| id | claim (paper's words in short) | measured as | verdict rule | paper value |
| --- | --- | --- | --- | --- |
| ABL-1 | Peak beats zero | at 50%: top1(peak) - top1(zero) | replicated if > 0 with interval excluding 0 | 44.54 vs 41.77 |
| ABL-2 | Peak beats mean | as ABL-1 with `mean` for zero | as ABL-1 |  |

## MOD: modularity

{HEADER}
{SEPARATOR}
| MOD-1 | A \\| B | `filter`: abs(x) | replicated if rho > 0 | Fig. 1 |

## Readings: where the papers are ambiguous

| id | where | primary reading | alternate |
| --- | --- | --- | --- |
| R1 | x | y | z |
"""


def _small_rows():
    return parse_catalogue(SMALL, "small.md", papers=("ABL", "MOD"))


# --- the parser ----------------------------------------------------------------------------------

def test_a_small_catalogue_reads_as_typed_rows_in_file_order():
    rows = _small_rows()
    assert list(rows) == ["ABL-1", "ABL-2", "MOD-1"]
    assert rows["ABL-1"] == CatalogueRow("ABL-1", "ABL", "Peak beats zero", "at 50%: top1(peak) - top1(zero)",
                                         "replicated if > 0 with interval excluding 0", "44.54 vs 41.77", 13)
    # an empty paper value is None; code spans lose their backticks; an escaped bar is a bar
    assert rows["ABL-2"].paper_value is None and rows["ABL-2"].measured == "as ABL-1 with mean for zero"
    assert (rows["MOD-1"].statement, rows["MOD-1"].measured, rows["MOD-1"].line) == ("A | B", "filter: abs(x)", 20)
    assert SMALL.splitlines()[rows["MOD-1"].line - 1].startswith("| MOD-1 |")


def test_cell_text_by_hand():
    assert cell_text("  `refine`, K = 50  ") == "refine, K = 50"
    assert cell_text(r"abs(a \| b)") == "abs(a | b)"
    assert cell_text("plain") == "plain"


_WORDS = st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters=" -+(),.;:%<>=|"),
                 min_size=1, max_size=40).map(str.strip).filter(bool)


@given(st.lists(st.tuples(_WORDS, _WORDS, _WORDS, st.one_of(st.just(""), _WORDS)), min_size=1, max_size=5))
def test_any_table_of_plain_cells_reads_back_its_cells(cells):
    """Property: rows written as Markdown (bars escaped) read back cell for cell, numbered 1..n."""
    esc = [[c.replace("|", "\\|") for c in row] for row in cells]
    lines = ["## ABL: x", "", HEADER, SEPARATOR] + [f"| ABL-{i + 1} | {' | '.join(r)} |" for i, r in enumerate(esc)]
    rows = parse_catalogue("\n".join(lines) + "\n", papers=("ABL",))
    assert list(rows) == [f"ABL-{i + 1}" for i in range(len(cells))]
    for row, (s, m, r, v) in zip(rows.values(), cells):
        assert (row.statement, row.measured, row.rule, row.paper_value) == (s, m, r, v or None)


def _broken(old: str, new: str) -> str:
    assert SMALL.count(old) == 1, old
    return SMALL.replace(old, new)


@pytest.mark.parametrize("text, line, expected", [
    (_broken("## MOD: modularity", "## Modularity"), None, "no section for MOD"),
    (_broken(f"{HEADER}\n{SEPARATOR}\n| MOD-1 | A \\| B | `filter`: abs(x) | replicated if rho > 0 | Fig. 1 |\n", ""),
     16, "section MOD (lines 16-18) has no claim table"),
    (_broken(HEADER, "| id | claim | measured as | rule | paper value |"), 18, "expected the claim table's header"),
    (_broken(f"{HEADER}\n{SEPARATOR}", HEADER), 19, "expected the header's separator row"),
    (_broken("| 44.54 vs 41.77 |", "|"), 13, "expected a claim row of 5 cells"),
    (_broken("| Fig. 1 |", "| Fig. 1"), 20, "no closing '|'"),
    (_broken("| MOD-1 |", "| ABL-3 |"), 20, "expected a claim id MOD-N"),
    (_broken("| as ABL-1 |  |", "|  |  |"), 14, "expected a non-empty verdict rule cell"),
    (_broken("| ABL-2 |", "| ABL-1 |"), 14, "claim ABL-1 again (first at line 13)"),
])
def test_a_malformed_catalogue_fails_naming_file_line_and_what_was_expected(text, line, expected):
    with pytest.raises(CatalogueError) as err:
        parse_catalogue(text, "broken.md", papers=("ABL", "MOD"))
    msg = str(err.value)
    assert msg.startswith(f"broken.md:{line}:" if line else "broken.md:"), msg
    assert expected in msg and "expected" in msg, msg


def test_a_missing_catalogue_fails_naming_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv(CATALOGUE_ENV_VAR, str(tmp_path / "nowhere.md"))
    with pytest.raises(CatalogueError, match="no claim catalogue found: looked in .*nowhere.md"):
        read_catalogue()


# --- which file the harness reads ----------------------------------------------------------------

def test_without_shared_the_shipped_copy_is_read_and_said(tmp_path, monkeypatch):
    monkeypatch.delenv(CATALOGUE_ENV_VAR, raising=False)
    monkeypatch.setattr(provenance, "ROOT", tmp_path / "a" / "repo")  # no ../shared, no ../../shared
    assert catalogue_candidates()[-1] == SHIPPED_CATALOGUE
    info = catalogue_info()
    assert (info["source"], info["path"]) == ("shipped", str(SHIPPED_CATALOGUE))
    assert revision_text(info) == f"{info['revision']} (shipped copy)"
    catalogue = read_catalogue()
    assert (catalogue.source, catalogue.revision, catalogue.sha256) == ("shipped", info["revision"], info["sha256"])
    assert "the copy shipped in the repository" in catalogue.describe()


def test_shared_is_read_before_the_shipped_copy(tmp_path, monkeypatch):
    monkeypatch.delenv(CATALOGUE_ENV_VAR, raising=False)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "claims.md").write_text(SMALL.replace("## Readings", "## BCL: x\n\n" + HEADER + "\n"
                                                                 + SEPARATOR + "\n| BCL-1 | s | m | r | v |\n\n## Readings"))
    monkeypatch.setattr(provenance, "ROOT", tmp_path / "repo")
    catalogue = read_catalogue()
    assert (catalogue.source, catalogue.path) == ("shared", tmp_path / "shared" / "claims.md")
    assert list(catalogue.rows) == ["ABL-1", "ABL-2", "MOD-1", "BCL-1"]
    assert revision_text(catalogue_info()) == "revision 1 (no Revisions section)"


def test_the_shipped_copy_is_package_data():
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert SHIPPED_CATALOGUE.relative_to(Path(provenance.__file__).resolve().parent).as_posix() == "claims.md"
    assert '"core" = ["claims.md"]' in text


# --- the catalogue against the code --------------------------------------------------------------

def _records() -> dict:
    """Every ``Claim`` of the three claims modules, by id (a record defined twice must be the same)."""
    import importlib

    from claims._claim import Claim

    out: dict = {}
    for name in ("claims.test_peak_ablation", "claims.test_modularity", "claims.test_bert_clusters"):
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, Claim):
                assert out.setdefault(value.id, value) == value, f"{value.id} defined twice, differently"
    return out


def test_every_record_states_its_catalogue_row_word_for_word():
    catalogue = read_catalogue()
    records = _records()
    wrong = []
    for claim_id, claim in records.items():
        if claim_id not in catalogue.rows:
            continue
        row = catalogue[claim_id]
        for field in ("statement", "measured", "rule", "paper_value"):
            if getattr(claim, field) != getattr(row, field):
                wrong.append(f"{claim_id} {field}:\n  code:      {getattr(claim, field)!r}\n"
                             f"  catalogue: {getattr(row, field)!r} ({catalogue.path}:{row.line})")
        if claim.paper != row.paper:
            wrong.append(f"{claim_id}: paper {claim.paper!r}, but it stands in section {row.paper}")
        if claim.read_as is not None and not claim.read_as.strip():
            wrong.append(f"{claim_id}: read_as is empty; expected None or the harness's reading")
    assert not wrong, (f"claim records differ from {catalogue.describe()} (the code's own reading goes into "
                       "read_as=..., never into the rule):\n" + "\n".join(wrong))


def test_every_catalogue_id_has_a_record_and_every_record_an_id():
    catalogue = read_catalogue()
    records = set(_records())
    assert set(catalogue.rows) - records == set(), f"catalogue claims without a record in claims/ ({catalogue.path})"
    assert records - set(catalogue.rows) == set(), f"claim records not in the catalogue {catalogue.path}"
    assert {r.paper for r in catalogue.rows.values()} == set(keys()) and len(COLUMNS) == 5


def test_the_shipped_copy_equals_shared(monkeypatch):
    monkeypatch.delenv(CATALOGUE_ENV_VAR, raising=False)
    shared = next((p for p in catalogue_candidates() if p != SHIPPED_CATALOGUE and p.is_file()), None)
    if shared is None:
        pytest.skip("no ../shared/claims.md beside the repository: only the shipped copy to read")
    if shared.read_bytes() != SHIPPED_CATALOGUE.read_bytes():
        have, want = catalogue_info(SHIPPED_CATALOGUE)["revision"], catalogue_info(shared)["revision"]
        pytest.fail(f"the shipped copy {SHIPPED_CATALOGUE} ({have}) differs from {shared} ({want}); refresh it "
                    f"with: cp {shlex.quote(os.fspath(shared))} {shlex.quote(os.fspath(SHIPPED_CATALOGUE))}",
                    pytrace=False)


# --- results and report --------------------------------------------------------------------------

def _result(**kw):
    from core.results import ClaimResult

    fields = dict(claim="MOD-2", model="m", tier="small", profile="ci", verdict="replicated", statistic=0.5,
                  statistic_name="S", interval=[0.1, 0.9], sample_sizes={"rows": 4}, seeds=[0], paper_value=None,
                  data="d", versions={}, created_at="2026-01-01T00:00:00+00:00",
                  rule="replicated if > 0 with interval excluding 0", read_as="bootstrap over rows")
    fields.update(kw)
    return ClaimResult(**fields)


def test_read_as_round_trips_and_an_older_result_file_still_loads(tmp_path):
    from core.results import ClaimResult, read_results, result_path, write_result

    write_result(tmp_path, _result())
    path = result_path(tmp_path, "MOD-2", "m")
    assert json.loads(path.read_text())["read_as"] == "bootstrap over rows"
    old = json.loads(path.read_text())
    del old["read_as"]
    assert ClaimResult.from_dict(old).read_as is None
    with pytest.raises(ValueError, match="read_as"):
        _result(read_as=3)
    (loaded,), problems = read_results(tmp_path)
    assert not problems and loaded.read_as == "bootstrap over rows"


def test_the_report_shows_the_rule_and_apart_how_it_is_read(tmp_path):
    from core.report.markdown import render_report
    from core.results import write_result

    write_result(tmp_path, _result())
    md, page = render_report(tmp_path)
    text = md.read_text()
    assert "Rule: replicated if > 0 with interval excluding 0\n" in text
    assert "Read as: bootstrap over rows" in text
    html = page.read_text()
    assert '<span class="rule">Rule: replicated if &gt; 0 with interval excluding 0</span>' in html
    assert '<span class="rule">Read as: bootstrap over rows</span>' in html
