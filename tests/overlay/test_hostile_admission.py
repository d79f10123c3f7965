"""Issue 13, who enters a routing table, how much a stranger can make us send, and to which addresses.

- a contact enters a table only after it answered a request we sent to its address (a request proves the key,
  not the address: a spoofed source would otherwise put the victim's address in tables);
- everything sent to an address not yet proven, for one request, is at most that request's size (byte-exact);
- contacts are filtered by address scope when learned and when answered.
"""

from __future__ import annotations

import secrets
from typing import Any

import nacl.bindings
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.overlay import addresses, messages
from seattle.overlay.addresses import Scope
from seattle.overlay.messages import Ack, Kind, Message
from seattle.overlay.nodeid import Contact, NodeId
from seattle.overlay.protocol import OverlayNode
from seattle.overlay.routing import Observed
from seattle.testing.overlay import seeded_identity, seeded_node

EPOCH = 1_700_000_000.0
Address = tuple[str, int]
Sent = list[tuple[bytes, Address, Address]]  # (datagram, from, to)


def _run(nodes: dict[Address, OverlayNode], first: Sent, *, silent: frozenset[Address] = frozenset()) -> Sent:
    """Deliver datagrams (instantly, in order) until none is left; `silent` addresses receive but never answer."""
    sent: Sent = []
    queue = list(first)
    while queue:
        data, source, destination = queue.pop(0)
        sent.append((data, source, destination))
        node = nodes.get(destination)
        if node is None or destination in silent:
            continue
        queue += [(reply, destination, to) for reply, to in node.datagram_received(data, source, EPOCH)]
    return sent


def _from(node: OverlayNode, address: Address) -> Sent:
    return [(data, address, to) for data, to in node.poll(EPOCH)]


def _ids(node: OverlayNode) -> set[NodeId]:
    return {contact.node_id for contact in node.table}


def _pair(scope: Scope = Scope.LOOPBACK) -> tuple[OverlayNode, OverlayNode, Address, Address]:
    return seeded_node("a", scope=scope), seeded_node("b", scope=scope), ("10.0.1.1", 7000), ("10.0.2.1", 7000)


def test_a_bound_request_alone_admits_nobody_the_ack_of_its_cookie_does() -> None:
    a, b, at_a, at_b = _pair()
    a.ping(Contact(b.node_id, *at_b), EPOCH)
    [(request, _)] = a.poll(EPOCH)
    # b sees a fresh request bound to it: before this issue, that alone put a into b's table.
    [(pong, to)] = b.datagram_received(request, at_a, EPOCH)
    decoded = messages.decode(pong)
    assert to == at_a and isinstance(decoded, Message) and decoded.cookie is not None
    assert a.node_id not in _ids(b) and b.next_deadline() is None  # and nothing kept for a meanwhile
    # a's ack brings the cookie back from a's address: now, and only now, b takes it in.
    [(ack, back)] = a.datagram_received(pong, at_b, EPOCH)
    assert back == at_b and isinstance(messages.decode(ack), Ack)
    assert b.datagram_received(ack, at_a, EPOCH) == []  # an ack is answered by nothing
    assert _ids(b) == {a.node_id} and _ids(a) == {b.node_id}


def test_an_ack_from_another_address_or_with_a_forged_cookie_admits_nobody() -> None:
    a, b, at_a, at_b = _pair()
    a.ping(Contact(b.node_id, *at_b), EPOCH)
    [(request, _)] = a.poll(EPOCH)
    [(pong, _)] = b.datagram_received(request, at_a, EPOCH)
    [(ack, _)] = a.datagram_received(pong, at_b, EPOCH)
    assert b.datagram_received(ack, ("10.0.66.1", 7000), EPOCH) == []  # the cookie binds a's address
    forged = messages.encode_ack(a.node_id, bytes(8))
    assert b.datagram_received(forged, at_a, EPOCH) == []
    assert b.dropped == {"bad_cookie": 2} and len(b.table) == 0
    # The cookie of an ack lives 5 to 10 minutes (the token secret's rotation), then admits nobody.
    assert b.datagram_received(ack, at_a, EPOCH + 601) == []
    assert b.dropped["bad_cookie"] == 3 and len(b.table) == 0


def test_a_request_from_a_spoofed_source_never_puts_the_victims_address_in_a_table() -> None:
    """An attacker signs with its own key but forges the source: the cookie goes to the victim, who does not
    ack it, so the attacker's id never enters the table at the victim's address."""
    target = seeded_node("target", scope=Scope.LOOPBACK)
    attacker = seeded_identity("attacker")
    victim: Address = ("10.0.66.1", 53)
    request = messages.encode(attacker, Kind.FIND_NODE, secrets.token_bytes(8), {"target": NodeId(5)},
                              to=target.node_id, at=EPOCH, pad_to=1319)
    sent = _run({("10.0.0.1", 7000): target}, [(request, victim, ("10.0.0.1", 7000))], silent=frozenset({victim}))
    assert len(target.table) == 0 and target.next_deadline() is None  # nothing kept for the stranger
    [answer] = [messages.decode(data) for data, _, _ in sent[1:]]
    assert answer.kind is Kind.NODES and answer.cookie is not None
    assert len(sent[1][0]) <= len(request)


def test_a_contact_learned_from_a_nodes_answer_enters_only_once_it_answers() -> None:
    a, b, at_a, at_b = _pair()
    c, at_c = seeded_node("c", scope=Scope.LOOPBACK), ("10.0.3.1", 7000)
    b.table.observe(Contact(c.node_id, *at_c), EPOCH)
    a.table.observe(Contact(b.node_id, *at_b), EPOCH)
    a.request(Contact(b.node_id, *at_b), Kind.FIND_NODE, {"target": c.node_id}, EPOCH)
    _run({at_b: b}, _from(a, at_a))  # b's answer names c; it is not delivered to a yet
    assert c.node_id not in _ids(a)
    # A lookup asks c: c enters a's table when its answer comes back from c's address, not before.
    a.start_lookup(c.node_id, EPOCH)
    sent = _run({at_a: a, at_b: b, at_c: c}, _from(a, at_a))
    assert any(source == at_c and to == at_a for _, source, to in sent)
    assert c.node_id in _ids(a)


def test_a_contact_that_never_answers_never_enters() -> None:
    a, b, at_a, at_b = _pair()
    ghost = Contact(seeded_node("ghost").node_id, "10.0.9.1", 7000)
    b.table.observe(ghost, EPOCH)
    a.table.observe(Contact(b.node_id, *at_b), EPOCH)
    a.start_lookup(ghost.node_id, EPOCH)
    _run({at_a: a, at_b: b}, _from(a, at_a), silent=frozenset({(ghost.host, ghost.port)}))
    a.poll(EPOCH + 60)
    assert ghost.node_id not in _ids(a)


# --- amplification ----------------------------------------------------------------------------------------


def _full_node(name: str = "full", count: int = 40) -> tuple[OverlayNode, Address]:
    node = seeded_node(name, k=20, scope=Scope.LOOPBACK)
    for number in range(count):
        node.table.observe(Contact(NodeId((number + 1) << 248 | number), f"10.{number}.1.1", 7000), EPOCH)
    return node, ("10.200.0.1", 7000)


def _request(kind: Kind, body: dict[str, Any], to: OverlayNode | None, pad_to: int = 0) -> bytes:
    binding: dict[str, Any] = {} if to is None else {"to": to.node_id, "at": EPOCH}
    return messages.encode(seeded_identity("stranger"), kind, secrets.token_bytes(8), body, pad_to=pad_to, **binding)


REQUESTS = [
    (Kind.PING, {}),
    (Kind.FIND_NODE, {"target": NodeId(7)}),
    (Kind.GET_RECORDS, {"key": NodeId(7), "skip": 0}),
    (Kind.ADD_RECORD, {"record": b"r", "token": bytes(16)}),  # refused: a bad token, an error answer
]


@pytest.mark.parametrize("bound", [False, True], ids=["unbound", "bound"])
@pytest.mark.parametrize(("kind", "body"), REQUESTS, ids=[kind.value for kind, _ in REQUESTS])
@pytest.mark.parametrize("pad_to", [0, 300, 1319, 1400])
def test_an_unproven_address_gets_no_more_bytes_than_its_request(
    kind: Kind, body: dict[str, Any], bound: bool, pad_to: int
) -> None:
    node, source = _full_node()
    request = _request(kind, body, node if bound else None, pad_to)
    replies = node.datagram_received(request, source, EPOCH)
    assert replies and all(to == source for _, to in replies)
    assert sum(len(data) for data, _ in replies) <= len(request)
    # Before this issue a 202-byte find_node drew a 900-byte answer from anyone, at any forged address.


def test_an_unproven_find_node_gets_exactly_the_contacts_that_fit() -> None:
    node, source = _full_node()
    request = _request(Kind.FIND_NODE, {"target": NodeId(7)}, None, pad_to=300)
    [(answer, _)] = node.datagram_received(request, source, EPOCH)
    got = messages.decode(answer).body["nodes"]
    assert 0 < len(got) < node.k
    assert len(answer) <= len(request)
    # One contact more would not have fit: the answer is cut no further than the request's size requires.
    nearest = node.table.closest(NodeId(7))
    assert got == nearest[: len(got)]
    one_more = messages.encoded_size(Kind.NODES, {"nodes": nearest[: len(got) + 1]})
    assert one_more > len(request)


def test_our_padded_requests_draw_full_answers_with_a_cookie_from_strangers() -> None:
    node, source = _full_node()
    asker = seeded_node("asker", k=20, scope=Scope.LOOPBACK)
    asker.request(Contact(node.node_id, "10.0.0.1", 7000), Kind.FIND_NODE, {"target": NodeId(7)}, EPOCH)
    [(request, _)] = asker.poll(EPOCH)
    assert len(request) == asker._pad_to[Kind.FIND_NODE] == 1173
    [(answer, _)] = node.datagram_received(request, source, EPOCH)
    decoded = messages.decode(answer)
    assert decoded.kind is Kind.NODES and decoded.cookie is not None and len(decoded.body["nodes"]) == node.k
    assert len(answer) <= len(request)


def test_a_proven_peer_gets_full_answers_to_small_requests() -> None:
    node, source = _full_node(count=19)
    stranger = seeded_identity("stranger")
    assert node.table.observe(Contact(NodeId.from_public_key(stranger.public_key), *source), EPOCH) is Observed.ADDED
    request = _request(Kind.FIND_NODE, {"target": NodeId(7)}, None)
    [(answer, _)] = node.datagram_received(request, source, EPOCH)
    assert len(messages.decode(answer).body["nodes"]) == node.k
    assert len(answer) > len(request)


def test_padding_is_byte_exact_and_decodes() -> None:
    identity = seeded_identity("pad")
    base = len(messages.encode(identity, Kind.FIND_NODE, bytes(8), {"target": NodeId(1)}))
    for pad_to in range(base + 2, messages.MAX_DATAGRAM + 1, 7):
        data = messages.encode(identity, Kind.FIND_NODE, bytes(8), {"target": NodeId(1)}, pad_to=pad_to)
        assert len(data) == pad_to
        assert messages.decode(data).body == {"target": NodeId(1)}
    with pytest.raises(messages.MessageRejected, match="only requests are padded"):
        messages.encode(identity, Kind.PONG, bytes(8), {}, pad_to=500)
    with pytest.raises(messages.MessageRejected, match="pad_to"):
        messages.encode(identity, Kind.PING, bytes(8), {}, pad_to=messages.MAX_DATAGRAM + 1)


def test_an_answer_carrying_padding_is_malformed() -> None:
    identity = seeded_identity("pad")
    data = messages.encode(identity, Kind.PING, bytes(8), {}, pad_to=200)
    # Re-sign the payload with the kind changed to an answer: padding is for requests only.
    payload = data[messages.SIGNATURE_SIZE + 32 :].replace(b"\xa4ping", b"\xa4pong")
    key, secret = identity.sodium_key_pair
    signature = nacl.bindings.crypto_sign(messages.CONTEXT + key + payload, secret)[: messages.SIGNATURE_SIZE]
    with pytest.raises(messages.MessageRejected, match="must be 8 bytes"):  # an answer's extra is a cookie
        messages.decode(signature + key + payload)


# --- address scopes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "scope"), [
    ("1.2.3.4", Scope.GLOBAL), ("2a00:1450::1", Scope.GLOBAL), ("10.1.2.3", Scope.PRIVATE),
    ("172.16.0.1", Scope.PRIVATE), ("192.168.1.1", Scope.PRIVATE), ("100.64.0.1", Scope.PRIVATE),
    ("fd12::1", Scope.PRIVATE), ("127.0.0.1", Scope.LOOPBACK), ("127.255.0.9", Scope.LOOPBACK),
    ("::1", Scope.LOOPBACK), ("::ffff:1.2.3.4", Scope.GLOBAL), ("::ffff:10.0.0.1", Scope.PRIVATE),
    ("0.0.0.0", None), ("0.1.2.3", None), ("255.255.255.255", None), ("224.0.0.1", None), ("239.1.1.1", None),
    ("240.0.0.1", None), ("169.254.1.1", None), ("192.0.2.1", None), ("198.51.100.1", None),
    ("203.0.113.1", None), ("198.18.0.1", None), ("192.0.0.8", None), ("::", None), ("ff02::1", None),
    ("fe80::1", None), ("fe80::1%eth0", None), ("2001:db8::1", None), ("2002:a00:1::1", None),
    ("2001::1", None), ("64:ff9b::a00:1", None), ("::ffff:0.0.0.0", None), ("3fff::1", None),
    ("fec0::1", None), ("example.org", None), ("", None),
])
def test_address_scopes(host: str, scope: Scope | None) -> None:
    assert addresses.scope_of(host) is scope


def test_a_node_reaches_its_own_scope_and_the_wider_ones_only() -> None:
    assert addresses.reachable(Scope.GLOBAL, "1.2.3.4", 1)
    assert not addresses.reachable(Scope.GLOBAL, "10.0.0.1", 1)
    assert not addresses.reachable(Scope.GLOBAL, "127.0.0.1", 1)
    assert addresses.reachable(Scope.PRIVATE, "10.0.0.1", 1) and addresses.reachable(Scope.PRIVATE, "1.2.3.4", 1)
    assert not addresses.reachable(Scope.PRIVATE, "127.0.0.1", 1)
    assert addresses.reachable(Scope.LOOPBACK, "127.0.0.1", 65535)
    assert not addresses.reachable(Scope.LOOPBACK, "127.0.0.1", 0)
    assert addresses.bound_scope("0.0.0.0") is Scope.GLOBAL and addresses.bound_scope("::") is Scope.GLOBAL
    assert addresses.bound_scope("10.1.1.1") is Scope.PRIVATE and addresses.bound_scope("::1") is Scope.LOOPBACK


def test_a_bootstrap_node_on_a_private_testbed_widens_the_network() -> None:
    node = seeded_node("joiner", scope=Scope.GLOBAL)
    node.bootstrap(("10.0.0.1", 7000), EPOCH)
    assert node.scope is Scope.PRIVATE
    node.bootstrap(("1.2.3.4", 7000), EPOCH)  # never narrows
    assert node.scope is Scope.PRIVATE


def test_answers_carry_only_contacts_the_requester_can_reach() -> None:
    node = seeded_node("mixed", k=20, scope=Scope.PRIVATE)
    hosts = ["1.2.3.4", "5.6.7.8", "10.0.0.1", "10.1.0.1", "192.168.0.2", "172.16.1.2", "fd00::1", "2a00::1"]
    for number, host in enumerate(hosts, start=1):
        node.table.observe(Contact(NodeId(number << 240), host, 7000), EPOCH)
    stranger = seeded_identity("stranger")
    for source, reachable in (
        (("9.9.9.9", 7000), {"1.2.3.4", "5.6.7.8", "2a00::1"}),
        (("10.9.9.9", 7000), set(hosts)),
    ):
        request = messages.encode(stranger, Kind.FIND_NODE, secrets.token_bytes(8), {"target": NodeId(1)},
                                  pad_to=1400)
        [(answer, _)] = node.datagram_received(request, source, EPOCH)
        assert {c.host for c in messages.decode(answer).body["nodes"]} == reachable


def test_a_bound_request_always_pays_for_a_cookie_the_answer_shrinks_around_it() -> None:
    node, source = _full_node(count=10)  # room for anyone
    ping = _request(Kind.PING, {}, node)  # a bound ping is larger than a pong and its cookie: never padded
    assert node._pad_to[Kind.PING] == messages.encoded_size(Kind.PONG, {}, cookie=True) < len(ping)
    [(pong, _)] = node.datagram_received(ping, source, EPOCH)
    assert messages.decode(pong).cookie is not None and len(pong) <= len(ping)
    small = _request(Kind.FIND_NODE, {"target": NodeId(7)}, node, pad_to=300)
    [(answer, _)] = node.datagram_received(small, source, EPOCH)
    decoded = messages.decode(answer)
    got = len(decoded.body["nodes"])
    assert decoded.cookie is not None and 0 < got < 10
    one_more = {"nodes": node.table.closest(NodeId(7))[: got + 1]}
    assert len(answer) <= len(small) < messages.encoded_size(Kind.NODES, one_more, cookie=True)
    assert len(node.table) == 10  # and nobody is admitted until it acks


def test_cookies_only_on_answers_and_acks_carry_nothing_else() -> None:
    identity = seeded_identity("c")
    with pytest.raises(messages.MessageRejected, match="only answers carry a cookie"):
        messages.encode(identity, Kind.PING, bytes(8), {}, cookie=bytes(8))
    with pytest.raises(messages.MessageRejected, match="must be 8 bytes"):
        messages.encode(identity, Kind.PONG, bytes(8), {}, cookie=bytes(7))
    data = messages.encode(identity, Kind.ERROR, bytes(8), {"code": "x", "message": ""}, cookie=b"12345678")
    assert messages.decode(data).cookie == b"12345678"
    with pytest.raises(messages.MessageRejected, match="only requests are padded"):
        messages.encode(identity, Kind.PONG, bytes(8), {}, pad_to=300)
    # An ack is its tag, an id and a cookie: exactly ACK_SIZE bytes, below any signed datagram.
    ack = messages.encode_ack(NodeId(7), b"12345678")
    assert len(ack) == messages.ACK_SIZE and messages.decode(ack) == Ack(NodeId(7), b"12345678")
    with pytest.raises(messages.MessageRejected, match="8 bytes"):
        messages.encode_ack(NodeId(7), bytes(9))
    with pytest.raises(messages.MessageRejected, match="starts with its tag") as rejected:
        messages.decode(b"x" + ack[1:])
    assert rejected.value.code == messages.MALFORMED


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.ip_addresses().map(str), st.ip_addresses().map(lambda a: f"{a}%eth0")),
       st.sampled_from(list(Scope)), st.integers(-10, 70000))
def test_any_host_text_gets_a_scope_or_none_and_never_raises(host: str, within: Scope, port: int) -> None:
    scope = addresses.scope_of(host)
    assert scope is None or isinstance(scope, Scope)
    assert addresses.reachable(within, host, port) == (scope is not None and scope <= within and 1 <= port <= 65535)
    assert addresses.bound_scope(host) is (scope or Scope.GLOBAL)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([kind for kind in messages.RESPONSE_TO]), st.booleans(), st.integers(0, messages.MAX_DATAGRAM))
def test_any_padding_decodes_to_the_same_request_of_exactly_that_size(kind: Kind, bound: bool, pad_to: int) -> None:
    body = {Kind.PING: {}, Kind.FIND_NODE: {"target": NodeId(9)}, Kind.GET_RECORDS: {"key": NodeId(9), "skip": 3},
            Kind.ADD_RECORD: {"record": b"r" * 40, "token": bytes(16)}}[kind]
    binding: dict[str, Any] = {"to": NodeId(1), "at": EPOCH} if bound else {}
    plain = messages.encode(seeded_identity("p"), kind, bytes(8), body, **binding)
    data = messages.encode(seeded_identity("p"), kind, bytes(8), body, pad_to=pad_to, **binding)
    assert len(data) == (pad_to if pad_to >= len(plain) + 2 else len(plain))
    message = messages.decode(data)
    assert (message.kind, message.body, message.to, message.at) == (
        kind, body, binding.get("to"), binding.get("at")
    )
