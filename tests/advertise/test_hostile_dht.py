"""browse's view under a record flood: the donor's record is still found (issue 13), and readers bound what
holders hand back. On the simulated overlay, in virtual time."""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any

import pytest
import trio
import trio.testing

from seattle.advertise import dht
from seattle.advertise.dht import MAX_RECORDS_PER_HOLDER, find_records, publish
from seattle.keys import PublicKey, generate_identity
from seattle.overlay.messages import Kind, Message
from seattle.overlay.nodeid import Contact, NodeId
from seattle.overlay.records import RecordRejected, dht_key, sign
from seattle.overlay.simnet import SimNetwork, SimTransport
from seattle.testing.overlay import seeded_identity, simulated_overlay

OWNER = generate_identity("flooded-owner").public_key
TIMEOUT = 5.0


async def flood(sim: SimNetwork, count: int = 100) -> None:
    """`count` valid records under OWNER's key from throwaway node keys, written to every node from one /24
    as fast as its write budget allows (as if through add_record: the store sees the same calls)."""
    for number in range(count):
        now = sim.now()
        raw = sign(generate_identity(f"flood{number}"), OWNER, [f"198.51.100.{number % 250}:1224"],
                   sequence=1, now=now)
        for node in sim.nodes:
            with contextlib.suppress(RecordRejected):  # a holder may refuse part of a flood
                node.store.put(raw, f"198.51.100.{number % 250 + 1}", now)
        await trio.sleep(0.3)  # the /24's budget: 40 writes per 10 s


@pytest.mark.slow
async def test_browse_finds_a_donor_while_its_key_is_flooded_from_one_network(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim, nodes = simulated_overlay(30, seed=13, k=8)
    donor, reader = nodes[0], nodes[-1]
    async with sim.running():
        # The flood came first and filled the key's cap on every node (the holders among them).
        await flood(sim)
        assert all(len(node.store.get(dht_key(OWNER), sim.now())) == 64 for node in nodes)
        donor_record = sign(donor.identity, OWNER, ["192.0.2.44:1224"], sequence=1, now=sim.now())
        stored = await publish(sim.transport(donor), donor_record, timeout=TIMEOUT)
        assert stored >= 6  # of the k = 8 closest: each displaced a flood record for it
        dropped: Counter[str] = Counter()
        found = await find_records(sim.transport(reader), OWNER, timeout=TIMEOUT, dropped=dropped)
    assert donor.identity.public_key in {record.node for record in found}
    assert not dropped


class EndlessHolder:
    """A real transport, plus a holder that answers every page with fresh valid records and `more`."""

    def __init__(self, real: SimTransport, liar: Contact) -> None:
        self.real, self.liar, self.pages = real, liar, 0

    def now(self) -> float:
        return self.real.now()

    async def lookup(self, target: NodeId, timeout: float | None = None) -> list[Contact]:
        return [self.liar, *await self.real.lookup(target, timeout)]

    async def request(self, contact: Contact, kind: Kind, body: dict[str, Any],
                      timeout: float | None = None) -> Message:
        if contact != self.liar:
            return await self.real.request(contact, kind, body, timeout)
        self.pages += 1
        records = [sign(generate_identity(f"endless{self.pages}-{n}"), OWNER, ["203.0.113.9:1224"], sequence=1,
                        now=self.now()) for n in range(5)]
        return Message(Kind.RECORDS, b"\0" * 8, PublicKey(b"\1" * 32),
                       {"records": records, "more": True, "token": b"\0" * 16})


async def test_a_holder_that_never_stops_paging_is_cut_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sim, nodes = simulated_overlay(20, seed=14, k=8)
    donor, reader = nodes[0], nodes[-1]
    liar = Contact(NodeId.from_public_key(seeded_identity("endless").public_key), "192.0.2.99", 4000)
    async with sim.running():
        donor_record = sign(donor.identity, OWNER, ["192.0.2.44:1224"], sequence=1, now=sim.now())
        assert await publish(sim.transport(donor), donor_record, timeout=TIMEOUT) > 0
        transport = EndlessHolder(sim.transport(reader), liar)
        dropped: Counter[str] = Counter()
        found = await find_records(transport, OWNER, timeout=TIMEOUT, dropped=dropped)  # type: ignore[arg-type]
    assert transport.pages <= dht.MAX_PAGES
    assert len(found) <= MAX_RECORDS_PER_HOLDER + 1
    assert donor.identity.public_key in {record.node for record in found}


async def test_past_the_limit_the_records_most_holders_returned_are_kept(
    autojump_clock: trio.testing.MockClock, monkeypatch: Any,
) -> None:
    monkeypatch.setattr(dht, "MAX_FOUND", 3)
    sim, nodes = simulated_overlay(20, seed=15, k=8)
    donor, reader = nodes[0], nodes[-1]
    liar = Contact(NodeId.from_public_key(seeded_identity("endless").public_key), "192.0.2.99", 4000)
    async with sim.running():
        donor_record = sign(donor.identity, OWNER, ["192.0.2.44:1224"], sequence=1, now=sim.now())
        assert await publish(sim.transport(donor), donor_record, timeout=TIMEOUT) > 1
        dropped: Counter[str] = Counter()
        found = await find_records(EndlessHolder(sim.transport(reader), liar), OWNER, timeout=TIMEOUT,  # type: ignore[arg-type]
                                   dropped=dropped)
    assert len(found) == 3 and dropped["over_found_limit"] > 0
    assert donor.identity.public_key in {record.node for record in found}
