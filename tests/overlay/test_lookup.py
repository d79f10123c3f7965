"""Lookup state machine driven against an in-test routing model with a fake clock (the sans-IO point).

The routing model is a few hundred nodes with real `RoutingTable`s; some nodes are dead (never reply) and
reply latencies vary. The driver below is what a transport does: expire, send, deliver the earliest reply.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

import pytest

from seattle.overlay.lookup import Lookup, RttEstimator
from seattle.overlay.nodeid import ID_BITS, Contact, NodeId
from seattle.overlay.routing import RoutingTable

K = 20


@dataclass
class RoutingModel:
    """Who would answer what: each node's routing table, contact and reply latency, and who is dead.

    Not a network: no engines and no datagrams. `drive` answers a lone `Lookup`'s requests straight from the
    tables, so the state machine is tested apart from the protocol; the network of engines is `SimNetwork`.
    """

    tables: dict[NodeId, RoutingTable]
    contacts: dict[NodeId, Contact]
    latency: dict[NodeId, float]
    dead: set[NodeId] = field(default_factory=set)

    def live_closest(self, target: NodeId, count: int) -> list[NodeId]:
        live = [node_id for node_id in self.contacts if node_id not in self.dead]
        return sorted(live, key=target.distance)[:count]


def build_model(size: int, dead_fraction: float, seed: int, noticed: bool) -> RoutingModel:
    """`size` nodes with full routing tables; `dead_fraction` of them then die.

    With `noticed`, every node has since missed enough replies from the dead to drop them (replacements move
    in); without it, every table is stale and replies keep pointing at dead nodes.
    """
    rng = random.Random(seed)
    ids = [NodeId(rng.getrandbits(ID_BITS)) for _ in range(size)]
    contacts = {node_id: Contact(node_id, f"10.{n >> 8}.{n & 255}.1", 7000) for n, node_id in enumerate(ids)}
    dead = set(rng.sample(ids, int(size * dead_fraction)))
    tables = {node_id: full_table(node_id, contacts, rng) for node_id in ids}
    if noticed:
        for table in tables.values():
            for node_id in dead & {c.node_id for c in [*table, *table.replacements()]}:
                while table.record_failure(node_id, now=1) is False:
                    pass
    latency = {node_id: rng.uniform(0.01, 0.2) for node_id in ids}
    return RoutingModel(tables, contacts, latency, dead)


def full_table(own_id: NodeId, contacts: dict[NodeId, Contact], rng: random.Random) -> RoutingTable:
    table = RoutingTable(own_id, k=K)
    for other in rng.sample(sorted(contacts), len(contacts)):
        if other != own_id:
            table.observe(contacts[other], now=0)
    return table


@dataclass
class Run:
    max_in_flight: int = 0
    sent: list[tuple[float, Contact]] = field(default_factory=list)
    timed_out: list[Contact] = field(default_factory=list)
    finished_at: float = 0.0


def drive(lookup: Lookup, model: RoutingModel, limit: int = 10_000) -> Run:
    """Run `lookup` to completion on the routing model with a fake clock; what a real transport would do."""
    now = 0.0
    run = Run()
    arrivals: list[tuple[float, int, Contact]] = []
    for _ in range(limit):
        run.timed_out += lookup.expire(now)
        for peer in lookup.next_requests(now):
            run.sent.append((now, peer))
            if peer.node_id not in model.dead:
                heapq.heappush(arrivals, (now + model.latency[peer.node_id], len(run.sent), peer))
        run.max_in_flight = max(run.max_in_flight, lookup.in_flight())
        if lookup.done:
            run.finished_at = now
            return run
        deadline = lookup.next_deadline()
        assert deadline is not None, "lookup is not done but has nothing in flight: it stalled"
        if arrivals and arrivals[0][0] <= deadline:
            now, _, peer = heapq.heappop(arrivals)
            lookup.on_reply(peer, model.tables[peer.node_id].closest(lookup.target, K), now)
        else:
            now = deadline
    raise AssertionError(f"lookup did not terminate within {limit} steps")


@pytest.fixture(scope="module")
def model() -> RoutingModel:
    return build_model(size=300, dead_fraction=0.2, seed=11, noticed=True)


@pytest.fixture(scope="module")
def stale_model() -> RoutingModel:
    return build_model(size=300, dead_fraction=0.2, seed=12, noticed=False)


def start(model: RoutingModel, seed: int, **options) -> tuple[NodeId, Lookup]:
    """A lookup from a live node whose own table is stale (still lists the dead), toward a random target."""
    rng = random.Random(seed)
    origin = rng.choice(sorted(set(model.contacts) - model.dead))
    target = NodeId(rng.getrandbits(ID_BITS))
    seeds = full_table(origin, model.contacts, rng).closest(target, K)
    assert set(seeds) & {model.contacts[n] for n in model.dead}, "the test needs dead seeds"
    return target, Lookup(target, seeds, k=K, own_id=origin, **options)


def live_truth(model: RoutingModel, target: NodeId, lookup: Lookup) -> list[NodeId]:
    """The k live nodes closest to `target`, not counting the origin (never part of its own result)."""
    return [n for n in model.live_closest(target, K + 1) if n != lookup.own_id][:K]


@pytest.mark.parametrize("seed", range(8))
def test_finds_the_true_k_closest_live_nodes(model: RoutingModel, seed: int) -> None:
    target, lookup = start(model, seed)
    run = drive(lookup, model)
    assert [c.node_id for c in lookup.result()] == live_truth(model, target, lookup)
    assert run.max_in_flight <= 3


@pytest.mark.slow
def test_stale_tables_everywhere_still_give_nearly_the_true_set(stale_model: RoutingModel) -> None:
    """Replies that list dead nodes cost a timeout each, and may hide a live node just past the k-th place."""
    overlaps = []
    for seed in range(8):
        target, lookup = start(stale_model, seed)
        drive(lookup, stale_model)
        found = [c.node_id for c in lookup.result()]
        assert not set(found) & stale_model.dead
        overlaps.append(len(set(found) & set(live_truth(stale_model, target, lookup))))
    assert sum(overlaps) >= 0.9 * K * len(overlaps)


def test_never_queries_a_contact_twice(model: RoutingModel) -> None:
    _, lookup = start(model, 99)
    run = drive(lookup, model)
    queried = [peer for _, peer in run.sent]
    assert len(queried) == len(set(queried))


def test_a_dead_peer_holds_one_slot_while_the_others_keep_going(model: RoutingModel) -> None:
    rng = random.Random(5)
    target = NodeId(rng.getrandbits(ID_BITS))
    dead_seed = model.contacts[sorted(model.dead, key=target.distance)[0]]
    live = [model.contacts[n] for n in sorted(set(model.contacts) - model.dead, key=target.distance)]
    lookup = Lookup(target, [dead_seed, *live[40:60]], alpha=3, k=K)
    run = drive(lookup, model)
    dead_sent_at = next(t for t, peer in run.sent if peer == dead_seed)
    dead_deadline = dead_sent_at + RttEstimator().timeout()
    sent_while_dead_pending = [peer for t, peer in run.sent if dead_sent_at < t < dead_deadline]
    assert len(sent_while_dead_pending) > 3
    assert dead_seed in run.timed_out


def test_timeouts_adapt_to_measured_round_trips(model: RoutingModel) -> None:
    _, lookup = start(model, 3, rtt=RttEstimator(initial_timeout=2.0, min_timeout=0.05, max_timeout=5.0))
    drive(lookup, model)
    assert lookup.rtt.srtt is not None and 0.01 <= lookup.rtt.srtt <= 0.2
    assert 0.05 <= lookup.rtt.timeout() < 2.0


def test_disjoint_paths_find_the_closest_and_respect_alpha_per_path(model: RoutingModel) -> None:
    target, lookup = start(model, 21, paths=3, alpha=2)
    run = drive(lookup, model)
    assert run.max_in_flight <= 2 * 3
    queried = [peer for _, peer in run.sent]
    assert len(queried) == len(set(queried))
    assert [c.node_id for c in lookup.result()] == live_truth(model, target, lookup)


def test_late_reply_is_still_used_and_feeds_the_estimator() -> None:
    slow, other, learned = (Contact(NodeId(v), "127.0.0.1", 9000 + v) for v in (1, 2, 3))
    lookup = Lookup(NodeId(0), [slow, other], alpha=2, k=3, rtt=RttEstimator(1.0, 0.1, 5.0))
    assert set(lookup.next_requests(0.0)) == {slow, other}
    assert lookup.expire(0.5) == []
    lookup.on_reply(other, [], now=0.5)
    assert lookup.expire(1.0) == [slow]
    assert not lookup.done or slow not in lookup.result()
    lookup.on_reply(slow, [learned], now=3.0)
    assert lookup.rtt.srtt is not None and lookup.rtt.srtt > 0.5
    assert lookup.next_requests(3.0) == [learned]
    lookup.on_reply(learned, [], now=3.1)
    assert lookup.done
    assert lookup.result() == [slow, other, learned]


def test_a_reply_is_capped_at_k_contacts() -> None:
    seed = Contact(NodeId(1 << 200), "127.0.0.1", 9000)
    lookup = Lookup(NodeId(0), [seed], alpha=50, k=5)
    lookup.next_requests(0.0)
    flood = [Contact(NodeId(v), "127.0.0.1", 9001) for v in range(2, 102)]
    lookup.on_reply(seed, flood, now=0.1)
    assert sorted(c.node_id.value for c in lookup.next_requests(0.1)) == [2, 3, 4, 5, 6]
    assert lookup.in_flight() == 5


def test_own_id_and_empty_seeds() -> None:
    me = Contact(NodeId(7), "127.0.0.1", 9000)
    lookup = Lookup(NodeId(0), [me], own_id=NodeId(7))
    assert lookup.done and lookup.result() == [] and lookup.next_requests(0.0) == []
    assert lookup.next_deadline() is None


def test_protocol_misuse_is_refused() -> None:
    peer = Contact(NodeId(1), "127.0.0.1", 9000)
    stranger = Contact(NodeId(2), "127.0.0.1", 9000)
    lookup = Lookup(NodeId(0), [peer, stranger], alpha=1)
    with pytest.raises(ValueError, match="never asked"):
        lookup.on_reply(peer, [], now=0.0)
    lookup.next_requests(0.0)
    with pytest.raises(ValueError, match="no request in flight"):
        lookup.on_timeout(stranger, now=0.0)
    with pytest.raises(ValueError, match="never asked"):
        lookup.on_reply(Contact(NodeId(1), "127.0.0.2", 9000), [], now=0.1)
    with pytest.raises(TypeError, match=r"reply from .* must list Contacts, got tuple"):
        lookup.on_reply(peer, [("127.0.0.1", 1)], now=0.1)
    with pytest.raises(TypeError, match="seeds must list Contacts, got str"):
        Lookup(NodeId(0), ["127.0.0.1:9000"])


@pytest.mark.parametrize("bad", [{"alpha": 0}, {"k": -1}, {"paths": 1.5}])
def test_bad_lookup_parameters_are_refused_by_name(bad) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        Lookup(NodeId(0), [], **bad)


def test_rtt_estimator_follows_rfc6298_and_clamps() -> None:
    estimator = RttEstimator(initial_timeout=1.0, min_timeout=0.2, max_timeout=3.0)
    assert estimator.timeout() == 1.0
    estimator.sample(0.4)
    assert (estimator.srtt, estimator.rttvar) == (0.4, 0.2)
    assert estimator.timeout() == pytest.approx(1.2)
    estimator.sample(0.8)
    assert estimator.rttvar == pytest.approx(0.75 * 0.2 + 0.25 * 0.4)
    assert estimator.srtt == pytest.approx(0.875 * 0.4 + 0.125 * 0.8)
    for _ in range(50):
        estimator.sample(0.001)
    assert estimator.timeout() == 0.2
    for _ in range(5):
        estimator.sample(100.0)
    assert estimator.timeout() == 3.0
    with pytest.raises(ValueError, match="round-trip"):
        estimator.sample(-1.0)
    with pytest.raises(ValueError, match="min_timeout"):
        RttEstimator(initial_timeout=0.1, min_timeout=0.2)


def test_an_earlier_answer_seeds_the_lookup_two_requests_away() -> None:
    bootstrap, near, nearer = (
        Contact(NodeId(value), "127.0.0.1", port) for value, port in ((1 << 100, 9000), (5, 9005), (3, 9003))
    )
    lookup = Lookup(NodeId(0), [bootstrap], alpha=3, k=2)
    lookup.learn_answer([near, nearer])
    assert lookup.next_requests(0.0) == [nearer, near]  # the two closest; the bootstrap node is not among them
    lookup.on_reply(nearer, [], now=0.1)
    lookup.on_reply(near, [], now=0.1)
    assert lookup.done and lookup.result() == [nearer, near]
    assert lookup.hops() == 2
    with pytest.raises(TypeError, match="earlier find_node answer"):
        lookup.learn_answer(["10.0.0.1:4000"])
