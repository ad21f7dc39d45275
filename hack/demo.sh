#!/usr/bin/env bash
# The demo: a local cluster, the operator, and the example lineage, end to end.
#   hack/demo.sh        start everything and apply examples/
#   hack/demo.sh down   stop the operator and the cluster
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(bash .ci/pyenv.sh)
CACHE=${TUGBOAT_CACHE:-$HOME/.cache/tugboat}
export PATH="$VENV/bin:$CACHE/bin:$PATH"
STATE=$CACHE/demo
mkdir -p "$STATE"

stop_pid() { [[ -f $1 ]] && kill "$(cat "$1")" 2>/dev/null; rm -f "$1"; }

if [[ ${1:-up} == down ]]; then
  stop_pid "$STATE/operator.pid"
  tugboat dev down
  exit 0
fi

eval "$(tugboat dev up | grep '^export ')"
echo "KUBECONFIG=$KUBECONFIG"

stop_pid "$STATE/operator.pid"
tugboat run --metrics-port 18080 --health-port 18081 >"$STATE/operator.log" 2>&1 &
echo $! >"$STATE/operator.pid"
echo "operator started (log: $STATE/operator.log, metrics: http://127.0.0.1:18080/metrics)"

kubectl apply -f examples/
echo "waiting for the operator to judge every object..."
kubectl wait --for=condition=Valid tenants,trainingruns,modelreleases,agentdeployments --all -A --timeout=120s
echo
kubectl get tugboat -A
echo
echo "Next: export KUBECONFIG=$KUBECONFIG; kubectl describe tr -n ml-platform moe-arith"
echo "Stop: make demo-down"
