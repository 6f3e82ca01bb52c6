#!/usr/bin/env bash
# The test suite: unit and property tests of core/, then the claims on the small tier with the `ci`
# profile (verdicts gated by claims/recorded_verdicts.json). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# CI gates the claims on the small-tier models whose ci-profile verdicts are measured and recorded in
# claims/recorded_verdicts.json; minilm-l6 and tiny-vit-fmnist join once theirs are (see the issue).
exec .venv/bin/pytest -m "not gpu" --profile ci -p no:cacheprovider --models smollm2-135m "$@"
