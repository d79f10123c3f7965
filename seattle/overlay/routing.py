"""The Kademlia routing table: k-buckets that split around our own id, with the defences a public DHT needs.

Sans-IO: the table never sends anything and has no clock. The transport calls `observe()` for a contact that
has proved it holds the key behind its id, and `record_failure()` when a request to it went unanswered; `now`
is passed in so the simulator and real nodes share this code.

Why each rule:
* Only the bucket whose range holds our own id splits (paper §2.4), so the table stays O(k log n) and knows
  our neighbourhood densely and distant parts sparsely.
* A full bucket keeps its long-lived contacts and parks newcomers in a replacement cache (paper §4.1): nodes
  that have been up longest are likeliest to stay up, and an attacker cannot flush a bucket by flooding it.
* A contact is dropped only after `max_failures` consecutive missed replies, because UDP loses packets and one
  lost reply should not evict a good peer; its slot goes to the most recently seen replacement.
* At most `max_per_subnet` contacts of one bucket share a /24 (IPv4) or /48 (IPv6), so one operator cannot
  own a bucket with many ids from one address block (a /64 is one IPv6 host: the /48 is the network).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from seattle.overlay.nodeid import ID_BITS, Contact, NodeId

FORMAT = "seattle-routing-v1"


class Observed(Enum):
    """What `observe()` did with a contact, so callers (and tests) can tell a refresh from an insert."""

    ADDED = "added"
    REFRESHED = "refreshed"
    CACHED = "cached"
    SUBNET_FULL = "subnet-full"


@dataclass(slots=True)
class _Entry:
    contact: Contact
    last_seen: float
    failures: int = 0


@dataclass(slots=True)
class Bucket:
    """Contacts whose ids lie in [low, high); `entries` least recently seen first (eviction order).

    Entries and replacements are keyed by the id's int value (`NodeId.value`): ints hash and compare in C, and
    `closest` ranks a bucket by XOR-ing those keys alone.
    """

    low: int
    high: int
    entries: dict[int, _Entry] = field(default_factory=dict)
    replacements: dict[int, _Entry] = field(default_factory=dict)
    # Entries per /24 or /48, kept in step with `entries` by insert()/remove() so the limit check is O(1).
    subnets: Counter[bytes] = field(default_factory=Counter)

    def insert(self, entry: _Entry) -> None:
        """Append `entry` as the most recently seen contact."""
        self.entries[entry.contact.node_id.value] = entry
        self.subnets[entry.contact.subnet_key] += 1

    def remove(self, node_id: NodeId) -> _Entry | None:
        entry = self.entries.pop(node_id.value, None)
        if entry is not None:
            self.subnets[entry.contact.subnet_key] -= 1
        return entry

    def covers(self, node_id: NodeId) -> bool:
        return self.low <= node_id.value < self.high

    def contacts(self) -> list[Contact]:
        return [entry.contact for entry in self.entries.values()]

    def subnet_count(self, contact: Contact) -> int:
        return self.subnets[contact.subnet_key]


class RoutingTable:
    """k-buckets around `own_id`; see the module docstring for the rules and why."""

    def __init__(
        self,
        own_id: NodeId,
        k: int = 20,
        max_failures: int = 3,
        max_per_subnet: int = 2,
        replacement_size: int | None = None,
    ) -> None:
        for name, value in (("k", k), ("max_failures", max_failures), ("max_per_subnet", max_per_subnet)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"routing table {name} must be a positive int, got {value!r}")
        if replacement_size is None:
            replacement_size = k
        if (
            isinstance(replacement_size, bool)
            or not isinstance(replacement_size, int)
            or replacement_size < 0
        ):
            raise ValueError(f"routing table replacement_size must be an int >= 0, got {replacement_size!r}")
        if not isinstance(own_id, NodeId):
            raise TypeError(f"routing table own_id must be a NodeId, got {type(own_id).__name__}")
        self.own_id = own_id
        self.k = k
        self.max_failures = max_failures
        self.max_per_subnet = max_per_subnet
        self.replacement_size = replacement_size
        self.buckets: list[Bucket] = [Bucket(0, 1 << ID_BITS)]
        self._lows: list[int] = [0]  # each bucket's `low`, in step with `buckets`, for bisecting

    def __len__(self) -> int:
        return sum(len(bucket.entries) for bucket in self.buckets)

    def __contains__(self, node_id: object) -> bool:
        return isinstance(node_id, NodeId) and node_id.value in self.bucket_for(node_id).entries

    def __iter__(self) -> Iterator[Contact]:
        for bucket in self.buckets:
            yield from bucket.contacts()

    def bucket_for(self, node_id: NodeId) -> Bucket:
        """The bucket whose range holds `node_id` (buckets tile the keyspace, sorted by `low`)."""
        return self.buckets[bisect.bisect_right(self._lows, node_id.value) - 1]

    def observe(self, contact: Contact, now: float) -> Observed:
        """Note that `contact` answered us or contacted us, after it proved it holds its id's key."""
        if contact.node_id.value == self.own_id.value:
            raise ValueError("routing table refuses our own id as a contact")
        while True:
            bucket = self.bucket_for(contact.node_id)
            known = bucket.entries.get(contact.node_id.value)
            if known is not None:
                return self._refresh(bucket, known, contact, now)
            if len(bucket.entries) >= self.k and bucket.covers(self.own_id):
                # Splitting ends: the half holding our id shrinks until the newcomer lands in the other half.
                self._split(bucket)
                continue
            if bucket.subnet_count(contact) >= self.max_per_subnet:
                return Observed.SUBNET_FULL
            if len(bucket.entries) < self.k:
                bucket.replacements.pop(contact.node_id.value, None)
                bucket.insert(_Entry(contact, now))
                return Observed.ADDED
            self._cache(bucket, _Entry(contact, now))
            return Observed.CACHED

    def has_room_for(self, contact: Contact) -> bool:
        """Whether `observe(contact)` would put a new contact into its bucket (not only into the replacement
        cache, nor refuse it for its subnet). Changes nothing: the engine asks before spending a verification
        ping on a requester the table would not take anyway."""
        bucket = self.bucket_for(contact.node_id)
        if contact.node_id.value in bucket.entries:
            return True
        if len(bucket.entries) >= self.k:
            return bucket.covers(self.own_id)  # it splits, and the subnet limit is judged in the halves
        return bucket.subnet_count(contact) < self.max_per_subnet

    def record_failure(self, node_id: NodeId, now: float) -> bool:
        """Count a missed reply; drop the contact after `max_failures` in a row. Returns True if dropped.

        A dropped contact's slot goes to the freshest replacement that fits the subnet limit. A replacement
        that misses a reply is forgotten at once: it has no standing yet. `now` is unused by the rule but
        kept so every table mutation is time-stamped by the caller, as `observe()` is.
        """
        del now
        bucket = self.bucket_for(node_id)
        if bucket.replacements.pop(node_id.value, None) is not None:
            return True
        entry = bucket.entries.get(node_id.value)
        if entry is None:
            return False
        entry.failures += 1
        if entry.failures < self.max_failures:
            return False
        bucket.remove(node_id)
        self._promote(bucket)
        return True

    def closest(self, target: NodeId, count: int | None = None) -> list[Contact]:
        """Up to `count` (default k) contacts nearest `target` by XOR, nearest first."""
        if count is None:
            count = self.k
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"closest() count must be an int >= 0, got {count!r}")
        value = target.value
        # Buckets are keyed by id values, and XOR with the target is its own inverse, so a bucket is ranked by
        # sorting plain ints (distances) and its contacts are found again under `distance ^ value`.
        xor = value.__xor__  # maps a key to its distance and back, in C when given to `map`
        nearest = self.bucket_for(target)
        if len(nearest.entries) >= count:  # the usual case for a target far from our own id
            entries = nearest.entries
            return [entries[key].contact for key in map(xor, sorted(map(xor, entries))[:count])]
        # A bucket is an aligned power-of-two range, so its ids' distances to `target` fill an aligned range
        # of the same size, and no two buckets' distance ranges overlap: ordering buckets by the distance of
        # any one id in each (`low`) orders all their ids. So visit buckets in that order and stop once
        # `count` are collected: only those buckets are sorted.
        found: list[Contact] = []
        lows, buckets = self._lows, self.buckets
        for low in map(xor, sorted(map(xor, lows))):
            room = count - len(found)
            if room <= 0:
                break
            entries = buckets[bisect.bisect_left(lows, low)].entries
            found += [entries[key].contact for key in map(xor, sorted(map(xor, entries))[:room])]
        return found

    def replacements(self) -> list[Contact]:
        return [entry.contact for bucket in self.buckets for entry in bucket.replacements.values()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state, so a restarted node can rejoin through its old contacts, without a bootstrap."""

        def dump(entries: Iterable[_Entry]) -> list[dict[str, Any]]:
            return [
                {
                    "id": e.contact.node_id.hex(),
                    "host": e.contact.host,
                    "port": e.contact.port,
                    "seen": e.last_seen,
                }
                for e in entries
            ]

        return {
            "format": FORMAT,
            "own_id": self.own_id.hex(),
            "k": self.k,
            "max_failures": self.max_failures,
            "max_per_subnet": self.max_per_subnet,
            "replacement_size": self.replacement_size,
            "contacts": dump(e for b in self.buckets for e in b.entries.values()),
            "replacements": dump(e for b in self.buckets for e in b.replacements.values()),
        }

    @classmethod
    def from_dict(cls, data: Any) -> RoutingTable:
        """Rebuild a table from `to_dict()` output; raises ValueError naming the first field that is wrong.

        Contacts are re-inserted oldest first, so buckets split as they did and keep their eviction order;
        failure counts are not kept because the restart itself is a fresh chance for every contact.
        """
        if not isinstance(data, dict):
            raise ValueError(f"routing table state must be a dict, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise ValueError(f"routing table state has format {data.get('format')!r}, expected {FORMAT!r}")
        for key in (
            "own_id",
            "k",
            "max_failures",
            "max_per_subnet",
            "replacement_size",
            "contacts",
            "replacements",
        ):
            if key not in data:
                raise ValueError(f"routing table state lacks {key!r}")
        table = cls(
            NodeId.from_hex(data["own_id"]),
            k=data["k"],
            max_failures=data["max_failures"],
            max_per_subnet=data["max_per_subnet"],
            replacement_size=data["replacement_size"],
        )
        contacts = _load_entries(data["contacts"], "contacts")
        for entry in sorted(contacts, key=lambda e: e.last_seen):
            table.observe(entry.contact, entry.last_seen)
        for entry in sorted(_load_entries(data["replacements"], "replacements"), key=lambda e: e.last_seen):
            bucket = table.bucket_for(entry.contact.node_id)
            if bucket.covers(table.own_id) or len(bucket.entries) < table.k:
                table.observe(entry.contact, entry.last_seen)
            elif entry.contact.node_id.value not in bucket.entries:
                table._cache(bucket, entry)
        return table

    def _refresh(self, bucket: Bucket, known: _Entry, contact: Contact, now: float) -> Observed:
        """Move a known contact to the most-recent end, its failures forgiven; accept a new address only
        within the subnet limit. The same address (the usual case) leaves the subnet counts as they are."""
        value = contact.node_id.value
        if contact is known.contact or contact == known.contact:
            del bucket.entries[value]
            known.last_seen, known.failures = max(now, known.last_seen), 0
            bucket.entries[value] = known
            return Observed.REFRESHED
        bucket.remove(contact.node_id)
        if bucket.subnet_count(contact) >= self.max_per_subnet:
            contact = known.contact
        bucket.insert(_Entry(contact, max(now, known.last_seen)))
        return Observed.REFRESHED

    def _cache(self, bucket: Bucket, entry: _Entry) -> None:
        """Keep `entry` as a replacement, newest last, forgetting the oldest beyond `replacement_size`."""
        value = entry.contact.node_id.value
        bucket.replacements.pop(value, None)
        bucket.replacements[value] = entry
        while len(bucket.replacements) > self.replacement_size:
            del bucket.replacements[next(iter(bucket.replacements))]

    def _promote(self, bucket: Bucket) -> None:
        """Fill a freed slot with the most recently seen replacement that respects the subnet limit."""
        for value in reversed(list(bucket.replacements)):
            entry = bucket.replacements[value]
            if bucket.subnet_count(entry.contact) < self.max_per_subnet:
                del bucket.replacements[value]
                entry.failures = 0
                bucket.insert(entry)
                return

    def _split(self, bucket: Bucket) -> None:
        """Halve `bucket`, keeping each half's eviction order.

        Only the bucket holding our own id splits, and that bucket never caches replacements (it splits
        instead), so there is no replacement cache to divide.
        """
        middle = (bucket.low + bucket.high) // 2
        lower, upper = Bucket(bucket.low, middle), Bucket(middle, bucket.high)
        for value, entry in bucket.entries.items():
            (lower if value < middle else upper).entries[value] = entry
        for half in (lower, upper):  # counted in one pass each (Counter counts an iterable in C)
            half.subnets.update(entry.contact.subnet_key for entry in half.entries.values())
        index = self.buckets.index(bucket)
        self.buckets[index : index + 1] = [lower, upper]
        self._lows.insert(index + 1, middle)


def _load_entries(raw: Any, name: str) -> list[_Entry]:
    if not isinstance(raw, list):
        raise ValueError(f"routing table state {name!r} must be a list, got {type(raw).__name__}")
    entries = []
    for position, item in enumerate(raw):
        where = f"routing table state {name}[{position}]"
        if not isinstance(item, dict) or set(item) != {"id", "host", "port", "seen"}:
            raise ValueError(f"{where} must be a dict with keys id, host, port, seen; got {item!r:.120}")
        seen = item["seen"]
        if isinstance(seen, bool) or not isinstance(seen, int | float):
            raise ValueError(f"{where} 'seen' must be a number, got {seen!r}")
        try:
            contact = Contact(NodeId.from_hex(item["id"]), item["host"], item["port"])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from None
        entries.append(_Entry(contact, float(seen)))
    return entries
