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
    log "building Kubernetes $KUBE_VERSION (first time: 15-30 min on 2 cores)"
    local ldf="-s -w" p
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldf+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$KUBE_MINOR -X $p.gitTreeState=clean"
      ldf+=" -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=1970-01-01T00:00:00Z"
    done
    mkdir -p "$out.tmp"
    (cd "$HERE/tools/kube" && go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags="$ldf" -o "$out.tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
    rm -rf "$out" && mv "$out.tmp" "$out"
  fi
  link "$out" kube-apiserver kube-controller-manager kube-scheduler kubectl
}

build_etcd() {
  local out=$CACHE/etcd-$ETCD_VERSION
  if ! have "$out" "./etcd --version" "etcd Version: ${ETCD_VERSION#v}" etcd etcdctl; then
    log "building etcd $ETCD_VERSION"
    local ldf="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"
    mkdir -p "$out.tmp"
    (cd "$HERE/tools/etcd" && go build -trimpath -ldflags="$ldf" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3 \
      && go build -trimpath -ldflags="$ldf" -o "$out.tmp/etcdctl" go.etcd.io/etcd/etcdctl/v3)
    rm -rf "$out" && mv "$out.tmp" "$out"
  fi
  link "$out" etcd etcdctl
}

build_kwok() {
  local out=$CACHE/kwok-$KWOK_VERSION
  if ! have "$out" "./kwokctl --version" "${KWOK_VERSION#v}" kwok kwokctl; then
    log "building kwok $KWOK_VERSION"
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    GOBIN=$out.tmp GOFLAGS= go install -trimpath \
      -ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}" \
      "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
    rm -rf "$out" && mv "$out.tmp" "$out"
  fi
  link "$out" kwok kwokctl
}

build_helm() {
  local out=$CACHE/helm-$HELM_VERSION
  if ! have "$out" "./helm version --short" "$HELM_VERSION" helm; then
    log "building helm $HELM_VERSION"
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    local h=helm.sh/helm/v3
    GOBIN=$out.tmp GOFLAGS= go install -trimpath -ldflags="-s -w -X $h/internal/version.version=$HELM_VERSION \
      -X $h/pkg/chartutil.k8sVersionMajor=1 -X $h/pkg/chartutil.k8sVersionMinor=$KUBE_MINOR \
      -X $h/pkg/lint/rules.k8sVersionMajor=1 -X $h/pkg/lint/rules.k8sVersionMinor=$KUBE_MINOR" \
      "$h/cmd/helm@$HELM_VERSION"
    rm -rf "$out" && mv "$out.tmp" "$out"
  fi
  link "$out" helm
}

start=$SECONDS
for c in ${*:-kube etcd kwok helm}; do "build_$c"; done
log "tools ready in $BIN ($((SECONDS - start)) s)"
