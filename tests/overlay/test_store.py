"""The DHT record store: verification on put, sequence rules, tombstones, expiry and the caps."""

from __future__ import annotations

import pytest

from seattle.keys import Identity, PublicKey, generate_identity
from seattle.overlay.records import (
    BAD_SIGNATURE,
    EXPIRED,
    NOT_YET_VALID,
    TOO_LARGE,
    RecordRejected,
    dht_key,
    merge,
    sign,
    sign_tombstone,
    verify,
)
from seattle.overlay.store import RATE_LIMITED, STALE, RecordStore

NOW = 1_800_000_000.0
NODES = [generate_identity(f"node{i}") for i in range(4)]
OWNER = generate_identity("owner").public_key
OTHER_OWNER = generate_identity("other-owner").public_key
SOURCE = "192.0.2.10"


def advert(node: Identity = NODES[0], seq: int = 1, *, subject: PublicKey = OWNER, now: float = NOW,
           lifetime: float = 7200.0, port: int = 1224) -> bytes:
    return sign(node, subject, [f"192.0.2.1:{port}"], sequence=seq, now=now, lifetime=lifetime)


def refused(store: RecordStore, raw: bytes, now: float = NOW, source: str = SOURCE) -> str:
    with pytest.raises(RecordRejected) as caught:
        store.put(raw, source, now)
    assert caught.value.message
    return caught.value.code


def held(store: RecordStore, now: float = NOW, subject: PublicKey = OWNER) -> list[tuple[int, bool]]:
    return [(r.sequence, r.tombstone) for r in (verify(raw, now) for raw in store.get(dht_key(subject), now))]


def test_put_then_get_returns_the_exact_signed_bytes() -> None:
    store = RecordStore()
    raw = advert()
    record = store.put(raw, SOURCE, NOW)
    assert record.sequence == 1
    assert store.get(dht_key(OWNER), NOW) == [raw]
    assert store.get(dht_key(OTHER_OWNER), NOW) == []
    assert len(store) == 1


def test_invalid_records_are_never_stored() -> None:
    store = RecordStore()
    tampered = bytearray(advert())
    tampered[-1] ^= 0x01
    assert refused(store, bytes(tampered)) == BAD_SIGNATURE
    assert refused(store, b"\x00" * 2000) == TOO_LARGE
    assert refused(store, advert(now=NOW - 9000)) == EXPIRED
    assert refused(store, advert(now=NOW + 600)) == NOT_YET_VALID
    assert len(store) == 0
    assert store.get(dht_key(OWNER), NOW) == []


def test_higher_sequence_replaces_and_replays_are_stale() -> None:
    store = RecordStore()
    store.put(advert(seq=5, port=1), SOURCE, NOW)
    assert refused(store, advert(seq=5, port=1)) == STALE  # the same record again
    assert refused(store, advert(seq=4, port=2)) == STALE  # an older one
    store.put(advert(seq=6, port=3), SOURCE, NOW)
    assert held(store) == [(6, False)]
    assert verify(store.get(dht_key(OWNER), NOW)[0], NOW).addresses == ("192.0.2.1:3",)
    assert len(store) == 1


def test_one_slot_per_node_under_a_subject() -> None:
    store = RecordStore()
    for node in NODES:
        store.put(advert(node, seq=1), SOURCE, NOW)
    store.put(advert(NODES[0], seq=1, subject=OTHER_OWNER), SOURCE, NOW)
    assert len(store.get(dht_key(OWNER), NOW)) == len(NODES)
    assert len(store.get(dht_key(OTHER_OWNER), NOW)) == 1


def test_tombstone_withdraws_and_blocks_the_old_record() -> None:
    store = RecordStore()
    old = advert(seq=1)
    store.put(old, SOURCE, NOW)
    store.put(advert(NODES[1]), SOURCE, NOW)
    store.put(sign_tombstone(NODES[0], OWNER, sequence=2, now=NOW + 10), SOURCE, NOW + 10)
    later = NOW + 3600
    assert refused(store, old, now=later) == STALE
    # Readers get the tombstone, so merging with a holder that missed it drops the old record.
    returned = [verify(raw, later) for raw in store.get(dht_key(OWNER), later)]
    assert sorted((r.sequence, r.tombstone) for r in returned) == [(1, False), (2, True)]
    stale_holder = [verify(old, later)]
    assert [r.node for r in merge(returned + stale_holder)] == [NODES[1].public_key]
    # A newer advertisement after the tombstone brings the vessel back.
    store.put(advert(seq=3, now=later), SOURCE, later)
    assert sorted(held(store, later)) == [(1, False), (3, False)]


def test_expired_records_are_hidden_then_forgotten() -> None:
    store = RecordStore(clock_skew=60)
    store.put(advert(seq=1, lifetime=600), SOURCE, NOW)
    store.put(advert(NODES[1], lifetime=7200), SOURCE, NOW)
    assert len(store.get(dht_key(OWNER), NOW + 661)) == 1
    assert store.expire(NOW + 661) == 1
    assert len(store) == 1
    assert store.expire(NOW + 7261) == 1
    assert len(store) == 0
    assert store.get(dht_key(OWNER), NOW + 7261) == []


def test_superseded_record_outliving_its_replacement_stays_refused() -> None:
    store = RecordStore(clock_skew=0)
    long_lived = advert(seq=1, lifetime=7200)
    store.put(long_lived, SOURCE, NOW)
    store.put(advert(seq=2, lifetime=600), SOURCE, NOW)
    store.expire(NOW + 1000)
    assert held(store, NOW + 1000) == []  # seq 2 expired, and seq 1 was superseded
    assert refused(store, long_lived, now=NOW + 1000) == STALE
    store.expire(NOW + 7201)
    assert len(store) == 0


def test_a_full_key_makes_way_for_a_new_record_with_the_oldest_of_the_same_source() -> None:
    store = RecordStore(max_records_per_key=2, max_writes_per_source=100)
    store.put(advert(NODES[0]), SOURCE, NOW)
    store.put(advert(NODES[1]), SOURCE, NOW)
    store.put(advert(NODES[0], seq=2), SOURCE, NOW)  # replacing within a full key takes no room
    store.put(advert(NODES[2]), SOURCE, NOW)  # NODES[1]'s record is now this source's oldest
    assert sorted(verify(raw, NOW).node.raw for raw in store.get(dht_key(OWNER), NOW)) == sorted(
        [NODES[0].public_key.raw, NODES[2].public_key.raw]
    )
    assert store.evicted["key_full"] == 1 and len(store) == 2


def test_a_full_store_makes_way_for_a_new_record() -> None:
    store = RecordStore(max_records=3)
    for node in NODES[:3]:
        store.put(advert(node), SOURCE, NOW)
    store.put(advert(NODES[3], subject=OTHER_OWNER), SOURCE, NOW)
    assert len(store) == 3 and store.evicted["store_full"] == 1
    assert len(store.get(dht_key(OTHER_OWNER), NOW)) == 1


def test_a_flood_from_one_source_is_rate_limited_while_another_gets_through() -> None:
    store = RecordStore(max_writes_per_source=3, window=10)
    for seq in range(1, 4):
        store.put(advert(seq=seq), SOURCE, NOW)
    # Refused before verification: even a valid newer record from the flooding source.
    assert refused(store, advert(seq=10), now=NOW) == RATE_LIMITED
    assert refused(store, b"junk", now=NOW + 1) == RATE_LIMITED
    store.put(advert(NODES[1]), "198.51.100.20", NOW + 1)
    store.put(advert(seq=11, now=NOW + 12), SOURCE, NOW + 12)  # the bucket refilled
    assert sorted(held(store, NOW + 12)) == [(1, False), (11, False)]


def test_source_spellings_share_a_budget_and_bad_sources_are_named() -> None:
    store = RecordStore(max_writes_per_source=1)
    store.put(advert(), "2001:db8::1", NOW)
    assert refused(store, advert(seq=2), source="2001:DB8:0::1") == RATE_LIMITED
    with pytest.raises(ValueError, match="source_ip"):
        store.put(advert(seq=3), "not-an-ip", NOW)


def test_tracked_sources_are_bounded_and_the_least_recently_used_is_forgotten() -> None:
    store = RecordStore(max_sources=2, max_writes_per_source=1, window=10)
    store.put(advert(NODES[0]), "192.0.2.1", NOW)
    assert refused(store, advert(NODES[0], seq=2), source="192.0.2.1") == RATE_LIMITED
    store.put(advert(NODES[1]), "198.51.100.2", NOW)
    store.put(advert(NODES[2]), "203.0.113.3", NOW)  # a third source: the first one's budget is forgotten
    store.put(advert(NODES[0], seq=2), "192.0.2.1", NOW)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"max_records": 0}, "max_records"),
        ({"max_records_per_key": True}, "max_records_per_key"),
        ({"window": "10"}, "window"),
        ({"window": 0}, "window"),
        ({"clock_skew": -1}, "clock_skew"),
    ],
)
def test_bad_configuration_is_named(kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        RecordStore(**kwargs)  # type: ignore[arg-type]


def test_get_needs_a_node_id() -> None:
    with pytest.raises(TypeError, match="NodeId"):
        RecordStore().get(OWNER.raw, NOW)  # type: ignore[arg-type]
