"""Two replicas with kopf peering; the leader is SIGKILLed mid-training. The standby takes over once
the leader's peering record expires and finishes the same attempt: one RayJob, no step lost."""

from __future__ import annotations

import time

from tests.integration.helpers import wait_for

from .conftest import CHAOS, apply, ray_jobs, reader, settled, training_run
from .faults import Recorder, assert_no_crash_loop

pytestmark = CHAOS
TR = "chaos-ha"
LIFETIME = 10  # seconds a dead leader's peering record keeps the standby paused


def test_standby_finishes_the_training_of_a_leader_killed_mid_work(cluster, kube, operators):
    peer = ("--peering-lifetime", str(LIFETIME))
    leader = operators("--priority", "500", *peer, standalone=False)
    standby = operators("--priority", "100", *peer, standalone=False)
    standby.wait_for_log("Initial authentication has finished", timeout=120)
    apply(cluster, training_run(TR, steps=60, interval=20))
    read = reader(kube, "TrainingRun", TR)
    with Recorder(read) as rec:
        wait_for(lambda: (o := read()) and (o.get("status") or {}).get("step", 0) >= 1, timeout=300,
                 interval=0.5, what=f"{TR} training under the leader")
        assert f"TrainingRun ml-platform/{TR}" not in standby.output(), "the standby must stay passive"
        leader.kill()
        killed = time.monotonic()
        standby.wait_for_log("Resuming operations", timeout=120)
        takeover = time.monotonic() - killed
        done = settled(kube, "TrainingRun", TR, "Succeeded", "Failed", timeout=300)
    print(f"standby resumed {takeover:.1f}s after the leader's SIGKILL; phases {rec.phases()}")
    st = done["status"]
    assert (st["phase"], st["attempt"], st["step"]) == ("Succeeded", 1, 60), st
    assert [j["metadata"]["name"] for j in ray_jobs(kube, TR)] == [st["rayJobName"]]
    assert f"TrainingRun ml-platform/{TR}" in standby.output(), "the standby wrote the final status"
    rec.assert_nothing_lost()
    assert_no_crash_loop(standby)
