"""The record store under attack: floods from throwaway keys, fairness between sources, expiry, memory, cost.

The regression test for issue 13's record-cap attack (64 throwaway node keys filling one key, so that a real
donor's record was refused) is the first; the property test checks the store's invariants on random writes.
"""

from __future__ import annotations

import math
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seattle.budgets import Source, source_of
from seattle.keys import Identity, PublicKey, generate_identity
from seattle.overlay.records import RecordRejected, dht_key, sign, sign_tombstone, verify
from seattle.overlay.store import RECORD_COST, RecordStore

NOW = 1_800_000_000.0
OWNER = generate_identity("victim-owner").public_key
DONOR = generate_identity("donor")
THROWAWAY = [generate_identity(f"throwaway{i}") for i in range(200)]


def advert(node: Identity, subject: PublicKey = OWNER, *, seq: int = 1, now: float = NOW,
           lifetime: float = 7200.0) -> bytes:
    return sign(node, subject, ["203.0.113.66:1224"], sequence=seq, now=now, lifetime=lifetime)


def nodes_held(store: RecordStore, now: float = NOW, subject: PublicKey = OWNER) -> set[PublicKey]:
    return {verify(raw, now).node for raw in store.get(dht_key(subject), now)}


def test_throwaway_keys_from_one_network_cannot_keep_a_donor_out_of_a_key() -> None:
    """Issue 13: 64 records from 64 throwaway keys filled the key's cap and the donor was refused `full`."""
    store = RecordStore(max_writes_per_source=1000)
    for number, node in enumerate(THROWAWAY[:64]):
        store.put(advert(node), f"198.51.100.{number + 1}", NOW)  # 64 addresses, one /24
    store.put(advert(DONOR), "192.0.2.7", NOW + 1)
    assert DONOR.public_key in nodes_held(store, NOW + 1)
    # The flood goes on: every new throwaway record displaces one of the flood's, never the donor's.
    for number, node in enumerate(THROWAWAY[64:]):
        store.put(advert(node, now=NOW + 2), f"198.51.100.{number % 200 + 1}", NOW + 2)
    assert DONOR.public_key in nodes_held(store, NOW + 2)
    assert len(store.get(dht_key(OWNER), NOW + 2)) == store.max_records_per_key
    held = store.holdings(dht_key(OWNER))
    assert held[source_of("192.0.2.7")] == 1 and sum(held.values()) == store.max_records_per_key
    assert store.evicted["key_full"] == 1 + len(THROWAWAY) - 64


def test_a_donor_survives_a_flood_from_fewer_networks_than_the_key_holds() -> None:
    store = RecordStore(max_writes_per_source=1000)
    store.put(advert(DONOR), "192.0.2.7", NOW)
    networks = store.max_records_per_key - 1
    for number, node in enumerate(THROWAWAY):  # each of 63 networks writes ever more throwaway records
        store.put(advert(node), f"10.{number % networks}.0.1", NOW + 1)
    assert DONOR.public_key in nodes_held(store, NOW + 1)
    # The donor's refresh replaces its own slot in place and keeps its standing.
    store.put(advert(DONOR, seq=2, now=NOW + 2), "192.0.2.7", NOW + 2)
    for number, node in enumerate(THROWAWAY[:64]):
        store.put(advert(node, seq=2, now=NOW + 3), f"10.{number % networks}.0.2", NOW + 3)
    assert DONOR.public_key in nodes_held(store, NOW + 3)


def test_a_flood_of_many_keys_cannot_push_a_donor_out_of_the_whole_store() -> None:
    store = RecordStore(max_records=32, max_writes_per_source=1000)
    store.put(advert(DONOR), "2001:db8:1::7", NOW)
    for number, node in enumerate(THROWAWAY[:100]):  # a different subject each, from one /48
        subject = generate_identity(f"subject{number}").public_key
        store.put(advert(node, subject), f"2001:db8:2:{number:x}::1", NOW)
    assert len(store) == 32
    assert DONOR.public_key in nodes_held(store)
    store.put(advert(DONOR, generate_identity("other-owner").public_key), "2001:db8:1::7", NOW)
    assert len(store) == 32 and store.evicted["store_full"] == 70


def test_a_network_has_a_write_budget_beyond_its_addresses() -> None:
    store = RecordStore(max_writes_per_source=2, window=10)  # 8 writes per /24
    refused = 0
    for number in range(20):
        try:
            store.put(advert(THROWAWAY[number]), f"198.51.100.{number + 1}", NOW)
        except RecordRejected as exc:
            assert exc.code == "rate_limited" and "198.51.100.0/24" in exc.message
            refused += 1
    assert refused == 12 and store.refused["rate_limited"] == 12
    store.put(advert(DONOR), "192.0.2.7", NOW)  # another network is not affected


# --- cost: O(log n) per write, memory bounded in bytes ----------------------------------------------------


@pytest.mark.slow
def test_writes_stay_fast_as_the_store_fills_and_churns() -> None:
    """20,000 records, then 5,000 more into the full store (each displaces one and many expire): the mean
    write costs about the same at the end as at the start, where a scan per write would be 10x slower."""
    count, extra = 20_000, 5_000
    signer = THROWAWAY[0]
    subjects = [generate_identity(f"bulk{n}").public_key for n in range(count + extra)]
    raws = [
        sign(signer, subject, ["203.0.113.1:1224"], sequence=1, now=NOW if n < count else NOW + 150,
             lifetime=60.0 + n % 600)
        for n, subject in enumerate(subjects)
    ]
    store = RecordStore(max_records=count, max_writes_per_source=10**9)

    def mean_put(first: int, last: int, now: float) -> float:
        start = time.perf_counter()
        for n in range(first, last):
            store.put(raws[n], f"10.{n % 250}.{n // 250 % 250}.1", now)
        return (time.perf_counter() - start) / (last - first)

    early = mean_put(0, 1000, NOW)
    mean_put(1000, count, NOW)
    assert len(store) == count
    late = mean_put(count, count + extra, NOW + 150)  # some early records lapse, the rest make way
    assert store.evicted["expired"] > 0 and store.evicted["store_full"] > 0
    assert late < 3 * early, (early, late)


def test_memory_per_record_stays_within_its_charge() -> None:
    """Worst case: maximal records, each under its own key from its own network."""
    count = 300
    long_names = [f"{'a' * 60}.{'b' * 60}.example:{port}" for port in range(1, 9)]
    raws = []
    for number in range(count):
        subject = generate_identity(f"mem{number}").public_key
        raw = sign(THROWAWAY[number % 200], subject, long_names[:6], sequence=1, now=NOW)
        raws.append(raw)
    assert min(len(raw) for raw in raws) > 800
    store = RecordStore(max_records=count)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number, raw in enumerate(raws):
            store.put(raw, f"10.{number // 250}.{number % 250}.1", NOW)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    per_record = (grown + sum(len(raw) + 33 for raw in raws)) / count  # the raw bytes were allocated above
    assert per_record < RECORD_COST, per_record
    assert grown < store.max_bytes


# --- properties: random writes from random sources at random times ----------------------------------------

NODES = [generate_identity(f"prop-node{i}") for i in range(6)]
SUBJECTS = [generate_identity(f"prop-subject{i}").public_key for i in range(3)]
SOURCES = ["192.0.2.1", "192.0.2.2", "198.51.100.9", "203.0.113.4", "2001:db8::1", "2001:db8:0:1::1",
           "2001:db8:5::1"]
SKEW = 60.0


@dataclass
class Held:
    source: Source
    arrival: int
    hold_until: float
    expires: float


write = st.tuples(
    st.integers(0, len(NODES) - 1),
    st.integers(0, len(SUBJECTS) - 1),
    st.integers(0, len(SOURCES) - 1),
    st.sampled_from([0.0, 0.0, 1.0, 30.0, 400.0, 2000.0]),  # time passing before the write
    st.sampled_from([60.0, 600.0, 3600.0]),  # the record's lifetime
    st.booleans(),  # a tombstone
)


#: The slot of every record the property test signed, so held records are read without a clock.
SLOT_OF: dict[bytes, tuple[bytes, bytes]] = {}


def snapshot(store: RecordStore) -> dict[tuple[bytes, bytes], bytes]:
    """Every slot the store holds, hidden (expired but remembered) ones included."""
    return {SLOT_OF[raw]: raw for subject in SUBJECTS for raw in store.get(dht_key(subject), -math.inf)}


@pytest.mark.slow  # about 0.7 s: 150 examples of up to 40 signed writes
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(write, min_size=1, max_size=40))
def test_store_invariants_hold_for_random_writes(writes: list[tuple[int, int, int, float, float, bool]]) -> None:
    per_key, total = 3, 5
    store = RecordStore(max_records_per_key=per_key, max_records=total, max_writes_per_source=10**6,
                        clock_skew=SKEW)
    model: dict[tuple[bytes, bytes], Held] = {}
    sequences: dict[tuple[bytes, bytes], int] = {}
    now = NOW
    for arrival, (node_index, subject_index, source_index, elapsed, lifetime, tombstone) in enumerate(writes):
        now += elapsed
        # Expiry removes exactly the slots whose every accepted record lapsed.
        lapsed = {slot for slot, held in model.items() if held.hold_until < now}
        assert store.expire(now) == len(lapsed)
        model = {slot: held for slot, held in model.items() if slot not in lapsed}
        assert set(snapshot(store)) == set(model)

        node, subject = NODES[node_index], SUBJECTS[subject_index]
        slot_id = (subject.raw, node.public_key.raw)
        sequence = sequences.get(slot_id, 0) + 1
        sequences[slot_id] = sequence
        if tombstone:
            raw = sign_tombstone(node, subject, sequence=sequence, now=now, lifetime=lifetime)
        else:
            raw = sign(node, subject, ["192.0.2.200:1224"], sequence=sequence, now=now, lifetime=lifetime)
        SLOT_OF[raw] = slot_id
        writer = source_of(SOURCES[source_index])
        before = dict(model)
        store.put(raw, SOURCES[source_index], now)  # fresh and valid: never refused for lack of room
        after = snapshot(store)
        assert after[slot_id] == raw  # the writer's newest record is kept

        previous = model.get(slot_id)
        hold_until = max(now + lifetime + SKEW, previous.hold_until if previous else -math.inf)
        model[slot_id] = Held(writer, arrival, hold_until, now + lifetime + SKEW)
        displaced = set(before) - set(after)
        if slot_id in before:
            assert not displaced  # a newer record in its slot takes no room
        else:
            in_key = {s: h for s, h in before.items() if s[0] == subject.raw}
            scope = before
            if len(in_key) >= per_key:  # the key was full: one of its records made way, fairly
                (gone,) = [s for s in displaced if s in in_key]
                _check_fair(in_key, gone, writer)
                scope = {s: h for s, h in before.items() if s != gone}
            if len(scope) >= total:  # the store was full: one more made way, fairly
                (gone,) = [s for s in displaced if s in scope]
                _check_fair(scope, gone, writer)
            assert len(displaced) == len(before) + 1 - len(after)
        for gone in displaced:
            del model[gone]
        assert set(after) == set(model)

        # Memory: the caps in total and per key.
        assert len(store) == len(model) <= total
        for subject_key in SUBJECTS:
            assert len(store.get(dht_key(subject_key), -math.inf)) <= per_key
        # Visible records are exactly the unexpired ones.
        for subject_key in SUBJECTS:
            visible = set(store.get(dht_key(subject_key), now))
            expected = {after[s] for s, held in model.items() if s[0] == subject_key.raw and held.expires >= now}
            assert visible == expected


def _check_fair(scope: dict[tuple[bytes, bytes], Held], gone: tuple[bytes, bytes], writer: Source) -> None:
    """The max-min rule: the displaced record came from the most represented network if that holds more than
    the writer's, else from the writer's network; within it from the most represented address if that holds
    more than the writer's (else the writer's own); and it was that address's oldest record in `scope`."""
    loser = scope[gone].source
    networks = Counter(held.source.network for held in scope.values())
    if max(networks.values()) > networks[writer.network]:
        assert networks[loser.network] == max(networks.values()), (loser, writer, networks)
    else:
        assert loser.network == writer.network, (loser, writer, networks)
    addresses = Counter(held.source.address for held in scope.values() if held.source.network == loser.network)
    if loser.network == writer.network and max(addresses.values()) <= addresses[writer.address]:
        assert loser.address == writer.address, (loser, writer, addresses)
    else:
        assert addresses[loser.address] == max(addresses.values()), (loser, writer, addresses)
    assert scope[gone].arrival == min(held.arrival for held in scope.values() if held.source == loser)
