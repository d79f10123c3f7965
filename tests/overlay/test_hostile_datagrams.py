"""Issue 13, the overlay's datagram path: no datagram, source address or answer raises out of the engine.

Each refused datagram is counted under a stable code (`protocol.DROP_CODES`), and leaves the routing table, the
record store and the pending requests as they were. The real `UdpOverlay` loop survives the same inputs and
socket errors, and still answers a ping afterwards.
"""

from __future__ import annotations

import errno
import random
import secrets
import socket
from typing import Any

import msgpack
import nacl.bindings
import nacl.signing
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.keys import Identity
from seattle.overlay import messages, udp
from seattle.overlay.addresses import Scope
from seattle.overlay.messages import Kind
from seattle.overlay.nodeid import Contact, NetworkParameters, NodeId
from seattle.overlay.protocol import DROP_CODES, OverlayNode
from seattle.overlay.udp import UdpOverlay
from seattle.testing.overlay import seeded_identity, seeded_node

EPOCH = 1_700_000_000.0
STRANGER = seeded_identity("stranger")


def _state(node: OverlayNode) -> tuple[Any, ...]:
    """What a dropped datagram must leave as it was."""
    return (
        [(c.node_id, c.host, c.port) for c in node.table],
        [(c.node_id, c.host, c.port) for c in node.table.replacements()],
        len(node.store),
        sorted(node._pending),
        node.next_deadline(),
    )


def _signed(payload: bytes, identity: Identity = STRANGER) -> bytes:
    """A datagram whose signature verifies over any payload: type confusion reaches the checks after crypto."""
    key, secret = identity.sodium_key_pair
    signature = nacl.bindings.crypto_sign(messages.CONTEXT + key + payload, secret)[: messages.SIGNATURE_SIZE]
    return signature + key + payload


def _node_with_neighbours() -> OverlayNode:
    node = seeded_node("victim", k=8, scope=Scope.LOOPBACK)
    for number in range(1, 6):
        node.table.observe(Contact(NodeId(number << 200), f"10.0.{number}.1", 4000), EPOCH)
    node.ping(Contact(NodeId(1 << 200), "10.0.1.1", 4000), EPOCH)  # a request still awaited
    node.poll(EPOCH)
    return node


def test_a_datagram_from_source_port_0_is_dropped_and_counted_not_raised() -> None:
    """The issue's first attack: one datagram from port 0 raised out of the engine and ended the daemon."""
    node = _node_with_neighbours()
    before = _state(node)
    ping = messages.encode(STRANGER, Kind.PING, secrets.token_bytes(8), {})
    assert node.datagram_received(ping, ("10.9.9.9", 0), EPOCH) == []
    assert node.dropped["bad_source"] == 1
    assert _state(node) == before


BAD_SOURCES: list[Any] = [
    ("10.9.9.9", 0), ("10.9.9.9", 65536), ("10.9.9.9", -1), ("10.9.9.9", True), ("10.9.9.9", "9"),
    ("example.org", 9), ("", 9), (b"\x0a\x00\x00\x01", 9), (["10.0.0.1"], 9), ("10.0.0.1",), ("10.0.0.1", 9, 0, 0),
    None, "10.0.0.1:9", ("0.0.0.0", 9), ("255.255.255.255", 9), ("224.0.0.1", 9), ("::", 9), ("fe80::1%lo", 9),
    ("192.0.2.1", 9), ("2001:db8::1", 9), ("240.0.0.1", 9), ("169.254.1.1", 9), ("ff02::1", 9),
]


@pytest.mark.parametrize("source", BAD_SOURCES, ids=repr)
def test_every_bad_source_address_is_dropped_and_counted(source: Any) -> None:
    node = _node_with_neighbours()
    before = _state(node)
    ping = messages.encode(STRANGER, Kind.PING, secrets.token_bytes(8), {}, pad_to=300)
    assert node.datagram_received(ping, source, EPOCH) == []
    assert node.dropped == {"bad_source": 1}
    assert _state(node) == before


def test_a_public_node_drops_datagrams_from_private_and_loopback_sources() -> None:
    node = seeded_node("public", scope=Scope.GLOBAL)
    ping = messages.encode(STRANGER, Kind.PING, secrets.token_bytes(8), {})
    for source in (("10.0.0.1", 9), ("127.0.0.1", 9), ("192.168.1.1", 9), ("fd00::1", 9), ("::ffff:10.0.0.1", 9)):
        assert node.datagram_received(ping, source, EPOCH) == []
    assert node.dropped == {"bad_source": 5}
    assert [kind for kind in _kinds(node.datagram_received(ping, ("1.2.3.4", 9), EPOCH))] == [Kind.PONG]


def _kinds(datagrams: list[tuple[bytes, tuple[str, int]]]) -> list[Kind]:
    return [messages.decode(data).kind for data, _ in datagrams]


# --- property: nothing raises, every drop has a code, state is untouched ------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**64), 2**64 - 1), st.floats(), st.text(max_size=20),
    st.binary(max_size=60), st.sampled_from([kind.value for kind in Kind]),
    st.sampled_from([bytes(8), bytes(16), bytes(32), bytes(38), bytes(50)]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4)
    ),
    max_leaves=25,
)
_field_names = st.sampled_from(["target", "nodes", "key", "skip", "records", "more", "token", "record", "code",
                                "message"])
#: Payloads shaped like messages (a kind, a txid, a body with real field names) with confused types inside.
_message_like = st.builds(
    lambda kind, txid, body, rest: [kind, txid, body, *rest],
    st.one_of(st.sampled_from([kind.value for kind in Kind]), _scalars),
    st.one_of(st.binary(min_size=8, max_size=8), _scalars),
    st.one_of(st.dictionaries(_field_names, _values, max_size=4), _values),
    st.lists(_values, max_size=3),
)


def _packed(value: Any) -> bytes:
    try:
        return bytes(msgpack.packb(value, use_bin_type=True))
    except (TypeError, ValueError, OverflowError):
        return b"\xc1"  # never used by msgpack: malformed


_datagrams = st.one_of(
    st.binary(max_size=1600),  # arbitrary bytes, short and oversized
    st.binary(min_size=messages.MAX_DATAGRAM + 1, max_size=messages.MAX_DATAGRAM + 64),
    st.builds(lambda value: _signed(_packed(value)), _message_like),  # signed, type-confused
    st.builds(lambda value: _signed(_packed(value)), _values),
    st.builds(lambda data, cut: data[:cut], st.builds(lambda value: _signed(_packed(value)), _message_like),
              st.integers(0, 400)),  # truncated
    st.builds(lambda value: _signed(_packed(value))[:-1] + b"\x00", _message_like),  # bad signature
)
_sources = st.one_of(
    st.tuples(st.sampled_from(["10.0.7.7", "127.0.0.9", "::1", "1.2.3.4"]), st.integers(1, 65535)),
    st.sampled_from(BAD_SOURCES),
    st.tuples(st.text(max_size=12), st.integers(-5, 70000)),
)


@settings(max_examples=400, deadline=None)
@given(_datagrams, _sources)
def test_no_datagram_from_any_source_raises_or_changes_state(data: bytes, source: Any) -> None:
    node = _node_with_neighbours()
    before = _state(node)
    sent = node.datagram_received(data, source, EPOCH)
    assert _state(node) == before
    if sent:  # a well-formed request that happened to be generated: answered, nothing else
        assert [address for _, address in sent] == [source]
        assert messages.decode(sent[0][0]).txid
        assert sum(node.dropped.values()) == 0
    else:
        assert sum(node.dropped.values()) == 1
        assert set(node.dropped) <= set(DROP_CODES)


def test_an_answer_naming_special_addresses_is_filtered_and_counted() -> None:
    """A nodes answer whose contacts point at hosts that never joined: we ask none of them."""
    node = seeded_node("asker", k=8, scope=Scope.GLOBAL)
    peer_identity = seeded_identity("peer")
    peer = Contact(NodeId.from_public_key(peer_identity.public_key), "1.2.3.4", 4000)
    node.table.observe(peer, EPOCH)
    lookup = node.start_lookup(NodeId(99), EPOCH)
    [(request, _)] = node.poll(EPOCH)
    txid = messages.decode(request).txid
    bad = [Contact(NodeId(n), host, 4000) for n, host in enumerate(
        ["0.0.0.0", "224.0.0.1", "255.255.255.255", "192.0.2.1", "::", "ff02::1", "2001:db8::1", "10.0.0.1",
         "127.0.0.1", "::ffff:127.0.0.1", "169.254.0.1"], start=1)]
    good = Contact(NodeId(77), "5.6.7.8", 4000)
    answer = messages.encode(peer_identity, Kind.NODES, txid, {"nodes": [*bad, good]})
    sent = node.datagram_received(answer, ("1.2.3.4", 4000), EPOCH)
    assert [address for _, address in sent] == [("5.6.7.8", 4000)]
    assert node.dropped == {"filtered_contact": len(bad)}
    assert node.lookup_result(lookup) is None


# --- the real UDP loop ---------------------------------------------------------------------------------------


class _Socket:
    """A real socket whose recvfrom/sendto can be made to lie or fail, as the kernel would on a bad day."""

    def __init__(self, real: socket.socket) -> None:
        self.real = real
        self.source_port: int | None = None
        self.recv_errors: list[OSError] = []
        self.send_errors: list[OSError] = []

    def fileno(self) -> int:
        return self.real.fileno()

    def recvfrom(self, size: int) -> tuple[bytes, Any]:
        if self.recv_errors:
            raise self.recv_errors.pop()
        data, source = self.real.recvfrom(size)
        if self.source_port is not None:
            source = (source[0], self.source_port)
        return data, source

    def sendto(self, data: bytes, destination: Any) -> int:
        if self.send_errors:
            raise self.send_errors.pop()
        return self.real.sendto(data, destination)

    def close(self) -> None:
        self.real.close()


@pytest.mark.slow
async def test_the_udp_loop_survives_bad_datagrams_and_socket_errors_and_still_answers_a_ping() -> None:
    node = seeded_node("udp-victim", k=8)
    client = OverlayNode(Identity("client", nacl.signing.SigningKey.generate()), randomness=random.SystemRandom(),
                         network=NetworkParameters.testing())
    with trio.fail_after(20):
        async with UdpOverlay(node, "127.0.0.1", 0) as overlay, UdpOverlay(client, "127.0.0.1", 0) as other:
            assert node.scope is Scope.LOOPBACK  # widened to where it is bound
            wrapped = _Socket(overlay._running_socket())
            overlay._socket = wrapped  # type: ignore[assignment]
            attacker = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            with attacker:
                await attacker.bind(("127.0.0.1", 0))
                ping = messages.encode(STRANGER, Kind.PING, secrets.token_bytes(8), {})
                wrapped.source_port = 0  # the datagram from port 0
                await attacker.sendto(ping, overlay.address)
                await _until(lambda: node.dropped["bad_source"] == 1)
                wrapped.source_port = None
                for junk in (b"", b"\x00garbage", b"x" * 5000, _signed(_packed(["ping", 5, {}]))):
                    await attacker.sendto(junk, overlay.address)
                await _until(lambda: sum(node.dropped.values()) == 5)
                wrapped.recv_errors = [OSError(errno.ECONNREFUSED, "refused"), OSError(errno.ENOBUFS, "no buffers")]
                wrapped.send_errors = [OSError(errno.ENOBUFS, "no buffers")]
                await attacker.sendto(ping, overlay.address)  # wakes the loop: two recv errors, then this one
                await _until(lambda: sum(overlay.socket_errors.values()) == 3)
                assert overlay.socket_errors == {
                    "recvfrom ECONNREFUSED": 1, "recvfrom ENOBUFS": 1, "sendto ENOBUFS": 1
                }
            answer = await other.ping(overlay.contact, timeout=5)
            assert answer.kind is Kind.PONG and answer.sender_id == node.node_id
            assert node.dropped == {"bad_source": 1, messages.MALFORMED: 3, messages.TOO_LARGE: 1}


async def _until(condition: Any) -> None:
    while not condition():
        await trio.sleep(0.01)


@pytest.mark.slow
async def test_a_flood_from_one_network_is_dropped_unread_and_other_networks_are_still_served() -> None:
    node = seeded_node("udp-flooded", k=8)
    client = OverlayNode(Identity("client", nacl.signing.SigningKey.generate()), randomness=random.SystemRandom(),
                         network=NetworkParameters.testing())
    flood = udp.NETWORK_BURST + 1000  # more than one network may send at once
    with trio.fail_after(30):
        async with UdpOverlay(node, "127.0.0.1", 0) as overlay, UdpOverlay(client, "127.0.1.1", 0) as other:
            senders = [trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) for _ in range(8)]
            for number, sender in enumerate(senders):
                await sender.bind((f"127.0.9.{number + 1}", 0))  # eight addresses of one /24
            junk = b"\x00not a message"
            started = trio.current_time()
            for index in range(flood):
                await senders[index % len(senders)].sendto(junk, overlay.address)
                if index % 100 == 99:
                    await trio.sleep(0)  # let the receiver drain, so the kernel drops little of the flood
            for sender in senders:
                sender.close()
            seen = -1
            while (now_seen := overlay.rate_limited + sum(node.dropped.values())) != seen:  # until it is quiet
                seen = now_seen
                await trio.sleep(0.3)
            elapsed = trio.current_time() - started
            # The engine saw no more than the network's burst plus what refilled meanwhile: the rest cost no
            # signature check. Another network is answered at once.
            assert overlay.rate_limited > 0
            assert sum(node.dropped.values()) <= udp.NETWORK_BURST + udp.NETWORK_RATE * elapsed
            answer = await other.ping(overlay.contact, timeout=5)
            assert answer.kind is Kind.PONG
