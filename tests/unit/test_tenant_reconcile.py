"""Tenant decide: namespaces set up, reserved and claimed ones refused, created ones recorded,
released namespaces cleaned, deletion plan."""

from __future__ import annotations

from tugboat.api.tenant import CreatedNamespace, TenantStatus
from tugboat.conditions import find
from tugboat.reconcile.outcome import Meta
from tugboat.reconcile.tenant import (
    Kept,
    Observed,
    claim_key,
    decide,
    namespaces_to_create,
    plan_deletion,
    record_created,
)

META = Meta("team-a", None, "uid-a", 3)
SPEC = {"namespaces": ["team-a", "team-a-dev"], "groups": ["devs"], "costCenter": "cc-1"}


def observed(spec=None, status=None, **kw) -> Observed:
    return Observed(META, spec or SPEC, status or TenantStatus(), kw.pop("claims", {}), **kw)


def test_valid_tenant_sets_up_every_namespace(now):
    out = decide(observed(agent_deployments=4), now)
    assert out.status.phase == "Active"
    assert out.status.namespaces == ["team-a", "team-a-dev"]
    assert out.status.agent_deployments == 4
    assert out.status.observed_generation == 3
    kinds = [(o["kind"], o["metadata"].get("namespace") or o["metadata"]["name"]) for o in out.children]
    assert kinds[0] == ("Namespace", "team-a")
    assert ("RoleBinding", "team-a-dev") in kinds
    assert out.deletions == ()
    assert [e.reason for e in out.events] == ["Reconciled"]


def test_second_pass_emits_no_event(now):
    first = decide(observed(), now)
    again = decide(observed(status=first.status), now)
    assert again.events == ()
    assert again.status == first.status


def test_claimed_namespace_is_invalid_and_sets_nothing_up(now):
    out = decide(observed(claims={"team-a-dev": "older"}), now)
    assert out.status.phase == "Invalid"
    assert out.children == ()
    assert "team-a-dev (tenant older)" in out.status.message


def test_namespace_dropped_from_spec_is_released(now):
    before = TenantStatus(namespaces=["team-a", "team-a-dev", "old"])
    out = decide(observed(status=before), now)
    released = [o for o in out.children if o["kind"] == "Namespace" and o["metadata"]["name"] == "old"]
    assert released == [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "old"}}]
    assert {(k, ns) for _, k, _, ns in out.deletions} == {
        ("ResourceQuota", "old"), ("LimitRange", "old"), ("NetworkPolicy", "old"),
        ("RoleBinding", "old")}


def test_namespace_another_tenant_now_lists_is_left_alone(now):
    before = TenantStatus(namespaces=["team-a", "team-a-dev", "old"])
    out = decide(observed(status=before, listed_by_others=frozenset({"old"})), now)
    assert all(o["metadata"].get("name") != "old" for o in out.children if o["kind"] == "Namespace")
    assert out.deletions == ()


def test_reserved_namespaces_are_refused_by_name_or_pattern_and_nothing_is_written(now):
    spec = {**SPEC, "namespaces": ["team-a", "kube-system", "default", "tugboat-system", "istio-ingress"]}
    reserved = ("default", "kube-*", "tugboat-system", "istio-*")
    out = decide(observed(spec, reserved=reserved), now)
    valid = find(out.status.conditions, "Valid")
    assert (valid.status, valid.reason) == ("False", "NamespaceReserved")
    assert valid.message == ("spec.namespaces: reserved for the platform: kube-system (as kube-*), "
                             "default, tugboat-system, istio-ingress (as istio-*)")
    assert out.children == () and out.deletions == ()
    assert namespaces_to_create(observed(spec, reserved=reserved), now) == ()


def test_reserved_wins_over_claimed_and_the_built_in_reserve_needs_no_flag(now):
    spec = {**SPEC, "namespaces": ["kube-public", "team-a"]}
    out = decide(observed(spec, claims={"team-a": "older"}), now)
    assert find(out.status.conditions, "Valid").reason == "NamespaceReserved"


def test_only_absent_namespaces_of_a_valid_tenant_are_created(now):
    assert namespaces_to_create(observed(namespace_uids={"team-a": "u1"}), now) == ("team-a-dev",)
    assert namespaces_to_create(observed(claims={"team-a-dev": "older"}), now) == ()
    assert namespaces_to_create(observed({"namespaces": ["team-a"]}), now) == ()  # no costCenter: invalid


def test_a_created_namespace_stays_recorded_while_listed_and_of_the_same_uid(now):
    status = record_created(TenantStatus(), "team-a-dev", "u2")
    status = record_created(status, "team-a-dev", "u3")  # created again (it had gone): the new uid
    assert status.created_namespaces == [CreatedNamespace(name="team-a-dev", uid="u3")]
    out = decide(observed(status=status, namespace_uids={"team-a": "u1", "team-a-dev": "u3"}), now)
    assert out.status.created_namespaces == [CreatedNamespace(name="team-a-dev", uid="u3")]
    assert out.status.model_dump(by_alias=True, mode="json")["createdNamespaces"] == [
        {"name": "team-a-dev", "uid": "u3"}]


def test_a_record_is_dropped_when_the_namespace_was_made_again_by_others_or_released(now):
    status = TenantStatus(namespaces=["team-a", "team-a-dev", "old"], created_namespaces=[
        CreatedNamespace(name="team-a-dev", uid="u2"), CreatedNamespace(name="old", uid="u9")])
    out = decide(observed(status=status, namespace_uids={"team-a": "u1", "team-a-dev": "other", "old": "u9"}),
                 now)
    assert out.status.created_namespaces == []


def test_an_invalid_spec_keeps_the_record(now):
    status = TenantStatus(created_namespaces=[CreatedNamespace(name="team-a", uid="u1")])
    out = decide(observed({**SPEC, "namespaces": ["team-a", "kube-system"]}, status=status), now)
    assert out.status.created_namespaces == status.created_namespaces


DELETE = {**SPEC, "deletionPolicy": "Delete"}
EXISTING = {"team-a": "u1", "team-a-dev": "u2"}


def test_retain_deletes_nothing():
    status = TenantStatus(created_namespaces=[CreatedNamespace(name="team-a", uid="u1")])
    plan = plan_deletion({**SPEC, "deletionPolicy": "Retain"}, status, EXISTING)
    assert plan.delete == ()
    assert [k.namespace for k in plan.keep] == ["team-a", "team-a-dev"]


def test_delete_takes_only_namespaces_the_operator_created_and_keeps_adopted_ones():
    status = TenantStatus(namespaces=["team-a", "team-a-dev"],
                          created_namespaces=[CreatedNamespace(name="team-a", uid="u1")])
    plan = plan_deletion(DELETE, status, EXISTING)
    assert plan.delete == (CreatedNamespace(name="team-a", uid="u1"),)
    (kept,) = plan.keep
    assert (kept.namespace, kept.release) == ("team-a-dev", True)
    assert "adopted" in kept.why


def test_a_label_or_a_set_up_namespace_is_no_proof_of_creation():
    # What main trusted: the namespace carries our tenant label (we write it on adopted ones too).
    status = TenantStatus(namespaces=["team-a", "team-a-dev"])
    assert plan_deletion(DELETE, status, EXISTING).delete == ()


def test_delete_keeps_a_namespace_made_again_since_reserved_or_listed_by_another_tenant():
    status = TenantStatus(namespaces=["team-a", "team-a-dev"], created_namespaces=[
        CreatedNamespace(name="team-a", uid="old-uid"), CreatedNamespace(name="team-a-dev", uid="u2")])
    plan = plan_deletion(DELETE, status, EXISTING)
    assert plan.delete == (CreatedNamespace(name="team-a-dev", uid="u2"),)
    assert "created again" in plan.keep[0].why
    plan = plan_deletion(DELETE, status, EXISTING, reserved=("team-a-*",),
                         listed_by_others=frozenset({"team-a"}))
    assert plan.delete == ()
    assert plan.keep == (Kept("team-a", "another Tenant lists it"),
                         Kept("team-a-dev", "reserved for the platform (team-a-*)"))


def test_delete_skips_namespaces_already_gone():
    status = TenantStatus(created_namespaces=[CreatedNamespace(name="team-a", uid="u1"),
                                              CreatedNamespace(name="team-a-dev", uid="u2")])
    plan = plan_deletion(DELETE, status, {"team-a-dev": "u2"})
    assert plan.delete == (CreatedNamespace(name="team-a-dev", uid="u2"),)
    assert plan.keep == ()


def test_a_refused_tenant_never_releases_a_namespace_it_did_not_set_up():
    plan = plan_deletion(DELETE, TenantStatus(), EXISTING)
    assert plan.delete == () and not any(k.release for k in plan.keep)


def tenant_obj(name: str, created: str, holds: list[str] | None = None) -> dict:
    return {"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"namespaces": ["shared"]}, "status": {"namespaces": holds or []}}


def test_the_tenant_that_set_a_namespace_up_keeps_it_against_any_newcomer():
    incumbent = tenant_obj("zeta", "2026-01-01T00:00:05Z", holds=["shared"])
    same_second = tenant_obj("alpha", "2026-01-01T00:00:05Z")
    older_but_new_here = tenant_obj("beta", "2026-01-01T00:00:00Z")
    ranked = sorted([same_second, older_but_new_here, incumbent], key=lambda t: claim_key(t, "shared"))
    assert [t["metadata"]["name"] for t in ranked] == ["zeta", "beta", "alpha"]


def test_without_an_incumbent_the_older_then_the_name_wins():
    a, b = tenant_obj("b", "2026-01-01T00:00:00Z"), tenant_obj("a", "2026-01-01T00:00:01Z")
    assert min([a, b], key=lambda t: claim_key(t, "shared")) is a
    c = tenant_obj("a", "2026-01-01T00:00:00Z")
    assert min([a, c], key=lambda t: claim_key(t, "shared")) is c


def test_a_tenants_reach_moves_with_its_spec_and_held_namespaces_not_its_counts():
    """on_tenant_change re-judges the Tenant's namespaces only when this changes: its own usage
    writes (one per AgentDeployment created) would otherwise re-judge every object, N times."""
    from tugboat.controllers.tenant import tenant_reach

    base = {"metadata": {"name": "t", "generation": 3},
            "status": {"namespaces": ["b", "a"], "agentDeployments": 1}}
    counted = {**base, "status": {**base["status"], "agentDeployments": 7}}
    assert tenant_reach(counted) == tenant_reach(base)
    assert tenant_reach({**base, "metadata": {"name": "t", "generation": 4}}) != tenant_reach(base)
    assert tenant_reach({**base, "status": {"namespaces": ["a"]}}) != tenant_reach(base)
