"""A dev cluster kwokctl still records but whose processes are gone (a reboot, a killed session):
`up()` starts it again from the record or, when that does not serve within a minute, creates it
afresh, instead of failing on a dead port (as `make demo` did on a machine whose previous
session's cluster had died). Here every component is SIGKILLed, and `kwokctl start cluster` has
not brought such a cluster back, so this shows the fresh-creation path (about two minutes)."""

from __future__ import annotations

import os
import signal
import time
import uuid

from tests.integration.helpers import wait_for
from tugboat.dev.cluster import DevCluster

from .conftest import CHAOS

pytestmark = CHAOS


def test_a_cluster_whose_processes_died_is_started_again(tmp_path):
    cluster = DevCluster(name=f"revive-{uuid.uuid4().hex[:6]}", workdir=tmp_path, platform=False)
    try:
        cluster.up()
        pids = cluster.workdir / "clusters" / cluster.name / "pids"
        for pid_file in pids.glob("*.pid"):
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_for(lambda: not cluster.serving(), timeout=30, what="the killed API server to stop answering")
        assert cluster.running()  # kwokctl still lists it: the case up() must heal
        said: list[str] = []
        started = time.monotonic()
        cluster.up(log=said.append)
        assert cluster.serving(), said
        assert any("starting it again" in m for m in said), said
        assert cluster.kubectl("get", "nodes", check=False).returncode == 0, said
        print("; ".join(said))
        print(f"revived in {time.monotonic() - started:.1f}s")
    finally:
        cluster.down()
