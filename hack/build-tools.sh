#!/usr/bin/env bash
# Build the local control plane's binaries from the Go module proxy, once, into a cache outside
# the clone keyed by version; later runs (and CI on the same machine) reuse them.
#   etcd, etcdctl, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, kwokctl, helm
# Result: $TUGBOAT_CACHE/bin/<tool> symlinks to $TUGBOAT_CACHE/<component>-<version>/<tool>.
set -euo pipefail
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

KUBE_VERSION=v1.36.3 KUBE_MINOR=36
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.21.4

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${TUGBOAT_CACHE:-$HOME/.cache/tugboat}
BIN=$CACHE/bin
mkdir -p "$BIN"

log() { printf '[build-tools %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $1"; shift; local l; for l in "$@"; do log "  next: $l"; done; exit 1; }
PROXY_NEXT="check that the Go module proxy answers: go env GOPROXY; curl -sI \$(go env GOPROXY | cut -d, -f1)"

# Go must be new enough for the wrapper modules (GOTOOLCHAIN=local: no silent toolchain download).
command -v go >/dev/null || die "go is not installed" \
  "install Go $(sed -n 's/^go //p' "$HERE/tools/kube/go.mod") or newer (https://go.dev/dl), then run make tools again"
need=$(sed -n 's/^go //p' "$HERE/tools/kube/go.mod")
have_go=$(go env GOVERSION); have_go=${have_go#go}
[[ $(printf '%s\n%s\n' "$need" "$have_go" | sort -V | head -1) == "$need" ]] || die \
  "go $have_go is older than the $need that hack/tools/*/go.mod needs" "install Go $need or newer, then make tools"
avail=$(df -Pk "$CACHE" | awk 'NR==2 {print int($4 / 1048576)}')
(( avail >= 4 )) || log "warning: $avail GB free under $CACHE; a first build needs about 4 GB (binaries + Go's caches)"

# step NAME TOTAL CMD...: run a go build/install with -v, its whole output in $CACHE/build-NAME.log,
# and every 15 s a line saying how many packages are compiled (of TOTAL when known, 0 if not),
# how long it has taken and, once the rate is known, about how long is left.
step() {
  local name=$1 total=$2; shift 2
  local logf=$CACHE/build-$name.log t0=$SECONDS
  : >"$logf"
  set +e
  "$@" >>"$logf" 2>&1 &
  local pid=$!
  set -e
  progress "$name" "$total" "$t0" "$logf" "$pid"
  if ! wait "$pid"; then
    log "error: building $name failed after $((SECONDS - t0)) s; the last lines of $logf:"
    tail -n 15 "$logf" | sed 's/^/    /' >&2
    die "$name did not build" "$PROXY_NEXT" \
      "check free disk space (df -h $CACHE ~/.cache/go-build)" \
      "run make tools again: components already built are kept and reused"
  fi
}

progress() {  # progress NAME TOTAL T0 LOG PID: report on the growing log until the build ends
  local name=$1 total=$2 t0=$3 logf=$4 pid=$5 n msg dt left last=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    (( SECONDS - last >= 15 )) || continue
    last=$SECONDS
    n=$(grep -vc '^go: ' "$logf" || true); dt=$((SECONDS - t0))
    if (( total > 0 )); then
      (( n > total )) && n=$total
      msg="$name: $n/$total packages compiled ($((100 * n / total))%), ${dt} s"
      if (( n >= total / 20 && n < total )); then
        left=$(( dt * (total - n) / n ))
        if (( left < 90 )); then msg+=", about $left s left"; else msg+=", about $(( (left + 59) / 60 )) min left"; fi
        msg+=" (then linking)"
      elif (( n >= total )); then msg+=", linking"
      fi
    else
      msg="$name: $n packages compiled, ${dt} s"
    fi
    log "$msg"
  done
}

declare -A DONE  # component -> "built in N s" or "reused"
nth() { echo "[$idx/${#components[@]}]"; }  # this component's place in the run

# Skip a component whose binaries all exist and whose version probe says the pinned version.
have() {  # have DIR "probe cmd" expected tool...
  local dir=$1 probe=$2 want=$3; shift 3
  for t in "$@"; do [[ -x $dir/$t ]] || return 1; done
  (cd "$dir" && eval "$probe" 2>&1 | grep -q -- "$want")
}

link() {  # link DIR tool...
  local dir=$1; shift
  for t in "$@"; do ln -sfn "$dir/$t" "$BIN/$t"; done
}

build_kube() {
  local out=$CACHE/kube-$KUBE_VERSION
  if ! have "$out" "./kube-apiserver --version" "Kubernetes $KUBE_VERSION" \
      kube-apiserver kube-controller-manager kube-scheduler kubectl; then
    log "$(nth) building Kubernetes $KUBE_VERSION: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl"
    log "first time: 4-15 min on 2 cores (measured 4 min 21 s on a fresh 2-core machine); log: $CACHE/build-kube.log"
    local ldf="-s -w" p
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldf+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$KUBE_MINOR -X $p.gitTreeState=clean"
      ldf+=" -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=1970-01-01T00:00:00Z"
    done
    local tags=selinux,notest,grpcnotrace t0=$SECONDS total
    local cmds=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
    mkdir -p "$out.tmp"
    cd "$HERE/tools/kube"
    log "resolving packages (downloads the modules the first time, about 1 min)"
    total=$(go list -deps -tags=$tags "${cmds[@]}" | wc -l) || die "could not resolve the Kubernetes modules" \
      "$PROXY_NEXT" "run make tools again"
    step kube "$total" go build -v -trimpath -tags=$tags -ldflags="$ldf" -o "$out.tmp/" "${cmds[@]}"
    cd - >/dev/null
    rm -rf "$out" && mv "$out.tmp" "$out"
    DONE[kube]="$KUBE_VERSION built in $((SECONDS - t0)) s"
  else
    DONE[kube]="$KUBE_VERSION reused"
  fi
  link "$out" kube-apiserver kube-controller-manager kube-scheduler kubectl
}

build_etcd() {
  local out=$CACHE/etcd-$ETCD_VERSION
  if ! have "$out" "./etcd --version" "etcd Version: ${ETCD_VERSION#v}" etcd etcdctl; then
    log "$(nth) building etcd $ETCD_VERSION: etcd, etcdctl (first time: about 30 s)"
    local ldf="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" t0=$SECONDS total
    mkdir -p "$out.tmp"
    cd "$HERE/tools/etcd"
    total=$(go list -deps go.etcd.io/etcd/server/v3 | wc -l) || die "could not resolve the etcd modules" \
      "$PROXY_NEXT" "run make tools again"
    step etcd "$total" go build -v -trimpath -ldflags="$ldf" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
    step etcdctl 0 go build -v -trimpath -ldflags="$ldf" -o "$out.tmp/etcdctl" go.etcd.io/etcd/etcdctl/v3
    cd - >/dev/null
    rm -rf "$out" && mv "$out.tmp" "$out"
    DONE[etcd]="$ETCD_VERSION built in $((SECONDS - t0)) s"
  else
    DONE[etcd]="$ETCD_VERSION reused"
  fi
  link "$out" etcd etcdctl
}

build_kwok() {
  local out=$CACHE/kwok-$KWOK_VERSION
  if ! have "$out" "./kwokctl --version" "${KWOK_VERSION#v}" kwok kwokctl; then
    log "$(nth) building kwok $KWOK_VERSION: kwok, kwokctl (first time: about 1 min)"
    local t0=$SECONDS
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    GOBIN=$out.tmp GOFLAGS= step kwok 0 go install -v -trimpath \
      -ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}" \
      "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
    rm -rf "$out" && mv "$out.tmp" "$out"
    DONE[kwok]="$KWOK_VERSION built in $((SECONDS - t0)) s"
  else
    DONE[kwok]="$KWOK_VERSION reused"
  fi
  link "$out" kwok kwokctl
}

build_helm() {
  local out=$CACHE/helm-$HELM_VERSION
  if ! have "$out" "./helm version --short" "$HELM_VERSION" helm; then
    log "$(nth) building helm $HELM_VERSION (first time: about 1 min)"
    local t0=$SECONDS
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    local h=helm.sh/helm/v3
    GOBIN=$out.tmp GOFLAGS= step helm 0 go install -v -trimpath -ldflags="-s -w -X $h/internal/version.version=$HELM_VERSION \
      -X $h/pkg/chartutil.k8sVersionMajor=1 -X $h/pkg/chartutil.k8sVersionMinor=$KUBE_MINOR \
      -X $h/pkg/lint/rules.k8sVersionMajor=1 -X $h/pkg/lint/rules.k8sVersionMinor=$KUBE_MINOR" \
      "$h/cmd/helm@$HELM_VERSION"
    rm -rf "$out" && mv "$out.tmp" "$out"
    DONE[helm]="$HELM_VERSION built in $((SECONDS - t0)) s"
  else
    DONE[helm]="$HELM_VERSION reused"
  fi
  link "$out" helm
}

start=$SECONDS
components=(${*:-kube etcd kwok helm})
idx=0
for c in "${components[@]}"; do idx=$((idx + 1)); "build_$c"; done
log "tools ready in $BIN ($((SECONDS - start)) s):"
for c in "${components[@]}"; do log "  $(printf '%-5s' "$c") ${DONE[$c]}"; done
