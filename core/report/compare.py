"""Comparing two runs: the nightly summary.

:func:`compare_runs` reads the result files of an earlier and a later run and lists

- every (claim, model) whose verdict changed (``skipped`` and ``error`` count as verdicts);
- every statistic that moved outside the earlier run's 95% interval (both runs measured it and the
  earlier one has an interval), whether or not the verdict changed;
- claims, models and (claim, model) pairs that were added or removed;
- result files of either run that could not be read (named, the rest compared).

:func:`write_comparison` writes it as Markdown and JSON into the later run's folder, under names
that contain the earlier run's name, so that comparisons with different runs never overwrite one
another. Command line: ``python -m core.report compare OLD NEW`` (see :mod:`core.report.cli`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.cache import atomic_write_json, atomic_write_text
from core.report.format import fmt_interval, fmt_num
from core.results import ClaimResult, claim_sort_key, read_results, safe_name


@dataclass
class PairChange:
    """One (claim, model) present in both runs whose verdict changed or whose statistic moved.

    ``old_*`` and ``new_*`` are the verdict, statistic and 95% interval ``[low, high]`` of each run
    (statistic and interval None for skipped and errored results).
    """

    claim: str
    model: str
    old_verdict: str
    new_verdict: str
    old_statistic: float | None
    new_statistic: float | None
    old_interval: list[float] | None
    new_interval: list[float] | None
    statistic_name: str
    new_reason: str | None = None

    @property
    def verdict_changed(self) -> bool:
        return self.old_verdict != self.new_verdict

    @property
    def moved(self) -> bool:
        """The new statistic lies outside the old 95% interval."""
        return statistic_moved(self.old_interval, self.new_statistic)


@dataclass
class Comparison:
    """What changed from run ``old`` to run ``new`` (see the module docstring).

    Attributes
    ----------
    old, new : pathlib.Path
        The two run folders.
    verdict_changes : list of PairChange
        Pairs whose verdict changed, in claim order.
    moved : list of PairChange
        Pairs whose statistic moved outside the earlier interval, in claim order.
    unchanged : int
        Pairs in both runs with the same verdict and no move.
    added_claims, removed_claims, added_models, removed_models : list of str
    added_pairs, removed_pairs : list of (claim, model)
    problems : list of (pathlib.Path, str)
        Unreadable result files of either run.
    """

    old: Path
    new: Path
    verdict_changes: list[PairChange] = field(default_factory=list)
    moved: list[PairChange] = field(default_factory=list)
    unchanged: int = 0
    added_claims: list[str] = field(default_factory=list)
    removed_claims: list[str] = field(default_factory=list)
    added_models: list[str] = field(default_factory=list)
    removed_models: list[str] = field(default_factory=list)
    added_pairs: list[tuple[str, str]] = field(default_factory=list)
    removed_pairs: list[tuple[str, str]] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.verdict_changes or self.moved or self.added_pairs or self.removed_pairs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (paths as strings)."""
        d = asdict(self)
        d["old"], d["new"] = str(self.old), str(self.new)
        d["problems"] = [[str(p), m] for p, m in self.problems]
        return d


def statistic_moved(old_interval: list[float] | None, new_statistic: float | None) -> bool:
    """True when ``new_statistic`` lies strictly outside ``old_interval = [low, high]``.

    False when either is missing (a skipped result has neither).
    """
    if old_interval is None or new_statistic is None:
        return False
    low, high = old_interval
    return bool(new_statistic < low or new_statistic > high)


def _pair_key(pair: tuple[str, str]) -> tuple:
    return (claim_sort_key(pair[0]), pair[1])


def compare_results(old: list[ClaimResult], new: list[ClaimResult], *, old_dir: str | Path = "old",
                    new_dir: str | Path = "new") -> Comparison:
    """Compare two lists of results (see :func:`compare_runs`)."""
    before = {(r.claim, r.model): r for r in old}
    after = {(r.claim, r.model): r for r in new}
    c = Comparison(old=Path(old_dir), new=Path(new_dir))
    for pair in sorted(before.keys() & after.keys(), key=_pair_key):
        a, b = before[pair], after[pair]
        change = PairChange(
            claim=pair[0], model=pair[1], old_verdict=a.verdict, new_verdict=b.verdict,
            old_statistic=a.statistic, new_statistic=b.statistic, old_interval=a.interval,
            new_interval=b.interval, statistic_name=b.statistic_name or a.statistic_name,
            new_reason=b.reason)
        if change.verdict_changed:
            c.verdict_changes.append(change)
        if change.moved:
            c.moved.append(change)
        if not change.verdict_changed and not change.moved:
            c.unchanged += 1
    c.added_pairs = sorted(after.keys() - before.keys(), key=_pair_key)
    c.removed_pairs = sorted(before.keys() - after.keys(), key=_pair_key)
    claims_before, claims_after = {k[0] for k in before}, {k[0] for k in after}
    models_before, models_after = {k[1] for k in before}, {k[1] for k in after}
    c.added_claims = sorted(claims_after - claims_before, key=claim_sort_key)
    c.removed_claims = sorted(claims_before - claims_after, key=claim_sort_key)
    c.added_models = sorted(models_after - models_before)
    c.removed_models = sorted(models_before - models_after)
    return c


def compare_runs(old_dir: str | Path, new_dir: str | Path) -> Comparison:
    """Compare the result files of run ``old_dir`` (earlier) with those of ``new_dir`` (later).

    Raises
    ------
    FileNotFoundError
        Either folder does not exist. Unreadable result files do not raise: they are listed in
        :attr:`Comparison.problems` and the others compared.
    """
    for d in (old_dir, new_dir):
        if not Path(d).is_dir():
            raise FileNotFoundError(f"run folder not found: {d}")
    old, old_errors = read_results(old_dir)
    new, new_errors = read_results(new_dir)
    c = compare_results(old, new, old_dir=old_dir, new_dir=new_dir)
    c.problems = list(old_errors) + list(new_errors)
    return c


# ---------------------------------------------------------------------- rendering
def _num(x: float | None) -> str:
    return fmt_num(x)


def _iv(x: list[float] | None) -> str:
    return fmt_interval(x)


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def summary_line(c: Comparison) -> str:
    """One line: counts of changed verdicts, moved statistics, added and removed pairs."""
    return (f"{len(c.verdict_changes)} verdict(s) changed, {len(c.moved)} statistic(s) moved "
            f"outside the earlier interval, {len(c.added_pairs)} result(s) added, "
            f"{len(c.removed_pairs)} removed, {c.unchanged} unchanged")


def to_markdown_lines(c: Comparison, *, heading: str = "##") -> list[str]:
    """The comparison as Markdown lines (no title), sections under ``heading``."""
    lines = [f"**{summary_line(c)}.**", ""]
    if c.verdict_changes:
        lines += [f"{heading} Verdicts that changed", "",
                  "| claim | model | before | now | statistic before | statistic now |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for ch in c.verdict_changes:
            now = ch.new_verdict + (f": {ch.new_reason}" if ch.new_reason else "")
            lines.append("| " + " | ".join(_cell(x) for x in (
                ch.claim, f"`{ch.model}`", ch.old_verdict, now,
                f"{_num(ch.old_statistic)} {_iv(ch.old_interval)}",
                f"{_num(ch.new_statistic)} {_iv(ch.new_interval)}")) + " |")
        lines.append("")
    if c.moved:
        lines += [f"{heading} Statistics that moved outside the earlier 95% interval", "",
                  "| claim | model | statistic | before [95% interval] | now [95% interval] |",
                  "| --- | --- | --- | --- | --- |"]
        for ch in c.moved:
            lines.append("| " + " | ".join(_cell(x) for x in (
                ch.claim, f"`{ch.model}`", ch.statistic_name,
                f"{_num(ch.old_statistic)} {_iv(ch.old_interval)}",
                f"{_num(ch.new_statistic)} {_iv(ch.new_interval)}")) + " |")
        lines.append("")
    added_removed = [
        ("Claims added", c.added_claims), ("Claims removed", c.removed_claims),
        ("Models added", [f"`{m}`" for m in c.added_models]),
        ("Models removed", [f"`{m}`" for m in c.removed_models]),
        ("Results added", [f"{a} · `{b}`" for a, b in c.added_pairs]),
        ("Results removed", [f"{a} · `{b}`" for a, b in c.removed_pairs]),
    ]
    if any(items for _, items in added_removed):
        lines += [f"{heading} Added and removed", ""]
        for label, items in added_removed:
            if items:
                lines.append(f"- {label}: {', '.join(items)}")
        lines.append("")
    if c.problems:
        lines += [f"{heading} Unreadable result files", ""]
        for path, msg in c.problems:
            lines.append(f"- `{path}`: {' '.join(msg.split())}")
        lines.append("")
    return lines


def to_markdown(c: Comparison) -> str:
    """The whole comparison as a Markdown document."""
    lines = [f"# Comparison: `{c.old.name}` \u2192 `{c.new.name}`", "",
             f"Earlier run: `{c.old}`; later run: `{c.new}`.", ""]
    return "\n".join(lines + to_markdown_lines(c)).rstrip() + "\n"


def comparison_paths(c: Comparison, out_dir: str | Path | None = None) -> tuple[Path, Path]:
    """``<out_dir>/comparison__<old run name>.md`` and ``.json`` (``out_dir`` defaults to the later
    run's folder)."""
    out = Path(out_dir) if out_dir is not None else c.new
    stem = f"comparison__{safe_name(c.old.resolve().name)}"
    return out / f"{stem}.md", out / f"{stem}.json"


def write_comparison(c: Comparison, out_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write :func:`to_markdown` and :meth:`Comparison.to_dict` atomically; returns both paths."""
    md, js = comparison_paths(c, out_dir)
    atomic_write_text(md, to_markdown(c))
    atomic_write_json(js, c.to_dict())
    return md, js
