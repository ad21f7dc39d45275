"""A second client writes the status of a TrainingRun the operator is driving (a merge patch of its
message, as `kubectl patch --subresource=status` would), many times a second. The operator's
writes are preconditioned on the resourceVersion it read: they meet 409 Conflict, decide again from
a fresh read, and the training still ends with a status that is the operator's, nothing lost.

The second client writes on the version it has just read, so it never overwrites a status it has
not seen: it stops once it sees the run half-way or finished. A blind writer could land after the
final status, and a finished TrainingRun's status is its only record, which the operator does not
re-derive (under load the operator's progress writes, starved by the conflicts, can reach the end
in one step, so "half-way" alone did not keep the writer away from the final status)."""

from __future__ import annotations

import threading

from tests.integration.helpers import conditions, wait_for
from tugboat.api.base import API_VERSION
from tugboat.kube.errors import Conflict

from .conftest import (
    CHAOS,
    NS,
    apply,
    ray_jobs,
    reader,
    settled,
    training_run,
)
from .faults import Recorder, assert_no_crash_loop

pytestmark = CHAOS
TR = "chaos-409"
FOREIGN = "written by a second client"
STEPS = 80


def _second_writer(kube, stop: threading.Event, writes: list[int]) -> None:
    while not stop.is_set():
        obj = kube.get(API_VERSION, "TrainingRun", TR, NS)
        status = obj.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed") or status.get("step", 0) >= STEPS // 2:
            return
        try:
            kube.patch_status(API_VERSION, "TrainingRun", TR, NS, {"message": f"{FOREIGN} #{len(writes)}"},
                              resource_version=obj["metadata"]["resourceVersion"])
            writes.append(1)
        except Conflict:
            pass  # the operator wrote in between: read again
        stop.wait(0.1)


def test_a_second_status_writer_meets_conflicts_and_loses_nothing(cluster, kube, operators):
    op = operators()
    apply(cluster, training_run(TR, steps=STEPS, interval=20))
    read = reader(kube, "TrainingRun", TR)
    wait_for(lambda: (o := read()) and (o.get("status") or {}).get("phase"), timeout=120, what=f"{TR} status")
    stop, writes = threading.Event(), []
    writer = threading.Thread(target=_second_writer, args=(kube, stop, writes), daemon=True)
    with Recorder(read) as rec:
        writer.start()
        try:
            wait_for(lambda: (read().get("status") or {}).get("step", 0) >= STEPS // 2, timeout=300,
                     interval=0.2, what=f"{TR} half-way")
        finally:
            stop.set()
            writer.join(10)
        done = settled(kube, "TrainingRun", TR, "Succeeded", "Failed", timeout=300)
    conflicts = op.output().count("changed since it was read")
    print(f"second client: {len(writes)} status writes; operator: {conflicts} conflicts retried")
    assert conflicts >= 1, "the second writer never made the operator meet a 409"
    st = done["status"]
    assert (st["phase"], st["attempt"], st["step"]) == ("Succeeded", 1, STEPS), st
    assert not st["message"].startswith(FOREIGN), "the operator's own status must win in the end"
    assert conditions(done)["Trained"]["status"] == "True"
    assert [j["metadata"]["name"] for j in ray_jobs(kube, TR)] == [st["rayJobName"]]
    rec.assert_nothing_lost()
    assert_no_crash_loop(op)
