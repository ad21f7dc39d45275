#!/usr/bin/env bash
# The demo: a local cluster, the dev data plane, the operator, and the example lineage end to end;
# then a v2 of the model line rolled out as a phased canary under traffic through the gateway.
#   hack/demo.sh        start everything, apply examples/, follow the lineage until v1 serves,
#                       apply examples/rollout/ and follow v2's rollout to Promoted or RolledBack
#   hack/demo.sh down   stop the operator, the data plane and the cluster
set -eEuo pipefail
cd "$(dirname "$0")/.."
CACHE=${TUGBOAT_CACHE:-$HOME/.cache/tugboat}
STATE=$CACHE/demo

# Stages: a numbered header each, its time in the summary, and on failure what to look at next.
T0=$SECONDS STAGES=() STAGE_TIMES=() STAGE_T0=0
STAGE_COUNT=5
stage() {  # stage TITLE: end the current stage, start the next
  stage_end
  STAGES+=("$1") STAGE_T0=$SECONDS
  echo "[demo ${#STAGES[@]}/$STAGE_COUNT +$((SECONDS - T0))s] $1"
}
stage_end() { if (( ${#STAGES[@]} > ${#STAGE_TIMES[@]} )); then STAGE_TIMES+=($((SECONDS - STAGE_T0))); fi; }
on_error() {
  [[ $BASHPID == "$$" ]] || return 0  # a command substitution failing: its caller reports it
  trap - ERR
  local current=setup logs=""
  (( ${#STAGES[@]} == 0 )) || current=${STAGES[-1]%% (*}
  echo "[demo] failed in stage ${#STAGES[@]}/$STAGE_COUNT ($current) after $((SECONDS - T0)) s," \
    "at line $1: $2" >&2
  for f in "$STATE/dataplane.log" "$STATE/operator.log"; do [[ -s $f ]] && logs+=" $f"; done
  [[ -z $logs ]] || echo "[demo] next: read the logs:$logs" >&2
  [[ -z ${KUBECONFIG:-} ]] || echo "[demo] next: KUBECONFIG=$KUBECONFIG kubectl get tugboat -A;" \
    "kubectl get events -A --field-selector type=Warning" >&2
  echo "[demo] next: make demo-down, then make demo again (the built tools and the Python" \
    "environment are kept)" >&2
}
trap 'on_error $LINENO "$BASH_COMMAND"' ERR

[[ ${1:-up} == down ]] || stage "Python environment (.ci/pyenv.sh; the first time 2-6 min: torch is large)"
VENV=${TUGBOAT_VENV:-$(bash .ci/pyenv.sh)}  # TUGBOAT_VENV: an environment made already
export PATH="$VENV/bin:$CACHE/bin:$PATH"
# This clone's code, whichever clone the environment's editable install points at.
export PYTHONPATH="$PWD/operator:$PWD/workloads${PYTHONPATH:+:$PYTHONPATH}"
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

stage "local cluster (tugboat dev up: usually 10-45 s)"
UP_OUT=$(tugboat dev up)  # its progress goes to stderr; a failure stops here with what to do next
eval "$(grep '^export ' <<<"$UP_OUT")"
UP=$SECONDS
echo "KUBECONFIG=$KUBECONFIG"

stage "dev data plane and operator (local Ray, MLflow, Prometheus, nginx gateway: usually 20-60 s)"

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
for i in $(seq 300); do
  [[ -n $(service_url prometheus) ]] && break
  kill -0 "$(cat "$STATE/dataplane.pid")" 2>/dev/null || { echo "[demo] the dev data plane exited:" >&2
    tail -n 20 "$STATE/dataplane.log" >&2; false; }
  (( i % 15 == 0 )) && echo "  still starting the data plane ($i s; MLflow's first start creates its database)"
  sleep 1
done
MLFLOW=$(service_url mlflow)
PROMETHEUS=$(service_url prometheus)
[[ -n $PROMETHEUS ]] || { echo "[demo] the dev data plane did not publish its services in 300 s" >&2; false; }
echo "MLflow: $MLFLOW  Prometheus: $PROMETHEUS"
for _ in $(seq 60); do [[ -s $STATE/dataplane/gateway/gateway.json ]] && break; sleep 1; done
echo "gateway (nginx, Gateway tugboat-gateway/tugboat): $(python -c "import json,sys; \
print(json.load(open(sys.argv[1]))['url'])" "$STATE/dataplane/gateway/gateway.json" 2>/dev/null || echo none)"

tugboat run --mlflow-uri "$MLFLOW" --prometheus-url "$PROMETHEUS" --artifact-root "$STATE/artifacts" \
  --metrics-port 18080 --health-port 18081 >"$STATE/operator.log" 2>&1 &
echo $! >"$STATE/operator.pid"
echo "operator started (log: $STATE/operator.log, metrics: http://127.0.0.1:18080/metrics)"

stage "the example lineage: Tenants, TrainingRun moe-arith, ModelRelease moe-arith-v1, two AgentDeployments\
 (training on 2 CPU cores: usually 2-4 min)"
kubectl apply -f examples/00-namespaces.yaml
# Each tenant's caller key, before any serving pod starts (pods read the keys file when they start).
for ns in team-a team-b; do
  (umask 077; tugboat dev api-key -n "$ns" --tenant "$ns" --name demo >"$STATE/api-key-$ns")
done
kubectl apply -f examples/
kubectl wait --for=condition=Valid tenants,trainingruns,modelreleases,agentdeployments --all -A \
  --timeout=120s >/dev/null

follow() {  # follow KIND NAME NS: print each new status line until it serves; fail on a final failure
  local kind=$1 name=$2 ns=$3 last="" line i
  for i in $(seq 900); do
    line=$(kubectl get "$kind" "$name" -n "$ns" --no-headers \
      -o custom-columns='PHASE:.status.phase,MESSAGE:.status.message' 2>/dev/null || true)
    [[ $line != "$last" ]] && echo "  [+$((SECONDS - T0))s] $kind/$name ($ns): $line" && last=$line
    (( i % 30 == 0 )) && echo "  [+$((SECONDS - T0))s] $kind/$name still ${line%% *} ($((2 * i)) s)"
    case $line in
      Succeeded*|Ready*|Promoted*|Serving*) return 0;;
      Failed*|Invalid*|RolledBack*)
        echo "[demo] $kind/$name ended ${line%% *}; next: kubectl describe $kind $name -n $ns" >&2; return 1;;
    esac
    sleep 2
  done
  echo "[demo] $kind/$name did not get there in 30 min (last: ${line:-no status});" \
    "next: kubectl describe $kind $name -n $ns" >&2
  return 1
}
elapsed() { echo "$((SECONDS - UP)) s after the cluster was up, $SECONDS s in all"; }
echo "following the lineage (Ctrl-C stops following; the demo keeps running):"
follow trainingrun moe-arith ml-platform
follow modelrelease moe-arith-v1 ml-platform
follow agentdeployment arith-agent team-b
follow agentdeployment arith-agent team-a
echo "v1 serves both tenants: $(elapsed)"
stage "moe-arith-v2 as a phased canary under traffic (team-b, then team-a; usually 3-5 min)"
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
stage_end
echo "demo took $(elapsed):"
for i in "${!STAGES[@]}"; do printf '  %4d s  %s\n' "${STAGE_TIMES[i]}" "${STAGES[i]%% (*}"; done
echo "Next: export KUBECONFIG=$KUBECONFIG; kubectl tugboat status mr moe-arith-v2 -n ml-platform"
echo "MLflow UI: $MLFLOW   Prometheus: $PROMETHEUS   Stop: make demo-down"
exit "$ROLLOUT"
