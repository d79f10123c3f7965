"""Relay addresses in vessel records: signed with the node's record, each with its relay's voucher, checked by
every reader (forged, expired and other nodes' vouchers are dropped and counted), within MAX_RECORD_SIZE."""

from __future__ import annotations

import pytest

from seattle.envelope import seal
from seattle.keys import generate_identity
from seattle.overlay.records import (
    CONTEXT,
    MALFORMED,
    MAX_RECORD_SIZE,
    MAX_RELAYS,
    RecordRejected,
    RelayRoute,
    sign,
    sign_tombstone,
    verify,
)
from seattle.vouchers import sign_voucher

NOW = 1_700_000_000.0
NODE = generate_identity("node")
SUBJECT = generate_identity("owner").public_key
RELAYS = [generate_identity(f"relay{n}") for n in range(3)]


def voucher(relay_index: int, expires: float = NOW + 3600, node: object = None) -> bytes:
    return sign_voucher(RELAYS[relay_index], node or NODE.public_key, int(expires))  # type: ignore[arg-type]


def test_a_natted_nodes_record_names_two_relays_and_fits_the_size_limit_with_room() -> None:
    relays = [("203.0.113.10:1224", voucher(0)), ("[2001:db8::1]:1224", voucher(1))]
    raw = sign(NODE, SUBJECT, [], sequence=1, now=NOW, relays=relays)
    # Measured: a record with two vouchers and no direct address is 477 bytes of the 1,024 allowed.
    assert len(raw) < MAX_RECORD_SIZE // 2 + 64
    record = verify(raw, NOW)
    assert record.addresses == ()
    assert record.relays == (RelayRoute("203.0.113.10:1224", RELAYS[0].public_key, int(NOW) + 3600),
                             RelayRoute("[2001:db8::1]:1224", RELAYS[1].public_key, int(NOW) + 3600))
    assert record.bad_vouchers == 0


def test_the_biggest_record_with_relays_still_fits() -> None:
    addresses = [f"[2001:db8:ffff:ffff:ffff:ffff:ffff:{n:04x}]:65535" for n in range(8)]
    relays = [(f"[2001:db8:ffff:ffff:ffff:ffff:fffe:{n:04x}]:65535", voucher(n % 3)) for n in range(MAX_RELAYS)]
    with pytest.raises(ValueError, match="over the 1024-byte limit"):
        sign(NODE, SUBJECT, addresses, sequence=1, now=NOW, relays=relays)
    raw = sign(NODE, SUBJECT, addresses[:2], sequence=1, now=NOW, relays=relays)
    assert len(verify(raw, NOW).relays) == MAX_RELAYS


def test_readers_drop_forged_expired_and_other_nodes_vouchers() -> None:
    forged = bytearray(voucher(0))
    forged[10] ^= 1
    other = voucher(1, node=generate_identity("other").public_key)
    relays = [("203.0.113.10:1224", bytes(forged)), ("203.0.113.11:1224", other),
              ("203.0.113.12:1224", voucher(2, expires=NOW + 30)), ("203.0.113.13:1224", voucher(0))]
    raw = sign(NODE, SUBJECT, ["198.51.100.7:1224"], sequence=1, now=NOW, relays=relays)
    record = verify(raw, NOW + 120)  # the third voucher expired 90 s before this read
    assert [route.address for route in record.relays] == ["203.0.113.13:1224"]
    assert record.bad_vouchers == 3
    assert record.addresses == ("198.51.100.7:1224",)


def test_a_record_needs_an_address_or_a_relay_and_tombstones_carry_neither() -> None:
    with pytest.raises(ValueError, match="at least one address or relay"):
        sign(NODE, SUBJECT, [], sequence=1, now=NOW)
    with pytest.raises(ValueError, match="voucher is 104 bytes"):
        sign(NODE, SUBJECT, [], sequence=1, now=NOW, relays=[("203.0.113.10:1224", b"short")])
    assert verify(sign_tombstone(NODE, SUBJECT, sequence=2, now=NOW), NOW).relays == ()


def test_records_without_the_relays_field_are_still_read() -> None:
    fields = {"subject": SUBJECT.raw, "addrs": ["198.51.100.7:1224"], "seq": 1, "iat": NOW, "exp": NOW + 60,
              "tomb": False}
    record = verify(seal(NODE, CONTEXT, fields), NOW)
    assert record.addresses == ("198.51.100.7:1224",) and record.relays == ()


@pytest.mark.parametrize("relays", [
    "not a list",
    [["203.0.113.10:1224"]],
    [["203.0.113.10:1224", "text, not bytes"]],
    [["not an address", b"v" * 104]],
    [["203.0.113.10:1224", b"v" * 103]],
    [["203.0.113.10:1224", b"v" * 104]] * (MAX_RELAYS + 1),
])
def test_malformed_relay_lists_are_refused(relays: object) -> None:
    fields = {"subject": SUBJECT.raw, "addrs": [], "seq": 1, "iat": NOW, "exp": NOW + 60, "tomb": False,
              "relays": relays}
    with pytest.raises(RecordRejected) as rejected:
        verify(seal(NODE, CONTEXT, fields), NOW)
    assert rejected.value.code == MALFORMED
