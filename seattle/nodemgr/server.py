"""The node manager's TCP server: framing, limits, request checks and dispatch to `NodeAPI`, for many clients.

Unlike the original (one worker thread for the whole node), every connection is served by its own pair of
tasks, so a slow or flooding client only ever waits for itself:

* a **reader** feeds received bytes to a `FrameDecoder` and puts each complete request into a bounded
  queue (`pipeline_depth`); when the queue is full it stops reading, and TCP flow control pushes back on the
  client, so a flood costs the node a few buffered requests per connection, not memory;
* a **processor** takes requests in order, checks signed ones (signature, times, then the signer's rights,
  and only then the replay cache), dispatches, and writes the responses in request order, which is what
  makes pipelining work.

Every byte is from a stranger until a signature says otherwise, so the limits are in bytes and by source:

* frames: `small_frame` (16 KiB) for anyone; a frame announced larger is taken only if the key its first
  bytes claim owns or uses a vessel here (`NodeAPI.has_rights`), at most one per connection and
  `max_large_frames` on the whole node, each until it is answered; bodies are decoded within
  `boundedmsgpack.REQUEST_LIMITS`, so decoding work is bounded per frame;
* time: `idle_timeout` without a byte and without a request in progress; `frame_timeout` (plus the time a
  large frame needs at `min_transfer_rate`) from a frame's first byte to its last, so a request trickled a
  byte at a time is dropped; `write_timeout` (plus the same rate allowance) to hand one answer to the kernel,
  whose send buffer is capped at `send_buffer`, so a client that does not read its answers is dropped and
  holds at most one answer and one send buffer of the node's memory;
* sources: connections per address (IPv4 address, IPv6 /64) and per network (IPv4 /24, IPv6 /48); requests
  from connections that have not yet made an authorized call are paced by token buckets per address and per
  network, kept in LRU tables of `prefix_table_size` entries that forget the least recently seen source;
* when all `max_connections` are taken, a new connection evicts the oldest connection that has never made an
  authorized call; only when every connection has is the newcomer refused (`too_many_connections`). An
  authorized call is a signed request that passed its checks and whose signer owns or uses a vessel here.

Every refusal and drop is counted in `NodeServer.stats` (a Counter read by tests, benchmarks and the control
socket's status): nothing a client sends raises out of its connection's tasks.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import socket
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from seattle.budgets import RateTable, Source, source_of
from seattle.envelope import BAD_SIGNATURE
from seattle.keys import PublicKey
from seattle.nodemgr.api import NodeAPI, Origin
from seattle.nodemgr.calltable import CALLS, Permission
from seattle.nodemgr.frames import (
    DEFAULT_MAX_FRAME,
    DEFAULT_SMALL_FRAME,
    FrameDecoder,
    FrameError,
    encode_frame,
)
from seattle.nodemgr.signing import (
    SIGNER_PREFIX,
    PublicRequest,
    RequestRejected,
    RequestVerifier,
    claimed_signer,
    error,
    open_request,
    request_signer,
)

log = logging.getLogger(__name__)

TOO_MANY_CONNECTIONS = "too_many_connections"
RESPONSE_TOO_LARGE = "response_too_large"
_RECEIVE_SIZE = 64 * 1024
#: Accept errors that mean "out of descriptors or memory for now": back off and retry, never stop listening.
_TRANSIENT_ACCEPT_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_ACCEPT_BACKOFF = (0.01, 1.0)
#: Refused connections told why at once; beyond that they are closed without a word.
_MAX_REFUSING = 64
#: Signed requests larger than this are verified in a worker thread (hashing 4 MiB takes ~10 ms).
_VERIFY_INLINE = 64 * 1024


@dataclass(frozen=True)
class ServerLimits:
    """How much one client, one network, and all of them together may hold of the node."""

    max_connections: int = 200
    #: Per IPv4 address or IPv6 /64.
    max_connections_per_address: int = 8
    #: Per IPv4 /24 or IPv6 /48.
    max_connections_per_network: int = 32
    #: Seconds without a byte from the client, while no request of it is in progress, before it is dropped.
    idle_timeout: float = 30.0
    #: Seconds from a frame's first byte to its last (large frames also get size / min_transfer_rate).
    frame_timeout: float = 20.0
    #: Seconds to hand one answer to the kernel (large answers also get size / min_transfer_rate).
    write_timeout: float = 20.0
    #: The slowest transfer the node waits for, in bytes/s: 4 MiB may take 20 s + 128 s.
    min_transfer_rate: int = 32 * 1024
    max_frame: int = DEFAULT_MAX_FRAME
    #: The frame limit for a sender not (yet) known to have rights on the node (at most max_frame).
    small_frame: int = DEFAULT_SMALL_FRAME
    #: Large frames (over small_frame) the node holds at once, from their header until they are answered.
    max_large_frames: int = 8
    #: Requests read ahead of the one being processed, per connection.
    pipeline_depth: int = 16
    #: The kernel's send buffer per connection (SO_SNDBUF), bytes: what a non-reading client can make it hold.
    send_buffer: int = 256 * 1024
    #: The kernel's receive buffer per connection (SO_RCVBUF), bytes: what a client can park in the kernel
    #: while its requests wait (autotuning would let it grow to several MiB per connection).
    receive_buffer: int = 256 * 1024
    #: Requests per second (and burst) a connection without an authorized call may make, per address...
    stranger_rate: float = 20.0
    stranger_burst: int = 40
    #: ... and per network, all its addresses together.
    network_rate: float = 100.0
    network_burst: int = 200
    #: A request whose frame claims a signer with rights (`claimed_signer`) is paced by its own buckets, so
    #: strangers on the owner's address or network cannot slow the owner's calls; the claim is checked by the
    #: signature at once, and a false one closes the connection. Per address, then per network.
    claimant_rate: float = 200.0
    claimant_burst: int = 400
    claimant_network_rate: float = 1000.0
    claimant_network_burst: int = 2000
    #: Sources remembered per table (addresses, networks); the least recently seen is forgotten first.
    prefix_table_size: int = 4096
    #: How long a refused connection gets to receive its error frame.
    refusal_timeout: float = 2.0

    def __post_init__(self) -> None:
        for name in ("max_connections", "max_connections_per_address", "max_connections_per_network",
                     "max_frame", "small_frame", "max_large_frames", "pipeline_depth", "send_buffer", "receive_buffer",
                     "min_transfer_rate", "stranger_burst", "network_burst", "claimant_burst",
                     "claimant_network_burst", "prefix_table_size"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"ServerLimits.{name} must be a positive integer, got {value!r}")
        for name in ("idle_timeout", "frame_timeout", "write_timeout", "refusal_timeout", "stranger_rate",
                     "claimant_rate", "claimant_network_rate",
                     "network_rate"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0 or math.isnan(value):
                raise ValueError(f"ServerLimits.{name} must be a positive number, got {value!r}")

    def transfer_time(self, base: float, size: int) -> float:
        """Seconds allowed to move `size` bytes: `base` plus what the slowest accepted rate needs."""
        return base + size / self.min_transfer_rate


@dataclass(frozen=True)
class _Request:
    message: object
    #: Holds one of the node's large-frame slots until answered.
    large: bool = False


@dataclass(frozen=True)
class _Broken:
    """The stream failed (a frame error): answer with `response` after what is owed, then close."""

    response: dict[str, Any]


@dataclass(eq=False)
class _Connection:
    """The state shared by one connection's reader and processor."""

    stream: trio.SocketStream
    address: str
    network: str
    limits: ServerLimits
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    pending: int = 0  # requests read but not yet answered
    #: Has made a signed call that passed, from an owner or user of a vessel: no longer paced, never evicted.
    authorized: bool = False
    released: bool = False
    #: Free when this connection holds no large frame: one at a time per connection.
    large_slot: trio.Semaphore = field(default_factory=lambda: trio.Semaphore(1))
    #: Holds its large_slot and one of the node's large-frame slots, until that frame is answered.
    holds_large: bool = False
    #: A large frame was admitted but is not complete yet: the next request queued is it.
    large_pending: bool = False
    #: Sent a request claiming a signer with rights whose signature failed: answered, then closed.
    forged: bool = False

    def __post_init__(self) -> None:
        self.send, self.receive = trio.open_memory_channel[_Request | _Broken](self.limits.pipeline_depth)


class NodeServer:
    """Accepts connections on `listeners` and serves them with `api`; see the module docstring."""

    def __init__(self, api: NodeAPI, verifier: RequestVerifier, limits: ServerLimits | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.verifier = verifier
        self.limits = limits or ServerLimits()
        self.clock = clock
        #: What was refused, dropped, evicted or paced, by cause: the counters tests and benchmarks read.
        self.stats: Counter[str] = Counter()
        self._per_address: Counter[str] = Counter()
        self._per_network: Counter[str] = Counter()
        self._total = 0
        self._refusing = 0  # refused connections still being told why
        #: Connections that have not (yet) made an authorized call, oldest first: the ones evicted when full.
        self._strangers: OrderedDict[_Connection, None] = OrderedDict()
        limits = self.limits
        self._address_pace = RateTable(limits.stranger_rate, limits.stranger_burst, limits.prefix_table_size)
        self._network_pace = RateTable(limits.network_rate, limits.network_burst, limits.prefix_table_size)
        self._claimant_address_pace = RateTable(limits.claimant_rate, limits.claimant_burst,
                                                limits.prefix_table_size)
        self._claimant_network_pace = RateTable(limits.claimant_network_rate, limits.claimant_network_burst,
                                                limits.prefix_table_size)
        self._large_frames = trio.Semaphore(limits.max_large_frames)
        self._verify_threads = trio.CapacityLimiter(2)

    @property
    def connections(self) -> int:
        return self._total

    async def serve(self, listeners: list[trio.SocketListener],
                    *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Accept on every listener until cancelled."""
        for listener in listeners:
            # On the listener, so every accepted socket is born with these buffers: the window scale is agreed
            # in the handshake, and shrinking a connection's receive buffer afterwards makes the kernel drop
            # segments it already offered room for, ACKs included (pipelined clients then stall for seconds).
            with contextlib.suppress(OSError):  # not a TCP socket we can tune: the write deadline still holds
                listener.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.limits.send_buffer)
                listener.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.limits.receive_buffer)
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(self._accept_loop, listener, nursery)
            task_status.started()

    async def _accept_loop(self, listener: trio.abc.Listener[trio.SocketStream], nursery: trio.Nursery) -> None:
        backoff = _ACCEPT_BACKOFF[0]
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno not in _TRANSIENT_ACCEPT_ERRORS:
                        raise
                    # Out of descriptors or buffers: the connections being served will free some. Keep
                    # listening; the waiting clients stay in the kernel's backlog meanwhile.
                    self.stats[f"accept_{errno.errorcode.get(exc.errno or 0, 'error').lower()}"] += 1
                    if backoff == _ACCEPT_BACKOFF[0]:
                        log.warning("accept failed (%s); backing off", exc)
                    await trio.sleep(backoff)
                    backoff = min(backoff * 2, _ACCEPT_BACKOFF[1])
                    continue
                backoff = _ACCEPT_BACKOFF[0]
                self._admit(stream, nursery)

    def _admit(self, stream: trio.SocketStream, nursery: trio.Nursery) -> None:
        address, network = _source_keys(_peer_address(stream))
        refusal = self._refusal(address, network)
        if refusal is not None:
            self.stats["connections_refused"] += 1
            if self._refusing >= _MAX_REFUSING:
                # A flood of refused connections: telling each why would hold a descriptor per connection.
                stream.socket.close()
                return
            self._refusing += 1
            nursery.start_soon(self._refuse, stream, refusal)
            return
        connection = _Connection(stream, address, network, self.limits)
        self._per_address[address] += 1
        self._per_network[network] += 1
        self._total += 1
        self._strangers[connection] = None
        nursery.start_soon(self._serve_connection, connection)

    def _refusal(self, address: str, network: str) -> str | None:
        limits = self.limits
        if self._per_address[address] >= limits.max_connections_per_address:
            return (f"{address} already has {limits.max_connections_per_address} connections open to this "
                    "node, the most one address may have; reuse one (requests can be pipelined)")
        if self._per_network[network] >= limits.max_connections_per_network:
            return (f"the network {network} already has {limits.max_connections_per_network} connections open "
                    "to this node, the most one network may have; retry in a moment")
        if self._total >= limits.max_connections:
            if not self._strangers:
                return (f"the node is serving its maximum of {limits.max_connections} connections; "
                        "retry in a moment")
            oldest, _ = self._strangers.popitem(last=False)
            self.stats["connections_evicted"] += 1
            self._release(oldest)
            oldest.scope.cancel()
        return None

    def _release(self, connection: _Connection) -> None:
        """Give back the connection's places in the counts (once: at eviction or at its end)."""
        if connection.released:
            return
        connection.released = True
        self._strangers.pop(connection, None)
        for table, key in ((self._per_address, connection.address), (self._per_network, connection.network)):
            table[key] -= 1
            if not table[key]:
                del table[key]
        self._total -= 1

    async def _refuse(self, stream: trio.SocketStream, message: str) -> None:
        try:
            with trio.move_on_after(self.limits.refusal_timeout):
                try:
                    await stream.send_all(encode_frame(error(TOO_MANY_CONNECTIONS, message)))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            await trio.aclose_forcefully(stream)
        finally:
            self._refusing -= 1

    async def _serve_connection(self, connection: _Connection) -> None:
        try:
            with connection.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read, connection, nursery.cancel_scope)
                    await self._process(connection)
                    nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away; nothing is owed to it
        except* trio.TooSlowError:
            self.stats["write_timeouts"] += 1  # the client does not read its answers
        except* Exception:
            # A fault in serving one connection must not take the node down with it.
            self.stats["connection_faults"] += 1
            log.exception("serving the connection from %s failed", connection.address)
        finally:
            self._release(connection)
            self._release_large(connection)  # a large frame that never got answered
            await trio.aclose_forcefully(connection.stream)

    async def _read(self, connection: _Connection, scope: trio.CancelScope) -> None:
        """Frames in → the queue; ends by closing the queue (end of stream, frame error or a deadline)."""
        limits = connection.limits
        decoder = FrameDecoder(limits.max_frame, small_frame=limits.small_frame, decision_prefix=SIGNER_PREFIX)
        frame_started = (-1, 0.0)  # (frames completed when the current one began, when it began)
        async with connection.send:
            while True:
                if decoder.buffered:
                    # From a frame's first byte to its last: trickling cannot keep a connection forever.
                    deadline = frame_started[1] + limits.transfer_time(limits.frame_timeout, decoder.admitted_frame)
                else:
                    deadline = trio.current_time() + limits.idle_timeout
                with trio.move_on_at(deadline) as timer:
                    try:
                        data = await connection.stream.receive_some(_RECEIVE_SIZE)
                    except trio.BrokenResourceError:
                        scope.cancel()  # the client reset the connection: nobody to answer
                        return
                if timer.cancelled_caught:
                    if connection.pending and not decoder.buffered:
                        continue  # waiting for its answers, which the write deadline bounds: not idle
                    self.stats["frame_timeouts" if decoder.buffered else "idle_timeouts"] += 1
                    return
                if frame_started[0] != decoder.completed or not decoder.buffered:
                    frame_started = (decoder.completed, trio.current_time())
                try:
                    if not data:
                        decoder.end_of_stream()
                        return
                    # Decode no more than the queue takes: pipelined tiny frames cost work only as they are served.
                    depth = limits.pipeline_depth
                    messages = decoder.feed(data, depth)
                    while True:
                        for message in messages:
                            await self._enqueue(connection, _Request(message))
                        prefix = decoder.awaiting
                        if prefix is None:
                            if not decoder.more:
                                break
                            messages = decoder.feed(b"", depth)
                            continue
                        # It may wait for a slot as long as the whole frame could take to arrive.
                        refusal = await self._admit_large(connection, prefix, frame_started[1] + limits.transfer_time(
                            limits.frame_timeout, decoder.current_frame or 0))
                        messages = decoder.decide(refusal, depth)
                        if messages:  # the large frame was already complete: it holds the slot
                            await self._enqueue(connection, _Request(messages[0], large=True))
                            messages = messages[1:]
                        elif connection.holds_large:
                            connection.large_pending = True
                except FrameError as exc:
                    self.stats[f"frames_{exc.code}"] += 1
                    await connection.send.send(_Broken(error(exc.code, exc.message)))
                    return
                if decoder.buffered and frame_started[0] != decoder.completed:
                    frame_started = (decoder.completed, trio.current_time())

    async def _enqueue(self, connection: _Connection, request: _Request) -> None:
        if connection.large_pending and not request.large:
            # The first message after a decision made while its frame was incomplete is that frame.
            connection.large_pending = False
            request = _Request(request.message, large=True)
        connection.pending += 1
        await connection.send.send(request)

    async def _admit_large(self, connection: _Connection, prefix: bytes, deadline: float) -> str | None:
        """Why a frame over small_frame is refused, or None once it holds a slot (until answered)."""
        key = claimed_signer(prefix)
        if key is None or not self.api.has_rights(key):
            self.stats["large_frames_refused"] += 1
            return (f"this node takes frames over {self.limits.small_frame} bytes only from the owners and "
                    "users of its vessels")
        with trio.move_on_at(deadline):
            await connection.large_slot.acquire()
            try:
                await self._large_frames.acquire()
            except BaseException:
                connection.large_slot.release()
                raise
            connection.holds_large = True
            return None
        self.stats["large_frames_busy"] += 1
        return (f"this node is receiving its maximum of {self.limits.max_large_frames} large frames; retry in "
                "a moment")

    def _release_large(self, connection: _Connection) -> None:
        if connection.holds_large:
            connection.holds_large = False
            connection.large_slot.release()
            self._large_frames.release()

    async def _process(self, connection: _Connection) -> None:
        """The queue → responses, in order, until the reader closes the queue."""
        limits = connection.limits
        async with connection.receive:
            async for item in connection.receive:
                if isinstance(item, _Broken):
                    await self._write(connection, encode_frame(item.response, limits.max_frame))
                    return
                response = await self.respond(item.message, connection)
                try:
                    frame = encode_frame(response, limits.max_frame)
                except FrameError as exc:
                    frame = encode_frame(error(
                        RESPONSE_TOO_LARGE, f"the result does not fit in a response frame: {exc.message}"))
                del response
                if item.large:
                    self._release_large(connection)
                await self._write(connection, frame)
                connection.pending -= 1
                if connection.forged:
                    return

    async def _write(self, connection: _Connection, frame: bytes) -> None:
        """Hand one answer to the kernel within the write deadline (TooSlowError drops the connection)."""
        with trio.fail_after(self.limits.transfer_time(self.limits.write_timeout, len(frame))):
            await connection.stream.send_all(frame)

    async def respond(self, message: object, connection: _Connection | None = None) -> dict[str, Any]:
        """One decoded request frame → its response: checked first, dispatched only if it passes.

        A connection that has not made an authorized call is paced first (its address's and network's token
        buckets), before even the signature check, which is the only work a stranger's request gets. A request
        that claims a signer with rights (`request_signer`) is paced by the claimants' own, larger buckets
        instead, so the owner's first call on a fresh connection does not queue behind strangers on its address
        or network; a false claim closes the connection."""
        claims_rights = False
        if connection is not None and not connection.authorized:
            now = trio.current_time()
            key = request_signer(message) if isinstance(message, bytes) else None
            claims_rights = key is not None and self.api.has_rights(key)
            if claims_rights:
                wait = max(self._claimant_address_pace.take(connection.address, now),
                           self._claimant_network_pace.take(connection.network, now))
            else:
                wait = max(self._address_pace.take(connection.address, now),
                           self._network_pace.take(connection.network, now))
            if wait > 0:
                self.stats["requests_paced"] += 1
                await trio.sleep(wait)
        rights = False

        def authorize(caller: PublicKey, call: str, args: list[Any] | dict[str, Any]) -> bool:
            nonlocal rights
            rights = self.api.authorize(caller, call, args)
            return rights

        try:
            if isinstance(message, bytes) and len(message) > _VERIFY_INLINE:
                request = await trio.to_thread.run_sync(open_request, message, self.verifier, self.clock(),
                                                        authorize, limiter=self._verify_threads)
            else:
                # On the event loop: one Ed25519 verify (~75 µs) costs less than a hop to a worker thread.
                request = open_request(message, self.verifier, self.clock(), authorize)
        except RequestRejected as exc:
            self.stats[f"rejected_{exc.code}"] += 1
            if claims_rights and exc.code == BAD_SIGNATURE:
                assert connection is not None  # claims_rights is only set for a connection
                connection.forged = True
                self.stats["forged_claims_closed"] += 1
            return exc.response()
        caller = None if isinstance(request, PublicRequest) else request.caller
        if connection is not None and not connection.authorized and caller is not None and (
                (rights and CALLS[request.call].permission is not Permission.SIGNED)
                or self.api.has_rights(caller.raw)):
            # Signed by an owner or user (of this call's vessel, or of any: a signed public call counts too).
            # Any key may sign an AcquireVessel: that alone earns no rights, the lease it brings does.
            connection.authorized = True
            self._strangers.pop(connection, None)
        origin = None
        if caller is not None and isinstance(message, bytes):
            source = Source(connection.network, connection.address) if connection is not None else None
            origin = Origin(message, source if source is not None and "/" in source.network else None)
        return await self.api.handle(caller, request.call, request.args, origin)


def _source_keys(peer: str) -> tuple[str, str]:
    """(address key, network key) of a peer (`seattle.budgets.source_of`); a peer with no IP address (a Unix
    socket in tests, an unknown name) is its own address and network."""
    try:
        source = source_of(peer)
    except ValueError:
        return peer, peer
    return source.address, source.network


def _peer_address(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getpeername()[0])
    except OSError:
        return "unknown"


async def open_listeners(host: str, port: int) -> list[trio.SocketListener]:
    """TCP listeners on `host`:`port` (port 0: an ephemeral port chosen by the OS)."""
    return await trio.open_tcp_listeners(port, host=host)


def bound_addresses(listeners: list[trio.SocketListener]) -> list[str]:
    """"host:port" of each listener, as GetNodeInfo reports them."""
    out = []
    for listener in listeners:
        host, port = listener.socket.getsockname()[:2]
        out.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return out

