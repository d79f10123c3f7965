"""Reachability on the simulated network, behind its home routers: real engines measure where they are seen
and whether a stranger can reach them, and nodes that cannot be reached stay DHT clients.

The scenario tests run under trio with a MockClock (virtual seconds cost nothing); the dial-back rules (no
third address, budgets, no amplification) step the network by hand, so every datagram is known.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from seattle.natkind import NatKind
from seattle.overlay import messages
from seattle.overlay.addresses import Scope
from seattle.overlay.join import join
from seattle.overlay.messages import Kind, MessageRejected
from seattle.overlay.protocol import (
    DIAL_BACK_LIMITED,
    DIAL_BACKS_PER_ADDRESS,
    DIAL_BACKS_PER_NETWORK,
    NOT_STORING,
    Address,
    OverlayNode,
)
from seattle.overlay.reachability import CHECK_TIMEOUT, State, Tracker
from seattle.overlay.simnet import EPOCH, PROBE_PORT_OFFSET, SimNetwork
from seattle.testing.overlay import seeded_node

PUBLIC = 8


def measured(name: str) -> OverlayNode:
    return seeded_node(name, scope=Scope.LOOPBACK, reachability=Tracker())


def run(test: Callable[[], Any]) -> None:
    trio.run(test, clock=trio.testing.MockClock(autojump_threshold=0))


class World:
    """PUBLIC measured nodes with seeded tables, and routers to put nodes behind."""

    def __init__(self, seed: int = 5) -> None:
        self.sim = SimNetwork(seed, latency=(0.01, 0.05))
        self.public = [measured(f"public{number}") for number in range(PUBLIC)]
        for node in self.public:
            self.sim.attach(node)

    def home(self, kind: NatKind, name: str) -> OverlayNode:
        node = measured(name)
        self.sim.attach(node, behind=self.sim.add_router(kind))
        return node

    def holders_of(self, node: OverlayNode) -> list[OverlayNode]:
        """The nodes whose routing table holds `node`."""
        return [other for other in self.sim.nodes if other is not node and node.node_id in other.table]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.sim.running():
            yield


def test_each_kind_of_router_gives_its_state_and_nobody_routes_to_the_nodes_behind_one() -> None:
    world = World()
    homes = {kind: world.home(kind, f"home-{kind.value}") for kind in NatKind}
    world.sim.seed_tables()

    async def main() -> None:
        async with world.running():
            await trio.sleep(CHECK_TIMEOUT + 1)
    run(main)
    assert {node.reachability.value.state for node in world.public} == {State.PUBLIC}  # type: ignore[union-attr]
    expected = {NatKind.CONE: State.NAT, NatKind.SYMMETRIC: State.NAT, NatKind.FIREWALL: State.FIREWALLED}
    for kind, node in homes.items():
        value = node.reachability.value  # type: ignore[union-attr]
        assert value.state is expected[kind], kind
        assert value.udp is False and value.tcp is None  # a simulated node has no TCP port to check
        router = world.sim.router(node)
        assert router is not None
        seen_ip = router.address if kind.translates else world.sim.address(node)[0]
        assert value.observed_ip == seen_ip
        # A cone NAT (port kept) and a firewall show one address to everyone; a symmetric NAT a port per peer.
        assert (value.observed == ()) is (kind is NatKind.SYMMETRIC)
        assert world.holders_of(node) == [] and node.client
    public = world.public[0].reachability.value  # type: ignore[union-attr]
    assert public.observed == (world.sim.address(world.public[0]),) and public.next_check is not None
    assert public.next_check - public.checked_at == 3600  # type: ignore[operator]


def test_a_nat_node_joins_as_a_client_looks_up_and_is_refused_as_a_store_a_public_one_becomes_full() -> None:
    world = World(seed=9)
    world.sim.seed_tables()
    nat = world.home(NatKind.CONE, "natted")
    newcomer = measured("newcomer")
    world.sim.attach(newcomer)
    target = world.public[3]

    async def main() -> None:
        async with world.running():
            for node in (nat, newcomer):
                joined = await join(world.sim.transport(node), [world.sim.address(world.public[0])], 5.0)
                assert joined.neighbours
            await trio.sleep(CHECK_TIMEOUT + 5)
            found = await world.sim.transport(nat).lookup(target.node_id)
            assert found[0].node_id == target.node_id  # a client looks up like anyone
    run(main)
    # Whoever reaches it (on its LAN, say) and asks it to store a record is refused with a stable code.
    store = messages.encode(world.public[1].identity, Kind.ADD_RECORD, bytes(8), {"record": b"r", "token": bytes(16)})
    [(answer, _)] = nat.datagram_received(store, ("172.16.0.9", 4000), EPOCH + 60)
    refused = messages.decode(answer)
    assert isinstance(refused, messages.Message) and refused.body["code"] == NOT_STORING
    assert nat.reachability.value.state is State.NAT  # type: ignore[union-attr]
    assert newcomer.reachability.value.state is State.PUBLIC  # type: ignore[union-attr]
    assert world.holders_of(nat) == []  # never admitted: its requests said "client" from the first bound one
    assert len(world.holders_of(newcomer)) >= 3  # found public, it met its neighbours again


# --- the dial-back's rules, stepped by hand ---------------------------------------------------------------


class Stepped:
    """A server and a requester on a stepped network with a fixed latency; `wire` logs (source, destination,
    bytes) of every datagram sent, with the source as seen on the wire."""

    def __init__(self) -> None:
        self.wire: list[tuple[Address, Address, bytes]] = []
        self.sim = SimNetwork(3, latency=(0.001, 0.001),
                              observer=lambda _at, source, to, data: self.wire.append((source, to, data)))
        self.server = seeded_node("server", scope=Scope.LOOPBACK)
        self.requester = seeded_node("requester", scope=Scope.LOOPBACK)
        self.victim = seeded_node("victim", scope=Scope.LOOPBACK)
        for node in (self.server, self.requester, self.victim):
            self.sim.attach(node)
        self.sim.start_stepping()

    def dial_back(self, source: Address, *, body: dict[str, Any] | None = None, pad: bool = True,
                  bound: bool = True) -> list[tuple[Address, Address, bytes]]:
        """The requester's signed dial-back, put on the wire from `source`; what the server sent back."""
        binding: dict[str, Any] = {"to": self.server.node_id, "at": self.sim.now()} if bound else {}
        data = messages.encode(self.requester.identity, Kind.DIAL_BACK, bytes(8),
                               body or {"nonce": bytes(range(16)), "tcp": False},
                               pad_to=self.requester._pad_to[Kind.DIAL_BACK] if pad else 0, **binding)
        start = len(self.wire)
        self.sim.inject(source, self.sim.address(self.server), data)
        self.sim.advance(0.01)
        return [entry for entry in self.wire[start + 1:]]

    def probes(self, sent: list[tuple[Address, Address, bytes]]) -> list[tuple[Address, Address]]:
        return [(source, to) for source, to, data in sent if len(data) == messages.PROBE_SIZE]


def test_a_dial_back_goes_only_where_the_request_came_from_from_another_port() -> None:
    net = Stepped()
    server, victim = net.sim.address(net.server), net.sim.address(net.victim)
    # The requester's own request: the probe goes back to it, from the server's other port.
    sent = net.dial_back(net.sim.address(net.requester))
    assert net.probes(sent) == [((server[0], server[1] + PROBE_PORT_OFFSET), net.sim.address(net.requester))]
    # The same signed request with a forged source: the probe goes to the forged address and nowhere else.
    sent = net.dial_back(victim)
    assert net.probes(sent) == [((server[0], server[1] + PROBE_PORT_OFFSET), victim)]
    assert {to for _, to, _ in sent} == {victim}
    # No request can name another address: the body holds a nonce and a flag, and nothing else decodes.
    with pytest.raises(MessageRejected, match="exactly the keys"):
        messages.encode(net.requester.identity, Kind.DIAL_BACK, bytes(8),
                        {"nonce": bytes(16), "tcp": False, "address": b"\x01\x02\x03\x04\x00\x50"})


def test_a_dial_back_is_served_within_its_budget_per_requester_and_never_amplifies() -> None:
    net = Stepped()
    requester = net.sim.address(net.requester)
    for _ in range(DIAL_BACKS_PER_ADDRESS):
        sent = net.dial_back(requester)
        assert len(net.probes(sent)) == 1
        request_size = net.requester._pad_to[Kind.DIAL_BACK]
        assert sum(len(data) for _, _, data in sent) <= request_size  # answer and probe: paid for
    refused = net.dial_back(requester)
    assert net.probes(refused) == []
    [(_, _, answer)] = refused
    decoded = messages.decode(answer)
    assert isinstance(decoded, messages.Message) and decoded.body["code"] == DIAL_BACK_LIMITED
    # Another address is served (its own budget); a request too small to pay for the answer and the probe
    # (unbound and unpadded) gets nothing, an unbound one a refusal.
    assert len(net.probes(net.dial_back(net.sim.address(net.victim)))) == 1
    assert net.dial_back(("127.9.9.1", 4000), pad=False, bound=False) == []
    unbound = net.dial_back(("127.9.9.2", 4000), bound=False)
    assert net.probes(unbound) == [] and len(unbound) == 1
    net.sim.advance(60.0)  # a minute later the requester is served again
    assert len(net.probes(net.dial_back(requester))) == 1


def test_a_probe_with_a_nonce_nobody_asked_for_is_dropped() -> None:
    node = measured("lonely")
    node.datagram_received(messages.encode_probe(bytes(16)), ("127.0.0.9", 4000), EPOCH)
    assert node.dropped["unexpected"] == 1 and node.reachability.value.state is State.UNKNOWN  # type: ignore[union-attr]
    assert len(node.table) == 0


def test_a_network_gets_a_few_dial_backs_a_minute_however_many_addresses_it_has() -> None:
    net = Stepped()
    served = [len(net.probes(net.dial_back((f"127.9.9.{host}", 4000)))) for host in range(1, 9)]
    assert served == [1] * DIAL_BACKS_PER_NETWORK + [0] * (8 - DIAL_BACKS_PER_NETWORK)  # one /24: 6 a minute
    assert len(net.probes(net.dial_back(("127.9.10.1", 4000)))) == 1  # the next /24 has its own
