"""The dev cluster's components get their ports from a random block away from kwokctl's own."""

from __future__ import annotations

import socket

from tugboat.dev import cluster
from tugboat.dev.cluster import PORT_OPTIONS, PORT_RANGE, _config, port_block


def test_a_block_is_consecutive_free_and_in_range():
    ports = port_block()
    assert ports is not None and len(ports) == len(PORT_OPTIONS)
    assert ports == list(range(ports[0], ports[0] + len(ports)))
    assert PORT_RANGE[0] <= ports[0] and ports[-1] < PORT_RANGE[1]


def test_a_taken_port_is_never_handed_out(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        monkeypatch.setattr(cluster, "PORT_RANGE", (port - 1, port + len(PORT_OPTIONS) + 1))
        assert port_block(attempts=5) is None  # every block there holds the taken port


def test_the_kwokctl_options_carry_every_port(tmp_path):
    options = _config(tmp_path, "c")[0]["options"]
    ports = [options[name] for name in PORT_OPTIONS]
    assert len(set(ports)) == len(PORT_OPTIONS)
