"""A donor behind a NAT offers its pool vessels with no address (its private ones reach nobody): researchers
reach it through the relays its record names. A node told it needs a relay says "nat" in its offer even before
the overlay has measured it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from seattle.keys import generate_identity
from seattle.nodemgr.node import NodeManager, init_node, load_node_identity
from seattle.nodemgr.nodedir import NodeDir
from seattle.nodemgr.pool import NodePool
from seattle.nodemgr.vessels import NodeState
from seattle.pool.formats import Offer
from seattle.resources import DEFAULT_ALLOTMENT, Resources

MIB = 1024 * 1024


def small(port: int) -> Resources:
    return Resources({**DEFAULT_ALLOTMENT.quantities, "memory": 64 * MIB, "diskused": MIB},
                     messport=frozenset({port}), connport=frozenset({port}))


@pytest.mark.parametrize(("reachability", "addresses"), [("public", ("192.168.1.20:1224",)), ("unknown",
                         ("192.168.1.20:1224",)), ("nat", ()), ("firewalled", ())])
def test_the_offer_names_addresses_only_when_the_node_can_be_dialled(tmp_path: Path, reachability: str,
                                                                     addresses: tuple[str, ...]) -> None:
    owner = generate_identity("owner")
    init_node(tmp_path, owner.public_key, [(small(63210), owner.public_key, [])], pool=[small(63211)])
    state = NodeState.open(tmp_path)
    try:
        pool = NodePool(load_node_identity(tmp_path), state, NodeDir(tmp_path),
                        addresses=lambda: ["192.168.1.20:1224"], reachability=lambda: reachability)
        raw = pool.offer()
        assert raw is not None
        offer = Offer.verify(raw, time.time())
        assert (offer.addresses, offer.reachability, offer.free) == (addresses, reachability, 1)
    finally:
        state.close()


async def test_a_node_told_it_needs_a_relay_offers_itself_as_nat(tmp_path: Path) -> None:
    assert NodeManager(tmp_path, "0.0.0.0", 1224, needs_relay=True).offered_reachability() == "nat"
    assert NodeManager(tmp_path, "0.0.0.0", 1224).offered_reachability() == "unknown"
