"""The supervisor's end of the broker: makes a vessel's sockets after checking it may have them.

The sandboxed child cannot make a socket of its own (seccomp denies socket, bind, connect, listen and
accept), so every socket it uses is made here, in the unconfined supervisor. That makes this module the
second, independent layer of network policy: it trusts nothing the child's API checked and checks again,
before any real socket is touched, the argument types and sizes, the addresses, that the local IP is one
the vessel may bind, that the local port is in the vessel's messport/connport set, that a handle is one
this server issued, and that the vessel does not hold more sockets than its allotment.

The fast path (docs/sandbox-layers.md, "The network path"): once a socket passed those checks (a bound UDP
listener, a connected or accepted TCP connection) a copy of its descriptor travels to the vessel with the
reply, and the vessel sends and receives on it directly, so a datagram or a segment costs no broker hop.
The broker keeps its own copy, counted against the allotment, until the vessel closes the handle. It still
does the I/O that needs an address check on every call: a datagram from a port without a listener, a
connect, an accept.

Design: one thread, one event loop. `serve()` multiplexes the broker socket and every real socket with a
selector, and every real socket is non-blocking, so ops that wait (a connect with its timeout, a
"wait until a listener is readable" for V1 waitforconn) are parked in the selector and never hold up other ops. Only
name lookups, which the C library does blocking, run on a small thread pool; they touch no socket table.
Because the socket table is only ever changed on the loop's thread, no lock guards it, and closing a
socket can never race a select() that is watching it.
"""

from __future__ import annotations

import errno
import math
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psutil

from seattle.vessel import broker_protocol as protocol
from seattle.vessel import errors, netio
from seattle.vessel.traffic import Traffic

if TYPE_CHECKING:
    from seattle.resources import Resources

LOOPBACK = "127.0.0.1"
#: Name lookups in flight at once; each holds a pool thread while the C resolver blocks.
MAX_LOOKUPS = 8
#: TCP states in which a local/remote pair is actively in use (Repy: DuplicateTupleError, not cleanup).
_ACTIVE_TCP_STATES = frozenset({psutil.CONN_ESTABLISHED, psutil.CONN_SYN_SENT, psutil.CONN_CLOSE_WAIT})



# --------------------------------------------------------------------------------------------------------
# Policy


@dataclass(frozen=True)
class NetworkPolicy:
    """What one vessel may do on the network, as the supervisor sees it.

    `local_ips[0]` is what getmyip() returns; the vessel may bind any of `local_ips` and always
    127.0.0.1. `insockets`/`outsockets` cap the real sockets this broker holds for the vessel, so a child
    that bypassed its own accounting still cannot exhaust the supervisor's descriptors.
    """

    messport: frozenset[int]
    connport: frozenset[int]
    local_ips: tuple[str, ...]
    insockets: int = 1024
    outsockets: int = 1024

    def __post_init__(self) -> None:
        for name in ("messport", "connport"):
            ports = getattr(self, name)
            if not isinstance(ports, frozenset):
                raise ValueError(f"NetworkPolicy.{name} must be a frozenset of ports, got {ports!r}")
            bad = sorted(repr(p) for p in ports if not protocol.is_valid_port(p))
            if bad:
                raise ValueError(f"NetworkPolicy.{name} holds invalid ports: {', '.join(bad)}")
        if not isinstance(self.local_ips, tuple) or not self.local_ips:
            raise ValueError(f"NetworkPolicy.local_ips must be a non-empty tuple, got {self.local_ips!r}")
        bad_ips = [ip for ip in self.local_ips if not protocol.is_valid_ip(ip)]
        if bad_ips:
            raise ValueError(f"NetworkPolicy.local_ips holds invalid IPv4 addresses: {bad_ips!r}")
        for name in ("insockets", "outsockets"):
            count = getattr(self, name)
            if type(count) is not int or count < 0:
                raise ValueError(f"NetworkPolicy.{name} must be an int ≥ 0, got {count!r}")

    @classmethod
    def for_allotment(cls, resources: Resources, local_ips: Sequence[str] | None = None) -> NetworkPolicy:
        """The policy for a vessel with `resources`; `local_ips` defaults to the host's first IPv4."""
        ips = tuple(local_ips) if local_ips is not None else (default_local_ip(),)
        return cls(
            messport=frozenset(resources.messport),
            connport=frozenset(resources.connport),
            local_ips=ips,
            insockets=resources.count("insockets"),
            outsockets=resources.count("outsockets"),
        )

    def allows_ip(self, ip: str) -> bool:
        return ip == LOOPBACK or ip in self.local_ips


def default_local_ip() -> str:
    """The host's first non-loopback, non-link-local IPv4 address, read from the interfaces.

    The original learned it by connecting toward public servers; reading the interface table sends no
    packet, which matters on hosts that must not talk to the internet. Falls back to 127.0.0.1.
    """
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            ip = address.address
            usable = protocol.is_valid_ip(ip) and not ip.startswith(("127.", "169.254."))
            if address.family == socket.AF_INET and usable:
                return ip
    return LOOPBACK


# --------------------------------------------------------------------------------------------------------
# Socket table


@dataclass
class _Entry:
    """One real socket held for the vessel. kind: "udp" (a UDPServerSocket), "listener", or "tcp"."""

    kind: str
    sock: socket.socket
    local: tuple[str, int]
    remote: tuple[str, int] | None = None


@dataclass
class _Connect:
    """A TCP connect in progress; it becomes an _Entry once the socket is writable."""

    request_id: int
    deadline: float
    local: tuple[str, int]
    remote: tuple[str, int]


@dataclass
class _Watch:
    """Everything parked in the selector for one socket: waiting ops and possibly a pending connect."""

    sock: socket.socket
    readers: list[tuple[int, float]] = field(default_factory=list)   # (request_id, deadline)
    writers: list[tuple[int, float]] = field(default_factory=list)
    connect: _Connect | None = None

    def events(self) -> int:
        mask = selectors.EVENT_READ if self.readers else 0
        if self.writers or self.connect is not None:
            mask |= selectors.EVENT_WRITE
        return mask

    def deadlines(self) -> list[float]:
        times = [d for _, d in self.readers] + [d for _, d in self.writers]
        if self.connect is not None:
            times.append(self.connect.deadline)
        return times


_BROKER = object()
_WAKE = object()
_DEFERRED = object()  # a handler's result when the reply is sent later


@dataclass(frozen=True)
class _Handover:
    """A handler's result that travels with a copy of `sock`'s descriptor (SCM_RIGHTS): the vessel then
    does the socket's I/O itself. The broker keeps its own copy, for the checks that need the socket
    (accept on it, what is bound where) and to close it for good when the vessel closes its handle."""

    result: Any
    sock: socket.socket


class BrokerServer:
    """Serves one vessel's broker socket. Create it, run `serve()` on a thread, `close()` to stop."""

    def __init__(
        self, sock: socket.socket, policy: NetworkPolicy, usage: Callable[[], dict[str, Any]]
    ) -> None:
        if sock.type != socket.SOCK_SEQPACKET:
            raise ValueError(f"the broker socket must be SOCK_SEQPACKET, not {sock.type!r}")
        sock.setblocking(False)
        self._sock = sock
        self._policy = policy
        self._usage = usage
        #: Bytes moved so far; the supervisor reads it for the usage report.
        self.traffic = Traffic()
        self._entries: dict[int, _Entry] = {}
        self._next_handle = 1
        self._watches: dict[int, _Watch] = {}
        self._pending = 0
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._send_lock = threading.Lock()
        self._lookups = threading.BoundedSemaphore(MAX_LOOKUPS)
        self._resolver = ThreadPoolExecutor(MAX_LOOKUPS, thread_name_prefix="seattle-broker-lookup")
        self._state_lock = threading.Lock()
        self._stopping = threading.Event()
        self._serving = False
        self._finished = False
        #: Why serving stopped early, if the child broke the protocol (for the supervisor's log).
        self.violation: str | None = None
        self._handlers: dict[str, Callable[[int, list[Any]], Any]] = {
            protocol.OP_USAGE: self._op_usage,
            protocol.OP_GETHOSTBYNAME: self._op_gethostbyname,
            protocol.OP_GETHOSTBYNAME_EX: self._op_gethostbyname_ex,
            protocol.OP_GETMYIP: self._op_getmyip,
            protocol.OP_UDP_LISTEN: self._op_udp_listen,
            protocol.OP_UDP_SEND: self._op_udp_send,
            protocol.OP_TCP_LISTEN: self._op_tcp_listen,
            protocol.OP_TCP_ACCEPT: self._op_tcp_accept,
            protocol.OP_TCP_CONNECT: self._op_tcp_connect,
            protocol.OP_WAIT: self._op_wait,
            protocol.OP_CLOSE: self._op_close,
        }

    # -- lifecycle ----------------------------------------------------------------------------------------

    def serve(self) -> None:
        """Answer requests until the child's end closes, `close()` is called, or the child breaks the
        protocol (then `violation` says how). Every socket is closed before this returns."""
        with self._state_lock:
            if self._finished:  # close() came first
                return
            if self._serving:
                raise RuntimeError("BrokerServer.serve() is already running")
            self._serving = True
        try:
            self._selector.register(self._sock, selectors.EVENT_READ, _BROKER)
            self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
            while not self._stopping.is_set():
                for key, events in self._selector.select(self._next_timeout()):
                    if key.data is _BROKER:
                        self._read_request()
                    elif key.data is _WAKE:
                        self._drain_wake()
                    elif (watch := self._watches.get(key.fd)) is not None and watch is key.data:
                        self._on_ready(watch, events)
                self._expire(time.monotonic())
        finally:
            with self._state_lock:
                self._finished = True
            self._release()

    def close(self) -> None:
        """Stop serving and close every socket. Safe from any thread, any number of times."""
        self._stopping.set()
        with self._state_lock:
            serving = self._serving
            # Without a running loop, close() releases everything itself, exactly once; a later
            # serve() then returns at once.
            release = not serving and not self._finished
            self._finished = self._finished or not serving
        if serving:
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass  # the loop already closed its wake socket: it is finishing anyway
        elif release:
            self._release()

    def _release(self) -> None:
        """Close every socket and stop the lookup pool; runs once, on the loop's thread or in close()."""
        self._resolver.shutdown(wait=False, cancel_futures=True)
        for watch in self._watches.values():
            if watch.connect is not None:
                watch.sock.close()
        for entry in self._entries.values():
            _close_quietly(entry.sock)
        self._watches.clear()
        self._entries.clear()
        self._selector.close()
        with self._send_lock:
            self._sock.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the loop -----------------------------------------------------------------------------------------

    def _next_timeout(self) -> float | None:
        deadlines = [d for watch in self._watches.values() for d in watch.deadlines()]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(64):
                pass
        except BlockingIOError:
            pass

    def _read_request(self) -> None:
        """Read and answer one request. One per readiness: the selector is level-triggered, so more
        waiting requests wake the loop again at once, and no read ever fails for want of data."""
        try:
            data = self._sock.recv(protocol.MAX_MESSAGE + 1)
        except BlockingIOError:
            return
        except OSError:
            self._stopping.set()
            return
        if not data:  # the child's end closed (SOCK_SEQPACKET: an empty read is end of stream)
            self._stopping.set()
            return
        try:
            request_id, op, args = protocol.decode_request(data)
        except protocol.ProtocolError as exc:
            self.violation = f"the vessel broke the broker protocol: {exc}"
            self._stopping.set()
            return
        self._dispatch(request_id, op, args)

    def _dispatch(self, request_id: int, op: str, args: list[Any]) -> None:
        handler = self._handlers.get(op)
        if handler is None:
            self._reply_err(request_id, errors.RepyArgumentError(f"unknown broker op {op[:40]!r}"))
            return
        try:
            result = handler(request_id, args)
        except errors.RepyException as exc:
            self._reply_err(request_id, exc)
        except Exception as exc:  # a fault of ours; the child treats it as fatal
            self._reply(protocol.encode_err(request_id, "InternalRepyError", f"{op}: {exc!r}"))
        else:
            if isinstance(result, _Handover):
                self._reply_ok(request_id, result.result, result.sock)
            elif result is not _DEFERRED:
                self._reply_ok(request_id, result)

    def _on_ready(self, watch: _Watch, events: int) -> None:
        if events & selectors.EVENT_WRITE and watch.connect is not None:
            self._finish_connect(watch)
            return
        if events & selectors.EVENT_READ:
            for request_id, _ in watch.readers:
                self._reply_ok(request_id, True)
            self._pending -= len(watch.readers)
            watch.readers.clear()
        if events & selectors.EVENT_WRITE:
            for request_id, _ in watch.writers:
                self._reply_ok(request_id, True)
            self._pending -= len(watch.writers)
            watch.writers.clear()
        self._rewatch(watch)

    def _expire(self, now: float) -> None:
        for watch in list(self._watches.values()):
            if watch.connect is not None and watch.connect.deadline <= now:
                pending = watch.connect
                self._pending -= 1
                self._drop_watch(watch)
                watch.sock.close()
                self._reply_err(pending.request_id, errors.TimeoutError(
                    f"openconnection: timed out connecting to {pending.remote[0]}:{pending.remote[1]}"))
                continue
            expired = [w for w in watch.readers + watch.writers if w[1] <= now]
            if not expired:
                continue
            watch.readers[:] = [w for w in watch.readers if w[1] > now]
            watch.writers[:] = [w for w in watch.writers if w[1] > now]
            self._pending -= len(expired)
            for request_id, _ in expired:
                self._reply_ok(request_id, False)
            self._rewatch(watch)

    def _rewatch(self, watch: _Watch) -> None:
        """Bring the selector in line with what `watch` waits for; forget it once it waits for nothing."""
        fd = watch.sock.fileno()
        mask = watch.events()
        registered = self._watches.get(fd) is watch
        if mask and registered:
            self._selector.modify(watch.sock, mask, watch)
        elif mask:
            self._watches[fd] = watch
            self._selector.register(watch.sock, mask, watch)
        elif registered:
            self._drop_watch(watch)

    def _drop_watch(self, watch: _Watch) -> None:
        self._selector.unregister(watch.sock)
        del self._watches[watch.sock.fileno()]

    def _watch_for(self, entry: _Entry) -> _Watch:
        watch = self._watches.get(entry.sock.fileno())
        return watch if watch is not None else _Watch(entry.sock)

    # -- replies ------------------------------------------------------------------------------------------

    def _reply_ok(self, request_id: int, result: Any, sock: socket.socket | None = None) -> None:
        """Reply `result`; with `sock`, a copy of its descriptor travels with the reply (SCM_RIGHTS)."""
        try:
            data = protocol.encode_ok(request_id, result)
        except (TypeError, ValueError) as exc:  # a result msgpack cannot carry, or too big: our fault
            data = protocol.encode_err(request_id, "InternalRepyError", f"the reply cannot be sent: {exc}")
            sock = None
        self._reply(data, sock)

    def _reply_err(self, request_id: int, exc: errors.RepyException) -> None:
        self._reply(protocol.encode_err(request_id, type(exc).__name__, str(exc)))

    def _reply(self, data: bytes, sock: socket.socket | None = None) -> None:
        """Send one reply, with `sock`'s descriptor if given; waits while the child's receive queue is full
        (it is always being drained by the child's reader thread, unless the nanny has the child stopped
        for a moment)."""
        with self._send_lock:
            while not self._finished:
                try:
                    if sock is None:
                        self._sock.send(data)
                    else:
                        socket.send_fds(self._sock, [data], [sock.fileno()])
                    return
                except BlockingIOError:
                    _wait_writable(self._sock, 0.1)
                except OSError:
                    self._stopping.set()
                    return

    # -- argument checks (the second layer) ---------------------------------------------------------------

    def _local_allowed(self, op: str, ip: str, port: int, ports: frozenset[int], resource: str) -> None:
        if not self._policy.allows_ip(ip):
            # As in Repy: an IP this host does not have cannot be bound at all (AddressBindingError);
            # one it has but the vessel was not given is forbidden (ResourceForbiddenError).
            if not _host_has_ip(ip):
                raise errors.AddressBindingError(f"{op}: cannot bind {ip}: the IP is not on this host")
            raise errors.ResourceForbiddenError(f"{op}: this vessel may not use the local IP {ip}")
        if port not in ports:
            raise errors.ResourceForbiddenError(f"{op}: local port {port} is not in this vessel's {resource}")

    def _entry(self, op: str, handle: object, *kinds: str) -> _Entry:
        if type(handle) is not int:
            raise errors.RepyArgumentError(
                f"{op}: a socket handle must be an int, got {type(handle).__name__}")
        entry = self._entries.get(handle)
        if entry is None:
            if 0 < handle < self._next_handle:
                raise errors.SocketClosedLocal(f"{op}: the socket was closed")
            raise errors.RepyArgumentError(f"{op}: there is no socket with handle {handle}")
        if entry.kind not in kinds:
            raise errors.RepyArgumentError(f"{op}: handle {handle} is a {entry.kind} socket, not {kinds[0]}")
        return entry

    def _count(self, *kinds: str) -> int:
        held = sum(1 for entry in self._entries.values() if entry.kind in kinds)
        if "tcp" in kinds:
            held += sum(1 for watch in self._watches.values() if watch.connect is not None)
        return held

    def _check_room(self, op: str, resource: str, limit: int, *kinds: str) -> None:
        if self._count(*kinds) >= limit:
            raise errors.ResourceExhaustedError(f"{op}: all {limit} {resource} of this vessel are in use")

    def _check_pending(self, op: str) -> None:
        if self._pending >= protocol.MAX_PENDING:
            raise errors.ResourceExhaustedError(
                f"{op}: {protocol.MAX_PENDING} operations are already waiting")

    def _add(self, entry: _Entry) -> int:
        handle = self._next_handle
        self._next_handle += 1
        self._entries[handle] = entry
        return handle

    def _find(self, kind: str, local: tuple[str, int], remote: tuple[str, int] | None = None) -> bool:
        if any(e.kind == kind and e.local == local and e.remote == remote for e in self._entries.values()):
            return True
        return kind == "tcp" and any(
            w.connect is not None and w.connect.local == local and w.connect.remote == remote
            for w in self._watches.values()
        )

    # -- ops: information ---------------------------------------------------------------------------------

    def _op_usage(self, request_id: int, args: list[Any]) -> Any:
        _count_args("usage", args, 0)
        return self._usage()

    def _op_getmyip(self, request_id: int, args: list[Any]) -> Any:
        _count_args("getmyip", args, 0)
        return self._policy.local_ips[0]

    def _op_gethostbyname(self, request_id: int, args: list[Any]) -> Any:
        _count_args("gethostbyname", args, 1)
        name = _hostname("gethostbyname", args[0])
        return self._submit_lookup(request_id, "gethostbyname", name, self._resolve)

    def _op_gethostbyname_ex(self, request_id: int, args: list[Any]) -> Any:
        _count_args("gethostbyname_ex", args, 1)
        name = _hostname("gethostbyname_ex", args[0])
        return self._submit_lookup(request_id, "gethostbyname_ex", name, self._resolve_ex)

    def _submit_lookup(
        self, request_id: int, op: str, name: str, resolve: Callable[[int, str], None]
    ) -> Any:
        """Run a blocking lookup on the resolver pool; at most MAX_LOOKUPS at once."""
        if not self._lookups.acquire(blocking=False):
            raise errors.ResourceExhaustedError(f"{op}: {MAX_LOOKUPS} lookups are already running")
        try:
            self._resolver.submit(resolve, request_id, name)
        except RuntimeError:  # the pool is shut down: we are closing
            self._lookups.release()
            raise errors.NetworkAddressError(f"{op}: the broker is closing; {name!r} not looked up") from None
        return _DEFERRED

    def _resolve_ex(self, request_id: int, name: str) -> None:
        """On a pool thread: the full answer, cut to the protocol's bounds (a resolver is not trusted)."""
        try:
            hostname, aliases, addresses = socket.gethostbyname_ex(name)
        except (OSError, UnicodeError):
            failure = errors.NetworkAddressError(f"gethostbyname_ex: the name {name!r} could not be resolved")
            self._reply_err(request_id, failure)
        else:
            self._reply_ok(request_id, [
                hostname[:protocol.MAX_HOSTNAME],
                [alias[:protocol.MAX_HOSTNAME] for alias in aliases[:protocol.MAX_HOST_ALIASES]],
                [ip for ip in addresses[:protocol.MAX_HOST_ADDRESSES] if protocol.is_valid_ip(ip)],
            ])
        finally:
            self._lookups.release()

    def _resolve(self, request_id: int, name: str) -> None:
        """On a pool thread: the C resolver blocks, so it must not run on the loop."""
        try:
            ip = socket.gethostbyname(name)
        except (OSError, UnicodeError):
            failure = errors.NetworkAddressError(f"gethostbyname: the name {name!r} could not be resolved")
            self._reply_err(request_id, failure)
        else:
            self._reply_ok(request_id, ip)
        finally:
            self._lookups.release()

    # -- ops: UDP -----------------------------------------------------------------------------------------

    def _op_udp_listen(self, request_id: int, args: list[Any]) -> Any:
        op = "listenformessage"
        _count_args(op, args, 2)
        localip, localport = _ip(op, "localip", args[0]), _port(op, "localport", args[1])
        self._local_allowed(op, localip, localport, self._policy.messport, "messport")
        if self._find("udp", (localip, localport)):
            raise errors.AlreadyListeningError(
                f"{op}: already listening for messages on {localip}:{localport}")
        self._check_room(op, "insockets", self._policy.insockets, "udp", "listener")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((localip, localport))
        except OSError as exc:
            sock.close()
            raise _bind_error(op, exc, "udp", localip, localport) from None
        sock.setblocking(False)  # the vessel's copy shares this flag: its calls never block either
        return _Handover(self._add(_Entry("udp", sock, (localip, localport))), sock)

    def _op_udp_send(self, request_id: int, args: list[Any]) -> Any:
        op = "sendmessage"
        _count_args(op, args, 5)
        destip, destport = _ip(op, "destip", args[0]), _port(op, "destport", args[1])
        data = _data(op, args[2], protocol.MAX_UDP_PAYLOAD)
        localip, localport = args[3], args[4]
        if localip is None and localport == 0 and type(localport) is int:
            local = None  # Repy V1 sendmess without a local address: the OS picks the source port
        else:
            local = (_ip(op, "localip", localip), _port(op, "localport", localport))
            if local == (destip, destport):
                raise errors.RepyArgumentError(f"{op}: the local and destination address are the same")
            self._local_allowed(op, local[0], local[1], self._policy.messport, "messport")
        listener = next((e for e in self._entries.values() if e.kind == "udp" and e.local == local), None)
        if listener is not None:
            return self.traffic.sent(destip, netio.sendto(op, listener.sock, data, (destip, destport)))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if local is not None:
                try:
                    sock.bind(local)
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        raise errors.DuplicateTupleError(
                            f"{op}: {local[0]}:{local[1]} is already in use by another socket") from None
                    raise _bind_error(op, exc, "udp", *local) from None
            sock.setblocking(False)
            return self.traffic.sent(destip, netio.sendto(op, sock, data, (destip, destport)))
        finally:
            sock.close()

    # -- ops: TCP -----------------------------------------------------------------------------------------

    def _op_tcp_listen(self, request_id: int, args: list[Any]) -> Any:
        op = "listenforconnection"
        _count_args(op, args, 2)
        localip, localport = _ip(op, "localip", args[0]), _port(op, "localport", args[1])
        self._local_allowed(op, localip, localport, self._policy.connport, "connport")
        if self._find("listener", (localip, localport)):
            raise errors.AlreadyListeningError(f"{op}: already listening on {localip}:{localport}")
        self._check_room(op, "insockets", self._policy.insockets, "udp", "listener")
        sock = _tcp_socket()
        try:
            sock.bind((localip, localport))
            # The backlog is the outsockets allotment, as in Repy: more could never be accepted.
            sock.listen(max(1, min(self._policy.outsockets, socket.SOMAXCONN)))
        except OSError as exc:
            sock.close()
            raise _bind_error(op, exc, "tcp", localip, localport) from None
        sock.setblocking(False)
        return self._add(_Entry("listener", sock, (localip, localport)))

    def _op_tcp_accept(self, request_id: int, args: list[Any]) -> Any:
        op = "getconnection"
        _count_args(op, args, 1)
        entry = self._entry(op, args[0], "listener")
        self._check_room(op, "outsockets", self._policy.outsockets, "tcp")
        try:
            sock, (ip, port) = entry.sock.accept()
        except OSError as exc:
            if exc.errno in netio.WOULD_BLOCK or exc.errno == errno.ECONNABORTED:
                raise errors.SocketWouldBlockError(f"{op}: no connection is waiting") from None
            raise errors.NetworkError(f"{op}: {netio.describe(exc)}") from None
        sock.setblocking(False)
        return _Handover([ip, port, self._add(_Entry("tcp", sock, entry.local, (ip, port)))], sock)

    def _op_tcp_connect(self, request_id: int, args: list[Any]) -> Any:
        op = "openconnection"
        _count_args(op, args, 5)
        destip, destport = _ip(op, "destip", args[0]), _port(op, "destport", args[1])
        remote = (destip, destport)
        localip, localport, timeout = args[2], args[3], args[4]
        if type(timeout) not in (int, float) or not math.isfinite(timeout) or timeout <= 0:
            raise errors.RepyArgumentError(f"{op}: the timeout must be a finite number > 0, got {timeout!r}")
        if localip is None and localport == 0 and type(localport) is int:
            local = None  # Repy V1 openconn without a local address: the OS picks the source port
        else:
            local = (_ip(op, "localip", localip), _port(op, "localport", localport))
            if local == remote:
                raise errors.RepyArgumentError(f"{op}: the local and destination address are the same")
            self._local_allowed(op, local[0], local[1], self._policy.connport, "connport")
            if self._find("listener", local):
                raise errors.AlreadyListeningError(f"{op}: this vessel listens on {local[0]}:{local[1]}")
            if self._find("tcp", local, remote):
                raise errors.DuplicateTupleError(
                    f"{op}: a connection {local[0]}:{local[1]} -> {destip}:{destport} already exists")
        self._check_room(op, "outsockets", self._policy.outsockets, "tcp")
        self._check_pending(op)
        sock = _tcp_socket()
        try:
            if local is not None:
                try:
                    sock.bind(local)
                except OSError as exc:
                    raise _bind_error(op, exc, "tcp", *local) from None
            sock.setblocking(False)
            code = sock.connect_ex(remote)
            if code in netio.WOULD_BLOCK:
                watch = _Watch(sock, connect=_Connect(request_id, time.monotonic() + timeout,
                                                            local or sock.getsockname(), remote))
                self._rewatch(watch)
                self._pending += 1
                return _DEFERRED
            if code != 0:
                raise _connect_error(op, code, local, remote)
        except BaseException:
            sock.close()
            raise
        return _Handover(self._add(_Entry("tcp", sock, sock.getsockname(), remote)), sock)

    def _finish_connect(self, watch: _Watch) -> None:
        pending = watch.connect
        assert pending is not None
        self._pending -= 1
        self._drop_watch(watch)
        code = watch.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code in netio.WOULD_BLOCK:  # a spurious wake-up: keep waiting
            self._pending += 1
            self._rewatch(watch)
            return
        if code != 0:
            watch.sock.close()
            self._reply_err(pending.request_id, _connect_error("openconnection", code, pending.local,
                                                               pending.remote))
            return
        entry = _Entry("tcp", watch.sock, watch.sock.getsockname(), pending.remote)
        self._reply_ok(pending.request_id, self._add(entry), watch.sock)

    # -- ops: waiting and closing -------------------------------------------------------------------------

    def _op_wait(self, request_id: int, args: list[Any]) -> Any:
        op = "wait"
        _count_args(op, args, 3)
        entry = self._entry(op, args[0], "listener")
        mode, timeout = args[1], args[2]
        if mode not in ("r", "w") or type(mode) is not str:
            raise errors.RepyArgumentError(f"{op}: the mode must be 'r' or 'w', got {mode!r}")
        if type(timeout) not in (int, float) or not 0 <= timeout <= protocol.MAX_WAIT_SECONDS:
            raise errors.RepyArgumentError(
                f"{op}: the timeout must be 0..{protocol.MAX_WAIT_SECONDS} seconds, got {timeout!r}")
        if _ready(entry.sock, mode):
            return True
        if timeout == 0:
            return False
        self._check_pending(op)
        watch = self._watch_for(entry)
        waiter = (request_id, time.monotonic() + timeout)
        (watch.readers if mode == "r" else watch.writers).append(waiter)
        self._pending += 1
        self._rewatch(watch)
        return _DEFERRED

    def _op_close(self, request_id: int, args: list[Any]) -> Any:
        op = "close"
        _count_args(op, args, 1)
        handle = args[0]
        try:
            entry = self._entry(op, handle, "udp", "listener", "tcp")
        except errors.SocketClosedLocal:
            return False
        watch = self._watches.get(entry.sock.fileno())
        if watch is not None:
            self._drop_watch(watch)
            waiting = watch.readers + watch.writers
            self._pending -= len(waiting)
            for waiter_id, _ in waiting:
                self._reply_err(waiter_id, errors.SocketClosedLocal("the socket was closed while waiting"))
        del self._entries[handle]
        _close_quietly(entry.sock)
        return True


# --------------------------------------------------------------------------------------------------------
# Helpers without state


def _count_args(op: str, args: list[Any], count: int) -> None:
    if len(args) != count:
        raise errors.RepyArgumentError(f"{op}: expected {count} arguments, got {len(args)}")


def _ip(op: str, name: str, value: object) -> str:
    if type(value) is not str:
        raise errors.RepyArgumentError(f"{op}: {name} must be a str, got {type(value).__name__}")
    if not protocol.is_valid_ip(value):
        raise errors.RepyArgumentError(f"{op}: {name} {value[:40]!r} is not a valid IPv4 address")
    return value


def _port(op: str, name: str, value: object) -> int:
    if not protocol.is_valid_port(value):
        raise errors.RepyArgumentError(f"{op}: {name} must be an int in 1..65535, got {value!r}")
    return value  # type: ignore[return-value]  # is_valid_port checked the type


def _data(op: str, value: object, limit: int) -> bytes:
    if type(value) is not bytes:
        raise errors.RepyArgumentError(f"{op}: the data must be bytes, got {type(value).__name__}")
    if len(value) > limit:
        raise errors.RepyArgumentError(f"{op}: {len(value)} bytes is more than the {limit}-byte limit")
    return value


def _tcp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As in Repy: a port in TIME_WAIT may be reused, and one local port may connect to many peers.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected, or already reset
    sock.close()


def _wait_writable(sock: socket.socket, timeout: float) -> None:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_WRITE)
        selector.select(timeout)


def _ready(sock: socket.socket, mode: str) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ if mode == "r" else selectors.EVENT_WRITE)
        return bool(selector.select(0))


def _hostname(op: str, name: object) -> str:
    if type(name) is not str:
        raise errors.RepyArgumentError(f"{op}: the name must be a str, got {type(name).__name__}")
    if not 0 < len(name) <= protocol.MAX_HOSTNAME or "\x00" in name:
        raise errors.RepyArgumentError(f"{op}: a name is 1..{protocol.MAX_HOSTNAME} characters without NUL")
    return name


def _host_has_ip(ip: str) -> bool:
    """Whether an interface of this host holds `ip`: binding a throwaway socket to it says so exactly
    (127.x beyond 127.0.0.1, secondary addresses, interfaces that come and go)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind((ip, 0))
    except OSError as exc:
        return exc.errno != errno.EADDRNOTAVAIL
    finally:
        probe.close()
    return True


def _bind_error(op: str, exc: OSError, kind: str, localip: str, localport: int) -> errors.RepyException:
    where = f"{localip}:{localport}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return errors.AddressBindingError(f"{op}: cannot bind {where}: the IP is not on this host")
    if exc.errno == errno.EADDRINUSE:
        return _in_use(op, kind, (localip, localport), None)
    return errors.NetworkError(f"{op}: cannot bind {where}: {netio.describe(exc)}")


def _connect_error(
    op: str, code: int, local: tuple[str, int] | None, remote: tuple[str, int]
) -> errors.RepyException:
    dest = f"{remote[0]}:{remote[1]}"
    if code == errno.ECONNREFUSED:
        return errors.ConnectionRefusedError(f"{op}: {dest} refused the connection")
    if code == errno.ETIMEDOUT:
        return errors.TimeoutError(f"{op}: timed out connecting to {dest}")
    if code in netio.NO_NETWORK:
        return errors.InternetConnectivityError(f"{op}: {dest} cannot be reached from this host")
    if code == errno.EISCONN:
        return errors.DuplicateTupleError(f"{op}: the connection to {dest} already exists")
    if code == errno.EADDRNOTAVAIL and local is not None:
        # With a fixed local port the kernel says EADDRNOTAVAIL when the 4-tuple is taken.
        return _in_use(op, "tcp", local, remote)
    if code == errno.EADDRNOTAVAIL:
        return errors.AddressBindingError(f"{op}: no local address is free to reach {dest}")
    return errors.NetworkError(f"{op}: connecting to {dest} failed: {errno.errorcode.get(code, code)}")


def _in_use(
    op: str, kind: str, local: tuple[str, int], remote: tuple[str, int] | None
) -> errors.RepyException:
    """Why the OS says an address is in use (it is held outside this vessel's own table): a listener
    there, a live connection, or a connection the OS is still cleaning up (TIME_WAIT). Repy names each."""
    where = f"{local[0]}:{local[1]}"
    listening = live = False
    for conn in psutil.net_connections(kind + "4"):
        if not conn.laddr or conn.laddr.port != local[1] or conn.laddr.ip not in (local[0], "0.0.0.0"):
            continue
        if (kind == "udp" and not conn.raddr) or conn.status == psutil.CONN_LISTEN:
            listening = True
        elif conn.status in _ACTIVE_TCP_STATES and (remote is None or tuple(conn.raddr) == remote):
            live = True
    if live:
        return errors.DuplicateTupleError(f"{op}: a live connection already uses {where}")
    if listening:
        return errors.AlreadyListeningError(f"{op}: a socket already listens on {where}")
    return errors.CleanupInProgressError(f"{op}: the OS is still releasing {where}; try again later")
