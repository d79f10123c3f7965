"""OverlayNode driven through the simulated network stepped by hand: the sans-IO payoff, no sockets, no trio.

`SimNetwork` in stepping mode (`start_stepping`) with a fixed 1 ms latency delivers datagrams one at a time
in send order and wakes nodes at their deadlines on a manual clock; `settle` is bounded by a step limit that
fails the test instead of hanging. A test calls an engine's methods directly, then `flush`es the node; it
can tap every datagram (the observer's `sent` list), kill nodes, `inject` forged or replayed bytes, run inside
a hypothesis example, and assert on the engines' state between any two steps. Nodes and keys come from
`seattle.testing.overlay` like everywhere else.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.keys import Identity
from seattle.overlay import messages, records
from seattle.overlay.lookup import RttEstimator
from seattle.overlay.messages import Ack, Kind, Message
from seattle.overlay.nodeid import Contact, NodeId
from seattle.overlay.protocol import (
    BAD_TOKEN,
    DIRECT_TIMEOUT_FACTOR,
    TOKEN_ROTATION,
    Address,
    OverlayNode,
    Status,
)
from seattle.overlay.simnet import EPOCH, SimNetwork
from seattle.testing.overlay import seeded_identity, seeded_node

#: One fixed latency for every link, so datagrams arrive in the order they were sent.
FIFO = (0.001, 0.001)
PORT = 4000

Sent = list[tuple[Address, Address, bytes]]


def address_of(number: int) -> Address:
    """A made-up address for engines driven without any network (one /24 per node)."""
    return (f"10.{number // 250}.{number % 250}.1", PORT)


def stepped(count: int, k: int = 8) -> tuple[SimNetwork, list[OverlayNode], Sent]:
    """`count` seeded nodes n0, n1... on a network stepped by hand, and the list of every datagram sent
    (each checked to fit one datagram)."""
    sent: Sent = []

    def tap(at: float, source: Address, destination: Address, data: bytes) -> None:
        assert len(data) <= messages.MAX_DATAGRAM
        sent.append((source, destination, data))

    sim = SimNetwork(0, latency=FIFO, observer=tap)
    nodes = [seeded_node(f"n{number}", k=k) for number in range(count)]
    for node in nodes:
        sim.attach(node)
    sim.start_stepping()
    return sim, nodes, sent


def join_all(sim: SimNetwork, nodes: list[OverlayNode]) -> None:
    """Every node bootstraps from the first, then looks up its own id (how a real node joins)."""
    for node in nodes[1:]:
        txid = node.bootstrap(sim.address(nodes[0]), sim.now())
        sim.flush(node)
        sim.settle()
        answer = node.outcome(txid).message
        assert answer is not None and answer.kind is Kind.NODES
        node.start_lookup(node.node_id, sim.now(), [answer])
        sim.flush(node)
        sim.settle()


def lookup(sim: SimNetwork, node: OverlayNode, target: NodeId) -> list[Contact]:
    lookup_id = node.start_lookup(target, sim.now())
    assert node.lookup_result(lookup_id) is None
    sim.flush(node)
    sim.settle()
    result = node.lookup_result(lookup_id)
    assert result is not None
    return result


def true_closest(sim: SimNetwork, target: NodeId, k: int, excluding: NodeId) -> list[NodeId]:
    ids = [node.node_id for node in sim.nodes if sim.alive(node)]
    return sorted((i for i in ids if i != excluding), key=target.distance)[:k]


def request(
    sim: SimNetwork, node: OverlayNode, contact: Contact, kind: Kind, body: dict[str, Any]
) -> messages.Message:
    txid = node.request(contact, kind, body, sim.now())
    sim.flush(node)
    sim.settle()
    outcome = node.outcome(txid)
    assert outcome.status is Status.ANSWERED and outcome.message is not None
    return outcome.message


@pytest.fixture(scope="module")
def joined() -> tuple[SimNetwork, list[OverlayNode]]:
    """60 nodes with k = 8, so no table holds everyone and lookups must really iterate."""
    sim, nodes, _ = stepped(60)
    join_all(sim, nodes)
    return sim, nodes


def test_bootstrap_from_one_node_fills_every_table_with_true_contacts(
    joined: tuple[SimNetwork, list[OverlayNode]],
) -> None:
    sim, nodes = joined
    truth = {node.node_id: sim.address(node) for node in nodes}
    for node in nodes:
        assert len(node.table) >= nodes[0].k
        for contact in node.table:
            assert truth[contact.node_id] == (contact.host, contact.port)


def test_a_join_starts_from_the_bootstrap_answer_and_asks_a_far_bootstrap_node_once() -> None:
    sim, nodes, sent = stepped(30)
    join_all(sim, nodes)
    newcomer = seeded_node("newcomer", k=8)
    address = sim.attach(newcomer)
    via = max(nodes, key=lambda node: newcomer.node_id.distance(node.node_id))
    txid = newcomer.bootstrap(sim.address(via), sim.now())
    sim.flush(newcomer)
    sim.settle()
    answer = newcomer.outcome(txid).message
    assert answer is not None and answer.kind is Kind.NODES and answer.sender_id == via.node_id
    lookup_id = newcomer.start_lookup(newcomer.node_id, sim.now(), [answer])
    sim.flush(newcomer)
    sim.settle()
    result = newcomer.lookup_result(lookup_id)
    assert result is not None
    assert [c.node_id for c in result] == true_closest(sim, newcomer.node_id, 8, excluding=newcomer.node_id)
    decoded = [messages.decode(data) for source, _, data in sent if source == address]
    mine = [message for message in decoded if isinstance(message, Message)]  # the rest are acks
    to_via = [data for source, destination, data in sent if (source, destination) == (address, sim.address(via))]
    assert len(to_via) == 1  # the bootstrap request; the join lookup did not ask it again
    assert all(message.kind is Kind.FIND_NODE for message in mine)  # no ping of ours
    assert all(message.to is not None for message in mine[1:])  # the rest are bound
    at = {sim.address(node): node for node in sim.nodes}
    for contact in result:  # our neighbours took us in: our bound requests drew cookies, our acks returned them
        assert newcomer.node_id in at[(contact.host, contact.port)].table
    with pytest.raises(ValueError, match="nodes messages"):
        newcomer.start_lookup(newcomer.node_id, sim.now(), ["not a message"])  # type: ignore[list-item]


def test_lookups_find_the_true_k_closest(joined: tuple[SimNetwork, list[OverlayNode]]) -> None:
    sim, nodes = joined
    chooser = random.Random(4)
    for _ in range(12):
        node = nodes[chooser.randrange(60)]
        target = NodeId(chooser.getrandbits(256))
        found = lookup(sim, node, target)
        expected = true_closest(sim, target, 8, excluding=node.node_id)
        assert [contact.node_id for contact in found] == expected


def test_lookups_route_around_dead_nodes_and_count_their_failures() -> None:
    """Exactness is not promised here: a dead node keeps its table slot until it has missed 3 replies, so
    it can crowd a live one out of its neighbours' answers. What is promised: only live nodes come back,
    nearly all of the true closest, and every miss is charged to the dead contact."""
    sim, nodes, _ = stepped(40)
    join_all(sim, nodes)
    me = nodes[1]
    victims = sorted(me.table, key=lambda contact: contact.node_id)[:2]
    at = {sim.address(node): node for node in nodes}
    for victim in victims:
        sim.kill(at[(victim.host, victim.port)])
    dead_ids = {victim.node_id for victim in victims}
    for victim in victims:
        found = [contact.node_id for contact in lookup(sim, me, victim.node_id)]
        expected = true_closest(sim, victim.node_id, 8, excluding=me.node_id)
        assert not dead_ids & set(found)
        assert len(found) == 8 and found == sorted(found, key=victim.node_id.distance)
        assert len(set(found) & set(expected)) >= 6
    for victim in victims:
        entry = me.table.bucket_for(victim.node_id).entries.get(victim.node_id.value)
        assert entry is None or entry.failures >= 1


def test_a_lookup_answer_after_its_timeout_still_counts_and_clears_the_miss() -> None:
    """The timeout frees the slot at once, but the late answer is not thrown away: the peer ends up in the
    result, its miss is forgiven, and the estimator learns the slow round trip."""
    a, b, c, d = (seeded_node(name, k=8, rtt=RttEstimator(1.0, 1.0, 1.0)) for name in "abcd")
    where = {node.node_id: address_of(number) for number, node in enumerate((a, b, c, d))}
    nodes = {address_of(number): node for number, node in enumerate((a, b, c, d))}
    for holder, known in ((a, b), (a, c), (c, d)):
        holder.table.observe(Contact(known.node_id, *where[known.node_id]), EPOCH)
    now = EPOCH

    def deliver(data: bytes, source: Address, destination: Address) -> list[tuple[bytes, Address, Address]]:
        """What the receiver sent, less its acks (issue 13: b's and c's tables are not at stake here)."""
        replies = nodes[destination].datagram_received(data, source, now)
        return [(reply, destination, to) for reply, to in replies if not isinstance(messages.decode(reply), Ack)]

    lookup_id = a.start_lookup(NodeId(12345), now)
    to_b, to_c = sorted(a.poll(now), key=lambda datagram: datagram[1] != where[b.node_id])
    [(late_from_b, _, _)] = deliver(to_b[0], address_of(0), to_b[1])  # b answers; held back on the way
    [(from_c, _, _)] = deliver(to_c[0], address_of(0), to_c[1])
    now += 0.002
    [(to_d, _, d_address)] = deliver(from_c, to_c[1], address_of(0))  # c named d: a asks it
    now = EPOCH + 1.0005  # b's deadline has passed, d's has not
    assert a.poll(now) == []
    assert a.table.bucket_for(b.node_id).entries[b.node_id.value].failures == 1
    now += 0.0005
    assert deliver(late_from_b, to_b[1], address_of(0)) == []
    assert a.dropped["unexpected"] == 0
    assert a.table.bucket_for(b.node_id).entries[b.node_id.value].failures == 0
    assert a.rtt.srtt is not None and a.rtt.srtt > 0.1  # the slow sample moved the estimate
    [(from_d, _, _)] = deliver(to_d, address_of(0), d_address)
    deliver(from_d, d_address, address_of(0))
    result = a.lookup_result(lookup_id)
    assert result is not None and {contact.node_id for contact in result} == {b.node_id, c.node_id, d.node_id}


def test_ping_answers_and_both_sides_learn_each_other() -> None:
    sim, (a, b), _ = stepped(2)
    message = request(sim, a, sim.contact(b), Kind.PING, {})
    assert message.kind is Kind.PONG and message.sender_id == b.node_id
    assert b.node_id in a.table
    assert a.node_id in b.table  # after a's ack brought back the cookie of b's pong
    assert a.next_deadline() is None and b.next_deadline() is None


def test_an_ipv6_contact_spelled_differently_still_gets_its_answer_matched() -> None:
    sim, (node,), _ = stepped(1)
    server = seeded_node("v6")
    sim.attach(server, ("2a00:1450::5", PORT))  # public: 2001:db8::/32 is documentation, refused (issue 13)
    message = request(sim, node, Contact(server.node_id, "2A00:1450:0::5", PORT), Kind.PING, {})
    assert message.sender_id == server.node_id
    assert [(c.host, c.port) for c in node.table] == [("2a00:1450::5", PORT)]


def test_a_known_contact_is_refreshed_without_another_verification_ping() -> None:
    sim, (a, b), sent = stepped(2)
    request(sim, a, sim.contact(b), Kind.PING, {})
    before = len(sent)
    request(sim, a, sim.contact(b), Kind.FIND_NODE, {"target": NodeId(3)})
    assert len(sent) - before == 2  # the request and its answer, nothing else


def test_an_unanswered_ping_times_out_and_counts_a_failure() -> None:
    sim, (node, peer), _ = stepped(2)
    request(sim, node, sim.contact(peer), Kind.PING, {})
    sim.kill(peer)
    txid = node.ping(sim.contact(peer), sim.now())
    sim.flush(node)
    deadline = node.next_deadline()
    # A direct request waits longer than a lookup's request, whose late answer would still count.
    assert deadline == pytest.approx(sim.now() + DIRECT_TIMEOUT_FACTOR * node.rtt.timeout())
    assert node.outcome(txid).status is Status.WAITING
    sim.settle()
    assert node.outcome(txid).status is Status.TIMED_OUT
    assert node.table.bucket_for(peer.node_id).entries[peer.node_id.value].failures == 1


def test_a_tampered_message_is_dropped_unanswered_and_its_sender_never_enters() -> None:
    sim, (node, _), _ = stepped(2)
    sender = seeded_identity("x")
    data = bytearray(messages.encode(sender, Kind.PING, b"\x07" * 8, {}))
    data[-2] ^= 0x40  # the last byte of the txid: still well-formed, so only the signature can catch it
    assert node.datagram_received(bytes(data), ("10.9.9.9", 5000), sim.now()) == []
    assert node.dropped[messages.BAD_SIGNATURE] == 1
    assert len(node.table) == 0


def test_an_answer_signed_by_the_wrong_key_is_refused() -> None:
    """Mallory, at the address a find_node answer gave for victim's id, answers with her own key."""
    sim, (node, mallory, victim), _ = stepped(3)
    txid = node.ping(Contact(victim.node_id, *sim.address(mallory)), sim.now())
    sim.flush(node)
    sim.settle()  # mallory's engine answers the ping under her own key
    assert node.dropped["wrong_sender"] == 1
    assert node.outcome(txid).status is Status.TIMED_OUT
    assert victim.node_id not in node.table
    # Mallory may enter, but only as herself: she proved her own key at her own address.
    assert all(c.node_id == mallory.node_id and (c.host, c.port) == sim.address(mallory) for c in node.table)


def test_a_replayed_request_from_another_address_does_not_enter_the_table() -> None:
    sim, (target, honest, mallory), sent = stepped(3)
    request(sim, honest, sim.contact(target), Kind.PING, {})
    target.table = type(target.table)(target.node_id, k=8)  # forget honest: the replay must earn its place
    ping = next(data for source, _, data in sent if source == sim.address(honest))
    sim.kill(mallory)  # the cookie goes to mallory's address, and nobody there acks it
    sim.inject(sim.address(mallory), sim.address(target), ping)
    sim.settle()
    assert honest.node_id not in target.table
    assert all((c.host, c.port) != sim.address(mallory) for c in target.table)


def _kinds_sent(sim: SimNetwork, sent: Sent, source: OverlayNode, destination: OverlayNode) -> list[str]:
    """The kinds of what `source` sent `destination`, in order: an ack is "ack"."""
    decoded = [messages.decode(data) for s, d, data in sent
               if (s, d) == (sim.address(source), sim.address(destination))]
    return ["ack" if isinstance(message, Ack) else message.kind for message in decoded]


def test_a_request_bound_to_the_receiver_admits_its_sender_once_it_acks_the_cookie() -> None:
    """Issue 13: a request proves its sender's key, not its source address (which can be forged)."""
    sim, (a, b), sent = stepped(2)
    request(sim, a, sim.contact(b), Kind.FIND_NODE, {"target": NodeId(3)})
    assert a.node_id in b.table
    assert _kinds_sent(sim, sent, b, a) == [Kind.NODES]  # the answer only, carrying a cookie: no ping back
    assert _kinds_sent(sim, sent, a, b) == [Kind.FIND_NODE, "ack"]  # the ack brought the cookie back


def test_a_light_clients_requests_are_unbound_so_it_never_enters_a_table() -> None:
    sim, _, sent = stepped(0)
    client, server = seeded_node("light", serve=False), seeded_node("n1", k=8)
    sim.attach(client)
    sim.attach(server)
    answer = request(sim, client, sim.contact(server), Kind.FIND_NODE, {"target": NodeId(3)})
    assert answer.kind is Kind.NODES
    assert client.node_id not in server.table
    assert _kinds_sent(sim, sent, server, client) == [Kind.NODES]  # nothing else: no ping back either


@pytest.mark.parametrize("why", ["stale", "future", "other receiver"])
def test_a_request_bound_elsewhere_or_out_of_time_gets_no_cookie(why: str) -> None:
    sim, (sender, receiver, other), sent = stepped(3)
    at = {"stale": sim.now() - 100, "future": sim.now() + 100, "other receiver": sim.now()}[why]
    to = other.node_id if why == "other receiver" else receiver.node_id
    data = messages.encode(sender.identity, Kind.PING, b"\x01" * messages.TXID_SIZE, {}, to=to, at=at)
    sim.inject(sim.address(sender), sim.address(receiver), data)
    sim.settle()
    assert _kinds_sent(sim, sent, receiver, sender) == [Kind.PONG]  # answered; a replayed capture gets no cookie
    assert sender.node_id not in receiver.table


def test_a_bound_request_replayed_from_another_address_is_not_admitted() -> None:
    sim, (honest, target, mallory), _ = stepped(3)
    data = messages.encode(honest.identity, Kind.PING, b"\x02" * messages.TXID_SIZE, {},
                           to=target.node_id, at=sim.now())
    sim.kill(mallory)  # the cookie goes to mallory's address, and nobody there acks it
    sim.inject(sim.address(honest), sim.address(target), data)
    sim.settle()
    target.table = type(target.table)(target.node_id, k=8)  # forget honest: the replay must earn its place
    sim.inject(sim.address(mallory), sim.address(target), data)
    sim.settle()
    assert honest.node_id not in target.table


def _record(sim: SimNetwork, signer: Identity, subject: Identity, sequence: int) -> bytes:
    return records.sign(signer, subject.public_key, ["10.0.0.1:1224"], sequence=sequence, now=sim.now())


def test_records_are_stored_with_a_token_and_read_back() -> None:
    sim, (node, peer), _ = stepped(2)
    subject = seeded_identity("subject")
    key = records.dht_key(subject.public_key)
    got = request(sim, node, sim.contact(peer), Kind.GET_RECORDS, {"key": key, "skip": 0})
    assert got.body["records"] == [] and got.body["more"] is False
    raw = _record(sim, node.identity, subject, 1)
    body = {"record": raw, "token": got.body["token"]}
    added = request(sim, node, sim.contact(peer), Kind.ADD_RECORD, body)
    assert added.kind is Kind.ADDED
    got = request(sim, node, sim.contact(peer), Kind.GET_RECORDS, {"key": key, "skip": 0})
    assert got.body["records"] == [raw]
    assert records.verify(got.body["records"][0], sim.now()).subject == subject.public_key


def test_add_record_refuses_wrong_foreign_and_stale_tokens_but_takes_the_previous_secrets() -> None:
    sim, (node, peer, other), _ = stepped(3)
    subject = seeded_identity("subject")
    key = records.dht_key(subject.public_key)
    signer = node.identity

    def add(sender: OverlayNode, token: bytes, sequence: int) -> messages.Message:
        raw = _record(sim, signer, subject, sequence)
        return request(sim, sender, sim.contact(peer), Kind.ADD_RECORD, {"record": raw, "token": token})

    token = request(sim, node, sim.contact(peer), Kind.GET_RECORDS, {"key": key, "skip": 0}).body["token"]
    wrong = add(node, bytes(16), 1)
    assert (wrong.kind, wrong.body["code"]) == (Kind.ERROR, BAD_TOKEN)
    assert "write token" in wrong.body["message"]
    foreign = add(other, token, 1)  # the third node presents the token the peer gave the first's address
    assert (foreign.kind, foreign.body["code"]) == (Kind.ERROR, BAD_TOKEN)
    sim.advance(TOKEN_ROTATION + 60)  # one rotation later the token is under the previous secret
    assert add(node, token, 2).kind is Kind.ADDED
    sim.advance(TOKEN_ROTATION + 60)  # two rotations later it is gone
    stale = add(node, token, 3)
    assert (stale.kind, stale.body["code"]) == (Kind.ERROR, BAD_TOKEN)
    fresh = request(sim, node, sim.contact(peer), Kind.GET_RECORDS, {"key": key, "skip": 0}).body["token"]
    replayed = add(node, fresh, 2)  # a good token does not make an old record new
    assert (replayed.kind, replayed.body["code"]) == (Kind.ERROR, "stale")


def test_get_records_pages_so_every_answer_fits_one_datagram() -> None:
    sim, (node, peer), _ = stepped(2)
    subject = seeded_identity("subject")
    key = records.dht_key(subject.public_key)
    held = peer.store
    stored = set()
    for number in range(12):
        raw = records.sign(
            seeded_identity(f"s{number}"), subject.public_key, [f"10.0.0.{number}:1224"] * 8,
            sequence=1, now=sim.now(),
        )
        held.put(raw, f"10.7.{number}.1", sim.now())
        stored.add(raw)
    seen: list[bytes] = []
    for _ in range(12):
        page = request(sim, node, sim.contact(peer), Kind.GET_RECORDS, {"key": key, "skip": len(seen)})
        assert page.body["records"]
        seen += page.body["records"]
        if not page.body["more"]:
            break
    assert len(seen) == 12 and set(seen) == stored


def test_an_oversized_datagram_is_refused() -> None:
    node = seeded_node("n")
    assert node.datagram_received(b"\x00" * (messages.MAX_DATAGRAM + 1), ("10.0.0.2", 9), EPOCH) == []
    assert node.dropped[messages.TOO_LARGE] == 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1600))
def test_arbitrary_bytes_never_raise_and_get_no_answer(data: bytes) -> None:
    node = seeded_node("n")
    assert node.datagram_received(data, ("10.0.0.2", 9), EPOCH) == []
    assert len(node.table) == 0 and node.next_deadline() is None


def test_bad_arguments_are_named() -> None:
    node = seeded_node("n")
    assert node.datagram_received(b"", ("example.org", 9), EPOCH) == []  # remote input: counted, not raised
    assert node.dropped == {"bad_source": 1}
    with pytest.raises(ValueError, match="port"):
        node.bootstrap(("10.0.0.1", 0), EPOCH)
    with pytest.raises(ValueError, match="an answer, not a request"):
        node.request(Contact(NodeId(5), "10.0.0.1", 9), Kind.PONG, {}, EPOCH)
    with pytest.raises(messages.MessageRejected, match="'target'"):
        node.request(Contact(NodeId(5), "10.0.0.1", 9), Kind.FIND_NODE, {}, EPOCH)
    with pytest.raises(KeyError, match="no lookup 99"):
        node.lookup_result(99)
    with pytest.raises(TypeError, match="Identity"):
        OverlayNode("not a key", randomness=random.Random(1))  # type: ignore[arg-type]


def test_a_lookup_with_an_empty_table_finishes_empty() -> None:
    node = seeded_node("alone")
    lookup_id = node.start_lookup(NodeId(1), EPOCH)
    assert node.poll(EPOCH) == []
    assert node.lookup_result(lookup_id) == []
