"""A second client writes the status of a TrainingRun the operator is driving (a blind merge patch
of its message, as `kubectl patch --subresource=status` would), many times a second. The operator's
writes are preconditioned on the resourceVersion it read: they meet 409 Conflict, decide again from
a fresh read, and the training still ends with a status that is the operator's, nothing lost."""

from __future__ import annotations

import threading

from tests.integration.helpers import conditions, wait_for
from tugboat.api.base import API_VERSION

from .conftest import (
    CHAOS,
    NS,
    apply,
    assert_no_crash_loop,
    ray_jobs,
    reader,
    settled,
    training_run,
)
from .faults import Recorder

pytestmark = CHAOS
TR = "chaos-409"
FOREIGN = "written by a second client"


def _second_writer(kube, stop: threading.Event, writes: list[int]) -> None:
    while not stop.is_set():
        kube.patch_status(API_VERSION, "TrainingRun", TR, NS, {"message": f"{FOREIGN} #{len(writes)}"})
        writes.append(1)
        stop.wait(0.1)


def test_a_second_status_writer_meets_conflicts_and_loses_nothing(cluster, kube, operators):
    op = operators()
    apply(cluster, training_run(TR, steps=60, interval=20))
    read = reader(kube, "TrainingRun", TR)
    wait_for(lambda: (o := read()) and (o.get("status") or {}).get("phase"), timeout=120, what=f"{TR} status")
    stop, writes = threading.Event(), []
    writer = threading.Thread(target=_second_writer, args=(kube, stop, writes), daemon=True)
    with Recorder(read) as rec:
        writer.start()
        try:
            done = settled(kube, "TrainingRun", TR, "Succeeded", "Failed", timeout=300)
        finally:
            stop.set()
            writer.join(10)
        # The operator answers the foreign write (it is a watch event of its own object) with its own.
        done = wait_for(lambda: (o := read()) and not o["status"]["message"].startswith(FOREIGN) and o,
                        timeout=60, what="the operator's message back")
    conflicts = op.output().count("changed since it was read")
    print(f"second client: {len(writes)} status writes; operator: {conflicts} conflicts retried")
    assert conflicts >= 1, "the second writer never made the operator meet a 409"
    st = done["status"]
    assert (st["phase"], st["attempt"], st["step"]) == ("Succeeded", 1, 60), st
    assert conditions(done)["Trained"]["status"] == "True"
    assert [j["metadata"]["name"] for j in ray_jobs(kube, TR)] == [st["rayJobName"]]
    rec.assert_nothing_lost()
    assert_no_crash_loop(op)
