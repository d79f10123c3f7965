"""A node behind a cone NAT publishes its records and finds others' like anyone, as a DHT client, on the
simulated network (virtual time); it stores nothing for others and no routing table holds it."""

from __future__ import annotations

import trio
import trio.testing

from seattle.advertise.dht import find_records, publish
from seattle.keys import generate_identity
from seattle.natkind import NatKind
from seattle.overlay.addresses import Scope
from seattle.overlay.join import join
from seattle.overlay.reachability import CHECK_TIMEOUT, State, Tracker
from seattle.overlay.records import sign
from seattle.overlay.simnet import SimNetwork
from seattle.testing.overlay import seeded_node

SUBJECT = generate_identity("researcher").public_key


def test_a_nat_node_publishes_and_reads_records_as_a_client() -> None:
    sim = SimNetwork(11, latency=(0.01, 0.05))
    public = [seeded_node(f"p{number}", k=4, scope=Scope.LOOPBACK, reachability=Tracker()) for number in range(10)]
    for node in public:
        sim.attach(node)
    sim.seed_tables()
    natted = seeded_node("natted", k=4, scope=Scope.LOOPBACK, reachability=Tracker())
    sim.attach(natted, behind=sim.add_router(NatKind.CONE))
    found = []

    async def main() -> None:
        async with sim.running():
            await join(sim.transport(natted), [sim.address(public[0])], 5.0)
            await trio.sleep(CHECK_TIMEOUT + 2)
            record = sign(natted.identity, SUBJECT, ["198.51.100.7:1224"], sequence=1, now=sim.now())
            assert await publish(sim.transport(natted), record, timeout=5.0) == 4  # the k = 4 closest stored it
            found.extend(await find_records(sim.transport(public[5]), SUBJECT, timeout=5.0))
            assert await find_records(sim.transport(natted), SUBJECT, timeout=5.0) == found

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert natted.reachability is not None and natted.reachability.value.state is State.NAT
    assert [record.node for record in found] == [natted.identity.public_key]
    assert len(natted.store) == 0 and not any(natted.node_id in node.table for node in public)
