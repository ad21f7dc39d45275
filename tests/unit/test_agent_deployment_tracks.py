"""AgentDeployment decide with a rollout: both tracks' Deployments and Services, the weighted
HTTPRoute or the replica ratio, the canary's scale-down delay, the hand-over after promotion."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.integration.trust import fresh_public_pem
from tugboat.api.agent_deployment import AgentDeploymentStatus, RouteStatus, TrafficMode
from tugboat.api.model_release import TargetPlan, TargetState
from tugboat.api.tenant import TenantSpec
from tugboat.builders.agent_deployment import (
    CANARY,
    STABLE,
    ServingConfig,
    canary_replicas,
    deployment_name,
    serving_name,
    track_service_name,
)
from tugboat.reconcile.agent_deployment import (
    CANARY_SCALE_DOWN_DELAY,
    DeploymentView,
    Observed,
    ReleaseView,
    decide,
    summarize_release,
    summarize_route,
)
from tugboat.reconcile.outcome import Meta
from tugboat.reconcile.serving_graph import PublishedGraph
from tugboat.reconcile.tenancy import TenantView

PEM = fresh_public_pem()
META = Meta("agent", "team-a", "uid-agd", 1)
CONFIG = ServingConfig(image="img", pool_label="tugboat.dev/pool", artifact_root="/art",
                       artifact_pvc=None, gateway_namespace="tugboat-gateway", monitoring_namespace="mon")
TENANT = TenantView("team-a", TenantSpec.model_validate({
    "namespaces": ["team-a"], "costCenter": "cc", "allowedModelLines": ["moe-arith"]}))
ROUTED = {"modelLine": "moe-arith", "replicas": 4,
          "traffic": {"gatewayRef": {"name": "tugboat", "namespace": "tugboat-gateway",
                                     "sectionName": "http"}, "hostnames": ["agent.example.test"]}}
RATIO = {"modelLine": "moe-arith", "replicas": 4}
DIGEST = "d" * 64
ACCEPTED = RouteStatus(name="agent", accepted=True, reason="Accepted", message="ok")


def rel(name: str, month: int, state: TargetState | None = None, weight: int = 0) -> ReleaseView:
    plan = (TargetPlan(namespace="team-a", name="agent", tenant="team-a", wave=0, stable_release="v1",
                       state=state, weight=weight, message="error rate 0.4 > 0.05")
            if state is not None else None)
    # A plan promoted here counts as the new stable once the whole rollout is Promoted.
    phase = "Promoted" if state == TargetState.PROMOTED else "Ready"
    return ReleaseView(name, "ml", "moe-arith", True, phase, f"file:///art/{name}", DIGEST,
                       f"2026-{month:02d}-01T00:00:00Z", plan=plan, has_rollout=state is not None)


V1 = rel("v1", 1)


def dep(release: str, replicas: int = 4, ready: int | None = None) -> DeploymentView:
    ready = replicas if ready is None else ready
    return DeploymentView(replicas, ready, replicas, True, release, DIGEST, None)


def observed(spec=None, releases=(V1,), status=None, **kw) -> Observed:
    base = Observed(META, spec or ROUTED, status or AgentDeploymentStatus(stable_release="v1"), TENANT,
                    tuple(releases), PEM, dep("v1"), False, CONFIG, route=ACCEPTED)
    return replace(base, **kw)


def child(out, kind: str, name: str) -> dict | None:
    return next((o for o in out.children if o["kind"] == kind and o["metadata"]["name"] == name), None)


def args(deployment: dict) -> list[str]:
    return deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def flag(deployment: dict, name: str) -> str:
    a = args(deployment)
    return a[a.index(name) + 1]


def weights(out) -> dict[str, int]:
    route = child(out, "HTTPRoute", "agent")
    return {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}


def canary_deployment(out) -> dict | None:
    return child(out, "Deployment", deployment_name("agent", CANARY))


def test_a_canary_step_builds_both_tracks_and_weights_the_route(now):
    out = decide(observed(releases=(V1, rel("v2", 2, TargetState.PROGRESSING, 10)),
                          canary_deployment=dep("v2", 1)), now)
    stable = child(out, "Deployment", serving_name("agent"))
    canary = canary_deployment(out)
    assert (flag(stable, "--release"), flag(stable, "--track")) == ("v1", STABLE)
    assert (flag(canary, "--release"), flag(canary, "--track")) == ("v2", CANARY)
    assert flag(canary, "--artifact") == "/art/v2" and flag(canary, "--graph") == "fp32"
    # The stable stays fully scaled, so taking the weight back is instant; the canary follows it.
    assert stable["spec"]["replicas"] == 4 and canary["spec"]["replicas"] == 1
    assert canary["spec"]["selector"]["matchLabels"]["tugboat.dev/track"] == CANARY
    assert canary["spec"]["template"]["metadata"]["labels"]["tugboat.dev/track"] == CANARY
    assert weights(out) == {track_service_name("agent", STABLE): 90, track_service_name("agent", CANARY): 10}
    for track in (STABLE, CANARY):
        svc = child(out, "Service", track_service_name("agent", track))
        assert svc["spec"]["selector"]["tugboat.dev/track"] == track
    route = child(out, "HTTPRoute", "agent")
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "name": "tugboat", "namespace": "tugboat-gateway",
                                            "sectionName": "http"}]
    assert route["spec"]["hostnames"] == ["agent.example.test"]
    assert route["metadata"]["ownerReferences"][0]["uid"] == "uid-agd"
    s = out.status
    assert (s.stable_release, s.canary_release, s.canary_weight, s.traffic) == ("v1", "v2", 10, "Gateway")
    assert s.phase == "Serving" and "canary v2 at 10%" in s.message
    assert [e.message for e in out.events if e.reason == "RolloutProgressing"] == [
        "canary track serves v2 at 10%"]


def test_the_route_follows_the_weight_up_and_back(now):
    for w in (10, 50, 100):
        out = decide(observed(releases=(V1, rel("v2", 2, TargetState.PAUSED, w)),
                              canary_deployment=dep("v2", 1)), now)
        assert list(weights(out).values()) == [100 - w, w]
        assert canary_deployment(out)["spec"]["replicas"] == max(1, -(-4 * w // 100))


def test_the_canary_gets_its_share_once_one_of_its_pods_is_ready(now):
    # Seen in the demo: a share routed to a canary without ready pods is answered 503 by the
    # gateway, errors the runtime's metrics (what the analysis reads) never see.
    releases = (V1, rel("v2", 2, TargetState.PROGRESSING, 20))
    starting = decide(observed(releases=releases), now)
    assert list(weights(starting).values()) == [100, 0]
    assert canary_deployment(starting)["spec"]["replicas"] == 1
    assert starting.status.canary_release == "v2" and starting.status.canary_weight == 0
    assert "gets 20% once one of its pods is ready" in starting.status.message
    assert not [e for e in starting.events if e.reason == "RolloutProgressing"]
    not_ready = decide(observed(releases=releases, status=starting.status,
                                canary_deployment=dep("v2", 1, ready=0)), now)
    assert list(weights(not_ready).values()) == [100, 0]
    ready = decide(observed(releases=releases, status=not_ready.status,
                            canary_deployment=dep("v2", 1)), now)
    assert list(weights(ready).values()) == [80, 20]
    assert [e.message for e in ready.events if e.reason == "RolloutProgressing"] == [
        "canary track serves v2 at 20%"]
    # The next step scales the canary up: its one ready pod keeps the share, no step back to 0.
    scaling = decide(observed(releases=(V1, rel("v2", 2, TargetState.PROGRESSING, 50)),
                              status=ready.status, canary_deployment=dep("v2", 2, ready=1)), now)
    assert list(weights(scaling).values()) == [50, 50]


def test_without_an_accepted_route_the_deployment_is_not_ready(now):
    waiting = decide(observed(route=None), now)
    assert waiting.status.phase == "Deploying"
    assert {c.type: c.reason for c in waiting.status.conditions}["Ready"] == "RouteNotAccepted"
    assert waiting.status.route.accepted is None and "waiting for Gateway tugboat-gateway/tugboat" in \
        waiting.status.message
    refused = decide(observed(route=RouteStatus(name="agent", accepted=False, reason="NotAllowedByListeners",
                                                message="namespace not allowed")), now)
    assert "NotAllowedByListeners: namespace not allowed" in refused.status.message
    assert decide(observed(), now).status.route == ACCEPTED


def test_without_a_gateway_the_replica_ratio_splits_behind_one_service(now):
    out = decide(observed(spec=RATIO, releases=(V1, rel("v2", 2, TargetState.PROGRESSING, 20)), route=None),
                 now)
    assert child(out, "HTTPRoute", "agent") is None
    assert canary_deployment(out)["spec"]["replicas"] == 1  # 1 / (4 + 1) = 20%
    main = child(out, "Service", serving_name("agent"))
    assert "tugboat.dev/track" not in main["spec"]["selector"]  # both tracks' pods behind it
    assert out.status.traffic == "ReplicaRatio" and out.status.route is None
    assert out.status.phase == "Serving"


def cond(out, type_: str) -> tuple[str, str, str]:
    c = next(c for c in out.status.conditions if c.type == type_)
    return c.status, c.reason, c.message


def test_the_routed_condition_says_which_traffic_mode_is_in_use(now):
    assert cond(decide(observed(), now), "Routed")[:2] == ("True", "RouteAccepted")
    assert cond(decide(observed(route=None), now), "Routed")[:2] == ("False", "RouteNotAccepted")
    status, reason, message = cond(decide(observed(spec=RATIO, route=None), now), "Routed")
    assert (status, reason) == ("True", "ReplicaRatio") and "behind Service" in message


def test_without_the_gateway_api_a_gateway_ref_falls_back_to_the_replica_ratio(now):
    out = decide(observed(releases=(V1, rel("v2", 2, TargetState.PROGRESSING, 20)), route=None,
                          gateway_api=False), now)
    assert child(out, "HTTPRoute", "agent") is None and out.status.traffic == "ReplicaRatio"
    assert canary_deployment(out)["spec"]["replicas"] == 1
    status, reason, message = cond(out, "Routed")
    assert (status, reason) == ("True", "NoGatewayAPI") and "spec.traffic.gatewayRef ignored" in message
    assert out.status.phase == "Serving"


def test_a_route_of_that_name_owned_by_another_is_never_written(now):
    out = decide(observed(route=None, route_foreign_owner="no owner (made by hand)"), now)
    assert out.status.phase == "Invalid" and not out.children and not out.deletions
    status, reason, message = cond(out, "Valid")
    assert (status, reason) == ("False", "HTTPRouteNotOwned")
    assert "HTTPRoute team-a/agent already exists and belongs to no owner (made by hand)" in message


def test_a_missing_gateway_is_invalid_naming_it_and_keeps_what_serves(now):
    out = decide(observed(route=None, gateway_found=False), now)
    status, reason, message = cond(out, "Valid")
    assert (status, reason) == ("False", "GatewayNotFound")
    assert "Gateway tugboat-gateway/tugboat does not exist" in message
    assert not out.children and not out.deletions  # the serving objects stay as they are


def test_the_network_policy_admits_the_namespace_of_the_named_gateway(now):
    spec = {**ROUTED, "traffic": {"gatewayRef": {"name": "edge", "namespace": "edge-system"}}}
    policy = child(decide(observed(spec=spec), now), "NetworkPolicy", serving_name("agent"))
    peers = [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
             for p in policy["spec"]["ingress"][0]["from"]]
    assert peers == ["tugboat-gateway", "mon", "edge-system"]


@pytest.mark.parametrize(("stable", "weight", "mode", "want"), [
    (4, 0, TrafficMode.GATEWAY, 0), (4, 1, TrafficMode.GATEWAY, 1), (4, 50, TrafficMode.GATEWAY, 2),
    (4, 100, TrafficMode.GATEWAY, 4), (4, 10, TrafficMode.REPLICA_RATIO, 1),
    (4, 50, TrafficMode.REPLICA_RATIO, 4), (4, 75, TrafficMode.REPLICA_RATIO, 12),
    (0, 50, TrafficMode.GATEWAY, 0), (1000, 99, TrafficMode.REPLICA_RATIO, 1000)])
def test_canary_replicas_follow_the_weight_at_least_one_while_above_zero(stable, weight, mode, want):
    assert canary_replicas(stable, weight, mode) == want


def test_rollback_takes_the_weight_at_once_and_the_pods_after_a_delay(now):
    rolled = (V1, rel("v2", 2, TargetState.ROLLED_BACK, 0))
    before = AgentDeploymentStatus(stable_release="v1", canary_release="v2", canary_weight=50)
    first = decide(observed(releases=rolled, status=before, canary_deployment=dep("v2", 2)), now)
    assert list(weights(first).values()) == [100, 0]
    assert canary_deployment(first) is None and first.deletions == ()  # left alone, still running
    assert first.status.canary_idle_since == now and first.requeue_after == CANARY_SCALE_DOWN_DELAY
    assert first.status.canary_release is None and first.status.stable_release == "v1"
    (warning,) = [e for e in first.events if e.type == "Warning"]
    assert warning.reason == "RolledBack" and "error rate 0.4 > 0.05" in warning.message

    # Restart-safe: the time is in status, so a later pass (any operator) finishes the delay.
    later = decide(observed(releases=rolled, status=first.status, canary_deployment=dep("v2", 2)),
                   now + timedelta(seconds=10))
    assert later.deletions == () and later.requeue_after == pytest.approx(CANARY_SCALE_DOWN_DELAY - 10)
    done = decide(observed(releases=rolled, status=first.status, canary_deployment=dep("v2", 2)),
                  now + timedelta(seconds=CANARY_SCALE_DOWN_DELAY))
    assert done.deletions == (("apps/v1", "Deployment", deployment_name("agent", CANARY), "team-a"),)
    assert done.status.canary_idle_since is None and done.requeue_after is None


def test_by_replica_ratio_weight_zero_removes_the_canary_pods_at_once(now):
    out = decide(observed(spec=RATIO, route=None, releases=(V1, rel("v2", 2, TargetState.ROLLED_BACK)),
                          canary_deployment=dep("v2", 1)), now)
    assert out.deletions == (("apps/v1", "Deployment", deployment_name("agent", CANARY), "team-a"),)


def test_promotion_hands_the_traffic_over_once_the_stable_serves_the_new_release(now):
    promoted = (V1, rel("v2", 2, TargetState.PROMOTED, 100))
    before = AgentDeploymentStatus(stable_release="v1", canary_release="v2", canary_weight=100)
    out = decide(observed(releases=promoted, status=before, canary_deployment=dep("v2", 4)), now)
    stable = child(out, "Deployment", serving_name("agent"))
    assert flag(stable, "--release") == "v2" and flag(stable, "--track") == STABLE
    # The stable still runs v1 pods: the canary keeps every request until it has rolled.
    assert list(weights(out).values()) == [0, 100]
    assert flag(canary_deployment(out), "--release") == "v2"
    assert out.status.stable_release == "v2" and "handing over" in out.status.message
    assert [e.reason for e in out.events if e.reason == "TargetPromoted"] == ["TargetPromoted"]

    rolled = decide(observed(releases=promoted, status=out.status, canary_deployment=dep("v2", 4),
                             deployment=dep("v2")), now)
    assert list(weights(rolled).values()) == [100, 0]
    assert canary_deployment(rolled) is None and rolled.status.canary_idle_since == now
    assert rolled.status.phase == "Serving" and rolled.status.canary_release is None


def test_the_hand_over_waits_until_no_old_stable_pod_is_left(now):
    # Mid-roll (seen in the demo): every new pod created and the ready count reached, but one old
    # pod still ready behind the stable Service; moving the traffic now would send some back to v1.
    promoted = (V1, rel("v2", 2, TargetState.PROMOTED, 100))
    before = AgentDeploymentStatus(stable_release="v2", canary_release="v2", canary_weight=100)
    mid_roll = replace(dep("v2"), total=5)
    out = decide(observed(releases=promoted, status=before, canary_deployment=dep("v2", 4),
                          deployment=mid_roll), now)
    assert list(weights(out).values()) == [0, 100] and "handing over" in out.status.message
    assert out.status.phase == "Deploying"
    rolled = decide(observed(releases=promoted, status=out.status, canary_deployment=dep("v2", 4),
                             deployment=replace(mid_roll, total=4)), now)
    assert list(weights(rolled).values()) == [100, 0] and rolled.status.phase == "Serving"


def test_nothing_verified_stops_both_tracks(now):
    unverified = replace(V1, verified=False)
    out = decide(observed(releases=(unverified,), canary_deployment=dep("v2", 1)), now)
    assert set(out.deletions) == {("apps/v1", "Deployment", serving_name("agent"), "team-a"),
                                  ("apps/v1", "Deployment", deployment_name("agent", CANARY), "team-a")}


def test_summaries_pick_this_deployments_plan_and_the_routes_acceptance():
    target = {"namespace": "team-a", "name": "agent", "tenant": "team-a", "wave": 1,
              "state": "Progressing", "weight": 30, "step": 2}
    obj = {"metadata": {"name": "v2", "namespace": "ml", "creationTimestamp": "2026-02-01T00:00:00Z"},
           "spec": {"modelLine": "moe-arith"},
           "status": {"phase": "Progressing", "rollout": {"reason": "RolloutProgressing", "targets": [
               {**target, "name": "other", "weight": 90}, target]}}}
    view = summarize_release(obj, ("team-a", "agent"))
    assert (view.plan.state, view.plan.weight, view.plan.step, view.has_rollout) == (
        TargetState.PROGRESSING, 30, 2, True)
    assert summarize_release(obj, ("team-b", "agent")).plan is None
    assert summarize_release({**obj, "status": {}}, ("team-a", "agent")).has_rollout is False

    def route(*statuses):
        return {"metadata": {"name": "agent"}, "status": {"parents": [
            {"conditions": [{"type": "Accepted", "status": s, "reason": r, "message": "m"}]}
            for s, r in statuses]}}
    assert summarize_route(route(("True", "Accepted"))).accepted is True
    refused = summarize_route(route(("True", "Accepted"), ("False", "NoMatchingParent")))
    assert (refused.accepted, refused.reason) == (False, "NoMatchingParent")
    assert summarize_route({"metadata": {"name": "agent"}}).accepted is None


def test_each_track_gets_the_graph_its_own_release_published(now):
    spec = {**ROUTED, "graph": {"preferred": "int8"}}
    v2 = replace(rel("v2", 2, TargetState.PROGRESSING, 10), graphs=(PublishedGraph("int8", True),))
    out = decide(observed(spec=spec, releases=(V1, v2)), now)
    stable = child(out, "Deployment", serving_name("agent"))
    assert args(stable)[-2:] == ["--graph", "fp32"]  # v1 published fp32 only: the fallback
    assert args(canary_deployment(out))[-3:] == ["--graph", "int8", "--graph-fallback"]
