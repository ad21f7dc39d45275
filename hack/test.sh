#!/usr/bin/env bash
# The test command: lint, layering contracts, CRD drift, then unit, workload, integration and e2e
# tests against real components. pytest's exit code 5 (no tests collected) counts as a failure.
#   TUGBOAT_TEST_GUARD="../shared/tools/loopback-only" bash hack/test.sh   (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(bash .ci/pyenv.sh)
# This clone's code, whichever clone the shared environment's editable install points at.
export PYTHONPATH="$PWD/operator:$PWD/workloads${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$VENV/bin:${TUGBOAT_CACHE:-$HOME/.cache/tugboat}/bin:$PATH"
ruff check operator workloads tests
lint-imports
tugboat crds --check crds --check charts/tugboat/crds
tugboat chart-policies --check
# CI sets TUGBOAT_TEST_GUARD to a command that watches the tests run (.ci/run: the loopback-only
# guard); a developer's machine has other traffic, so it is opt-in there. The installs above stay
# outside it (pyenv.sh's editable install asks the package index for setuptools).
read -r -a guard <<<"${TUGBOAT_TEST_GUARD:-}"
set +e
"${guard[@]}" python -m pytest "$@"
code=$?
set -e
if [[ $code == 5 ]]; then echo "pytest collected no tests" >&2; exit 1; fi
exit $code
