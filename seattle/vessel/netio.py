"""What an OS error on a vessel's socket means in Repy's terms, for whichever side did the I/O.

The broker does some of a vessel's socket I/O (a datagram from a port without a listener) and the vessel
does the rest itself on the descriptors the broker handed it (docs/sandbox-layers.md, "The network path");
both report errors with the same exception for the same errno.
"""

from __future__ import annotations

import errno
import socket

from seattle.vessel import errors

WOULD_BLOCK = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EINPROGRESS, errno.EALREADY})
NO_NETWORK = frozenset({errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTUNREACH})
CLOSED_REMOTE = frozenset({
    errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED, errno.ENOTCONN, errno.ESHUTDOWN, errno.ENETRESET,
    errno.ETIMEDOUT,
})


def describe(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "error")
    return f"{name}: {exc.strerror or exc}"


def sendto(op: str, sock: socket.socket, data: bytes, dest: tuple[str, int]) -> int:
    """One datagram to `dest` on a non-blocking socket; OS errors become Repy exceptions."""
    try:
        return sock.sendto(data, dest)
    except OSError as exc:
        if exc.errno in WOULD_BLOCK:
            raise errors.SocketWouldBlockError(f"{op}: the send buffer is full") from None
        if exc.errno in NO_NETWORK:
            raise errors.InternetConnectivityError(f"{op}: {dest[0]} cannot be reached") from None
        raise errors.NetworkError(f"{op}: {describe(exc)}") from None


def stream_error(op: str, exc: OSError) -> errors.RepyException:
    """The Repy exception for an OS error on a TCP connection."""
    if exc.errno in WOULD_BLOCK:
        return errors.SocketWouldBlockError(f"{op}: the operation would block")
    if exc.errno in CLOSED_REMOTE:
        return errors.SocketClosedRemote(f"{op}: the connection was closed by the remote side")
    return errors.NetworkError(f"{op}: {describe(exc)}")
