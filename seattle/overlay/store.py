"""The records a DHT node holds for others: verified, versioned, expiring, and shared fairly between sources.

Sans-IO: the driver passes the time and the sender's address in. Expiry needs no timer: every `put` first
forgets what has lapsed, and `expire` does the same on demand.

Every record is verified (`records.verify`) before it is stored, and the store keeps one record per
(subject, node): a higher sequence replaces a lower one and anything else is refused as `stale`, so a replayed
old record cannot displace the current one. A tombstone replaces a record like any newer record and is kept
until it expires, so the record it withdrew cannot be stored again meanwhile. A slot is remembered until the
latest expiry of anything accepted into it, so a superseded record that outlives its replacement still finds
its sequence refused.

`get` returns tombstones too: readers merge what several holders return (`records.merge`), and a holder that
missed a withdrawal still serves the old record; only the tombstone from another holder lets the reader drop
it, and lets a reader that cached the record forget it.

Who may fill the store. Node keys cost nothing to mint, network addresses do, so room is shared by *source*:
the writer's network (IPv4 /24, IPv6 /48) and, within it, its address (IPv4 /32, IPv6 /64). The signer's key
needs no share of its own: it already holds at most one slot per subject. A valid, newer record is never
refused for lack of room. When its key holds `max_records_per_key` records, or the store `max_records`, one
record makes way for it, chosen max-min fairly (`_Holdings.victim`): from the network holding the most records
there if that is more than the writer's network holds, else, within the writer's network, from the address
holding the most if that is more than the writer's address holds, else from the writer's own address; and of
that source, its oldest record. So a source holding no more than any other is never displaced by someone
else's write: a donor's one record under a key survives a flood from up to `max_records_per_key - 1`
networks, and a donor's fresh record always gets in (it displaces the flood's). Among sources holding equally
many, the one that reached that count last yields first, so a flood from ever new networks churns its own
records before an incumbent's.

Writes are rate-limited before the signature is checked, so a flood costs no crypto: per address
`max_writes_per_source` and per network `max_writes_per_network` writes per `window` (token buckets), in
tables of at most `max_sources` entries each that forget the least recently used source when full.

Cost: a write is O(log n) in the records held (a heap ordered by expiry, and per-source counters bucketed by
count so that the most represented source is found in O(1)); nothing scans the store. Memory is bounded in
bytes: at most `max_records` records, each charged RECORD_COST bytes (a maximal record with its slot, key and
source entries, as measured by tests/overlay/test_hostile_store.py), plus RATE_ENTRY_COST per tracked source.
At the defaults: 4096 x 6 KiB = 24 MiB of records and 2 x 10,000 x 256 B = 5 MiB of rate tables; one key holds
at most 64 records (384 KiB).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from seattle.budgets import RateTable, Source, SourceBudget, source_of
from seattle.overlay.nodeid import NodeId
from seattle.overlay.records import (
    DEFAULT_CLOCK_SKEW,
    MAX_LIFETIME,
    RecordRejected,
    VesselRecord,
    dht_key,
    verify,
)

STALE = "stale"
RATE_LIMITED = "rate_limited"

#: Bytes one held record may cost at most, everything it brings counted (checked by a tracemalloc test).
RECORD_COST = 6144
#: Bytes one rate-table entry may cost at most.
RATE_ENTRY_COST = 256
SlotId = tuple[bytes, bytes]


@dataclass(slots=True, eq=False)
class _Slot:
    key: NodeId
    slot_id: SlotId
    raw: bytes
    sequence: int
    expires: float  # the record's own expiry plus the clock skew: `get` hides it after this
    hold_until: float  # latest expiry (plus skew) of any record accepted into this slot
    source: Source
    alive: bool = True


class _Tally:
    """Counts per name, with the name holding the most found in O(1): names are kept in buckets by count,
    each in the order they reached that count."""

    __slots__ = ("buckets", "counts", "top")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.buckets: dict[int, dict[str, None]] = {}
        self.top = 0

    def increment(self, name: str) -> None:
        count = self.counts.get(name, 0)
        if count:
            self._leave(name, count)
        self.counts[name] = count + 1
        self.buckets.setdefault(count + 1, {})[name] = None
        self.top = max(self.top, count + 1)

    def decrement(self, name: str) -> None:
        count = self.counts[name]
        self._leave(name, count)
        if count > 1:
            self.counts[name] = count - 1
            self.buckets.setdefault(count - 1, {})[name] = None
        else:
            del self.counts[name]
        if self.top == count and count not in self.buckets:
            self.top = count - 1

    def most(self) -> tuple[str, int]:
        """The name holding the most (of those tied, the last to reach that count) and its count."""
        return next(reversed(self.buckets[self.top])), self.top

    def _leave(self, name: str, count: int) -> None:
        bucket = self.buckets[count]
        del bucket[name]
        if not bucket:
            del self.buckets[count]


class _Holdings:
    """The records of one key, or of the whole store, by source: counted per network and per address within
    it, each address's records oldest first. Every operation is O(1)."""

    __slots__ = ("addresses", "count", "networks", "records")

    def __init__(self) -> None:
        self.networks = _Tally()
        self.addresses: dict[str, _Tally] = {}
        self.records: dict[str, OrderedDict[int, _Slot]] = {}
        self.count = 0

    def add(self, slot: _Slot) -> None:
        source = slot.source
        self.networks.increment(source.network)
        tally = self.addresses.get(source.network)
        if tally is None:
            tally = self.addresses[source.network] = _Tally()
        tally.increment(source.address)
        self.records.setdefault(source.address, OrderedDict())[id(slot)] = slot
        self.count += 1

    def remove(self, slot: _Slot) -> None:
        source = slot.source
        self.networks.decrement(source.network)
        tally = self.addresses[source.network]
        tally.decrement(source.address)
        if not tally.counts:
            del self.addresses[source.network]
        records = self.records[source.address]
        del records[id(slot)]
        if not records:
            del self.records[source.address]
        self.count -= 1

    def touch(self, slot: _Slot) -> None:
        """`slot` got a newer record from the same source: it becomes that source's newest."""
        self.records[slot.source.address].move_to_end(id(slot))

    def held_by(self, source: Source) -> tuple[int, int]:
        """How many records `source`'s network and address hold here."""
        tally = self.addresses.get(source.network)
        return self.networks.counts.get(source.network, 0), tally.counts.get(source.address, 0) if tally else 0

    def victim(self, writer: Source) -> _Slot:
        """The record that makes way for a new one from `writer` (the module docstring's max-min rule)."""
        network_held, address_held = self.held_by(writer)
        network, most = self.networks.most()
        if most <= network_held:
            network = writer.network
        address, most = self.addresses[network].most()
        if network == writer.network and most <= address_held:
            address = writer.address
        return next(iter(self.records[address].values()))


@dataclass(slots=True)
class _Key:
    slots: dict[SlotId, _Slot] = field(default_factory=dict)
    holdings: _Holdings = field(default_factory=_Holdings)


class RecordStore:
    """Vessel records filed under DHT keys (see the module docstring). Not thread-safe: one driver owns it."""

    def __init__(
        self,
        *,
        max_records_per_key: int = 64,
        max_records: int = 4096,
        max_writes_per_source: int = 10,
        max_writes_per_network: int | None = None,
        window: float = 10.0,
        max_sources: int = 10_000,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        max_lifetime: float = MAX_LIFETIME,
    ) -> None:
        """`max_writes_per_network` defaults to 4 x `max_writes_per_source`: a /24 or /48 holds several
        donors, but not the budget of all its addresses."""
        if max_writes_per_network is None:
            max_writes_per_network = 4 * max_writes_per_source if _is_count(max_writes_per_source) else 0
        for name, value in (
            ("max_records_per_key", max_records_per_key),
            ("max_records", max_records),
            ("max_writes_per_source", max_writes_per_source),
            ("max_writes_per_network", max_writes_per_network),
            ("max_sources", max_sources),
        ):
            if not _is_count(value):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, seconds in (("window", window), ("clock_skew", clock_skew), ("max_lifetime", max_lifetime)):
            if not _is_seconds(seconds):
                raise ValueError(f"{name} must be a finite number of seconds, got {seconds!r}")
        if window <= 0 or clock_skew < 0 or max_lifetime <= 0:
            raise ValueError("window and max_lifetime must be positive and clock_skew not negative")
        self.max_records_per_key = max_records_per_key
        self.max_records = max_records
        self.clock_skew = float(clock_skew)
        self.max_lifetime = float(max_lifetime)
        self._writes = SourceBudget(RateTable(max_writes_per_source / window, max_writes_per_source, max_sources),
                                    RateTable(max_writes_per_network / window, max_writes_per_network, max_sources))
        self._keys: dict[NodeId, _Key] = {}
        self._all = _Holdings()
        #: (hold_until when pushed, tie-breaker, slot): one entry per live slot, plus those of evicted slots
        #: until they surface or the heap is compacted.
        self._expiry: list[tuple[float, int, _Slot]] = []
        self._dead = 0
        self._order = itertools.count()
        #: Records dropped to make room ("key_full", "store_full") and slots expired ("expired"): for stats.
        self.evicted: Counter[str] = Counter()
        #: Writes refused, by code ("rate_limited", "stale", and `records.verify`'s): for stats.
        self.refused: Counter[str] = Counter()

    @property
    def max_bytes(self) -> int:
        """The most memory the store's records and rate tables may take (module docstring)."""
        return self.max_records * RECORD_COST + 2 * self._writes.address.capacity * RATE_ENTRY_COST

    def __len__(self) -> int:
        """Slots held, tombstones and not-yet-forgotten superseded slots included."""
        return self._all.count

    def put(self, raw: bytes, source_ip: str, now: float) -> VesselRecord:
        """Store the record `raw` sent from `source_ip` at time `now`, or raise RecordRejected saying why
        (and count it in `refused`)."""
        source = source_of(source_ip)
        try:
            return self._put(raw, source, now)
        except RecordRejected as rejected:
            self.refused[rejected.code] += 1
            raise

    def _put(self, raw: bytes, source: Source, now: float) -> VesselRecord:
        self._admit_write(source, now)
        record = verify(raw, now, self.clock_skew, max_lifetime=self.max_lifetime)
        self._expire(now)
        key = dht_key(record.subject)
        entry = self._keys.get(key)
        slot = entry.slots.get(record.slot) if entry is not None else None
        expires = record.expires + self.clock_skew
        if entry is not None and slot is not None:
            if record.sequence <= slot.sequence:
                raise RecordRejected(
                    STALE,
                    f"this node already holds sequence {slot.sequence} from node "
                    f"{record.node.fingerprint()} for this subject; sequence {record.sequence} is not newer",
                )
            slot.raw, slot.sequence, slot.expires = raw, record.sequence, expires
            slot.hold_until = max(slot.hold_until, expires)  # the heap entry is moved when it surfaces
            if slot.source == source:
                entry.holdings.touch(slot)
                self._all.touch(slot)
            else:
                entry.holdings.remove(slot)
                self._all.remove(slot)
                slot.source = source
                entry.holdings.add(slot)
                self._all.add(slot)
            return record
        if entry is not None and len(entry.slots) >= self.max_records_per_key:
            self._evict(entry.holdings.victim(source), "key_full")
        if self._all.count >= self.max_records:
            self._evict(self._all.victim(source), "store_full")
        entry = self._keys.get(key)  # the evictions may have emptied (and dropped) the key
        if entry is None:
            entry = self._keys[key] = _Key()
        slot = _Slot(key, record.slot, raw, record.sequence, expires, expires, source)
        entry.slots[record.slot] = slot
        entry.holdings.add(slot)
        self._all.add(slot)
        heapq.heappush(self._expiry, (expires, next(self._order), slot))
        return record

    def get(self, key: NodeId, now: float) -> list[bytes]:
        """The signed records held under `key` and unexpired at `now`, tombstones included (module doc)."""
        if not isinstance(key, NodeId):
            raise TypeError(f"key must be a NodeId, not {type(key).__name__}")
        entry = self._keys.get(key)
        if entry is None:
            return []
        return [slot.raw for _, slot in sorted(entry.slots.items()) if slot.expires >= now]

    def expire(self, now: float) -> int:
        """Forget slots nothing accepted into them can still be valid for; returns how many were dropped."""
        return self._expire(now)

    def holdings(self, key: NodeId | None = None) -> dict[Source, int]:
        """How many slots each source holds under `key` (None: in the whole store), for stats and tests."""
        entry = self._keys.get(key) if key is not None else None
        held = self._all if key is None else (entry.holdings if entry is not None else _Holdings())
        return {next(iter(records.values())).source: len(records) for records in held.records.values()}

    def _expire(self, now: float) -> int:
        """Pop what lapsed before `now`: amortized O(log n) per slot ever stored."""
        dropped = 0
        heap = self._expiry
        while heap and heap[0][0] < now:
            _, _, slot = heapq.heappop(heap)
            if not slot.alive:
                self._dead -= 1
            elif slot.hold_until >= now:  # a newer record extended the slot: file it under its new time
                heapq.heappush(heap, (slot.hold_until, next(self._order), slot))
            else:
                self._drop(slot, "expired")
                dropped += 1
        return dropped

    def _evict(self, slot: _Slot, why: str) -> None:
        """Drop `slot` to make room; its heap entry stays until it surfaces or the heap is compacted."""
        self._drop(slot, why)
        self._dead += 1
        if self._dead > 64 and self._dead * 2 > len(self._expiry):
            # Evicted slots' entries outnumber the live ones: rebuild, so the heap stays O(live slots).
            self._expiry = [item for item in self._expiry if item[2].alive]
            heapq.heapify(self._expiry)
            self._dead = 0

    def _drop(self, slot: _Slot, why: str) -> None:
        entry = self._keys[slot.key]
        del entry.slots[slot.slot_id]
        entry.holdings.remove(slot)
        if not entry.slots:
            del self._keys[slot.key]
        self._all.remove(slot)
        slot.alive = False
        self.evicted[why] += 1

    def _admit_write(self, source: Source, now: float) -> None:
        """Token buckets per address and per network; a flood is refused before any signature is checked."""
        exhausted = self._writes.spend(source, now)
        if exhausted is not None:
            table = exhausted.table
            raise RecordRejected(
                RATE_LIMITED,
                f"{exhausted.key} sent more than the {table.burst} writes per {table.burst / table.rate:g} s this "
                f"node accepts from it; retry in {max(1, math.ceil(exhausted.retry_after()))} s",
            )


def _is_count(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


def _is_seconds(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
