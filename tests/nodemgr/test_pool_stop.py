"""A node that stops gracefully takes its pool offer out of the overlay before it exits: a reader no longer
finds it under its offer shard (it would otherwise linger there for hours, sending researchers to a node that
is gone)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from seattle.advertise.dht import find_records
from seattle.keys import generate_identity
from seattle.nodemgr.node import WITHDRAW_TIMEOUT, NodeManager
from seattle.pool.formats import credit_key, offer_key, offer_shard
from tests.nodemgr.test_pool_node import make_node

pytestmark = pytest.mark.slow

WAIT = 30.0


async def test_a_stopped_node_no_longer_offers(tmp_path: Path) -> None:
    donor_for = generate_identity("researcher").public_key
    for name in "abc":
        make_node(tmp_path / name)
    # Three nodes: a reader's lookup asks the others, never itself, so the record must outlive B on A and C.
    async with NodeManager(tmp_path / "a", "127.0.0.1", 0, overlay=True) as a, \
            NodeManager(tmp_path / "c", "127.0.0.1", 0, overlay=True, bootstrap=[("127.0.0.1", a.port)]) as c:
        assert c.overlay is not None
        b = NodeManager(tmp_path / "b", "127.0.0.1", 0, overlay=True, bootstrap=[("127.0.0.1", a.port)],
                        beneficiary=donor_for)
        async with b:
            shard, credit = offer_key(offer_shard(b.node_key)), credit_key(donor_for)
            with trio.fail_after(WAIT):
                for subject in (shard, credit):
                    while b.node_key not in {r.node for r in await find_records(c.overlay, subject, timeout=5.0)}:
                        await trio.sleep(0.3)
            stopping = time.monotonic()
        assert time.monotonic() - stopping < WITHDRAW_TIMEOUT + 5.0  # best effort, never a long stop
        for subject in (shard, credit):
            assert b.node_key not in {r.node for r in await find_records(c.overlay, subject, timeout=5.0)}
