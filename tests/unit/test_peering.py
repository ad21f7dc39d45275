"""pausing_peers: kopf's rule for when a replica pauses, as the requeue path applies it."""

from __future__ import annotations

from datetime import UTC, datetime

from tugboat.peering import pausing_peers

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)


def peer(priority: int, seconds_ago: int, lifetime: int = 30) -> dict:
    return {"priority": priority, "lifetime": lifetime,
            "lastseen": datetime.fromtimestamp(NOW.timestamp() - seconds_ago, UTC).isoformat()}


def test_a_live_peer_of_higher_or_same_priority_pauses_us():
    peers = {"me": peer(100, 1), "big": peer(500, 5), "twin": peer(100, 5), "small": peer(10, 1)}
    assert pausing_peers(peers, "me", 100, NOW) == ["big", "twin"]


def test_dead_peers_ourselves_and_garbage_do_not_count():
    peers = {"me": peer(100, 1), "dead": peer(500, 31), "junk": "x", "bad": {"lastseen": "yesterday"}}
    assert pausing_peers(peers, "me", 100, NOW) == []
    assert pausing_peers({}, "me", 100, NOW) == []
