"""Node manager benchmarks: the secure channel's handshake, signed call rate and latency, upload and download
speed and idle memory of a real daemon.

    python bench/bench_nodemgr.py [--quick]

The daemon runs as its own process (`DAEMON`, a small script around `NodeManager` on 127.0.0.1), so its
memory is its own and the client's work (signing, parsing, encrypting) competes with it for the two cores as a
remote client's would not. Its node has ten vessels (`init_node`'s layout), none of them running. The daemon
allows 32 connections per address rather than the default 8, so that 20 clients on loopback are all served,
and does not pace handshakes, so the handshake figures are the handshake's.
Every figure is over the secure channel (issue 14) unless it says plaintext.

* Handshake: the channel's handshake alone, both sides in this process over memory streams with an anonymous
  client as NodeClient's (`bench_channel.memory_handshake`), CPU per handshake; then whole connections opened
  and closed one after another against the daemon (TCP connect + handshake + close, nothing else), CPU per
  connection being the client's process time plus the daemon's (psutil), over the count.
* Encrypted vs plaintext: the pipelined rate below, measured again against a second daemon started with
  `plaintext_benchmark_only` (the protocol before the channel; an option only this benchmark passes), in the
  same run, alternating, best of `rounds` each.

* Rate: ListFilesInVessel, signed. The requests are signed before the clock starts, so the rate is the
  daemon's (frame, verify, dispatch, answer), not the client's signing. One connection pipelines its batch;
  each of 20 clients makes one call at a time. Reported next to the raw Ed25519 verify rate of this machine
  measured in the same run (libsodium `crypto_sign_open`, through bench_signing's `rates`).
* Latency: one ListFilesInVessel at a time on one connection, timed from signing to the parsed answer.
* Upload: AddFileToVessel of a 1 MiB file (signing included), median over repetitions; 1 MB = 10^6 bytes.
* Download: RetrieveFileFromVessel of that file, median over the same number of repetitions.
* Memory: RSS of the daemon alone, and of the daemon plus its vessel machinery (the zygote and its spare
  processes; their RSS summed, which counts shared pages more than once, so PSS is shown beside it),
  measured idle right after start, and again after the load above as information.
The exit status is 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import psutil
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_channel import memory_handshake  # noqa: E402
from bench.bench_signing import rates  # noqa: E402
from bench.table import Row, print_table  # noqa: E402
from seattle.keys import Identity, PublicKey, generate_identity  # noqa: E402
from seattle.nodemgr.client import NodeClient  # noqa: E402
from seattle.nodemgr.node import Layout, init_node  # noqa: E402
from seattle.nodemgr.signing import NONCE_SIZE, SUCCESS, sign_request  # noqa: E402
from seattle.nodemgr.vessels import NodeState  # noqa: E402
from seattle.resources import DEFAULT_ALLOTMENT, Resources  # noqa: E402

GOAL_RATE = 3000.0
GOAL_P50_MS = 1.0
GOAL_P99_MS = 10.0
GOAL_UPLOAD_MB_S = 50.0
GOAL_HANDSHAKE_MS = 1.0
GOAL_PLAINTEXT_RATIO = 0.9
GOAL_RSS_MB = 60.0
VESSELS = 10
CLIENTS = 20
UPLOAD_SIZE = 1024 * 1024
CHEAP_CALL = ("ListFilesInVessel", {"vessel": "v1"})
#: A signed call that reads no node state: its rate is the ceiling of the server path (frame, verify, answer).
STATELESS_CALL = ("GetNodeInfo", {})
#: Seconds the idle daemon is left alone before its memory is read, so start-up work has finished.
SETTLE = 1.0

DAEMON = """
import sys
import trio
from seattle.nodemgr.node import NodeManager
from seattle.nodemgr.server import ServerLimits

async def main():
    # 20 clients from one address, and a thousand handshakes in a row (the handshake figure, not its pacing).
    limits = ServerLimits(max_connections_per_address=32, handshake_rate=1e6, handshake_burst=10**6,
                          handshake_network_rate=1e6, handshake_network_burst=10**6)
    plaintext = sys.argv[2] == "plaintext"
    async with NodeManager(sys.argv[1], "127.0.0.1", 0, limits=limits, plaintext_benchmark_only=plaintext) as nm:
        print(f"listening on 127.0.0.1:{nm.port}", flush=True)
        await trio.sleep_forever()

trio.run(main)
"""


@dataclass(frozen=True)
class Sizes:
    rate_calls: int  # per rate figure
    latency_calls: int
    uploads: int
    verify_batch: int
    batches: int
    handshakes: int
    rounds: int  # of the encrypted/plaintext comparison


FULL = Sizes(rate_calls=20_000, latency_calls=5000, uploads=30, verify_batch=10_000, batches=5, handshakes=1000,
             rounds=3)
QUICK = Sizes(rate_calls=4000, latency_calls=1000, uploads=8, verify_batch=2000, batches=3, handshakes=200,
              rounds=2)


@dataclass(frozen=True)
class Memory:
    daemon_rss: float  # MB
    machinery_rss: float  # MB: daemon + zygote + spares, summed
    machinery_pss: float  # MB
    processes: int

    def text(self) -> str:
        return (f"daemon {self.daemon_rss:.1f} MB; + machinery ({self.processes - 1} processes) "
                f"{self.machinery_rss:.1f} MB RSS / {self.machinery_pss:.1f} MB PSS")


def memory_of(pid: int) -> Memory:
    daemon = psutil.Process(pid)
    processes = [daemon, *daemon.children(recursive=True)]
    infos = [process.memory_full_info() for process in processes]
    return Memory(infos[0].rss / 1e6, sum(i.rss for i in infos) / 1e6, sum(i.pss for i in infos) / 1e6,
                  len(processes))


def ten_vessel_layout(owner: Identity) -> Layout:
    """Ten default-sized vessels with disjoint ports."""
    return [(Resources(DEFAULT_ALLOTMENT.quantities, messport=frozenset(range(63100 + 10 * i, 63110 + 10 * i)),
                       connport=frozenset(range(63100 + 10 * i, 63110 + 10 * i))), owner.public_key, [])
            for i in range(VESSELS)]


def raw_verify_rate(caller: Identity, sizes: Sizes) -> float:
    """This machine's Ed25519 verify rate on requests the size of the benchmark's cheap call."""
    node = generate_identity("node")
    requests = [sign_request(caller, node.public_key, *CHEAP_CALL, now=time.time(),
                             nonce=os.urandom(NONCE_SIZE)) for _ in range(sizes.verify_batch)]
    key = caller.public_key.raw
    return rates({"raw": lambda: [nacl.bindings.crypto_sign_open(raw, key) for raw in requests]},
                 sizes.verify_batch, sizes.batches)["raw"]


def check_answers(responses: list[object]) -> None:
    """Every benchmarked call must have succeeded, or the figure would time refusals."""
    failed = [r for r in responses if getattr(r, "status", None) != SUCCESS]
    if failed:
        raise SystemExit(f"{len(failed)} benchmarked calls failed; the first: {failed[0]}")


async def connect(port: int, caller: Identity | None, node_key: PublicKey | None = None, *,
                  plaintext: bool = False) -> NodeClient:
    return await NodeClient.connect("127.0.0.1", port, caller, node_key=node_key, plaintext_benchmark_only=plaintext)


async def handshake_cpu_ms(count: int) -> float:
    """Client + node CPU of one handshake over memory streams (this process runs both sides)."""
    start = time.process_time()
    for _ in range(count):
        await memory_handshake(None)
    return (time.process_time() - start) / count * 1000


async def handshakes(port: int, daemon_pid: int, node_key: PublicKey, count: int) -> tuple[float, float]:
    """(connections/s, client + daemon CPU ms per connection): connect, handshake, close, one at a time."""
    daemon = psutil.Process(daemon_pid)
    cpu_before, daemon_before = time.process_time(), sum(daemon.cpu_times()[:2])
    start = time.perf_counter()
    for _ in range(count):
        client = await connect(port, None, node_key)
        await client.aclose()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_before + sum(daemon.cpu_times()[:2]) - daemon_before
    return count / elapsed, cpu / count * 1000


def state_read_us(node_dir: Path, count: int) -> float:
    """Microseconds per `NodeState.get_vessel` in this process (the daemon must not be running)."""
    with NodeState.open(node_dir) as node:
        start = time.perf_counter()
        for _ in range(count):
            node.get_vessel("v1")
        return (time.perf_counter() - start) / count * 1e6


async def pipelined_rate(port: int, caller: Identity, count: int,
                         call: tuple[str, dict[str, str]] = CHEAP_CALL, *, node_key: PublicKey | None = None,
                         plaintext: bool = False) -> float:
    async with await connect(port, caller, node_key, plaintext=plaintext) as client:
        frames = [client.encode(*call) for _ in range(count)]
        start = time.perf_counter()
        responses = await client.exchange(frames)
        elapsed = time.perf_counter() - start
    check_answers(list(responses))
    return count / elapsed


async def concurrent_rate(port: int, caller: Identity, count: int) -> float:
    clients = [await connect(port, caller) for _ in range(CLIENTS)]
    share = count // CLIENTS
    frames = [[client.encode(*CHEAP_CALL) for _ in range(share)] for client in clients]
    responses: list[object] = []

    async def one_at_a_time(client: NodeClient, mine: list[bytes]) -> None:
        for frame in mine:
            responses.extend(await client.exchange([frame]))

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for client, mine in zip(clients, frames):
            nursery.start_soon(one_at_a_time, client, mine)
    elapsed = time.perf_counter() - start
    for client in clients:
        await client.aclose()
    check_answers(responses)
    return share * CLIENTS / elapsed


async def latencies_ms(port: int, caller: Identity, count: int) -> list[float]:
    async with await connect(port, caller) as client:
        name, args = CHEAP_CALL
        times = []
        for _ in range(count):
            start = time.perf_counter()
            await client.call(name, **args)
            times.append((time.perf_counter() - start) * 1000)
    return times


async def upload_mb_s(port: int, caller: Identity, count: int) -> float:
    data = os.urandom(UPLOAD_SIZE)
    async with await connect(port, caller) as client:
        times = []
        for _ in range(count):
            start = time.perf_counter()
            await client.call("AddFileToVessel", vessel="v1", filename="upload.bin", data=data)
            times.append(time.perf_counter() - start)
        if await client.call("RetrieveFileFromVessel", vessel="v1", filename="upload.bin") != data:
            raise SystemExit("the uploaded file came back different; the upload figure is meaningless")
    return UPLOAD_SIZE / statistics.median(times) / 1e6


async def download_mb_s(port: int, caller: Identity, count: int) -> float:
    """RetrieveFileFromVessel of the 1 MiB file upload_mb_s left in v1 (signing and decoding included)."""
    async with await connect(port, caller) as client:
        times = []
        for _ in range(count):
            start = time.perf_counter()
            data = await client.call("RetrieveFileFromVessel", vessel="v1", filename="upload.bin")
            times.append(time.perf_counter() - start)
            if len(data) != UPLOAD_SIZE:
                raise SystemExit(f"the download brought {len(data)} bytes, not {UPLOAD_SIZE}")
    return UPLOAD_SIZE / statistics.median(times) / 1e6


def start_daemon(node_dir: Path, *, plaintext: bool = False) -> tuple[subprocess.Popen[bytes], int]:
    mode = "plaintext" if plaintext else "channel"
    daemon = subprocess.Popen([sys.executable, "-c", DAEMON, str(node_dir), mode], stdout=subprocess.PIPE)
    assert daemon.stdout is not None
    line = daemon.stdout.readline().decode()  # empty if the daemon dies instead
    if not line.startswith("listening on "):
        daemon.kill()
        raise SystemExit(f"the daemon did not start (it printed {line!r})")
    return daemon, int(line.rsplit(":", 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller samples, for a smoke run")
    sizes = QUICK if parser.parse_args().quick else FULL

    caller = generate_identity("owner")
    verify_rate = raw_verify_rate(caller, sizes)
    with tempfile.TemporaryDirectory() as tmp:
        node_dir = Path(tmp) / "node"
        node_key = init_node(node_dir, caller.public_key, ten_vessel_layout(caller))
        plain_dir = Path(tmp) / "plaintext-node"
        plain_key = init_node(plain_dir, caller.public_key, ten_vessel_layout(caller))
        lookup_us = state_read_us(node_dir, sizes.latency_calls)
        daemon, port = start_daemon(node_dir)
        plain_daemon, plain_port = start_daemon(plain_dir, plaintext=True)
        try:
            time.sleep(SETTLE)
            idle = memory_of(daemon.pid)
            shake_cpu = trio.run(handshake_cpu_ms, sizes.handshakes)
            shake_rate, shake_ms = trio.run(handshakes, port, daemon.pid, node_key, sizes.handshakes)
            encrypted: list[float] = []
            plaintext: list[float] = []
            for _ in range(sizes.rounds):  # alternating, so both see the same machine load
                encrypted.append(trio.run(pipelined_rate, port, caller, sizes.rate_calls))
                plaintext.append(trio.run(functools.partial(
                    pipelined_rate, plain_port, caller, sizes.rate_calls, node_key=plain_key,
                    plaintext=True)))
            one, plain = max(encrypted), max(plaintext)
            stateless = trio.run(pipelined_rate, port, caller, sizes.rate_calls, STATELESS_CALL)
            many = trio.run(concurrent_rate, port, caller, sizes.rate_calls)
            times = trio.run(latencies_ms, port, caller, sizes.latency_calls)
            upload = trio.run(upload_mb_s, port, caller, sizes.uploads)
            download = trio.run(download_mb_s, port, caller, sizes.uploads)
            time.sleep(SETTLE)
            loaded = memory_of(daemon.pid)
        finally:
            for process in (daemon, plain_daemon):
                process.kill()
                process.wait()

    p50, p99 = (statistics.quantiles(times, n=100)[i] for i in (49, 98))
    rate_goal = f"≥ {GOAL_RATE:,.0f}/s"
    rows = [
        Row("Ed25519 verify limit (libsodium crypto_sign_open, this run)", "-", f"{verify_rate:,.0f}/s", None),
        Row("channel handshake, client + node CPU (memory streams, anonymous client)", f"< {GOAL_HANDSHAKE_MS:g} ms",
            f"{shake_cpu:.2f} ms", shake_cpu < GOAL_HANDSHAKE_MS),
        Row("  whole connection to the daemon, client + daemon CPU (connect, handshake, close)", "report",
            f"{shake_ms:.2f} ms", None),
        Row("  connections/s, one after another", "report", f"{shake_rate:,.0f}/s", None),
        Row("signed calls/s, 1 connection (pipelined, pre-signed)", rate_goal, f"{one:,.0f}/s", one >= GOAL_RATE),
        Row(f"  same, plaintext protocol (benchmark-only daemon; best of {sizes.rounds} each)", "-",
            f"{plain:,.0f}/s", None),
        Row("  encrypted / plaintext", f"≥ {GOAL_PLAINTEXT_RATIO:g}×", f"{one / plain:.2f}×",
            one / plain >= GOAL_PLAINTEXT_RATIO),
        Row("  ratio to the Ed25519 verify limit", "report", f"{one / verify_rate:.2f}", None),
        Row("  signed GetNodeInfo/s, 1 connection (reads no state: the server path alone)", "-",
            f"{stateless:,.0f}/s", None),
        Row("  NodeState.get_vessel() in-process (ListFilesInVessel does 1, on the event loop)", "-",
            f"{lookup_us:.0f} µs", None),
        Row(f"signed calls/s, {CLIENTS} concurrent clients (1 call each at a time, pre-signed)", rate_goal,
            f"{many:,.0f}/s", many >= GOAL_RATE),
        Row("  ratio to the Ed25519 verify limit", "report", f"{many / verify_rate:.2f}", None),
        Row("signed call latency p50 (signing included)", f"< {GOAL_P50_MS:g} ms", f"{p50:.3f} ms",
            p50 < GOAL_P50_MS),
        Row("signed call latency p99 (signing included)", f"< {GOAL_P99_MS:g} ms", f"{p99:.3f} ms",
            p99 < GOAL_P99_MS),
        Row("upload of a 1 MiB file into a vessel (median)", f"≥ {GOAL_UPLOAD_MB_S:g} MB/s",
            f"{upload:.1f} MB/s", upload >= GOAL_UPLOAD_MB_S),
        Row("download of that 1 MiB file (median)", f"≥ {GOAL_UPLOAD_MB_S:g} MB/s",
            f"{download:.1f} MB/s", download >= GOAL_UPLOAD_MB_S),
        Row(f"idle daemon RSS, {VESSELS} vessels (daemon alone)", f"< {GOAL_RSS_MB:g} MB",
            f"{idle.daemon_rss:.1f} MB", idle.daemon_rss < GOAL_RSS_MB),
        Row("  idle, daemon + zygote + spares", "report", idle.text(), None),
        Row("  after the load above", "-", loaded.text(), None),
    ]
    print_table(f"Node manager daemon on 127.0.0.1 ({VESSELS} vessels; {sizes.rate_calls:,} calls per rate "
                f"figure, {sizes.latency_calls:,} latency samples, {sizes.uploads} uploads)", rows)
    if any(row.met is False for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
