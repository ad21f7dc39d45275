"""An HTTPRoute's backendRefs -> weighted pod addresses, through Services, pods and EndpointSlices. Pure.

Decides, per backendRef: whether it resolves (a core Service, in the route's namespace or in one
whose ReferenceGrant admits HTTPRoutes from it, with the referenced port), with the spec's
reasons (InvalidKind, RefNotPermitted, BackendNotFound); and which endpoints serve it.
For a Service with a selector, the endpoints are what the EndpointSlice controller would write:
its Ready, Running pods' IPs on the Service port's targetPort (a container port name or a
number). They are computed here because the API server refuses loopback addresses in an
EndpointSlice ("may not be in the loopback range"), so the controller-manager cannot store the
dev cluster's 127.x pod IPs there. A Service without a selector takes the ready endpoints of its
own EndpointSlices. Either way only loopback addresses (127.0.0.0/8) are ever targets: any other
is dropped and reported, so a 10.x pod IP, a node subnet or a cluster IP never receives a byte.
Must not read the cluster: every object comes in as a dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..loopback import is_loopback
from .attach import GROUP

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class Backend:
    """One backendRef, resolved. `reason` is ResolvedRefs when it resolved."""

    name: str               # ns/service:port, for the debug header and messages
    weight: int
    reason: str
    message: str = ""
    addresses: tuple[str, ...] = ()          # ready "ip:port" targets, loopback only
    dropped: tuple[str, ...] = field(default=(), compare=False)  # refused non-loopback ones

    @property
    def resolved(self) -> bool:
        return self.reason == "ResolvedRefs"


@dataclass(frozen=True)
class Cluster:
    """What backends resolve against, indexed once per pass."""

    services: Mapping[tuple[str, str], Mapping]               # (ns, name) -> Service
    slices: Mapping[tuple[str, str], tuple[Mapping, ...]]     # (ns, service) -> EndpointSlices
    grants: Mapping[str, tuple[Mapping, ...]]                 # ns -> ReferenceGrants
    pods: Mapping[str, tuple[Mapping, ...]] = field(default_factory=dict)  # ns -> Pods

    @classmethod
    def index(cls, services: Iterable[Mapping], slices: Iterable[Mapping],
              grants: Iterable[Mapping], pods: Iterable[Mapping] = ()) -> Cluster:
        by_service: dict[tuple[str, str], list[Mapping]] = {}
        for s in slices:
            owner = (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
            if owner:
                by_service.setdefault((s["metadata"]["namespace"], owner), []).append(s)
        return cls({(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in services},
                   {k: tuple(v) for k, v in by_service.items()}, _by_namespace(grants), _by_namespace(pods))


def _by_namespace(objs: Iterable[Mapping]) -> dict[str, tuple[Mapping, ...]]:
    out: dict[str, list[Mapping]] = {}
    for obj in objs:
        out.setdefault(obj["metadata"]["namespace"], []).append(obj)
    return {k: tuple(v) for k, v in out.items()}


def grant_permits(grants: Iterable[Mapping], from_ns: str, service: str) -> bool:
    """A ReferenceGrant in the Service's namespace admits HTTPRoutes of `from_ns` to it."""
    for grant in grants:
        spec = grant.get("spec") or {}
        sources = any(f.get("group") == GROUP and f.get("kind") == "HTTPRoute"
                      and f.get("namespace") == from_ns for f in spec.get("from") or [])
        targets = any((t.get("group") or "") == "" and t.get("kind") == "Service"
                      and t.get("name") in (None, "", service) for t in spec.get("to") or [])
        if sources and targets:
            return True
    return False


def ready_addresses(slices: Iterable[Mapping], port_name: str) -> tuple[list[str], list[str]]:
    """(ready "ip:port" endpoints on the port named `port_name`, refused non-loopback ones)."""
    keep, dropped = [], []
    for s in slices:
        port = next((p.get("port") for p in s.get("ports") or [] if (p.get("name") or "") == port_name), None)
        if port is None:
            continue
        for endpoint in s.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue  # unset means ready (discovery.k8s.io/v1)
            for ip in (endpoint.get("addresses") or [])[:1]:
                (keep if is_loopback(ip) else dropped).append(f"{ip}:{port}")
    return sorted(set(keep)), sorted(set(dropped))


def _pod_ready(pod: Mapping) -> bool:
    status = pod.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return (not pod["metadata"].get("deletionTimestamp") and status.get("phase") == "Running"
            and conditions.get("Ready") == "True" and bool(status.get("podIP")))


def _target_port(pod: Mapping, target: int | str) -> int | None:
    if isinstance(target, int):
        return target
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


def pod_addresses(pods: Iterable[Mapping], selector: Mapping[str, str],
                  target: int | str) -> tuple[list[str], list[str]]:
    """What the EndpointSlice controller would list as ready: (loopback "ip:port", refused ones)."""
    keep, dropped = [], []
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()) or not _pod_ready(pod):
            continue
        port = _target_port(pod, target)
        if port is None:
            continue
        ip = pod["status"]["podIP"]
        (keep if is_loopback(ip) else dropped).append(f"{ip}:{port}")
    return sorted(set(keep)), sorted(set(dropped))


def resolve(ref: Mapping, route_ns: str, cluster: Cluster) -> Backend:
    ns = ref.get("namespace") or route_ns
    name, port = ref.get("name", ""), ref.get("port")
    label = f"{ns}/{name}:{port}"
    weight = int(ref.get("weight", 1))
    if (ref.get("group") or "") != "" or (ref.get("kind") or "Service") != "Service":
        return Backend(label, weight, "InvalidKind",
                       f"backendRef {ref.get('group') or 'core'}/{ref.get('kind')} {name}: only core "
                       "Services are supported")
    if ns != route_ns and not grant_permits(cluster.grants.get(ns, ()), route_ns, name):
        return Backend(label, weight, "RefNotPermitted",
                       f"backendRef Service {ns}/{name}: no ReferenceGrant in {ns} admits HTTPRoutes "
                       f"from {route_ns}")
    service = cluster.services.get((ns, name))
    if service is None:
        return Backend(label, weight, "BackendNotFound", f"backendRef Service {ns}/{name} not found")
    service_port = next((p for p in (service.get("spec") or {}).get("ports") or [] if p.get("port") == port),
                        None)
    if service_port is None:
        return Backend(label, weight, "BackendNotFound",
                       f"backendRef Service {ns}/{name} has no port {port}")
    selector = (service.get("spec") or {}).get("selector")
    if selector:
        target = service_port.get("targetPort") or service_port["port"]
        keep, dropped = pod_addresses(cluster.pods.get(ns, ()), selector, target)
    else:
        keep, dropped = ready_addresses(cluster.slices.get((ns, name), ()), service_port.get("name") or "")
    return Backend(label, weight, "ResolvedRefs", "", tuple(keep), tuple(dropped))
