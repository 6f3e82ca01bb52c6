#!/usr/bin/env bash
# Nightly verification: the full tier (the papers' own models, `-m gpu`) with the `paper` profile,
# into a new run folder under runs/nightly/, then the nightly summary: the comparison with the
# previous nightly run (verdicts that changed, statistics that moved outside the earlier 95%
# interval, claims and models added or removed), printed and written as comparison__<previous>.md
# and .json into the new run folder. Extra arguments go to pytest (e.g. -n 2, --models opt-1.3b).
# NIGHTLY_DEVICE (default cuda) and NIGHTLY_RESULTS (default runs/nightly) override the defaults.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit $?
root="${NIGHTLY_RESULTS:-runs/nightly}"
run_dir="$(.venv/bin/python -c 'import sys; from core.report.history import new_run_dir; print(new_run_dir(sys.argv[1], "paper"))' "$root")" || exit $?
.venv/bin/pytest claims/ -m gpu --profile paper --device "${NIGHTLY_DEVICE:-cuda}" \
  -p no:cacheprovider --run-dir "$run_dir" "$@"
status=$?
if [ -d "$run_dir/results" ]; then
  .venv/bin/python -m core.report compare --previous "$run_dir" || status=$?
  echo "Report: ${run_dir}/report.html"
fi
exit $status
