"""Is this replica the active one? Reads kopf's peering object (cached briefly) for the requeue
path: a replica kopf paused must not act on wake-ups it queued while it was active."""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import socket
import threading
import time
from datetime import UTC, datetime

from ..peering import pausing_peers
from . import runtime

log = logging.getLogger("tugboat.standby")

PEERING_API, PEERING_KIND, PEERING_NAME = "kopf.dev/v1", "ClusterKopfPeering", "tugboat"
CACHE_SECONDS = 2.0


def own_identity() -> str:
    """What kopf calls this replica in the peering object (passed to kopf.operator, so both agree):
    the pod's name where the chart sets POD_ID, else user@host, plus start time and a nonce."""
    who = os.environ.get("POD_ID") or f"{getpass.getuser()}@{socket.gethostname()}"
    return f"{who}/{datetime.now(UTC):%Y%m%d%H%M%S}/{secrets.token_hex(2)}"


IDENTITY = own_identity()


class PeeringGate:
    def __init__(self):
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._active = True

    def active(self) -> bool:
        opts = runtime.options()
        if opts.standalone:
            return True
        with self._lock:
            if time.monotonic() - self._checked < CACHE_SECONDS:
                return self._active
            try:
                obj = runtime.kube().get_or_none(PEERING_API, PEERING_KIND, PEERING_NAME)
            except Exception as exc:  # noqa: BLE001 - unreadable: the reconcile itself will tell
                log.debug("peering object unreadable: %s", exc)
                return self._active
            blockers = pausing_peers((obj or {}).get("status") or {}, IDENTITY, opts.priority,
                                     datetime.now(UTC))
            if bool(blockers) == self._active:
                log.info("standby: %s", f"paused in favour of {', '.join(blockers)}: queued wake-ups are "
                         "dropped" if blockers else "active again")
            self._active, self._checked = not blockers, time.monotonic()
            return self._active


GATE = PeeringGate()
