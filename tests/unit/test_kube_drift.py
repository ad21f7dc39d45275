"""When a server-side apply may be skipped: the stamp, and covers() against server-added fields."""
from tugboat.kube.drift import APPLIED, apply_needed, covers, stamped


def manifest(**annotations) -> dict:
    return {"apiVersion": "v1", "kind": "X", "metadata": {"name": "a", "annotations": annotations},
            "spec": {"ports": [{"port": 80}], "mode": "on"}}


def test_the_stamp_is_a_digest_of_the_content_and_ignores_an_old_stamp():
    a, b = stamped(manifest()), stamped(manifest(**{APPLIED: "old"}))
    assert a == b and len(a["metadata"]["annotations"][APPLIED]) == 20
    other = stamped(manifest(x="1"))
    assert other["metadata"]["annotations"][APPLIED] != a["metadata"]["annotations"][APPLIED]


def test_covers_allows_added_keys_but_not_changed_values_or_list_lengths():
    want = {"spec": {"ports": [{"port": 80}], "mode": "on"}}
    assert covers({"spec": {"ports": [{"port": 80, "protocol": "TCP"}], "mode": "on", "extra": 1}}, want)
    assert not covers({"spec": {"ports": [{"port": 81}], "mode": "on"}}, want)
    assert not covers({"spec": {"ports": [{"port": 80}, {"port": 90}], "mode": "on"}}, want)
    assert not covers({"spec": {"ports": [{"port": 80}]}}, want)


def test_apply_needed_when_missing_deleting_or_stamped_for_another_manifest():
    want = stamped(manifest())
    assert apply_needed(want, None)
    assert not apply_needed(want, want)
    deleting = {**want, "metadata": {**want["metadata"], "deletionTimestamp": "2026-12-06T00:00:00Z"}}
    assert apply_needed(want, deleting)
    assert apply_needed(stamped(manifest(x="1")), want)
