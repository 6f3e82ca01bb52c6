#!/usr/bin/env bash
# The main job: every claim on the small tier with the `small` profile, ending in the report.
# Extra arguments go to pytest (e.g. --profile ci for a quick run, --device cuda).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit $?
.venv/bin/pytest claims/ -m "not gpu" --profile small -p no:cacheprovider "$@"
status=$?
latest="$(ls -1td runs/*/ 2>/dev/null | head -n1)"
[ -n "$latest" ] && echo "Report: ${latest}report.md"
exit $status
