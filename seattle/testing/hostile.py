"""A real node manager daemon on loopback, its owner's calls timed, its memory watched: the attack harness's
side of the victim, shared by tests/nodemgr/test_hostile_peers.py and bench/bench_hostile.py.

    node = start_node(make_node(tmp / "node", owner.public_key))
    async with trio.open_nursery() as nursery:
        watch = MemoryWatch(node.process.pid)
        nursery.start_soon(watch.run)
        result = await owner_call(node.target, owner)       # Call(ok, ms, detail)
    stop_node(node)

The daemon is `seattle node run` in a process of its own (its memory is its own, and a crash is a crash),
listening on 127.0.0.1 and a port the OS picks, TCP and the overlay's UDP on the same port. Its node has one
vessel, v1, owned by the owner key the caller gives. The owner calls from 127.0.0.1, as a fresh connection
per call (as `seattle call` does): a call is connect + handshake + one signed call, so it measures whether
the owner can get in at all, not only whether a connection held from before the attack still works.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import trio

from seattle.keys import Identity, PublicKey
from seattle.nodemgr.client import NodeClient, NodeClientError
from seattle.nodemgr.config import NodeConfig
from seattle.nodemgr.node import init_node
from seattle.nodemgr.nodedir import NodeDir
from seattle.testing.attackers import Target

#: A daemon that has not printed its `listening on` line by then has failed to start.
START_TIMEOUT = 20.0
#: How often `MemoryWatch` reads the daemon's RSS.
SAMPLE_INTERVAL = 0.02
#: The owner's probe: signed, reads the vessel's state, changes nothing.
PROBE_CALL = ("ListFilesInVessel", {"vessel": "v1"})


@dataclass
class RunningNode:
    process: subprocess.Popen[bytes]
    target: Target
    node_dir: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


def make_node(node_dir: Path, owner: PublicKey) -> Path:
    """A node directory with one default vessel v1 owned by `owner`, configured for 127.0.0.1, any port."""
    init_node(node_dir, owner)
    NodeDir(node_dir).config_path.write_text(NodeConfig(host="127.0.0.1", port=0).to_json())
    return node_dir


def start_node(node_dir: Path) -> RunningNode:
    """`seattle node run --dir node_dir`, once it says it is listening; RuntimeError with its stderr if not."""
    process = subprocess.Popen([sys.executable, "-m", "seattle.cli", "node", "run", "--dir", str(node_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline().decode()  # empty if the daemon dies instead
    if not line.startswith("listening on 127.0.0.1:"):
        process.kill()
        _, errors = process.communicate(timeout=START_TIMEOUT)
        raise RuntimeError(f"the daemon did not start ({line!r}): {errors.decode(errors='replace')[-2000:]}")
    return RunningNode(process, Target("127.0.0.1", int(line.rsplit(":", 1)[1])), node_dir)


def stop_node(node: RunningNode) -> str:
    """SIGTERM the daemon (a clean stop), SIGKILL if it lingers; returns what it wrote to stderr."""
    if node.alive:
        node.process.terminate()
    try:
        _, errors = node.process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        node.process.kill()
        _, errors = node.process.communicate()
    return errors.decode(errors="replace")


@dataclass
class MemoryWatch:
    """The daemon's RSS, sampled every SAMPLE_INTERVAL while `run` runs; `reset` starts a new peak."""

    pid: int
    peak: float = 0.0  # MB
    samples: int = 0

    def reset(self) -> None:
        self.peak, self.samples = 0.0, 0

    async def run(self) -> None:
        process = psutil.Process(self.pid)
        while True:
            try:
                rss = process.memory_info().rss / 1e6
            except psutil.Error:
                return  # the daemon is gone: the caller sees that for itself
            self.peak = max(self.peak, rss)
            self.samples += 1
            await trio.sleep(SAMPLE_INTERVAL)


@dataclass(frozen=True)
class Call:
    ok: bool
    ms: float
    detail: str


@dataclass
class Calls:
    """The owner's calls of one phase."""

    calls: list[Call] = field(default_factory=list)

    @property
    def success(self) -> float:
        return sum(call.ok for call in self.calls) / len(self.calls) if self.calls else 0.0

    @property
    def p99(self) -> float:
        times = [call.ms for call in self.calls if call.ok]
        if len(times) < 2:
            return times[0] if times else float("inf")
        return statistics.quantiles(times, n=100, method="inclusive")[98]

    def failures(self) -> list[str]:
        return [call.detail for call in self.calls if not call.ok]


async def owner_call(target: Target, owner: Identity, call: tuple[str, dict[str, Any]] = PROBE_CALL,
                     timeout: float = 10.0) -> Call:
    """One owner call on a fresh connection, timed from connect to the parsed answer."""
    start = time.perf_counter()
    try:
        async with await NodeClient.connect(target.host, target.port, owner, timeout=timeout) as client:
            await client.call(call[0], **call[1])
    except (NodeClientError, OSError) as exc:
        return Call(False, (time.perf_counter() - start) * 1000, f"{type(exc).__name__}: {exc}")
    return Call(True, (time.perf_counter() - start) * 1000, "")


async def owner_calls(target: Target, owner: Identity, calls: Calls, *, count: int, interval: float,
                      until: trio.Event | None = None) -> None:
    """`count` owner calls `interval` seconds apart (or fewer, once `until` is set), into `calls`."""
    for _ in range(count):
        if until is not None and until.is_set():
            return
        calls.calls.append(await owner_call(target, owner))
        await trio.sleep(interval)

