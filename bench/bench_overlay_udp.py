"""Overlay on real sockets: 1,000 UDP nodes in one process, ours (trio) against PyPI `kademlia` (asyncio).

    python bench/bench_overlay_udp.py [--nodes 1000] [--quick]

Each implementation runs in its own subprocess (`--worker ours|kademlia`), one after the other, so neither
competes with the other for the CPU and each one's memory is its own. Both follow the same script:

* Addresses: node i binds 127.A.B.1 (its own /24 on loopback, `address_of`), so our routing tables keep
  their default limit of 2 contacts per /24 and our record stores their per-source write budget, as between
  real hosts. Both implementations use k = 20, alpha = 3 and their default timeouts.
* Join: sequential. Node i (i > 0) starts, then bootstraps from a random earlier node (seeded, the same
  choices for both): theirs `Server.bootstrap([addr])` (a ping, then a crawl for its own id), ours
  `seattle.overlay.join.join` (a bootstrap find_node for its own id, then `lookup(own id)` starting from
  that answer), as a node manager joins. Join time is the whole loop.
* Memory: RSS after the join (plus a 0.5 s settle and a GC) minus RSS before the first node was created,
  divided by N. Node keys, sockets, tasks and routing tables all count.
* Store: KEYS values from random nodes. Theirs: `Server.set(key, value)` with a 200-byte value. Ours: a
  signed vessel record (`seattle.overlay.records.sign`) for a fresh subject key, published as a node
  manager does (`seattle.advertise.dht.publish`: a lookup of the record's DHT key, then get_records for a
  write token and add_record at each of the k closest nodes).
* Churn: 20 % of the nodes, chosen at random, vanish without a word (ours: the node's task is cancelled, so
  its socket closes; theirs: `Server.stop()`, which closes the transport).
* Lookups: LOOKUPS reads (`--lookups`) of the stored keys, each from a random live node that holds no copy, BATCH at a
  time concurrently, each bounded by LOOKUP_LIMIT seconds (a read that hits the limit counts as failed).
  Theirs: `await server.get(key)`, a hit if it returns the value. Ours: `seattle.advertise.dht.find_records`
  (a lookup of the DHT key, then get_records from all k closest nodes found, every record verified and
  merged); a hit if the subject's record is among them. Latency is from the call to the answer.

The exit status is 1 if a goal is missed. Timings depend on the machine's load: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.table import Row, print_table  # noqa: E402

KEYS = 50
LOOKUPS = 50
BATCH = 10
CHURN = 0.2
LOOKUP_LIMIT = 30.0
#: The per-request timeout given to `seattle.advertise.dht` (kademlia's fixed RPC timeout, for symmetry).
REQUEST_TIMEOUT = 5.0
SETTLE = 0.5
SEED = 4
VALUE_SIZE = 200
GOAL_KIB_PER_NODE = 50.0
GOAL_MEDIAN_S = 0.5
GOAL_SPEEDUP = 10.0
#: A worker prints its result as one line starting with this, after anything else it prints.
RESULT = "RESULT "


@dataclass
class Result:
    """What one worker measured; the parent prints the two side by side."""

    nodes: int
    open_files: int  # the soft RLIMIT_NOFILE the worker ran with
    join_s: float
    kib_per_node: float
    table_median: float  # routing-table contacts per node after the join
    stored: int  # keys whose store/publish reached at least one node
    latencies: list[float]  # seconds, of the lookups that found their value
    hits: int
    lookups: int

    def quantile(self, q: float) -> float:
        """Nearest-rank quantile of the successful reads' latencies (the median of 50 is the 26th)."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# --- shared by both workers ---------------------------------------------------------------------------------


def address_of(index: int) -> str:
    """Node `index`'s own loopback address, each in its own /24 (Linux routes all of 127/8 to lo)."""
    return f"127.{1 + index // 250}.{index % 250 + 1}.1"


def raise_open_files(nodes: int) -> int:
    """Lift the soft open-files limit to the hard one; SystemExit if even that cannot hold `nodes` sockets."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < nodes + 100:
        raise SystemExit(f"{nodes} nodes need {nodes + 100} open files; the hard limit here is {hard}")
    return hard


def rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


@dataclass(frozen=True)
class Plan:
    """The random choices, drawn from one seed so both workers make the same ones."""

    bootstrap_from: list[int]  # for node i > 0, the earlier node it bootstraps from
    publishers: list[int]  # per key, the node that stores it
    killed: set[int]
    rng: random.Random

    @classmethod
    def draw(cls, nodes: int) -> Plan:
        rng = random.Random(SEED)
        bootstrap_from = [0] + [rng.randrange(i) for i in range(1, nodes)]
        publishers = [rng.randrange(nodes) for _ in range(KEYS)]
        killed = set(rng.sample(range(nodes), int(nodes * CHURN)))
        return cls(bootstrap_from, publishers, killed, rng)

    def asker(self, nodes: int, holds: Callable[[int], bool]) -> int:
        """A random live node that holds no copy of the key (so it must really look it up)."""
        live = [i for i in range(nodes) if i not in self.killed and not holds(i)]
        return self.rng.choice(live)


async def timed(read: Callable[[], Awaitable[bool]]) -> tuple[bool, float]:
    start = time.perf_counter()
    found = await read()
    return found, time.perf_counter() - start


def report(result: Result) -> None:
    print(RESULT + json.dumps(asdict(result)), flush=True)


# --- ours: trio, UdpOverlay -----------------------------------------------------------------------------------


def run_ours(nodes: int, lookups: int) -> Result:
    import nacl.signing
    import trio

    from seattle.advertise import dht
    from seattle.keys import Identity
    from seattle.overlay import records
    from seattle.overlay.join import join
    from seattle.overlay.nodeid import NetworkParameters
    from seattle.overlay.protocol import OverlayNode
    from seattle.overlay.udp import DEFAULT_TIMEOUT, UdpOverlay

    open_files = raise_open_files(nodes)
    plan = Plan.draw(nodes)

    async def serve(overlay: UdpOverlay, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            async with overlay:
                task_status.started(scope)
                await trio.sleep_forever()

    async def publish(overlay: UdpOverlay, subject: Identity) -> int:
        host, port = overlay.address
        raw = records.sign(overlay.node.identity, subject.public_key, [f"{host}:{port}"], sequence=1,
                           now=overlay.now())
        return await dht.publish(overlay, raw, timeout=REQUEST_TIMEOUT)

    async def find(overlay: UdpOverlay, subject: Identity) -> bool:
        found = await dht.find_records(overlay, subject.public_key, timeout=REQUEST_TIMEOUT)
        return any(record.subject == subject.public_key for record in found)

    async def main() -> Result:
        before = rss()
        overlays = [
            UdpOverlay(
                OverlayNode(Identity(f"n{i}", nacl.signing.SigningKey.generate()), randomness=random.SystemRandom(),
                            network=NetworkParameters.testing()),
                address_of(i),
                0,
            )
            for i in range(nodes)
        ]
        async with trio.open_nursery() as nursery:
            scopes = []
            start = time.perf_counter()
            for i, overlay in enumerate(overlays):
                scopes.append(await nursery.start(serve, overlay))
                if i:
                    joined = await join(overlay, [overlays[plan.bootstrap_from[i]].address], DEFAULT_TIMEOUT)
                    if not joined.answers or joined.lookup_timed_out:
                        raise TimeoutError(f"node {i} did not join (bootstrap node silent or lookup too slow)")
            join_s = time.perf_counter() - start
            await trio.sleep(SETTLE)
            kib = (rss() - before) / nodes / 1024
            table_median = statistics.median(len(o.node.table) for o in overlays)

            subjects = [Identity(f"s{j}", nacl.signing.SigningKey.generate()) for j in range(KEYS)]
            stored = 0
            for subject, publisher in zip(subjects, plan.publishers):
                stored += await publish(overlays[publisher], subject) > 0

            for i in plan.killed:
                scopes[i].cancel()
            await trio.sleep(0)

            def holds(subject: Identity) -> Callable[[int], bool]:
                key = records.dht_key(subject.public_key)
                return lambda i: bool(overlays[i].node.store.get(key, overlays[i].now()))

            latencies: list[float] = []
            hits = 0

            async def one(subject: Identity) -> None:
                nonlocal hits
                overlay = overlays[plan.asker(nodes, holds(subject))]
                with trio.move_on_after(LOOKUP_LIMIT):
                    found, seconds = await timed(lambda: find(overlay, subject))
                    if found:
                        hits += 1
                        latencies.append(seconds)

            for first in range(0, lookups, BATCH):
                async with trio.open_nursery() as batch:
                    for number in range(first, min(first + BATCH, lookups)):
                        batch.start_soon(one, subjects[number % KEYS])
            nursery.cancel_scope.cancel()
        return Result(nodes, open_files, join_s, kib, table_median, stored, latencies, hits, lookups)

    return trio.run(main)


# --- theirs: asyncio, kademlia.network.Server -------------------------------------------------------------------


def run_kademlia(nodes: int, lookups: int) -> Result:
    import asyncio
    import logging

    from kademlia.network import Server
    from kademlia.utils import digest

    logging.getLogger("kademlia").setLevel(logging.CRITICAL)  # a missed reply is expected under churn
    logging.getLogger("rpcudp").setLevel(logging.CRITICAL)
    open_files = raise_open_files(nodes)
    plan = Plan.draw(nodes)

    async def main() -> Result:
        before = rss()
        servers = [Server(ksize=20, alpha=3) for _ in range(nodes)]
        addresses: list[tuple[str, int]] = []
        start = time.perf_counter()
        for i, server in enumerate(servers):
            await server.listen(0, interface=address_of(i))
            addresses.append(server.transport.get_extra_info("sockname")[:2])
            if i:
                await server.bootstrap([addresses[plan.bootstrap_from[i]]])
        join_s = time.perf_counter() - start
        await asyncio.sleep(SETTLE)
        kib = (rss() - before) / nodes / 1024
        table_median = statistics.median(
            sum(len(bucket) for bucket in server.protocol.router.buckets) for server in servers
        )

        keys = [f"key-{j}" for j in range(KEYS)]
        values = {key: key.encode().ljust(VALUE_SIZE, b".") for key in keys}
        stored = 0
        for key, publisher in zip(keys, plan.publishers):
            stored += bool(await servers[publisher].set(key, values[key]))

        for i in plan.killed:
            servers[i].stop()
        await asyncio.sleep(0)

        latencies: list[float] = []
        hits = 0

        async def one(key: str) -> None:
            nonlocal hits
            dkey = digest(key)
            server = servers[plan.asker(nodes, lambda i: dkey in servers[i].storage.data)]

            async def read() -> bool:
                return await server.get(key) == values[key]

            try:
                found, seconds = await asyncio.wait_for(timed(read), LOOKUP_LIMIT)
            except TimeoutError:
                return
            if found:
                hits += 1
                latencies.append(seconds)

        for first in range(0, lookups, BATCH):
            await asyncio.gather(*(one(keys[n % KEYS]) for n in range(first, min(first + BATCH, lookups))))
        for server in servers:
            server.stop()
        return Result(nodes, open_files, join_s, kib, table_median, stored, latencies, hits, lookups)

    return asyncio.run(main())


# --- the parent: run both, print the table ----------------------------------------------------------------------


def run_worker(which: str, nodes: int, lookups: int) -> Result:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", which, "--nodes", str(nodes),
               "--lookups", str(lookups)]
    finished = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in finished.stdout.splitlines() if line.startswith(RESULT)]
    if finished.returncode != 0 or not lines:
        raise SystemExit(f"the {which} worker failed (exit {finished.returncode}):\n{finished.stderr[-3000:]}")
    return Result(**json.loads(lines[-1][len(RESULT):]))


def lookup_text(result: Result) -> str:
    return (f"median {result.quantile(0.5):.3f} s, p90 {result.quantile(0.9):.3f} s, "
            f"{result.hits}/{result.lookups} found")


def rows(ours: Result, theirs: Result) -> list[Row]:
    n = ours.nodes
    speedup = theirs.quantile(0.5) / ours.quantile(0.5)
    all_found = ours.hits == ours.lookups
    return [
        Row(f"join {n} nodes, sequential (ours)", "faster than kademlia's",
            f"{ours.join_s:.1f} s ({ours.join_s / n * 1000:.1f} ms per node)", ours.join_s < theirs.join_s),
        Row(f"join {n} nodes, sequential (kademlia)", "-",
            f"{theirs.join_s:.1f} s ({theirs.join_s / n * 1000:.1f} ms per node)", None),
        Row("memory per node, RSS (ours)", f"<= {GOAL_KIB_PER_NODE:.0f} KiB",
            f"{ours.kib_per_node:.1f} KiB", ours.kib_per_node <= GOAL_KIB_PER_NODE),
        Row("memory per node, RSS (kademlia)", "-", f"{theirs.kib_per_node:.1f} KiB", None),
        Row("routing-table contacts per node, median", "-",
            f"ours {ours.table_median:.0f}, kademlia {theirs.table_median:.0f}", None),
        Row(f"keys stored ({KEYS})", "-", f"ours {ours.stored}, kademlia {theirs.stored}", None),
        Row(f"lookup after {CHURN:.0%} killed (ours)", f"median < {GOAL_MEDIAN_S} s, all found",
            lookup_text(ours), ours.quantile(0.5) < GOAL_MEDIAN_S and all_found),
        Row(f"lookup after {CHURN:.0%} killed (kademlia)", "-", lookup_text(theirs), None),
        Row("lookup median, kademlia / ours", f">= {GOAL_SPEEDUP:.0f} x", f"{speedup:.1f} x",
            speedup >= GOAL_SPEEDUP),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000, help="nodes per implementation (default 1000)")
    parser.add_argument("--lookups", type=int, default=LOOKUPS, help=f"reads after the churn (default {LOOKUPS})")
    parser.add_argument("--quick", action="store_true", help="a smoke run with 200 nodes")
    parser.add_argument("--worker", choices=("ours", "kademlia"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    nodes = 200 if args.quick else args.nodes
    if nodes < 10:
        parser.error(f"--nodes must be at least 10, got {nodes}")
    if args.lookups < 1:
        parser.error(f"--lookups must be at least 1, got {args.lookups}")
    if args.worker:
        report((run_ours if args.worker == "ours" else run_kademlia)(nodes, args.lookups))
        return
    ours, theirs = run_worker("ours", nodes, args.lookups), run_worker("kademlia", nodes, args.lookups)
    table = rows(ours, theirs)
    print_table(f"Overlay on real UDP sockets: {nodes} nodes in one process on loopback, ours (trio) vs "
                f"kademlia 2.2.3 (asyncio); open files {ours.open_files}", table)
    missed = [row.figure for row in table if row.met is False]
    print("verdict: " + ("every goal met" if not missed else "missed: " + "; ".join(missed)))
    if missed:
        sys.exit(1)


if __name__ == "__main__":
    main()
