#!/usr/bin/env bash
# Benchmarks: each script measures its own baseline in the same run and reports ratios
# (never pass/fail). Results land in tests/bench/results/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(bash .ci/pyenv.sh)
# This clone's code, whichever clone the shared environment's editable install points at.
export PYTHONPATH="$PWD/operator:$PWD/workloads${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$VENV/bin:${TUGBOAT_CACHE:-$HOME/.cache/tugboat}/bin:$PATH"
mkdir -p tests/bench/results
for script in tests/bench/bench_*.py; do
  echo "=== $script"
  python "$script" "$@"
done
