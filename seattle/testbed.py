"""A local testbed: N real node managers on loopback, each its own `seattle node run` process, in one overlay.

    factory = owned_vessels(researcher.public_key, vessels_per_node=2)
    with LocalTestbed(directory, nodes=4, factory=factory) as testbed:
        testbed.nodes[0].address            # "127.0.0.1:40471", as the node printed it
    # every node manager got SIGTERM (then SIGKILL after a bounded wait) and was waited for

Experiments, the demo and the tests want a handful of real nodes without setting each one up by hand. Node 0
starts first and alone: its address is the overlay's entry point, so the others are created only then, with
node 0 as their bootstrap node (in `node.json`), and started together. Each node listens on a port the OS
picks, and gets a pool of vessel ports of its own, disjoint from every other node's and above Linux's
ephemeral range, so a vessel never finds its port taken by another node's connection.

How a node directory is made is the caller's choice (a `NodeFactory`): `owned_vessels` gives every node a
few vessels owned by one key; the demo makes nodes from a planner profile. Either way the testbed writes
the node's `node.json` last (`write_node_config`), so every node listens on loopback with an OS-chosen port
and joins through node 0, whatever the factory wrote there.

Processes: each node manager runs in a session of its own, so a Ctrl-C in the terminal reaches only the
program that owns the testbed, which then stops the nodes in order; and each asks the kernel to SIGTERM it
should that program die without stopping it (Linux's parent-death signal), so no node outlives its testbed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType, TracebackType

from seattle.donor.donation import DEFAULT_PERCENT, MachineResources, init_node_from_profile
from seattle.errors import NodeExists, TestbedStartFailed
from seattle.keys import PublicKey
from seattle.nodemgr.config import NodeConfig
from seattle.nodemgr.node import init_node
from seattle.nodemgr.nodedir import NodeDir
from seattle.planner.profile import Profile
from seattle.resources import DEFAULT_ALLOTMENT

#: Bounded waits: a node that has not said `listening on` by then is reported, never waited for forever.
STARTUP_TIMEOUT = 30.0
#: A node manager stops its vessels on SIGTERM; after this long it gets SIGKILL.
STOP_TIMEOUT = 15.0
#: Vessel ports come from here: above Linux's ephemeral range (32768-60999) and below 63100-63199, the vessel
#: ports a real node on this host (or a test of one) uses by default.
PORT_RANGE = range(61000, 63100)
#: Vessel ports per node: enough for a few vessels with a couple of ports each.
DEFAULT_PORTS_PER_NODE = 8
#: The longest first line a node manager prints; anything longer is not the line we wait for.
_MAX_LINE = 4096
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class NodeSpec:
    """What a factory needs to make one node directory: which node, where, and its vessel port pool."""

    index: int
    directory: Path
    host: str
    ports: tuple[int, ...]


#: Makes the node directory `spec.directory` (keys, vessels); the testbed writes `node.json` afterwards.
NodeFactory = Callable[[NodeSpec], None]


@dataclass
class TestbedNode:
    """One running node manager of the testbed."""

    __test__ = False  # not a pytest test class, whatever its name says

    index: int
    directory: Path
    address: str
    ports: tuple[int, ...]
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


def owned_vessels(owner: PublicKey, vessels_per_node: int = 1, users: Sequence[PublicKey] = ()) -> NodeFactory:
    """A factory giving each node `vessels_per_node` vessels owned by `owner` (with `users`), each with the
    default allotment and an equal share of the node's port pool as its message and connection ports."""
    if vessels_per_node < 1:
        raise ValueError(f"vessels_per_node must be at least 1, not {vessels_per_node}")

    def make(spec: NodeSpec) -> None:
        share = len(spec.ports) // vessels_per_node
        if share < 1:
            raise ValueError(f"{len(spec.ports)} ports cannot be shared among {vessels_per_node} vessels")
        layout = []
        for number in range(vessels_per_node):
            ports = frozenset(spec.ports[number * share:(number + 1) * share])
            layout.append((DEFAULT_ALLOTMENT.replace(messport=ports, connport=ports), owner, tuple(users)))
        init_node(spec.directory, owner, layout)

    return make


def pool_vessels(owner: PublicKey, pool_per_node: int = 2) -> NodeFactory:
    """A factory giving each node one vessel owned by `owner` and `pool_per_node` pool vessels (owned by the
    node's own key, leased to researchers: docs/pool.md), each with the default allotment and an equal share of
    the node's port pool."""
    if pool_per_node < 1:
        raise ValueError(f"pool_per_node must be at least 1, not {pool_per_node}")

    def make(spec: NodeSpec) -> None:
        share = len(spec.ports) // (pool_per_node + 1)
        if share < 1:
            raise ValueError(f"{len(spec.ports)} ports cannot be shared among {pool_per_node + 1} vessels")
        sizes = [DEFAULT_ALLOTMENT.replace(messport=frozenset(spec.ports[n * share:(n + 1) * share]),
                                           connport=frozenset(spec.ports[n * share:(n + 1) * share]))
                 for n in range(pool_per_node + 1)]
        init_node(spec.directory, owner, [(sizes[0], owner, ())], pool=sizes[1:])

    return make


def from_profile(profile: Profile, *, percent: int = DEFAULT_PERCENT,
                 machine: MachineResources | None = None) -> NodeFactory:
    """A factory laying every node out by a planner `profile`, as a donor's installer would: `percent` of
    `machine` (measured once per node when None), divided among the profile's vessels, with the node's
    port pool as the vessels' ports."""

    def make(spec: NodeSpec) -> None:
        # The caller made (or verified) this profile itself: its signer is the planner this testbed trusts.
        init_node_from_profile(spec.directory, profile, planner=profile.planner, percent=percent, host=spec.host,
                               port=0, ports=spec.ports, machine=machine)

    return make


def write_node_config(node_dir: Path, host: str, bootstrap: Sequence[str]) -> None:
    """Make `node_dir` listen on `host` with an OS-chosen port, let its vessels use `host`, and join the
    overlay through `bootstrap`; any other setting a factory wrote is kept. Replaced atomically."""
    paths = NodeDir(node_dir)
    config = NodeConfig(host, 0, (host,), tuple(bootstrap))
    if paths.config_path.exists():
        config = replace(paths.read_config(), host=host, port=0, local_ips=(host,), bootstrap=tuple(bootstrap))
    paths.write_config(config)


def free_port_pool(count: int, host: str = "127.0.0.1", *, port_range: range = PORT_RANGE) -> list[int]:
    """`count` ports of `port_range` that nothing on `host` holds now, for TCP or UDP.

    The scan starts at a random point, so two testbeds started at the same time (tests running in parallel)
    rarely probe the same ports. A port is free only at the moment it is probed: this narrows the window in
    which another program could take it, it cannot close it.
    """
    if count > len(port_range):
        raise ValueError(f"asked for {count} ports from a range of {len(port_range)}")
    start = random.randrange(len(port_range))
    found: list[int] = []
    for offset in range(len(port_range)):
        port = port_range[(start + offset) % len(port_range)]
        if _port_is_free(host, port):
            found.append(port)
            if len(found) == count:
                return found
    raise TestbedStartFailed("the vessel port pools", f"only {len(found)} of the {count} ports needed are free "
                             f"in {port_range.start}-{port_range.stop - 1} on {host}")


def _port_is_free(host: str, port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                return False
    return True


class LocalTestbed:
    """See the module docstring. `start()` and `stop()`, or `with`; `nodes` lists the running nodes."""

    def __init__(self, directory: Path, nodes: int, factory: NodeFactory, *, host: str = "127.0.0.1",
                 ports_per_node: int = DEFAULT_PORTS_PER_NODE, env: Mapping[str, str] | None = None,
                 startup_timeout: float = STARTUP_TIMEOUT, stop_timeout: float = STOP_TIMEOUT,
                 allow_unconfined: bool = False) -> None:
        if nodes < 1:
            raise ValueError(f"a testbed needs at least one node, not {nodes}")
        self.directory = Path(directory)
        self.count = nodes
        self.factory = factory
        self.host = host
        self.ports_per_node = ports_per_node
        self.env = dict(os.environ if env is None else env)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.allow_unconfined = allow_unconfined
        self.nodes: list[TestbedNode] = []
        self._starting: list[tuple[NodeSpec, subprocess.Popen[bytes]]] = []

    @property
    def bootstrap(self) -> list[str]:
        """The overlay's entry point, `HOST:PORT` of node 0 (empty before it runs)."""
        return [self.nodes[0].address] if self.nodes else []

    def node_directory(self, index: int) -> Path:
        return self.directory / f"node{index}"

    def __enter__(self) -> LocalTestbed:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def start(self) -> list[TestbedNode]:
        """Create and start every node (node 0 first); on any failure stop those started and raise
        TestbedStartFailed naming the node and what it printed."""
        try:
            pool = free_port_pool(self.count * self.ports_per_node, self.host)
            specs = [NodeSpec(index, self.node_directory(index), self.host,
                              tuple(sorted(pool[index * self.ports_per_node:(index + 1) * self.ports_per_node])))
                     for index in range(self.count)]
            self.directory.mkdir(parents=True, exist_ok=True)
            self._launch([specs[0]])
            self._launch(specs[1:])
        except BaseException:
            self.stop()
            raise
        return self.nodes

    def _launch(self, specs: Sequence[NodeSpec]) -> None:
        for spec in specs:
            if spec.directory.exists() and any(spec.directory.iterdir()):
                raise NodeExists(spec.directory, "left by an earlier testbed; give the testbed a new directory")
            self.factory(spec)
            write_node_config(spec.directory, self.host, self.bootstrap)
            self._starting.append((spec, self._spawn(spec)))
        deadline = time.monotonic() + self.startup_timeout
        while self._starting:
            spec, process = self._starting[0]
            address = self._wait_for_address(spec, process, deadline)
            self.nodes.append(TestbedNode(spec.index, spec.directory, address, spec.ports, process))
            self._starting.pop(0)

    def _spawn(self, spec: NodeSpec) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "seattle.cli", "node", "run", "--dir", str(spec.directory)]
        if self.allow_unconfined:
            command.append("--allow-unconfined")
        with open(self.stderr_path(spec.index), "wb") as stderr:
            return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                    env=self.env, start_new_session=True, preexec_fn=_die_with_parent(os.getpid()))

    def stderr_path(self, index: int) -> Path:
        """Where node `index`'s standard error goes (tracebacks of a node that could not start)."""
        return self.directory / f"node{index}.stderr"

    def stderr_tail(self, index: int, lines: int) -> list[str]:
        """The last `lines` lines node `index` wrote to standard error, without the frames that trio's
        exception groups draw around tracebacks (so the last line is the error itself)."""
        try:
            text = self.stderr_path(index).read_text("utf-8", "replace")
        except OSError:
            return []
        cleaned = [line.strip().lstrip("|+ ").strip() for line in text.splitlines()]
        return [line for line in cleaned if line.strip("-")][-lines:]

    def _wait_for_address(self, spec: NodeSpec, process: subprocess.Popen[bytes], deadline: float) -> str:
        assert process.stdout is not None
        line = _read_line(process.stdout.fileno(), deadline)
        if line is None:
            raise self._failure(spec, process, f"it did not say `listening on` within {self.startup_timeout:g} s")
        text = line.decode("utf-8", "replace").strip()
        if not text.startswith("listening on "):
            raise self._failure(spec, process, f"its first line was {text!r:.200}, not `listening on HOST:PORT`")
        return text.removeprefix("listening on ")

    def _failure(self, spec: NodeSpec, process: subprocess.Popen[bytes], reason: str) -> TestbedStartFailed:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=1.0)  # a node that failed is usually exiting: let its stderr be complete
        tail = self.stderr_tail(spec.index, 3)
        detail = f"; it printed: {' / '.join(tail)}" if tail else ""
        return TestbedStartFailed(f"node {spec.index} in {spec.directory}", reason + detail)

    def exited(self) -> list[str]:
        """One line for each started node that is no longer running: its exit code and last stderr line."""
        lines = []
        for node in self.nodes:
            code = node.process.poll()
            if code is not None:
                tail = self.stderr_tail(node.index, 1)
                lines.append(f"node {node.index} ({node.address}) exited with code {code}"
                             + (f": {tail[0]}" if tail else ""))
        return lines

    def stop(self) -> dict[int, int | None]:
        """SIGTERM every node, wait (bounded) for each, SIGKILL any still running; returns exit codes by node
        index (negative: killed by that signal; None: never started). Safe to call more than once."""
        processes = [(node.index, node.process) for node in self.nodes]
        processes += [(spec.index, process) for spec, process in self._starting]
        for _, process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        codes: dict[int, int | None] = {}
        for index, process in processes:
            try:
                codes[index] = process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                codes[index] = process.wait()
            if process.stdout is not None:
                process.stdout.close()
        return codes


def _read_line(fd: int, deadline: float) -> bytes | None:
    """The first line on `fd`, or None at end of file, at the deadline or past `_MAX_LINE` bytes."""
    data = b""
    while b"\n" not in data and len(data) < _MAX_LINE:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        chunk = os.read(fd, _MAX_LINE)
        if not chunk:
            return None
        data += chunk
    line, newline, _ = data.partition(b"\n")
    return line if newline else None


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A preexec function asking Linux to SIGTERM the child when `parent` dies (elsewhere: nothing)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM acts as Ctrl-C (KeyboardInterrupt, or trio's handling of SIGINT), so the
    `finally` blocks that stop a testbed run for both (the default SIGTERM would end Python without them).

    A shell starts background jobs with SIGINT ignored; that would swallow the SIGTERM too, so within the
    block SIGINT gets Python's default handler back.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        os.kill(os.getpid(), signal.SIGINT)

    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
