"""OverlayNode driven through an in-memory network with a fake clock: the sans-IO payoff, no sockets, no trio.

`Network` delivers datagrams one at a time in send order, advancing the fake clock by one millisecond per
delivery, and jumps the clock to the earliest `next_deadline()` when nothing is in flight. Every loop is
bounded by a step limit that fails the test instead of hanging.

Why not the simulated network (`seattle.testing.overlay`, `seattle.overlay.simnet`): this is a different
tool, a synchronous sans-IO stepper. It calls the engine's entry points directly, one datagram at a time,
with no trio and no event loop, so a test can tap or drop single datagrams (`sent`, `dead`), run inside a
hypothesis example, and assert on the engine's state between any two steps. Nodes and keys come from
`seattle.testing.overlay` like everywhere else.
"""

from __future__ import annotations

import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.keys import Identity
from seattle.overlay import messages, records
from seattle.overlay.lookup import RttEstimator
from seattle.overlay.messages import Kind
from seattle.overlay.nodeid import Contact, NodeId
from seattle.overlay.protocol import BAD_TOKEN, DIRECT_TIMEOUT_FACTOR, TOKEN_ROTATION, OverlayNode, Status
from seattle.testing.overlay import seeded_identity, seeded_node

EPOCH = 1_800_000_000.0  # records carry wall-clock times, so the fake clock starts at a plausible one
PORT = 4000
MAX_STEPS = 500_000


def address_of(number: int) -> tuple[str, int]:
    """One /24 per node, so the routing table's per-subnet cap never hides a node."""
    return (f"10.{number // 250}.{number % 250}.1", PORT)


class Network:
    """Nodes by address, a FIFO of datagrams in flight, a fake clock, and optional taps and dead nodes."""

    def __init__(self, count: int, k: int = 8) -> None:
        self.now = EPOCH
        self.nodes: dict[tuple[str, int], OverlayNode] = {}
        for number in range(count):
            self.nodes[address_of(number)] = seeded_node(f"n{number}", k=k)
        self.in_flight: deque[tuple[tuple[str, int], tuple[str, int], bytes]] = deque()
        self.dead: set[tuple[str, int]] = set()
        self.sent: list[tuple[tuple[str, int], tuple[str, int], bytes]] = []

    def node(self, number: int) -> OverlayNode:
        return self.nodes[address_of(number)]

    def contact(self, number: int) -> Contact:
        return Contact(self.node(number).node_id, *address_of(number))

    def send(self, source: tuple[str, int], datagrams: list[tuple[bytes, tuple[str, int]]]) -> None:
        for data, destination in datagrams:
            assert len(data) <= messages.MAX_DATAGRAM
            self.sent.append((source, destination, data))
            self.in_flight.append((source, destination, data))

    def poll(self, number: int) -> None:
        self.send(address_of(number), self.node(number).poll(self.now))

    def settle(self) -> None:
        """Run until nothing is in flight and no node has a deadline pending."""
        for _ in range(MAX_STEPS):
            if self.in_flight:
                source, destination, data = self.in_flight.popleft()
                self.now += 0.001
                node = self.nodes.get(destination)
                if node is not None and destination not in self.dead:
                    self.send(destination, node.datagram_received(data, source, self.now))
                continue
            deadlines = [
                (deadline, address)
                for address, node in self.nodes.items()
                if address not in self.dead and (deadline := node.next_deadline()) is not None
            ]
            if not deadlines:
                return
            self.now = max(self.now, min(deadlines)[0])
            for deadline, address in deadlines:
                if deadline <= self.now:
                    self.send(address, self.nodes[address].poll(self.now))
        raise AssertionError(f"the network did not settle within {MAX_STEPS} steps")

    def join_all(self) -> None:
        """Every node bootstraps from node 0, then looks up its own id (how a real node joins)."""
        for number in range(1, len(self.nodes)):
            node = self.node(number)
            txid = node.bootstrap(address_of(0), self.now)
            self.poll(number)
            self.settle()
            answer = node.outcome(txid).message
            assert answer is not None and answer.kind is Kind.NODES
            node.start_lookup(node.node_id, self.now, [answer])
            self.poll(number)
            self.settle()

    def lookup(self, number: int, target: NodeId) -> list[Contact]:
        node = self.node(number)
        lookup_id = node.start_lookup(target, self.now)
        assert node.lookup_result(lookup_id) is None
        self.poll(number)
        self.settle()
        result = node.lookup_result(lookup_id)
        assert result is not None
        return result

    def true_closest(self, target: NodeId, k: int, excluding: NodeId) -> list[NodeId]:
        ids = [node.node_id for address, node in self.nodes.items() if address not in self.dead]
        return sorted((i for i in ids if i != excluding), key=target.distance)[:k]

    def request(self, number: int, contact: Contact, kind: Kind, body: dict) -> messages.Message:
        node = self.node(number)
        txid = node.request(contact, kind, body, self.now)
        self.poll(number)
        self.settle()
        outcome = node.outcome(txid)
        assert outcome.status is Status.ANSWERED and outcome.message is not None
        return outcome.message


@pytest.fixture(scope="module")
def joined() -> Network:
    """60 nodes with k = 8, so no table holds everyone and lookups must really iterate."""
    network = Network(60)
    network.join_all()
    return network


def test_bootstrap_from_one_node_fills_every_table_with_true_contacts(joined: Network) -> None:
    truth = {node.node_id: address for address, node in joined.nodes.items()}
    for node in joined.nodes.values():
        assert len(node.table) >= joined.node(0).k
        for contact in node.table:
            assert truth[contact.node_id] == (contact.host, contact.port)


def test_a_join_starts_from_the_bootstrap_answer_and_asks_a_far_bootstrap_node_once() -> None:
    network = Network(30)
    network.join_all()
    newcomer = seeded_node("newcomer", k=8)
    address = address_of(30)
    network.nodes[address] = newcomer
    via = max(range(30), key=lambda number: newcomer.node_id.distance(network.node(number).node_id))
    txid = newcomer.bootstrap(address_of(via), network.now)
    network.poll(30)
    network.settle()
    answer = newcomer.outcome(txid).message
    assert answer is not None and answer.kind is Kind.NODES and answer.sender_id == network.node(via).node_id
    lookup_id = newcomer.start_lookup(newcomer.node_id, network.now, [answer])
    network.poll(30)
    network.settle()
    result = newcomer.lookup_result(lookup_id)
    assert result is not None
    assert [c.node_id for c in result] == network.true_closest(newcomer.node_id, 8, excluding=newcomer.node_id)
    mine = [messages.decode(data) for source, _, data in network.sent if source == address]
    to_via = [data for source, destination, data in network.sent if (source, destination) == (address, address_of(via))]
    assert len(to_via) == 1  # the bootstrap request; the join lookup did not ask it again
    assert all(message.kind in (Kind.FIND_NODE, Kind.PONG) for message in mine)  # no ping of ours
    assert all(message.to is not None for message in mine[1:] if message.is_request)  # the rest are bound
    for contact in result:  # our neighbours took us in, from our bound requests
        assert newcomer.node_id in network.nodes[(contact.host, contact.port)].table
    with pytest.raises(ValueError, match="nodes messages"):
        newcomer.start_lookup(newcomer.node_id, network.now, ["not a message"])


def test_lookups_find_the_true_k_closest(joined: Network) -> None:
    chooser = random.Random(4)
    for _ in range(12):
        number = chooser.randrange(60)
        target = NodeId(chooser.getrandbits(256))
        found = joined.lookup(number, target)
        expected = joined.true_closest(target, 8, excluding=joined.node(number).node_id)
        assert [contact.node_id for contact in found] == expected


def test_lookups_route_around_dead_nodes_and_count_their_failures() -> None:
    """Exactness is not promised here: a dead node keeps its table slot until it has missed 3 replies, so
    it can crowd a live one out of its neighbours' answers. What is promised: only live nodes come back,
    nearly all of the true closest, and every miss is charged to the dead contact."""
    network = Network(40)
    network.join_all()
    me = network.node(1)
    victims = sorted(me.table, key=lambda contact: contact.node_id)[:2]
    network.dead |= {(victim.host, victim.port) for victim in victims}
    dead_ids = {victim.node_id for victim in victims}
    for victim in victims:
        found = [contact.node_id for contact in network.lookup(1, victim.node_id)]
        expected = network.true_closest(victim.node_id, 8, excluding=me.node_id)
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

    def deliver(data: bytes, source: tuple[str, int], destination: tuple[str, int]) -> list:
        return [(reply, destination, to) for reply, to in nodes[destination].datagram_received(data, source, now)]

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
    network = Network(2)
    a, b = network.node(0), network.node(1)
    message = network.request(0, network.contact(1), Kind.PING, {})
    assert message.kind is Kind.PONG and message.sender_id == b.node_id
    assert b.node_id in a.table
    assert a.node_id in b.table  # after b's verification ping to a came back
    assert a.next_deadline() is None and b.next_deadline() is None


def test_an_ipv6_contact_spelled_differently_still_gets_its_answer_matched() -> None:
    network = Network(1)
    server = seeded_node("v6")
    network.nodes[("2001:db8::5", PORT)] = server
    message = network.request(0, Contact(server.node_id, "2001:DB8:0::5", PORT), Kind.PING, {})
    assert message.sender_id == server.node_id
    assert [(c.host, c.port) for c in network.node(0).table] == [("2001:db8::5", PORT)]


def test_a_known_contact_is_refreshed_without_another_verification_ping() -> None:
    network = Network(2)
    network.request(0, network.contact(1), Kind.PING, {})
    before = len(network.sent)
    network.request(0, network.contact(1), Kind.FIND_NODE, {"target": NodeId(3)})
    assert len(network.sent) - before == 2  # the request and its answer, nothing else


def test_an_unanswered_ping_times_out_and_counts_a_failure() -> None:
    network = Network(2)
    network.request(0, network.contact(1), Kind.PING, {})
    network.dead.add(address_of(1))
    node = network.node(0)
    txid = node.ping(network.contact(1), network.now)
    network.poll(0)
    deadline = node.next_deadline()
    # A direct request waits longer than a lookup's request, whose late answer would still count.
    assert deadline == pytest.approx(network.now + DIRECT_TIMEOUT_FACTOR * node.rtt.timeout())
    assert node.outcome(txid).status is Status.WAITING
    network.settle()
    assert node.outcome(txid).status is Status.TIMED_OUT
    assert node.table.bucket_for(network.contact(1).node_id).entries[network.contact(1).node_id.value].failures == 1


def test_a_tampered_message_is_dropped_unanswered_and_its_sender_never_enters() -> None:
    network = Network(2)
    sender = seeded_identity("x")
    data = bytearray(messages.encode(sender, Kind.PING, b"\x07" * 8, {}))
    data[-2] ^= 0x40  # the last byte of the txid: still well-formed, so only the signature can catch it
    node = network.node(0)
    assert node.datagram_received(bytes(data), ("10.9.9.9", 5000), network.now) == []
    assert node.dropped[messages.BAD_SIGNATURE] == 1
    assert len(node.table) == 0


def test_an_answer_signed_by_the_wrong_key_is_refused() -> None:
    """Mallory, at the address a find_node answer gave for victim's id, answers with her own key."""
    network = Network(3)
    node, mallory, victim = network.node(0), network.node(1), network.node(2)
    txid = node.ping(Contact(victim.node_id, *address_of(1)), network.now)
    network.poll(0)
    network.settle()  # mallory's engine answers the ping under her own key
    assert node.dropped["wrong_sender"] == 1
    assert node.outcome(txid).status is Status.TIMED_OUT
    assert victim.node_id not in node.table
    # Mallory may enter, but only as herself: she proved her own key at her own address.
    assert all(c.node_id == mallory.node_id and (c.host, c.port) == address_of(1) for c in node.table)


def test_a_replayed_request_from_another_address_does_not_enter_the_table() -> None:
    network = Network(3)
    honest, target = network.node(1), network.node(0)
    network.request(1, network.contact(0), Kind.PING, {})
    target.table = type(target.table)(target.node_id, k=8)  # forget honest: the replay must earn its place
    ping = next(data for source, _, data in network.sent if source == address_of(1))
    mallory_address = address_of(2)
    network.dead.add(mallory_address)  # the verification ping goes to mallory, who cannot sign as honest
    network.send(mallory_address, [(ping, address_of(0))])
    network.settle()
    assert honest.node_id not in target.table
    assert all((c.host, c.port) != mallory_address for c in target.table)


def _kinds_sent(network: Network, source: int, destination: int) -> list[Kind]:
    return [messages.decode(data).kind for s, d, data in network.sent
            if (s, d) == (address_of(source), address_of(destination))]


def test_a_request_bound_to_the_receiver_admits_its_sender_without_a_ping_back() -> None:
    network = Network(2)
    network.request(0, network.contact(1), Kind.FIND_NODE, {"target": NodeId(3)})
    assert network.node(0).node_id in network.node(1).table
    assert _kinds_sent(network, 1, 0) == [Kind.NODES]  # the answer only: no verification ping


def test_a_light_clients_requests_are_unbound_so_it_never_enters_a_table() -> None:
    network = Network(2)
    client = seeded_node("light", serve=False)
    network.nodes[address_of(0)] = client
    answer = network.request(0, network.contact(1), Kind.FIND_NODE, {"target": NodeId(3)})
    assert answer.kind is Kind.NODES
    assert client.node_id not in network.node(1).table
    assert _kinds_sent(network, 1, 0) == [Kind.NODES]  # nothing else: no ping back either


@pytest.mark.parametrize("why", ["stale", "future", "other receiver"])
def test_a_request_bound_elsewhere_or_out_of_time_gets_the_ping_back_instead(why: str) -> None:
    network = Network(3)
    sender, receiver = network.node(0), network.node(1)
    at = {"stale": network.now - 100, "future": network.now + 100, "other receiver": network.now}[why]
    to = network.node(2).node_id if why == "other receiver" else receiver.node_id
    data = messages.encode(sender.identity, Kind.PING, b"\x01" * messages.TXID_SIZE, {}, to=to, at=at)
    network.send(address_of(0), [(data, address_of(1))])
    network.settle()
    assert _kinds_sent(network, 1, 0) == [Kind.PING, Kind.PONG]  # verified by a ping, answered all the same
    assert sender.node_id in receiver.table  # the sender answered that ping from its address


def test_a_bound_request_replayed_from_another_address_is_not_admitted() -> None:
    network = Network(3)
    honest, target = network.node(0), network.node(1)
    data = messages.encode(honest.identity, Kind.PING, b"\x02" * messages.TXID_SIZE, {},
                           to=target.node_id, at=network.now)
    mallory_address = address_of(2)
    network.dead.add(mallory_address)  # the verification ping goes to mallory, who cannot sign as honest
    network.send(address_of(0), [(data, address_of(1))])
    network.settle()
    target.table = type(target.table)(target.node_id, k=8)  # forget honest: the replay must earn its place
    network.send(mallory_address, [(data, address_of(1))])
    network.settle()
    assert honest.node_id not in target.table


def _record(network: Network, signer: Identity, subject: Identity, sequence: int) -> bytes:
    return records.sign(signer, subject.public_key, ["10.0.0.1:1224"], sequence=sequence, now=network.now)


def test_records_are_stored_with_a_token_and_read_back() -> None:
    network = Network(2)
    subject = seeded_identity("subject")
    key = records.dht_key(subject.public_key)
    got = network.request(0, network.contact(1), Kind.GET_RECORDS, {"key": key, "skip": 0})
    assert got.body["records"] == [] and got.body["more"] is False
    raw = _record(network, network.node(0).identity, subject, 1)
    body = {"record": raw, "token": got.body["token"]}
    added = network.request(0, network.contact(1), Kind.ADD_RECORD, body)
    assert added.kind is Kind.ADDED
    got = network.request(0, network.contact(1), Kind.GET_RECORDS, {"key": key, "skip": 0})
    assert got.body["records"] == [raw]
    assert records.verify(got.body["records"][0], network.now).subject == subject.public_key


def test_add_record_refuses_wrong_foreign_and_stale_tokens_but_takes_the_previous_secrets() -> None:
    network = Network(3)
    subject = seeded_identity("subject")
    key = records.dht_key(subject.public_key)
    signer = network.node(0).identity

    def add(number: int, token: bytes, sequence: int) -> messages.Message:
        raw = _record(network, signer, subject, sequence)
        return network.request(number, network.contact(1), Kind.ADD_RECORD, {"record": raw, "token": token})

    token = network.request(0, network.contact(1), Kind.GET_RECORDS, {"key": key, "skip": 0}).body["token"]
    wrong = add(0, bytes(16), 1)
    assert (wrong.kind, wrong.body["code"]) == (Kind.ERROR, BAD_TOKEN)
    assert "write token" in wrong.body["message"]
    foreign = add(2, token, 1)  # node 2 presents the token node 1 gave node 0's address
    assert (foreign.kind, foreign.body["code"]) == (Kind.ERROR, BAD_TOKEN)
    network.now += TOKEN_ROTATION + 60  # one rotation later the token is under the previous secret
    assert add(0, token, 2).kind is Kind.ADDED
    network.now += TOKEN_ROTATION + 60  # two rotations later it is gone
    stale = add(0, token, 3)
    assert (stale.kind, stale.body["code"]) == (Kind.ERROR, BAD_TOKEN)
    fresh = network.request(0, network.contact(1), Kind.GET_RECORDS, {"key": key, "skip": 0}).body["token"]
    replayed = add(0, fresh, 2)  # a good token does not make an old record new
    assert (replayed.kind, replayed.body["code"]) == (Kind.ERROR, "stale")


def test_get_records_pages_so_every_answer_fits_one_datagram() -> None:
    network = Network(2)
    subject = seeded_identity("subject")
    key = records.dht_key(subject.public_key)
    held = network.node(1).store
    stored = set()
    for number in range(12):
        raw = records.sign(
            seeded_identity(f"s{number}"), subject.public_key, [f"10.0.0.{number}:1224"] * 8,
            sequence=1, now=network.now,
        )
        held.put(raw, f"10.7.{number}.1", network.now)
        stored.add(raw)
    seen: list[bytes] = []
    for _ in range(12):
        page = network.request(0, network.contact(1), Kind.GET_RECORDS, {"key": key, "skip": len(seen)})
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
    with pytest.raises(ValueError, match="IP literal"):
        node.datagram_received(b"", ("example.org", 9), EPOCH)
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
