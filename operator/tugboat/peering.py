"""Whether kopf's peering pauses this replica, from the peering object's status. Pure.

kopf pauses a replica while another live peer has a higher priority, or the same one (then every
replica of that priority pauses). Its pause stops watch events only: wake-ups this replica queued
while it was active would still fire. The requeue path asks this module first, with the same rule
kopf applies, so a standby replica never writes. A peer is live until lastseen + lifetime.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta


def _parse(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def pausing_peers(peers: Mapping[str, Mapping], identity: str, priority: int, now: datetime) -> list[str]:
    """Identities of live peers (not `identity`) whose priority is >= `priority`."""
    out = []
    for peer, info in peers.items():
        if peer == identity or not isinstance(info, Mapping):
            continue
        seen = _parse(str(info.get("lastseen", "")))
        try:
            alive = seen is not None and seen + timedelta(seconds=int(info.get("lifetime", 60))) >= now
            higher_or_same = int(info.get("priority", 0)) >= priority
        except (TypeError, ValueError):
            continue
        if alive and higher_or_same:
            out.append(peer)
    return sorted(out)
