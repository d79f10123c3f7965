"""Overlay simulations at scale: N real protocol engines on the simulated network, with churn and loss.

`run_simulation(Config)` builds the overlay (tables seeded by `SimNetwork.seed_tables`), then runs a lookup
phase in virtual time during which lookups start at a steady rate while nodes leave and join (churn), and
returns a `Result`: one `LookupFigures` per lookup and a `Summary`. `write_csv` and `write_plot` turn a result
into files. Definitions (churn, success, hops, messages) are in docs/simulations.md; in short:

* churn F: F·N nodes of the starting population are killed abruptly and F·N new nodes join through the real
  protocol (`seattle.overlay.join.join`), at random moments spread over the lookup phase; with `rejoin=False` nobody
  joins (abrupt departures only, as the DHT survey measured churn);
* success: the lookup's result holds the live node closest to the target when the lookup ends;
* hops: `Lookup.hops()`, the requests on the chain that found the closest node that answered;
* messages: the find_node requests a lookup sent plus the answers it got; `datagrams_per_lookup` is everything
  the network carried during the phase (ping-backs and joins included) divided by the lookups.
* behind NAT (`behind_nat` > 0): that share of the nodes, starting population and joiners alike, sits alone
  behind a home router of its own, the kinds in turn (cone NAT, symmetric NAT, firewall); every node then
  measures its reachability (`seattle.overlay.reachability`), and those behind routers are DHT clients: they
  start lookups like anyone but are never the answer, so "the live node closest" counts public nodes only.
  `reachable_median`/`_p90` is the virtual time from a node's start (the phase's start, or its join's) to its
  first measured state, `measured` the share of live nodes that have one, `state_correct` the share of those
  whose state is the router's (public, nat, nat, firewalled).

Everything random comes from the seed (node keys, the engines' `randomness`, the schedule), so one seed gives
one run, byte for byte.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import itertools
import random
import resource
import statistics
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import trio
import trio.testing

from seattle.natkind import NatKind
from seattle.overlay.addresses import Scope
from seattle.overlay.join import join
from seattle.overlay.nodeid import ID_BITS, NetworkParameters, NodeId, solve_identity
from seattle.overlay.protocol import OverlayNode
from seattle.overlay.reachability import State, Tracker
from seattle.overlay.simnet import DEFAULT_TIMEOUT, SimNetwork

#: Virtual seconds after the last lookup starts before the phase ends, so every lookup and join can finish.
_DRAIN = 70.0


@dataclass(frozen=True)
class Config:
    """One simulation run. `interval` is the virtual time between lookup starts; the phase lasts
    lookups × interval seconds, and churn is spread over the same span."""

    nodes: int = 1000
    churn: float = 0.0
    loss: float = 0.0
    lookups: int = 200
    seed: int = 1
    k: int = 20
    alpha: int = 3
    interval: float = 0.1
    latency: tuple[float, float] = (0.01, 0.1)
    rejoin: bool = True  # as many new nodes join as leave
    #: The work each node id carries (`nodeid.NetworkParameters`). None by default: each node costs
    #: 2**puzzle_bits key generations to build (10,000 nodes at 4 bits: about 4 s on one core).
    puzzle_bits: int = 0
    #: The share of nodes behind a home router of their own (module docstring); 0: none, nobody measures.
    behind_nat: float = 0.0

    def __post_init__(self) -> None:
        for name in ("nodes", "lookups", "k", "alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")
        if self.nodes < 2:
            raise ValueError(f"nodes must be at least 2 (a lookup needs someone to ask), got {self.nodes}")
        if not 0 <= self.churn <= 1:
            raise ValueError(f"churn is a fraction of the nodes in [0, 1], got {self.churn!r}")
        if not 0 <= self.behind_nat < 1:
            raise ValueError(f"behind_nat is a fraction of the nodes in [0, 1), got {self.behind_nat!r}")
        if not 0 <= self.loss < 1:
            raise ValueError(f"loss is a probability in [0, 1), got {self.loss!r}")
        if round(self.nodes * self.churn) > self.nodes - 2:
            raise ValueError(f"churn {self.churn} would leave fewer than 2 of {self.nodes} starting nodes")
        if not self.interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, got {self.interval!r}")
        NetworkParameters(puzzle_bits=self.puzzle_bits)  # refuses a value out of range, saying why


@dataclass(frozen=True)
class LookupFigures:
    """One lookup: when it started (virtual seconds into the phase), what it found, what it cost."""

    index: int
    started: float
    success: bool
    closest_found: float  # fraction of the true k closest live nodes among the results
    hops: int
    latency: float  # virtual seconds
    messages: int  # find_node requests sent + answers received
    timed_out: bool


@dataclass(frozen=True)
class Summary:
    """The headline figures of a run (what `--json` prints)."""

    nodes: int
    churn: float
    rejoin: bool
    loss: float
    lookups: int
    seed: int
    k: int
    success_rate: float
    closest_found_mean: float
    hops_median: float
    hops_p90: float
    latency_median: float
    latency_p90: float
    messages_median: float
    messages_mean: float
    datagrams_per_lookup: float
    timed_out: int
    left: int
    joined: int
    joins_failed: int
    build_seconds: float
    run_seconds: float
    peak_rss_mib: float
    behind_nat: float = 0.0
    measured: float = 0.0
    state_correct: float = 0.0
    reachable_median: float = 0.0
    reachable_p90: float = 0.0


@dataclass(frozen=True)
class Timeline:
    """Who was where and when, for models run over a finished run (the relays' in `simulations/relays.py`,
    which this layer may not import): times are virtual seconds since the lookup phase's start."""

    sim: SimNetwork
    #: Each node's router kind (None: on the internet), starting population and joiners alike.
    kind: dict[OverlayNode, NatKind | None]
    start: list[OverlayNode]
    #: `sim.now()` at the phase's start: a node's `reachability.value.checked_at` less this is phase time.
    origin: float
    end: float
    left: list[tuple[float, OverlayNode]]
    #: Joiners, when their join completed (those whose join failed are not here).
    joined: list[tuple[float, OverlayNode]]


@dataclass(frozen=True)
class Result:
    summary: Summary
    lookups: list[LookupFigures]
    timeline: Timeline


def run_simulation(config: Config) -> Result:
    """Build the overlay, run the lookup phase under a MockClock, and summarise it (see the module doc)."""
    started = time.perf_counter()
    sim = SimNetwork(config.seed, latency=config.latency, loss=config.loss)
    population = [_new_node(config, f"node{number}") for number in range(config.nodes)]
    routers = _Routers(config, sim)
    for number, node in enumerate(population):
        routers.attach(node, number)
    sim.seed_tables()
    built = time.perf_counter()
    phase = _Phase(config, sim, population, routers)
    trio.run(phase.run, clock=trio.testing.MockClock(autojump_threshold=0))
    finished = time.perf_counter()
    timeline = Timeline(sim, routers.kind, population, phase.origin, phase.end, phase.departures, phase.arrivals)
    return Result(_summarise(config, phase, built - started, finished - built), phase.figures, timeline)


def _new_node(config: Config, name: str) -> OverlayNode:
    """Keys and the engine's random source derived from the seed and a name, so node ids, every routing decision
    and every datagram's bytes repeat run to run."""
    seeds = (_seed(f"{config.seed}/{name}" + (f"#{number}" if number else "")) for number in itertools.count())
    network = NetworkParameters(puzzle_bits=config.puzzle_bits)
    identity = solve_identity(name, network, seeds=lambda: next(seeds))
    # The simulator's addresses are 127.x and 10.x: the whole simulated network is one loopback testbed.
    return OverlayNode(identity, randomness=random.Random(_seed(f"{config.seed}/{name}")), k=config.k,
                       alpha=config.alpha, scope=Scope.LOOPBACK, network=network,
                       reachability=Tracker() if config.behind_nat else None)


#: The state each router kind should bring its node to; None: on the internet.
_EXPECTED = {None: State.PUBLIC, NatKind.CONE: State.NAT, NatKind.SYMMETRIC: State.NAT,
             NatKind.FIREWALL: State.FIREWALLED}


class _Routers:
    """Puts every node on the network: `behind_nat` of them, spread evenly by number, behind a router of their
    own, the kinds in turn."""

    _KINDS = (NatKind.CONE, NatKind.SYMMETRIC, NatKind.FIREWALL)

    def __init__(self, config: Config, sim: SimNetwork) -> None:
        self.share = config.behind_nat
        self.sim = sim
        self.kind: dict[OverlayNode, NatKind | None] = {}
        self._homes = 0

    def attach(self, node: OverlayNode, number: int) -> None:
        behind = int((number + 1) * self.share) > int(number * self.share)
        kind = self._KINDS[self._homes % len(self._KINDS)] if behind else None
        if kind is None:
            self.sim.attach(node)
        else:
            self._homes += 1
            self.sim.attach(node, behind=self.sim.add_router(kind))
        self.kind[node] = kind


def _seed(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=32).digest()


class LiveIds:
    """The ids of the live, joined nodes, sorted, answering "which k are closest to this target?" exactly.

    Ids sharing the target's top p bits form one contiguous run of the sorted list and are all closer to it
    by XOR than any id outside; so the smallest such run holding enough ids contains the answer.
    """

    def __init__(self, ids: Iterable[int]) -> None:
        self._ids = sorted(ids)

    def add(self, value: int) -> None:
        bisect.insort(self._ids, value)

    def remove(self, value: int) -> None:
        self._ids.pop(bisect.bisect_left(self._ids, value))

    def closest(self, target: int, count: int, exclude: int) -> list[int]:
        wanted = min(count + 1, len(self._ids))
        for free_bits in range(ID_BITS + 1):
            low = (target >> free_bits) << free_bits
            start = bisect.bisect_left(self._ids, low)
            end = bisect.bisect_left(self._ids, low + (1 << free_bits))
            if end - start >= wanted:
                break
        near = [value for value in self._ids[start:end] if value != exclude]
        return sorted(near, key=lambda value: value ^ target)[:count]


class _Phase:
    """The lookup phase: one scheduler task starts lookups, kills and joins at their planned moments."""

    def __init__(self, config: Config, sim: SimNetwork, population: list[OverlayNode], routers: _Routers) -> None:
        self.config = config
        self.sim = sim
        self.routers = routers
        # The label predates the module's rename; kept so that published results repeat.
        self.random = random.Random(f"experiment/{config.seed}")
        self.members = list(population)  # live and joined: who may start a lookup, leave, or be joined via
        # The answers a lookup may find: public nodes (those behind routers are DHT clients).
        self.live = LiveIds(node.node_id.value for node in population if routers.kind[node] is None)
        self.vias = [node for node in population if routers.kind[node] is None]  # whom a joiner may join through
        #: Each node's start, in virtual (engine) seconds: the phase's start, or its join's.
        self.started: dict[OverlayNode, float] = {}
        self.busy: set[OverlayNode] = set()  # starting a lookup or helping a join: not killed meanwhile
        self.figures: list[LookupFigures] = []
        self.left = self.joined = self.joins_failed = 0
        self.datagrams = 0
        self.origin = self.end = 0.0
        self.departures: list[tuple[float, OverlayNode]] = []
        self.arrivals: list[tuple[float, OverlayNode]] = []
        churned = round(config.nodes * config.churn)
        span = config.lookups * config.interval
        events = [(index * config.interval, 0, index) for index in range(config.lookups)]
        events += [(self.random.uniform(0, span), 1, index) for index in range(churned)]
        if config.rejoin:
            events += [(self.random.uniform(0, span), 2, index) for index in range(churned)]
        self.events = sorted(events)

    async def run(self) -> None:
        async with self.sim.running():
            self.origin = self.sim.now()
            self.started = dict.fromkeys(self.members, self.origin)
            sent_before = self.sim.traffic.sent
            origin = trio.current_time()
            async with trio.open_nursery() as nursery:
                for at, what, index in self.events:
                    await trio.sleep_until(origin + at)
                    if what == 0:
                        me = self.random.choice(self._idle_sample())
                        target = NodeId(self.random.getrandbits(ID_BITS))
                        self.busy.add(me)
                        nursery.start_soon(self._lookup, index, me, target, trio.current_time() - origin)
                    elif what == 1:
                        self._leave()
                    else:
                        newcomer = _new_node(self.config, f"joiner{index}")
                        self.routers.attach(newcomer, self.config.nodes + index)
                        self.started[newcomer] = self.sim.now()
                        via = self.random.choice(self._idle_sample(self.vias))
                        self.busy.add(via)
                        nursery.start_soon(self._join, newcomer, via)
                await trio.sleep(_DRAIN)
                nursery.cancel_scope.cancel()
            self.datagrams = self.sim.traffic.sent - sent_before
            self.end = self.sim.now() - self.origin
        self.figures.sort(key=lambda figures: figures.index)

    def _idle_sample(self, among: list[OverlayNode] | None = None) -> list[OverlayNode]:
        """A few members (or of `among`) not busy, drawn at random (drawing from all members each time would be
        O(N))."""
        pool = self.members if among is None else among
        while True:
            picks = [self.random.choice(pool) for _ in range(4)]
            idle = [node for node in picks if node not in self.busy]
            if idle:
                return idle

    def _leave(self) -> None:
        victim = self.random.choice(self._idle_sample())
        self.members.remove(victim)
        if self.routers.kind[victim] is None:
            self.live.remove(victim.node_id.value)
            self.vias.remove(victim)
        self.sim.kill(victim)
        self.departures.append((self.sim.now() - self.origin, victim))
        self.left += 1

    async def _join(self, newcomer: OverlayNode, via: OverlayNode) -> None:
        try:
            # Retried: a lossy network may eat the bootstrap request or its answer.
            joined = await join(self.sim.transport(newcomer), [self.sim.address(via)], DEFAULT_TIMEOUT, attempts=3)
        finally:
            self.busy.discard(via)
        if not joined.answers or joined.lookup_timed_out:
            self.joins_failed += 1
            self.sim.kill(newcomer)  # a node that could not join gives up; it is not counted as live
            return
        self.members.append(newcomer)
        self.arrivals.append((self.sim.now() - self.origin, newcomer))
        if self.routers.kind[newcomer] is None:
            self.live.add(newcomer.node_id.value)
            self.vias.append(newcomer)
        self.joined += 1

    async def _lookup(self, index: int, me: OverlayNode, target: NodeId, started: float) -> None:
        begun = trio.current_time()
        try:
            lookup = await self.sim.transport(me).traced_lookup(target)
        except TimeoutError:
            self.figures.append(LookupFigures(index, started, False, 0.0, 0, trio.current_time() - begun, 0, True))
            return
        finally:
            self.busy.discard(me)
        latency = trio.current_time() - begun
        found = {contact.node_id.value for contact in lookup.result()}
        truth = self.live.closest(target.value, self.config.k, exclude=me.node_id.value)
        self.figures.append(
            LookupFigures(
                index=index,
                started=started,
                success=bool(truth) and truth[0] in found,
                closest_found=len(found.intersection(truth)) / len(truth) if truth else 0.0,
                hops=lookup.hops(),
                latency=latency,
                messages=lookup.asked + lookup.answered,
                timed_out=False,
            )
        )


def _summarise(config: Config, phase: _Phase, build_seconds: float, run_seconds: float) -> Summary:
    figures = phase.figures
    hops = [f.hops for f in figures if not f.timed_out] or [0]
    latency = [f.latency for f in figures if not f.timed_out] or [0.0]
    messages = [f.messages for f in figures if not f.timed_out] or [0]
    return Summary(
        nodes=config.nodes,
        churn=config.churn,
        rejoin=config.rejoin,
        loss=config.loss,
        lookups=len(figures),
        seed=config.seed,
        k=config.k,
        success_rate=sum(f.success for f in figures) / len(figures),
        closest_found_mean=statistics.fmean(f.closest_found for f in figures),
        hops_median=statistics.median(hops),
        hops_p90=_percentile(hops, 0.9),
        latency_median=statistics.median(latency),
        latency_p90=_percentile(latency, 0.9),
        messages_median=statistics.median(messages),
        messages_mean=statistics.fmean(messages),
        datagrams_per_lookup=phase.datagrams / len(figures),
        timed_out=sum(f.timed_out for f in figures),
        left=phase.left,
        joined=phase.joined,
        joins_failed=phase.joins_failed,
        build_seconds=build_seconds,
        run_seconds=run_seconds,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **_reachability(config, phase),
    )


def _reachability(config: Config, phase: _Phase) -> dict[str, float]:
    """The reachability figures of the live members at the end (module docstring); none without NAT."""
    if not config.behind_nat:
        return {}
    values = [(node, node.reachability.value) for node in phase.members if node.reachability is not None]
    done = [(node, value) for node, value in values if value.state is not State.UNKNOWN]
    times = [value.checked_at - phase.started[node] for node, value in done if value.checked_at is not None] or [0.0]
    correct = sum(value.state is _EXPECTED[phase.routers.kind[node]] for node, value in done)
    return {"behind_nat": config.behind_nat, "measured": len(done) / max(1, len(values)),
            "state_correct": correct / max(1, len(done)), "reachable_median": statistics.median(times),
            "reachable_p90": _percentile(times, 0.9)}


def _percentile(values: list[float] | list[int], fraction: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))])


def write_csv(result: Result, path: Path) -> None:
    """One row per lookup, columns named as `LookupFigures`' fields."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[field.name for field in fields(LookupFigures)])
        writer.writeheader()
        for figures in result.lookups:
            writer.writerow(asdict(figures))


def write_plot(result: Result, path: Path) -> None:
    """Three panels: the hop-count histogram, the latency CDF, and success over the phase."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    summary, figures = result.summary, result.lookups
    done = [f for f in figures if not f.timed_out]
    figure, (hops_axis, latency_axis, success_axis) = plt.subplots(1, 3, figsize=(15, 4.2))
    figure.suptitle(
        f"{summary.nodes:,} nodes, churn {summary.churn:.0%}, loss {summary.loss:.0%}, "
        f"{summary.lookups:,} lookups (seed {summary.seed}): success {summary.success_rate:.1%}"
    )
    hop_values = [f.hops for f in done]
    if hop_values:
        hops_axis.hist(hop_values, bins=range(0, max(hop_values) + 2), align="left", rwidth=0.8)
    hops_axis.set(title="hops to the closest node", xlabel="hops", ylabel="lookups")
    latencies = sorted(f.latency for f in done)
    latency_axis.plot(latencies, [(rank + 1) / len(latencies) for rank in range(len(latencies))])
    latency_axis.set(title="lookup latency (virtual)", xlabel="seconds", ylabel="fraction of lookups")
    window = max(1, len(figures) // 20)
    starts = [figures[i].started for i in range(0, len(figures), window)]
    rates = [
        sum(f.success for f in figures[i : i + window]) / len(figures[i : i + window])
        for i in range(0, len(figures), window)
    ]
    success_axis.plot(starts, rates, marker="o")
    success_axis.set(title="success over the phase", xlabel="lookup start (s)", ylabel="success", ylim=(0, 1.05))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
