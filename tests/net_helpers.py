"""Loopback addresses for network tests: ports where nothing listens."""

from __future__ import annotations

import socket


def closed_port() -> int:
    """A loopback TCP port that was free a moment ago and has no listener: connecting to it is refused."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port
