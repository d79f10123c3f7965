"""Fixtures of the node manager's tests: an owner, and a fresh node manager on loopback to start with limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from seattle.channel.stream import SecureStream, secure_client
from seattle.keys import Identity, generate_identity
from seattle.nodemgr.node import NodeManager, init_node
from seattle.nodemgr.server import ServerLimits

#: `start_node(limits)`, an async context manager yielding the running NodeManager.
NodeFactory = Callable[..., Any]


@pytest.fixture
def owner() -> Identity:
    return generate_identity("owner")


@pytest.fixture
def start_node(tmp_path: Path, owner: Identity) -> NodeFactory:
    """`async with start_node(limits) as nm`: a fresh node with one vessel owned by `owner`."""
    init_node(tmp_path / "node", owner.public_key)

    @asynccontextmanager
    async def start(limits: ServerLimits | None = None) -> AsyncIterator[NodeManager]:
        async with NodeManager(tmp_path / "node", "127.0.0.1", 0, limits=limits) as nm:
            yield nm

    return start


async def secure_connection(port: int, host: str = "127.0.0.1") -> SecureStream:
    """A client's channel to the node at `host`:`port`, taking whatever key the node proves: for tests that
    write raw frames (the frame layer runs inside the channel)."""
    return await secure_client(await trio.open_tcp_stream(host, port), expected=None)
