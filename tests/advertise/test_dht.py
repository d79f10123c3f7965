"""publish and find_records on a real loopback overlay: 14 UdpOverlay nodes with k = 4 in one trio run.

With k = 4 of 14 nodes, each key has a real subset of holders, so "asked every holder" and "stopped at the
first" give different answers. The loopback settings are those of test_overlay_udp (per-subnet cap of k,
1 s reply-timeout floor) plus a store that takes every neighbour's writes, since they all come from 127.0.0.1.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio

from seattle.advertise.dht import find_records, publish
from seattle.keys import Identity, PublicKey, generate_identity
from seattle.overlay.lookup import RttEstimator
from seattle.overlay.messages import Kind, Message
from seattle.overlay.nodeid import Contact, NetworkParameters, NodeId
from seattle.overlay.protocol import OverlayNode
from seattle.overlay.records import MAX_RECORD_SIZE, dht_key, sign, sign_tombstone
from seattle.overlay.routing import RoutingTable
from seattle.overlay.store import RecordStore
from seattle.overlay.udp import UdpOverlay
from seattle.testing.overlay import seeded_identity

pytestmark = pytest.mark.slow

K = 4
COUNT = 14
TIMEOUT = 3.0
WAIT = 30.0
RESEARCHER = generate_identity("researcher").public_key


def new_node(name: str, *, serve: bool = True) -> OverlayNode:
    ident = seeded_identity(name)
    table = RoutingTable(NodeId.from_public_key(ident.public_key), k=K, max_per_subnet=K)
    rtt = RttEstimator(initial_timeout=1.0, min_timeout=1.0)
    return OverlayNode(ident, randomness=random.SystemRandom(), table=table, rtt=rtt,
                       network=NetworkParameters.testing(), store=RecordStore(max_writes_per_source=10_000),
                       serve=serve)


@pytest.fixture
async def overlays() -> AsyncIterator[list[UdpOverlay]]:
    """COUNT joined nodes; each bootstraps from the first and looks itself up."""
    nodes = [UdpOverlay(new_node(f"dht{number}"), "127.0.0.1", 0) for number in range(COUNT)]
    async with AsyncExitStack() as stack:
        for overlay in nodes:
            await stack.enter_async_context(overlay)
        with trio.fail_after(WAIT):
            for overlay in nodes[1:]:
                await overlay.bootstrap(*nodes[0].address)
                await overlay.lookup(overlay.node.node_id)
            for overlay in nodes:  # a second pass, so early joiners learn of later ones
                await overlay.lookup(overlay.node.node_id)
        yield nodes


def holders(overlays: list[UdpOverlay], subject: PublicKey) -> list[UdpOverlay]:
    """The K nodes that actually hold records for `subject`, nearest to its key first."""
    key = dht_key(subject)
    holding = [o for o in overlays if o.node.store.get(key, time.time())]
    return sorted(holding, key=lambda o: key.distance(o.node.node_id))


def record(node: Identity, subject: PublicKey, sequence: int, port: int = 1224, **kwargs: Any) -> bytes:
    return sign(node, subject, [f"127.0.0.1:{port}"], sequence=sequence, now=time.time(), **kwargs)


async def test_records_of_many_nodes_are_stored_on_the_k_closest_and_merged_across_pages(
        overlays: list[UdpOverlay]) -> None:
    with trio.fail_after(WAIT):
        for number, overlay in enumerate(overlays):
            stored = await publish(overlay, record(overlay.node.identity, RESEARCHER, 1, 2000 + number),
                                   timeout=TIMEOUT)
            assert stored >= K - 1  # the publisher itself may be one of the K closest
        assert len(holders(overlays, RESEARCHER)) >= K
        async with UdpOverlay(new_node("reader", serve=False), "127.0.0.1", 0) as reader:
            await reader.bootstrap(*overlays[5].address)
            found = await find_records(reader, RESEARCHER, timeout=TIMEOUT)
    # 14 records of ~230 bytes need several get_records pages from each holder.
    assert {r.node for r in found} == {o.node.identity.public_key for o in overlays}
    assert {r.addresses for r in found} == {(f"127.0.0.1:{2000 + n}",) for n in range(COUNT)}
    assert all(r.subject == RESEARCHER and r.sequence == 1 for r in found)


async def test_the_newest_sequence_wins_even_when_the_nearest_holder_is_stale(
        overlays: list[UdpOverlay]) -> None:
    publisher, reader = overlays[0], overlays[1]
    node = publisher.node.identity
    with trio.fail_after(WAIT):
        assert await publish(publisher, record(node, RESEARCHER, 10, 3000), timeout=TIMEOUT) >= K - 1
        asked = {c.node_id for c in await reader.lookup(dht_key(RESEARCHER), TIMEOUT)}
        held = [o for o in holders(overlays, RESEARCHER) if o.node.node_id in asked]
        assert len(held) >= 2
        # Only the farthest holder the reader asks learns of sequence 11; the nearer ones still serve 10.
        held[-1].node.store.put(record(node, RESEARCHER, 11, 3001), "127.0.0.1", time.time())
        (found,) = await find_records(reader, RESEARCHER, timeout=TIMEOUT)
        assert (found.sequence, found.addresses) == (11, ("127.0.0.1:3001",))

        # A tombstone known to one holder only withdraws the record for every reader.
        held[-1].node.store.put(sign_tombstone(node, RESEARCHER, sequence=12, now=time.time()), "127.0.0.1",
                                time.time())
        assert await find_records(reader, RESEARCHER, timeout=TIMEOUT) == []
        # Published normally, a tombstone also withdraws it, and an older record cannot come back.
        assert await publish(publisher, sign_tombstone(node, RESEARCHER, sequence=13, now=time.time()),
                             timeout=TIMEOUT) >= K - 1
        assert await publish(publisher, record(node, RESEARCHER, 11, 3001), timeout=TIMEOUT) == 0
        assert await find_records(reader, RESEARCHER, timeout=TIMEOUT) == []


class SilentAndLyingHolders:
    """The real transport, plus a holder that never answers and one that returns doctored records."""

    def __init__(self, real: UdpOverlay, silent: Contact, liar: Contact, lies: list[bytes]) -> None:
        self.real, self.silent, self.liar, self.lies = real, silent, liar, lies

    def now(self) -> float:
        return self.real.now()

    async def lookup(self, target: NodeId, timeout: float | None = None) -> list[Contact]:
        return [self.silent, self.liar, *await self.real.lookup(target, timeout)]

    async def request(self, contact: Contact, kind: Kind, body: dict[str, Any],
                      timeout: float | None = None) -> Message:
        if contact == self.liar and kind is Kind.GET_RECORDS:
            return Message(Kind.RECORDS, b"\0" * 8, PublicKey(b"\1" * 32),
                           {"records": self.lies, "more": False, "token": b"\0" * 16})
        return await self.real.request(contact, kind, body, timeout)


async def test_a_silent_holder_does_not_stall_and_a_lying_one_is_not_believed(overlays: list[UdpOverlay]) -> None:
    publisher, reader = overlays[2], overlays[3]
    node = publisher.node.identity
    other = seeded_identity("someone-else").public_key
    forged = bytearray(record(node, RESEARCHER, 20, 4000))
    forged[-1] ^= 1
    lies = [
        bytes(forged),  # altered after signing
        record(seeded_identity("intruder"), other, 99),  # a valid record, but about another subject
        sign(node, RESEARCHER, ["127.0.0.1:4002"], sequence=99, now=time.time() - 7200, lifetime=3600),  # expired
        record(node, RESEARCHER, 99, 4003) + b"\0" * MAX_RECORD_SIZE,  # oversized
    ]
    silent_socket = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    with silent_socket, trio.fail_after(WAIT):
        await silent_socket.bind(("127.0.0.1", 0))
        silent = Contact(NodeId.from_public_key(seeded_identity("silent").public_key), *silent_socket.getsockname())
        liar = overlays[4].contact
        assert await publish(publisher, record(node, RESEARCHER, 20, 4000), timeout=TIMEOUT) >= K - 1
        transport = SilentAndLyingHolders(reader, silent, liar, lies)
        (found,) = await find_records(transport, RESEARCHER, timeout=TIMEOUT)
        assert (found.sequence, found.addresses) == (20, ("127.0.0.1:4000",))
        # Publishing past a silent holder finishes too, and counts only real stores.
        assert await publish(transport, record(node, RESEARCHER, 21, 4000), timeout=TIMEOUT) >= K - 1


async def test_holders_refuse_forged_replayed_oversized_and_stale_records(overlays: list[UdpOverlay]) -> None:
    writer, holder = overlays[5], overlays[6]
    node = writer.node.identity
    subject = generate_identity("store-subject").public_key
    key = dht_key(subject)

    async def add(raw: bytes) -> Message:
        answer = await writer.request(holder.contact, Kind.GET_RECORDS, {"key": key, "skip": 0}, TIMEOUT)
        return await writer.request(holder.contact, Kind.ADD_RECORD, {"record": raw, "token": answer.body["token"]},
                                    TIMEOUT)

    good = record(node, subject, 30)
    forged = bytearray(good)
    forged[70] ^= 1
    expired = sign(node, subject, ["127.0.0.1:1"], sequence=40, now=time.time() - 7200, lifetime=3600)
    with trio.fail_after(WAIT):
        assert (await add(good)).kind is Kind.ADDED
        refusals = {
            "bad_signature": bytes(forged),
            "stale": good,  # replayed
            "too_large": record(node, subject, 31) + b"\0" * (MAX_RECORD_SIZE + 100 - len(good)),
            "expired": expired,
        }
        for code, raw in refusals.items():
            answer = await add(raw)
            assert (answer.kind, answer.body["code"]) == (Kind.ERROR, code)
        answer = await add(record(node, subject, 29))  # older than what is held
        assert (answer.kind, answer.body["code"]) == (Kind.ERROR, "stale")
        bad_token = await writer.request(holder.contact, Kind.ADD_RECORD,
                                         {"record": record(node, subject, 50), "token": b"\0" * 16}, TIMEOUT)
        assert (bad_token.kind, bad_token.body["code"]) == (Kind.ERROR, "bad_token")
    assert holder.node.store.get(key, time.time()) == [good]
