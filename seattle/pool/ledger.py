"""The lease ledger: which pool vessel is leased to whom until when, kept so a crash loses no lease and never
leases a vessel twice.

Sans-IO: the caller passes the time in, and what the overlay says (`OverlayView`: the leases found under the
slot's key, the attestations under the caller's credit key, the evidence the nodes found there served). Every
change is handed to `persist` (the node writes it atomically to its directory) *before* the method returns, so
the node answers only with leases it will still know after a crash. The node's side effects follow the
ledger, never lead it:

    acquire   ledger records the lease → node makes the key the vessel's user → answers with the Lease
    release   ledger marks the vessel ending → node stops it, wipes it, removes the user → `finish`
    expire    same as release, for every lease past its expiry (and `evict`, the donor's)

so after a crash `leases()` says which key each leased vessel must have as its user, and `ending()` which
vessels still need their reset: the node redoes both on start. A vessel is leased only when it is free in the
ledger (not leased, not ending), and each method runs to completion before the next starts (the node calls
them one at a time), so concurrent acquires of one vessel or one slot are serialized here.

Checks of an acquire, in order (codes in `seattle.pool.refusals`): node draining, key blocked by the donor,
key banned (evidence), the per-network request budget (`admit`, before the overlay is asked anything), evidence
against the key in the overlay view, the quota (slot < Q), the slot held live here or at another node, the
per-key cap on this node, a free vessel.

Evidence. Two live, overlapping leases of one slot by two nodes convict the key (`formats.Evidence`). The
ledger keeps what it found itself (the view's leases with its own) and what other nodes showed it (the view's
evidence, verified by whoever built the view), bans the key until `evidence.until`, and gives the
MAX_SERVED_EVIDENCE latest-ending items to serve (`served_evidence`); of those, the ones it found itself are
the ones the node files under `evidence_subjects`, so every node later asked for any slot of the key finds it.
Only finders file: a key banned at a thousand nodes is filed by the few that saw the two leases, not by all.
At most MAX_KEPT_EVIDENCE items (and bans) are kept, the latest-ending: forged evidence costs its forger two
node keys and its own key's ban, but it must not grow a node's memory (or its ledger file) either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import msgpack

from seattle.boundedmsgpack import Limits, unpack
from seattle.budgets import RateTable, Source, SourceBudget
from seattle.keys import Identity, PublicKey
from seattle.pool import refusals
from seattle.pool.formats import DEFAULT_LEASE, MAX_LEASE_AGE, Attestation, Evidence, Lease, PoolRejected, quota

LEDGER_FORMAT = "seattle-pool-ledger-v1"
#: Leases of one key on one node: a flood of acquires from one key gets at most this many vessels here.
DEFAULT_PER_KEY = 2
#: Acquire requests per network (/24, /48) and per address: a burst, then one every 30 s (one per 10 s).
NETWORK_RATE, NETWORK_BURST = 1 / 30, 4
ADDRESS_RATE, ADDRESS_BURST = 1 / 10, 4
_BUDGET_SOURCES = 10_000
#: Evidence items a node serves in GetPoolStatus (and files, of those it found itself): bounded answers.
MAX_SERVED_EVIDENCE = 16
#: Evidence items a node keeps (and persists) at most, the latest-ending first.
MAX_KEPT_EVIDENCE = 256
#: The persisted ledger is the node's own file, but bounded all the same: a pool of at most 4096 vessels.
_STATE_LIMITS = Limits(max_objects=64 * 1024, max_depth=5, max_str=4096, max_bin=4096, max_array=8192,
                       max_map=8192)


@dataclass(frozen=True)
class LedgerLimits:
    per_key: int = DEFAULT_PER_KEY
    #: The longest a grant or a renewal runs (the original's 4 h), and the longest a lease lives in all.
    lease: float = DEFAULT_LEASE
    max_age: float = MAX_LEASE_AGE


@dataclass(frozen=True)
class OverlayView:
    """What the overlay says at the time of a call: verified leases found under `slot_key(key, slot)` for the
    slots looked up (by slot), the verified attestations found under `credit_key(key)` (empty when not looked
    up: the quota is then BASE_QUOTA, all a slot below it needs), and the verified evidence the nodes found
    under those keys served."""

    slot_leases: dict[int, list[Lease]] = field(default_factory=dict)
    attestations: list[Attestation] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)


@dataclass(frozen=True)
class Entry:
    """One lease the node granted. `ending`: released, expired or evicted, and not yet reset."""

    vessel: str
    lessee: PublicKey
    slot: int
    first_issued: float
    expires: float
    max_expiry: float
    request: bytes
    lease: bytes
    ending: bool = False


class Ledger:
    """The node's leases of its pool vessels (module docstring). Not thread-safe: one call at a time."""

    def __init__(self, identity: Identity, vessels: Sequence[str], persist: Callable[[bytes], None], *,
                 saved: bytes | None = None, limits: LedgerLimits = LedgerLimits()) -> None:
        self.identity = identity
        self.vessels = tuple(vessels)
        self.limits = limits
        self.draining = False
        self._persist = persist
        self._entries: dict[str, Entry] = {}
        self._blocked: dict[bytes, float] = {}
        self._banned: dict[bytes, float] = {}
        #: Evidence by convicted key, and whether this node found it itself (then it files it).
        self._evidence: dict[bytes, tuple[Evidence, bool]] = {}
        self.budget = SourceBudget(RateTable(ADDRESS_RATE, ADDRESS_BURST, _BUDGET_SOURCES),
                                   RateTable(NETWORK_RATE, NETWORK_BURST, _BUDGET_SOURCES))
        if saved is not None:
            self._load(saved)

    # -- reading ----------------------------------------------------------------------------------------

    def leases(self) -> list[Entry]:
        """Live leases (not ending), by vessel name: each vessel's user must be its lessee."""
        return sorted((e for e in self._entries.values() if not e.ending), key=lambda e: e.vessel)

    def ending(self) -> list[str]:
        """Vessels whose lease ended and whose reset is not yet finished (redo on start)."""
        return sorted(e.vessel for e in self._entries.values() if e.ending)

    def entry(self, vessel: str) -> Entry | None:
        return self._entries.get(vessel)

    def free(self) -> list[str]:
        return [name for name in self.vessels if name not in self._entries]

    def held_by(self, key: PublicKey) -> list[Entry]:
        return [e for e in self.leases() if e.lessee == key]

    def next_expiry(self) -> float | None:
        """When the next live lease ends: when the node must next call `expire`."""
        return min((e.expires for e in self.leases()), default=None)

    def refusal_for(self, key: PublicKey, now: float) -> refusals.LeaseRefused | None:
        """Why `key` gets nothing from this node now (draining, blocked, banned), or None."""
        if self.draining:
            return refusals.draining()
        blocked = self._blocked.get(key.raw, 0.0)
        if blocked > now:
            return refusals.blocked(key, blocked)
        banned = self._banned.get(key.raw, 0.0)
        if banned > now:
            return refusals.banned(key, banned)
        return None

    # -- acquiring --------------------------------------------------------------------------------------

    def admit(self, key: PublicKey, source: Source | None, now: float) -> None:
        """The cheap checks before the overlay is asked anything: LeaseRefused if `key` is refused here or
        `source`'s network and address have spent their acquire budget (a Unix-socket caller has none)."""
        refusal = self.refusal_for(key, now)
        if refusal is not None:
            raise refusal
        if source is not None:
            exhausted = self.budget.spend(source, now)
            if exhausted is not None:
                raise refusals.rate_limited(source.network, exhausted.retry_after())

    def acquire(self, key: PublicKey, slot: int, duration: float, request: bytes, view: OverlayView,
                now: float) -> Lease:
        """Lease a free pool vessel to `key` in its slot `slot` for up to `duration` seconds, or LeaseRefused.
        `request` is the key's signed AcquireVessel, as received; it goes into the lease as evidence."""
        refusal = self.refusal_for(key, now)
        if refusal is not None:
            raise refusal
        for shown in view.evidence:
            if shown.lessee == key and shown.until > now:
                self.note_evidence(shown, now, found_here=False)
                raise refusals.banned(key, shown.until)
        found = [lease for leases in view.slot_leases.values() for lease in leases
                 if lease.lessee == key and lease.node != self.identity.public_key]
        mine = [Lease.verify_signed(e.lease, self.identity.public_key) for e in self._entries.values()
                if e.lessee == key]
        evidence = Evidence.find([*found, *mine])
        if evidence is not None:
            self.note_evidence(evidence, now, found_here=True)
            raise refusals.banned(key, evidence.until)
        limit = quota(key, view.attestations, now)
        holders = {s: [lease for lease in found if lease.slot == s and lease.expires > now]
                   for s in view.slot_leases}
        for entry in self.held_by(key):
            holders.setdefault(entry.slot, []).append(Lease.verify_signed(entry.lease, None))
        used = sum(1 for s, held in holders.items() if held and s < limit)
        if slot >= limit:
            raise refusals.beyond_quota(used, limit, slot)
        if holders.get(slot):
            holder = max(holders[slot], key=lambda lease: lease.expires)
            raise refusals.slot_taken(used, limit, slot, holder.node, holder.expires)
        held_here = len(self.held_by(key))
        if held_here >= self.limits.per_key:
            raise refusals.key_cap(held_here, self.limits.per_key)
        free = self.free()
        if not free:
            raise refusals.pool_empty(len(self.vessels), self.next_expiry())
        max_expiry = now + self.limits.max_age
        expires = min(now + min(duration, self.limits.lease), max_expiry)
        raw = Lease.sign(self.identity, vessel=free[0], lessee=key, slot=slot, issued=now, expires=expires,
                         max_expiry=max_expiry, request=request)
        self._entries[free[0]] = Entry(free[0], key, slot, now, expires, max_expiry, request, raw)
        self._save()
        return Lease.verify_signed(raw, self.identity.public_key)

    # -- renewing and ending ----------------------------------------------------------------------------

    def renew(self, key: PublicKey, vessel: str, duration: float, attestations: Iterable[Attestation],
              now: float) -> Lease:
        """Extend `key`'s lease of `vessel` by up to `duration` (never past its maximum age), or LeaseRefused:
        also when the key's slot is now beyond its quota (a donation it counted on lapsed)."""
        entry = self._live(key, vessel)
        refusal = self.refusal_for(key, now)
        if refusal is not None and refusal.code != refusals.NODE_DRAINING:
            raise refusal
        if entry.expires >= entry.max_expiry:
            raise refusals.max_age(vessel, entry.max_expiry)
        if entry.expires <= now:
            raise refusals.lease_expired(vessel, entry.expires)
        limit = quota(key, attestations, now)
        if entry.slot >= limit:
            raise refusals.beyond_quota(len(self.held_by(key)), limit, entry.slot)
        expires = min(now + min(duration, self.limits.lease), entry.max_expiry)
        expires = max(expires, entry.expires)
        raw = Lease.sign(self.identity, vessel=vessel, lessee=key, slot=entry.slot, issued=now, expires=expires,
                         max_expiry=entry.max_expiry, request=entry.request)
        self._entries[vessel] = replace(entry, expires=expires, lease=raw)
        self._save()
        return Lease.verify_signed(raw, self.identity.public_key)

    def release(self, key: PublicKey, vessel: str) -> Entry:
        """End `key`'s lease of `vessel`: it is ending until the node calls `finish` after the reset."""
        return self._end(self._live(key, vessel))

    def evict(self, vessel: str) -> Entry:
        """The donor ends whatever lease `vessel` has."""
        entry = self._entries.get(vessel)
        if entry is None or entry.ending:
            raise refusals.not_leased(vessel) if vessel in self.vessels else refusals.not_pool_vessel(vessel)
        return self._end(entry)

    def expire(self, now: float) -> list[Entry]:
        """End every live lease whose expiry has passed; the node resets what is returned."""
        lapsed = [e for e in self.leases() if e.expires <= now]
        for entry in lapsed:
            self._entries[entry.vessel] = replace(entry, ending=True)
        if lapsed:
            self._save()
        return lapsed

    def finish(self, vessel: str) -> None:
        """The node has reset `vessel` (no program, file, log or user of the lessee): it is free again."""
        entry = self._entries.get(vessel)
        if entry is not None and entry.ending:
            del self._entries[vessel]
            self._save()

    # -- the donor's and the network's sanctions -----------------------------------------------------------

    def block(self, key: PublicKey, until: float) -> None:
        self._blocked[key.raw] = until
        self._save()

    def note_evidence(self, evidence: Evidence, now: float, *, found_here: bool) -> None:
        """Refuse the key the evidence convicts until `evidence.until`, and keep the evidence to serve (and,
        `found_here`: found by this node itself, to file). Past MAX_KEPT_EVIDENCE the earliest-ending goes."""
        key = evidence.lessee.raw
        held = self._evidence.get(key)
        kept = evidence if held is None or held[0].until < evidence.until else held[0]
        kept_here = found_here or (held is not None and held[1])
        if held == (kept, kept_here):
            return
        self._evidence[key] = (kept, kept_here)
        self._banned[key] = max(self._banned.get(key, 0.0), evidence.until)
        live = sorted(((e, here) for e, here in self._evidence.values() if e.until > now),
                      key=lambda item: item[0].until, reverse=True)[:MAX_KEPT_EVIDENCE]
        self._evidence = {e.lessee.raw: (e, here) for e, here in live}
        bans = sorted(((k, t) for k, t in self._banned.items() if t > now), key=lambda item: item[1], reverse=True)
        self._banned = dict(bans[:MAX_KEPT_EVIDENCE])
        self._save()

    def served_evidence(self, now: float) -> list[Evidence]:
        """The evidence this node shows in GetPoolStatus: the MAX_SERVED_EVIDENCE live items ending last."""
        return [e for e, _ in self._served(now)]

    def filed_evidence(self, now: float) -> list[Evidence]:
        """Of the served evidence, what this node found itself: it files itself under their subjects."""
        return [e for e, here in self._served(now) if here]

    # -- internals --------------------------------------------------------------------------------------

    def _served(self, now: float) -> list[tuple[Evidence, bool]]:
        live = [item for item in self._evidence.values() if item[0].until > now]
        return sorted(live, key=lambda item: item[0].until, reverse=True)[:MAX_SERVED_EVIDENCE]

    def _live(self, key: PublicKey, vessel: str) -> Entry:
        if vessel not in self.vessels:
            raise refusals.not_pool_vessel(vessel)
        entry = self._entries.get(vessel)
        if entry is None or entry.ending or entry.lessee != key:
            raise refusals.not_lessee(vessel)
        return entry

    def _end(self, entry: Entry) -> Entry:
        ended = replace(entry, ending=True)
        self._entries[entry.vessel] = ended
        self._save()
        return ended

    def snapshot(self) -> bytes:
        state: dict[str, Any] = {
            "format": LEDGER_FORMAT,
            "leases": [[e.vessel, e.lessee.raw, e.slot, e.first_issued, e.expires, e.max_expiry, e.request,
                        e.lease, e.ending] for e in self._entries.values()],
            "blocked": [[k, t] for k, t in self._blocked.items()],
            "banned": [[k, t] for k, t in self._banned.items()],
            "evidence": [[*e.raw, here] for e, here in self._evidence.values()],
        }
        return bytes(msgpack.packb(state, use_bin_type=True))

    def _save(self) -> None:
        self._persist(self.snapshot())

    def _load(self, saved: bytes) -> None:
        try:
            state = unpack(saved, _STATE_LIMITS)
            if not isinstance(state, dict) or state.get("format") != LEDGER_FORMAT:
                raise ValueError(f"not a {LEDGER_FORMAT} file")
            for vessel, lessee, slot, first, expires, max_expiry, request, lease, ending in state["leases"]:
                self._entries[vessel] = Entry(vessel, PublicKey(lessee), slot, first, expires, max_expiry,
                                              request, lease, bool(ending))
            self._blocked = {bytes(k): float(t) for k, t in state["blocked"]}
            self._banned = {bytes(k): float(t) for k, t in state["banned"]}
            # A ledger written before evidence was kept holds none: its bans are in "banned".
            for first, second, here in state.get("evidence", ()):
                evidence = Evidence.verify(first, second)
                self._evidence[evidence.lessee.raw] = (evidence, bool(here))
        except PoolRejected as exc:
            raise ValueError(f"the pool ledger holds evidence that does not verify: {exc.message}") from None
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"the pool ledger cannot be read: {exc}") from None
