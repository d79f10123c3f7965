"""The Repy exception hierarchy, as vessel programs see it.

These classes are the only exception types an API call may raise into user code. They carry a message
string and nothing else: no wrapped host exception, no chained context, so an `except` clause in a vessel
can never walk from one of them back to an object of the host. `InternalRepyError` is the one exception
that is not exported to programs: it marks a bug of ours and ends the vessel.
"""

from __future__ import annotations


class RepyException(Exception):
    """Base of every exception the vessel API raises."""


class RepyArgumentError(RepyException):
    """An API call got an argument of the wrong type or value."""


class TimeoutError(RepyException):
    """A call with a timeout ran out of time."""


class CodeUnsafeError(RepyException):
    """The safety checker refused a program."""


class ContextUnsafeError(RepyException):
    """A context handed to a virtual namespace holds something unsafe."""


class LockDoubleReleaseError(RepyException):
    """A lock was released while it was not held."""


class ResourceUsageError(RepyException):
    """Base of the resource errors."""


class ResourceExhaustedError(ResourceUsageError):
    """A counted resource (threads, files, sockets) is at its allotment."""


class ResourceForbiddenError(ResourceUsageError):
    """The allotment never permits this (a port or address outside the vessel's sets)."""


class FileError(RepyException):
    """Base of the file errors."""


class FileNotFoundError(FileError):
    """The named file does not exist."""


class FileInUseError(FileError):
    """The file is already open."""


class SeekPastEndOfFileError(FileError):
    """An offset lies beyond the end of the file."""


class FileClosedError(FileError):
    """The file object was closed."""


class NetworkError(RepyException):
    """Base of the network errors."""


class NetworkAddressError(NetworkError):
    """A name or address could not be resolved or is not valid."""


class AlreadyListeningError(NetworkError):
    """Another socket of this vessel already listens on that address and port."""


class DuplicateTupleError(NetworkError):
    """A socket with the same local and remote address and port already exists."""


class CleanupInProgressError(NetworkError):
    """The local address and port are still being released by the OS (TIME_WAIT)."""


class InternetConnectivityError(NetworkError):
    """The host has no route to the network."""


class AddressBindingError(NetworkError):
    """The local address cannot be bound."""


class ConnectionRefusedError(NetworkError):
    """The remote side refused the connection."""


class LocalIPChanged(NetworkError):
    """The local IP address changed under an open socket."""


class SocketClosedLocal(NetworkError):
    """This side closed the socket."""


class SocketClosedRemote(NetworkError):
    """The remote side closed the socket."""


class SocketWouldBlockError(NetworkError):
    """The operation would block; try again later."""


class TCPServerSocketInvalidError(NetworkError):
    """The listening socket is no longer valid."""


class InternalRepyError(Exception):
    """A fault inside the vessel runtime itself. Never exported to user code; it ends the vessel."""


#: Every exception class a vessel program may name, by its Repy name.
EXPORTED: dict[str, type[RepyException]] = {
    cls.__name__: cls
    for cls in (
        RepyException, RepyArgumentError, TimeoutError, CodeUnsafeError, ContextUnsafeError,
        LockDoubleReleaseError, ResourceUsageError, ResourceExhaustedError, ResourceForbiddenError,
        FileError, FileNotFoundError, FileInUseError, SeekPastEndOfFileError, FileClosedError,
        NetworkError, NetworkAddressError, AlreadyListeningError, DuplicateTupleError,
        CleanupInProgressError, InternetConnectivityError, AddressBindingError, ConnectionRefusedError,
        LocalIPChanged, SocketClosedLocal, SocketClosedRemote, SocketWouldBlockError,
        TCPServerSocketInvalidError,
    )
}


def by_name(name: str) -> type[RepyException]:
    """The exported class called `name`; the broker sends errors across by name."""
    try:
        return EXPORTED[name]
    except KeyError:
        raise InternalRepyError(f"unknown vessel exception {name!r}") from None
