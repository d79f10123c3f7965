"""The node manager's advertiser: keep the overlay's records about this node true, and only this node's.

Two parts, so the rules can be tested without a network or a clock:

* `AdvertiserState` (sans-IO) turns the node's state into the records it should have published: one per
  subject key, namely the node key itself (so a node can be found by its own key) and the owner and every
  user of each vessel whose advertise flag is on. `update()` returns what changed (new subjects, subjects
  gone, which get a signed tombstone, and everything when the node's addresses changed); `due()` returns what
  must be republished, every REPUBLISH_INTERVAL (30 min), well before the 2 h expiry, or retried after
  RETRY_INTERVAL when no holder stored it. Every record is signed afresh with a sequence that always rises,
  max(previous + 1, now in milliseconds), so holders take it as newer even across restarts.
* `run_advertiser` (trio) polls the node's change counter every POLL_INTERVAL (0.5 s), so a ChangeOwner,
  ChangeUsers, ChangeAdvertise, split or join is announced within about a second, and publishes through
  `seattle.advertise.dht.publish`. It republishes only the records this node signs; records it holds for
  other nodes stay in its store until they expire, as their own nodes must keep them alive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from seattle.advertise.dht import publish
from seattle.keys import Identity, PublicKey
from seattle.overlay.records import (
    DEFAULT_LIFETIME,
    MAX_ADDRESSES,
    MAX_LIFETIME,
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
#: Records published at once. A holder accepts 10 writes per 10 s from one address (overlay.store), so a node
#: with many subjects sends them in batches of this size, PACING seconds apart.
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


def subjects_of(node_key: PublicKey, vessels: Iterable[VesselView]) -> frozenset[PublicKey]:
    """The keys this node advertises itself under: its own, and the owner and users of advertised vessels."""
    keys = {node_key}
    for vessel in vessels:
        if vessel.advertise:
            keys.add(PublicKey(vessel.owner))
            keys.update(PublicKey(user) for user in vessel.users)
    return frozenset(keys)


@dataclass(frozen=True)
class Publication:
    """One signed record (or tombstone) to store in the overlay."""

    subject: PublicKey
    raw: bytes
    tombstone: bool
    sequence: int


@dataclass
class _Subject:
    sequence: int  # the last sequence signed for this subject
    advertised: bool  # False once withdrawn: the tombstone is being (or was) published
    next_at: float | None  # when to publish again; None: nothing more to do (a delivered tombstone)
    forget_at: float | None = None  # a withdrawn subject's sequence is kept until its records expired


class AdvertiserState:
    """The records this node should have published, and when each is next due (module docstring)."""

    def __init__(self, identity: Identity, *, lifetime: float = DEFAULT_LIFETIME,
                 republish_interval: float = REPUBLISH_INTERVAL, retry_interval: float = RETRY_INTERVAL) -> None:
        if not 0 < republish_interval < lifetime:
            raise ValueError(f"republish_interval must be positive and below the lifetime {lifetime:g} s, "
                             f"got {republish_interval!r}")
        if not retry_interval > 0:
            raise ValueError(f"retry_interval must be positive, got {retry_interval!r}")
        self.identity = identity
        self.lifetime = lifetime
        self.republish_interval = republish_interval
        self.retry_interval = retry_interval
        self.addresses: tuple[str, ...] = ()
        self._subjects: dict[PublicKey, _Subject] = {}

    @property
    def advertised(self) -> frozenset[PublicKey]:
        """The subjects currently advertised (not withdrawn)."""
        return frozenset(key for key, entry in self._subjects.items() if entry.advertised)

    def update(self, subjects: Iterable[PublicKey], addresses: Sequence[str], now: float) -> list[Publication]:
        """Bring the wanted set to `subjects` at `addresses`; returns the records to publish at once.

        New subjects get a record, subjects no longer wanted a tombstone, and every advertised subject a
        fresh record when the addresses changed (readers must not be sent to an old address for 2 h). With no
        address to give (a node bound to every interface with no --ip) nothing can be advertised, so
        everything is withdrawn; beyond MAX_ADDRESSES only the first are given.
        """
        addresses = tuple(addresses)[:MAX_ADDRESSES]
        wanted = frozenset(subjects) if addresses else frozenset()
        moved = addresses != self.addresses
        self.addresses = addresses
        self._forget(now)
        out = []
        for subject in sorted(wanted | self.advertised, key=lambda key: key.raw):
            entry = self._subjects.get(subject)
            is_advertised = entry is not None and entry.advertised
            if subject in wanted and (not is_advertised or moved):
                out.append(self._sign(subject, now))
            elif subject not in wanted and is_advertised:
                out.append(self._sign(subject, now, tombstone=True))
        return out

    def due(self, now: float) -> list[Publication]:
        """Records to publish again now: republish rounds, retries; each re-signed with a higher sequence."""
        self._forget(now)
        out = []
        for subject, entry in sorted(self._subjects.items(), key=lambda item: item[0].raw):
            if entry.next_at is not None and entry.next_at <= now:
                out.append(self._sign(subject, now, tombstone=not entry.advertised))
        return out

    def settle(self, publication: Publication, stored: int, now: float) -> None:
        """Note how many holders stored `publication`: none means retry soon; a stored tombstone is done."""
        entry = self._subjects.get(publication.subject)
        if entry is None or entry.sequence != publication.sequence:
            return  # superseded by a newer publication for the same subject meanwhile
        if stored == 0:
            entry.next_at = now + self.retry_interval
        elif publication.tombstone:
            entry.next_at = None
        else:
            entry.next_at = now + self.republish_interval

    def next_deadline(self) -> float | None:
        """When `due()` next has something (None: nothing scheduled)."""
        return min((e.next_at for e in self._subjects.values() if e.next_at is not None), default=None)

    def _sign(self, subject: PublicKey, now: float, *, tombstone: bool = False) -> Publication:
        entry = self._subjects.get(subject)
        previous = entry.sequence if entry is not None else -1
        sequence = max(previous + 1, int(now * 1000))
        if tombstone:
            raw = sign_tombstone(self.identity, subject, sequence=sequence, now=now)
            # Every record issued before the tombstone has expired by the tombstone's own expiry.
            forget_at = now + MAX_LIFETIME
        else:
            raw = sign(self.identity, subject, self.addresses, sequence=sequence, now=now, lifetime=self.lifetime)
            forget_at = None
        # Until `settle` says otherwise, it is due again only if it is not delivered (a retry).
        self._subjects[subject] = _Subject(sequence, not tombstone, now + self.retry_interval, forget_at)
        return Publication(subject, raw, tombstone, sequence)

    def _forget(self, now: float) -> None:
        for subject, entry in list(self._subjects.items()):
            if entry.forget_at is not None and entry.forget_at <= now and not entry.advertised:
                del self._subjects[subject]


async def run_advertiser(state: AdvertiserState, transport: OverlayTransport,
                         read: Callable[[], tuple[int, frozenset[PublicKey], Sequence[str]]],
                         now: Callable[[], float], *, keep_locally: Callable[[bytes], None] | None = None,
                         timeout: float = 5.0, poll_interval: float = POLL_INTERVAL) -> None:
    """Publish the node's records until cancelled (module docstring).

    `read()` returns (change counter, wanted subjects, addresses) and may block (it runs in a thread);
    `now()` is the wall clock the records are dated by. `keep_locally(raw)` stores each publication in the
    node's own record store too, so a node that is alone in its overlay (or among the k closest, as it is in
    any overlay of up to k nodes) answers for its own vessels.
    """
    seen: int | None = None
    while True:
        counter, subjects, addresses = await trio.to_thread.run_sync(read)
        batch: list[Publication] = []
        if counter != seen or tuple(addresses) != state.addresses:
            seen = counter
            batch = state.update(subjects, addresses, now())
        batch += state.due(now())
        for start in range(0, len(batch), BATCH):
            if start:
                await trio.sleep(PACING)
            await _publish_batch(state, transport, batch[start:start + BATCH], now, keep_locally, timeout)
        await trio.sleep(poll_interval)


async def _publish_batch(state: AdvertiserState, transport: OverlayTransport, batch: list[Publication],
                         now: Callable[[], float], keep_locally: Callable[[bytes], None] | None,
                         timeout: float) -> None:
    async def one(publication: Publication) -> None:
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

    async with trio.open_nursery() as nursery:
        for publication in batch:
            nursery.start_soon(one, publication)
