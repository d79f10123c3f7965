"""The pool through the overlay between two real node managers: a slot held at one node is refused at the
other, naming the holder; a donor's attestation is found under its beneficiary's credit key; offers are filed
under their shard."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from seattle.advertise.dht import find_records
from seattle.keys import generate_identity
from seattle.nodemgr.client import NodeClient
from seattle.nodemgr.node import NodeManager
from seattle.nodemgr.pool_directory import OverlayDirectory
from seattle.pool.formats import Offer, offer_key, offer_shard
from tests.nodemgr.test_pool_node import make_node

pytestmark = pytest.mark.slow

WAIT = 30.0


async def test_slots_credit_and_offers_travel_through_the_overlay(tmp_path: Path) -> None:
    researcher = generate_identity("researcher")
    make_node(tmp_path / "a")
    make_node(tmp_path / "b")
    async with NodeManager(tmp_path / "a", "127.0.0.1", 0, overlay=True) as a, \
            NodeManager(tmp_path / "b", "127.0.0.1", 0, overlay=True, bootstrap=[("127.0.0.1", a.port)],
                        beneficiary=researcher.public_key, country="CH") as b:
        assert a.api is not None and b.api is not None and a.api.pool is not None and b.api.pool is not None
        directory_of_b = b.api.pool.directory
        assert isinstance(directory_of_b, OverlayDirectory)
        async with await NodeClient.connect("127.0.0.1", a.port, researcher) as at_a:
            await at_a.call("AcquireVessel", slot=0, duration=600.0)
        with trio.fail_after(WAIT):
            while not (await directory_of_b.slot(researcher.public_key, 0)).leases:
                await trio.sleep(0.3)
        async with await NodeClient.connect("127.0.0.1", b.port, researcher) as at_b:
            refused = await at_b.request("AcquireVessel", slot=0, duration=600.0)
            assert refused.code == "slot_taken" and a.node_key.fingerprint() in refused.message
            assert (await at_b.call("AcquireVessel", slot=1, duration=600.0))["slot"] == 1

        directory_of_a = a.api.pool.directory
        assert isinstance(directory_of_a, OverlayDirectory)
        with trio.fail_after(WAIT):
            while not (credit := (await directory_of_a.credit(researcher.public_key)).attestations):
                await trio.sleep(0.3)
        assert [c.node for c in credit] == [b.node_key] and credit[0].up_since <= time.time()

        assert a.overlay is not None
        with trio.fail_after(WAIT):
            while b.node_key not in {r.node for r in await find_records(
                    a.overlay, offer_key(offer_shard(b.node_key)), timeout=5.0)}:
                await trio.sleep(0.3)
        async with await NodeClient.connect("127.0.0.1", b.port) as anyone:
            status = await anyone.call("GetPoolStatus")
        offer = Offer.verify(status["offer"], time.time())
        assert (offer.node, offer.free, offer.total, offer.country) == (b.node_key, 1, 2, "CH")
