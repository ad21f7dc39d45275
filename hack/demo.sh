#!/usr/bin/env bash
# The demo: a local cluster, the dev data plane, the operator, and the example lineage end to end;
# then a v2 of the model line rolled out as a phased canary under traffic through the gateway.
#   hack/demo.sh        start everything, apply examples/, follow the lineage until v1 serves,
#                       apply examples/rollout/ and follow v2's rollout to Promoted or RolledBack
#   hack/demo.sh down   stop the operator, the data plane and the cluster
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TUGBOAT_VENV:-$(bash .ci/pyenv.sh)}  # TUGBOAT_VENV: an environment made already
CACHE=${TUGBOAT_CACHE:-$HOME/.cache/tugboat}
export PATH="$VENV/bin:$CACHE/bin:$PATH"
# This clone's code, whichever clone the environment's editable install points at.
export PYTHONPATH="$PWD/operator:$PWD/workloads${PYTHONPATH:+:$PYTHONPATH}"
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
UP=$SECONDS
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

kubectl apply -f examples/00-namespaces.yaml
# Each tenant's caller key, before any serving pod starts (pods read the keys file when they start).
for ns in team-a team-b; do
  (umask 077; tugboat dev api-key -n "$ns" --tenant "$ns" --name demo >"$STATE/api-key-$ns")
done
kubectl apply -f examples/
kubectl wait --for=condition=Valid tenants,trainingruns,modelreleases,agentdeployments --all -A \
  --timeout=120s >/dev/null

follow() {  # follow KIND NAME NS: print each new status line until Ready/terminal
  local kind=$1 name=$2 ns=$3 last="" line
  for _ in $(seq 900); do
    line=$(kubectl get "$kind" "$name" -n "$ns" --no-headers \
      -o custom-columns='PHASE:.status.phase,MESSAGE:.status.message' 2>/dev/null || true)
    [[ $line != "$last" ]] && echo "  $kind/$name ($ns): $line" && last=$line
    case $line in Succeeded*|Ready*|Promoted*|Serving*|Failed*|Invalid*|Degraded*|RolledBack*) return 0;; esac
    sleep 2
  done
}
elapsed() { echo "$((SECONDS - UP)) s after the cluster was up, $SECONDS s in all"; }
echo "following the lineage (Ctrl-C stops following; the demo keeps running):"
follow trainingrun moe-arith ml-platform
follow modelrelease moe-arith-v1 ml-platform
follow agentdeployment arith-agent team-b
follow agentdeployment arith-agent team-a
echo "v1 serves both tenants: $(elapsed)"
echo
kubectl get tugboat -A
echo

# Part two: a v2 of the same line takes the only road to traffic, a phased canary, wave by wave
# (team-b in wave 0, team-a in wave 1), judged by Prometheus while traffic flows through nginx.
GATEWAY=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['url'])" \
  "$STATE/dataplane/gateway/gateway.json")
TEAMS=(team-b=arith-b.example.test="$STATE/api-key-team-b" team-a=arith-a.example.test="$STATE/api-key-team-a")
for ns in team-b team-a; do  # the routes must be programmed before traffic goes through them
  kubectl wait --for=jsonpath='{.status.route.accepted}'=true agentdeployment/arith-agent -n "$ns" \
    --timeout=120s >/dev/null
done
python hack/demo_rollout.py ask --url "$GATEWAY" --host arith-a.example.test --tenant team-a \
  --api-key-file "$STATE/api-key-team-a" || true
echo
# Bounded (15 min at most) and stopped as soon as the rollout has ended.
python hack/demo_rollout.py traffic --url "$GATEWAY" --seconds 900 --rate 6 "${TEAMS[@]}" \
  >"$STATE/traffic.txt" 2>"$STATE/traffic.log" &
TRAFFIC=$!
trap 'kill $TRAFFIC 2>/dev/null || true' EXIT
echo "traffic: 6 requests/s to each tenant through the gateway $GATEWAY (report: $STATE/traffic.txt)"
kubectl apply -f examples/rollout/
echo "following moe-arith-v2: export, signing, verification, then per target step, weight, state" \
  "and the last analysis value of each check:"
ROLLOUT=0
python hack/demo_rollout.py follow --release moe-arith-v2 -n ml-platform team-b team-a || ROLLOUT=$?
echo "moe-arith-v2 rollout ended: $(elapsed)"
kill -TERM $TRAFFIC 2>/dev/null || true
wait $TRAFFIC || true
trap - EXIT
echo
kubectl tugboat lineage -A
echo
echo "traffic during the rollout, per tenant, release and track:"
cat "$STATE/traffic.txt"
echo
python hack/demo_rollout.py ask --url "$GATEWAY" --host arith-a.example.test --tenant team-a \
  --api-key-file "$STATE/api-key-team-a" || true
echo
echo "demo took $(elapsed)"
echo "Next: export KUBECONFIG=$KUBECONFIG; kubectl tugboat status mr moe-arith-v2 -n ml-platform"
echo "MLflow UI: $MLFLOW   Prometheus: $PROMETHEUS   Stop: make demo-down"
exit "$ROLLOUT"
