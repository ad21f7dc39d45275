#!/usr/bin/env bash
# `make chaos`: the operator under faults on the real local cluster (tests/chaos, marker `chaos`).
# Bounded: every test has its own timeout; the whole suite aims at ~12 minutes on 2 cores.
#   TUGBOAT_TEST_GUARD="../shared/tools/loopback-only" bash hack/chaos.sh   (loopback only)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(bash .ci/pyenv.sh)
# This clone's code, whichever clone the shared environment's editable install points at.
export PYTHONPATH="$PWD/operator:$PWD/workloads${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$VENV/bin:${TUGBOAT_CACHE:-$HOME/.cache/tugboat}/bin:$PATH"
read -r -a guard <<<"${TUGBOAT_TEST_GUARD:-}"
set +e
# Arguments replace the default selection (all of tests/chaos), e.g. one module.
"${guard[@]}" python -m pytest -m chaos -s "${@:-tests/chaos}"
code=$?
set -e
if [[ $code == 5 ]]; then echo "pytest collected no chaos tests" >&2; exit 1; fi
exit $code
