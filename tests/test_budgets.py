"""seattle.budgets: an IPv6 /64 is one address, /24 and /48 are networks, and a flood of sources costs a rate
table a fixed size without locking out newcomers."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.budgets import RateTable, Source, source_of


def test_sources_of_ipv4_ipv6_and_mapped_addresses() -> None:
    assert source_of("203.0.113.7") == Source("203.0.113.0/24", "203.0.113.7/32")
    assert source_of("::ffff:203.0.113.7") == Source("203.0.113.0/24", "203.0.113.7/32")
    assert source_of("2001:db8:1:2:3:4:5:6") == Source("2001:db8:1::/48", "2001:db8:1:2::/64")
    assert source_of("fe80::1%eth0") == Source("fe80::/48", "fe80::/64")
    with pytest.raises(ValueError, match="IP address literal"):
        source_of("unknown")


@given(st.ip_addresses(v=6), st.integers(0, 2**64 - 1))
def test_every_address_of_a_64_is_one_source(address: ipaddress.IPv6Address, host: int) -> None:
    if address.ipv4_mapped is not None:
        return
    other = ipaddress.IPv6Address((int(address) >> 64 << 64) | host)
    assert source_of(str(address)) == source_of(str(other))


def test_a_bucket_paces_after_its_burst_and_caps_its_debt() -> None:
    table = RateTable(rate=10.0, burst=5, capacity=1)
    assert [table.take("a", 0.0) for _ in range(5)] == [0.0] * 5
    assert table.take("a", 0.0) == 0.1
    waits = [table.take("a", 0.0) for _ in range(100)]
    assert max(waits) == 0.5  # the debt never exceeds one burst
    assert table.tokens("a", 0.0) == -5.0
    assert table.take("a", 10.0) == 0.0  # refilled


@given(st.lists(st.integers(0, 50), max_size=300))
@settings(max_examples=100)
def test_the_table_never_outgrows_its_capacity_and_forgets_the_least_recent(keys: list[int]) -> None:
    table = RateTable(rate=1.0, burst=1, capacity=8)
    for key in keys:
        table.take(str(key), 0.0)
        assert len(table) <= 8
    recent: list[str] = []
    for key in reversed(keys):
        if str(key) not in recent:
            recent.append(str(key))
    assert table.keys() == list(reversed(recent[:8]))
    assert table.evictions == _lru_evictions(keys, 8)


def _lru_evictions(keys: list[int], capacity: int) -> int:
    """Evictions a plain list-based LRU of `capacity` makes for `keys`."""
    order: list[int] = []
    evictions = 0
    for key in keys:
        if key in order:
            order.remove(key)
        elif len(order) >= capacity:
            order.pop(0)
            evictions += 1
        order.append(key)
    return evictions


def test_a_new_source_is_never_refused_when_the_table_is_full() -> None:
    table = RateTable(rate=1.0, burst=2, capacity=4)
    for key in range(1000):  # a flood of sources
        table.take(f"10.0.{key}.1", 0.0)
    assert table.take("192.0.2.1", 0.0) == 0.0  # a newcomer starts with its burst
    assert len(table) == 4
