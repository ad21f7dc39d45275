#!/usr/bin/env bash
# The test command: lint, layering contracts, CRD drift, then unit, workload, integration and e2e
# tests against real components. pytest's exit code 5 (no tests collected) counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(bash .ci/pyenv.sh)
export PATH="$VENV/bin:${TUGBOAT_CACHE:-$HOME/.cache/tugboat}/bin:$PATH"
ruff check operator workloads tests
lint-imports
tugboat crds --check crds --check charts/tugboat/crds
tugboat chart-policies --check
set +e
python -m pytest "$@"
code=$?
set -e
if [[ $code == 5 ]]; then echo "pytest collected no tests" >&2; exit 1; fi
exit $code
