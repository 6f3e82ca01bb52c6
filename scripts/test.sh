#!/usr/bin/env bash
# The test suite: unit and property tests of core/, then the claims on the small tier with the `ci`
# profile (verdicts gated by claims/recorded_verdicts.json). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The layers of core/ (import-linter contracts in pyproject.toml); a broken one is named and fails the run.
.venv/bin/lint-imports --no-cache
# Claims are gated on the ci-profile verdicts recorded in claims/recorded_verdicts.json.
exec .venv/bin/pytest -m "not gpu" --profile ci -p no:cacheprovider "$@"
