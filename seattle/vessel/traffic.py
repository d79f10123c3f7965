"""Byte counters for a vessel's network traffic, readable by the supervisor while the vessel writes them.

Payload bytes are split as the vessel's API charges them: loopsend/looprecv for a 127.x peer, netsend/netrecv
for any other (`broker_protocol.is_loopback`). Counted are UDP payloads and TCP stream data, not headers.

Two writers count: the broker, for what it sends on the vessel's behalf (a datagram from a port without a
listener), and the vessel itself, for what it sends and receives directly on the sockets the broker handed
it (the fast path, docs/sandbox-layers.md "The network path"). The vessel's counters live in a page of
memory shared with its supervisor (`Traffic.shared()`, mapped before the fork), so the usage report reads
them without a message or a system call. They are the vessel's own account: a program that escaped the
language layer could write anything there, which is why nothing is enforced from them; the supervisor only
reports them. The rates are enforced inside the vessel (child/accounting.py).

Each counter is one aligned 8-byte slot; a reader on another process sees each one whole. Adds take a lock,
since several threads of one process may count at once; the vessel's accountant, which charges every byte
the vessel sends or receives under its own lock, counts them there instead (`add_unlocked`, one lock per
datagram rather than two).
"""

from __future__ import annotations

import mmap
import threading

NAMES = ("netsend", "netrecv", "loopsend", "looprecv")
SIZE = 8 * len(NAMES)
_INDEX = {name: index for index, name in enumerate(NAMES)}


class Traffic:
    """Four byte counters over `buffer` (private memory unless given a shared mapping)."""

    __slots__ = ("_buffer", "_counts", "_lock")

    def __init__(self, buffer: mmap.mmap | bytearray | None = None) -> None:
        self._buffer = buffer if buffer is not None else bytearray(SIZE)
        if len(self._buffer) < SIZE:
            raise ValueError(f"a traffic buffer needs {SIZE} bytes, got {len(self._buffer)}")
        #: The counters as native 8-byte ints (a view of the buffer, so a shared mapping stays shared).
        self._counts = memoryview(self._buffer).cast("q")[:len(NAMES)]
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> Traffic:
        """Counters in an anonymous shared mapping: a process forked after this sees the same memory."""
        return cls(mmap.mmap(-1, SIZE, flags=mmap.MAP_SHARED))

    def sent(self, ip: str, size: int) -> int:
        """Count `size` bytes sent to `ip` (an address already checked); returns `size`."""
        index = 2 if ip.startswith("127.") else 0
        with self._lock:
            self._counts[index] += size
        return size

    def add_unlocked(self, name: str, size: int) -> None:
        """Count `size` bytes under counter `name` (one of NAMES) WITHOUT this object's lock: only for a caller
        that serializes every writer of these counters under a lock of its own (the vessel's accountant, which
        counts a datagram's bytes under the lock it takes to charge them anyway)."""
        self._counts[_INDEX[name]] += size

    def received(self, ip: str, size: int) -> None:
        index = 3 if ip.startswith("127.") else 1
        with self._lock:
            self._counts[index] += size

    def snapshot(self) -> dict[str, int]:
        return dict(zip(NAMES, self._counts.tolist(), strict=True))
