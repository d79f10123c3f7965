"""The node manager's TCP server: framing, limits, request checks and dispatch to `NodeAPI`, for many clients.

Unlike the original (one worker thread for the whole node), every connection is served by its own pair of
tasks, so a slow or flooding client only ever waits for itself:

* a **reader** feeds received bytes to a `FrameDecoder` and puts each complete request into a bounded
  queue (`pipeline_depth`); when the queue is full it stops reading, and TCP flow control pushes back on the
  client, so a flood costs the node a few buffered requests per connection, not memory;
* a **processor** takes requests in order, checks signed ones with `RequestVerifier` in a worker thread
  (before anything in them is looked at), dispatches, and writes the responses in request order, which is
  what makes pipelining work.

Limits: connections per source address and in total (an extra connection gets one error frame, then is
closed), an idle timeout (no bytes from the client and no request in progress), and the frame size limit
(checked from the header; `frame_too_large` then close). A frame error cannot be resynchronised, so the
connection is answered (after the responses it is owed) and closed.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from seattle.nodemgr.api import NodeAPI
from seattle.nodemgr.frames import DEFAULT_MAX_FRAME, FrameDecoder, FrameError, encode_frame
from seattle.nodemgr.signing import RequestRejected, RequestVerifier, VerifiedRequest, error, open_request

log = logging.getLogger(__name__)

TOO_MANY_CONNECTIONS = "too_many_connections"
RESPONSE_TOO_LARGE = "response_too_large"
_RECEIVE_SIZE = 64 * 1024


@dataclass(frozen=True)
class ServerLimits:
    """How much one client, and all of them together, may hold of the node."""

    max_connections: int = 200
    max_connections_per_address: int = 8
    #: Seconds without a byte from the client, while no request of it is in progress, before it is dropped.
    idle_timeout: float = 30.0
    max_frame: int = DEFAULT_MAX_FRAME
    #: Requests read ahead of the one being processed, per connection.
    pipeline_depth: int = 16
    #: How long a refused connection gets to receive its error frame.
    refusal_timeout: float = 2.0

    def __post_init__(self) -> None:
        for name in ("max_connections", "max_connections_per_address", "max_frame", "pipeline_depth"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"ServerLimits.{name} must be a positive integer, got {value!r}")
        for name in ("idle_timeout", "refusal_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0 or math.isnan(value):
                raise ValueError(f"ServerLimits.{name} must be a positive number of seconds, got {value!r}")


@dataclass(frozen=True)
class _Request:
    message: object


@dataclass(frozen=True)
class _Broken:
    """The stream failed (a frame error): answer with `response` after what is owed, then close."""

    response: dict[str, Any]


class _Connection:
    """The state shared by one connection's reader and processor."""

    def __init__(self, stream: trio.SocketStream, limits: ServerLimits) -> None:
        self.stream = stream
        self.limits = limits
        self.pending = 0  # requests read but not yet answered
        self.send, self.receive = trio.open_memory_channel[_Request | _Broken](limits.pipeline_depth)


class NodeServer:
    """Accepts connections on `listeners` and serves them with `api`; see the module docstring."""

    def __init__(self, api: NodeAPI, verifier: RequestVerifier, limits: ServerLimits | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.verifier = verifier
        self.limits = limits or ServerLimits()
        self.clock = clock
        self._per_address: Counter[str] = Counter()
        self._total = 0

    @property
    def connections(self) -> int:
        return self._total

    async def serve(self, listeners: list[trio.SocketListener],
                    *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Accept on every listener until cancelled."""
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(self._accept_loop, listener, nursery)
            task_status.started()

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        async with listener:
            while True:
                stream = await listener.accept()
                address = _peer_address(stream)
                refusal = self._refusal(address)
                if refusal is not None:
                    nursery.start_soon(self._refuse, stream, refusal)
                    continue
                self._per_address[address] += 1
                self._total += 1
                nursery.start_soon(self._serve_connection, stream, address)

    def _refusal(self, address: str) -> str | None:
        limits = self.limits
        if self._total >= limits.max_connections:
            return (f"the node is serving its maximum of {limits.max_connections} connections; "
                    "retry in a moment")
        if self._per_address[address] >= limits.max_connections_per_address:
            return (f"{address} already has {limits.max_connections_per_address} connections open to this "
                    "node, the most one address may have; reuse one (requests can be pipelined)")
        return None

    async def _refuse(self, stream: trio.SocketStream, message: str) -> None:
        with trio.move_on_after(self.limits.refusal_timeout):
            try:
                await stream.send_all(encode_frame(error(TOO_MANY_CONNECTIONS, message)))
            except trio.BrokenResourceError:
                pass
        await trio.aclose_forcefully(stream)

    async def _serve_connection(self, stream: trio.SocketStream, address: str) -> None:
        connection = _Connection(stream, self.limits)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read, connection, nursery.cancel_scope)
                await self._process(connection)
                nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away; nothing is owed to it
        except* Exception:
            # A fault in serving one connection must not take the node down with it.
            log.exception("serving the connection from %s failed", address)
        finally:
            self._per_address[address] -= 1
            if not self._per_address[address]:
                del self._per_address[address]
            self._total -= 1
            await trio.aclose_forcefully(stream)

    async def _read(self, connection: _Connection, scope: trio.CancelScope) -> None:
        """Frames in → the queue; ends by closing the queue (end of stream, frame error or idle)."""
        decoder = FrameDecoder(connection.limits.max_frame)
        async with connection.send:
            while True:
                with trio.move_on_after(connection.limits.idle_timeout) as idle:
                    try:
                        data = await connection.stream.receive_some(_RECEIVE_SIZE)
                    except trio.BrokenResourceError:
                        scope.cancel()  # the client reset the connection: nobody to answer
                        return
                if idle.cancelled_caught:
                    if connection.pending:
                        continue
                    return
                try:
                    if not data:
                        decoder.end_of_stream()
                        return
                    messages = decoder.feed(data)
                except FrameError as exc:
                    await connection.send.send(_Broken(error(exc.code, exc.message)))
                    return
                for message in messages:
                    connection.pending += 1
                    await connection.send.send(_Request(message))

    async def _process(self, connection: _Connection) -> None:
        """The queue → responses, in order, until the reader closes the queue."""
        async with connection.receive:
            async for item in connection.receive:
                if isinstance(item, _Broken):
                    await connection.stream.send_all(encode_frame(item.response, connection.limits.max_frame))
                    return
                response = await self.respond(item.message)
                try:
                    frame = encode_frame(response, connection.limits.max_frame)
                except FrameError as exc:
                    frame = encode_frame(error(
                        RESPONSE_TOO_LARGE, f"the result does not fit in a response frame: {exc.message}"))
                await connection.stream.send_all(frame)
                connection.pending -= 1

    async def respond(self, message: object) -> dict[str, Any]:
        """One decoded request frame → its response: checked first, dispatched only if it passes."""
        try:
            # On the event loop: one Ed25519 verify (~75 µs) costs less than a hop to a worker thread.
            request = open_request(message, self.verifier, self.clock())
        except RequestRejected as exc:
            return exc.response()
        caller = request.caller if isinstance(request, VerifiedRequest) else None
        return await self.api.handle(caller, request.call, request.args)


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

