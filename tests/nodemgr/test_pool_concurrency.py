"""Concurrent acquires on one real node: one slot is granted once, one vessel is leased once."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from seattle.keys import Identity, generate_identity
from seattle.nodemgr.client import NodeClient
from seattle.nodemgr.node import NodeManager
from tests.nodemgr.test_pool_node import make_node

pytestmark = pytest.mark.slow


async def test_concurrent_acquires_of_one_slot_and_one_vessel(tmp_path: Path) -> None:
    make_node(tmp_path / "n")
    alice = generate_identity("alice")
    async with NodeManager(tmp_path / "n", "127.0.0.1", 0) as nm:
        codes: list[str] = []
        vessels: list[str] = []

        async def acquire(identity: Identity, slot: int) -> None:
            async with await NodeClient.connect("127.0.0.1", nm.port, identity) as me:
                response = await me.request("AcquireVessel", slot=slot, duration=60.0)
                codes.append(response.code)
                if response.code == "ok":
                    vessels.append(response.result["vessel"])

        # The node's acquire budget from one address is a burst of 4: two rounds of two.
        async with trio.open_nursery() as nursery:
            for _ in range(2):
                nursery.start_soon(acquire, alice, 4)
        assert sorted(codes) == ["ok", "slot_taken"]

        codes.clear()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(acquire, generate_identity("bob"), 0)
            nursery.start_soon(acquire, generate_identity("carol"), 0)
        assert sorted(codes) == ["ok", "pool_empty"]  # two pool vessels: alice's and one more
        assert len(vessels) == len(set(vessels)) == 2
