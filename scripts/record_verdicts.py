"""Record the verdicts a run measured into claims/recorded_verdicts.json (for CI gating).

    .venv/bin/python scripts/record_verdicts.py runs/<time>-ci

Every small-tier claim and model that the run measured as not replicating is recorded under the run's
profile; replicated ones are removed from the record (they need none). Skipped results are left as
they were. Review the diff before committing: a record is a finding, never a way to make CI green.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.cache import atomic_write_json  # noqa: E402
from core.results import read_results  # noqa: E402

RECORDED = ROOT / "claims" / "recorded_verdicts.json"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    args = p.parse_args(argv)
    results, errors = read_results(args.run_dir)
    for path, msg in errors:
        print(f"skipping unreadable {path}: {msg}", file=sys.stderr)
    record = json.loads(RECORDED.read_text()) if RECORDED.exists() else {}
    changed = 0
    for r in results:
        if r.tier != "small" or r.verdict not in ("replicated", "contradicted", "inconclusive"):
            continue
        by_model = record.setdefault(r.profile, {}).setdefault(r.claim, {})
        before = by_model.get(r.model)
        if r.verdict == "replicated":
            by_model.pop(r.model, None)
        else:
            by_model[r.model] = r.verdict
        if by_model.get(r.model) != before:
            changed += 1
            print(f"{r.profile} {r.claim} {r.model}: {before} -> {by_model.get(r.model)}")
    for prof in record.values():
        for claim in [c for c, m in prof.items() if not m]:
            del prof[claim]
    atomic_write_json(RECORDED, record)
    print(f"{changed} change(s) written to {RECORDED.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
