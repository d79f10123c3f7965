"""Seeded overlay nodes and a ready simulated overlay of them, for tests.

    sim, nodes = simulated_overlay(120, seed=21, k=8)
    async with sim.running():
        found = await sim.transport(nodes[0]).lookup(nodes[1].node_id)

Everything derives from names and seeds (keys, each engine's random source, the network's latencies and
loss), so a test sees the same run every time. The network is `seattle.overlay.simnet.SimNetwork`, the one
the simulations use: tests do not carry a network of their own. A synchronous test (the protocol tests, a
hypothesis example) steps the same network by hand instead of running it under trio:

    sim = SimNetwork(0, latency=(0.001, 0.001))  # a fixed latency: datagrams arrive in the order sent
    ...attach seeded nodes...
    sim.start_stepping()
    txid = node.ping(sim.contact(peer), sim.now())
    sim.flush(node)
    sim.settle()
"""

from __future__ import annotations

import hashlib
import itertools
import random
from typing import Any

from seattle.keys import Identity
from seattle.overlay.addresses import Scope
from seattle.overlay.nodeid import NetworkParameters, solve_identity
from seattle.overlay.protocol import OverlayNode
from seattle.overlay.simnet import DatagramObserver, SimNetwork


def seeded_identity(name: str, network: NetworkParameters | None = None) -> Identity:
    """A key pair derived from `name`: the same node id on every run, so every routing decision repeats.

    Its id carries `network`'s work (default: none, `NetworkParameters.testing()`, whose first seed is
    `name`'s own); with work, the seeds tried after the first derive from `name` and a counter.
    """
    seeds = (_seed(name if number == 0 else f"{name}#{number}") for number in itertools.count())
    return solve_identity(name, network or NetworkParameters.testing(), seeds=lambda: next(seeds))


def seeded_node(name: str, **engine: Any) -> OverlayNode:
    """An `OverlayNode` with `seeded_identity(name)` and a random source seeded from `name` too; `engine`
    goes to `OverlayNode` (k, alpha, table, store, rtt, serve, scope, network). Its scope is LOOPBACK unless
    given (the simulator's addresses are 127.x and 10.x), and its network `NetworkParameters.testing()` (no id
    puzzle) unless given: its id is solved for that network."""
    engine.setdefault("scope", Scope.LOOPBACK)
    network = engine.setdefault("network", NetworkParameters.testing())
    return OverlayNode(seeded_identity(name, network), randomness=random.Random(_seed(name)), **engine)


def simulated_overlay(
    count: int,
    seed: int,
    *,
    k: int = 20,
    prefix: str = "sim",
    latency: tuple[float, float] = (0.005, 0.08),
    loss: float = 0.0,
    observer: DatagramObserver | None = None,
) -> tuple[SimNetwork, list[OverlayNode]]:
    """`count` seeded nodes named prefix0, prefix1... attached to a new `SimNetwork(seed)`, their tables
    filled by `seed_tables` (as if the overlay had been up for a while: joins cost dozens of datagrams each)."""
    sim = SimNetwork(seed, latency=latency, loss=loss, observer=observer)
    nodes = [seeded_node(f"{prefix}{number}", k=k) for number in range(count)]
    for node in nodes:
        sim.attach(node)
    sim.seed_tables()
    return sim, nodes


def _seed(name: str) -> bytes:
    return hashlib.blake2b(name.encode(), digest_size=32).digest()
