"""Tenant decide: namespaces set up, claims refused, released namespaces cleaned, deletion plan."""

from __future__ import annotations

from tugboat.api.tenant import TenantStatus
from tugboat.reconcile.outcome import Meta
from tugboat.reconcile.tenant import Observed, claim_key, decide, plan_deletion

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


def test_retain_deletes_nothing():
    plan = plan_deletion("team-a", {**SPEC, "deletionPolicy": "Retain"},
                         {"team-a": {"tugboat.dev/tenant": "team-a"}})
    assert plan.delete == ()


def test_delete_takes_only_namespaces_labelled_as_its_own():
    labels = {"team-a": {"tugboat.dev/tenant": "team-a"},
              "team-a-dev": {"tugboat.dev/tenant": "someone-else"}}
    plan = plan_deletion("team-a", {**SPEC, "deletionPolicy": "Delete"}, labels)
    assert plan.delete == ("team-a",)
    assert plan.keep == ("team-a-dev",)


def test_delete_skips_namespaces_already_gone():
    plan = plan_deletion("team-a", {**SPEC, "deletionPolicy": "Delete"},
                         {"team-a": None, "team-a-dev": {"tugboat.dev/tenant": "team-a"}})
    assert plan.delete == ("team-a-dev",)


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
