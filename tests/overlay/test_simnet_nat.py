"""Home routers in the simulated network: each kind's mapping and filtering, the mapping timeout, and overlay
nodes behind them (they look up like anyone; nobody reaches them unsolicited).

The kind tests step the network by hand with a fixed latency and real engines' pings, so every datagram's
fate is known; `observer` shows the source on the wire (where the router mapped it).
"""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from seattle.natkind import NatKind
from seattle.overlay.nodeid import Contact, NodeId
from seattle.overlay.protocol import Address, OverlayNode, Status
from seattle.overlay.simnat import Router
from seattle.overlay.simnet import PORT, SimNetwork
from seattle.testing.overlay import seeded_node

LATENCY = 0.001


class Net:
    """A stepped network with three public nodes and a router of `kind` with one node behind it; `wire`
    records (on-the-wire source, destination) for every datagram sent."""

    def __init__(self, kind: NatKind, timeout: float = 30.0) -> None:
        self.wire: list[tuple[Address, Address]] = []
        self.sim = SimNetwork(7, latency=(LATENCY, LATENCY),
                              observer=lambda _at, source, destination, _data: self.wire.append((source, destination)))
        self.public = [seeded_node(f"public{number}") for number in range(3)]
        for node in self.public:
            self.sim.attach(node)
        self.router = self.sim.add_router(kind, timeout=timeout)
        self.home = seeded_node("home")
        self.sim.attach(self.home, behind=self.router)
        self.sim.start_stepping()

    def ping(self, sender: OverlayNode, host: str, port: int, receiver: OverlayNode) -> bool:
        """Whether `sender`'s ping to `receiver`, sent to (host, port), was answered."""
        txid = sender.ping(Contact(receiver.node_id, host, port), self.sim.now())
        self.sim.flush(sender)
        self.sim.settle()  # through the request's deadline, when no answer comes
        return sender.outcome(txid).status is Status.ANSWERED

    def seen_as(self, destination: OverlayNode) -> Address:
        """The last on-the-wire source of the home node's datagrams to `destination`."""
        target = self.sim.address(destination)
        return [source for source, to in self.wire if to == target][-1]

    def delivered_from(self, source: Address, destination: Address) -> bool:
        """Inject a junk datagram from `source`; whether it reached a node (True) or a router dropped it."""
        before = self.sim.traffic.delivered
        self.sim.inject(source, destination, b"junk")
        self.sim.settle()
        return self.sim.traffic.delivered == before + 1


def test_cone_nat_maps_one_port_for_every_destination_and_lets_in_only_those_peers() -> None:
    net = Net(NatKind.CONE)
    p0, p1, p2 = net.public
    inside = net.sim.address(net.home)
    assert inside[0].startswith("172.16.") and net.router.address is not None
    assert net.ping(net.home, *net.sim.address(p0), p0) and net.ping(net.home, *net.sim.address(p1), p1)
    mapped = net.seen_as(p0)
    assert mapped == net.seen_as(p1) == (net.router.address, PORT)  # endpoint-independent, port preserved
    assert [mapping.port for mapping in net.router.mappings(net.sim.now())] == [PORT]
    # p0 reaches the home node at the mapping from the port it was sent to, as conntrack allows; p2 never talked to
    assert net.ping(p0, *mapped, net.home)
    assert not net.delivered_from((net.sim.address(p0)[0], 5555), mapped)  # another port of p0's: filtered
    filtered = net.sim.traffic.filtered
    assert not net.ping(p2, *mapped, net.home)
    assert net.sim.traffic.filtered > filtered
    assert not net.ping(p0, *inside, net.home)  # a private address: unreachable from outside its LAN
    assert net.sim.traffic.unreachable > 0


def test_symmetric_nat_maps_each_destination_to_its_own_port_and_lets_in_only_that_destination() -> None:
    net = Net(NatKind.SYMMETRIC)
    p0, p1, p2 = net.public
    assert net.ping(net.home, *net.sim.address(p0), p0) and net.ping(net.home, *net.sim.address(p1), p1)
    to_p0, to_p1 = net.seen_as(p0), net.seen_as(p1)
    assert to_p0[0] == to_p1[0] == net.router.address and to_p0[1] != to_p1[1]
    assert len(net.router.mappings(net.sim.now())) == 2
    assert net.ping(p0, *to_p0, net.home)  # its own mapping lets it in
    assert not net.ping(p0, *to_p1, net.home)  # p1's does not
    assert not net.delivered_from((net.sim.address(p0)[0], 5555), to_p0)  # nor another port of its IP
    assert not net.ping(p2, *to_p0, net.home)


def test_firewall_keeps_the_public_address_and_lets_in_only_answers() -> None:
    net = Net(NatKind.FIREWALL)
    p0, _, p2 = net.public
    address = net.sim.address(net.home)
    assert net.router.address is None and address[0].startswith("127.")
    assert net.ping(net.home, *net.sim.address(p0), p0)
    assert net.seen_as(p0) == address  # no translation
    assert net.ping(p0, *address, net.home)
    assert not net.delivered_from((net.sim.address(p0)[0], 5555), address)  # port-dependent filtering
    assert not net.ping(p2, *address, net.home)
    assert net.sim.traffic.filtered > 0


@pytest.mark.parametrize("kind", list(NatKind))
def test_a_mapping_expires_after_the_timeout_without_outbound_traffic(kind: NatKind) -> None:
    net = Net(kind, timeout=40.0)
    p0 = net.public[0]
    assert net.ping(net.home, *net.sim.address(p0), p0)  # the last datagram out (the ack) leaves at about t0
    mapped = net.seen_as(p0)
    net.sim.advance(30)
    assert net.delivered_from(net.sim.address(p0), mapped)  # at t0 + 30 s: still open
    net.sim.advance(5)
    assert net.delivered_from(net.sim.address(p0), mapped)  # at t0 + 35 s; inbound traffic does not refresh...
    net.sim.advance(6)
    assert not net.delivered_from(net.sim.address(p0), mapped)  # ...so at t0 + 41 s it is shut
    assert net.router.mappings(net.sim.now()) == []
    assert net.ping(net.home, *net.sim.address(p0), p0)  # sending again opens a mapping again
    assert net.ping(p0, *net.seen_as(p0), net.home)


def test_nodes_on_one_lan_reach_each_other_at_their_private_addresses_without_the_router() -> None:
    net = Net(NatKind.CONE)
    neighbour = seeded_node("neighbour")
    net.sim.attach(neighbour, behind=net.router)
    assert net.sim.address(neighbour) != net.sim.address(net.home)
    assert net.ping(neighbour, *net.sim.address(net.home), net.home)
    assert net.router.mappings(net.sim.now()) == [] and net.sim.router(neighbour) is net.router


def test_the_same_seed_maps_the_same_ports() -> None:
    def run() -> tuple[list[tuple[Address, Address]], str | None]:
        net = Net(NatKind.SYMMETRIC)
        for node in net.public:
            assert net.ping(net.home, *net.sim.address(node), node)
        return net.wire, net.router.address

    first, router = run()
    assert (first, router) == run()
    assert len({source for source, _ in first if source[0] == router}) == 3  # three destinations, three ports


def test_bad_router_arguments_are_named() -> None:
    sim = SimNetwork(1)
    with pytest.raises(TypeError, match="NatKind"):
        sim.add_router("cone")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        sim.add_router(NatKind.CONE, timeout=0)
    stranger = SimNetwork(2).add_router(NatKind.CONE)
    with pytest.raises(ValueError, match="not a router of this network"):
        sim.attach(seeded_node("x"), behind=stranger)
    router = sim.add_router(NatKind.SYMMETRIC)
    assert isinstance(router, Router) and router.address is not None
    with pytest.raises(ValueError, match="router's"):
        sim.attach(seeded_node("y"), (router.address, 4000))


@pytest.mark.parametrize("kind", list(NatKind))
async def test_a_node_behind_a_router_looks_up_but_nobody_reaches_it_unsolicited(
    kind: NatKind, autojump_clock: trio.testing.MockClock
) -> None:
    sent: list[tuple[Address, Address]] = []
    sim = SimNetwork(3, latency=(0.005, 0.05), observer=lambda _at, source, to, _data: sent.append((source, to)))
    public = [seeded_node(f"pub{number}", k=8) for number in range(60)]
    for node in public:
        sim.attach(node)
    router = sim.add_router(kind, timeout=60.0)
    home = seeded_node("behind", k=8)
    home_address = sim.attach(home, behind=router)
    sim.seed_tables()
    assert len(home.table) > 0 and all(home.node_id not in node.table for node in public)
    chooser = random.Random(4)
    async with sim.running():
        for _ in range(5):
            target = NodeId(chooser.getrandbits(256))
            found = [contact.node_id for contact in await sim.transport(home).lookup(target)]
            assert found == sorted((node.node_id for node in public), key=target.distance)[:8]
        assert sim.traffic.filtered == 0  # every answer came back through the router
        # Where the home node is seen: its NAT's live mappings, or (firewall) its own address.
        seen = [(router.address, mapping.port) for mapping in router.mappings(sim.now()) if router.address]
        seen = seen or [home_address]
        if kind.translates:  # its private address never left the LAN
            assert all(source != home_address for source, _ in sent)
        asked = {to for source, to in sent if source in seen}
        strangers = [node for node in public if sim.address(node) not in asked]
        assert strangers  # five lookups ask some of the 60, not all
        filtered = sim.traffic.filtered
        for stranger in strangers[:2]:
            for address in seen:
                with pytest.raises(TimeoutError):
                    await sim.transport(stranger).ping(Contact(home.node_id, *address), timeout=5)
        assert sim.traffic.filtered >= filtered + 2 * len(seen)
