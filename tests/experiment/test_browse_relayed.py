"""A node behind a NAT, as the experiment layer sees it (on loopback: the node is told it needs a relay): its
records name its relay with a voucher and no address of its own, browse finds its vessels through the relay,
and fan_out runs calls on them, moving to a punched direct path after the first."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from seattle.experiment.browse import browse
from seattle.experiment.fanout import Node, fan_out
from seattle.experiment.targets import VesselRef
from seattle.keys import generate_identity
from seattle.nodemgr.node import NodeManager, init_node
from seattle.nodemgr.relay_client import RelayTimers
from seattle.nodemgr.routes import RELAYED_PORT, relayed_name

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"


async def test_browse_finds_a_natted_nodes_vessels_through_its_relay_and_calls_go_direct(tmp_path: Path) -> None:
    owner = generate_identity("owner")
    init_node(tmp_path / "public", owner.public_key)
    init_node(tmp_path / "nat", owner.public_key)
    timers = RelayTimers(wanted=1, ping_interval=1.0, retry_interval=0.2, timeout=3.0)
    async with NodeManager(tmp_path / "public", HOST, 0, overlay=True) as public, \
            NodeManager(tmp_path / "nat", HOST, 0, overlay=True, bootstrap=[(HOST, public.port)], needs_relay=True,
                        relay_timers=timers) as nat:
        started = trio.current_time()
        name = relayed_name(nat.node_key)
        with trio.fail_after(20):
            while True:
                result = await browse(owner.public_key, [(HOST, public.port)], timeout=3.0)
                relayed = [found for found in result.vessels if found.host == name]
                if relayed:
                    break
                await trio.sleep(0.2)
        found_after = trio.current_time() - started
        (vessel,) = relayed
        assert (vessel.port, vessel.vessel, vessel.node_key) == (RELAYED_PORT, "v1", nat.node_key)
        assert [relay.key for relay in vessel.relays] == [public.node_key]
        assert found_after < 20

        async def describe(node: Node, ref: VesselRef) -> str:
            await node.client.call("GetVessels")
            with trio.fail_after(10):
                while node.client.punch_result is None:
                    await trio.sleep(0.02)
            await node.client.call("ListFilesInVessel", vessel=ref.vessel)
            return node.client.path

        ref = VesselRef(name, RELAYED_PORT, "v1")
        (outcome,) = await fan_out([(1, ref)], describe, identity=owner, timeout=5.0,
                                   node_keys={(name, RELAYED_PORT): nat.node_key},
                                   relays={(name, RELAYED_PORT): vessel.relays})
        assert outcome.ok, outcome.reason
        assert outcome.result.startswith("direct "), outcome.result
