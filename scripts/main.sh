#!/usr/bin/env bash
# The main job: every claim on the small tier with the `small` profile, ending in the report.
# Extra arguments go to pytest (e.g. --profile ci for a quick run, --device cuda).
# Your own model: `bash scripts/main.sh --models PATH_OR_ID` (a checkpoint folder, a .gguf file or a Hub
# id in the local Hugging Face cache) runs every claim of that model's kind and ends in its report.
set -uo pipefail
export NEURON_CLAIMS_CWD="$PWD"  # --models paths relative to where the command was typed
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit $?
.venv/bin/pytest claims/ -m "not gpu" --profile small -p no:cacheprovider "$@"
status=$?
latest="$(ls -1td runs/*/ 2>/dev/null | head -n1)"
[ -n "$latest" ] && echo "Report: ${latest}report.md"
exit $status
