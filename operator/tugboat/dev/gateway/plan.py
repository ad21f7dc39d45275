"""The cluster's Gateway API objects -> what nginx serves and what each object's status says. Pure.

Decides, for the GatewayClasses whose controllerName is ours, their Gateways and the HTTPRoutes
attached to them: per route rule one weighted split (each backendRef's weight spread over its
ready loopback endpoints; weight 0 takes no traffic; an unresolved backend's share answers 500
and a backend without ready endpoints answers 503, as the spec asks), per match one location
(Exact, or PathPrefix on path-element boundaries), per hostname one virtual server. Conflicting
matches go to the oldest route (then namespace/name), as the spec orders them. Features this
gateway does not implement (header/query/method matches, filters, regex paths) make the route
not Accepted (UnsupportedValue), never silently ignored.
Must not read the cluster or the clock: objects in, a Plan out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from math import gcd, lcm

from .attach import GROUP, Attachment, ParentVerdict, attach
from .backends import Backend, Cluster, resolve

INVALID_BACKEND_STATUS = 500
NO_ENDPOINTS_STATUS = 503


@dataclass(frozen=True)
class Target:
    """One server of a rule's upstream: a pod address, or a local answer with `status`."""

    weight: int
    backend: str
    address: str | None = None
    status: int = 0


@dataclass(frozen=True)
class Location:
    exact: bool
    path: str
    upstream: str | None   # None: no backend takes traffic, answer 500
    route: str


@dataclass(frozen=True)
class VirtualServer:
    hostname: str | None   # None: any host (the default server)
    locations: tuple[Location, ...]


@dataclass(frozen=True)
class Routing:
    servers: tuple[VirtualServer, ...]
    upstreams: Mapping[str, tuple[Target, ...]]


@dataclass(frozen=True)
class RouteOutcome:
    """Per parentRef of ours: the verdict; the route-wide backend resolution."""

    parents: tuple[tuple[Mapping, ParentVerdict], ...]
    unsupported: str | None
    backends: tuple[Backend, ...]


@dataclass(frozen=True)
class Plan:
    routing: Routing
    classes: tuple[Mapping, ...]                       # our accepted GatewayClasses
    gateways: tuple[Mapping, ...]                      # Gateways of those classes
    routes: Mapping[tuple[str, str], RouteOutcome]     # (ns, name) -> outcome, routes with our parents
    attached: Mapping[tuple[str, str, str], int] = field(default_factory=dict)  # (ns, gw, listener)


@dataclass(frozen=True)
class Observed:
    controller_name: str
    gateway_classes: Sequence[Mapping]
    gateways: Sequence[Mapping]
    routes: Sequence[Mapping]
    services: Sequence[Mapping]
    endpoint_slices: Sequence[Mapping]
    reference_grants: Sequence[Mapping]
    namespaces: Sequence[Mapping]
    pods: Sequence[Mapping] = ()


def _key(obj: Mapping) -> tuple[str, str]:
    return obj["metadata"].get("namespace") or "", obj["metadata"]["name"]


def upstream_name(route: Mapping, rule_index: int) -> str:
    ns, name = _key(route)
    return f"rule-{hashlib.sha256(f'{ns}/{name}'.encode()).hexdigest()[:10]}-{rule_index}"


def unsupported_feature(route: Mapping) -> str | None:
    """The first field of the route this gateway does not implement, or None."""
    for i, rule in enumerate(route["spec"].get("rules") or []):
        if rule.get("filters"):
            return f"spec.rules[{i}].filters"
        for j, ref in enumerate(rule.get("backendRefs") or []):
            if ref.get("filters"):
                return f"spec.rules[{i}].backendRefs[{j}].filters"
        for j, match in enumerate(rule.get("matches") or []):
            for key in ("headers", "queryParams", "method"):
                if match.get(key):
                    return f"spec.rules[{i}].matches[{j}].{key}"
            if (match.get("path") or {}).get("type", "PathPrefix") not in ("PathPrefix", "Exact"):
                return f"spec.rules[{i}].matches[{j}].path.type"
    return None


def split(backends: Sequence[Backend]) -> tuple[Target, ...]:
    """Integer server weights in the proportion of the backendRefs' weights, smallest terms."""
    weighted = [b for b in backends if b.weight > 0]
    scale = lcm(*(len(b.addresses) for b in weighted if b.resolved and b.addresses)) if weighted else 1
    targets: list[Target] = []
    for b in weighted:
        if not b.resolved:
            targets.append(Target(b.weight * scale, b.name, status=INVALID_BACKEND_STATUS))
        elif not b.addresses:
            targets.append(Target(b.weight * scale, b.name, status=NO_ENDPOINTS_STATUS))
        else:
            share = b.weight * scale // len(b.addresses)
            targets.extend(Target(share, b.name, address=a) for a in b.addresses)
    divisor = 0
    for t in targets:
        divisor = gcd(divisor, t.weight)
    return tuple(Target(t.weight // divisor, t.backend, t.address, t.status) for t in targets)


def _locations(match: Mapping) -> list[tuple[bool, str, int]]:
    """(exact, path, rank) per nginx location of one match; a lower rank wins a conflict."""
    path = (match.get("path") or {}).get("value") or "/"
    if (match.get("path") or {}).get("type") == "Exact":
        return [(True, path, 0)]
    path = path.rstrip("/") or "/"
    if path == "/":
        return [(False, "/", 1)]
    # PathPrefix /foo matches /foo and /foo/..., never /foobar.
    return [(True, path, 1), (False, path + "/", 1)]


def _namespace_labels(observed: Observed) -> dict[str, Mapping[str, str]]:
    return {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in observed.namespaces}


def _our_parents(route: Mapping,
                 gateways: Mapping[tuple[str, str], Mapping]) -> list[tuple[Mapping, Mapping]]:
    out = []
    for ref in route["spec"].get("parentRefs") or []:
        if (ref.get("group") or GROUP) != GROUP or (ref.get("kind") or "Gateway") != "Gateway":
            continue
        gateway = gateways.get((ref.get("namespace") or route["metadata"]["namespace"], ref["name"]))
        if gateway is not None:
            out.append((ref, gateway))
    return out


def plan(observed: Observed) -> Plan:
    classes = tuple(c for c in observed.gateway_classes
                    if c["spec"].get("controllerName") == observed.controller_name)
    class_names = {c["metadata"]["name"] for c in classes}
    gateways = tuple(g for g in observed.gateways if g["spec"].get("gatewayClassName") in class_names)
    by_key = {_key(g): g for g in gateways}
    cluster = Cluster.index(observed.services, observed.endpoint_slices, observed.reference_grants,
                            observed.pods)
    labels = _namespace_labels(observed)
    outcomes: dict[tuple[str, str], RouteOutcome] = {}
    attached: dict[tuple[str, str, str], int] = {}
    # (hostname, exact, path) -> (precedence, Location); the smallest precedence wins.
    chosen: dict[tuple[str | None, bool, str], tuple[tuple, Location]] = {}
    upstreams: dict[str, tuple[Target, ...]] = {}
    for route in observed.routes:
        parents = _our_parents(route, by_key)
        if not parents:
            continue
        ns = route["metadata"]["namespace"]
        unsupported = unsupported_feature(route)
        per_rule = [[resolve(ref, ns, cluster) for ref in rule.get("backendRefs") or []]
                    for rule in route["spec"].get("rules") or []]
        backends = tuple(b for rule in per_rule for b in rule)
        verdicts = []
        for ref, gateway in parents:
            verdict = attach(route, ref, gateway, labels)
            if unsupported and verdict.accepted:
                verdict = ParentVerdict((), "UnsupportedValue", f"{unsupported} is not supported "
                                        "by the tugboat dev gateway")
            verdicts.append((ref, verdict))
            for a in verdict.attachments:
                gw_ns, gw_name = _key(gateway)
                attached[(gw_ns, gw_name, a.listener)] = attached.get((gw_ns, gw_name, a.listener), 0) + 1
        outcomes[_key(route)] = RouteOutcome(tuple(verdicts), unsupported, backends)
        hostnames = _hostnames([a for _, v in verdicts for a in v.attachments])
        if hostnames:
            _add_rules(route, per_rule, hostnames, chosen, upstreams)
    return Plan(_routing(chosen, upstreams), classes, gateways, outcomes, attached)


def _hostnames(attachments: Sequence[Attachment]) -> list[str | None]:
    return list(dict.fromkeys(h for a in attachments for h in a.hostnames))


def _add_rules(route: Mapping, per_rule: Sequence[Sequence[Backend]], hostnames: list[str | None],
               chosen: dict, upstreams: dict[str, tuple[Target, ...]]) -> None:
    ns, name = _key(route)
    created = route["metadata"].get("creationTimestamp") or ""
    for i, rule in enumerate(route["spec"].get("rules") or []):
        targets = split(per_rule[i])
        upstream = upstream_name(route, i) if targets else None
        if upstream:
            upstreams[upstream] = targets
        for match in rule.get("matches") or [{}]:
            for exact, path, rank in _locations(match):
                location = Location(exact, path, upstream, f"{ns}/{name} rule {i}")
                for host in hostnames:
                    key = (host, exact, path)
                    precedence = (rank, created, ns, name, i)
                    if key not in chosen or precedence < chosen[key][0]:
                        chosen[key] = (precedence, location)


def _routing(chosen: dict, upstreams: dict[str, tuple[Target, ...]]) -> Routing:
    by_host: dict[str | None, list[Location]] = {None: []}
    for (host, _exact, _path), (_prec, location) in chosen.items():
        by_host.setdefault(host, []).append(location)
    # Routes without hostnames answer every host, unless a route for that host has the same match.
    for host, locations in by_host.items():
        if host is not None:
            taken = {(lc.exact, lc.path) for lc in locations}
            locations.extend(lc for lc in by_host[None] if (lc.exact, lc.path) not in taken)
    ordered = sorted(by_host.items(), key=lambda kv: (kv[0] is not None, kv[0] or ""))
    servers = tuple(VirtualServer(host, tuple(sorted(locs, key=lambda lc: (lc.path, not lc.exact))))
                    for host, locs in ordered)
    used = {lc.upstream for s in servers for lc in s.locations if lc.upstream}
    return Routing(servers, {k: v for k, v in sorted(upstreams.items()) if k in used})
