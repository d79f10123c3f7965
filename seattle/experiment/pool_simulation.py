"""The pool at scale, in virtual time: thousands of nodes' real lease ledgers, researchers acquiring with the real
plan, churn, and researchers who cheat. What it measures: how often an acquire gets all it asked for, how long
it takes, and leases held beyond a key's quota.

    summary = run_simulation(PoolConfig(nodes=10_000, churn=0.2, seed=1))

The parts that decide are the real ones: every node is a `seattle.pool.ledger.Ledger` (quota, slots, per-key
cap, evidence bans, signed leases), every researcher chooses with `seattle.experiment.pool` (`rank`, `Plan`).
What is modelled instead of sent: the overlay is a dictionary (a node files each lease it grants under its slot
key, where it stays until it expires, also when the node dies, as a DHT record would; a node that finds evidence
files it under the key's evidence subjects, where a node later asked for any of the key's slots finds it while
the finder is alive to show it), and time is added up from link latencies (each link's round trip drawn once,
20-200 ms; an overlay lookup costs LOOKUP_TRIPS round trips; a node that left costs the connect timeout).

Timeline: over `span` seconds, `acquires` acquires of `count` vessels each start at uniform times, each by one
of `researchers` keys (quota 10), which first releases what it acquired before (its last experiment is over).
`churn`·N nodes leave at uniform times, abruptly (their offer records linger, and their leases' records hold
those slots until the leases expire), each replaced by a fresh node. A fraction `cheaters` of the keys asks for
every slot twice at once, on two nodes, hoping both grant before either files the lease: within one race
window they can win (both nodes looked the slot up before either filed it); after it, the filed leases are
evidence: the node that sees them refuses the key and files the evidence, and every node asked for any slot of
the key afterwards refuses it too.

Leases over quota, per key: at the end of every acquire, the key's live leases (live node, not expired) beyond
its quota. `over_quota_beyond_window` counts grants of a slot whose other lease was already filed when the
node looked (the check failed): the goal is 0.
"""

from __future__ import annotations

import hashlib
import random
import statistics
from dataclasses import dataclass, field, replace

import nacl.signing

from seattle.experiment.pool import Ask, Plan, Reachable, offers_wanted, rank
from seattle.keys import Identity, PublicKey
from seattle.nodemgr.signing import sign_request
from seattle.pool.formats import BASE_QUOTA, DEFAULT_LEASE, Evidence, Lease, Offer
from seattle.pool.ledger import Ledger, OverlayView
from seattle.pool.refusals import LeaseRefused

#: Round trips of one overlay lookup (iterative Kademlia at 10,000 nodes: ~3 hops of alpha-parallel requests).
LOOKUP_TRIPS = 3
START = 1_800_000_000.0
#: Every simulated node manager's port (the simulated nodes are public: each is reached at its address).
PORT = 1224


@dataclass(frozen=True)
class PoolConfig:
    nodes: int = 10_000
    vessels_per_node: int = 4
    researchers: int = 500
    acquires: int = 1000
    count: int = 10
    churn: float = 0.2
    cheaters: float = 0.05
    span: float = 3600.0
    timeout: float = 5.0
    seed: int = 1


@dataclass
class PoolSummary:
    """Acquires, time and leases are honest researchers' (each releases its previous leases first); the quota
    figures count every key, cheaters included."""

    acquires: int
    complete: int  # acquires that got every vessel asked for
    vessels_asked: int
    vessels_leased: int
    seconds: list[float] = field(default_factory=list)  # virtual time per acquire
    over_quota_max: int = 0  # most leases beyond quota any key held at once
    over_quota_keys: int = 0  # keys ever beyond quota
    over_quota_in_window: int = 0  # second grants of a slot within one race window (cheaters only)
    over_quota_beyond_window: int = 0  # double grants after the other lease was filed: must be 0
    slots_lost: int = 0  # slots honest keys could not use: held by a lease on a node that left
    cheater_bans: int = 0  # refusals key_banned seen by cheating keys
    learnt_bans: int = 0  # of those, at nodes that learnt the evidence from another node (it spread)
    refusals: dict[str, int] = field(default_factory=dict)

    @property
    def success(self) -> float:
        return self.complete / self.acquires if self.acquires else 1.0

    def median_seconds(self) -> float:
        return statistics.median(self.seconds) if self.seconds else 0.0

    def p95_seconds(self) -> float:
        return sorted(self.seconds)[int(0.95 * (len(self.seconds) - 1))] if self.seconds else 0.0

    def to_json(self) -> dict[str, object]:
        return {"acquires": self.acquires, "complete": self.complete, "success": self.success,
                "vessels_asked": self.vessels_asked, "vessels_leased": self.vessels_leased,
                "median_seconds": self.median_seconds(), "p95_seconds": self.p95_seconds(),
                "over_quota_max": self.over_quota_max, "over_quota_keys": self.over_quota_keys,
                "over_quota_in_window": self.over_quota_in_window,
                "over_quota_beyond_window": self.over_quota_beyond_window, "slots_lost": self.slots_lost,
                "cheater_bans": self.cheater_bans, "learnt_bans": self.learnt_bans,
                "refusals": dict(sorted(self.refusals.items()))}


@dataclass
class _Node:
    identity: Identity
    ledger: Ledger
    rtt: float
    offer: Offer
    host: str
    left_at: float | None = None


class _Simulation:
    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.nodes: dict[bytes, _Node] = {}
        self.serial = 0
        self.filed: dict[tuple[bytes, int], list[Lease]] = {}  # the overlay: leases under their slot keys
        self.slots: dict[bytes, set[int]] = {}  # key → the slots it has leases filed under
        self.evidence: dict[bytes, dict[bytes, Evidence]] = {}  # key → finder node → the evidence it files
        self.researchers = [self._identity(f"researcher{i}") for i in range(config.researchers)]
        cheaters = round(config.cheaters * config.researchers)
        self.cheating = {r.public_key.raw for r in self.researchers[:cheaters]}
        self.summary = PoolSummary(0, 0, 0, 0)
        self.over_keys: set[bytes] = set()
        for _ in range(config.nodes):
            self._join(START)

    def _identity(self, label: str) -> Identity:
        seed = hashlib.blake2b(f"{self.config.seed}/{label}".encode(), digest_size=32).digest()
        return Identity("sim", nacl.signing.SigningKey(seed))

    def _join(self, now: float) -> None:
        self.serial += 1
        identity = self._identity(f"node{self.serial}")
        host = f"10.{self.serial >> 16 & 255}.{self.serial >> 8 & 255}.{self.serial & 255}"
        ledger = Ledger(identity, [f"p{i}" for i in range(self.config.vessels_per_node)], lambda _: None)
        raw = Offer.sign(identity, size={"cpu": 0.02}, free=self.config.vessels_per_node,
                         total=self.config.vessels_per_node, reachability="public", uptime=86400.0, country="",
                         addresses=[f"{host}:{PORT}"], now=now)
        self.nodes[identity.public_key.raw] = _Node(identity, ledger, self.rng.uniform(0.02, 0.2),
                                                    Offer.verify(raw, now), host)

    def run(self) -> PoolSummary:
        config = self.config
        events: list[tuple[float, str]] = [(START + self.rng.uniform(0, config.span), "acquire")
                                           for _ in range(config.acquires)]
        events += [(START + self.rng.uniform(0, config.span), "churn") for _ in range(round(config.churn
                                                                                             * config.nodes))]
        for now, kind in sorted(events):
            if kind == "churn":
                self._churn(now)
            else:
                self._acquire(self.rng.choice(self.researchers), now)
        self.summary.over_quota_keys = len(self.over_keys)
        return self.summary

    def _churn(self, now: float) -> None:
        alive = [node for node in self.nodes.values() if node.left_at is None]
        self.rng.choice(alive).left_at = now
        self._join(now)

    # -- one acquire ------------------------------------------------------------------------------------

    def _release_all(self, key: PublicKey) -> None:
        """The researcher's previous experiment is over: every lease on a live node is released and withdrawn.
        A lease on a node that left cannot be: its filed record holds the slot until it expires."""
        for slot in list(self.slots.get(key.raw, ())):
            kept = []
            for lease in self.filed[(key.raw, slot)]:
                node = self.nodes[lease.node.raw]
                if node.left_at is None:
                    node.ledger.release(key, lease.vessel)
                    node.ledger.finish(lease.vessel)
                else:
                    kept.append(lease)
            self.filed[(key.raw, slot)] = kept

    def _acquire(self, researcher: Identity, now: float) -> None:
        config, key = self.config, researcher.public_key
        cheat = key.raw in self.cheating
        if not cheat:
            self._release_all(key)
            self.summary.acquires += 1
            self.summary.vessels_asked += config.count
        held = {slot for slot in self.slots.get(key.raw, ()) if any(
            lease.expires > now for lease in self.filed[(key.raw, slot)])}
        # Offers as `find_offers` gathers them: a random few, with what the nodes said when last published
        # (a node that left abruptly still has its record there).
        visible = [node for node in self.nodes.values() if node.left_at is None or now - node.left_at < 3 * 3600]
        sample = self.rng.sample(visible, min(len(visible), offers_wanted(config.count)))
        offers = [Reachable(replace(node.offer, free=len(node.ledger.free())), node.host, PORT) for node in sample]
        seconds = LOOKUP_TRIPS * 0.1 + max(self._latency(node) for node in sample)
        slots = list(range(BASE_QUOTA)) if cheat else [s for s in range(BASE_QUOTA) if s not in held]
        if not cheat:
            self.summary.slots_lost += len(held)
        plan = Plan(rank(offers, self.rng), slots, config.count)
        leased = 0
        while own := plan.next_round():
            batch = list(own)
            if cheat:  # the same slots again, on other nodes, in the same round
                batch += [replace(ask, to=Reachable(other.offer, other.host, PORT))
                          for ask, other in zip(own, self.rng.sample(visible, len(own)), strict=True)]
            seconds += max(self._latency(self.nodes[ask.offer.node.raw]) for ask in batch) + LOOKUP_TRIPS * 0.1
            views = [self._view(key, ask.slot) for ask in batch]  # every node looks before any files
            grants: list[Lease] = []
            for index, (ask, view) in enumerate(zip(batch, views, strict=True)):
                lease, code = self._ask(researcher, ask, view, now)
                if lease is not None:
                    grants.append(lease)
                if index < len(own):
                    plan.granted(ask) if lease is not None else plan.refused(ask, code)
            granted_slots = [lease.slot for lease in grants]
            self.summary.over_quota_in_window += len(granted_slots) - len(set(granted_slots))
            for lease in grants:
                self.filed.setdefault((key.raw, lease.slot), []).append(lease)
                self.slots.setdefault(key.raw, set()).add(lease.slot)
            leased += len(grants)
        if not cheat:
            self.summary.vessels_leased += min(leased, config.count)
            self.summary.complete += leased >= config.count
            self.summary.seconds.append(seconds)
        self._count_over_quota(key, now)

    def _latency(self, node: _Node) -> float:
        return self.config.timeout if node.left_at is not None else node.rtt

    def _view(self, key: PublicKey, slot: int) -> OverlayView:
        """The slot's filed leases, and the evidence against the key that finders still alive show (filed under
        every slot key below BASE_QUOTA, so found whatever slot is asked)."""
        shown = [evidence for finder, evidence in self.evidence.get(key.raw, {}).items()
                 if self.nodes[finder].left_at is None]
        return OverlayView({slot: list(self.filed.get((key.raw, slot), []))}, evidence=shown)

    def _ask(self, researcher: Identity, ask: Ask, view: OverlayView, now: float) -> tuple[Lease | None, str]:
        """The node's lease, or None and the refusal's code ("" for a node that left: no answer)."""
        node = self.nodes[ask.offer.node.raw]
        if node.left_at is not None:
            return None, ""
        request = sign_request(researcher, node.identity.public_key, "AcquireVessel",
                               {"slot": ask.slot, "duration": DEFAULT_LEASE}, now=now,
                               nonce=self.rng.randbytes(16))
        try:
            lease = node.ledger.acquire(researcher.public_key, ask.slot, DEFAULT_LEASE, request, view, now)
        except LeaseRefused as refused:
            key = researcher.public_key
            self.summary.refusals[refused.code] = self.summary.refusals.get(refused.code, 0) + 1
            if refused.code == "key_banned" and key.raw in self.cheating:
                self.summary.cheater_bans += 1
                found = [e for e in node.ledger.filed_evidence(now) if e.lessee == key]
                if found:
                    self.evidence.setdefault(key.raw, {})[node.identity.public_key.raw] = found[0]
                else:
                    self.summary.learnt_bans += 1
            return None, refused.code
        others = [held for held in self.filed.get((researcher.public_key.raw, ask.slot), [])
                  if held.expires > now and held.node != lease.node]
        if others:  # the node granted a slot whose other lease it could see: the check failed
            self.summary.over_quota_beyond_window += 1
        return lease, ""

    def _count_over_quota(self, key: PublicKey, now: float) -> None:
        live = sum(1 for slot in self.slots.get(key.raw, ()) for lease in self.filed[(key.raw, slot)]
                   if lease.expires > now and self.nodes[lease.node.raw].left_at is None)
        over = live - BASE_QUOTA
        if over > 0:
            self.over_keys.add(key.raw)
            self.summary.over_quota_max = max(self.summary.over_quota_max, over)


def run_simulation(config: PoolConfig) -> PoolSummary:
    return _Simulation(config).run()
