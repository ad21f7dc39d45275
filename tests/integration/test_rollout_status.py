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


def _table(out: str) -> dict[str, str]:
    """kubectl get's one row by column header: cells are aligned under their header, and an
    empty one is blank, so splitting on whitespace would shift the rest."""
    header, row = out.splitlines()
    starts = [i for i, c in enumerate(header) if c != " " and (i == 0 or header[i - 1] == " ")]
    ends = [*starts[1:], None]
    return {header[a:b].strip(): row[a:b].strip() for a, b in zip(starts, ends, strict=True)}


def _rolling() -> RolloutStatus:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    a, b = target("agent-a", "team-a"), target("agent-b", "team-a")
    s = spec()
    d = decide(s, [a, b], None, now, served=[Served(*a.key, 0, 0), Served(*b.key, 0, 0)])
    t = now + timedelta(seconds=10)
    d = decide(s, [a, b], d.status, t, [obs(a, t), obs(b, t)],
               served=[Served(*a.key, 50, 150), Served(*b.key, 50, 150)])
    assert d.status.phase == "Progressing"
    return d.status


def test_kubectl_get_shows_a_rolling_release(cluster, kube):
    """The default columns carry what people watch during a rollout: step, weight, targets
    promoted / targets and the last analysis verdict."""
    cluster.kubectl("create", "namespace", NS, check=False)
    doc = yaml.safe_load((repo_root() / "examples" / "20-modelrelease.yaml").read_text())
    doc["metadata"] = {"name": "rolling", "namespace": NS}
    kube.apply(doc)
    rollout = _rolling()
    kube.patch_status(API_VERSION, "ModelRelease", "rolling", NS,
                      ModelReleaseStatus(phase="Rolling", rollout=rollout).wire())
    cells = _table(cluster.kubectl("get", "mr", "rolling", "-n", NS).stdout)
    assert cells == {"NAME": "rolling", "PHASE": "Rolling", "LINE": doc["spec"]["modelLine"],
                     "VERSION": "", "WAVE": "0", "STEP": str(rollout.step),
                     "WEIGHT": str(rollout.weight), "TARGETS": "0/2",
                     "ANALYSIS": rollout.last_verdict, "AGE": cells["AGE"]}
    assert rollout.weight == 10 and rollout.last_verdict.startswith("Pass: error-rate")


def test_kubectl_get_shows_stable_canary_and_weight_of_a_deployment(cluster, kube):
    cluster.kubectl("create", "namespace", NS, check=False)
    doc = yaml.safe_load((repo_root() / "examples" / "30-agentdeployment.yaml").read_text())
    doc["metadata"] = {"name": "agent-cols", "namespace": NS}
    kube.apply(doc)
    kube.patch_status(API_VERSION, "AgentDeployment", "agent-cols", NS, {
        "phase": "Ready", "release": "moe-v1", "stableRelease": "moe-v1",
        "canaryRelease": "moe-v2", "canaryWeight": 10})
    cells = _table(cluster.kubectl("get", "agd", "agent-cols", "-n", NS).stdout)
    assert (cells["STABLE"], cells["CANARY"], cells["WEIGHT"]) == ("moe-v1", "moe-v2", "10")
