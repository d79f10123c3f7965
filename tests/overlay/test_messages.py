"""The overlay datagram format: signed round trips, size limits, and every rejection code on hostile bytes."""

from __future__ import annotations

import msgpack
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.keys import Identity
from seattle.nodemgr import signing as nodemgr_signing
from seattle.overlay import messages
from seattle.overlay.messages import Kind, MessageRejected, decode, encode
from seattle.overlay.nodeid import Contact, NodeId

TXID = b"\x01" * messages.TXID_SIZE


def identity(name: str = "node") -> Identity:
    return Identity(name, nacl.signing.SigningKey.generate())


def contact(number: int, host: str = "") -> Contact:
    return Contact(NodeId(number * 7919 + 1), host or f"10.0.{number % 250}.1", 4000 + number)


def signed(who: Identity, payload: bytes, context: bytes = messages.CONTEXT) -> bytes:
    """A datagram with an arbitrary payload, correctly signed, to reach the checks after the signature's."""
    key = who.public_key.raw
    return who.signing_key.sign(context + key + payload).signature + key + payload


def nodes_payload(nodes: object) -> bytes:
    return msgpack.packb(["nodes", TXID, {"nodes": nodes}], use_bin_type=True)


BODIES = [
    (Kind.PING, {}),
    (Kind.PONG, {}),
    (Kind.FIND_NODE, {"target": NodeId(12345)}),
    (Kind.NODES, {"nodes": [contact(1), contact(2, "2001:db8::7")]}),
    (Kind.GET_RECORDS, {"key": NodeId(2**255), "skip": 3}),
    (Kind.RECORDS, {"records": [b"r" * 300, b"s"], "more": True, "token": b"t" * messages.TOKEN_SIZE}),
    (Kind.ADD_RECORD, {"record": b"x" * 1024, "token": b"t" * messages.TOKEN_SIZE}),
    (Kind.ADDED, {}),
    (Kind.ERROR, {"code": "bad_token", "message": "try again"}),
]


@pytest.mark.parametrize(("kind", "body"), BODIES, ids=[kind.value for kind, _ in BODIES])
def test_every_kind_round_trips_with_the_senders_id(kind: Kind, body: dict) -> None:
    sender = identity()
    message = decode(encode(sender, kind, TXID, body))
    assert (message.kind, message.txid, message.body) == (kind, TXID, body)
    assert message.sender == sender.public_key
    assert message.sender_id == NodeId.from_public_key(sender.public_key)
    assert message.is_request == (kind in messages.RESPONSE_TO)


def test_twenty_ipv6_contacts_fit_one_datagram() -> None:
    nodes = [contact(n, f"2001:db8:ffff:ffff:ffff:ffff:ffff:{n:x}") for n in range(20)]
    data = encode(identity(), Kind.NODES, TXID, {"nodes": nodes})
    assert len(data) <= messages.MAX_DATAGRAM
    assert decode(data).body["nodes"] == nodes


def test_a_record_of_the_largest_size_fits_a_records_answer() -> None:
    body = {"records": [b"r" * 1024], "more": False, "token": b"t" * messages.TOKEN_SIZE}
    assert len(encode(identity(), Kind.RECORDS, TXID, body)) <= messages.MAX_DATAGRAM


def test_encode_refuses_a_message_over_one_datagram() -> None:
    body = {"records": [b"r" * 1000, b"s" * 1000], "more": False, "token": b"t" * messages.TOKEN_SIZE}
    with pytest.raises(MessageRejected, match="exceeds 1400") as caught:
        encode(identity(), Kind.RECORDS, TXID, body)
    assert caught.value.code == messages.TOO_LARGE


@pytest.mark.parametrize(
    ("kind", "txid", "body", "words"),
    [
        (Kind.PING, b"short", {}, "8 bytes"),
        (Kind.FIND_NODE, TXID, {}, "'target'"),
        (Kind.FIND_NODE, TXID, {"target": b"\x00" * 31}, "'target'"),
        (Kind.PING, TXID, {"extra": 1}, "exactly the keys"),
        (Kind.GET_RECORDS, TXID, {"key": NodeId(1), "skip": -1}, "'skip'"),
        (Kind.ADD_RECORD, TXID, {"record": b"", "token": b"t" * 16}, "'record'"),
        (Kind.ERROR, TXID, {"code": "x" * 65, "message": ""}, "'code'"),
        ("shout", TXID, {}, "shout"),
    ],
)
def test_encode_names_what_is_wrong(kind: Kind, txid: bytes, body: dict, words: str) -> None:
    with pytest.raises(MessageRejected, match=words) as caught:
        encode(identity(), kind, txid, body)
    assert caught.value.code == messages.MALFORMED


def test_oversized_datagram_is_refused_before_anything_else() -> None:
    with pytest.raises(MessageRejected, match="1401 bytes") as caught:
        decode(b"\x00" * (messages.MAX_DATAGRAM + 1))
    assert caught.value.code == messages.TOO_LARGE


def test_every_single_byte_change_is_rejected() -> None:
    data = encode(identity(), Kind.FIND_NODE, TXID, {"target": NodeId(99)})
    for position in range(len(data)):
        tampered = bytearray(data)
        tampered[position] ^= 0x01
        with pytest.raises(MessageRejected) as caught:
            decode(bytes(tampered))
        assert caught.value.code in (messages.MALFORMED, messages.BAD_SIGNATURE), position


def test_a_swapped_in_key_does_not_verify() -> None:
    """Claiming another node's id means carrying its key, and then the signature fails."""
    data = encode(identity("mallory"), Kind.PONG, TXID, {})
    victim = identity("victim").public_key.raw
    forged = data[: messages.SIGNATURE_SIZE] + victim + data[messages.SIGNATURE_SIZE + 32 :]
    with pytest.raises(MessageRejected, match="does not verify") as caught:
        decode(forged)
    assert caught.value.code == messages.BAD_SIGNATURE


def test_a_signature_made_for_another_context_is_refused() -> None:
    payload = msgpack.packb(["pong", TXID, {}], use_bin_type=True)
    with pytest.raises(MessageRejected) as caught:
        decode(signed(identity(), payload, context=nodemgr_signing.CONTEXT))
    assert caught.value.code == messages.BAD_SIGNATURE
    assert decode(signed(identity(), payload)).kind is Kind.PONG


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"\xc1", "not valid msgpack"),
        (msgpack.packb({"kind": "ping"}), "the array"),
        (msgpack.packb(["dance", TXID, {}], use_bin_type=True), "unknown message kind"),
        (msgpack.packb(["ping", "12345678", {}], use_bin_type=True), "transaction id"),
        (msgpack.packb(["ping", TXID, []], use_bin_type=True), "exactly the keys"),
        (nodes_payload([b"\x00" * 32 + b"\x01" * 5 + b"\x00\x50"]), "38 or 50 bytes"),
        (nodes_payload([b"\x00" * 32 + b"\x7f\0\0\1" + b"\x00\x00"]), "port"),
        (nodes_payload([b"\x00" * 31 + b"\x7f\0\0\1" + b"\x00\x50"]), "38 or 50 bytes"),
        (nodes_payload([[b"\x00" * 32, b"\x7f\0\0\1", 80]]), "packed as bytes"),
        (nodes_payload(["x" * 38]), "38 or 50 bytes"),
        (nodes_payload({"a": 1}), "list of contacts"),
        (msgpack.packb(["records", TXID, {"records": [1], "more": False, "token": b"t" * 16}]), "'records'"),
        (b"\x91" * 1200, "msgpack"),
    ],
)
def test_signed_but_malformed_payloads_are_rejected_with_the_reason(payload: bytes, words: str) -> None:
    with pytest.raises(MessageRejected, match=words) as caught:
        decode(signed(identity(), payload))
    assert caught.value.code == messages.MALFORMED


def test_too_short_and_non_bytes_are_malformed() -> None:
    for data in (b"", b"\x00" * (messages.SIGNATURE_SIZE + 32)):
        with pytest.raises(MessageRejected, match="too short"):
            decode(data)
    with pytest.raises(MessageRejected, match="not str"):
        decode("text")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1500))
def test_arbitrary_bytes_only_ever_raise_message_rejected(data: bytes) -> None:
    with pytest.raises(MessageRejected) as caught:
        decode(data)
    assert caught.value.code in messages.CHECK_ORDER


def test_a_bound_request_round_trips_its_receiver_and_time() -> None:
    receiver = NodeId(7)
    message = decode(encode(identity(), Kind.FIND_NODE, b"t" * 8, {"target": NodeId(3)}, to=receiver, at=12.5))
    assert (message.to, message.at) == (receiver, 12.5)
    plain = decode(encode(identity(), Kind.PING, b"t" * 8, {}))
    assert (plain.to, plain.at) == (None, None)


@pytest.mark.parametrize(("kind", "to", "at", "words"), [
    (Kind.PING, NodeId(1), None, "give both or neither"),
    (Kind.PONG, NodeId(1), 1.0, "only requests"),
    (Kind.PING, NodeId(1), float("nan"), "finite number"),
])
def test_encode_refuses_a_bad_binding(kind: Kind, to: NodeId | None, at: float | None, words: str) -> None:
    with pytest.raises(MessageRejected, match=words):
        encode(identity(), kind, b"t" * 8, {}, to=to, at=at)


def test_decode_refuses_an_answer_that_claims_a_receiver_and_time() -> None:
    who = identity()
    payload = msgpack.packb(["pong", b"t" * 8, {}, bytes(32), 1.0], use_bin_type=True)
    with pytest.raises(MessageRejected, match="only requests carry"):
        decode(signed(who, payload))
