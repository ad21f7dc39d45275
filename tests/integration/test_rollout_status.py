"""A rollout plan as the state machine writes it is stored whole by the real API server (the
status schema prunes nothing) and shows in `kubectl get mr`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml

from tests.unit.rollout.factories import obs, spec, target
from tugboat.api.base import API_VERSION
from tugboat.api.model_release import ModelReleaseStatus, RolloutStatus
from tugboat.dev.tools import repo_root
from tugboat.rollout.decide import decide
from tugboat.rollout.inputs import Served

NS, NAME = "rollout-status", "moe-arith-v2"


def _rolled_back() -> RolloutStatus:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    a, b = target("agent-a", "team-a"), target("agent-b", "team-b", wave=1, cap=20)
    s = spec()
    d = decide(s, [a, b], None, now, served=[Served(*a.key, 0, 0)])
    t = now + timedelta(seconds=10)
    d = decide(s, [a, b], d.status, t, [obs(a, t)], served=[Served(*a.key, 50, 150)])
    t = now + timedelta(seconds=20)
    d = decide(s, [a, b], d.status, t, [obs(a, t, value=0.4, stable_value=0.01)],
               served=[Served(*a.key, 80, 240)])
    assert d.status.phase == "RolledBack"
    return d.status


def test_rollout_status_is_stored_whole_and_printed(cluster, kube):
    cluster.kubectl("create", "namespace", NS, check=False)
    doc = yaml.safe_load((repo_root() / "examples" / "20-modelrelease.yaml").read_text())
    doc["metadata"] = {"name": NAME, "namespace": NS}
    kube.apply(doc)
    sent = ModelReleaseStatus(phase="RolledBack", rollout=_rolled_back()).wire()
    stored = kube.patch_status(API_VERSION, "ModelRelease", NAME, NS, sent)["status"]
    assert stored["rollout"] == sent["rollout"]
    assert RolloutStatus.model_validate(stored["rollout"]) == _rolled_back()
    out = cluster.kubectl("get", "mr", NAME, "-n", NS, "--no-headers",
                          "-o", "custom-columns=W:.status.rollout.wave,T:.status.rollout.progress,"
                          "B:.status.rollout.breach.metric").stdout.split()
    assert out == ["0", "0/2", "ErrorRate"]
    header = cluster.kubectl("get", "mr", NAME, "-n", NS).stdout.splitlines()[0].split()
    assert header[:8] == ["NAME", "PHASE", "LINE", "VERSION", "WAVE", "STEP", "WEIGHT", "TARGETS"]
