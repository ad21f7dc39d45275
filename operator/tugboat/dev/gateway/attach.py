"""Which Gateway listeners an HTTPRoute's parentRef attaches to, and for which hostnames. Pure.

Decides by the Gateway API rules: a parentRef names a Gateway (optionally a listener by
sectionName or port); a listener takes the route when its protocol is one this gateway serves
(HTTP), its allowedRoutes admit the route's namespace (Same, All or a label Selector) and kind,
and its hostname intersects the route's hostnames (wildcards `*.example.com` included). Reasons
for refusal are the spec's: NoMatchingParent, NotAllowedByListeners, NoMatchingListenerHostname.
Must not read the cluster: every object comes in as a dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

GROUP = "gateway.networking.k8s.io"
SERVED_PROTOCOLS = ("HTTP",)
ROUTE_KIND = "HTTPRoute"


@dataclass(frozen=True)
class Attachment:
    """A route on one listener: the hostnames it answers there (None: any host)."""

    listener: str
    hostnames: tuple[str | None, ...]


@dataclass(frozen=True)
class ParentVerdict:
    attachments: tuple[Attachment, ...]
    reason: str   # Accepted, or why not
    message: str

    @property
    def accepted(self) -> bool:
        return bool(self.attachments)


def listener_supported(listener: Mapping) -> bool:
    return listener.get("protocol") in SERVED_PROTOCOLS


def listener_allows_kind(listener: Mapping) -> bool:
    kinds = (listener.get("allowedRoutes") or {}).get("kinds")
    if not kinds:  # the default for an HTTP listener is HTTPRoute
        return True
    return any(k.get("kind") == ROUTE_KIND and (k.get("group") or GROUP) == GROUP for k in kinds)


def selector_matches(selector: Mapping, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels and matchExpressions) against a label set."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def namespace_allowed(listener: Mapping, gateway_ns: str, route_ns: str,
                      namespace_labels: Mapping[str, Mapping[str, str]]) -> bool:
    namespaces = (listener.get("allowedRoutes") or {}).get("namespaces") or {}
    origin = namespaces.get("from") or "Same"
    if origin == "All":
        return True
    if origin == "Same":
        return route_ns == gateway_ns
    if origin == "Selector":
        return selector_matches(namespaces.get("selector") or {}, namespace_labels.get(route_ns) or {})
    return False


def _wildcard_covers(pattern: str, host: str) -> bool:
    """`*.example.com` covers `a.example.com` and `a.b.example.com`, not `example.com`."""
    return pattern.startswith("*.") and host.endswith(pattern[1:]) and len(host) > len(pattern) - 1


def intersect(listener_host: str | None, route_host: str) -> str | None:
    """The hostname both sides accept, or None when they are disjoint."""
    if listener_host is None or listener_host == route_host:
        return route_host
    if _wildcard_covers(listener_host, route_host):
        return route_host
    if _wildcard_covers(route_host, listener_host):
        return listener_host
    if listener_host.startswith("*.") and route_host.startswith("*.") and \
            _wildcard_covers(listener_host, route_host[2:]):
        return route_host  # *.a.example.com under *.example.com
    return None


def hostnames_on(listener: Mapping, route_hostnames: list[str]) -> tuple[str | None, ...]:
    """The hostnames a route serves on a listener: () when they do not intersect."""
    listener_host = listener.get("hostname")
    if not route_hostnames:
        return (listener_host,)
    found = [h for h in (intersect(listener_host, r) for r in route_hostnames) if h is not None]
    return tuple(dict.fromkeys(found))


def attach(route: Mapping, parent_ref: Mapping, gateway: Mapping,
           namespace_labels: Mapping[str, Mapping[str, str]]) -> ParentVerdict:
    """Where `route` attaches on `gateway` through `parent_ref`."""
    route_ns = route["metadata"]["namespace"]
    gateway_ns = gateway["metadata"]["namespace"]
    listeners = [ls for ls in gateway["spec"].get("listeners") or []
                 if (parent_ref.get("sectionName") in (None, ls.get("name")))
                 and (parent_ref.get("port") in (None, ls.get("port")))]
    if not listeners:
        return ParentVerdict((), "NoMatchingParent",
                             f"Gateway {gateway_ns}/{gateway['metadata']['name']} has no listener "
                             f"matching sectionName={parent_ref.get('sectionName')!r} "
                             f"port={parent_ref.get('port')!r}")
    allowed = [ls for ls in listeners if listener_supported(ls) and listener_allows_kind(ls)
               and namespace_allowed(ls, gateway_ns, route_ns, namespace_labels)]
    if not allowed:
        return ParentVerdict((), "NotAllowedByListeners",
                             f"no listener of Gateway {gateway_ns}/{gateway['metadata']['name']} "
                             f"admits HTTPRoutes from namespace {route_ns}")
    route_hostnames = list(route["spec"].get("hostnames") or [])
    attachments = tuple(Attachment(ls["name"], hosts) for ls in allowed
                        if (hosts := hostnames_on(ls, route_hostnames)))
    if not attachments:
        return ParentVerdict((), "NoMatchingListenerHostname",
                             f"hostnames {route_hostnames} match no listener hostname")
    return ParentVerdict(attachments, "Accepted", "accepted by the tugboat dev gateway")
