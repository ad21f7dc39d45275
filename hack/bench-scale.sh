#!/usr/bin/env bash
# Scale benchmark (issue #12): minutes to hours, so not part of `make bench` (hack/bench.sh runs
# tests/bench/bench_*.py; this one is scale_bench.py). Results: tests/bench/results/scale.*
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(bash .ci/pyenv.sh)
export PATH="$VENV/bin:${TUGBOAT_CACHE:-$HOME/.cache/tugboat}/bin:$PATH"
export PYTHONPATH="$PWD/operator:$PWD/workloads"
exec python tests/bench/scale_bench.py "$@"
