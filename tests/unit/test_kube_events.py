"""The event queue: posted in order off the reconcile's thread, flushed on stop, bounded."""

import threading

from tugboat.kube.client import event_body
from tugboat.kube.events import EventSink
from tugboat.metrics import EVENTS_DROPPED

OBJ = {"apiVersion": "tugboat.dev/v1alpha1", "kind": "TrainingRun",
       "metadata": {"name": "r", "namespace": "ml", "uid": "u", "resourceVersion": "7"}}


def test_every_event_is_posted_and_flush_waits_for_them():
    posted = []
    sink = EventSink(lambda body: (threading.Event().wait(0.001), posted.append(body)))
    for i in range(50):
        sink.put(event_body(OBJ, "Normal", f"Step{i}", "m"))
    assert sink.flush(5)
    # Several posters: the order they post in is not kept; `kubectl describe` sorts by the
    # timestamps, taken when the reconcile recorded the event.
    assert sorted(b["reason"] for b in posted) == sorted(f"Step{i}" for i in range(50))
    assert posted[0]["metadata"] == {"generateName": "r.", "namespace": "ml"}
    assert posted[0]["involvedObject"]["uid"] == "u"


def test_a_full_queue_drops_and_counts_and_a_failing_post_stops_nothing():
    release, posted = threading.Event(), []

    def post(body):
        release.wait(5)
        if body["reason"] == "Bad":
            raise RuntimeError("refused")
        posted.append(body["reason"])
    sink = EventSink(post, size=2, posters=1)
    before = EVENTS_DROPPED._value.get()
    sink.put(event_body(OBJ, "Warning", "Bad", "m"))  # taken by the thread, which waits
    threading.Event().wait(0.1)
    for reason in ("A", "B", "C"):
        sink.put(event_body(OBJ, "Normal", reason, "m"))
    assert EVENTS_DROPPED._value.get() == before + 1
    release.set()
    assert sink.flush(5)
    assert posted == ["A", "B"]
