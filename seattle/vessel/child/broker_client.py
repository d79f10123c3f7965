"""The vessel's end of the broker: turns an API call into a request and waits for the reply.

Many user threads call at once, so each request carries an id and waits on its own slot; one reader
thread (internal, not a user "event") receives every reply and hands it to the slot with that id.
Replies that name a Repy exception are raised here as that exception, with no host context attached.
A reply to udp_listen, tcp_connect or tcp_accept carries the socket itself (SCM_RIGHTS); `call_with_socket`
returns it, and the network API keeps it where programs cannot reach it (child/api/network.py).

If the supervisor goes away the vessel cannot do any more network I/O, learn its resource use, or be
stopped cleanly, so every pending and later call raises InternalRepyError, which ends the vessel.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from typing import Any

from seattle.vessel import broker_protocol as protocol
from seattle.vessel import errors


class _Slot:
    """Where the reader thread leaves one reply for the thread that asked.

    `done` is a plain lock taken at creation: the asker blocks acquiring it and the reader releases it.
    A one-shot lock costs a fraction of a threading.Event, and this is on every call's path.
    """

    __slots__ = ("done", "fd", "ok", "payload")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.ok = False
        self.payload: Any = None
        #: The descriptor that came with the reply; None if none came (or the open-file limit dropped it).
        self.fd: int | None = None

    def fill(self, ok: bool, payload: Any, fd: int | None = None) -> None:
        self.ok, self.payload, self.fd = ok, payload, fd
        self.done.release()


class BrokerClient:
    """A thread-safe RPC client over a connected SOCK_SEQPACKET socket."""

    def __init__(self, sock: socket.socket) -> None:
        if sock.type != socket.SOCK_SEQPACKET:
            raise ValueError(f"the broker socket must be SOCK_SEQPACKET, not {sock.type!r}")
        sock.setblocking(True)
        self._sock = sock
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._pending: dict[int, _Slot] = {}
        #: Why the broker is unusable, once it is; every call then raises InternalRepyError with it.
        self._broken: str | None = None
        self._reader = threading.Thread(target=self._read_replies, name="seattle-broker-reader", daemon=True)
        self._reader.start()

    def call(self, op: str, *args: object) -> Any:
        """Send `op(*args)` to the broker and return its result, or raise the Repy exception it names."""
        slot = self._ask(op, args)
        if slot.fd is not None:  # a socket nobody asked for: do not leak the descriptor
            os.close(slot.fd)
        return slot.payload

    def call_with_socket(self, op: str, *args: object) -> tuple[Any, socket.socket]:
        """`call` for an op whose reply carries a socket (protocol.SOCKET_OPS): (result, the socket)."""
        slot = self._ask(op, args)
        if slot.fd is None:
            # The kernel drops a descriptor past RLIMIT_NOFILE (MSG_CTRUNC); the startup sizes the limit
            # for every socket of the allotment, so this is a fault of ours. The broker holds the socket
            # under a handle the vessel can no longer use: the vessel ends (InternalRepyError).
            raise errors.InternalRepyError(f"{op}: the broker's reply came without its socket")
        return slot.payload, socket.socket(fileno=slot.fd)

    def _ask(self, op: str, args: tuple[object, ...]) -> _Slot:
        """Send one request and wait for its reply's slot; raises the exception an error reply names."""
        request_id = next(self._ids)
        try:
            data = protocol.encode_request(request_id, op, args)
        except protocol.ProtocolError as exc:
            raise errors.RepyArgumentError(f"{op}: {exc}") from None
        except (TypeError, ValueError) as exc:  # an argument msgpack cannot carry: a bug of the API
            raise errors.InternalRepyError(f"{op}: arguments cannot be sent: {exc}") from None
        slot = _Slot()
        with self._lock:
            if self._broken is not None:
                raise errors.InternalRepyError(f"the network broker is gone: {self._broken}")
            self._pending[request_id] = slot
        try:
            # A separate lock for sending: a sender blocked on a full socket must never stop the
            # reader from taking `_lock`, or the two ends could wait on each other forever.
            with self._send_lock:
                self._sock.send(data)
        except OSError as exc:
            self._break(f"sending failed: {exc}")
        slot.done.acquire()
        if slot.ok:
            return slot
        if slot.fd is not None:
            os.close(slot.fd)
        name, text = slot.payload
        error = errors.EXPORTED.get(name)
        if error is None:  # "InternalRepyError", or a name no vessel may see: either way, fatal
            prefix = "" if name == "InternalRepyError" else f"unknown vessel exception {name!r}: "
            raise errors.InternalRepyError(prefix + text)
        raise error(text)

    def close(self) -> None:
        """Close the socket; the reader thread then ends and any waiting call raises InternalRepyError."""
        with self._lock:
            if self._broken is None:
                self._broken = "the client was closed"
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if threading.current_thread() is not self._reader:
            self._reader.join()
        self._sock.close()

    def _read_replies(self) -> None:
        try:
            while True:
                data, fds, _flags, _address = socket.recv_fds(self._sock, protocol.MAX_MESSAGE + 1, 1)
                fd = fds[0] if fds else None
                if not data:
                    self._break("the supervisor closed the broker socket")
                    return
                try:
                    request_id, ok, payload = protocol.decode_reply(data)
                    with self._lock:
                        slot = self._pending.pop(request_id, None)
                    if slot is None:
                        raise protocol.ProtocolError(f"a reply to unknown request {request_id}")
                except protocol.ProtocolError:
                    if fd is not None:
                        os.close(fd)
                    raise
                slot.fill(ok, payload, fd)
        except protocol.ProtocolError as exc:
            self._break(f"bad reply: {exc}")
        except OSError as exc:
            self._break(f"receiving failed: {exc}")

    def _break(self, reason: str) -> None:
        """Mark the broker unusable and fail every waiting call with InternalRepyError."""
        with self._lock:
            if self._broken is None:
                self._broken = reason
            pending, self._pending = self._pending, {}
        for slot in pending.values():
            slot.fill(False, ("InternalRepyError", f"the network broker is gone: {reason}"))
