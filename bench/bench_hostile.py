"""Hostile peers: the owner's service and the daemon's memory while strangers attack a node manager.

    python bench/bench_hostile.py [--quick]

One real `seattle node run` (a subprocess, on 127.0.0.1) with one vessel owned by the benchmark's owner key.
For each attack class of issues 13 and 14 (the handshake), in the same run:

* quiet: the owner's calls with no attack (each a fresh connection: connect, the channel's handshake, one
  signed ListFilesInVessel; `seattle.testing.hostile.owner_call`), `interval` apart;
* attacked: the same calls while the attack runs in a process of its own
  (`python -m seattle.testing.attackers`, bounded in count and time, from 127.66.x.y addresses);
* the daemon's peak RSS over the row (sampled every 20 ms), and whether it is still alive afterwards.
Every row starts a fresh daemon (same node directory), so no row inherits another's memory or connections,
and a crash does not hide the rows after it.

The record-cap row floods a fresh key U with records from throwaway node keys first, then the owner adds U
as a user of v1 (so the daemon advertises its vessel under U) and `seattle browse` for U must find it. The
id-grinding row runs no daemon: it measures keys/s turned into node ids on one core
(`seattle.testing.attackers.id_grinding`) and the time that gives to surround a key of a 10,000-node overlay.

Goals (issue 13): 0 crashes; owner success 100 %; owner p99 under attack ≤ 5× the quiet p99 and < 100 ms;
peak RSS < 150 MB in every row; the donor's record found by browse while its key is flooded; surrounding a
key takes at least an hour. The exit status is 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.table import Row, print_table  # noqa: E402
from seattle.errors import SeattleError  # noqa: E402
from seattle.keys import Identity, generate_identity  # noqa: E402
from seattle.nodemgr.client import NodeClient, NodeClientError  # noqa: E402
from seattle.overlay.nodeid import DEFAULT_NETWORK, NodeId, id_is_bound  # noqa: E402
from seattle.overlay.routing import RoutingTable  # noqa: E402
from seattle.testing.attackers import (  # noqa: E402
    AttackReport,
    Bound,
    Target,
    attack_command,
    grinding_estimate,
    id_grinding,
    parse_report,
)
from seattle.testing.hostile import Calls, MemoryWatch, make_node, owner_calls, start_node, stop_node  # noqa: E402

GOAL_SUCCESS = 1.0
GOAL_RATIO = 5.0
GOAL_P99_MS = 100.0
GOAL_RSS_MB = 150.0
GOAL_SURROUND_S = 3600.0
#: ... or this many networks (issue 13: "hours or many networks").
GOAL_NETWORKS = 10
OVERLAY_SIZE = 10_000
#: Seconds between two owner calls: a steady owner, not a load of its own. Each call is a fresh connection that
#: starts with the channel's handshake.
INTERVAL = 0.1
#: Seconds the attack gets before the owner's calls start, so they meet it at full strength.
RAMP = 0.5


@dataclass(frozen=True)
class Attack:
    name: str  # seattle.testing.attackers.ATTACKS
    label: str
    count: int
    seconds: float


def attacks(quick: bool) -> list[Attack]:
    seconds = 5.0 if quick else 15.0
    scale = 1 if quick else 4
    return [
        Attack("frame_bombs", "frame bombs (4 MiB of 1-byte msgpack objects)", 10**6, seconds),
        Attack("slow_readers", "slow readers (64 connections, 8 per address: pipelined GetVessels, never read)",
               10**6, seconds),
        Attack("trickle_writers", "trickle writers (a byte a second, 4 per address)", 300, seconds),
        Attack("connection_flood", "connection flood: half-open handshakes (4 per address, 16 per /24)", 400,
               seconds),
        Attack("handshake_flood", "handshake flood (complete handshakes at full rate, 16 addresses)", 10**6,
               seconds),
        Attack("stranger_flood", "stranger flood (signed by 64 keys without rights)", 15_000 * scale, seconds),
        Attack("garbage", "UDP garbage at full rate (16 addresses)", 10**8, seconds),
        Attack("bad_signature", "UDP bad-signature flood at full rate", 10**8, seconds),
        Attack("port_zero", "UDP datagrams from source port 0", 10**8, seconds),
    ]


@dataclass
class Measured:
    quiet: Calls
    attacked: Calls
    peak_rss: float
    crashed: bool
    report: AttackReport | None
    found: bool | None = None  # the record-cap row: browse found the donor's vessel


class Bench:
    def __init__(self, node_dir: Path, owner: Identity, calls: int) -> None:
        self.node_dir = node_dir
        self.owner = owner
        self.calls = calls
        self.node = start_node(node_dir)
        self.crashes = 0

    async def fresh(self) -> None:
        """A freshly started daemon for the next row, so that no row inherits another's memory (an allocator
        rarely gives a bomb's 300 MB back) or connections; a crash of the last one is counted."""
        if not self.node.alive:
            self.crashes += 1
        stop_node(self.node)
        self.node = start_node(self.node_dir)
        # A few calls first, so the quiet figure is not the daemon's start-up.
        await owner_calls(self.node.target, self.owner, Calls(), count=20, interval=0.0)

    async def row(self, attack: Attack) -> Measured:
        node = self.node
        watch = MemoryWatch(node.process.pid)
        quiet, attacked = Calls(), Calls()
        report: AttackReport | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch.run)
            await owner_calls(node.target, self.owner, quiet, count=self.calls, interval=INTERVAL)
            done = trio.Event()

            async def attacker() -> None:
                nonlocal report
                try:
                    result = await trio.run_process(
                        attack_command(attack.name, node.target, Bound(attack.count, attack.seconds)),
                        capture_stdout=True, capture_stderr=True, check=False)
                    report = parse_report(result.stdout) if result.returncode == 0 else None
                finally:
                    done.set()

            nursery.start_soon(attacker)
            await trio.sleep(RAMP)
            await owner_calls(node.target, self.owner, attacked, count=10**6, interval=INTERVAL, until=done)
            await done.wait()
            await trio.sleep(0.2)
            nursery.cancel_scope.cancel()
        return Measured(quiet, attacked, watch.peak, not node.alive, report)

    async def record_row(self, seconds: float) -> Measured:
        """Flood a fresh key's DHT slot, then advertise the owner's vessel under it and browse for it."""
        node = self.node
        victim = generate_identity("researcher")
        watch = MemoryWatch(node.process.pid)
        quiet, attacked = Calls(), Calls()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch.run)
            await owner_calls(node.target, self.owner, quiet, count=self.calls, interval=INTERVAL)
            done = trio.Event()

            async def probe() -> None:
                await owner_calls(node.target, self.owner, attacked, count=10**6, interval=INTERVAL, until=done)

            nursery.start_soon(probe)
            result = await trio.run_process(
                attack_command("record_cap_flood", node.target, Bound(80, seconds), victim=victim.public_key),
                capture_stdout=True, capture_stderr=True, check=False)
            report = parse_report(result.stdout) if result.returncode == 0 else None

            hit = False
            try:
                async with await NodeClient.connect(node.target.host, node.target.port, self.owner) as client:
                    await client.call("ChangeUsers", vessel="v1", users=[victim.public_key.to_text()])
                await trio.sleep(2.0)  # the advertiser reads the change counter every 0.5 s
                hit = await _browse_finds(victim, node.target)
            except (NodeClientError, SeattleError) as exc:  # the daemon gone, or not answering on the overlay
                print(f"record-cap row: the donor's record could not be looked for: {exc}", file=sys.stderr)
            done.set()
            nursery.cancel_scope.cancel()
        return Measured(quiet, attacked, watch.peak, not node.alive, report, hit)


#: Browse in a process of its own, as a researcher would: in the bench's process its signature checks would
#: stall the owner's timed calls and count against the daemon.
_BROWSE = """
import sys, trio
from seattle.experiment.browse import browse
from seattle.keys import PublicKey
found = trio.run(lambda: browse(PublicKey.from_text(sys.argv[1]), [(sys.argv[2], int(sys.argv[3]))], timeout=5.0))
print(int(any(vessel.port == int(sys.argv[3]) for vessel in found.vessels)))
"""


async def _browse_finds(victim: Identity, target: Target) -> bool:
    """Whether `seattle.experiment.browse` for `victim`'s key through `target` finds a vessel on it."""
    result = await trio.run_process(
        [sys.executable, "-c", _BROWSE, victim.public_key.to_text(), target.host, str(target.port)],
        capture_stdout=True, capture_stderr=True, check=False)
    if result.returncode != 0:
        raise SeattleError(f"browse failed: {result.stderr.decode(errors='replace')[-500:]}")
    return result.stdout.strip() == b"1"


def rows_of(label: str, measured: Measured) -> list[Row]:
    quiet, attacked = measured.quiet, measured.attacked
    ratio = attacked.p99 / quiet.p99 if quiet.p99 > 0 else float("inf")
    p99_met = attacked.p99 <= GOAL_RATIO * quiet.p99 and attacked.p99 < GOAL_P99_MS
    sent = measured.report.summary() if measured.report is not None else "the attack process failed"
    out = [
        Row(label, "0 crashes", "CRASHED" if measured.crashed else "alive", not measured.crashed),
        Row("  owner success under attack", "100 %",
            f"{attacked.success:.1%} of {len(attacked.calls)} (quiet {quiet.success:.0%})",
            attacked.success >= GOAL_SUCCESS and len(attacked.calls) > 0),
        Row("  owner p99 under attack (quiet p99)", f"≤ {GOAL_RATIO:g}× and < {GOAL_P99_MS:g} ms",
            f"{attacked.p99:.1f} ms ({quiet.p99:.1f} ms, {ratio:.1f}×)", p99_met),
        Row("  daemon peak RSS", f"< {GOAL_RSS_MB:g} MB", f"{measured.peak_rss:.0f} MB",
            measured.peak_rss < GOAL_RSS_MB),
        Row("  attack sent", "-", sent, None),
    ]
    failures = attacked.failures()
    if failures:
        out.append(Row("  first owner failure", "-", failures[0][:110], None))
    return out


async def run_rows(bench: Bench, quick: bool, selected: set[str] | None) -> list[Row]:
    rows: list[Row] = []
    for attack in attacks(quick):
        if selected is not None and attack.name not in selected:
            continue
        await bench.fresh()
        measured = await bench.row(attack)
        rows += rows_of(attack.label, measured)
        await trio.sleep(1.0)
    if selected is None or "record_cap_flood" in selected:
        await bench.fresh()
        measured = await bench.record_row(5.0 if quick else 15.0)
        rows += rows_of("record-cap flood (80 records under one key, 8 addresses)", measured)
        rows.append(Row("  donor's record found by browse", "found", "found" if measured.found else "not found",
                        bool(measured.found)))
    return rows


def grinding_rows(seconds: float) -> list[Row]:
    """What placing node ids costs: keys/s on one core, thinned by the real network's id puzzle (an id counts
    only if it is bound), and the networks the routing tables' per-subnet cap demands on top of the work."""
    report = id_grinding(Bound(10**9, seconds), derive=_bound_id)
    keys_per_second = report.sent / report.elapsed
    ids_per_second = keys_per_second / DEFAULT_NETWORK.expected_keys
    surround = grinding_estimate(ids_per_second, OVERLAY_SIZE)
    table = RoutingTable(NodeId(0))
    networks = math.ceil(table.k / table.max_per_subnet)
    return [
        Row(f"id grinding: keys/s on one core; bound ids/s ({DEFAULT_NETWORK.puzzle_bits}-bit puzzle)", "report",
            f"{keys_per_second:,.0f}/s; {ids_per_second:.2f}/s ({report.outcomes['ids']} found)", None),
        Row(f"  time to surround a key of a {OVERLAY_SIZE:,}-node overlay (20 ids closer than its nearest)",
            "report", _duration(surround), None),
        Row(f"  networks (/24 or /48) to hold those ids in honest tables ({table.max_per_subnet} per bucket each)",
            "report", str(networks), None),
        Row("  cost to surround a key", f"≥ {GOAL_SURROUND_S / 3600:g} h of one core or ≥ {GOAL_NETWORKS} networks",
            f"{_duration(surround)} and {networks} networks",
            surround >= GOAL_SURROUND_S or networks >= GOAL_NETWORKS),
    ]


def _bound_id(identity: Identity) -> NodeId | None:
    node_id = NodeId.from_public_key(identity.public_key)
    return node_id if id_is_bound(node_id, DEFAULT_NETWORK) else None


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 3600:.2f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter attacks (5 s each), for a smoke run")
    parser.add_argument("--only", action="append", metavar="ATTACK",
                        help="run only this attack (a name from seattle.testing.attackers.ATTACKS); repeatable")
    options = parser.parse_args()
    owner = generate_identity("owner")
    calls = 50 if options.quick else 200
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(make_node(Path(tmp) / "node", owner.public_key), owner, calls)
        try:
            rows = trio.run(run_rows, bench, options.quick, set(options.only) if options.only else None)
            if not bench.node.alive:
                bench.crashes += 1
        finally:
            stop_node(bench.node)
    rows += grinding_rows(2.0 if options.quick else 10.0)
    rows.insert(0, Row("daemon crashes over the whole run", "0", str(bench.crashes), bench.crashes == 0))
    print_table(f"Hostile peers against one node manager on 127.0.0.1 ({'quick' if options.quick else 'full'} run, "
                f"{time.perf_counter() - start:.0f} s)", rows)
    if any(row.met is False for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
