"""Budgets by network prefix: where a peer is, and how much of this node it may spend.

Keys are free and every byte from the network is hostile, so the node manager's TCP server, the overlay's UDP
transport and the DHT's record store budget work by where it comes from, not by who signs it. One `Source` is
an IPv4 address or an IPv6 /64 (anyone gets a whole /64, so it is one address), within its network, an IPv4
/24 or an IPv6 /48; an IPv4-mapped IPv6 address counts as IPv4. A `RateTable` holds token buckets per source
key and forgets the least recently seen key when full, so a flood of sources costs a fixed table size and
never locks newcomers out. A key whose bucket has refilled holds nothing a newcomer would not (a full burst),
so the table forgets it once it is the least recently seen and a new key comes: an honest peer's few
datagrams a second leave no entry behind for long, and a process that runs a thousand overlay nodes (the UDP
bench) does not keep a table row per peer per node.
"""

from __future__ import annotations

import functools
import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

#: (network, address) prefix lengths.
IPV4_PREFIXES = (24, 32)
IPV6_PREFIXES = (48, 64)


@dataclass(frozen=True, slots=True)
class Source:
    """Where traffic came from: `network` (/24 or /48) and `address` (/32 or /64), as CIDR text."""

    network: str
    address: str


@functools.lru_cache(maxsize=8192)
def source_of(source_ip: str) -> Source:
    """The source `source_ip` counts against (a zone index, `fe80::1%eth0`, is ignored); ValueError for
    anything but an IP address literal (a transport bug, not remote input: transports hand over addresses).
    Cached: the UDP transport asks for every datagram."""
    try:
        address = ipaddress.ip_address(source_ip.split("%", 1)[0])
    except ValueError:
        raise ValueError(f"source_ip must be an IP address literal, got {source_ip!r:.80}") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    network, host = IPV4_PREFIXES if address.version == 4 else IPV6_PREFIXES
    return Source(str(ipaddress.ip_network((address, network), strict=False)),
                  str(ipaddress.ip_network((address, host), strict=False)))


class RateTable:
    """Token buckets of `rate` per second and `burst` saved, by key, at most `capacity` keys (least recently
    seen forgotten first: a forgotten key comes back with a full burst)."""

    def __init__(self, rate: float, burst: int, capacity: int) -> None:
        self.rate = rate
        self.burst = burst
        self.capacity = capacity
        #: Keys forgotten to make room.
        self.evictions = 0
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, updated at)

    def __len__(self) -> int:
        return len(self._buckets)

    def tokens(self, key: str, now: float) -> float:
        """The tokens `key` holds now (negative while it is in debt); spends nothing."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(self.burst)
        tokens, updated = bucket
        return min(float(self.burst), tokens + max(0.0, now - updated) * self.rate)

    def take(self, key: str, now: float) -> float:
        """Spend a token of `key`'s; the seconds until it was earned (0 if one was saved). The debt is capped
        at one burst, so a source that keeps asking waits at most burst / rate per request."""
        tokens = max(self.tokens(key, now) - 1, -float(self.burst))
        self._store(key, tokens, now)
        return max(0.0, -tokens / self.rate)

    def _store(self, key: str, tokens: float, now: float) -> None:
        """Set `key`'s bucket as the most recently seen. A key new to the table first makes room: up to two
        of the least recently seen keys are forgotten if their buckets are full again (they equal no entry;
        two, so the table shrinks while new keys come, at a bounded cost), then, if the table is still full,
        the least recently seen key."""
        buckets = self._buckets
        if buckets.pop(key, None) is None:
            for _ in range(2):
                oldest = next(iter(buckets), None)
                if oldest is None:
                    break
                held, updated = buckets[oldest]
                if held + (now - updated) * self.rate < self.burst:
                    break
                del buckets[oldest]
            if len(buckets) >= self.capacity:
                buckets.popitem(last=False)
                self.evictions += 1
        buckets[key] = (tokens, now)

    def keys(self) -> list[str]:
        """The keys held, least recently seen first."""
        return list(self._buckets)


@dataclass(frozen=True, slots=True)
class Exhausted:
    """Why `SourceBudget.spend` refused: the key whose table was empty, that table, and its tokens."""

    key: str
    table: RateTable
    tokens: float

    def retry_after(self) -> float:
        """Seconds until the key has a token again."""
        return (1 - self.tokens) / self.table.rate


class SourceBudget:
    """A budget per address and per network: `spend` takes one unit from both, or from neither when either
    is empty (no debt: the caller refuses the work instead of waiting)."""

    def __init__(self, address: RateTable, network: RateTable) -> None:
        self.address = address
        self.network = network

    def spend(self, source: Source, now: float) -> Exhausted | None:
        """None if `source` may do one more unit of work now (and it is counted); else what is exhausted."""
        address_tokens = self.address.tokens(source.address, now)
        if address_tokens < 1:
            return Exhausted(source.address, self.address, address_tokens)
        network_tokens = self.network.tokens(source.network, now)
        if network_tokens < 1:
            return Exhausted(source.network, self.network, network_tokens)
        # Both hold a token (so no debt to cap): spent as `take` would, without reading the buckets again.
        self.address._store(source.address, address_tokens - 1, now)
        self.network._store(source.network, network_tokens - 1, now)
        return None
