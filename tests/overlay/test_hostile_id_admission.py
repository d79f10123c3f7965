"""Issue 13: only ids bound to work enter a routing table (`OverlayNode._admissible` checks
`seattle.overlay.nodeid.id_is_bound` under the node's network), whichever way a contact arrives: the ack of a
cookie, an answer to our own request, or a nodes answer. Unbound senders are still answered."""

from __future__ import annotations

import random

from seattle.overlay import messages
from seattle.overlay.addresses import Scope
from seattle.overlay.nodeid import Contact, NetworkParameters, NodeId, id_is_bound
from seattle.overlay.protocol import FILTERED_CONTACT, OverlayNode
from seattle.testing.overlay import seeded_identity, seeded_node

EPOCH = 1_700_000_000.0
#: Cheap enough to solve in a test, dear enough that an unsolved key fails it (1 in 256 passes by chance).
NETWORK = NetworkParameters(puzzle_bits=8)
AT_A, AT_B, AT_C = ("10.0.1.1", 7000), ("10.0.2.1", 7000), ("10.0.3.1", 7000)


def _ids(node: OverlayNode) -> set[NodeId]:
    return {contact.node_id for contact in node.table}


def _unbound(name: str) -> OverlayNode:
    """A node on NETWORK whose key was not solved for it (picked so that it fails the puzzle)."""
    for number in range(1000):
        identity = seeded_identity(f"{name}{number}")  # solved for no puzzle at all
        if not id_is_bound(NodeId.from_public_key(identity.public_key), NETWORK):
            return OverlayNode(identity, randomness=random.Random(number), network=NETWORK, scope=Scope.LOOPBACK)
    raise AssertionError("no unbound key in 1000 tries")


def _ping_and_ack(asker: OverlayNode, at_asker: tuple[str, int], asked: OverlayNode,
                  at_asked: tuple[str, int]) -> None:
    """asker pings asked, asked answers with a cookie, asker acks it: the full proof of asker's address."""
    asker.ping(Contact(asked.node_id, *at_asked), EPOCH)
    [(request, _)] = asker.poll(EPOCH)
    replies = asked.datagram_received(request, at_asker, EPOCH)
    for reply, _ in replies:
        for ack, _ in asker.datagram_received(reply, at_asked, EPOCH):
            asked.datagram_received(ack, at_asker, EPOCH)


def test_a_bound_id_proving_its_address_is_admitted_an_unbound_one_is_answered_but_never_admitted() -> None:
    a = seeded_node("a", network=NETWORK)
    bound = seeded_node("bound", network=NETWORK)
    unbound = _unbound("unbound")
    assert id_is_bound(a.node_id, NETWORK) and id_is_bound(bound.node_id, NETWORK)
    _ping_and_ack(bound, AT_B, a, AT_A)
    assert bound.node_id in _ids(a)
    unbound.ping(Contact(a.node_id, *AT_A), EPOCH)
    [(request, _)] = unbound.poll(EPOCH)
    [(answer, to)] = a.datagram_received(request, AT_C, EPOCH)
    assert to == AT_C and messages.decode(answer).cookie is None  # answered, but offered no way in
    assert unbound.node_id not in _ids(a)


def test_an_unbound_peer_answering_our_request_stays_out_of_our_table() -> None:
    a = seeded_node("a", network=NETWORK)
    unbound = _unbound("peer")
    a.ping(Contact(unbound.node_id, *AT_C), EPOCH)
    [(request, _)] = a.poll(EPOCH)
    for answer, _ in unbound.datagram_received(request, AT_A, EPOCH):
        a.datagram_received(answer, AT_C, EPOCH)
    assert unbound.node_id not in _ids(a)


def test_unbound_contacts_in_a_nodes_answer_are_filtered_and_counted() -> None:
    a = seeded_node("a", network=NETWORK)
    helper = seeded_node("helper", network=NETWORK)
    unbound = [_unbound(f"u{i}-") for i in range(3)]
    for number, node in enumerate(unbound):
        helper.table.observe(Contact(node.node_id, f"10.0.{10 + number}.1", 7000), EPOCH)
    _ping_and_ack(helper, AT_B, a, AT_A)
    a.start_lookup(unbound[0].node_id, EPOCH)
    sent = a.poll(EPOCH)
    for request, destination in sent:
        assert destination == AT_B
        for answer, _ in helper.datagram_received(request, AT_A, EPOCH):
            a.datagram_received(answer, AT_B, EPOCH)
    assert a.dropped[FILTERED_CONTACT] >= len(unbound)
    assert all(destination == AT_B for _, destination in a.poll(EPOCH))  # none of them is ever asked
