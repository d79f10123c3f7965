"""The vessel's network API: the Repy V2 calls and the V1 names, on sockets the broker made.

The vessel process cannot make a socket (seccomp), so every call that needs a new one checks its arguments
and charges the allotment (the first layer) and then asks the supervisor's broker
(`seattle.vessel.supervisor.broker_server`), which checks again, makes the socket and hands a copy of it to
the vessel with its reply. From then on the vessel sends and receives on that socket itself: a datagram or
a TCP segment costs no broker hop, only the kernel and the accounting below (docs/sandbox-layers.md, "The
network path"). A datagram from a port without a listener still goes through the broker, which makes a
socket for the one send. Sockets handed to programs are `api_object`s whose only state is in closures, so a
program cannot reach the real socket or forge the broker handle behind one.

Charges follow Repy (seattle-original.md §3, §4.3): 64 bytes of overhead per packet; traffic to 127.x
is charged to loopsend/looprecv, all other traffic to netsend/netrecv. A call waits for its buckets
before it runs and records what it moved afterwards. Listening sockets hold an `insockets` item,
connections (opened or accepted) and the socket of a one-off sendmessage hold an `outsockets` item.

V2 objects never block: an operation that cannot finish now raises SocketWouldBlockError.

V1 names (sendmess, recvmess, stopcomm, openconn, waitforconn, gethostbyname_ex) are built on the same
pieces. recvmess and
waitforconn start a dispatcher thread (an ordinary program thread, so the vessel lives while it listens)
that waits until the listener is readable, in bounded slices (poll() on its own UDP socket; a TCP listener
stays in the broker, which waits for it), and runs the program's function for each message or connection.
A function counts as an `events` item while it runs; when none is free (or, for a connection, no
outsocket), the dispatcher holds off and retries shortly, leaving the message or connection queued in the
kernel rather than dropping it or ending the vessel. Messages are handled one at a time in the dispatcher;
each connection gets a thread of its own, since a connection handler usually runs for as long as the
connection. V1 socket-like objects block: recv waits for data and send for all of it to be sent.
"""

from __future__ import annotations

import errno
import select
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from seattle.vessel import broker_protocol as protocol
from seattle.vessel import errors, netio
from seattle.vessel.child.api import core
from seattle.vessel.child.api.checks import (
    api_call,
    api_object,
    api_object_class,
    internal_fault,
    require_callable,
    require_float,
    require_int,
    require_str,
    require_str_or_bytes,
)

if TYPE_CHECKING:
    from seattle.vessel.child.context import VesselContext

#: Repy's per-call charges for name lookups and getmyip (bytes; nothing is measured).
GETHOSTBYNAME_SEND, GETHOSTBYNAME_RECV = 1024, 4096
GETMYIP_SEND, GETMYIP_RECV = 256, 128
#: Per-packet overhead charged on top of the payload.
PACKET = 64
#: V1 calls wait in the broker in slices of this many seconds (stopcomm and close end a wait at once).
WAIT_SLICE = 5.0
#: How long a V1 dispatcher holds off when no event or outsocket is free before it tries again.
EXHAUSTED_RETRY = 0.05
#: Largest datagram a UDPServerSocket returns: whatever IPv4 carries (a peer outside the vessel is not held to
#: MAX_UDP_PAYLOAD, which bounds what a vessel sends).
MAX_DATAGRAM = 65535
#: The default connect timeout of V1 openconn.
V1_CONNECT_TIMEOUT = 5.0

_COMMHANDLE = "commhandle"


def exports(ctx: VesselContext) -> dict[str, object]:
    """The V2 network calls and the V1 network names, bound to `ctx`."""
    net = _Network(ctx)
    v1 = _V1(net)

    # -- Repy V2 ----------------------------------------------------------------------------------------

    def gethostbyname(name: object) -> str:
        host = require_str(name, "name", max_length=protocol.MAX_HOSTNAME, allow_empty=False)
        return net.gethostbyname(host)

    def getmyip() -> str:
        return net.getmyip()

    def sendmessage(
        destip: object, destport: object, message: object, localip: object, localport: object
    ) -> int:
        dest = _address(destip, destport, "dest")
        data = require_str_or_bytes(message, "message", max_length=protocol.MAX_UDP_PAYLOAD)
        local = _address(localip, localport, "local")
        if local == dest:
            raise errors.RepyArgumentError("the local address cannot be the destination address")
        ctx.accountant.check_port("messport", local[1])
        return net.send_datagram(dest, data, local)

    def listenformessage(localip: object, localport: object) -> object:
        return _udp_server_object(net.listen_udp(_address(localip, localport, "local")))

    def openconnection(
        destip: object, destport: object, localip: object, localport: object, timeout: object
    ) -> object:
        dest = _address(destip, destport, "dest")
        local = _address(localip, localport, "local")
        seconds = require_float(timeout, "timeout")
        if seconds <= 0:
            raise errors.RepyArgumentError(f"timeout must be more than 0, got {seconds}")
        if local == dest:
            raise errors.RepyArgumentError("the local address cannot be the destination address")
        ctx.accountant.check_port("connport", local[1])
        return _socket_object(net.connect(dest, local, seconds))

    def listenforconnection(localip: object, localport: object) -> object:
        return _tcp_server_object(net.listen_tcp(_address(localip, localport, "local")))

    # -- Repy V1 ----------------------------------------------------------------------------------------

    def sendmess(
        desthost: object, destport: object, message: object, localip: object = None, localport: object = None
    ) -> int:
        dest = v1.destination(desthost, destport)
        data = require_str_or_bytes(message, "message", max_length=protocol.MAX_UDP_PAYLOAD)
        return net.send_datagram(dest, data, v1.local(localip, localport, "messport"))

    def recvmess(localip: object, localport: object, function: object) -> object:
        local = _address(localip, localport, "local")
        return v1.register("udp", local, require_callable(function, "function"))

    def stopcomm(commhandle: object) -> bool:
        return v1.stopcomm(commhandle)

    def gethostbyname_ex(name: object) -> tuple[str, list[str], list[str]]:
        host = require_str(name, "name", max_length=protocol.MAX_HOSTNAME, allow_empty=False)
        return net.gethostbyname_ex(host)

    def openconn(
        desthost: object, destport: object, localip: object = None, localport: object = None,
        timeout: object = V1_CONNECT_TIMEOUT,
    ) -> object:
        dest = v1.destination(desthost, destport)
        local = v1.local(localip, localport, "connport")
        seconds = require_float(timeout, "timeout")
        if seconds <= 0:
            raise errors.RepyArgumentError(f"timeout must be more than 0, got {seconds}")
        return v1.v1_socket(net.connect(dest, local, seconds))[0]

    def waitforconn(localip: object, localport: object, function: object) -> object:
        local = _address(localip, localport, "local")
        return v1.register("tcp", local, require_callable(function, "function"))

    functions: list[Callable[..., Any]] = [
        gethostbyname, getmyip, sendmessage, listenformessage, openconnection, listenforconnection,
        sendmess, recvmess, stopcomm, openconn, waitforconn, gethostbyname_ex,
    ]
    return {fn.__name__: api_call(ctx, fn.__name__)(fn) for fn in functions}


def _send_resource(ip: str) -> str:
    """netsend or loopsend for an address already checked (`_check_ip`): the test is protocol.is_loopback's
    without its second validation, which every datagram would pay for."""
    return "loopsend" if ip.startswith("127.") else "netsend"


def _recv_resource(ip: str) -> str:
    return "looprecv" if ip.startswith("127.") else "netrecv"


#: Addresses that passed `_check_ip` lately. Every datagram names two, and the check is the costliest part of a
#: send's own work; exact `str` keys only (require_str), so a lookup runs no program code. Emptied when full.
_VALID_IPS: set[str] = set()
_VALID_IPS_LIMIT = 256


def _check_ip(value: object, name: str) -> str:
    ip = require_str(value, name)
    if ip in _VALID_IPS:
        return ip
    if not protocol.is_valid_ip(ip):
        raise errors.RepyArgumentError(f"{name} {ip[:40]!r} is not a valid IPv4 address")
    if len(_VALID_IPS) >= _VALID_IPS_LIMIT:
        _VALID_IPS.clear()
    _VALID_IPS.add(ip)
    return ip


def _address(ip: object, port: object, prefix: str) -> tuple[str, int]:
    """A checked (ip, port) pair from the arguments `<prefix>ip` and `<prefix>port`."""
    # The common case costs one test; require_int says what is wrong with any other.
    checked = port if type(port) is int and 1 <= port <= 65535 else require_int(
        port, prefix + "port", minimum=1, maximum=65535)
    return _check_ip(ip, prefix + "ip"), checked


# --------------------------------------------------------------------------------------------------------
# The pieces both API generations use


class _Network:
    """What every network call shares: the context and which UDP addresses have a listener."""

    def __init__(self, ctx: VesselContext) -> None:
        self.ctx = ctx
        self.lock = threading.Lock()
        #: This vessel's UDP listeners by local address; a send from one of them goes out on its socket.
        self.udp_listeners: dict[tuple[str, int], _UdpListener] = {}

    def call(self, op: str, *args: object) -> Any:
        return self.ctx.broker.call(op, *args)

    def gethostbyname(self, host: str) -> str:
        self.ctx.accountant.charge("netsend", GETHOSTBYNAME_SEND)
        self.ctx.accountant.charge("netrecv", GETHOSTBYNAME_RECV)
        address: str = self.call(protocol.OP_GETHOSTBYNAME, host)
        return address

    def gethostbyname_ex(self, host: str) -> tuple[str, list[str], list[str]]:
        """V1's full lookup, (hostname, aliases, addresses) as socket.gethostbyname_ex; charged like
        gethostbyname, and bounded by the broker (MAX_HOST_ALIASES, MAX_HOST_ADDRESSES)."""
        self.ctx.accountant.charge("netsend", GETHOSTBYNAME_SEND)
        self.ctx.accountant.charge("netrecv", GETHOSTBYNAME_RECV)
        hostname, aliases, addresses = self.call(protocol.OP_GETHOSTBYNAME_EX, host)
        return str(hostname), [str(alias) for alias in aliases], [str(ip) for ip in addresses]

    def getmyip(self) -> str:
        self.ctx.accountant.charge("netsend", GETMYIP_SEND)
        self.ctx.accountant.charge("netrecv", GETMYIP_RECV)
        address: str = self.call(protocol.OP_GETMYIP)
        return address

    def send_datagram(self, dest: tuple[str, int], data: bytes, local: tuple[str, int] | None) -> int:
        """Send one datagram (checked already); `local` None lets the OS pick the source (V1 only)."""
        resource = _send_resource(dest[0])
        self.ctx.accountant.wait_for(resource)
        # From a listener's address the datagram leaves on the listener's own socket, with no broker hop.
        listener = self.udp_listeners.get(local) if local is not None else None
        sent = listener.sendto(data, dest) if listener is not None else None
        if sent is not None:
            self.ctx.accountant.record(resource, PACKET + sent, payload=sent)
            return sent
        # No listener there (or it closed just now): the broker sends from a socket of its own, and counts it.
        sent = self._send_through_broker(dest, data, local)
        self.ctx.accountant.record(resource, PACKET + sent)
        return sent

    def _send_through_broker(self, dest: tuple[str, int], data: bytes, local: tuple[str, int] | None) -> int:
        """The broker binds a socket to `local` for this one datagram; it holds an outsockets item meanwhile."""
        item = object()
        self.ctx.accountant.acquire("outsockets", item)
        try:
            localip, localport = local if local is not None else (None, 0)
            sent: int = self.call(protocol.OP_UDP_SEND, dest[0], dest[1], data, localip, localport)
        finally:
            self.ctx.accountant.release("outsockets", item)
        return sent

    def listen_udp(self, local: tuple[str, int]) -> _UdpListener:
        self.ctx.accountant.check_port("messport", local[1])
        item = object()
        self.ctx.accountant.acquire("insockets", item)
        try:
            handle, sock = self.ctx.broker.call_with_socket(protocol.OP_UDP_LISTEN, *local)
        except BaseException:
            self.ctx.accountant.release("insockets", item)
            raise
        listener = _UdpListener(self, handle, sock, local, item)
        with self.lock:
            self.udp_listeners[local] = listener
        return listener

    def connect(self, dest: tuple[str, int], local: tuple[str, int] | None, timeout: float) -> _Stream:
        """Open a TCP connection (checked already); `local` None lets the OS pick the source (V1 only)."""
        send, recv = _send_resource(dest[0]), _recv_resource(dest[0])
        self.ctx.accountant.wait_for(send)
        self.ctx.accountant.wait_for(recv)
        item = object()
        self.ctx.accountant.acquire("outsockets", item)
        localip, localport = local if local is not None else (None, 0)
        try:
            handle, sock = self.ctx.broker.call_with_socket(
                protocol.OP_TCP_CONNECT, dest[0], dest[1], localip, localport, timeout)
        except BaseException:
            self.ctx.accountant.release("outsockets", item)
            raise
        self.ctx.accountant.record(send, 2 * PACKET)
        self.ctx.accountant.record(recv, PACKET)
        return _Stream(self, handle, sock, dest[0], item)

    def listen_tcp(self, local: tuple[str, int]) -> _TcpListener:
        self.ctx.accountant.check_port("connport", local[1])
        item = object()
        self.ctx.accountant.acquire("insockets", item)
        try:
            handle = self.call(protocol.OP_TCP_LISTEN, *local)
        except BaseException:
            self.ctx.accountant.release("insockets", item)
            raise
        return _TcpListener(self, handle, local, item)


class _Socket:
    """A broker handle with Repy's close rules: the first close() returns True, later ones False, and
    any use after close raises SocketClosedLocal."""

    def __init__(self, net: _Network, handle: int, item: object, resource: str) -> None:
        self.net = net
        self.handle = handle
        self.item = item          # the accountant item (insockets or outsockets) this socket holds
        self.resource = resource
        self.closed = False
        self.lock = threading.Lock()

    def ensure_open(self) -> None:
        if self.closed:
            raise errors.SocketClosedLocal("the socket is closed")

    def close(self) -> bool:
        with self.lock:
            if self.closed:
                return False
            self.closed = True
        try:
            # The broker shuts the socket down and closes its copy: a thread of ours waiting in poll() or
            # in the broker wakes, and then finds the socket closed.
            self.net.call(protocol.OP_CLOSE, self.handle)
        finally:
            self.net.ctx.accountant.release(self.resource, self.item)
            self.forget()
        return True

    def forget(self) -> None:
        """Drop what the vessel holds for the socket once it is closed (subclasses)."""


class _Held:
    """The vessel's copy of a socket, closed when the last reference to this holder goes.

    A call takes the holder into a local variable and works on `sock` through it, so a thread inside a call
    keeps the descriptor open until the call returns, however another thread closes the socket meanwhile:
    the descriptor's number is never reused under a call. (CPython frees an object the moment its last
    reference goes; closing drops the _Direct's reference, the last call in flight drops the final one.)
    This costs a call nothing, where a use count under a lock cost two lock round trips per call.
    """

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def __del__(self) -> None:
        self.sock.close()


class _Direct(_Socket):
    """A socket the vessel holds a copy of and does its own I/O on (non-blocking: the broker set the flag,
    which the copies share)."""

    def __init__(self, net: _Network, handle: int, sock: socket.socket, item: object, resource: str) -> None:
        super().__init__(net, handle, item, resource)
        self.held: _Held | None = _Held(sock)

    def holder(self) -> _Held:
        """The holder of the socket, for one call: keep it in a local variable for the call's length."""
        held = self.held
        if held is None:
            raise errors.SocketClosedLocal("the socket is closed")
        return held

    def forget(self) -> None:
        self.held = None  # closed now, or when the last call in flight returns

    def wait(self, mode: str) -> bool:
        """Wait up to WAIT_SLICE seconds until the socket is readable ("r") or writable ("w"); raises
        SocketClosedLocal once the socket is closed, even while waiting (closing shuts it down, which
        ends the wait)."""
        held = self.holder()
        poller = select.poll()
        poller.register(held.sock, select.POLLIN if mode == "r" else select.POLLOUT)
        ready = bool(poller.poll(WAIT_SLICE * 1000))
        self.ensure_open()
        return ready


class _Stream(_Direct):
    """One TCP connection; backs both the V2 socket object and the V1 socket-like object."""

    def __init__(self, net: _Network, handle: int, sock: socket.socket, remote_ip: str, item: object) -> None:
        super().__init__(net, handle, sock, item, "outsockets")
        self.remote_ip = remote_ip
        self.send_resource = _send_resource(remote_ip)
        self.recv_resource = _recv_resource(remote_ip)

    def recv(self, size: int) -> bytes:
        self.ensure_open()
        accountant = self.net.ctx.accountant
        accountant.wait_for(self.recv_resource)
        accountant.wait_for(self.send_resource)
        held = self.holder()
        try:
            data = held.sock.recv(min(size, protocol.MAX_TCP_CHUNK))
        except OSError as exc:
            raise netio.stream_error("recv", exc) from None
        if not data:
            raise errors.SocketClosedRemote("recv: the connection was closed by the remote side")
        accountant.record(self.recv_resource, PACKET + len(data), payload=len(data))
        accountant.record(self.send_resource, PACKET)
        return data

    def send(self, data: bytes) -> int:
        """Send what the socket takes now, at most MAX_TCP_CHUNK bytes; Repy sends may be partial."""
        self.ensure_open()
        accountant = self.net.ctx.accountant
        accountant.wait_for(self.send_resource)
        accountant.wait_for(self.recv_resource)
        held = self.holder()
        try:
            # A readable socket with nothing to read means the peer closed: say so rather than let the
            # bytes vanish into a half-closed connection (Repy V2 does the same peek).
            try:
                if held.sock.recv(1, socket.MSG_PEEK) == b"":
                    raise errors.SocketClosedRemote("send: the connection was closed by the remote side")
            except BlockingIOError:
                pass
            sent = held.sock.send(data[:protocol.MAX_TCP_CHUNK], socket.MSG_NOSIGNAL)
        except OSError as exc:
            raise netio.stream_error("send", exc) from None
        accountant.record(self.send_resource, PACKET + sent, payload=sent)
        accountant.record(self.recv_resource, PACKET)
        return sent

    def close(self) -> bool:
        if self.closed:
            return False
        accountant = self.net.ctx.accountant
        accountant.wait_for(self.recv_resource)
        accountant.wait_for(self.send_resource)
        if not super().close():
            return False
        accountant.record(self.recv_resource, PACKET)
        accountant.record(self.send_resource, 2 * PACKET)
        return True


class _UdpListener(_Direct):
    """A UDPServerSocket: receives datagrams sent to its local address, and sends from it."""

    def __init__(
        self, net: _Network, handle: int, sock: socket.socket, local: tuple[str, int], item: object
    ) -> None:
        super().__init__(net, handle, sock, item, "insockets")
        self.local = local
        self.recv_resource = _recv_resource(local[0])

    def getmessage(self) -> tuple[str, int, bytes]:
        self.ensure_open()
        accountant = self.net.ctx.accountant
        accountant.wait_for(self.recv_resource)
        held = self.holder()
        try:
            data, (ip, port) = held.sock.recvfrom(MAX_DATAGRAM)
        except OSError as exc:
            if exc.errno in netio.WOULD_BLOCK or exc.errno == errno.ECONNREFUSED:
                # ECONNREFUSED is an ICMP answer to an earlier send; reading it consumed it.
                raise errors.SocketWouldBlockError("getmessage: no message is waiting") from None
            raise errors.NetworkError(f"getmessage: {netio.describe(exc)}") from None
        accountant.record(self.recv_resource, PACKET + len(data), payload=len(data))
        return ip, port, data

    def sendto(self, data: bytes, dest: tuple[str, int]) -> int | None:
        """Send one datagram from this listener's address (the caller charged it); None if it is closed."""
        held = self.held
        if held is None:
            return None
        return netio.sendto("sendmessage", held.sock, data, dest)

    def forget(self) -> None:
        with self.net.lock:
            if self.net.udp_listeners.get(self.local) is self:
                del self.net.udp_listeners[self.local]
        super().forget()


class _TcpListener(_Socket):
    """A TCPServerSocket: accepts connections to its local address. It stays in the broker, which accepts
    (checking the outsockets allotment) and hands over each connection."""

    def __init__(self, net: _Network, handle: int, local: tuple[str, int], item: object) -> None:
        super().__init__(net, handle, item, "insockets")
        self.send_resource = _send_resource(local[0])
        self.recv_resource = _recv_resource(local[0])

    def wait(self, mode: str) -> bool:
        """Wait in the broker up to WAIT_SLICE seconds until a connection is waiting; raises
        SocketClosedLocal once the listener is closed, even while waiting."""
        self.ensure_open()
        return bool(self.net.call(protocol.OP_WAIT, self.handle, mode, WAIT_SLICE))

    def getconnection(self) -> tuple[str, int, _Stream]:
        self.ensure_open()
        accountant = self.net.ctx.accountant
        accountant.wait_for(self.recv_resource)
        accountant.wait_for(self.send_resource)
        item = object()
        accountant.acquire("outsockets", item)
        try:
            (ip, port, handle), sock = self.net.ctx.broker.call_with_socket(protocol.OP_TCP_ACCEPT, self.handle)
        except BaseException:
            accountant.release("outsockets", item)
            raise
        accountant.record(self.recv_resource, 2 * PACKET)
        accountant.record(self.send_resource, PACKET)
        return ip, port, _Stream(self.net, handle, sock, ip, item)


# --------------------------------------------------------------------------------------------------------
# The V2 objects programs get


def _socket_object(stream: _Stream) -> object:
    ctx = stream.net.ctx

    def recv(bytes: object) -> bytes:  # Repy's parameter name, so recv(bytes=n) works
        return stream.recv(require_int(bytes, "bytes", minimum=1))

    def send(message: object) -> int:
        return stream.send(require_str_or_bytes(message, "message"))

    def close() -> bool:
        return stream.close()

    return api_object("socket", {
        "recv": api_call(ctx, "socket.recv")(recv),
        "send": api_call(ctx, "socket.send")(send),
        "close": api_call(ctx, "socket.close")(close),
    })


def _udp_server_object(listener: _UdpListener) -> object:
    ctx = listener.net.ctx

    def getmessage() -> tuple[str, int, bytes]:
        return listener.getmessage()

    def close() -> bool:
        return listener.close()

    return api_object("UDPServerSocket", {
        "getmessage": api_call(ctx, "UDPServerSocket.getmessage")(getmessage),
        "close": api_call(ctx, "UDPServerSocket.close")(close),
    })


def _tcp_server_object(listener: _TcpListener) -> object:
    ctx = listener.net.ctx

    def getconnection() -> tuple[str, int, object]:
        ip, port, stream = listener.getconnection()
        return ip, port, _socket_object(stream)

    def close() -> bool:
        return listener.close()

    return api_object("TCPServerSocket", {
        "getconnection": api_call(ctx, "TCPServerSocket.getconnection")(getconnection),
        "close": api_call(ctx, "TCPServerSocket.close")(close),
    })


# --------------------------------------------------------------------------------------------------------
# Repy V1


class _V1:
    """State of the V1 names. Every commhandle (from recvmess, waitforconn, or a V1 socket) maps to a
    stop function in `comms`; handles are `api_object`s, so looking one up runs no program code."""

    def __init__(self, net: _Network) -> None:
        self.net = net
        self.ctx = net.ctx
        self.lock = threading.Lock()
        self.comms: dict[object, Callable[[], bool]] = {}
        #: Live recvmess/waitforconn registrations by (kind, ip, port); registering again replaces one.
        self.services: dict[tuple[str, str, int], _Service] = {}
        self.handle_class = api_object_class(_COMMHANDLE, ())

    def new_handle(self, stop: Callable[[], bool]) -> object:
        handle = api_object(_COMMHANDLE, {})
        with self.lock:
            self.comms[handle] = stop
        return handle

    def forget(self, handle: object) -> None:
        with self.lock:
            self.comms.pop(handle, None)

    def stopcomm(self, commhandle: object) -> bool:
        if type(commhandle) is not self.handle_class:
            raise errors.RepyArgumentError("commhandle must be a handle from recvmess or waitforconn")
        with self.lock:
            stop = self.comms.pop(commhandle, None)
        if stop is None:  # stopped before
            return False
        stop()
        return True

    def destination(self, desthost: object, destport: object) -> tuple[str, int]:
        """V1 accepts a host name as well as an IP; a name is looked up (and charged) first."""
        host = require_str(desthost, "desthost", max_length=protocol.MAX_HOSTNAME, allow_empty=False)
        port = require_int(destport, "destport", minimum=1, maximum=65535)
        return (host if protocol.is_valid_ip(host) else self.net.gethostbyname(host)), port

    def local(self, localip: object, localport: object, resource: str) -> tuple[str, int] | None:
        """V1's optional local address: both given, or neither (None); port 0 also means "any"."""
        if localip is None and localport is None:
            return None
        if localip is None or localport is None:
            raise errors.RepyArgumentError("localip and localport must be given together, or neither")
        ip = _check_ip(localip, "localip")
        port = require_int(localport, "localport", maximum=65535)
        if port == 0:
            return None
        self.ctx.accountant.check_port(resource, port)
        return ip, port

    def v1_socket(self, stream: _Stream) -> tuple[object, object]:
        """The blocking socket-like object for `stream`, and its commhandle (stopcomm closes it)."""
        handle = self.new_handle(stream.close)

        def recv(bytes: object) -> bytes:  # V1's parameter name
            size = require_int(bytes, "bytes", minimum=1)
            while True:
                try:
                    return stream.recv(size)
                except errors.SocketWouldBlockError:
                    stream.wait("r")

        def send(message: object) -> int:
            data = require_str_or_bytes(message, "message")
            done = 0
            while done < len(data):
                try:
                    done += stream.send(data[done:])
                except errors.SocketWouldBlockError:
                    stream.wait("w")
            return done

        def close() -> bool:
            self.forget(handle)
            return stream.close()

        sock = api_object("socket", {
            "recv": api_call(self.ctx, "socket.recv")(recv),
            "send": api_call(self.ctx, "socket.send")(send),
            "close": api_call(self.ctx, "socket.close")(close),
        })
        return sock, handle

    def register(self, kind: str, local: tuple[str, int], function: Callable[..., Any]) -> object:
        """recvmess ("udp") or waitforconn ("tcp") on `local`; returns the commhandle."""
        key = (kind, *local)
        with self.lock:
            service = self.services.get(key)
        if service is not None:  # V1: registering the same address again swaps the function
            return service.replace(function)
        if kind == "udp":
            service = _MessageService(self, key, self.net.listen_udp(local), function)
        else:
            service = _ConnectionService(self, key, self.net.listen_tcp(local), function)
        with self.lock:
            self.services[key] = service
        core.start_thread(self.ctx, service.dispatch)
        return service.handle


class _Service(ABC):
    """A recvmess or waitforconn registration: a dispatcher thread over one listener."""

    def __init__(
        self, v1: _V1, key: tuple[str, str, int], listener: _UdpListener | _TcpListener,
        function: Callable[..., Any],
    ) -> None:
        self.v1 = v1
        self.ctx = v1.ctx
        self.key = key
        self.listener = listener
        self.function = function
        self.handle = v1.new_handle(self.stop)

    def replace(self, function: Callable[..., Any]) -> object:
        """Swap in a new function under a new handle; the old handle stops nothing any more."""
        self.v1.forget(self.handle)
        self.function = function
        self.handle = self.v1.new_handle(self.stop)
        return self.handle

    def stop(self) -> bool:
        with self.v1.lock:
            if self.v1.services.get(self.key) is self:
                del self.v1.services[self.key]
        return self.listener.close()

    def dispatch(self) -> None:
        """The dispatcher thread: until stopcomm closes the listener, serve whatever arrives."""
        try:
            while self.wait_readable():
                self.serve_one()
        except errors.InternalRepyError as exc:
            internal_fault(self.ctx, "the V1 network dispatcher", exc)
        except errors.RepyException as exc:  # e.g. a zero allotment for the traffic: the program's
            core.report_uncaught(self.ctx, exc)

    def wait_readable(self) -> bool:
        """True once the listener may have work; False once it is closed."""
        try:
            while not self.listener.wait("r"):
                pass
        except errors.SocketClosedLocal:
            return False
        return True

    @abstractmethod
    def serve_one(self) -> None:
        """Take one message or connection, if there is one, and run the program's function for it."""

    def take_event(self) -> object | None:
        """An `events` item for one run of the function; None if the listener closed meanwhile."""
        item = object()
        while not self.listener.closed:
            try:
                self.ctx.accountant.acquire("events", item)
                return item
            except errors.ResourceExhaustedError:
                time.sleep(EXHAUSTED_RETRY)
        return None


class _MessageService(_Service):
    """recvmess: runs function(srcip, srcport, message, commhandle) for each datagram, in turn."""

    listener: _UdpListener

    def serve_one(self) -> None:
        item = self.take_event()
        if item is None:
            return
        try:
            try:
                ip, port, data = self.listener.getmessage()
            except (errors.SocketWouldBlockError, errors.SocketClosedLocal):
                return
            core.run_user_function(self.ctx, self.function, (ip, port, data, self.handle))
        finally:
            self.ctx.accountant.release("events", item)


class _ConnectionService(_Service):
    """waitforconn: runs function(remoteip, remoteport, socket, thiscommhandle, listencommhandle) in a
    thread of its own for each connection."""

    listener: _TcpListener

    def serve_one(self) -> None:
        item = self.take_event()
        if item is None:
            return
        try:
            ip, port, stream = self.listener.getconnection()
        except (errors.SocketWouldBlockError, errors.SocketClosedLocal):
            self.ctx.accountant.release("events", item)
            return
        except errors.ResourceExhaustedError:  # no outsocket free: leave the connection queued
            self.ctx.accountant.release("events", item)
            time.sleep(EXHAUSTED_RETRY)
            return
        sock, conn_handle = self.v1.v1_socket(stream)
        function, listen_handle = self.function, self.handle

        def handler() -> None:
            try:
                function(ip, port, sock, conn_handle, listen_handle)
            except BaseException:
                # V1: a handler that fails has its connection closed.
                self.v1.forget(conn_handle)
                stream.close()
                raise

        def body() -> None:
            try:
                core.run_user_function(self.ctx, handler, ())
            finally:
                self.ctx.accountant.release("events", item)

        core.start_thread(self.ctx, body)
