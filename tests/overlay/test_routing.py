"""Routing table: splitting, replacement cache, failure counting, subnet limits, closest(), persistence.

The hypothesis test drives random observe/failure sequences and checks the invariants every other part of the
overlay relies on.
"""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.overlay.nodeid import ID_BITS, Contact, NodeId
from seattle.overlay.routing import Observed, RoutingTable

TOP = 1 << (ID_BITS - 1)


def contact(value: int, n: int | None = None, host: str | None = None) -> Contact:
    """A contact in its own /24 (unless `host` is given), so subnet limits stay out of the way."""
    n = value if n is None else n
    return Contact(NodeId(value), host or f"10.{(n >> 8) & 255}.{n & 255}.1", 4000 + n % 1000)


def far(i: int) -> Contact:
    """Contacts in the half of the keyspace not holding id 0: they all land in one non-splitting bucket."""
    return contact(TOP + i, n=i)


def test_bucket_holding_own_id_splits_so_the_table_outgrows_k() -> None:
    table = RoutingTable(NodeId(0), k=4)
    rng = random.Random(1)
    for n in range(200):
        table.observe(contact(max(1, rng.getrandbits(ID_BITS) >> rng.randrange(ID_BITS)), n=n), now=n)
    assert len(table) > 4
    assert len(table.buckets) > 1
    assert all(len(bucket.entries) <= 4 for bucket in table.buckets)


def test_full_distant_bucket_caches_newcomers_instead_of_evicting() -> None:
    table = RoutingTable(NodeId(0), k=3)
    results = [table.observe(far(i), now=i) for i in range(5)]
    assert results == [Observed.ADDED] * 3 + [Observed.CACHED] * 2
    assert {c.node_id for c in table} == {far(i).node_id for i in range(3)}
    assert [c.node_id for c in table.replacements()] == [far(3).node_id, far(4).node_id]


def test_replacement_cache_is_bounded_keeping_the_newest() -> None:
    table = RoutingTable(NodeId(0), k=2, replacement_size=2)
    for i in range(6):
        table.observe(far(i), now=i)
    assert [c.node_id for c in table.replacements()] == [far(4).node_id, far(5).node_id]


def test_contact_is_dropped_only_after_max_failures_and_the_newest_replacement_takes_its_place() -> None:
    table = RoutingTable(NodeId(0), k=2, max_failures=3)
    for i in range(4):
        table.observe(far(i), now=i)
    victim = far(0).node_id
    assert table.record_failure(victim, now=10) is False
    assert table.record_failure(victim, now=11) is False
    assert victim in table
    assert table.record_failure(victim, now=12) is True
    assert victim not in table
    assert far(3).node_id in table
    assert [c.node_id for c in table.replacements()] == [far(2).node_id]


def test_a_reply_resets_the_failure_count() -> None:
    table = RoutingTable(NodeId(0), k=2, max_failures=2)
    table.observe(far(0), now=0)
    assert table.record_failure(far(0).node_id, now=1) is False
    assert table.observe(far(0), now=2) is Observed.REFRESHED
    assert table.record_failure(far(0).node_id, now=3) is False
    assert far(0).node_id in table


def test_failure_of_a_cached_or_unknown_contact() -> None:
    table = RoutingTable(NodeId(0), k=1)
    table.observe(far(0), now=0)
    table.observe(far(1), now=1)
    assert table.record_failure(far(1).node_id, now=2) is True
    assert table.replacements() == []
    assert table.record_failure(far(7).node_id, now=2) is False


def test_refresh_moves_a_contact_to_the_most_recent_end() -> None:
    table = RoutingTable(NodeId(0), k=3)
    for i in range(3):
        table.observe(far(i), now=i)
    table.observe(far(0), now=5)
    assert [c.node_id for c in table.bucket_for(far(0).node_id).contacts()] == [
        far(1).node_id,
        far(2).node_id,
        far(0).node_id,
    ]


def test_subnet_limit_per_bucket() -> None:
    table = RoutingTable(NodeId(0), k=20, max_per_subnet=2)
    same = [contact(TOP + i, host=f"192.0.2.{i + 1}") for i in range(3)]
    assert [table.observe(c, now=0) for c in same] == [Observed.ADDED, Observed.ADDED, Observed.SUBNET_FULL]
    assert table.observe(contact(TOP + 10, host="192.0.3.1"), now=0) is Observed.ADDED
    v6 = [contact(TOP + 20 + i, host=f"2001:db8::{i + 1}") for i in range(3)]
    assert [table.observe(c, now=0) for c in v6] == [Observed.ADDED, Observed.ADDED, Observed.SUBNET_FULL]
    # Another /64 of the same /48 is the same network; another /48 is not.
    assert table.observe(contact(TOP + 30, host="2001:db8:0:1::1"), now=0) is Observed.SUBNET_FULL
    assert table.observe(contact(TOP + 31, host="2001:db8:1::1"), now=0) is Observed.ADDED


def test_known_contact_cannot_move_into_a_full_subnet() -> None:
    table = RoutingTable(NodeId(0), k=20, max_per_subnet=1)
    table.observe(contact(TOP + 1, host="192.0.2.1"), now=0)
    table.observe(contact(TOP + 2, host="198.51.100.1"), now=0)
    table.observe(contact(TOP + 2, host="192.0.2.9"), now=1)
    assert {c.host for c in table} == {"192.0.2.1", "198.51.100.1"}


def test_promotion_skips_replacements_from_a_full_subnet() -> None:
    table = RoutingTable(NodeId(0), k=2, max_per_subnet=1, max_failures=1)
    table.observe(contact(TOP + 1, host="192.0.2.1"), now=0)
    table.observe(contact(TOP + 2, host="198.51.100.1"), now=0)
    table.observe(contact(TOP + 3, host="203.0.113.1"), now=1)
    table.observe(contact(TOP + 4, host="192.0.3.7"), now=2)
    assert len(table.replacements()) == 2
    # TOP+1 moves into the newest replacement's /24, so that replacement no longer fits when a slot frees.
    table.observe(contact(TOP + 1, host="192.0.3.1"), now=3)
    table.record_failure(NodeId(TOP + 2), now=4)
    assert {c.node_id.value for c in table} == {TOP + 1, TOP + 3}


def test_own_id_is_refused() -> None:
    with pytest.raises(ValueError, match="own id"):
        RoutingTable(NodeId(5)).observe(contact(5), now=0)


@pytest.mark.parametrize(
    "bad", [{"k": 0}, {"max_failures": -1}, {"max_per_subnet": 1.5}, {"replacement_size": -1}]
)
def test_bad_parameters_are_refused_by_name(bad) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        RoutingTable(NodeId(0), **bad)


def test_closest_matches_brute_force() -> None:
    rng = random.Random(7)
    table = RoutingTable(NodeId(rng.getrandbits(ID_BITS)), k=8)
    for n in range(300):
        table.observe(contact(rng.getrandbits(ID_BITS), n=n), now=n)
    own = table.own_id.value
    # Random targets, and targets next to our own id, where the small split buckets are.
    targets = [NodeId(rng.getrandbits(ID_BITS)) for _ in range(40)] + [NodeId(own ^ (1 << b)) for b in range(12)]
    for target in targets:
        ranked = sorted(table, key=lambda c: target.distance(c.node_id))
        assert table.closest(target) == ranked[:8]
        for count in (0, 1, 3, 30, len(ranked) + 5):
            assert table.closest(target, count) == ranked[:count]
    with pytest.raises(ValueError, match="count"):
        table.closest(target, -1)


def test_state_survives_a_json_round_trip() -> None:
    rng = random.Random(3)
    table = RoutingTable(NodeId(rng.getrandbits(ID_BITS)), k=4, replacement_size=3)
    for n in range(120):
        table.observe(contact(rng.getrandbits(ID_BITS), n=n), now=float(n))
    restored = RoutingTable.from_dict(json.loads(json.dumps(table.to_dict())))
    assert restored.to_dict() == table.to_dict()
    assert set(restored) == set(table)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.pop("k"), "lacks 'k'"),
        (lambda d: d.update(k=0), "k must be"),
        (lambda d: d.update(own_id="xyz"), "64 characters"),
        (lambda d: d.update(contacts="nope"), "'contacts' must be a list"),
        (lambda d: d["contacts"].append({"id": "00" * 32}), r"contacts\[1\] must be a dict"),
        (lambda d: d["contacts"].append({"id": "01" * 32, "host": "x", "port": 1, "seen": 0}), "IP address"),
        (lambda d: d["contacts"].append({"id": "01" * 32, "host": "::1", "port": 1, "seen": "0"}), "'seen'"),
    ],
)
def test_bad_state_is_refused_naming_the_field(mutate, message) -> None:
    table = RoutingTable(NodeId(0))
    table.observe(far(1), now=0)
    state = table.to_dict()
    mutate(state)
    with pytest.raises(ValueError, match=message):
        RoutingTable.from_dict(state)


operations = st.lists(
    st.tuples(
        st.sampled_from(["observe", "observe", "observe", "fail"]),
        st.integers(min_value=1, max_value=(1 << ID_BITS) - 1) | st.integers(min_value=1, max_value=64),
        st.integers(min_value=0, max_value=5),
    ),
    max_size=150,
)


@settings(max_examples=60, deadline=None)
@given(ops=operations, target=st.integers(min_value=0, max_value=(1 << ID_BITS) - 1))
def test_invariants_hold_under_random_operations(ops, target) -> None:
    table = RoutingTable(NodeId(0), k=4, max_failures=2, max_per_subnet=2, replacement_size=3)
    for step, (kind, value, subnet) in enumerate(ops):
        if kind == "observe":
            table.observe(Contact(NodeId(value), f"10.0.{subnet}.{value % 250 + 1}", 1), now=step)
        else:
            table.record_failure(NodeId(value), now=step)
    assert table.buckets[0].low == 0 and table.buckets[-1].high == 1 << ID_BITS
    assert all(a.high == b.low for a, b in zip(table.buckets, table.buckets[1:]))
    ids = [c.node_id for c in table]
    assert len(ids) == len(set(ids))
    assert not set(ids) & {c.node_id for c in table.replacements()}
    for bucket in table.buckets:
        assert len(bucket.entries) <= 4
        assert len(bucket.replacements) <= 3
        assert all(bucket.low <= value < bucket.high for value in [*bucket.entries, *bucket.replacements])
        subnets = [c.subnet for c in bucket.contacts()]
        assert all(subnets.count(s) <= 2 for s in subnets)
        assert sorted((+bucket.subnets).values()) == sorted(Counter(subnets).values())
        assert +bucket.subnets == Counter(c.subnet_key for c in bucket.contacts())
        if bucket.covers(table.own_id):
            assert not bucket.replacements
    found = table.closest(NodeId(target), 10)
    distances = [NodeId(target).distance(c.node_id) for c in found]
    assert distances == sorted(distances)
    assert len(found) == min(10, len(ids))


def test_has_room_for_predicts_whether_observe_adds_without_changing_anything() -> None:
    table = RoutingTable(NodeId(0), k=2, max_per_subnet=1)
    assert table.has_room_for(far(0))
    table.observe(far(0), now=0)
    assert table.has_room_for(far(0))  # known: a refresh
    assert not table.has_room_for(contact(TOP + 1, n=0))  # in far(0)'s /24, and the limit is 1
    table.observe(far(1), now=1)
    near = contact(1, n=7)
    assert table.has_room_for(near)  # the full bucket holds our own id, so it splits
    assert table.observe(near, now=2) is Observed.ADDED
    snapshot = (len(table), len(table.buckets), table.replacements())
    assert not table.has_room_for(far(2))  # a full bucket that cannot split: only the replacement cache
    assert (len(table), len(table.buckets), table.replacements()) == snapshot
    assert table.observe(far(2), now=3) is Observed.CACHED
