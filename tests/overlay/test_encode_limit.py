"""`messages.encode(limit=...)`: an answer that may not fit its room is refused before it is signed, and one
that fits is the very datagram an unlimited encode makes (the engine answers through it)."""

from __future__ import annotations

import nacl.signing
import pytest

from seattle.keys import Identity
from seattle.overlay import messages
from seattle.overlay.messages import Kind, MessageRejected, decode, encode
from seattle.overlay.nodeid import Contact, NodeId

TXID = bytes(range(messages.TXID_SIZE))


def nodes_body(count: int) -> dict[str, list[Contact]]:
    return {"nodes": [Contact(NodeId(number), f"10.0.{number}.1", 1000 + number) for number in range(1, count + 1)]}


def test_a_message_within_its_limit_is_the_same_datagram() -> None:
    who = Identity("answerer", nacl.signing.SigningKey.generate())
    body, seen = nodes_body(5), ("10.9.9.9", 4242)
    full = encode(who, Kind.NODES, TXID, body, cookie=bytes(8), seen=seen)
    assert encode(who, Kind.NODES, TXID, body, cookie=bytes(8), seen=seen, limit=len(full)) == full
    message = decode(full)
    assert isinstance(message, messages.Message) and message.seen == seen and len(message.body["nodes"]) == 5


def test_a_message_over_its_limit_is_refused_unsigned(monkeypatch: pytest.MonkeyPatch) -> None:
    who = Identity("answerer", nacl.signing.SigningKey.generate())
    body = nodes_body(20)
    size = messages.encoded_size(Kind.NODES, body)

    def no_signing(*_: object) -> bytes:
        raise AssertionError("a message over its limit must not be signed")

    monkeypatch.setattr(messages.nacl.bindings, "crypto_sign", no_signing)
    with pytest.raises(MessageRejected) as refused:
        encode(who, Kind.NODES, TXID, body, limit=size - 1)
    assert refused.value.code == messages.TOO_LARGE
    with pytest.raises(MessageRejected) as refused:  # the datagram limit still caps a larger one
        encode(who, Kind.NODES, TXID, nodes_body(40), limit=10 * messages.MAX_DATAGRAM)
    assert refused.value.code == messages.TOO_LARGE


def test_a_seen_address_with_port_zero_is_malformed_every_time() -> None:
    """The parse of `seen` is cached; a refused value is refused again (a cache never holds a refusal)."""
    who = Identity("answerer", nacl.signing.SigningKey.generate())
    payload = messages.msgpack.packb(["pong", TXID, {"seen": bytes([10, 1, 2, 3, 0, 0])}], use_bin_type=True)
    key, secret = who.sodium_key_pair
    signature = messages.nacl.bindings.crypto_sign(messages.CONTEXT + key + payload, secret)[:64]
    for _ in range(2):
        with pytest.raises(MessageRejected) as refused:
            decode(signature + key + payload)
        assert refused.value.code == messages.MALFORMED
