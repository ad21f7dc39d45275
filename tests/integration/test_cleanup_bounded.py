"""No wedged deletions, on the real API server: a deleted TrainingRun whose RayJob hangs on someone
else's finalizer waits for it only up to the cleanup timeout, then may go with a Warning naming the
RayJob and its finalizer; a cluster that serves no RayJob kind is nothing to wait for. The cleanup
step (what the operator's deletion handler runs) is called in-process with the clock given."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import yaml

from tugboat.api.base import API_VERSION
from tugboat.controllers import cleanup
from tugboat.dev.tools import repo_root

NS, RUN, HOLD = "cleanup-team", "stuck-run", "example.com/hold"
EXAMPLE = yaml.safe_load((repo_root() / "examples" / "10-trainingrun.yaml").read_text())
pytestmark = pytest.mark.timeout(90)


def _events(kube, reason: str) -> list[str]:
    return [e.get("message") or "" for e in kube.list("v1", "Event", NS)
            if e.get("reason") == reason and (e.get("involvedObject") or {}).get("name") == RUN]


@pytest.fixture
def deleting_run(kube):
    """A TrainingRun being deleted (held by a foreign finalizer so it stays observable) with one
    RayJob of its own that a foreign finalizer holds too."""
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kube.apply({"apiVersion": API_VERSION, "kind": "TrainingRun",
                "metadata": {"name": RUN, "namespace": NS, "finalizers": [HOLD]},
                "spec": EXAMPLE["spec"]})
    kube.apply({"apiVersion": "ray.io/v1", "kind": "RayJob",
                "metadata": {"name": f"{RUN}-ray", "namespace": NS, "finalizers": [HOLD],
                             "labels": {"tugboat.dev/trainingrun": RUN}},
                "spec": {"entrypoint": "true"}})
    kube.delete(API_VERSION, "TrainingRun", RUN, NS)
    yield kube.get(API_VERSION, "TrainingRun", RUN, NS)
    for api, kind, name in (("ray.io/v1", "RayJob", f"{RUN}-ray"), (API_VERSION, "TrainingRun", RUN)):
        if kube.get_or_none(api, kind, name, NS) is not None:
            kube.patch(api, kind, name, NS, {"metadata": {"finalizers": None}})


def test_a_child_held_by_a_foreign_finalizer_is_awaited_only_up_to_the_timeout(kube, deleting_run):
    since = datetime.fromisoformat(deleting_run["metadata"]["deletionTimestamp"].replace("Z", "+00:00"))
    waiting = cleanup.stop_ray_jobs(kube, deleting_run, since + timedelta(seconds=5), timeout=60)
    assert waiting == f"waiting for 1 RayJob(s) to stop: {RUN}-ray"
    job = kube.get("ray.io/v1", "RayJob", f"{RUN}-ray", NS)
    assert job["metadata"].get("deletionTimestamp")  # asked to go; the foreign finalizer holds it
    assert cleanup.stop_ray_jobs(kube, deleting_run, since + timedelta(seconds=61), timeout=60) is None
    (message,) = _events(kube, "CleanupTimedOut")
    assert f"{RUN}-ray (finalizers: {HOLD}" in message and "gave up waiting 60s" in message


def test_a_missing_child_kind_is_nothing_to_wait_for(kube, deleting_run):
    now = datetime.fromisoformat(deleting_run["metadata"]["deletionTimestamp"].replace("Z", "+00:00"))
    assert cleanup.stop_ray_jobs(kube, deleting_run, now, timeout=60,
                                 kind=("widgets.example.com/v1", "Widget")) is None
    assert any("Widget (widgets.example.com/v1) is not served" in m for m in _events(kube, "CleanupSkipped"))
