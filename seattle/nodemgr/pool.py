"""The node's pool: its pool vessels (those owned by the node's own key), leased through the lease ledger.

    pool = NodePool(identity, state, NodeDir(node_dir))    # recovers: finishes resets, restores lessees
    lease = await pool.acquire(caller, slot, duration, request_bytes, source)
    await pool.end(vessel, stop)                            # release, expiry, eviction: stop, wipe, free

The ledger (`seattle.pool.ledger`) decides and persists first; this module then does what the decision says to
the node's vessels, so a kill between the two is repaired by `recover` on the next start: every vessel the
ledger says is ending is wiped and freed, every leased vessel gets its lessee as its only user, and every other
pool vessel with a user is wiped (a stray user is never left behind).

What the overlay says reaches the ledger through a `PoolDirectory` (the leases found under a slot's key, the
attestations under a key's credit key, and the evidence against the key that the nodes found there serve;
`seattle.nodemgr.pool_directory` asks the overlay). `NoDirectory` is the directory of a node without the
overlay: it finds nothing, so only this node's own ledger limits a key.

What an acquire looks up: always the slot's key (leases of that slot elsewhere, evidence against the key);
the key's credit only for a slot at or beyond BASE_QUOTA (a slot below is within quota whatever the credit),
and then from the `CreditCache` when it was looked up in the last minutes. A renewal looks credit up afresh,
and only for a slot at or beyond BASE_QUOTA. Evidence is found either way: a node holding it files itself
under every slot key below BASE_QUOTA and the credit key (`formats.evidence_subjects`).

What the node announces: `subjects()` are the keys its advertiser files a record under for the pool (the
offer's shard while a vessel is free and the node is not stopping, each live lease's slot key, the
beneficiary's credit key, the evidence subjects of each key it found evidence against), and `offer()`,
`attestation()` and `GetPoolStatus`'s leases and evidence are the signed objects a reader fetches from the
node those records point to and verifies itself. `withdrawn()` is what a stopping node takes back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from seattle.budgets import Source
from seattle.keys import Identity, PublicKey
from seattle.nodemgr.nodedir import NodeDir
from seattle.nodemgr.nodeerror import NodeError
from seattle.nodemgr.vessels import NodeState
from seattle.overlay.reachability import State
from seattle.pool import refusals
from seattle.pool.credit import CreditCache
from seattle.pool.formats import (
    BASE_QUOTA,
    MAX_ADDRESSES,
    Attestation,
    Evidence,
    Lease,
    Offer,
    credit_key,
    evidence_subjects,
    offer_key,
    offer_shard,
    slot_key,
)
from seattle.pool.ledger import Entry, Ledger, LedgerLimits, OverlayView

log = logging.getLogger(__name__)

#: The offer and attestation are signed again after this long (their lifetime is hours).
RESIGN_AFTER = 60.0
#: Reachabilities of a node nobody can dial: its offer names no address.
BEHIND = (State.NAT.value, State.FIREWALLED.value)

#: Stops a running vessel (the node API's, under its lifecycle lock); False if it would not stop.
Stop = Callable[[str], Awaitable[bool]]


@dataclass
class Findings:
    """What one lookup found, all verified: leases of the slot, attestations naming the key, and evidence
    against the key (two leases of one of its slots by two nodes)."""

    leases: list[Lease] = field(default_factory=list)
    attestations: list[Attestation] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)


class PoolDirectory(Protocol):
    """The overlay as the pool sees it (a simulation or a test can drive its own)."""

    async def slot(self, lessee: PublicKey, slot: int) -> Findings:
        """The live leases other nodes filed under `slot_key(lessee, slot)`, and the evidence against `lessee`
        the nodes filed there serve."""

    async def credit(self, beneficiary: PublicKey) -> Findings:
        """The live attestations filed under `credit_key(beneficiary)`, and the evidence against
        `beneficiary` the nodes filed there serve."""


class NoDirectory:
    """A node without the overlay: nothing is found and nothing is filed."""

    async def slot(self, lessee: PublicKey, slot: int) -> Findings:
        return Findings()

    async def credit(self, beneficiary: PublicKey) -> Findings:
        return Findings()


class NodePool:
    """The pool of one node (module docstring). Calls run one at a time under `lock`."""

    def __init__(self, identity: Identity, state: NodeState, node_dir: NodeDir, *,
                 directory: PoolDirectory | None = None, limits: LedgerLimits | None = None,
                 clock: Callable[[], float] = time.time, beneficiary: PublicKey | None = None,
                 country: str = "", addresses: Callable[[], list[str]] = list,
                 reachability: Callable[[], str] = lambda: "unknown") -> None:
        self.identity = identity
        self.state = state
        self.directory: PoolDirectory = directory or NoDirectory()
        self.clock = clock
        #: The researcher key this donor's node earns credit for (an attestation under its credit key).
        self.beneficiary = beneficiary
        self.country = country
        self.addresses = addresses
        #: This node's reachability ("public", "nat", ...: the overlay's measure, or "nat" for a node told it
        #: needs a relay): what its offer says, and whether the offer may name addresses (BEHIND: none).
        self.reachability = reachability
        #: Since when this node manager has been up: what its attestation and offer say.
        self.started = clock()
        #: Grows with every change of what `subjects()` gives: the advertiser re-reads it when it moves.
        self.version = 0
        self._signed: dict[str, tuple[float, bytes]] = {}
        #: Attestations looked up per key, reused for a few minutes by acquires (`seattle.pool.credit`).
        self.credit_cache = CreditCache()
        #: The keys whose evidence this node files, as `run` last saw them: it bumps `version` when they change.
        self._filed: frozenset[bytes] = frozenset()
        self.lock = trio.Lock()
        #: Set when a lease is granted or renewed: `run` then recomputes when the next one ends.
        self._changed = trio.Event()
        vessels = [v.name for v in state.get_vessels() if v.owner == identity.public_key.raw]
        try:
            self.ledger = Ledger(identity, vessels, node_dir.write_pool, saved=node_dir.read_pool(),
                                 limits=limits or LedgerLimits())
        except ValueError as exc:
            raise NodeError("bad_pool_ledger", f"{node_dir.pool_path}: {exc}") from None
        self.recover()

    def is_pool_vessel(self, vessel: str) -> bool:
        return vessel in self.ledger.vessels

    def recover(self) -> None:
        """Redo what a kill cut short (module docstring). Before the node serves: no vessel runs yet."""
        for vessel in self.ledger.ending():
            self.state.wipe(vessel)
            self.ledger.finish(vessel)
        leased = {entry.vessel: entry for entry in self.ledger.leases()}
        for record in self.state.get_vessels():
            if record.name not in self.ledger.vessels:
                continue
            entry = leased.get(record.name)
            if entry is not None and tuple(record.users) != (entry.lessee.raw,):
                self.state.change_users(record.name, [entry.lessee.raw])
            elif entry is None and record.users:
                log.warning("pool vessel %s had a user but no lease; wiping it", record.name)
                self.state.wipe(record.name)

    # -- the calls --------------------------------------------------------------------------------------

    async def acquire(self, caller: PublicKey, slot: int, duration: float, request: bytes,
                      source: Source | None) -> Lease:
        """AcquireVessel: LeaseRefused, or the signed lease once the caller is the vessel's user."""
        self.ledger.admit(caller, source, self.clock())
        view = await self._look_up(caller, slot)
        async with self.lock:
            try:
                lease = await trio.to_thread.run_sync(self.ledger.acquire, caller, slot, duration, request, view,
                                                      self.clock())
            except refusals.LeaseRefused as refused:
                if refused.code == refusals.KEY_BANNED:
                    self.version += 1  # the evidence it noted may be new to file
                raise
            await trio.to_thread.run_sync(self.state.change_users, lease.vessel, [caller.raw])
        self._changed.set()
        self.version += 1
        return lease

    async def renew(self, caller: PublicKey, vessel: str, duration: float) -> Lease:
        entry = self.ledger.entry(vessel)
        credit: list[Attestation] = []
        if entry is not None and entry.lessee == caller and entry.slot >= BASE_QUOTA:
            # Afresh, not from the cache: a renewal must notice a donation that stopped.
            credit = (await self.directory.credit(caller)).attestations
            self.credit_cache.put(caller, credit, self.clock())
        async with self.lock:
            lease = await trio.to_thread.run_sync(self.ledger.renew, caller, vessel, duration, credit,
                                                  self.clock())
        self._changed.set()
        return lease

    async def release(self, caller: PublicKey, vessel: str, stop: Stop) -> None:
        """ReleaseLease: the caller's lease ends now; the vessel is stopped and wiped before this returns."""
        async with self.lock:
            entry = await trio.to_thread.run_sync(self.ledger.release, caller, vessel)
            await trio.to_thread.run_sync(self.state.change_users, vessel, [])
        await self._end(entry, stop)

    async def evict(self, vessel: str, stop: Stop) -> Entry:
        """The donor ends the lease of `vessel`."""
        async with self.lock:
            entry = await trio.to_thread.run_sync(self.ledger.evict, vessel)
            await trio.to_thread.run_sync(self.state.change_users, vessel, [])
        await self._end(entry, stop)
        return entry

    async def block(self, key: PublicKey, until: float) -> None:
        async with self.lock:
            await trio.to_thread.run_sync(self.ledger.block, key, until)

    async def expire_due(self, stop: Stop) -> list[Entry]:
        """End every lease past its expiry (the node calls this on time, `next_expiry`), and retry the resets
        of vessels that would not stop before."""
        async with self.lock:
            lapsed = await trio.to_thread.run_sync(self.ledger.expire, self.clock())
            for entry in lapsed:
                await trio.to_thread.run_sync(self.state.change_users, entry.vessel, [])
            ending = [e for e in map(self.ledger.entry, self.ledger.ending()) if e is not None]
        for entry in ending:
            await self._end(entry, stop)
        return lapsed

    async def run(self, stop: Stop) -> None:
        """End leases on time, forever: sleeps until the next expiry, or until a grant or renewal changes it."""
        while True:
            due = self.ledger.next_expiry()
            with trio.move_on_after(60.0 if due is None else min(60.0, max(0.0, due - self.clock()))):
                await self._changed.wait()
            self._changed = trio.Event()
            await self.expire_due(stop)
            filed = frozenset(e.lessee.raw for e in self.ledger.filed_evidence(self.clock()))
            if filed != self._filed:  # evidence came, ended or was pushed out: its records follow
                self._filed = filed
                self.version += 1

    def status(self, caller: PublicKey | None) -> dict[str, Any]:
        """GetPoolStatus: the free count, the signed offer and attestation, every live lease (`slots`: what
        another node checks a slot claim against), a signed caller's own leases here (`leases`), and the
        evidence this node holds (`evidence`: at most MAX_SERVED_EVIDENCE pairs of signed leases)."""
        live = self.ledger.leases()
        return {"node_key": self.identity.public_key.to_text(), "free": len(self.ledger.free()),
                "total": len(self.ledger.vessels), "draining": self.ledger.draining,
                "leases": [] if caller is None else [e.lease for e in live if e.lessee == caller],
                "slots": [e.lease for e in live], "offer": self.offer(), "attestation": self.attestation(),
                "evidence": [list(e.raw) for e in self.ledger.served_evidence(self.clock())]}

    def drain(self) -> None:
        """The node is stopping: no new leases, and the offer and credit are withdrawn (`withdrawn`)."""
        self.ledger.draining = True
        self.version += 1

    def subjects(self) -> dict[PublicKey, PublicKey]:
        """The pool's subjects the advertiser files this node under: the offer, slots and credit in the node
        key's group, each convicted key's evidence subjects in that key's own group (so eleven of them
        queue beside, not before, the node's own changes)."""
        node = self.identity.public_key
        wanted = {subject: e.lessee for e in self.ledger.filed_evidence(self.clock())
                  for subject in evidence_subjects(e.lessee)}
        wanted |= {slot_key(e.lessee, e.slot): node for e in self.ledger.leases()}
        if self.ledger.free() and not self.ledger.draining:
            wanted[offer_key(offer_shard(node))] = node
        if self.beneficiary is not None and not self.ledger.draining:
            wanted[credit_key(self.beneficiary)] = node
        return wanted

    def withdrawn(self) -> list[PublicKey]:
        """What a stopping node takes back at once rather than let it linger until it expires: its offer
        (it grants nothing more) and its credit (a stopped donation earns none). Slot and evidence records
        stay: the leases and the evidence outlive a restart."""
        node = self.identity.public_key
        return [offer_key(offer_shard(node)), *([credit_key(self.beneficiary)] if self.beneficiary else [])]

    def offer(self) -> bytes | None:
        """The node's signed offer (re-signed at most once a minute), None without pool vessels. A node behind
        a NAT or a firewall names no address (its private ones reach nobody): researchers reach it through the
        relays its record under the offer's shard names, as they reach its vessels."""
        if not self.ledger.vessels:
            return None
        reachability = self.reachability()
        addresses = [] if reachability in BEHIND else self.addresses()[:MAX_ADDRESSES]
        size = self.state.vessel_resources(self.ledger.vessels[0])
        fields = (len(self.ledger.free()), tuple(addresses), reachability)
        return self._cached(f"offer{fields}", lambda now: Offer.sign(
            self.identity, size={name: float(size.quantities[name]) for name in ("cpu", "memory", "diskused")},
            free=fields[0], total=len(self.ledger.vessels), reachability=fields[2], uptime=now - self.started,
            country=self.country, addresses=addresses, now=now))

    def attestation(self) -> bytes | None:
        """The signed attestation for the beneficiary (re-signed at most once a minute), None without one."""
        beneficiary = self.beneficiary
        if beneficiary is None:
            return None
        return self._cached("attestation", lambda now: Attestation.sign(
            self.identity, beneficiary=beneficiary, up_since=self.started, now=now))

    def _cached(self, what: str, sign: Callable[[float], bytes]) -> bytes:
        """Signed objects cost a signature each; an unsigned status call must not make the node sign anew."""
        now = self.clock()
        held = self._signed.get(what)
        if held is None or now - held[0] > RESIGN_AFTER:
            self._signed = {key: value for key, value in self._signed.items() if now - value[0] <= RESIGN_AFTER}
            held = self._signed[what] = (now, sign(now))
        return held[1]

    def donor_view(self) -> list[dict[str, Any]]:
        """Every pool vessel with its lessee and expiry: what `seattle node status` shows the donor."""
        rows = []
        for vessel in self.ledger.vessels:
            entry = self.ledger.entry(vessel)
            rows.append({"vessel": vessel,
                         "lessee": entry.lessee.to_text() if entry else None,
                         "slot": entry.slot if entry else None,
                         "expires": entry.expires if entry else None,
                         "state": "free" if entry is None else "ending" if entry.ending else "leased"})
        return rows

    # -- internals --------------------------------------------------------------------------------------

    async def _look_up(self, caller: PublicKey, slot: int) -> OverlayView:
        """The overlay's view for an acquire (module docstring): the slot's key always, the credit only for a
        slot at or beyond BASE_QUOTA that the cache does not answer, both at once."""
        found = Findings()
        cached = self.credit_cache.get(caller, self.clock())
        credit = Findings(attestations=cached or [])

        async def look_up_slot() -> None:
            nonlocal found
            found = await self.directory.slot(caller, slot)

        async def look_up_credit() -> None:
            nonlocal credit
            credit = await self.directory.credit(caller)
            self.credit_cache.put(caller, credit.attestations, self.clock())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(look_up_slot)
            if slot >= BASE_QUOTA and cached is None:
                nursery.start_soon(look_up_credit)
        return OverlayView({slot: found.leases}, credit.attestations, [*found.evidence, *credit.evidence])

    async def _end(self, entry: Entry, stop: Stop) -> None:
        """Stop, wipe and free a vessel whose lease ended (its user already removed, so nobody starts it
        again meanwhile); one that will not stop stays ending, retried at the next expiry pass and on start."""
        if not await stop(entry.vessel):
            log.warning("pool vessel %s did not stop; its reset is retried", entry.vessel)
            return
        async with self.lock:
            current = self.ledger.entry(entry.vessel)
            if current is None or not current.ending or current.lease != entry.lease:
                return  # another pass finished it first
            await trio.to_thread.run_sync(self.state.wipe, entry.vessel)
            await trio.to_thread.run_sync(self.ledger.finish, entry.vessel)
        self.version += 1
