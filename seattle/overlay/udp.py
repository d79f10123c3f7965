"""The overlay's real transport: one `OverlayNode` engine on a trio UDP socket.

Two tasks per node: a receive loop that feeds every datagram to the engine and sends what it returns, and a
timer that sleeps until the engine's `next_deadline()` (woken early whenever a helper queues new work) and
calls `poll`. All protocol decisions stay in the sans-IO engine, so this runs the very code the simulator
(`seattle.overlay.simnet`) runs, and offers the same `OverlayTransport` interface.

The socket is a plain non-blocking one, waited on with `trio.lowlevel.wait_readable`: once it is readable the
loop drains up to RECEIVE_BATCH datagrams, and replies are sent at once (a datagram that finds the send buffer
full is dropped, as a congested network would drop it; waiting for room from two tasks at once is an error in
trio). A trio socket would add a scheduler round trip to every receive and every send, which was a fifth of a
node's CPU time.

Nothing a socket reports ends the loops: recvfrom and sendto errors (an ICMP error queued for an earlier
send, ENOBUFS, a full send buffer) cost the one datagram and are counted in `socket_errors` by call and errno
name; the engine drops and counts whatever it refuses (`OverlayNode.dropped`). The node's scope
(`seattle.overlay.addresses`) is widened to the address the socket is bound to, so a node on 127.0.0.1 or a
10.x testbed talks to its peers there, and one bound to a public or wildcard address to public ones only.

Every datagram costs its receiver a signature check (about 70 µs) before anything else, and UDP sources cost a
sender nothing, so datagrams are budgeted per source before the engine sees them (`seattle.budgets`: per IPv4
address or IPv6 /64, and per /24 or /48): a flood from one network costs at most NETWORK_RATE checks a
second, and is counted in `rate_limited`, while every other network is served as before.

Dial-backs (`seattle.overlay.reachability`): the engine's probes leave from a second UDP socket, bound to the
same host at a port of its own (opened at the first probe), and its TCP dials are plain connections from an
ephemeral port, each closed at once and reported to the engine (`OverlayNode.tcp_dialed`); so neither rides
on a flow the requester's NAT or firewall already holds open for the overlay's own socket. The engine asks
which address this host sends from toward a peer (`OverlayNode.local_ip`): the bound address, or for a
wildcard bind the one the kernel's routing picks (a connected UDP socket's own address; connecting sends
nothing).

The engine's clock is trio's monotonic clock shifted to read as wall-clock seconds: monotonic so deadlines
never jump with the system clock, wall-clock-aligned because stored records carry wall-clock timestamps.
"""

from __future__ import annotations

import errno
import ipaddress
import math
import socket
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from types import TracebackType

import trio

from seattle.budgets import RateTable, SourceBudget, source_of
from seattle.overlay.addresses import bound_scope
from seattle.overlay.messages import MAX_DATAGRAM
from seattle.overlay.protocol import TCP_DIAL_TIMEOUT, Address, Datagram, OverlayNode
from seattle.overlay.transport import EngineTransport

#: How long a helper waits for an answer or a lookup (seconds); the engine's own timeouts end it sooner.
DEFAULT_TIMEOUT = 30.0
#: Datagrams handled per wake-up of the receive loop before it lets other tasks run.
RECEIVE_BATCH = 32
#: Datagrams a second (and burst) taken from one address, and from one network. A node's honest traffic is a
#: few datagrams a second per peer; a local testbed puts all its nodes on one address, far below these.
ADDRESS_RATE, ADDRESS_BURST = 500.0, 1000
NETWORK_RATE, NETWORK_BURST = 2000.0, 4000
#: Sources remembered per table; the least recently seen is forgotten first.
SOURCES_REMEMBERED = 4096


class UdpOverlay(EngineTransport):
    """`async with UdpOverlay(node, "127.0.0.1", 0) as overlay:` serves `node` until the block ends.

    The helpers (request, ping, bootstrap, lookup) are `EngineTransport`'s; this class only drives the engine.
    """

    default_timeout = DEFAULT_TIMEOUT

    def __init__(self, node: OverlayNode, host: str = "127.0.0.1", port: int = 0) -> None:
        if not isinstance(node, OverlayNode):
            raise TypeError(f"UdpOverlay serves an OverlayNode, not {type(node).__name__}")
        try:
            self._family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        except ValueError:
            raise ValueError(f"UdpOverlay host must be an IP address literal, got {host!r:.80}") from None
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(
                f"UdpOverlay port must be an int in 0..65535 (0: any free port), got {port!r:.40}"
            )
        super().__init__(node)
        self._host = host
        self._port = port
        self._socket: socket.socket | None = None
        self._probe_socket: socket.socket | None = None
        self._nursery: trio.Nursery | None = None
        self._address: Address | None = None
        self._offset = 0.0
        self._kick = trio.Event()
        self._progress = trio.Event()
        #: Helpers waiting on `_progress`, which is set (and replaced) only when one is and a request or lookup
        #: has ended since (`OverlayNode.finished`).
        self._watchers = 0
        self._finished = 0
        self._stack = AsyncExitStack()
        #: Socket errors survived, by "recvfrom ERRNO" / "sendto ERRNO" (e.g. "sendto EAGAIN"): for stats.
        self.socket_errors: Counter[str] = Counter()
        self._budget = SourceBudget(RateTable(ADDRESS_RATE, ADDRESS_BURST, SOURCES_REMEMBERED),
                                    RateTable(NETWORK_RATE, NETWORK_BURST, SOURCES_REMEMBERED))
        #: Datagrams dropped unread because their source was over its budget.
        self.rate_limited = 0

    @property
    def address(self) -> Address:
        """The (host, port) the socket is bound to; port is the real one when 0 was asked for."""
        if self._address is None:
            raise RuntimeError("the overlay is not running (use `async with UdpOverlay(...)`)")
        return self._address

    def now(self) -> float:
        return trio.current_time() + self._offset

    async def __aenter__(self) -> UdpOverlay:
        if self._socket is not None:
            raise RuntimeError("this UdpOverlay is already running")
        sock = socket.socket(self._family, socket.SOCK_DGRAM)
        self._stack.callback(sock.close)
        try:
            sock.setblocking(False)
            sock.bind((self._host, self._port))
            host, port = sock.getsockname()[:2]
            self._socket, self._address = sock, (host, port)
            self._node.widen_scope(bound_scope(host))
            self._node.local_ip = self._local_ip
            self._node.tcp_dialer = True
            self._offset = time.time() - trio.current_time()
            nursery = await self._stack.enter_async_context(trio.open_nursery())
            self._nursery = nursery
            self._stack.callback(nursery.cancel_scope.cancel)
            nursery.start_soon(self._receive_loop)
            nursery.start_soon(self._timer_loop)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            await self._stack.aclose()
        finally:
            self._socket = self._probe_socket = self._nursery = None
            self._address = None

    # --- the two tasks ----------------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        sock = self._running_socket()
        # Bound once: this loop runs for every datagram of every node in the process.
        receive, spend, handle = sock.recvfrom, self._budget.spend, self._node.datagram_received
        while True:
            await trio.lowlevel.wait_readable(sock)
            for _ in range(RECEIVE_BATCH):
                try:
                    # One byte more than the limit, so an oversized datagram is seen (and refused) as such.
                    data, source = receive(MAX_DATAGRAM + 1)
                except BlockingIOError:
                    break
                except OSError as error:  # e.g. an ICMP error queued for an earlier send: not this datagram's
                    self._count_error("recvfrom", error)
                    continue
                # An IPv4 source is already (host, port); an IPv6 one carries flow info and scope id too.
                address = source if len(source) == 2 else (source[0], source[1])
                now = self.now()
                if spend(source_of(address[0]), now) is not None:
                    self.rate_limited += 1
                    continue
                self._send(handle(data, address, now))

    async def _timer_loop(self) -> None:
        while True:
            deadline = self._node.next_deadline()
            wake = math.inf if deadline is None else deadline - self._offset
            with trio.move_on_at(wake):
                await self._kick.wait()
            self._kick = trio.Event()
            self._send(self._node.poll(self.now()))

    def _send(self, datagrams: list[Datagram]) -> None:
        """Send at once, without waiting (module docstring): no checkpoint, so the receive loop stays one
        task step per batch."""
        sock = self._running_socket()
        for data, destination in datagrams:
            try:
                sock.sendto(data, destination)
            except OSError as error:
                # A full send buffer (BlockingIOError) or an unreachable peer: the datagram is lost, as on a
                # congested network, and the engine's timeout for its answer handles it.
                self._count_error("sendto", error)
        self._dial_back()
        if self._watchers and self._node.finished != self._finished:
            self._finished = self._node.finished
            progress, self._progress = self._progress, trio.Event()
            progress.set()

    def _dial_back(self) -> None:
        """Send the engine's probes from the other socket and start its TCP dials."""
        probes = self._node.take_probes()
        for data, destination in probes:
            try:
                self._other_socket().sendto(data, destination)
            except OSError as error:
                self._count_error("sendto", error)
        dials = self._node.take_tcp_dials()
        if dials and self._nursery is not None:
            for token, destination in dials:
                self._nursery.start_soon(self._dial_tcp, token, destination)

    async def _dial_tcp(self, token: int, destination: Address) -> None:
        """Open a TCP connection to `destination` and close it: whether it was reached, for the engine."""
        reached = False
        with trio.move_on_after(TCP_DIAL_TIMEOUT * 0.9):  # reported before the engine gives up on it
            try:
                stream = await trio.open_tcp_stream(*destination)
            except OSError:
                pass
            else:
                reached = True
                await stream.aclose()
        self._node.tcp_dialed(token, reached, self.now())
        self._send(self._node.poll(self.now()))

    def _other_socket(self) -> socket.socket:
        """The probes' socket, opened at the first probe (a process running many nodes, a bench, needs no
        second descriptor per node until one serves a dial-back)."""
        if self._probe_socket is None:
            probe = socket.socket(self._family, socket.SOCK_DGRAM)
            self._stack.callback(probe.close)
            probe.setblocking(False)
            self._probe_socket = probe
            probe.bind((self._host, 0))
        return self._probe_socket

    def _local_ip(self, peer: str) -> str | None:
        """The address this host sends from toward `peer` (module docstring); None if there is no route."""
        if self._host not in ("0.0.0.0", "::"):
            return self._host
        try:
            with socket.socket(self._family, socket.SOCK_DGRAM) as probe:
                probe.connect((peer, 9))  # a UDP connect only picks a route and a source: nothing is sent
                local: str = probe.getsockname()[0]
                return local
        except OSError:
            return None

    def _count_error(self, call: str, error: OSError) -> None:
        name = errno.errorcode.get(error.errno, str(error.errno)) if error.errno is not None else "unknown"
        self.socket_errors[f"{call} {name}"] += 1

    def _check_running(self) -> None:
        self._running_socket()

    def _running_socket(self) -> socket.socket:
        if self._socket is None:
            raise RuntimeError("the overlay is not running (use `async with UdpOverlay(...)`)")
        return self._socket

    async def _queued(self) -> None:
        """A helper queued work on the engine: send it now and let the timer see the new deadline."""
        self._send(self._node.poll(self.now()))
        self._kick.set()

    async def _until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        with trio.move_on_after(timeout):
            while not ready():
                self._watchers += 1
                try:
                    await self._progress.wait()
                finally:
                    self._watchers -= 1
            return
        raise TimeoutError(f"{what} did not finish within {timeout} s")
