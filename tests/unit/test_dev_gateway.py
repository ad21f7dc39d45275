"""The dev gateway's pure parts: listener attachment, backend resolution, weighted splits, nginx
config text and the Gateway API status it writes; the loopback guard and the traffic plan's bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tugboat.dev.cluster import pod_cidr
from tugboat.dev.gateway.attach import intersect
from tugboat.dev.gateway.backends import Backend
from tugboat.dev.gateway.nginx_conf import NginxSettings, render
from tugboat.dev.gateway.plan import Observed, Target, plan, split
from tugboat.dev.gateway.status import gateway_status, route_parents, without_times
from tugboat.dev.loopback import NotLoopback, is_loopback, require_loopback_url
from tugboat.dev.traffic import TrafficPlan, prompts

ME = "tugboat.dev/dev-gateway"
NOW = "2026-01-02T03:04:05Z"
SETTINGS = NginxSettings(Path("/gw"), 8088)


ALL = {"namespaces": {"from": "All"}}


def gateway(listeners=None, ns="gw"):
    return {"metadata": {"name": "g", "namespace": ns, "generation": 1},
            "spec": {"gatewayClassName": "dev", "listeners": listeners or [
                {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": ALL}]}}


def route(rules, ns="app", name="r", hostnames=None, parent=None, created="2026-01-01T00:00:00Z"):
    return {"metadata": {"name": name, "namespace": ns, "generation": 3, "creationTimestamp": created},
            "spec": {"parentRefs": [parent or {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                               "name": "g", "namespace": "gw"}],
                     "hostnames": hostnames or [], "rules": rules}}


def ref(name, weight=1, ns=None, port=80, **extra):
    return {"name": name, "port": port, "weight": weight, **({"namespace": ns} if ns else {}), **extra}


def service(name, ns="app", selector=True):
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {**({"selector": {"app": name}} if selector else {}),
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def pod(app, ip, ns="app", ready=True, phase="Running", name=None):
    return {"metadata": {"name": name or f"{app}-{ip}", "namespace": ns, "labels": {"app": app}},
            "spec": {"containers": [{"name": "serve", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": phase, "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def endpoint_slice(service_name, *ips, ns="app", ready=True):
    return {"metadata": {"name": f"{service_name}-abc", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}} for ip in ips]}


def observe(routes, services=(), pods=(), grants=(), gateways=None, slices=()):
    return Observed(ME, [{"metadata": {"name": "dev"}, "spec": {"controllerName": ME}}],
                    gateways or [gateway()], routes, list(services), list(slices), list(grants), [],
                    list(pods))


STABLE_CANARY = [service("stable"), service("canary")]
PODS = [pod("stable", "127.3.0.1"), pod("stable", "127.3.0.2"), pod("canary", "127.3.0.3")]


def test_weights_split_in_proportion_across_every_ready_endpoint():
    p = plan(observe([route([{"backendRefs": [ref("stable", 90), ref("canary", 10)]}])], STABLE_CANARY, PODS))
    (targets,) = p.routing.upstreams.values()
    assert [(t.address, t.weight) for t in targets] == [
        ("127.3.0.1:8080", 9), ("127.3.0.2:8080", 9), ("127.3.0.3:8080", 2)]


def test_weight_zero_gets_no_server_and_all_zero_answers_500():
    p = plan(observe([route([{"backendRefs": [ref("stable", 100), ref("canary", 0)]}])], STABLE_CANARY, PODS))
    (targets,) = p.routing.upstreams.values()
    assert {t.backend for t in targets} == {"app/stable:80"}
    p = plan(observe([route([{"backendRefs": [ref("stable", 0)]}])], STABLE_CANARY, PODS))
    assert p.routing.upstreams == {}
    assert "return 500;" in render(p.routing, SETTINGS)


def test_unresolved_and_empty_backends_keep_their_share_as_500_and_503():
    backends = [Backend("a", 2, "ResolvedRefs", addresses=("127.3.0.1:1",)),
                Backend("b", 1, "BackendNotFound"), Backend("c", 1, "ResolvedRefs")]
    assert split(backends) == (Target(2, "a", "127.3.0.1:1"), Target(1, "b", status=500),
                               Target(1, "c", status=503))


def test_non_loopback_endpoints_are_dropped_and_never_rendered():
    slices = [endpoint_slice("stable", "127.3.0.1", "10.0.0.7", "192.0.2.4")]
    p = plan(observe([route([{"backendRefs": [ref("stable")]}])], [service("stable", selector=False)],
                     slices=slices))
    (backend,) = p.routes[("app", "r")].backends
    assert backend.addresses == ("127.3.0.1:8080",)
    assert backend.dropped == ("10.0.0.7:8080", "192.0.2.4:8080")
    text = render(p.routing, SETTINGS)
    assert "10.0.0.7" not in text and "192.0.2.4" not in text and "server 127.3.0.1:8080 weight=1" in text
    with pytest.raises(NotLoopback):
        render(p.routing.__class__(p.routing.servers, {"u": (Target(1, "x", "10.0.0.7:80"),)}), SETTINGS)


def test_only_ready_running_pods_and_ready_slice_endpoints_take_traffic():
    pods = [pod("stable", "127.3.0.1", ready=False), pod("stable", "127.3.0.2", phase="Pending"),
            pod("stable", "10.0.0.9"), pod("canary", "127.3.0.4")]
    p = plan(observe([route([{"backendRefs": [ref("stable")]}])], STABLE_CANARY, pods))
    (targets,) = p.routing.upstreams.values()
    assert targets == (Target(1, "app/stable:80", status=503),)
    assert p.routes[("app", "r")].backends[0].dropped == ("10.0.0.9:8080",)
    slices = [endpoint_slice("stable", "127.3.0.1", ready=False)]
    p = plan(observe([route([{"backendRefs": [ref("stable")]}])], [service("stable", selector=False)],
                     slices=slices))
    assert p.routes[("app", "r")].backends[0].addresses == ()


def test_cross_namespace_refs_need_a_reference_grant():
    routes = [route([{"backendRefs": [ref("stable", ns="other")]}])]
    services = [service("stable", ns="other")]
    denied = plan(observe(routes, services))
    parents = route_parents(routes[0], denied.routes[("app", "r")], ME, NOW)
    conds = {c["type"]: c for c in parents[0]["conditions"]}
    assert conds["Accepted"]["status"] == "True"
    assert (conds["ResolvedRefs"]["status"], conds["ResolvedRefs"]["reason"]) == ("False", "RefNotPermitted")
    grant = {"metadata": {"name": "g", "namespace": "other"},
             "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                "namespace": "app"}],
                      "to": [{"group": "", "kind": "Service"}]}}
    allowed = plan(observe(routes, services, grants=[grant]))
    assert allowed.routes[("app", "r")].backends[0].reason == "ResolvedRefs"


@pytest.mark.parametrize(("backend_ref", "reason"), [
    (ref("missing"), "BackendNotFound"),
    (ref("stable", port=81), "BackendNotFound"),
    (ref("stable", kind="ConfigMap", group="v1"), "InvalidKind"),
])
def test_resolved_refs_names_the_failing_reason(backend_ref, reason):
    r = route([{"backendRefs": [backend_ref]}])
    outcome = plan(observe([r], STABLE_CANARY)).routes[("app", "r")]
    resolved = {c["type"]: c for c in route_parents(r, outcome, ME, NOW)[0]["conditions"]}["ResolvedRefs"]
    assert (resolved["status"], resolved["reason"], resolved["observedGeneration"]) == ("False", reason, 3)


def test_listeners_decide_attachment_with_the_specs_reasons():
    same_ns = gateway([{"name": "http", "protocol": "HTTP", "port": 80}])
    r = route([{"backendRefs": [ref("stable")]}])
    verdict = plan(observe([r], gateways=[same_ns])).routes[("app", "r")].parents[0][1]
    assert (verdict.accepted, verdict.reason) == (False, "NotAllowedByListeners")
    named = route([], parent={"name": "g", "namespace": "gw", "sectionName": "https"})
    assert plan(observe([named])).routes[("app", "r")].parents[0][1].reason == "NoMatchingParent"
    hosted = gateway([{"name": "http", "protocol": "HTTP", "port": 80, "hostname": "*.example.com",
                       "allowedRoutes": {"namespaces": {"from": "All"}}}])
    elsewhere = route([], hostnames=["a.example.org"])
    assert plan(observe([elsewhere], gateways=[hosted])).routes[("app", "r")].parents[0][1].reason == \
        "NoMatchingListenerHostname"
    with_header = route([{"matches": [{"headers": [{"name": "x", "value": "y"}]}]}])
    verdict = plan(observe([with_header])).routes[("app", "r")].parents[0][1]
    assert (verdict.accepted, verdict.reason) == (False, "UnsupportedValue")


def test_routes_of_other_gateways_are_left_alone():
    foreign = route([], parent={"name": "not-ours", "namespace": "gw"})
    assert plan(observe([foreign])).routes == {}


@pytest.mark.parametrize(("listener", "host", "expected"), [
    (None, "a.example.com", "a.example.com"),
    ("*.example.com", "a.b.example.com", "a.b.example.com"),
    ("*.example.com", "example.com", None),
    ("a.example.com", "*.example.com", "a.example.com"),
    ("a.example.com", "b.example.com", None),
])
def test_hostname_intersection(listener, host, expected):
    assert intersect(listener, host) == expected


def test_prefix_matches_whole_path_segments_and_the_oldest_route_wins_a_conflict():
    old = route([{"matches": [{"path": {"type": "PathPrefix", "value": "/v1/"}}],
                  "backendRefs": [ref("stable")]}], name="old", created="2026-01-01T00:00:00Z")
    new = route([{"matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                  "backendRefs": [ref("canary")]}], name="new", created="2026-01-02T00:00:00Z")
    p = plan(observe([new, old], STABLE_CANARY, PODS))
    (default,) = p.routing.servers
    assert [(lc.exact, lc.path, lc.route) for lc in default.locations] == [
        (True, "/v1", "app/old rule 0"), (False, "/v1/", "app/old rule 0")]
    text = render(p.routing, SETTINGS)
    assert 'location = "/v1" {' in text and 'location "/v1/" {' in text and 'location / {' in text


def test_hostname_servers_also_answer_routes_without_hostnames():
    any_host = route([{"backendRefs": [ref("stable")]}], name="any")
    only_a = route([{"matches": [{"path": {"type": "Exact", "value": "/x"}}],
                     "backendRefs": [ref("canary")]}],
                   name="a", hostnames=["a.example.com"])
    servers = plan(observe([any_host, only_a], STABLE_CANARY, PODS)).routing.servers
    assert [(s.hostname, [lc.path for lc in s.locations]) for s in servers] == [
        (None, ["/"]), ("a.example.com", ["/", "/x"])]
    text = render(plan(observe([any_host, only_a], STABLE_CANARY, PODS)).routing, SETTINGS)
    assert 'server_name "a.example.com";' in text and "listen 127.0.0.1:8088 default_server;" in text


def test_render_keeps_every_path_under_the_prefix_with_one_worker_and_debug_headers():
    text = render(plan(observe([route([{"backendRefs": [ref("stable")]}])], STABLE_CANARY, PODS)).routing,
                  SETTINGS)
    assert "daemon off;" in text and "worker_processes 1;" in text and "user root;" not in text
    assert "pid /gw/nginx.pid;" in text and "proxy_temp_path /gw/temp/proxy;" in text
    assert "add_header X-Tugboat-Upstream $upstream_addr always;" in text
    assert '"127.3.0.1:8080" "app/stable:80";' in text
    assert "root" in render(plan(observe([])).routing, NginxSettings(Path("/gw"), 1, run_as_root=True))


def test_gateway_status_counts_attached_routes_and_keeps_transition_times():
    r = route([{"backendRefs": [ref("stable")]}])
    gw = gateway([{"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": ALL},
                  {"name": "tls", "protocol": "HTTPS", "port": 443}])
    p = plan(observe([r], STABLE_CANARY, PODS, gateways=[gw]))
    status = gateway_status(gw, p, programmed=True, now=NOW)
    assert status["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
    listeners = {ls["name"]: ls for ls in status["listeners"]}
    assert listeners["http"]["attachedRoutes"] == 1
    accepted = {c["type"]: c for c in listeners["tls"]["conditions"]}["Accepted"]
    assert (accepted["status"], accepted["reason"]) == ("False", "UnsupportedProtocol")
    later = gateway_status({**gw, "status": status}, p, programmed=True, now="2026-02-02T00:00:00Z")
    assert later == status and without_times(later) == without_times(status)
    pending = gateway_status({**gw, "status": status}, p, programmed=False, now="2026-02-02T00:00:00Z")
    programmed = {c["type"]: c for c in pending["conditions"]}["Programmed"]
    assert (programmed["status"], programmed["lastTransitionTime"]) == ("False", "2026-02-02T00:00:00Z")


def test_route_parents_keep_other_controllers_entries():
    r = route([{"backendRefs": [ref("stable")]}])
    theirs = {"parentRef": {"name": "other"}, "controllerName": "example.com/else", "conditions": []}
    r["status"] = {"parents": [theirs]}
    parents = route_parents(r, plan(observe([r], STABLE_CANARY, PODS)).routes[("app", "r")], ME, NOW)
    assert parents[0] == theirs and parents[1]["controllerName"] == ME


def test_loopback_guard():
    assert is_loopback("127.200.3.4") and not is_loopback("10.0.0.1") and not is_loopback("localhost")
    require_loopback_url("http://127.0.0.1:80/x", "t")
    for bad in ("http://10.0.0.5:80/", "http://example.com:80/", "https://127.0.0.1:443/"):
        with pytest.raises(NotLoopback):
            require_loopback_url(bad, "t")


def test_pod_cidrs_are_loopback_and_differ_between_clusters():
    cidrs = {pod_cidr(f"it-{i}") for i in range(20)}
    assert len(cidrs) > 15
    assert all(c.startswith("127.") and c.split(".")[1] not in ("0", "1") for c in cidrs)


def test_traffic_is_bounded_loopback_and_sends_the_tasks_prompts():
    with pytest.raises(NotLoopback):
        TrafficPlan(url="http://10.0.0.5:80")
    with pytest.raises(ValueError, match="bounded"):
        TrafficPlan(url="http://127.0.0.1:80", duration=None, count=None)
    source = prompts(TrafficPlan(url="http://127.0.0.1:80", max_tokens=3, vocab_size=64))
    prompt, expected = next(source)
    tokens = [int(t) for t in (prompt + " " + expected).split()]
    assert len(tokens) == 7 and len({(b - a) % 64 for a, b in zip(tokens, tokens[1:], strict=False)}) == 1
