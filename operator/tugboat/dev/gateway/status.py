"""The status a conformant Gateway API implementation writes, from a Plan. Pure.

Decides GatewayClass conditions (Accepted, SupportedVersion), Gateway conditions (Accepted,
Programmed), its address (127.0.0.1) and per-listener status (supportedKinds, attachedRoutes,
Accepted, Programmed, ResolvedRefs, Conflicted), and HTTPRoute `status.parents[]` entries of
our controller (Accepted with the attachment reason, ResolvedRefs with the first failing
backendRef's reason: InvalidKind, RefNotPermitted, BackendNotFound). Entries other controllers
wrote for their own parents are kept as they are. lastTransitionTime moves only when a
condition's status flips. Must not read the cluster or the clock: `now` comes in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .attach import GROUP, ROUTE_KIND, listener_allows_kind, listener_supported
from .plan import Plan, RouteOutcome

ADDRESS = "127.0.0.1"


def condition(type_: str, ok: bool, reason: str, message: str, generation: int | None,
              now: str, old: Sequence[Mapping] = ()) -> dict:
    status = "True" if ok else "False"
    previous = next((c for c in old if c.get("type") == type_), None)
    since = previous["lastTransitionTime"] if previous and previous.get("status") == status else now
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "observedGeneration": generation, "lastTransitionTime": since}


def _generation(obj: Mapping) -> int | None:
    return obj["metadata"].get("generation")


def gateway_class_status(gc: Mapping, now: str) -> dict:
    old = (gc.get("status") or {}).get("conditions") or []
    gen = _generation(gc)
    return {"conditions": [
        condition("Accepted", True, "Accepted", "handled by the tugboat dev gateway (nginx)", gen, now, old),
        condition("SupportedVersion", True, "SupportedVersion", "Gateway API v1.6 CRDs", gen, now, old),
    ]}


def _listener_status(listener: Mapping, attached: int, programmed: bool, gen: int | None,
                     now: str, old: Sequence[Mapping]) -> dict:
    previous = next((ls.get("conditions") or [] for ls in old if ls.get("name") == listener["name"]), [])
    supported = listener_supported(listener)
    kinds_ok = listener_allows_kind(listener)
    accepted = supported and kinds_ok
    return {
        "name": listener["name"],
        "supportedKinds": [{"group": GROUP, "kind": ROUTE_KIND}] if supported else [],
        "attachedRoutes": attached,
        "conditions": [
            condition("Accepted", accepted, "Accepted" if supported else "UnsupportedProtocol",
                      "" if supported else f"protocol {listener.get('protocol')} is not served (HTTP only)",
                      gen, now, previous),
            condition("Programmed", accepted and programmed, "Programmed" if accepted and programmed
                      else "Invalid" if not accepted else "Pending", "", gen, now, previous),
            condition("ResolvedRefs", kinds_ok, "ResolvedRefs" if kinds_ok else "InvalidRouteKinds",
                      "" if kinds_ok else "only HTTPRoute is supported", gen, now, previous),
            condition("Conflicted", False, "NoConflicts", "", gen, now, previous),
        ],
    }


def gateway_status(gw: Mapping, plan: Plan, programmed: bool, now: str) -> dict:
    """`programmed`: nginx runs a configuration with this Gateway's routes in it."""
    old = gw.get("status") or {}
    gen = _generation(gw)
    ns, name = gw["metadata"]["namespace"], gw["metadata"]["name"]
    listeners = [_listener_status(ls, plan.attached.get((ns, name, ls["name"]), 0), programmed, gen, now,
                                  old.get("listeners") or [])
                 for ls in gw["spec"].get("listeners") or []]
    valid = any(c["type"] == "Accepted" and c["status"] == "True"
                for ls in listeners for c in ls["conditions"])
    conds = old.get("conditions") or []
    return {
        "addresses": [{"type": "IPAddress", "value": ADDRESS}] if valid and programmed else [],
        "conditions": [
            condition("Accepted", valid, "Accepted" if valid else "ListenersNotValid",
                      "" if valid else "no listener can be served", gen, now, conds),
            condition("Programmed", valid and programmed,
                      "Programmed" if valid and programmed else "Invalid" if not valid else "Pending",
                      f"nginx on {ADDRESS}" if valid and programmed else "", gen, now, conds),
        ],
        "listeners": listeners,
    }


def _resolved_refs(outcome: RouteOutcome) -> tuple[bool, str, str]:
    failed = [b for b in outcome.backends if not b.resolved]
    if not failed:
        return True, "ResolvedRefs", "all backendRefs resolved"
    return False, failed[0].reason, "; ".join(b.message for b in failed)


def _same_parent(a: Mapping, b: Mapping, route_ns: str) -> bool:
    def norm(ref: Mapping) -> tuple:
        return (ref.get("group") or GROUP, ref.get("kind") or "Gateway", ref.get("namespace") or route_ns,
                ref.get("name"), ref.get("sectionName"), ref.get("port"))
    return norm(a) == norm(b)


def route_parents(route: Mapping, outcome: RouteOutcome, controller_name: str, now: str) -> list[dict]:
    """The whole `status.parents` list: others' entries kept, ours rewritten."""
    ns = route["metadata"]["namespace"]
    old = (route.get("status") or {}).get("parents") or []
    gen = _generation(route)
    resolved, reason, message = _resolved_refs(outcome)
    ours = []
    for ref, verdict in outcome.parents:
        previous = next((p.get("conditions") or [] for p in old if p.get("controllerName") == controller_name
                         and _same_parent(p.get("parentRef") or {}, ref, ns)), [])
        ours.append({"parentRef": dict(ref), "controllerName": controller_name, "conditions": [
            condition("Accepted", verdict.accepted, verdict.reason, verdict.message, gen, now, previous),
            condition("ResolvedRefs", resolved, reason, message, gen, now, previous),
        ]})
    return [p for p in old if p.get("controllerName") != controller_name] + ours


def without_times(value):
    """A status with every lastTransitionTime removed: what decides whether a write is needed."""
    if isinstance(value, Mapping):
        return {k: without_times(v) for k, v in value.items() if k != "lastTransitionTime"}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value
