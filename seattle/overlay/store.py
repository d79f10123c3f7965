"""The records a DHT node holds for others: verified, versioned, expiring and capped.

Sans-IO: the driver passes the time and the sender's address in, and calls `expire` now and then.

Every record is verified (`records.verify`) before it is stored, and the store keeps one record per
(subject, node): a higher sequence replaces a lower one and anything else is refused as `stale`, so a replayed
old record cannot displace the current one. A tombstone replaces a record like any newer record and is kept
until it expires, so the record it withdrew cannot be stored again meanwhile. A slot is remembered until the
latest expiry of anything accepted into it, so a superseded record that outlives its replacement still finds
its sequence refused.

`get` returns tombstones too: readers merge what several holders return (`records.merge`), and a holder that
missed a withdrawal still serves the old record; only the tombstone from another holder lets the reader drop
it, and lets a reader that cached the record forget it.

Caps, so that a flood cannot exhaust the node: at most `max_writes_per_source` writes per source address per
`window` seconds (`rate_limited`, checked before the signature so a flood costs no crypto),
`max_records_per_key` records under one DHT key, `max_keys` keys and `max_records` records in all (`full`).
At the defaults the store holds at most 20,000 records of at most 1 KB: about 20 MB of record bytes.
"""

from __future__ import annotations

import ipaddress
import math
from collections import deque
from dataclasses import dataclass

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
FULL = "full"
RATE_LIMITED = "rate_limited"


@dataclass
class _Slot:
    record: VesselRecord
    hold_until: float  # latest expiry (plus skew) of any record accepted into this slot


class RecordStore:
    """Vessel records filed under DHT keys (see the module docstring). Not thread-safe: one driver owns it."""

    def __init__(
        self,
        *,
        max_records_per_key: int = 64,
        max_keys: int = 4096,
        max_records: int = 20_000,
        max_writes_per_source: int = 10,
        window: float = 10.0,
        max_sources: int = 10_000,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        max_lifetime: float = MAX_LIFETIME,
    ) -> None:
        for name, value in (
            ("max_records_per_key", max_records_per_key),
            ("max_keys", max_keys),
            ("max_records", max_records),
            ("max_writes_per_source", max_writes_per_source),
            ("max_sources", max_sources),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, seconds in (("window", window), ("clock_skew", clock_skew), ("max_lifetime", max_lifetime)):
            if not _is_seconds(seconds):
                raise ValueError(f"{name} must be a finite number of seconds, got {seconds!r}")
        if window <= 0 or clock_skew < 0 or max_lifetime <= 0:
            raise ValueError("window and max_lifetime must be positive and clock_skew not negative")
        self.max_records_per_key = max_records_per_key
        self.max_keys = max_keys
        self.max_records = max_records
        self.max_writes_per_source = max_writes_per_source
        self.window = float(window)
        self.max_sources = max_sources
        self.clock_skew = float(clock_skew)
        self.max_lifetime = float(max_lifetime)
        self._keys: dict[NodeId, dict[tuple[bytes, bytes], _Slot]] = {}
        self._count = 0
        self._writes: dict[str, deque[float]] = {}

    def __len__(self) -> int:
        """Slots held, tombstones and not-yet-forgotten superseded slots included."""
        return self._count

    def put(self, raw: bytes, source_ip: str, now: float) -> VesselRecord:
        """Store the record `raw` sent from `source_ip` at time `now`, or raise RecordRejected saying why."""
        self._admit_write(_source(source_ip), now)
        record = verify(raw, now, self.clock_skew, max_lifetime=self.max_lifetime)
        key = dht_key(record.subject)
        slots = self._keys.get(key)
        slot = slots.get(record.slot) if slots is not None else None
        if slot is not None and slot.hold_until < now:
            self._drop(key, record.slot)
            slots, slot = self._keys.get(key), None
        hold_until = record.expires + self.clock_skew
        if slot is not None:
            if record.sequence <= slot.record.sequence:
                raise RecordRejected(
                    STALE,
                    f"this node already holds sequence {slot.record.sequence} from node "
                    f"{record.node.fingerprint()} for this subject; sequence {record.sequence} is not newer",
                )
            slot.record = record
            slot.hold_until = max(slot.hold_until, hold_until)
            return record
        self._make_room(key, now)
        slots = self._keys.get(key)
        if slots is None:
            if len(self._keys) >= self.max_keys:
                raise RecordRejected(FULL, f"this node holds records under {self.max_keys} keys already")
            slots = self._keys[key] = {}
        if len(slots) >= self.max_records_per_key:
            raise RecordRejected(
                FULL, f"this node holds {self.max_records_per_key} records under this key already"
            )
        slots[record.slot] = _Slot(record, hold_until)
        self._count += 1
        return record

    def get(self, key: NodeId, now: float) -> list[bytes]:
        """The signed records held under `key` and unexpired at `now`, tombstones included (module doc)."""
        if not isinstance(key, NodeId):
            raise TypeError(f"key must be a NodeId, not {type(key).__name__}")
        slots = self._keys.get(key, {})
        return [
            slot.record.raw
            for _, slot in sorted(slots.items())
            if slot.record.expires + self.clock_skew >= now
        ]

    def expire(self, now: float) -> int:
        """Forget slots nothing accepted into them can still be valid for, and idle sources; returns how
        many slots were dropped."""
        dropped = 0
        for key in list(self._keys):
            for slot_id, slot in list(self._keys[key].items()):
                if slot.hold_until < now:
                    self._drop(key, slot_id)
                    dropped += 1
        for source in [s for s, times in self._writes.items() if not times or times[-1] <= now - self.window]:
            del self._writes[source]
        return dropped

    def _admit_write(self, source: str, now: float) -> None:
        """A sliding window of write times per source; a flood is refused before any signature is checked."""
        times = self._writes.get(source)
        if times is None:
            if len(self._writes) >= self.max_sources:
                self.expire(now)
            if len(self._writes) >= self.max_sources:
                raise RecordRejected(
                    RATE_LIMITED, f"this node is tracking writes from {self.max_sources} sources; retry later"
                )
            times = self._writes[source] = deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.max_writes_per_source:
            wait = max(1, math.ceil(times[0] + self.window - now))
            raise RecordRejected(
                RATE_LIMITED,
                f"{source} sent {len(times)} writes in the last {self.window:g} s, "
                f"the most this node accepts; retry in {wait} s",
            )
        times.append(now)

    def _make_room(self, key: NodeId, now: float) -> None:
        """Before refusing as full, drop what has lapsed: under the key, then (if the store is full) all."""
        for slot_id, slot in list(self._keys.get(key, {}).items()):
            if slot.hold_until < now:
                self._drop(key, slot_id)
        if self._count >= self.max_records:
            self.expire(now)
            if self._count >= self.max_records:
                raise RecordRejected(FULL, f"this node holds {self.max_records} records already")

    def _drop(self, key: NodeId, slot_id: tuple[bytes, bytes]) -> None:
        slots = self._keys[key]
        del slots[slot_id]
        self._count -= 1
        if not slots:
            del self._keys[key]


def _is_seconds(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _source(source_ip: str) -> str:
    """The canonical text of an IP address, so '::FFFF:1.2.3.4'-style spellings share one budget."""
    try:
        return str(ipaddress.ip_address(source_ip))
    except ValueError:
        raise ValueError(f"source_ip must be an IP address literal, got {source_ip!r:.80}") from None
