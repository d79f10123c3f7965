"""Vessels from the pool: find offers, acquire leases, renew and release them (`seattle acquire/renew/release`).

    offers = await find_offers(bootstrap_nodes(), timeout=10)      # every shard of the overlay, verified
    result = await acquire(session, identity, offers, 10, where=parse_filter("country=DE"), duration=4 * 3600)
    await renew(session, session.targets.resolve("acquiregood"), identity, duration=4 * 3600)
    await release(session, session.targets.resolve("acquiregood"), identity)

Nobody hands vessels out centrally: each node leases its own pool vessels and signs the lease (`seattle.pool`).
What the researcher's side does, and why:

1. Offers: a node files a record under `offer_key(shard)` in the overlay; `find_offers` reads the SHARDS keys
   in random order (each bounded by `find_records`), asks each node found for its pool status, keeps the
   signed `Offer` only if it verifies and is signed by the key the node showed on its connection, and stops
   once enough match (`offers_wanted`): a 10,000-node pool holds hundreds of nodes per shard. Each offer is
   kept as a `Reachable`: with where its node answered, the record's direct address or, for a node behind a
   NAT (its record names only relays, its offer no address), its relayed name and the record's relays
   (`seattle.nodemgr.routes`); every later call to that node goes the same way.
2. Filter and rank (`parse_filter`: a small grammar, errors that say what is wrong): nodes with free
   vessels, public ones and long uptimes first, ties shuffled so researchers spread over the pool; nodes
   behind NATs come after the public ones, or first when the filter asks for them (`reachability=nat`).
3. Slots: a key may hold Q leases at once (`seattle.pool.formats.quota`); each lease names one of its slots
   0..Q-1 and a node refuses a slot held live elsewhere. The session knows the slots of the leases it holds;
   each request asks for a different free slot, so concurrent requests of one researcher never collide.
4. Ask more nodes than needed (n + 20 %), at most PER_NODE requests per node, concurrently (bounded fan-out,
   `seattle.experiment.fanout`, each connection pinned to the key that signed the offer); refusals free
   their slot for the next round (up to ROUNDS), except a slot another node holds or one beyond the quota.
5. Verify every lease (the offer's node signed it, for our key, for the slot asked) and release surplus
   grants (those of the highest slots), so a researcher holds exactly what was asked and no slot is wasted.
6. Store each lease with its vessel in the session: acquired vessels are ordinary targets (`%N`, the groups
   `acquiregood` and `acquirefail`; a NATed node's with its relays, as browse stores them), so every
   researcher command works on them; `renew` and `release` act on any target expression and keep the stored
   lease current (a released or ended lease forgets its vessel).
"""

from __future__ import annotations

import base64
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from seattle.addresses import split_ip_port
from seattle.errors import BadDuration, BadFilter, NoFreeSlots, NoOffers
from seattle.experiment.fanout import (
    FAILED,
    OK,
    REFUSED,
    Node,
    NodeKeys,
    NodeRelays,
    Outcome,
    Progress,
    VesselOp,
    fan_out,
)
from seattle.experiment.operations import execute
from seattle.experiment.session import Session
from seattle.experiment.targets import VESSEL_NAME, VesselRef
from seattle.keys import Identity, PublicKey
from seattle.nodemgr.relay_client import RelayAddress
from seattle.nodemgr.routes import RELAYED_PORT, relayed_name
from seattle.overlay.records import VesselRecord
from seattle.pool import refusals
from seattle.pool.formats import (
    BASE_QUOTA,
    DEFAULT_CLOCK_SKEW,
    DEFAULT_LEASE,
    MAX_LEASE_AGE,
    SHARDS,
    Lease,
    Offer,
    PoolRejected,
    offer_key,
)

#: Ask this many more nodes than vessels wanted: some refuse (full, draining, rate limited) or do not answer.
SURPLUS = 0.2
#: Requests one acquire sends to one node: a node leases at most a couple of vessels to one key anyway.
PER_NODE = 2
#: Rounds of requests: refused requests free their slots for other nodes, this many times at most. A key asking
#: for its whole quota sends no surplus (one request per free slot), so each refusal costs a round; with ten
#: researchers acquiring from one pool at once, three rounds left one of them a vessel short in a few runs.
ROUNDS = 5
#: Nodes asked for their pool status at once while looking for offers.
DEFAULT_CONCURRENCY = 50


# --- durations and filters ----------------------------------------------------------------------------------

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")


def parse_duration(text: str) -> float:
    """"90" (seconds), "90m", "4h", "7d" → seconds; BadDuration unless positive and at most the maximum lease age."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise BadDuration(text, "it is not a number with an optional unit")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds <= MAX_LEASE_AGE:
        raise BadDuration(text, f"a lease lasts more than 0 s and at most {MAX_LEASE_AGE / 86400:g} days")
    return seconds


_CLAUSE = re.compile(r"\s*([a-z][a-z0-9_.]*)\s*(>=|<=|!=|=|>|<)\s*([^,]*?)\s*")
_TEXT_FIELDS = {"country": "country", "reachability": "reachability", "reach": "reachability"}
_NUMBER_FIELDS = ("free", "uptime")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
}


@dataclass(frozen=True)
class Clause:
    """One `FIELD OP VALUE` of a filter: a text field with alternatives, or a number compared."""

    name: str
    op: str
    words: tuple[str, ...] = ()
    number: float = 0.0

    def matches(self, offer: Offer) -> bool:
        if self.words:
            value = offer.country if self.name == "country" else offer.reachability
            return (value in self.words) == (self.op == "=")
        if self.name == "free":
            actual: float | None = offer.free
        elif self.name == "uptime":
            actual = offer.uptime
        else:
            actual = offer.size.get(self.name.removeprefix("size."))
        return actual is not None and _COMPARE[self.op](actual, self.number)


@dataclass(frozen=True)
class Filter:
    """Offers a researcher accepts: every clause must hold (`parse_filter`). The empty filter takes all."""

    text: str = ""
    clauses: tuple[Clause, ...] = ()

    def matches(self, offer: Offer) -> bool:
        return all(clause.matches(offer) for clause in self.clauses)


def parse_filter(text: str) -> Filter:
    """`country=DE|FR, reachability=public, free>=2, uptime>=1d, size.cpu>=0.02` → Filter; BadFilter naming the
    clause that is wrong. Text fields (country, reachability) take = or != and alternatives split by "|";
    numbers (free, uptime, size.RESOURCE) take = != >= <= > <; uptime also takes a duration (90m, 1d)."""
    clauses = []
    for part in text.split(",") if text.strip() else []:
        match = _CLAUSE.fullmatch(part)
        if match is None:
            raise BadFilter(text, f"{part.strip()!r} is not FIELD OP VALUE")
        name, op, value = match.groups()
        if not value:
            raise BadFilter(text, f"{part.strip()!r} has no value")
        if name in _TEXT_FIELDS:
            if op not in ("=", "!="):
                raise BadFilter(text, f"{name} is compared with = or != only")
            words = tuple(word.strip() for word in value.split("|"))
            if name == "country":
                words = tuple(word.upper() for word in words)
                if not all(re.fullmatch(r"[A-Z]{2}", word) for word in words):
                    raise BadFilter(text, f"{value!r} is not a two-letter country code (ISO 3166, e.g. DE)")
            clauses.append(Clause(_TEXT_FIELDS[name], op, words=words))
        elif name in _NUMBER_FIELDS or (name.startswith("size.") and len(name) > 5):
            clauses.append(Clause(name, op, number=_filter_number(text, name, value)))
        else:
            raise BadFilter(text, f"unknown field {name!r}: the fields are country, reachability, free, uptime "
                                  "and size.RESOURCE (e.g. size.cpu, size.memory)")
    return Filter(text.strip(), tuple(clauses))


def _filter_number(text: str, name: str, value: str) -> float:
    if name == "uptime" and value[-1:] in "smhd" and not value[-1:].isdigit():
        try:
            return float(value[:-1]) * _UNITS[value[-1]]
        except ValueError:
            raise BadFilter(text, f"{value!r} is not a duration (e.g. 90m, 1d)") from None
    try:
        number = float(value)
    except ValueError:
        raise BadFilter(text, f"{name} compares numbers, and {value!r} is not one") from None
    if not math.isfinite(number):
        raise BadFilter(text, f"{value!r} is not a finite number")
    return number


@dataclass(frozen=True)
class Reachable:
    """An offer and how to reach its node: `host`:`port` is where it answered, its direct address or, for a
    node behind a NAT, its relayed name and RELAYED_PORT; `relays` are the ones its record named (with
    vouchers that held), through which a relayed name is reached and a direct address falls back."""

    offer: Offer
    host: str
    port: int
    relays: tuple[RelayAddress, ...] = ()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port


def reachable_directly(offers: Iterable[Offer]) -> list[Reachable]:
    """Offers a caller holds itself (a testbed's, signed with its node keys), each reached at the first address
    it names; one that names none is left out (only its record's relays reach it: `find_offers`)."""
    found = []
    for offer in offers:
        address = _first_address(offer.addresses)
        if address is not None:
            found.append(Reachable(offer, *address))
    return found


def rank(offers: Sequence[Reachable], rng: random.Random | None = None) -> list[Reachable]:
    """Offers to ask first: with free vessels, public before others, more free and longer uptime first; equal
    ones shuffled, so two researchers with the same filter do not all ask the same few nodes."""
    shuffled = [each for each in offers if each.offer.free > 0]
    (rng or random.Random()).shuffle(shuffled)
    return sorted(shuffled, key=lambda each: _rank_key(each.offer))


def _rank_key(offer: Offer) -> tuple[bool, int, float]:
    return offer.reachability != "public", -min(offer.free, PER_NODE), -(offer.uptime // 3600)


# --- finding offers ------------------------------------------------------------------------------------------


async def find_offers(bootstrap: Sequence[tuple[str, int]], *, timeout: float, where: Filter = Filter(),
                      want: int = 0, concurrency: int = DEFAULT_CONCURRENCY,
                      rng: random.Random | None = None) -> list[Reachable]:
    """Verified offers with free vessels, each with how to reach its node: the nodes filed under the
    `offer_key` shards, read in random order, asked for their offers shard by shard until `want` of them match
    `where` (0: every shard); the others are returned too, so `acquire` can say how many it saw that did not
    match. A 10,000-node pool holds hundreds of nodes per shard: a researcher asks a few of them, not all. A
    record with a direct address is dialled there; one with only relays (a node behind a NAT) through them.
    OverlayUnreachable if no bootstrap node answers."""
    from seattle.advertise.dht import find_records
    from seattle.experiment.browse import light_client

    shards = list(range(SHARDS))
    (rng or random.Random()).shuffle(shards)
    found: list[Reachable] = []
    async with light_client(bootstrap, timeout) as overlay:
        for shard in shards:
            nodes: dict[tuple[str, int], PublicKey] = {}
            routes: dict[tuple[str, int], tuple[RelayAddress, ...]] = {}
            for record in await find_records(overlay, offer_key(shard), timeout=timeout):
                route = _route(record)
                if route is not None:
                    nodes[route[0]] = record.node
                    routes[route[0]] = route[1]
            offers = await offers_at(list(nodes), timeout=timeout, concurrency=concurrency, node_keys=nodes,
                                     relays=routes)
            found.extend(each for each in offers if each.offer.free > 0)
            if want and sum(where.matches(each.offer) for each in found) >= want:
                break
    return found


def _route(record: VesselRecord) -> tuple[tuple[str, int], tuple[RelayAddress, ...]] | None:
    """Where to ask the node of an offer record, and its relays: its first direct address (the relays, if any,
    as a fallback), else its relayed name when it names relays; None when it names neither usably."""
    from seattle.experiment.browse import record_relays

    relays = record_relays(record)
    address = _first_address(record.addresses)
    if address is not None:
        return address, relays
    if relays:
        return (relayed_name(record.node), RELAYED_PORT), relays
    return None


def offers_wanted(count: int) -> int:
    """How many matching offers `acquire` of `count` vessels wants to choose from: its requests (n + 20 %, at
    most PER_NODE per node) twice over, for the rounds after refusals."""
    return 2 * math.ceil(count * (1 + SURPLUS)) + 8


async def offers_at(addresses: Sequence[tuple[str, int]], *, timeout: float,
                    concurrency: int = DEFAULT_CONCURRENCY, node_keys: NodeKeys | None = None,
                    relays: NodeRelays | None = None) -> list[Reachable]:
    """The verified offers of the node managers at `addresses` (GetPoolStatus, unsigned), each reachable where
    it answered (through `relays` for the addresses they name: `fan_out`); a node that does not answer,
    shares nothing, shows another key than `node_keys` names, or sends an offer another key signed is left
    out."""
    items = [(index, VesselRef(host, port, "pool")) for index, (host, port) in enumerate(addresses)]

    async def status(node: Node, ref: VesselRef) -> Offer | None:
        answer = await node.client.call("GetPoolStatus")
        raw = answer.get("offer") if isinstance(answer, dict) else None
        if raw is None:
            return None
        offer = Offer.verify(raw, time.time())
        if node.client.node_key is None or offer.node != node.client.node_key:
            return None
        return offer

    outcomes = await fan_out(items, status, identity=None, timeout=timeout, concurrency=concurrency,
                             node_keys=node_keys, relays=relays)
    return [Reachable(o.result, o.ref.host, o.ref.port, tuple((relays or {}).get((o.ref.host, o.ref.port), ())))
            for o in outcomes if o.ok and isinstance(o.result, Offer)]


# --- leases in the session ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredLease:
    """A verified lease as the session keeps it with its vessel (`KnownVessel.lease`)."""

    slot: int
    expires: float
    max_expiry: float
    raw: bytes

    def to_json(self) -> dict[str, Any]:
        return {"slot": self.slot, "expires": self.expires, "max_expiry": self.max_expiry,
                "lease": base64.b64encode(self.raw).decode("ascii")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredLease:
        return cls(int(data["slot"]), float(data["expires"]), float(data["max_expiry"]),
                   base64.b64decode(str(data["lease"]), validate=True))

    @classmethod
    def of(cls, lease: Lease) -> StoredLease:
        return cls(lease.slot, lease.expires, lease.max_expiry, lease.raw)


def stored_lease(session: Session, number: int) -> StoredLease | None:
    """The lease stored with vessel `number`, or None (not acquired, or a damaged entry)."""
    known = session.targets.vessels.get(number)
    if known is None or known.lease is None:
        return None
    try:
        return StoredLease.from_json(known.lease)
    except (KeyError, TypeError, ValueError):
        return None


def held_slots(session: Session, now: float) -> dict[int, int]:
    """slot → vessel number, for the session's leases still live at `now`."""
    held = {}
    for number in session.targets.vessels:
        lease = stored_lease(session, number)
        if lease is not None and lease.expires > now:
            held[lease.slot] = number
    return held


def forget_ended(session: Session, now: float) -> list[int]:
    """Forget the vessels whose lease ended (past expiry and clock skew): they are someone else's now."""
    ended = [number for number in session.targets.vessels
             if (lease := stored_lease(session, number)) is not None and lease.expires + DEFAULT_CLOCK_SKEW < now]
    session.targets.forget(ended)
    return ended


# --- acquire --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One acquire request to one node, and what came of it (a row of `seattle acquire`'s table)."""

    node: PublicKey
    address: str
    slot: int
    kind: str
    code: str = ""
    message: str = ""
    vessel: str = ""
    expires: float = 0.0
    number: int | None = None  # the vessel's %N once it is kept
    released: bool = False  # granted beyond what was asked, and given back

    @property
    def kept(self) -> bool:
        return self.number is not None

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node.to_text(), "address": self.address, "slot": self.slot, "outcome": self.kind,
                "code": self.code, "message": self.message, "vessel": self.vessel or None,
                "target": f"%{self.number}" if self.number is not None else None,
                "expires": self.expires or None, "released": self.released}


@dataclass
class AcquireResult:
    wanted: int
    attempts: list[Attempt] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def numbers(self) -> list[int]:
        return sorted(a.number for a in self.attempts if a.number is not None)


@dataclass(frozen=True)
class Ask:
    """One AcquireVessel to send: to the node of `to` (its offer, and how to reach it), for slot `slot`."""

    to: Reachable
    slot: int

    @property
    def offer(self) -> Offer:
        return self.to.offer


class Plan:
    """Which node to ask for which slot, round after round (module docstring, steps 3 and 4). Sans-IO: `acquire`
    sends each round's asks over the network; the pool simulation sends them to in-process ledgers.

        plan = Plan(rank(offers), free_slots, count)
        while batch := plan.next_round():
            for ask in batch: plan.granted(ask) or plan.refused(ask, code)   # code "" for no answer
    """

    def __init__(self, candidates: Sequence[Reachable], slots: Sequence[int], count: int) -> None:
        self.count = count
        self.slots = sorted(slots)
        self.leased = 0
        self.rounds = 0
        self._queue = _ask_order(candidates)

    def next_round(self) -> list[Ask]:
        """The asks of the next round: n + 20 % of what is missing, on distinct free slots; [] when done (all
        leased, no node or slot left to try, or ROUNDS spent)."""
        missing = self.count - self.leased
        if missing <= 0 or not self._queue or not self.slots or self.rounds >= ROUNDS:
            return []
        self.rounds += 1
        size = min(len(self._queue), len(self.slots), max(missing + 1, math.ceil(missing * (1 + SURPLUS))))
        batch = [Ask(to, slot) for to, slot in zip(self._queue[:size], self.slots[:size], strict=True)]
        self._queue, self.slots = self._queue[size:], self.slots[size:]
        return batch

    def granted(self, ask: Ask) -> None:
        self.leased += 1

    def refused(self, ask: Ask, code: str) -> None:
        """The node refused (`code`, "" when it did not answer): the slot is tried again elsewhere unless it is
        held at another node or beyond the quota; a node that refused for any other reason is asked no more."""
        if code == refusals.QUOTA:
            self.slots = [slot for slot in self.slots if slot < ask.slot]
        elif code != refusals.SLOT_TAKEN:
            self.slots = sorted([*self.slots, ask.slot])
            self._queue = [to for to in self._queue if to.offer.node != ask.offer.node]


async def acquire(session: Session, identity: Identity, offers: Sequence[Reachable], count: int, *,
                  where: Filter = Filter(), duration: float = DEFAULT_LEASE, quota: int = BASE_QUOTA,
                  held_elsewhere: Sequence[int] = (), concurrency: int = DEFAULT_CONCURRENCY,
                  rng: random.Random | None = None, progress: Progress | None = None) -> AcquireResult:
    """Lease up to `count` pool vessels from `offers` (`find_offers`, `offers_at` or `reachable_directly`;
    module docstring, steps 2 to 6). `quota` is the key's Q as far as known (nodes refuse slots beyond the
    real one); `held_elsewhere` are slots the overlay shows held by leases this session does not know.
    Records the groups acquiregood (the vessels leased) and acquirefail (vessels leased beyond `count` that
    their node would not take back: release them). NoOffers if no offer matches, NoFreeSlots if every slot is
    taken."""
    if count < 1:
        raise ValueError(f"acquire at least one vessel, not {count}")
    started = time.monotonic()
    now = time.time()
    forget_ended(session, now)
    free_offers = [each for each in offers if each.offer.free > 0]
    candidates = rank([each for each in free_offers if where.matches(each.offer)], rng)
    if not candidates:
        raise NoOffers(where.text, len(free_offers))
    taken = set(held_slots(session, now)) | set(held_elsewhere)
    slots = [slot for slot in range(quota) if slot not in taken]
    if not slots:
        raise NoFreeSlots(len(taken & set(range(quota))), quota)
    plan = Plan(candidates, slots, count)
    result = AcquireResult(count)
    granted: list[tuple[Attempt, Lease, Ask]] = []
    while batch := plan.next_round():
        for attempt, lease, ask in await _send(batch, identity, duration, session.timeout, concurrency, progress):
            if lease is not None:
                plan.granted(ask)
                granted.append((attempt, lease, ask))
            else:
                plan.refused(ask, attempt.code)
                result.attempts.append(attempt)
    # Answers arrive in any order: the grants of the lowest slots are kept, so what a key holds is predictable
    # (slots 0..n-1 after a first acquire) and the surplus given back is the highest.
    granted.sort(key=lambda grant: grant[2].slot)
    keep, surplus = granted[:count], granted[count:]
    stuck = []
    for attempt, lease, ask in await _give_back(surplus, identity, session.timeout, concurrency):
        if lease is None:
            result.attempts.append(attempt)
        else:
            stuck.append(_remember(session, attempt, lease, ask, result))
    session.targets.set_group("acquiregood", [_remember(session, *grant, result) for grant in keep])
    session.targets.set_group("acquirefail", stuck)
    result.attempts.sort(key=lambda a: (not a.kept, a.address, a.slot))
    result.seconds = time.monotonic() - started
    return result


def _remember(session: Session, attempt: Attempt, lease: Lease, ask: Ask, result: AcquireResult) -> int:
    """Number the leased vessel (an ordinary target from now on) and keep its lease with it, and its node's
    relays (the shape browse stores: later commands reach a NATed node through them, `node_relays`)."""
    relays = tuple((relay.text, relay.key.to_text()) for relay in ask.to.relays)
    number = session.targets.add_vessel(VesselRef(ask.to.host, ask.to.port, lease.vessel),
                                        node_key=lease.node.to_text(), relays=relays)
    session.targets.vessels[number].lease = StoredLease.of(lease).to_json()
    result.attempts.append(_replace_number(attempt, number))
    return number


def _ask_order(candidates: Sequence[Reachable]) -> list[Reachable]:
    """The node of each request: one per node in rank order, then a second to nodes with room for it."""
    return [to for turn in range(PER_NODE) for to in candidates if to.offer.free > turn]


def _first_address(addresses: Sequence[str]) -> tuple[str, int] | None:
    for text in addresses:
        try:
            return split_ip_port(text)
        except ValueError:
            continue
    return None


async def _send(batch: Sequence[Ask], identity: Identity, duration: float, timeout: float, concurrency: int,
                progress: Progress | None) -> list[tuple[Attempt, Lease | None, Ask]]:
    """AcquireVessel for every ask at once (bounded), each node's connection pinned to its offer's key."""
    refs = {index: VesselRef(ask.to.host, ask.to.port, f"slot{ask.slot}") for index, ask in enumerate(batch)}
    asks = {refs[index]: ask for index, ask in enumerate(batch)}

    async def request(node: Node, ref: VesselRef) -> Lease:
        ask = asks[ref]
        answer = await node.client.call("AcquireVessel", slot=ask.slot, duration=duration)
        return _granted(answer, ask, identity.public_key)

    outcomes = await fan_out(list(refs.items()), request, identity=identity, timeout=timeout,
                             concurrency=concurrency, progress=progress, node_keys=_keys(batch),
                             relays=_relays(batch))
    return [(*_attempt(asks[outcome.ref], outcome), asks[outcome.ref]) for outcome in outcomes]


class _BadLease(ValueError):
    """The node's answer to AcquireVessel holds no lease we can use."""


def _granted(answer: Any, ask: Ask, mine: PublicKey) -> Lease:
    if not isinstance(answer, dict):
        raise _BadLease(f"the node answered {answer!r:.80} instead of a lease")
    try:
        lease = Lease.verify(answer.get("lease"), ask.offer.node, time.time())
    except PoolRejected as exc:
        raise _BadLease(f"the node's lease does not verify ({exc.code}: {exc.message})") from None
    if lease.lessee != mine or lease.slot != ask.slot or lease.vessel != answer.get("vessel") \
            or not VESSEL_NAME.fullmatch(lease.vessel):
        raise _BadLease(f"the node's lease is not for our key, slot {ask.slot} and the vessel it named")
    return lease


def _keys(asks: Iterable[Ask]) -> dict[tuple[str, int], PublicKey]:
    """Each asked node's address → the key that signed its offer: its connection must prove it."""
    return {ask.to.address: ask.offer.node for ask in asks}


def _relays(asks: Iterable[Ask]) -> dict[tuple[str, int], tuple[RelayAddress, ...]]:
    """Each asked node's address → the relays that reach it (a node behind a NAT)."""
    return {ask.to.address: ask.to.relays for ask in asks if ask.to.relays}


def _attempt(ask: Ask, outcome: Outcome) -> tuple[Attempt, Lease | None]:
    address = VesselRef(ask.to.host, ask.to.port, "").address
    if outcome.ok:
        lease: Lease = outcome.result
        return Attempt(ask.offer.node, address, ask.slot, OK, vessel=lease.vessel, expires=lease.expires), lease
    return Attempt(ask.offer.node, address, ask.slot, outcome.kind, outcome.code, outcome.message), None


def _replace_number(attempt: Attempt, number: int) -> Attempt:
    return Attempt(attempt.node, attempt.address, attempt.slot, attempt.kind, attempt.code, attempt.message,
                   attempt.vessel, attempt.expires, number)


async def _give_back(surplus: Sequence[tuple[Attempt, Lease, Ask]], identity: Identity, timeout: float,
                     concurrency: int) -> list[tuple[Attempt, Lease | None, Ask]]:
    """Release grants beyond what was asked: each given back comes back marked released with no lease; one the
    node would not take back keeps its lease (`acquire` files it under acquirefail, to release later)."""
    if not surplus:
        return []
    items = [(index, VesselRef(ask.to.host, ask.to.port, lease.vessel))
             for index, (_, lease, ask) in enumerate(surplus)]

    async def give(node: Node, ref: VesselRef) -> None:
        await node.client.call("ReleaseLease", vessel=ref.vessel)

    asks = [ask for _, _, ask in surplus]
    outcomes = await fan_out(items, give, identity=identity, timeout=timeout, concurrency=concurrency,
                             node_keys=_keys(asks), relays=_relays(asks))
    rows: list[tuple[Attempt, Lease | None, Ask]] = []
    for (attempt, lease, ask), outcome in zip(surplus, outcomes, strict=True):
        if outcome.ok:
            rows.append((Attempt(attempt.node, attempt.address, attempt.slot, OK, vessel=attempt.vessel,
                                 expires=attempt.expires, released=True), None, ask))
        else:
            rows.append((Attempt(attempt.node, attempt.address, attempt.slot, FAILED, outcome.code,
                                 f"leased beyond what was asked and not given back ({outcome.reason}); release "
                                 "it: `seattle release acquirefail`", vessel=attempt.vessel,
                                 expires=attempt.expires), lease, ask))
    return rows


# --- renew and release ----------------------------------------------------------------------------------------


async def renew(session: Session, numbers: Sequence[int], identity: Identity, *, duration: float = DEFAULT_LEASE,
                progress: Progress | None = None) -> list[Outcome]:
    """RenewLease on every acquired vessel among `numbers` (others fail: no lease); the stored leases are
    replaced by the renewed ones, each verified. Groups renewgood / renewfail."""

    async def op(node: Node, ref: VesselRef) -> dict[str, Any]:
        answer = await node.client.call("RenewLease", vessel=ref.vessel, duration=duration)
        number = by_ref[ref]
        old = stored_lease(session, number)
        if old is None or node.client.node_key is None or not isinstance(answer, dict):
            raise _BadLease("the node renewed a lease this session does not hold")
        try:
            lease = Lease.verify(answer.get("lease"), node.client.node_key, time.time())
        except PoolRejected as exc:
            raise _BadLease(f"the renewed lease does not verify ({exc.code}: {exc.message})") from None
        if lease.lessee != identity.public_key or lease.slot != old.slot or lease.vessel != ref.vessel:
            raise _BadLease("the renewed lease is not the one this session holds")
        stored = StoredLease.of(lease)
        session.targets.vessels[number].lease = stored.to_json()
        return {"slot": stored.slot, "expires": stored.expires, "max_expiry": stored.max_expiry}

    by_ref = {ref: number for number, ref in session.targets.refs(numbers)}
    return await _on_leases(session, "renew", numbers, op, identity, progress)


async def release(session: Session, numbers: Sequence[int], identity: Identity, *,
                  progress: Progress | None = None) -> list[Outcome]:
    """ReleaseLease on every acquired vessel among `numbers`: each released vessel, and each whose lease had
    already ended, is forgotten (it is no longer ours). Groups releasegood / releasefail."""

    async def op(node: Node, ref: VesselRef) -> None:
        await node.client.call("ReleaseLease", vessel=ref.vessel)

    outcomes = await _on_leases(session, "release", numbers, op, identity, progress)
    ended = (refusals.NOT_LESSEE, refusals.LEASE_EXPIRED, refusals.NOT_POOL_VESSEL)
    gone = [o.number for o in outcomes if o.ok or (o.kind == REFUSED and o.code in ended)]
    session.targets.forget(gone)
    return outcomes


async def _on_leases(session: Session, command: str, numbers: Sequence[int],
                     op: VesselOp, identity: Identity,
                     progress: Progress | None) -> list[Outcome]:
    leased = [number for number in numbers if stored_lease(session, number) is not None]
    outcomes = await execute(session, command, leased, op, identity, progress=progress) if leased else []
    without = [Outcome(number, session.targets.vessels[number].ref, FAILED,
                       message="not acquired from the pool: it holds no lease")
               for number in numbers if number not in leased and number in session.targets.vessels]
    if without:
        session.targets.add_to_group(f"{command}fail", [o.number for o in without])
    return sorted([*outcomes, *without], key=lambda o: o.number)

