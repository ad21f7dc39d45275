#!/usr/bin/env bash
# The demo: a local cluster, the dev data plane, the operator, and the example lineage end to end.
#   hack/demo.sh        start everything, apply examples/, follow the lineage
#   hack/demo.sh down   stop the operator, the data plane and the cluster
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(bash .ci/pyenv.sh)
CACHE=${TUGBOAT_CACHE:-$HOME/.cache/tugboat}
export PATH="$VENV/bin:$CACHE/bin:$PATH"
STATE=$CACHE/demo
mkdir -p "$STATE"

stop_pid() {  # SIGTERM, then wait (up to 90 s) so what it started is gone before the cluster goes
  [[ -f $1 ]] || return 0
  local pid; pid=$(cat "$1"); rm -f "$1"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 90); do kill -0 "$pid" 2>/dev/null || return 0; sleep 1; done
}

if [[ ${1:-up} == down ]]; then
  stop_pid "$STATE/operator.pid"
  stop_pid "$STATE/dataplane.pid"
  tugboat dev down
  exit 0
fi

eval "$(tugboat dev up | grep '^export ')"
echo "KUBECONFIG=$KUBECONFIG"

stop_pid "$STATE/operator.pid"
stop_pid "$STATE/dataplane.pid"
rm -f "$STATE/dataplane/services.json" "$STATE/dataplane/gateway/gateway.json"
python -m tugboat.dev.dataplane --kubeconfig "$KUBECONFIG" --state "$STATE/dataplane" \
  >"$STATE/dataplane.log" 2>&1 &
echo $! >"$STATE/dataplane.pid"
echo "dev data plane starting: local Ray, MLflow, Prometheus and the gateway on 127.0.0.1 (log: $STATE/dataplane.log)"
service_url() {  # service_url NAME: its URL from services.json, empty until it is up
  python -c "import json,sys; print((json.load(open(sys.argv[1])).get(sys.argv[2]) or {}).get('url', ''))" \
    "$STATE/dataplane/services.json" "$1" 2>/dev/null || true
}
for _ in $(seq 300); do [[ -n $(service_url prometheus) ]] && break; sleep 1; done
MLFLOW=$(service_url mlflow)
PROMETHEUS=$(service_url prometheus)
echo "MLflow: $MLFLOW  Prometheus: $PROMETHEUS"
for _ in $(seq 60); do [[ -s $STATE/dataplane/gateway/gateway.json ]] && break; sleep 1; done
echo "gateway (nginx, Gateway tugboat-gateway/tugboat): $(python -c "import json,sys; \
print(json.load(open(sys.argv[1]))['url'])" "$STATE/dataplane/gateway/gateway.json" 2>/dev/null || echo none)"

tugboat run --mlflow-uri "$MLFLOW" --prometheus-url "$PROMETHEUS" --artifact-root "$STATE/artifacts" \
  --metrics-port 18080 --health-port 18081 >"$STATE/operator.log" 2>&1 &
echo $! >"$STATE/operator.pid"
echo "operator started (log: $STATE/operator.log, metrics: http://127.0.0.1:18080/metrics)"

kubectl apply -f examples/
kubectl wait --for=condition=Valid tenants,trainingruns,modelreleases,agentdeployments --all -A \
  --timeout=120s >/dev/null

follow() {  # follow KIND NAME NS: print each new status line until Ready/terminal
  local kind=$1 name=$2 ns=$3 last="" line
  for _ in $(seq 900); do
    line=$(kubectl get "$kind" "$name" -n "$ns" --no-headers \
      -o custom-columns='PHASE:.status.phase,MESSAGE:.status.message' 2>/dev/null || true)
    [[ $line != "$last" ]] && echo "  $kind/$name: $line" && last=$line
    case $line in Succeeded*|Ready*|Promoted*|Serving*|Failed*|Invalid*|Degraded*|RolledBack*) return 0;; esac
    sleep 2
  done
}
echo "following the lineage (Ctrl-C stops following; the demo keeps running):"
follow trainingrun moe-arith ml-platform
follow modelrelease moe-arith-v1 ml-platform
follow agentdeployment arith-agent team-a
echo
kubectl get tugboat -A
echo
kubectl tugboat lineage -A
echo
# The agent's pods run on the host, each bound to its loopback pod IP and container port.
ADDR=$(kubectl get pods -n team-a -l tugboat.dev/workload=serve -o jsonpath=\
'{.items[0].status.podIP}:{.items[0].spec.containers[0].ports[0].containerPort}' 2>/dev/null || true)
if [[ $ADDR == 127.* ]]; then
  echo "POST http://$ADDR/v1/generate {\"prompt\": \"3 5 7 9\", \"maxTokens\": 3}"
  python - "$ADDR" <<'PY' || true
import json, sys, urllib.request
req = urllib.request.Request(f"http://{sys.argv[1]}/v1/generate", method="POST",
                             data=json.dumps({"prompt": "3 5 7 9", "maxTokens": 3}).encode(),
                             headers={"Content-Type": "application/json", "X-Tenant": "team-a",
                                      "X-Cost-Center": "cc-1042"})
print(urllib.request.urlopen(req, timeout=30).read().decode())
PY
  echo
fi
echo "Next: export KUBECONFIG=$KUBECONFIG; kubectl describe tr -n ml-platform moe-arith"
echo "MLflow UI: $MLFLOW   Stop: make demo-down"
