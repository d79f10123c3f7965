"""Node ids: derived from real Ed25519 keys, XOR distance, bucket index, wire forms, Contact validation."""

from __future__ import annotations

import hashlib
import ipaddress

import nacl.signing
import pytest

from seattle.keys import PublicKey
from seattle.overlay.nodeid import ID_BYTES, Contact, NodeId, unpack_contact


def fresh_key() -> PublicKey:
    return PublicKey(nacl.signing.SigningKey.generate().verify_key.encode())


def test_id_is_blake2b_256_of_the_raw_public_key() -> None:
    key = fresh_key()
    assert NodeId.from_public_key(key).to_bytes() == hashlib.blake2b(key.raw, digest_size=32).digest()


def test_different_keys_give_different_ids_and_same_key_the_same() -> None:
    first, second = fresh_key(), fresh_key()
    assert NodeId.from_public_key(first) == NodeId.from_public_key(PublicKey(first.raw))
    assert NodeId.from_public_key(first) != NodeId.from_public_key(second)


def test_xor_distance_is_a_metric_on_examples() -> None:
    a, b, c = NodeId(0b1010), NodeId(0b0110), NodeId(0b0001)
    assert a.distance(a) == 0
    assert a.distance(b) == b.distance(a) == 0b1100
    assert a.distance(c) <= a.distance(b) + b.distance(c)


def test_bucket_index_is_the_highest_differing_bit() -> None:
    own = NodeId(0)
    assert own.bucket_index(NodeId(1)) == 0
    assert own.bucket_index(NodeId(0b100)) == 2
    assert own.bucket_index(NodeId(0b111)) == 2
    assert own.bucket_index(NodeId((1 << 256) - 1)) == 255
    with pytest.raises(ValueError, match="itself"):
        own.bucket_index(NodeId(0))


def test_wire_and_hex_forms_round_trip() -> None:
    node_id = NodeId.from_public_key(fresh_key())
    assert NodeId.from_bytes(node_id.to_bytes()) == node_id
    assert NodeId.from_hex(node_id.hex()) == node_id
    assert len(node_id.to_bytes()) == ID_BYTES


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: NodeId(-1), r"\[0, 2\*\*256\)"),
        (lambda: NodeId(1 << 256), r"\[0, 2\*\*256\)"),
        (lambda: NodeId.from_bytes(b"short"), "32 bytes"),
        (lambda: NodeId.from_hex("ab"), "64 characters"),
        (lambda: NodeId.from_hex("zz" * 32), "0-9 a-f"),
    ],
)
def test_bad_ids_are_refused_with_the_reason(make, message) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_non_int_id_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="int"):
        NodeId("5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        NodeId(True)


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        ("example.org", 1, "IP address literal"),
        (b"\x7f\x00\x00\x01", 1, "IP address literal"),
        ("127.0.0.1", 0, "1..65535"),
        ("127.0.0.1", 70000, "1..65535"),
        ("::1", "80", "1..65535"),
    ],
)
def test_bad_contacts_are_refused_with_the_reason(host, port, message) -> None:
    with pytest.raises(ValueError, match=message):
        Contact(NodeId(1), host, port)
    with pytest.raises(ValueError, match=message):
        Contact.at(NodeId(1), host, port)


@pytest.mark.parametrize("host", ["10.1.2.3", "2001:db8::5"])
def test_packed_contacts_round_trip_to_one_shared_object(host: str) -> None:
    contact = Contact(NodeId(2**255 + 7), host, 65535)
    packed = contact.packed
    assert len(packed) == ID_BYTES + len(ipaddress.ip_address(host).packed) + 2
    assert packed[:ID_BYTES] == contact.node_id.to_bytes() and packed[-2:] == b"\xff\xff"
    shared = unpack_contact(packed)
    assert shared == contact and hash(shared) == hash(contact) and shared is not contact
    assert unpack_contact(bytes(packed)) is shared
    assert Contact.at(contact.node_id, host, 65535) is shared
    assert Contact.at(contact.node_id, host, 65534) != shared


def test_contacts_differ_by_id_host_or_port() -> None:
    base = Contact(NodeId(1), "10.0.0.1", 80)
    assert base != Contact(NodeId(2), "10.0.0.1", 80)
    assert base != Contact(NodeId(1), "10.0.0.2", 80)
    assert base != Contact(NodeId(1), "10.0.0.1", 81)
    assert len({base, Contact(NodeId(1), "10.0.0.1", 80)}) == 1
    assert base != ("10.0.0.1", 80)


@pytest.mark.parametrize(
    ("packed", "message"),
    [
        (b"\x00" * 37, "38 or 50 bytes"),
        (b"\x00" * 51, "38 or 50 bytes"),
        ("x" * 38, "38 or 50 bytes"),
        (b"\x00" * 36 + b"\x00\x00", "port"),
    ],
)
def test_bad_packed_contacts_are_refused_with_the_reason(packed, message) -> None:
    with pytest.raises(ValueError, match=message):
        unpack_contact(packed)


def test_contact_subnet_is_slash24_for_ipv4_and_slash64_for_ipv6() -> None:
    assert Contact(NodeId(1), "10.1.2.3", 9).subnet == ipaddress.ip_network("10.1.2.0/24")
    assert Contact(NodeId(1), "2001:db8::5", 9).subnet == ipaddress.ip_network("2001:db8::/48")
    assert Contact(NodeId(1), "10.1.2.3", 9).subnet != Contact(NodeId(2), "10.1.3.3", 9).subnet
    assert Contact(NodeId(1), "10.1.2.3", 9).subnet_key == Contact(NodeId(2), "10.1.2.200", 7).subnet_key
    assert Contact(NodeId(1), "10.1.2.3", 9).subnet_key != Contact(NodeId(2), "10.1.3.3", 9).subnet_key
    assert Contact(NodeId(1), "2001:db8::5", 9).subnet_key == Contact(NodeId(2), "2001:db8::ffff:1", 9).subnet_key
    # One IPv6 network is a /48: its 65,536 /64s are one operator's, not 65,536 operators.
    assert Contact(NodeId(1), "2001:db8::5", 9).subnet_key == Contact(NodeId(2), "2001:db8:0:1::5", 9).subnet_key
    assert Contact(NodeId(1), "2001:db8::5", 9).subnet_key != Contact(NodeId(2), "2001:db8:1::5", 9).subnet_key
