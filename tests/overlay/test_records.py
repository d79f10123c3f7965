"""Signed vessel records: round trip, every rejection code, forgeries, size bounds, merge, fuzzing."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.envelope import SIGNATURE_SIZE
from seattle.keys import Identity, PublicKey, generate_identity
from seattle.nodemgr import signing
from seattle.overlay import records
from seattle.overlay.nodeid import NodeId
from seattle.overlay.records import (
    BAD_SIGNATURE,
    CONTEXT,
    EXPIRED,
    MALFORMED,
    MAX_LIFETIME,
    MAX_RECORD_SIZE,
    NOT_YET_VALID,
    TOO_LARGE,
    TOO_LONG_LIVED,
    RecordRejected,
    dht_key,
    merge,
    sign,
    sign_tombstone,
    verify,
)

NOW = 1_800_000_000.0
NODE = generate_identity("node")
OTHER_NODE = generate_identity("other")
OWNER = generate_identity("owner").public_key
ADDRS = ["192.0.2.7:1224", "[2001:db8::1]:1224", "node.example.org:63100"]


def rejected(raw: object, now: float = NOW, **kwargs: float) -> str:
    with pytest.raises(RecordRejected) as caught:
        verify(raw, now, **kwargs)  # type: ignore[arg-type]
    assert caught.value.message
    return caught.value.code


def resign(identity: Identity, envelope: object, context: bytes = CONTEXT) -> bytes:
    """Sign an arbitrary envelope the way `sign` would, to reach the checks after the signature."""
    body = context + identity.public_key.raw + msgpack.packb(envelope, use_bin_type=True)
    return bytes(identity.signing_key.sign(body))


def envelope(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "subject": OWNER.raw, "addrs": ADDRS[:1], "seq": 1, "iat": NOW, "exp": NOW + 7200, "tomb": False
    }
    return {**fields, **changes}


def test_round_trip_keeps_every_field() -> None:
    raw = sign(NODE, OWNER, ADDRS, sequence=42, now=NOW)
    record = verify(raw, NOW + 10)
    assert record.subject == OWNER
    assert record.node == NODE.public_key
    assert record.addresses == tuple(ADDRS)
    assert (record.sequence, record.issued, record.expires) == (42, NOW, NOW + records.DEFAULT_LIFETIME)
    assert record.tombstone is False
    assert record.raw == raw
    assert len(raw) < MAX_RECORD_SIZE


def test_dht_key_is_the_subjects_node_id() -> None:
    assert dht_key(OWNER) == NodeId.from_public_key(OWNER)
    assert dht_key(OWNER) != dht_key(NODE.public_key)
    with pytest.raises(TypeError, match="PublicKey"):
        dht_key(OWNER.raw)  # type: ignore[arg-type]


def test_tombstone_round_trip() -> None:
    record = verify(sign_tombstone(NODE, OWNER, sequence=43, now=NOW), NOW)
    assert record.tombstone is True
    assert record.addresses == ()
    assert record.expires == NOW + MAX_LIFETIME


@pytest.mark.parametrize("index", [0, SIGNATURE_SIZE + 3, SIGNATURE_SIZE + len(CONTEXT) + 5, -1])
def test_any_tampered_byte_breaks_the_signature(index: int) -> None:
    raw = bytearray(sign(NODE, OWNER, ADDRS, sequence=1, now=NOW))
    raw[index] ^= 0x01
    assert rejected(bytes(raw)) == BAD_SIGNATURE


def test_record_claiming_another_nodes_key_is_forged() -> None:
    raw = sign(NODE, OWNER, ADDRS, sequence=1, now=NOW)
    start = SIGNATURE_SIZE + len(CONTEXT)
    forged = raw[:start] + OTHER_NODE.public_key.raw + raw[start + 32 :]
    assert rejected(forged) == BAD_SIGNATURE


def test_signed_request_does_not_pass_as_a_record() -> None:
    request = signing.sign_request(NODE, OWNER, "ListVessels", [], now=NOW, nonce=bytes(16))
    assert rejected(request) in (BAD_SIGNATURE, MALFORMED)  # the contexts differ in length, so either
    same_length = b"seattle/advertise/other!/v1\x00"
    assert len(same_length) == len(CONTEXT)
    assert rejected(resign(NODE, envelope(), context=same_length)) == MALFORMED


def test_oversized_record_is_refused_before_its_signature_is_checked() -> None:
    assert rejected(b"\x00" * (MAX_RECORD_SIZE + 1)) == TOO_LARGE
    big = resign(NODE, envelope(addrs=["h" * 200 + ":1"] * 5))
    assert len(big) > MAX_RECORD_SIZE
    assert rejected(big) == TOO_LARGE


def test_signing_refuses_a_record_over_the_limit() -> None:
    long_host = ".".join(["a" * 60] * 4) + ":65535"
    with pytest.raises(ValueError, match="1024-byte limit"):
        sign(NODE, OWNER, [long_host] * records.MAX_ADDRESSES, sequence=1, now=NOW)


@pytest.mark.parametrize(
    ("now", "code"),
    [
        (NOW + 7200 + 61, EXPIRED),
        (NOW + 7200 + 59, None),
        (NOW - 61, NOT_YET_VALID),
        (NOW - 59, None),
    ],
)
def test_freshness_with_clock_skew(now: float, code: str | None) -> None:
    raw = sign(NODE, OWNER, ADDRS, sequence=1, now=NOW)
    if code is None:
        assert verify(raw, now, clock_skew=60).sequence == 1
    else:
        assert rejected(raw, now, clock_skew=60) == code


def test_expiry_far_ahead_is_too_long_lived() -> None:
    assert rejected(resign(NODE, envelope(exp=NOW + MAX_LIFETIME + 3600))) == TOO_LONG_LIVED
    assert rejected(resign(NODE, envelope(exp=NOW + 1000)), max_lifetime=500) == TOO_LONG_LIVED
    # A record issued in the past whose remaining life is within bounds is accepted.
    assert verify(sign(NODE, OWNER, ADDRS, sequence=1, now=NOW, lifetime=MAX_LIFETIME), NOW + 5).sequence == 1


@pytest.mark.parametrize(
    "bad",
    [
        envelope(subject=b"short"),
        envelope(addrs="192.0.2.7:1224"),
        envelope(addrs=[]),
        envelope(addrs=["192.0.2.7"]),
        envelope(addrs=["192.0.2.7:0"]),
        envelope(addrs=["192.0.2.7:99999"]),
        envelope(addrs=["[not-ipv6]:80"]),
        envelope(addrs=["bad host:80"]),
        envelope(addrs=[7]),
        envelope(addrs=["192.0.2.7:1"] * (records.MAX_ADDRESSES + 1)),
        envelope(tomb=True),
        envelope(tomb=1),
        envelope(seq=-1),
        envelope(seq=True),
        envelope(seq="1"),
        envelope(iat="now"),
        envelope(exp=float("nan")),
        envelope(exp=NOW - 1),
        {**envelope(), "extra": 1},
        [1, 2, 3],
    ],
)
def test_malformed_envelopes_are_named(bad: object) -> None:
    assert rejected(resign(NODE, bad)) == MALFORMED


def test_too_short_and_non_bytes_are_malformed() -> None:
    assert rejected(b"") == MALFORMED
    assert rejected(b"x" * (SIGNATURE_SIZE + len(CONTEXT) + 32)) == MALFORMED
    assert rejected("text") == MALFORMED


def test_signing_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="node_identity"):
        sign(NODE.public_key, OWNER, ADDRS, sequence=1, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="subject"):
        sign(NODE, OWNER.raw, ADDRS, sequence=1, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="single string"):
        sign(NODE, OWNER, "192.0.2.7:1224", sequence=1, now=NOW)
    with pytest.raises(ValueError, match="port"):
        sign(NODE, OWNER, ["192.0.2.7"], sequence=1, now=NOW)
    with pytest.raises(ValueError, match="at least one address or relay"):
        sign(NODE, OWNER, [], sequence=1, now=NOW)
    with pytest.raises(ValueError, match="sequence"):
        sign(NODE, OWNER, ADDRS, sequence=2**63, now=NOW)
    with pytest.raises(ValueError, match="lifetime"):
        sign(NODE, OWNER, ADDRS, sequence=1, now=NOW, lifetime=MAX_LIFETIME + 1)
    with pytest.raises(ValueError, match="now"):
        sign(NODE, OWNER, ADDRS, sequence=1, now=float("inf"))
    with pytest.raises(ValueError, match="clock_skew"):
        verify(sign(NODE, OWNER, ADDRS, sequence=1, now=NOW), NOW, clock_skew=-1)


def test_merge_keeps_the_newest_per_node_and_drops_withdrawn() -> None:
    old = verify(sign(NODE, OWNER, ["192.0.2.1:1"], sequence=1, now=NOW), NOW)
    new = verify(sign(NODE, OWNER, ["192.0.2.2:1"], sequence=2, now=NOW), NOW)
    other = verify(sign(OTHER_NODE, OWNER, ["192.0.2.3:1"], sequence=1, now=NOW), NOW)
    assert {r.addresses for r in merge([new, old, other])} == {("192.0.2.2:1",), ("192.0.2.3:1",)}
    withdrawn = verify(sign_tombstone(NODE, OWNER, sequence=3, now=NOW), NOW)
    assert merge([old, withdrawn, new, other]) == [other]
    # A tombstone older than the record it meets does not hide it.
    newer = verify(sign(NODE, OWNER, ["192.0.2.4:1"], sequence=4, now=NOW), NOW)
    assert merge([newer, withdrawn]) == [newer]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=MAX_RECORD_SIZE + 8))
def test_arbitrary_bytes_only_ever_raise_record_rejected(raw: bytes) -> None:
    with pytest.raises(RecordRejected):
        verify(raw, NOW)


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)
_FIELDS = ("subject", "addrs", "seq", "iat", "exp", "tomb")


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(_VALUES | st.fixed_dictionaries(dict.fromkeys(_FIELDS, _VALUES)))
def test_arbitrary_signed_envelopes_only_ever_raise_record_rejected(body: object) -> None:
    raw = resign(NODE, body)
    try:
        record = verify(raw, NOW)
    except RecordRejected:
        return
    assert isinstance(record.subject, PublicKey)
