"""The claim catalogue (``claims.md``) read as typed rows: each paper's claim table, one
:class:`CatalogueRow` per claim.

Which file is read, and its revision, come from :func:`core.provenance.catalogue_info` (the same
lookup whose record every result file carries): ``../shared/claims.md`` beside the repository where
present, else the copy the repository ships (:data:`core.provenance.SHIPPED_CATALOGUE`, package data);
``$NEURON_CLAIMS_CATALOGUE`` overrides both.

The format read (claims.md, the sections "ABL", "MOD" and "BCL"): a section starts with a heading
``## KEY: title``; inside it, the claim table is the Markdown table whose header row reads
``| id | claim ... | measured as | verdict rule | paper value |``, followed by its ``| --- |`` row and
one row per claim, ``| KEY-N | statement | measured | rule | paper value |``. A cell's text is read as
its Markdown shows it: code spans lose their backticks (```filter``` reads ``filter``), an escaped
bar ``\\|`` reads ``|``, surrounding spaces go.

``python -m core.catalogue`` prints which file it read, its revision and its claims.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from core.provenance import catalogue_info

#: The claim table's columns: the header row's cells must start with these, in this order.
COLUMNS = ("id", "claim", "measured as", "verdict rule", "paper value")

#: What each :attr:`Catalogue.source` means, in words.
SOURCES = {"shared": "../shared/claims.md", "shipped": "the copy shipped in the repository",
           "env": "$NEURON_CLAIMS_CATALOGUE", "given": "the path given"}

_HEADING = re.compile(r"^##\s+(\S.*?)\s*$")
_SECTION_KEY = re.compile(r"^([A-Z][A-Z0-9]*):")
_SEPARATOR_CELL = re.compile(r"^:?-{3,}:?$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_CODE_SPAN = re.compile(r"`([^`]*)`")


class CatalogueError(ValueError):
    """The catalogue file is not as :mod:`core.catalogue` reads it: the message names the file, the line
    (where there is one), what was expected and what came."""


@dataclass(frozen=True)
class CatalogueRow:
    """One claim of the catalogue, as its table row states it.

    Attributes
    ----------
    id : str
        ``"ABL-1"``, ...: the paper's key, a hyphen, a number.
    paper : str
        The section the row stands in: ``"ABL"``, ``"MOD"`` or ``"BCL"``.
    statement, measured, rule : str
        The columns "claim", "measured as" and "verdict rule", as read (see the module docstring).
    paper_value : str or None
        The column "paper value"; None where the cell is empty.
    line : int
        The row's line in the file (1-based).
    """

    id: str
    paper: str
    statement: str
    measured: str
    rule: str
    paper_value: str | None
    line: int


@dataclass(frozen=True)
class Catalogue:
    """A catalogue file read whole.

    Attributes
    ----------
    path : Path
        The file read.
    source : str
        Which it is (:func:`core.provenance.catalogue_info`): ``"shared"`` (``../shared/claims.md``),
        ``"shipped"`` (the repository's copy), ``"env"`` (``$NEURON_CLAIMS_CATALOGUE``) or ``"given"``.
    revision : str
        ``"Revision 2 (2026-11-29)"``: the last of its Revisions section (as result files record it).
    sha256 : str
        Of the whole file.
    rows : dict of str to CatalogueRow
        Every claim, keyed by id, in the file's order.
    """

    path: Path
    source: str
    revision: str
    sha256: str
    rows: dict

    def __getitem__(self, claim_id: str) -> CatalogueRow:
        try:
            return self.rows[claim_id]
        except KeyError:
            raise KeyError(f"{self.path}: no claim {claim_id!r} in the catalogue (it has "
                           f"{', '.join(self.rows)})") from None

    def describe(self) -> str:
        """One line: which file was read, its revision and how many claims it holds, e.g.
        ``"/x/shared/claims.md (../shared/claims.md), Revision 2 (2026-11-29), 28 claims"``."""
        return f"{self.path} ({SOURCES.get(self.source, self.source)}), {self.revision}, {len(self.rows)} claims"


def cell_text(cell: str) -> str:
    """A table cell's text as its Markdown shows it: stripped, code spans without backticks, ``\\|`` as
    ``|``."""
    return _CODE_SPAN.sub(r"\1", cell.strip()).replace("\\|", "|")


def _cells(line: str) -> list[str] | None:
    """The raw cells of a Markdown table row ``| a | b |`` (None for a line that is not one)."""
    s = line.strip()
    if not (s.startswith("|") and s.endswith("|") and len(s) >= 2):
        return None
    return [c.strip() for c in _CELL_SPLIT.split(s[1:-1])]


def parse_catalogue(text: str, source: str | os.PathLike = "<text>",
                    papers: tuple[str, ...] | None = None) -> dict[str, CatalogueRow]:
    """The claim tables of a catalogue's text, as typed rows.

    Parameters
    ----------
    text : str
        The catalogue (Markdown; format in the module docstring).
    source : str or path-like
        Its file name, for error messages.
    papers : tuple of str, optional
        The sections whose claim tables are read; every one must be present. Default: every section
        ``## KEY: ...`` that holds a claim table (so a new paper's section needs no change here).

    Returns
    -------
    dict of str to CatalogueRow
        Every claim of those sections, keyed by id, in the file's order.

    Raises
    ------
    CatalogueError
        A paper's section or its claim table missing; a header without the columns :data:`COLUMNS`; a
        header not followed by its ``| --- |`` row; a row with other than 5 cells, an id that is not
        ``KEY-N`` of its section's key, an empty statement, measurement or rule, or an id already
        given. The message names ``source``, the line and what was expected.
    """
    lines = text.splitlines()
    sections: dict[str, int] = {}  # key -> index of its heading line
    for i, line in enumerate(lines):
        m = _HEADING.match(line)
        if m and (k := _SECTION_KEY.match(m.group(1))) and (papers is None or k.group(1) in papers):
            if k.group(1) in sections:
                raise CatalogueError(f"{source}:{i + 1}: a second section '## {k.group(1)}: ...' (the first "
                                     f"is at line {sections[k.group(1)] + 1}); expected one per paper")
            sections[k.group(1)] = i
    if papers is None:
        sections = {k: i for k, i in sections.items() if _has_claim_table(lines, i)}
        if not sections:
            raise CatalogueError(f"{source}: no paper's claim table; expected a heading '## KEY: <title>' "
                                 f"holding the claim table | {' | '.join(COLUMNS)} |")
    missing = [p for p in (papers or ()) if p not in sections]
    if missing:
        raise CatalogueError(f"{source}: no section for {', '.join(missing)}; expected a heading "
                             f"'## {missing[0]}: <title>' holding the claim table "
                             f"| {' | '.join(COLUMNS)} |")
    rows: dict[str, CatalogueRow] = {}
    for paper, start in sections.items():
        for row in _section_rows(lines, start, _section_end(lines, start), paper, source):
            if row.id in rows:
                raise CatalogueError(f"{source}:{row.line}: claim {row.id} again (first at line "
                                     f"{rows[row.id].line}); expected each id once")
            rows[row.id] = row
    return dict(sorted(rows.items(), key=lambda kv: kv[1].line))


def _section_end(lines: list[str], start: int) -> int:
    return next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))


def _claim_table_header(lines: list[str], start: int, end: int) -> int | None:
    """The line index of the claim table's header row ``| id | claim ...`` in ``lines[start:end]``."""
    for i in range(start + 1, end):
        cells = _cells(lines[i])
        if cells and cells[0].lower() == "id" and len(cells) > 1 and cells[1].lower().startswith("claim"):
            return i
    return None


def _has_claim_table(lines: list[str], start: int) -> bool:
    return _claim_table_header(lines, start, _section_end(lines, start)) is not None


def _section_rows(lines: list[str], start: int, end: int, paper: str, source) -> list[CatalogueRow]:
    header = _claim_table_header(lines, start, end)
    if header is None:
        raise CatalogueError(f"{source}:{start + 1}: section {paper} (lines {start + 1}-{end}) has no claim "
                             f"table; expected a header row | {' | '.join(COLUMNS)} |")
    got = [c.lower() for c in _cells(lines[header])]
    if len(got) != len(COLUMNS) or not all(g.startswith(c) for g, c in zip(got, COLUMNS)):
        raise CatalogueError(f"{source}:{header + 1}: expected the claim table's header "
                             f"| {' | '.join(COLUMNS)} |, got {lines[header].strip()!r}")
    sep = _cells(lines[header + 1]) if header + 1 < end else None
    if not sep or len(sep) != len(COLUMNS) or not all(_SEPARATOR_CELL.match(c) for c in sep):
        raise CatalogueError(f"{source}:{header + 2}: expected the header's separator row "
                             f"| {' | '.join(['---'] * len(COLUMNS))} |, got "
                             f"{lines[header + 1].strip() if header + 1 < end else 'the end of the section'!r}")
    rows = []
    id_re = re.compile(rf"^{re.escape(paper)}-[1-9][0-9]*$")
    for i in range(header + 2, end):
        if not lines[i].strip().startswith("|"):
            break
        cells = _cells(lines[i])
        where = f"{source}:{i + 1}"
        if cells is None or len(cells) != len(COLUMNS):
            n = "no closing '|'" if cells is None else f"{len(cells)} cell(s)"
            raise CatalogueError(f"{where}: expected a claim row of {len(COLUMNS)} cells "
                                 f"| {paper}-N | statement | measured | rule | paper value |, got {n}: "
                                 f"{lines[i].strip()[:120]!r}")
        claim_id, statement, measured, rule, value = (cell_text(c) for c in cells)
        if not id_re.match(claim_id):
            raise CatalogueError(f"{where}: expected a claim id {paper}-N (N = 1, 2, ...) in section "
                                 f"{paper}, got {claim_id!r}")
        empty = [name for name, v in (("claim", statement), ("measured as", measured), ("verdict rule", rule))
                 if not v]
        if empty:
            raise CatalogueError(f"{where}: claim {claim_id}: expected a non-empty {', '.join(empty)} cell")
        rows.append(CatalogueRow(claim_id, paper, statement, measured, rule, value or None, i + 1))
    if not rows:
        raise CatalogueError(f"{source}:{header + 1}: the claim table of section {paper} has no rows; expected "
                             f"one row | {paper}-N | statement | measured | rule | paper value | per claim")
    return rows


def read_catalogue(path: str | os.PathLike | None = None) -> Catalogue:
    """Read and parse the claim catalogue.

    Parameters
    ----------
    path : path-like, optional
        The file; default the one :func:`core.provenance.catalogue_info` finds (``../shared/claims.md``,
        else the shipped copy; ``$NEURON_CLAIMS_CATALOGUE`` overrides both).

    Returns
    -------
    Catalogue

    Raises
    ------
    CatalogueError
        No catalogue found or readable (the message lists where it looked), or its tables malformed
        (:func:`parse_catalogue`).
    """
    info = catalogue_info(path)
    if not info["found"]:
        raise CatalogueError(f"no claim catalogue found: looked in {', '.join(info['looked_in'])}"
                             + (f" ({info['error']})" if info.get("error") else ""))
    file = Path(info["path"])
    text = file.read_text(encoding="utf-8")
    return Catalogue(path=file, source=info["source"], revision=info["revision"], sha256=info["sha256"],
                     rows=parse_catalogue(text, file))


if __name__ == "__main__":
    import sys

    try:
        catalogue = read_catalogue()
    except CatalogueError as e:
        sys.exit(str(e))
    print(catalogue.describe())
    for row in catalogue.rows.values():
        print(f"{row.id}: {row.statement}")
