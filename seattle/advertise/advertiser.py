"""The node manager's advertiser: keep the overlay's records about this node true, and only this node's.

Two parts, so the rules can be tested without a network or a clock:

* `AdvertiserState` (sans-IO) turns the node's state into the records it should have published: one per
  subject key, namely the node key itself (so a node can be found by its own key) and the owner and every
  user of each vessel whose advertise flag is on. `update()` notes what changed (new subjects, subjects gone,
  which get a signed tombstone, and everything when the node's addresses changed); records are also due again
  every REPUBLISH_INTERVAL (30 min), well before the 2 h expiry, or after RETRY_INTERVAL when no holder stored
  them. `next_batch()` says what to publish now, signing each record afresh with a sequence that always
  rises, max(previous + 1, now in milliseconds), so holders take it as newer even across restarts.
* `run_advertiser` (trio) polls the node's change counter every POLL_INTERVAL (0.5 s) and publishes what
  `next_batch()` gives through `seattle.advertise.dht.publish`, in the background, so a ChangeOwner,
  ChangeUsers, ChangeAdvertise, split or join is announced within about a second. It republishes only the
  records this node signs; records it holds for other nodes stay in its store until they expire, as their own
  nodes must keep them alive.

Scheduling. Holders accept a bounded number of writes per source address (`seattle.overlay.store`), so the
node publishes at most BATCH records per PACING seconds, and chooses which: changes before renewals and
retries (a reader must not be sent to a vessel's old owner for 30 minutes because renewals were queued), and
within each class round robin over groups, a group being the owner whose vessels bring the subject in (the
node key is its own group). So one owner whose vessels have hundreds of users cannot delay another owner's
change by more than one record per other group, and within a group the longest-waiting record goes first.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from seattle.advertise.dht import publish
from seattle.keys import Identity, PublicKey
from seattle.overlay.records import (
    DEFAULT_LIFETIME,
    MAX_ADDRESSES,
    MAX_LIFETIME,
    MAX_RELAYS,
    RecordRejected,
    sign,
    sign_tombstone,
)
from seattle.overlay.transport import OverlayTransport

log = logging.getLogger(__name__)

#: Records live 2 h; republishing every 30 min survives three missed rounds (a holder restart, lost packets).
REPUBLISH_INTERVAL = 30 * 60.0
#: When no holder stored a record (the node is alone, or its peers are unreachable), try again this soon.
RETRY_INTERVAL = 30.0
#: How often the change counter is read: "within seconds of any change" at the cost of one SQLite read.
POLL_INTERVAL = 0.5
#: Records published per PACING seconds at most. A holder accepts 10 writes per 10 s from one address
#: (overlay.store), and in a small overlay every node holds every key, so the node stays below that.
BATCH = 8
PACING = 10.0


class VesselView(Protocol):
    """What the advertiser reads of a vessel (`seattle.nodemgr.database.VesselRow` has these)."""

    @property
    def owner(self) -> bytes: ...

    @property
    def users(self) -> tuple[bytes, ...]: ...

    @property
    def advertise(self) -> bool: ...


def subjects_of(node_key: PublicKey, vessels: Iterable[VesselView]) -> dict[PublicKey, PublicKey]:
    """The keys this node advertises itself under, each with its scheduling group: its own key (its own
    group), and the owner and users of advertised vessels (the owner's group; a user of several owners'
    vessels goes with the owner whose key sorts first, an owner always with itself)."""
    groups = {node_key: node_key}
    for vessel in vessels:
        if not vessel.advertise:
            continue
        owner = PublicKey(vessel.owner)
        groups[owner] = owner
        for user in map(PublicKey, vessel.users):
            held = groups.get(user)
            if held is None or (held != user and owner.raw < held.raw):
                groups[user] = owner
    return groups


@dataclass(frozen=True)
class Publication:
    """One signed record (or tombstone) to store in the overlay."""

    subject: PublicKey
    raw: bytes
    tombstone: bool
    sequence: int


@dataclass
class _Subject:
    group: PublicKey  # the owner whose vessels bring this subject in (scheduling only)
    sequence: int = -1  # the last sequence signed for this subject; -1: nothing signed yet
    advertised: bool = True  # False once withdrawn: the tombstone is being (or was) published
    next_at: float | None = None  # when to publish again; None: nothing more to do (a delivered tombstone)
    changed: bool = True  # a change waits to be published (it goes before renewals)
    forget_at: float | None = None  # a withdrawn subject's sequence is kept until its records expired


class AdvertiserState:
    """The records this node should have published, and when each is next due (module docstring)."""

    def __init__(self, identity: Identity, *, lifetime: float = DEFAULT_LIFETIME,
                 republish_interval: float = REPUBLISH_INTERVAL, retry_interval: float = RETRY_INTERVAL,
                 batch: int = BATCH, pacing: float = PACING) -> None:
        if not 0 < republish_interval < lifetime:
            raise ValueError(f"republish_interval must be positive and below the lifetime {lifetime:g} s, "
                             f"got {republish_interval!r}")
        if not retry_interval > 0:
            raise ValueError(f"retry_interval must be positive, got {retry_interval!r}")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1 or not pacing > 0:
            raise ValueError(f"batch must be a positive integer and pacing positive, got {batch!r}, {pacing!r}")
        self.identity = identity
        self.lifetime = lifetime
        self.republish_interval = republish_interval
        self.retry_interval = retry_interval
        self.batch = batch
        self.pacing = pacing
        self.addresses: tuple[str, ...] = ()
        #: (relay "host:port", voucher) of the relays that hold a reservation for this node.
        self.relays: tuple[tuple[str, bytes], ...] = ()
        self._subjects: dict[PublicKey, _Subject] = {}
        self._sent: deque[float] = deque(maxlen=batch)  # when the last `batch` publications were signed

    @property
    def advertised(self) -> frozenset[PublicKey]:
        """The subjects currently advertised (not withdrawn)."""
        return frozenset(key for key, entry in self._subjects.items() if entry.advertised)

    def update(self, wanted: Mapping[PublicKey, PublicKey], addresses: Sequence[str], now: float,
               relays: Sequence[tuple[str, bytes]] = ()) -> list[PublicKey]:
        """Bring the advertised set to `wanted` (subject -> group, as `subjects_of` gives) at `addresses` and
        through `relays`; returns the subjects whose new record or tombstone now waits to be published, in
        key order.

        New subjects get a record, subjects no longer wanted a tombstone, and every advertised subject a
        fresh record when the addresses or relays changed (readers must not be sent to an old address for
        2 h). With neither an address nor a relay to give (a node bound to every interface with no --ip, a
        NATed node before its first reservation) nothing can be advertised, so everything is withdrawn;
        beyond MAX_ADDRESSES (MAX_RELAYS) only the first are given.
        """
        addresses = tuple(addresses)[:MAX_ADDRESSES]
        relays = tuple(relays)[:MAX_RELAYS]
        if not addresses and not relays:
            wanted = {}
        moved = addresses != self.addresses or relays != self.relays
        self.addresses = addresses
        self.relays = relays
        self._forget(now)
        out = []
        for subject in sorted(set(wanted) | self.advertised, key=lambda key: key.raw):
            entry = self._subjects.get(subject)
            if subject in wanted:
                if entry is None:
                    entry = self._subjects[subject] = _Subject(wanted[subject], sequence=-1, advertised=False)
                entry.group = wanted[subject]
                if entry.advertised and not moved:
                    continue
                entry.advertised = True
            elif entry is not None and entry.advertised:
                if entry.sequence < 0:  # never published: there is nothing to withdraw
                    del self._subjects[subject]
                    continue
                entry.advertised = False
            else:
                continue
            entry.changed, entry.next_at, entry.forget_at = True, now, None
            out.append(subject)
        return out

    def next_batch(self, now: float) -> list[Publication]:
        """The records to publish now, signed: at most `batch` per `pacing` seconds, changes first, then
        renewals and retries that are due, each class round robin over groups (module docstring)."""
        self._forget(now)
        room = self.batch - sum(1 for sent in self._sent if sent > now - self.pacing)
        if room <= 0:
            return []
        due = [(subject, entry) for subject, entry in self._subjects.items()
               if entry.next_at is not None and entry.next_at <= now]
        due.sort(key=lambda item: (not item[1].changed, item[1].next_at, item[0].raw))
        turn: dict[tuple[bool, PublicKey], int] = {}
        ranked = []
        for position, (subject, entry) in enumerate(due):
            lane = (entry.changed, entry.group)
            rank = turn.get(lane, 0)
            turn[lane] = rank + 1
            ranked.append((not entry.changed, rank, position, subject))
        out = [self._sign(subject, now) for *_, subject in sorted(ranked)[:room]]
        self._sent.extend(now for _ in out)
        return out

    def withdraw_now(self, subjects: Iterable[PublicKey], now: float) -> list[Publication]:
        """Tombstones for those of `subjects` that holders may still list (advertised, or withdrawn with the
        tombstone not yet delivered), signed now whatever the pacing: a stopping node's last words, which
        cannot wait behind the batch limit. Publishing them (and `settle`) is the caller's."""
        out = []
        for subject in sorted(set(subjects), key=lambda key: key.raw):
            entry = self._subjects.get(subject)
            if entry is not None and entry.sequence < 0:  # never published: there is nothing to withdraw
                del self._subjects[subject]
                continue
            if entry is None or (not entry.advertised and entry.next_at is None):
                continue
            entry.advertised = False
            out.append(self._sign(subject, now))
        self._sent.extend(now for _ in out)
        return out

    def settle(self, publication: Publication, stored: int, now: float) -> None:
        """Note how many holders stored `publication`: none means retry soon; a stored tombstone is done."""
        entry = self._subjects.get(publication.subject)
        if entry is None or entry.sequence != publication.sequence or entry.changed:
            return  # superseded by a newer publication (or a change) for the same subject meanwhile
        if stored == 0:
            entry.next_at = now + self.retry_interval
        elif publication.tombstone:
            entry.next_at = None
        else:
            entry.next_at = now + self.republish_interval

    def next_deadline(self) -> float | None:
        """When something is next due (None: nothing scheduled); the pacing may defer it a little more."""
        return min((e.next_at for e in self._subjects.values() if e.next_at is not None), default=None)

    def _sign(self, subject: PublicKey, now: float) -> Publication:
        entry = self._subjects[subject]
        sequence = max(entry.sequence + 1, int(now * 1000))
        tombstone = not entry.advertised
        if tombstone:
            raw = sign_tombstone(self.identity, subject, sequence=sequence, now=now)
            # Every record issued before the tombstone has expired by the tombstone's own expiry.
            entry.forget_at = now + MAX_LIFETIME
        else:
            raw = sign(self.identity, subject, self.addresses, sequence=sequence, now=now, lifetime=self.lifetime,
                       relays=self.relays)
            entry.forget_at = None
        # Until `settle` says otherwise, it is due again only if it is not delivered (a retry).
        entry.sequence, entry.changed, entry.next_at = sequence, False, now + self.retry_interval
        return Publication(subject, raw, tombstone, sequence)

    def _forget(self, now: float) -> None:
        for subject, entry in list(self._subjects.items()):
            if entry.forget_at is not None and entry.forget_at <= now and not entry.advertised:
                del self._subjects[subject]


async def run_advertiser(state: AdvertiserState, transport: OverlayTransport,
                         read: Callable[[], tuple[int, Mapping[PublicKey, PublicKey], Sequence[str]]],
                         now: Callable[[], float], *, keep_locally: Callable[[bytes], None] | None = None,
                         relays: Callable[[], Sequence[tuple[str, bytes]]] = tuple,
                         timeout: float = 5.0, poll_interval: float = POLL_INTERVAL) -> None:
    """Publish the node's records until cancelled (module docstring).

    `read()` returns (change counter, wanted subjects with their groups, addresses) and may block (it runs in
    a thread); `relays()` the node's relays with their vouchers (read on the event loop); `now()` is the wall
    clock the records are dated by. Publications run in the background, so a
    change is read, and scheduled ahead of queued renewals, while earlier ones are still being stored.
    `keep_locally(raw)` stores each publication in the node's own record store too, so a node that is alone
    in its overlay (or among the k closest, as it is in any overlay of up to k nodes) answers for its own
    vessels.
    """
    seen: int | None = None
    async with trio.open_nursery() as nursery:
        while True:
            counter, wanted, addresses = await trio.to_thread.run_sync(read)
            held = tuple(relays())[:MAX_RELAYS]
            if counter != seen or tuple(addresses)[:MAX_ADDRESSES] != state.addresses or held != state.relays:
                seen = counter
                state.update(wanted, addresses, now(), held)
            for publication in state.next_batch(now()):
                nursery.start_soon(_publish_one, state, transport, publication, now, keep_locally, timeout)
            await trio.sleep(poll_interval)


async def _publish_one(state: AdvertiserState, transport: OverlayTransport, publication: Publication,
                       now: Callable[[], float], keep_locally: Callable[[bytes], None] | None,
                       timeout: float) -> None:
    if keep_locally is not None:
        try:
            keep_locally(publication.raw)
        except RecordRejected as exc:
            log.warning("own store refused the record for %s: %s", publication.subject.fingerprint(), exc)
    try:
        stored = await publish(transport, publication.raw, timeout=timeout)
    except RecordRejected as exc:  # only if the clock jumped between signing and sending
        log.warning("record for %s not published: %s", publication.subject.fingerprint(), exc)
        stored = 0
    state.settle(publication, stored, now())
    log.info("%s %s: stored by %d node(s)", "withdrew" if publication.tombstone else "advertised",
             publication.subject.fingerprint(), stored)
