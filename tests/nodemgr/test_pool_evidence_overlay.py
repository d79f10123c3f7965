"""Evidence spreads through the overlay between real node managers: A and B both granted slot 0 of one key
(B without looking, as in a race), A found the two leases when the key came back for that slot, and C, which
never saw either lease, refuses the key for another slot with key_banned: it found A under that slot's key and
verified the evidence A serves."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from seattle.advertise.dht import find_records
from seattle.keys import generate_identity
from seattle.nodemgr.client import NodeClient
from seattle.nodemgr.node import NodeManager
from seattle.nodemgr.pool import NoDirectory
from seattle.nodemgr.pool_directory import OverlayDirectory
from seattle.pool.formats import Evidence, Lease, slot_key
from tests.nodemgr.test_pool_node import make_node

pytestmark = pytest.mark.slow

WAIT = 30.0


async def test_a_node_that_never_saw_the_double_grant_refuses_the_key(tmp_path: Path) -> None:
    cheat = generate_identity("cheat")
    for name in "abc":
        make_node(tmp_path / name)
    async with NodeManager(tmp_path / "a", "127.0.0.1", 0, overlay=True) as a, \
            NodeManager(tmp_path / "b", "127.0.0.1", 0, overlay=True, bootstrap=[("127.0.0.1", a.port)]) as b, \
            NodeManager(tmp_path / "c", "127.0.0.1", 0, overlay=True, bootstrap=[("127.0.0.1", a.port)]) as c:
        assert a.api and a.api.pool and b.api and b.api.pool and c.api and c.api.pool and c.overlay
        async with await NodeClient.connect("127.0.0.1", a.port, cheat) as at_a:
            first = await at_a.call("AcquireVessel", slot=0, duration=600.0)
        overlay_of_b = b.api.pool.directory
        b.api.pool.directory = NoDirectory()  # B grants before it could see A's lease: the race window
        async with await NodeClient.connect("127.0.0.1", b.port, cheat) as at_b:
            second = await at_b.call("AcquireVessel", slot=0, duration=600.0)
        b.api.pool.directory = overlay_of_b
        directory_of_a = a.api.pool.directory
        assert isinstance(directory_of_a, OverlayDirectory)
        with trio.fail_after(WAIT):
            while not (await directory_of_a.slot(cheat.public_key, 0)).leases:
                await trio.sleep(0.3)

        async with await NodeClient.connect("127.0.0.1", a.port, cheat) as at_a:
            found = await at_a.request("AcquireVessel", slot=0, duration=600.0)
        assert found.code == "key_banned"
        [evidence] = a.api.pool.ledger.filed_evidence(time.time())
        assert {evidence.first.raw, evidence.second.raw} == {first["lease"], second["lease"]}

        with trio.fail_after(WAIT):  # A's record under the key's other slots reaches the overlay
            while a.node_key not in {r.node for r in await find_records(c.overlay, slot_key(cheat.public_key, 3),
                                                                        timeout=5.0)}:
                await trio.sleep(0.3)
        assert c.api.pool.ledger.leases() == [] and c.api.pool.ledger.served_evidence(time.time()) == []
        async with await NodeClient.connect("127.0.0.1", c.port, cheat) as at_c:
            refused = await at_c.request("AcquireVessel", slot=3, duration=600.0)
        assert refused.code == "key_banned" and "banned until" in refused.message
        [learnt] = c.api.pool.ledger.served_evidence(time.time())
        assert learnt == Evidence.verify(*evidence.raw) and learnt.lessee == cheat.public_key
        assert c.api.pool.ledger.filed_evidence(time.time()) == []  # C learnt it: it serves, A files
        assert all(Lease.verify_signed(raw, None).slot == 0 for raw in evidence.raw)
