"""The pool's signed formats: round trips, forgeries, sizes, times, quota and evidence."""

from __future__ import annotations

import os

import msgpack
import pytest

from seattle.envelope import seal
from seattle.keys import Identity, generate_identity
from seattle.nodemgr.signing import CONTEXT as NODEMGR_REQUEST_CONTEXT
from seattle.nodemgr.signing import sign_request
from seattle.overlay.records import dht_key
from seattle.pool.formats import (
    BAN_DURATION,
    DONATION_MIN_UPTIME,
    LEASE_CONTEXT,
    MAX_SIZE,
    REQUEST_CONTEXT,
    SHARDS,
    Attestation,
    Evidence,
    Lease,
    Offer,
    PoolRejected,
    credit_key,
    offer_key,
    offer_shard,
    quota,
    slot_key,
)

NOW = 1_800_000_000.0
NODE = generate_identity("t")
OTHER_NODE = generate_identity("t")
RESEARCHER = generate_identity("t")


def acquire(identity: Identity, node: Identity, slot: int) -> bytes:
    return sign_request(identity, node.public_key, "AcquireVessel", [slot, 3600.0], now=NOW, nonce=os.urandom(16))


def lease(node: Identity = NODE, slot: int = 3, issued: float = NOW, expires: float = NOW + 3600,
          lessee: Identity = RESEARCHER) -> bytes:
    return Lease.sign(node, vessel="p1", lessee=lessee.public_key, slot=slot, issued=issued, expires=expires,
                      max_expiry=issued + 7 * 86400, request=acquire(lessee, node, slot))


def offer(**overrides: object) -> bytes:
    fields: dict[str, object] = dict(size={"cpu": 0.02, "memory": 2_000_000, "disk": 10_000_000}, free=3,
                                     total=5, reachability="public", uptime=7200.0, country="CH",
                                     addresses=["192.0.2.1:1224"], now=NOW)
    fields.update(overrides)
    return Offer.sign(NODE, **fields)  # type: ignore[arg-type]


def test_request_context_is_the_node_managers() -> None:
    assert REQUEST_CONTEXT == NODEMGR_REQUEST_CONTEXT


def test_offer_round_trip() -> None:
    verified = Offer.verify(offer(), NOW + 10)
    assert (verified.node, verified.free, verified.total, verified.country) == (NODE.public_key, 3, 5, "CH")
    assert verified.size["cpu"] == 0.02 and verified.addresses == ("192.0.2.1:1224",)
    assert verified.expires > verified.issued


@pytest.mark.parametrize("overrides", [{"free": 6}, {"country": "ch"}, {"reachability": "Not A Word"},
                                       {"addresses": [f"192.0.2.{i}:1224" for i in range(9)]}, {"size": {}},
                                       {"uptime": -1.0}, {"lifetime": 4 * 3600.0}])
def test_offer_out_of_range_is_refused_when_signing(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        offer(**overrides)


def test_lease_round_trip_and_its_request() -> None:
    verified = Lease.verify(lease(), NODE.public_key, NOW + 10)
    assert (verified.vessel, verified.lessee, verified.slot, verified.node) == (
        "p1", RESEARCHER.public_key, 3, NODE.public_key)
    assert verified.max_expiry == NOW + 7 * 86400


def test_lease_from_another_node_is_refused() -> None:
    with pytest.raises(PoolRejected) as refused:
        Lease.verify(lease(), OTHER_NODE.public_key, NOW)
    assert refused.value.code == "wrong_signer"


def test_lease_whose_request_names_another_slot_node_or_signer_is_refused() -> None:
    for request in (acquire(RESEARCHER, NODE, 4), acquire(RESEARCHER, OTHER_NODE, 3), acquire(NODE, NODE, 3),
                    sign_request(RESEARCHER, NODE.public_key, "RenewLease", ["p1", 60.0], now=NOW,
                                 nonce=os.urandom(16))):
        raw = Lease.sign(NODE, vessel="p1", lessee=RESEARCHER.public_key, slot=3, issued=NOW,
                         expires=NOW + 60, max_expiry=NOW + 60, request=request)
        with pytest.raises(PoolRejected) as refused:
            Lease.verify(raw, NODE.public_key, NOW)
        assert refused.value.code == "bad_request"


def test_forged_or_altered_objects_are_refused() -> None:
    for raw, parse in ((offer(), lambda r: Offer.verify(r, NOW)), (lease(), lambda r: Lease.verify(r, None, NOW))):
        altered = raw[:-1] + bytes([raw[-1] ^ 1])
        with pytest.raises(PoolRejected) as refused:
            parse(altered)
        assert refused.value.code == "bad_signature"


def test_kinds_do_not_pass_as_each_other() -> None:
    with pytest.raises(PoolRejected) as refused:
        Offer.verify(lease(), NOW)
    assert refused.value.code == "malformed"
    with pytest.raises(PoolRejected):
        Attestation.verify(offer(), NOW)


def test_oversize_and_malformed_envelopes_are_refused() -> None:
    with pytest.raises(PoolRejected) as refused:
        Offer.verify(b"\0" * (MAX_SIZE + 1), NOW)
    assert refused.value.code == "too_large"
    # A validly signed lease envelope with a field of the wrong type, and one nested past the limits.
    fields = {"vessel": 7, "lessee": RESEARCHER.public_key.raw, "slot": 1, "iat": NOW, "exp": NOW + 1,
              "max_exp": NOW + 1, "request": b""}
    with pytest.raises(PoolRejected) as refused:
        Lease.verify(seal(NODE, LEASE_CONTEXT, fields), None, NOW)
    assert refused.value.code == "malformed"
    deep = NODE.signing_key.sign(LEASE_CONTEXT + NODE.public_key.raw + msgpack.packb([[[[[[1]]]]]])).__bytes__()
    with pytest.raises(PoolRejected) as refused:
        Lease.verify(deep, None, NOW)
    assert refused.value.code == "malformed"


def test_times_are_checked() -> None:
    with pytest.raises(PoolRejected) as refused:
        Lease.verify(lease(), None, NOW + 3600 + 61)
    assert refused.value.code == "expired"
    with pytest.raises(PoolRejected) as refused:
        Offer.verify(offer(), NOW - 3600)
    assert refused.value.code == "not_yet_valid"
    assert Lease.verify_signed(lease(), None).expires == NOW + 3600  # evidence outlives the lease


def test_keys_are_distinct_and_stable() -> None:
    subjects = {offer_key(s) for s in range(SHARDS)} | {slot_key(RESEARCHER.public_key, s) for s in range(10)}
    subjects |= {credit_key(RESEARCHER.public_key), credit_key(NODE.public_key)}
    assert len(subjects) == SHARDS + 12
    assert slot_key(RESEARCHER.public_key, 3) == slot_key(RESEARCHER.public_key, 3)
    assert dht_key(offer_key(0)) != dht_key(offer_key(1))
    assert 0 <= offer_shard(NODE.public_key) < SHARDS
    with pytest.raises(ValueError):
        offer_key(SHARDS)


def test_quota_counts_distinct_donors_up_for_a_day() -> None:
    donors = [generate_identity("t") for _ in range(3)]
    me = RESEARCHER.public_key

    def attest(node: Identity, up_for: float, beneficiary: Identity = RESEARCHER) -> Attestation:
        raw = Attestation.sign(node, beneficiary=beneficiary.public_key, up_since=NOW - up_for, now=NOW)
        return Attestation.verify(raw, NOW)

    assert quota(me, [], NOW) == 10
    day = DONATION_MIN_UPTIME
    live = [attest(donors[0], day), attest(donors[0], day + 5), attest(donors[1], day + 1),
            attest(donors[2], day - 1), attest(NODE, 2 * day, beneficiary=NODE)]
    assert quota(me, live, NOW) == 30  # two distinct donors up ≥ 24 h; the young one and the other key not
    assert quota(me, live, NOW + 4 * 3600) == 10  # attestations lapsed: the donor stopped, the credit is gone


def test_two_grants_of_one_slot_are_evidence() -> None:
    first = Lease.verify(lease(NODE, slot=3), None, NOW)
    second = Lease.verify(lease(OTHER_NODE, slot=3, issued=NOW + 100, expires=NOW + 3700), None, NOW + 100)
    elsewhere = Lease.verify(lease(OTHER_NODE, slot=4), None, NOW)
    later = Lease.verify_signed(lease(OTHER_NODE, slot=3, issued=NOW + 3600, expires=NOW + 7200), None)
    evidence = Evidence.find([first, elsewhere, later, second])
    assert evidence is not None and evidence.lessee == RESEARCHER.public_key
    assert evidence.until == NOW + 3700 + BAN_DURATION
    assert Evidence.find([first, elsewhere, later]) is None  # another slot, or after the first lease ended
    assert Evidence.verify(first.raw, second.raw).first.node.raw == min(NODE.public_key.raw,
                                                                       OTHER_NODE.public_key.raw)
    with pytest.raises(PoolRejected):
        Evidence.verify(first.raw, elsewhere.raw)
