"""The dev cluster's one rule for traffic: targets are loopback addresses (127.0.0.0/8), nothing else.

Decides whether an address may be a target of anything the dev cluster runs (the data plane's
probes, the gateway's upstreams, the traffic generator). kwok's default pod IPs (10.0.0.x), Service
cluster IPs and node subnets may be real networks on the host: they are refused, loudly. Pure.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOOPBACK_NET = ipaddress.ip_network("127.0.0.0/8")


class NotLoopback(ValueError):
    """An address outside 127.0.0.0/8 was about to become a target."""


def is_loopback(address: str) -> bool:
    """True for an IPv4 address in 127.0.0.0/8; False for anything else, names included."""
    try:
        return ipaddress.ip_address(address) in LOOPBACK_NET
    except ValueError:
        return False


def require_loopback(address: str, what: str) -> str:
    """`address` itself, or NotLoopback naming `what` it was meant for."""
    if not is_loopback(address):
        raise NotLoopback(f"refusing {what} at {address!r}: the dev cluster sends traffic to "
                          f"{LOOPBACK_NET} only")
    return address


def require_loopback_url(url: str, what: str) -> str:
    """`url` itself when it is http://<127.x.y.z>:<port>/..., else NotLoopback."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.port is None:
        raise NotLoopback(f"refusing {what} at {url!r}: expected http://127.x.y.z:PORT/...")
    require_loopback(parts.hostname or "", what)
    return url
