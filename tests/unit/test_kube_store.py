"""The informers' store: newer resourceVersion wins, deletions stay deleted, indexes follow."""

from __future__ import annotations

from tugboat.controllers.indexes import by_listed_namespace, by_model_line, by_training_source
from tugboat.kube.cache import apply_event
from tugboat.kube.store import Store, newer


def obj(name: str, rv: str, line: str | None = "chat", ns: str | None = "team-a", **spec) -> dict:
    return {"apiVersion": "tugboat.dev/v1alpha1", "kind": "AgentDeployment",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": rv},
            "spec": {"modelLine": line, **spec} if line else spec}


def lines() -> Store:
    return Store({"line": by_model_line})


def test_newer_version_wins_and_older_is_ignored():
    s = lines()
    assert s.upsert(obj("a", "10"))
    assert not s.upsert(obj("a", "9", line="old"))
    assert s.get("team-a", "a")["metadata"]["resourceVersion"] == "10"
    assert s.upsert(obj("a", "11", line="code"))
    assert [o["metadata"]["resourceVersion"] for o in s.by_index("line", "code")] == ["11"]


def test_versions_compare_as_numbers_not_text():
    assert newer("10", "9") and not newer("9", "10") and newer("5", None)


def test_index_moves_with_the_object_and_empties_on_delete():
    s = lines()
    s.upsert(obj("a", "1"))
    s.upsert(obj("b", "2"))
    s.upsert(obj("a", "3", line="code"))
    assert [o["metadata"]["name"] for o in s.by_index("line", "chat")] == ["b"]
    s.delete(obj("b", "4"))
    assert s.by_index("line", "chat") == []
    assert [o["metadata"]["name"] for o in s.list("team-a")] == ["a"]


def test_a_late_older_event_does_not_resurrect_a_deleted_object():
    s = lines()
    s.upsert(obj("a", "5"))
    s.delete(obj("a", "7"))  # kopf saw the deletion before our watch did
    apply_event(s, "MODIFIED", obj("a", "6"))  # the watch catching up
    assert s.get("team-a", "a") is None
    apply_event(s, "ADDED", obj("a", "8"))  # created again under the same name
    assert s.get("team-a", "a") is not None


def test_delete_older_than_held_is_ignored():
    s = lines()
    s.upsert(obj("a", "9"))
    s.delete(obj("a", "8"))
    assert s.get("team-a", "a") is not None


def test_replace_is_the_whole_truth():
    s = lines()
    s.upsert(obj("a", "1"))
    s.delete(obj("gone", "2"))
    s.replace([obj("b", "3"), obj("gone", "1")])
    assert s.get("team-a", "a") is None
    assert s.get("team-a", "gone") is not None  # a fresh list forgets tombstones
    assert sorted(o["metadata"]["name"] for o in s.by_index("line", "chat")) == ["b", "gone"]


def test_index_functions():
    assert by_model_line(obj("a", "1", line=None)) == []
    release = {"metadata": {"name": "r", "namespace": "ml"}, "spec": {"source": {"trainingRun": "t"}}}
    assert by_training_source(release) == ["ml/t"]
    assert by_training_source({"metadata": {"name": "r", "namespace": "ml"}, "spec": {}}) == []
    tenant = {"metadata": {"name": "t"}, "spec": {"namespaces": ["x", "y"]}}
    assert by_listed_namespace(tenant) == ["x", "y"]


def test_managed_fields_are_not_kept():
    store = Store()
    store.upsert({"metadata": {"name": "a", "namespace": "ml", "resourceVersion": "1",
                               "managedFields": [{"manager": "tugboat", "fieldsV1": {"f:spec": {}}}]},
                  "spec": {"x": 1}})
    assert store.get("ml", "a") == {"metadata": {"name": "a", "namespace": "ml", "resourceVersion": "1"},
                                    "spec": {"x": 1}}


def test_the_echo_of_a_stored_version_is_not_news():
    s = lines()
    assert s.upsert(obj("a", "4"))
    assert not s.upsert(obj("a", "4"))  # our own write's answer came first, then its watch event
    assert not apply_event(s, "MODIFIED", obj("a", "4"))
    assert apply_event(s, "MODIFIED", obj("a", "5")) and apply_event(s, "DELETED", obj("a", "6"))
    assert not apply_event(s, "BOOKMARK", obj("a", "7"))


def test_a_relist_says_what_changed_since_the_last_one():
    s = lines()
    assert [t for t, _ in s.replace([obj("a", "1"), obj("b", "2")])] == ["ADDED", "ADDED"]
    changes = s.replace([obj("a", "1"), obj("b", "3"), obj("c", "4")])
    assert sorted((t, o["metadata"]["name"]) for t, o in changes) == [("ADDED", "c"), ("MODIFIED", "b")]
    assert [(t, o["metadata"]["name"]) for t, o in s.replace([obj("c", "4")])] == [
        ("DELETED", "a"), ("DELETED", "b")]
