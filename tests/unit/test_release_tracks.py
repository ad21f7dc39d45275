"""release_tracks: which release each track serves, from the releases' rollout plans for T."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tugboat.api.agent_deployment import AgentDeploymentSpec, TrafficMode
from tugboat.api.model_release import TargetPlan, TargetState
from tugboat.api.tenant import TenantSpec
from tugboat.reconcile.release_tracks import ReleaseView, tracks_for
from tugboat.reconcile.tenancy import TenantView

TENANT = TenantView("team-a", TenantSpec.model_validate({
    "namespaces": ["team-a"], "costCenter": "cc", "allowedModelLines": ["moe-arith"]}))
SPEC = AgentDeploymentSpec.model_validate({"modelLine": "moe-arith"})
DIGEST = "d" * 64


def plan(state: TargetState, weight: int = 0, stable: str | None = "v1", step: int = 0) -> TargetPlan:
    return TargetPlan(namespace="team-a", name="agent", tenant="team-a", wave=0, stable_release=stable,
                      state=state, weight=weight, step=step)


def rel(name: str, month: int, phase: str = "Ready", state: TargetState | None = None, weight: int = 0,
        verified: bool = True, rollout: bool = True, reason: str | None = None,
        stable: str | None = "v1") -> ReleaseView:
    return ReleaseView(name, "ml", "moe-arith", verified, phase, f"file:///art/{name}", DIGEST,
                       f"2026-{month:02d}-01T00:00:00Z",
                       plan=plan(state, weight, stable) if state is not None else None,
                       rollout_reason=reason, has_rollout=rollout)


def tracks(*releases, current=None, spec=SPEC, tenant=TENANT):
    return tracks_for(spec, tenant, tuple(releases), current)


def names(t) -> tuple:
    return (t.stable.name if t.stable else None, t.canary.name if t.canary else None, t.weight)


def test_a_new_ready_release_without_a_promoted_plan_never_takes_the_stables_traffic():
    v1 = rel("v1", 1, rollout=False)
    for v2 in (rel("v2", 2), rel("v2", 2, rollout=False), rel("v2", 2, phase="Promoted"),
               rel("v2", 2, state=TargetState.PENDING), rel("v2", 2, reason="RolloutPromoted")):
        assert names(tracks(v1, v2, current="v1")) == ("v1", None, 0), v2


@pytest.mark.parametrize("state", [TargetState.PROGRESSING, TargetState.PAUSED, TargetState.INCONCLUSIVE])
def test_a_plan_in_progress_makes_the_canary_at_its_weight(state):
    t = tracks(rel("v1", 1, rollout=False), rel("v2", 2, phase="Progressing", state=state, weight=25),
               current="v1")
    assert names(t) == ("v1", "v2", 25)
    assert t.state == state
    assert "canary v2 at 25%" in t.message


def test_rolled_back_or_weight_zero_is_no_canary_traffic():
    v1 = rel("v1", 1, rollout=False)
    assert names(tracks(v1, rel("v2", 2, phase="RolledBack", state=TargetState.ROLLED_BACK, weight=0),
                        current="v1")) == ("v1", None, 0)
    zero = tracks(v1, rel("v2", 2, state=TargetState.PROGRESSING, weight=0), current="v1")
    assert (zero.stable.name, zero.weight) == ("v1", 0)


def test_a_promoted_plan_makes_the_new_stable_newest_wins():
    t = tracks(rel("v1", 1, rollout=False), rel("v2", 2, "Promoted", state=TargetState.PROMOTED, weight=100),
               rel("v3", 3, "Promoted", state=TargetState.PROMOTED, weight=100, stable="v2"), current="v1")
    assert names(t) == ("v3", None, 0)
    # An old release's finished plan never takes the place of a newer stable.
    assert names(tracks(rel("v1", 1, "Promoted", state=TargetState.PROMOTED), rel("v2", 2, rollout=False),
                        current="v2")) == ("v2", None, 0)


@pytest.mark.parametrize("phase", ["Progressing", "Paused", "Inconclusive"])
def test_promoted_here_while_later_waves_roll_is_a_canary_at_100_beside_the_old_stable(phase):
    """The stable stays fully scaled on the old release until the release is promoted everywhere,
    so a breach in a later wave takes this deployment's traffic back at once."""
    t = tracks(rel("v1", 1, rollout=False), rel("v2", 2, phase, state=TargetState.PROMOTED, weight=100),
               current="v1")
    assert names(t) == ("v1", "v2", 100) and t.state == TargetState.PROMOTED
    later = tracks(rel("v1", 1, rollout=False), rel("v2", 2, "RolledBack", state=TargetState.ROLLED_BACK),
                   current="v1")
    assert names(later) == ("v1", None, 0)


def test_a_release_rolled_back_after_its_promotion_here_returns_to_what_it_replaced():
    """Rollback everywhere the release went, earlier waves included."""
    t = tracks(rel("v1", 1, rollout=False), rel("v2", 2, state=TargetState.ROLLED_BACK, stable="v1"),
               current="v2")
    assert names(t) == ("v1", None, 0)


def test_the_stable_stays_only_while_it_is_servable():
    gone = tracks(rel("v1", 1, verified=False, rollout=False), rel("v2", 2), current="v1")
    assert gone.stable is None and "no verified release" in gone.message


def test_first_release_goes_to_100_at_once():
    first = tracks(rel("v1", 1, phase="Promoted", reason="FirstRelease"))
    assert names(first) == ("v1", None, 0)
    assert names(tracks(rel("v1", 1, state=TargetState.PROMOTED, stable=None))) == ("v1", None, 0)


def test_a_deployment_created_after_a_finished_rollout_serves_the_promoted_release_at_once():
    t = tracks(rel("v1", 1, phase="Promoted"), rel("v2", 2, phase="Promoted"), rel("v3", 3))
    assert t.stable.name == "v2" and t.canary is None  # v3 is only Ready: it must roll out here first


def test_before_rollouts_existed_the_newest_ready_serves_only_when_nothing_is_stable():
    legacy = (rel("v1", 1, rollout=False), rel("v2", 2, rollout=False))
    assert names(tracks(*legacy)) == ("v2", None, 0)
    assert names(tracks(*legacy, current="v1")) == ("v1", None, 0)
    # A release whose rollout started is not picked by the old rule, even with nothing stable.
    waiting = tracks(rel("v1", 1, phase="Progressing", state=TargetState.PENDING))
    assert waiting.stable is None


def test_nothing_unverified_or_of_another_line_is_ever_served():
    other = replace(rel("x1", 5, state=TargetState.PROGRESSING, weight=50), model_line="other")
    unverified = rel("v2", 2, state=TargetState.PROGRESSING, weight=50, verified=False)
    assert names(tracks(rel("v1", 1, rollout=False), other, unverified, current="v1")) == ("v1", None, 0)
    assert tracks(unverified).stable is None


def test_without_a_stable_there_is_no_canary():
    assert tracks(rel("v2", 2, state=TargetState.PROGRESSING, weight=10)).stable is None


def test_pins_serve_their_release_at_100_with_no_canary():
    releases = (rel("v1", 1, rollout=False), rel("v2", 2, state=TargetState.PROGRESSING, weight=50))
    pinned_spec = SPEC.model_copy(update={"release": "v1"})
    assert names(tracks(*releases, current="v1", spec=pinned_spec)) == ("v1", None, 0)
    tenant_pin = replace(TENANT, spec=TENANT.spec.model_copy(update={
        "rollout": TENANT.spec.rollout.model_copy(update={"pinned_release": "v2"})}))
    assert names(tracks(*releases, current="v1", tenant=tenant_pin)) == ("v2", None, 0)
    missing = tracks(*releases, spec=SPEC.model_copy(update={"release": "v9"}))
    assert missing.stable is None and "pinned release v9" in missing.message


def test_the_traffic_mode_follows_the_gateway_ref():
    v1 = rel("v1", 1, rollout=False)
    assert tracks(v1).mode == TrafficMode.REPLICA_RATIO
    routed = AgentDeploymentSpec.model_validate({"modelLine": "moe-arith",
                                                 "traffic": {"gatewayRef": {"name": "gw"}}})
    assert tracks(v1, spec=routed).mode == TrafficMode.GATEWAY
