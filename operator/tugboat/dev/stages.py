"""kwok `Stage` documents for the dev cluster: how fake nodes and pods move through their lives. Pure.

Decides which pod transitions kwok fakes and which it leaves to the dev data plane, which runs the
pods' commands for real on this machine:
- pods of Jobs labelled `tugboat.dev/workload` are never completed by kwok; the data plane writes
  their terminal state from the real exit code;
- pods labelled `tugboat.dev/workload=serve`, and the chart's operator pods, start Running but not
  Ready, as a kubelet would before its first readiness probe passes; the data plane flips Ready
  once the process answers its probe.
Every other pod gets kwok's usual fake lifecycle. Supplying any Stage to kwokctl replaces all of its
defaults, so the node stages are here too. Must not talk to a cluster or read the environment.
"""

from __future__ import annotations

WORKLOAD_LABEL = "tugboat.dev/workload"
SERVE_WORKLOAD = "serve"
# The chart's operator pods, which the data plane also runs on the host (dataplane/operator_pods.py).
NAME_LABEL, COMPONENT_LABEL = "app.kubernetes.io/name", "app.kubernetes.io/component"
OPERATOR_NAME, OPERATOR_COMPONENT = "tugboat", "operator"
OPERATOR_SELECTOR = f"{NAME_LABEL}={OPERATOR_NAME},{COMPONENT_LABEL}={OPERATOR_COMPONENT}"

# How often a Node's conditions are re-stamped. kwok keeps nodes alive through Leases
# (kwokctl passes --node-lease-duration-seconds), so conditions only need a rare refresh,
# as in kwokctl's own lease-mode default. Rarer writes leave the 2 cores to real work.
NODE_HEARTBEAT_MS = 600_000
NODE_HEARTBEAT_JITTER_MS = 610_000

_NOT_DELETING = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}


def _label(key: str) -> str:
    return f'.metadata.labels["{key}"]'


def _stage(name: str, kind: str, expressions: list[dict], next_: dict, **extra) -> dict:
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": kind},
            "selector": {"matchExpressions": expressions},
            **extra,
            "next": next_,
        },
    }


# Node conditions come from kwok's NodeConditions helper (Ready=True, no pressure), re-stamped.
_NODE_CONDITIONS = """\
{{ $now := Now }}
{{ $since := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- type: {{ .type | Quote }}
  status: {{ .status | Quote }}
  reason: {{ .reason | Quote }}
  message: {{ .message | Quote }}
  lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $since | Quote }}
{{ end }}
"""

# Keeps what tugboat.dev.nodes declared (loopback addresses, allocatable with nvidia.com/gpu)
# and fills only what is missing.
_NODE_INITIALIZE = _NODE_CONDITIONS + """\
{{ if not .status.addresses }}
addresses:
{{ with NodeIP }}
- type: InternalIP
  address: {{ . | Quote }}
{{ end }}
{{ end }}
{{ with NodePort }}
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ . }}
{{ end }}
allocatable:
{{ with .status.allocatable }}{{ YAML . 1 }}{{ else }}
  cpu: "32"
  memory: 128Gi
  pods: "110"
{{ end }}
capacity:
{{ with .status.capacity }}{{ YAML . 1 }}{{ else }}
  cpu: "32"
  memory: 128Gi
  pods: "110"
{{ end }}
nodeInfo:
  architecture: amd64
  operatingSystem: linux
  kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
  kubeProxyVersion: {{ printf "kwok-%s" Version | Quote }}
  containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
  kernelVersion: {{ printf "kwok-%s" Version | Quote }}
  osImage: ""
  machineID: ""
  bootID: ""
  systemUUID: ""
phase: Running
"""


def _pod_running_template(ready: bool) -> str:
    """Status of a pod whose containers have started; Ready only when `ready`."""
    flag = "true" if ready else "false"
    cond = '"True"' if ready else '"False"'
    unready = "" if ready else "  reason: ContainersNotReady\n  message: readiness probe has not passed yet\n"
    return f"""\
{{{{ $now := Now }}}}
conditions:
- type: Initialized
  status: "True"
  lastTransitionTime: {{{{ $now | Quote }}}}
- type: ContainersReady
  status: {cond}
  lastTransitionTime: {{{{ $now | Quote }}}}
{unready}- type: Ready
  status: {cond}
  lastTransitionTime: {{{{ $now | Quote }}}}
{unready}{{{{ range .spec.readinessGates }}}}
- type: {{{{ .conditionType | Quote }}}}
  status: "True"
  lastTransitionTime: {{{{ $now | Quote }}}}
{{{{ end }}}}
containerStatuses:
{{{{ range .spec.containers }}}}
- name: {{{{ .name | Quote }}}}
  image: {{{{ .image | Quote }}}}
  ready: {flag}
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{{{ $now | Quote }}}}
{{{{ end }}}}
initContainerStatuses:
{{{{ range .spec.initContainers }}}}
- name: {{{{ .name | Quote }}}}
  image: {{{{ .image | Quote }}}}
  ready: true
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{{{ $now | Quote }}}}
      finishedAt: {{{{ $now | Quote }}}}
{{{{ end }}}}
{{{{ with NodeIPsWith .spec.nodeName }}}}
hostIP: {{{{ index . 0 | Quote }}}}
hostIPs:
{{{{ range . }}}}
- ip: {{{{ . | Quote }}}}
{{{{ end }}}}
{{{{ end }}}}
{{{{ with PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
( or .metadata.name "" ) ( or .metadata.namespace "" ) }}}}
podIP: {{{{ index . 0 | Quote }}}}
podIPs:
{{{{ range . }}}}
- ip: {{{{ . | Quote }}}}
{{{{ end }}}}
{{{{ end }}}}
phase: Running
startTime: {{{{ $now | Quote }}}}
"""


_POD_SUCCEEDED = """\
{{ $now := Now }}
phase: Succeeded
conditions:
- type: Ready
  status: "False"
  reason: PodCompleted
  lastTransitionTime: {{ $now | Quote }}
- type: ContainersReady
  status: "False"
  reason: PodCompleted
  lastTransitionTime: {{ $now | Quote }}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  started: false
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
"""


def _pending_unstarted(extra: list[dict]) -> list[dict]:
    return [
        _NOT_DELETING,
        {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
        {"key": '.status.conditions.[] | select( .type == "Ready" ) | .status',
         "operator": "NotIn", "values": ["True"]},
        *extra,
    ]


def node_stages() -> list[dict]:
    node_not_ready = {"key": '.status.conditions.[] | select( .type == "Ready" ) | .status',
                      "operator": "NotIn", "values": ["True"]}
    node_ready = {"key": '.status.conditions.[] | select( .type == "Ready" ) | .status',
                  "operator": "In", "values": ["True"]}
    return [
        _stage("node-initialize", "Node", [node_not_ready], {"statusTemplate": _NODE_INITIALIZE}),
        _stage("node-heartbeat", "Node",
               [{"key": ".status.phase", "operator": "In", "values": ["Running"]}, node_ready],
               {"statusTemplate": _NODE_CONDITIONS},
               delay={"durationMilliseconds": NODE_HEARTBEAT_MS,
                      "jitterDurationMilliseconds": NODE_HEARTBEAT_JITTER_MS},
               immediateNextStage=True),
    ]


def _is(label: str, value: str, yes: bool = True) -> dict:
    return {"key": _label(label), "operator": "In" if yes else "NotIn", "values": [value]}


def pod_stages() -> list[dict]:
    not_serve = _is(WORKLOAD_LABEL, SERVE_WORKLOAD, False)
    ready = {"statusTemplate": _pod_running_template(ready=True)}
    unready = {"statusTemplate": _pod_running_template(ready=False)}
    # Selectors only AND: "not the chart's operator" is "not component=operator", or
    # "component=operator but another name".
    return [
        _stage("pod-ready", "Pod",
               _pending_unstarted([not_serve, _is(COMPONENT_LABEL, OPERATOR_COMPONENT, False)]), ready),
        _stage("pod-ready-other-operator", "Pod", _pending_unstarted([
            not_serve, _is(COMPONENT_LABEL, OPERATOR_COMPONENT), _is(NAME_LABEL, OPERATOR_NAME, False)]),
            ready),
        _stage("pod-ready-serve", "Pod", _pending_unstarted([_is(WORKLOAD_LABEL, SERVE_WORKLOAD)]), unready),
        _stage("pod-ready-tugboat-operator", "Pod", _pending_unstarted([
            not_serve, _is(COMPONENT_LABEL, OPERATOR_COMPONENT), _is(NAME_LABEL, OPERATOR_NAME)]),
            unready),
        _stage("pod-complete", "Pod", [
            _NOT_DELETING,
            {"key": ".status.phase", "operator": "In", "values": ["Running"]},
            {"key": ".metadata.ownerReferences.[].kind", "operator": "In", "values": ["Job"]},
            # The data plane runs these for real and reports their actual exit code.
            {"key": _label(WORKLOAD_LABEL), "operator": "DoesNotExist"},
        ], {"statusTemplate": _POD_SUCCEEDED}),
        _stage("pod-delete", "Pod",
               [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}],
               {"delete": True}),
    ]


def build_stages() -> list[dict]:
    """Every Stage kwok needs, in the order kwokctl's defaults come: nodes first, then pods."""
    return [*node_stages(), *pod_stages()]
