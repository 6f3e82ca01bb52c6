#!/usr/bin/env bash
# Nightly verification: the full tier (the papers' own models, `-m gpu`) with the `paper` profile,
# into a new run folder under runs/nightly/, then the nightly summary: the comparison with the
# previous nightly run (verdicts that changed, statistics that moved outside the earlier 95%
# interval, claims and models added or removed), printed and written as comparison__<previous>.md
# and .json into the new run folder. Extra arguments go to pytest (e.g. -n 2, --models opt-1.3b).
# NIGHTLY_DEVICE (default cuda) and NIGHTLY_RESULTS (default runs/nightly) override the defaults.
#
# The nightly run measures: its experiments (ablation sweeps, MOD and BCL runs, activation statistics,
# clusterings) go to a fresh cache of their own, <run folder>/experiment-cache
# (NEURON_CLAIMS_EXPERIMENT_CACHE), removed when the run ends; the converted models, the parsed data and
# file digests stay in the shared cache (NEURON_CLAIMS_CACHE). Every result file records whether its
# experiment was computed or re-read (provenance.experiment.status), and the run ends by listing the
# results it re-read. NIGHTLY_REUSE_EXPERIMENTS=1 re-reads the shared experiment cache instead (the
# listing then names them); NIGHTLY_KEEP_EXPERIMENT_CACHE=1 keeps the fresh cache; a
# NEURON_CLAIMS_EXPERIMENT_CACHE already set is used as it is, and kept.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit $?
root="${NIGHTLY_RESULTS:-runs/nightly}"
run_dir="$(.venv/bin/python -c 'import sys; from core.report.history import new_run_dir; print(new_run_dir(sys.argv[1], "paper"))' "$root")" || exit $?
fresh=""
if [ "${NIGHTLY_REUSE_EXPERIMENTS:-0}" != 1 ] && [ -z "${NEURON_CLAIMS_EXPERIMENT_CACHE:-}" ]; then
  fresh="$run_dir/experiment-cache"
  mkdir -p "$fresh" || exit $?
  export NEURON_CLAIMS_EXPERIMENT_CACHE="$(cd "$fresh" && pwd)"
  [ "${NIGHTLY_KEEP_EXPERIMENT_CACHE:-0}" = 1 ] || trap 'rm -rf "$NEURON_CLAIMS_EXPERIMENT_CACHE"' EXIT
  echo "Experiments: computed afresh in $NEURON_CLAIMS_EXPERIMENT_CACHE (models from the shared cache)"
elif [ "${NIGHTLY_REUSE_EXPERIMENTS:-0}" = 1 ]; then
  echo "Experiments: NIGHTLY_REUSE_EXPERIMENTS=1, cached experiments are re-read (listed at the end)"
fi
.venv/bin/pytest claims/ -m gpu --profile paper --device "${NIGHTLY_DEVICE:-cuda}" \
  -p no:cacheprovider --run-dir "$run_dir" "$@"
status=$?
if [ -d "$run_dir/results" ]; then
  .venv/bin/python -m core.provenance "$run_dir" || status=$?
  .venv/bin/python -m core.report compare --previous "$run_dir" || status=$?
  echo "Report: ${run_dir}/report.html"
fi
exit $status
