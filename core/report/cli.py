"""The report's command line: ``python -m core.report`` (see :func:`main`).

``python -m core.report RUN_DIR`` re-renders both reports of a run
(:func:`core.report.markdown.render_report`) and prints their paths; ``python -m core.report compare
OLD NEW`` (or ``compare --previous NEW``) prints the comparison of two runs
(:mod:`core.report.compare`) and writes it into NEW.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.report.compare import compare_runs, to_markdown, write_comparison
from core.report.history import HISTORY_LENGTH, previous_run
from core.report.markdown import render_report


# ---------------------------------------------------------------------- command line
def _compare_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.report compare",
        description="Compare two runs: verdicts that changed, statistics that moved outside the "
                    "earlier 95%% interval, claims and models added and removed (the nightly "
                    "summary). Prints it and writes comparison__<OLD>.md/.json into NEW.",
    )
    parser.add_argument("old", type=Path, nargs="?", help="the earlier run folder")
    parser.add_argument("new", type=Path, help="the later run folder")
    parser.add_argument("--previous", action="store_true",
                        help="compare NEW with the latest earlier run of its profile beside it "
                             "(instead of naming OLD)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the comparison files (default: NEW)")
    args = parser.parse_args(argv)
    if not args.new.is_dir():
        parser.error(f"run folder not found: {args.new}")
    if args.previous == (args.old is not None):
        parser.error("give either OLD NEW or --previous NEW")
    old = args.old
    if args.previous:
        prev = previous_run(args.new)
        if prev is None:
            print(f"no earlier run of the same profile beside {args.new}; nothing to compare")
            return 0
        old = prev.path
    if not old.is_dir():
        parser.error(f"run folder not found: {old}")
    c = compare_runs(old, args.new)
    md, js = write_comparison(c, args.out)
    print(to_markdown(c), end="")
    print(f"\nwritten: {md} and {js}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line.

    ``python -m core.report RUN_DIR [--no-history]``: re-render ``report.md`` and ``report.html`` of a
    run from its files and print their paths.

    ``python -m core.report compare OLD NEW`` (or ``compare --previous NEW``): print the comparison
    of two runs and write it into NEW (:mod:`core.report.compare`).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":
        return _compare_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m core.report",
        description="Render report.md, report.html and the figures of a neuron-claims run folder. "
                    "'python -m core.report compare OLD NEW' compares two runs.",
    )
    parser.add_argument("run_dir", type=Path, help="the run folder (holds results/, curves/)")
    parser.add_argument("--no-history", action="store_true",
                        help="leave out the history and the comparison with the previous run")
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        parser.error(f"run folder not found: {args.run_dir}")
    md, html = render_report(args.run_dir, history=0 if args.no_history else HISTORY_LENGTH)
    print(md)
    print(html)
    return 0


if __name__ == "__main__":
    sys.exit(main())
