"""What a vessel is charged for memory: the pages it adds, not the interpreter it shares with the zygote.

A vessel process is forked (zygote → supervisor → vessel) from an interpreter that has already imported
everything, so most of its resident pages are the zygote's, shared copy-on-write by every vessel and never
written by this one. Its resident set size (RSS, what Repy charged, and this nanny until issue 17) counts all
of them: about 18 MB for an empty program. What the vessel really adds to the host is the pages only it maps,
its unique set size (USS): the pages it wrote (each one a private copy) and the memory it allocated. USS
is read from /proc/PID/smaps_rollup as Private_Clean + Private_Dirty + SwapPss (a private page swapped out
is still the vessel's). The kernel computes it by walking the page tables and asking, page by page, who else
maps it: a few hundred microseconds for a vessel (bench/bench_small_vessels.py), too much to pay ten times a
second for each of a hundred vessels. So the nanny asks a cheap question first,
`MemoryMeter.upper_bound()`: the vessel's anonymous, shared-memory and swapped pages (RssAnon + RssShmem +
VmSwap of /proc/PID/status, counters the kernel keeps: a page the vessel wrote or allocated is one of these)
plus the private file-backed pages the last full read found beyond them plus the counters' slack
(`GATE_SLACK`). While that bound minus the baseline is within the allotment, the vessel cannot be over it.

CPython writes to every object it touches (reference counts), so even our own start path copies pages: the
prepared vessel process, forked ahead of its request and warmed up (child.startup.warm_up), already holds
about 3 MB of its own before a program exists. That part is the same for every vessel and is the node's per
vessel overhead, like the supervisor's own memory: the supervisor measures it once, just before it hands over
the spec (the baseline), and the vessel is charged for what it adds beyond it. The host stays bounded when the
node counts that overhead per vessel and the zygote once (docs/sandbox-layers.md, "Memory").

`memory_charged(pid, baseline)` is the one function other enforcement (a cgroup layer, say) may call or
replace: it answers in bytes, from outside the process, without trusting anything the process says.
"""

from __future__ import annotations

import os

#: The smaps_rollup fields that make up the unique set size (each a number of kB).
_PRIVATE_FIELDS = (b"Private_Clean:", b"Private_Dirty:", b"SwapPss:")
#: The /proc/PID/status fields (kB) whose sum bounds the unique set size, private file pages aside.
_BOUND_FIELDS = (b"RssAnon:", b"RssShmem:", b"VmSwap:")
_ROLLUP_BYTES = 4096  # smaps_rollup is about 1 KiB of text, status about 1.5 KiB
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_CPUS = os.cpu_count() or 1
#: How far the kernel's memory counters may lag the truth: the kernel keeps them per CPU and folds in a CPU's share only
#: once it reaches a batch (percpu_counter_batch = max(32, 2 × CPUs) pages); at least 1 MiB.
GATE_SLACK = max(1 << 20, _CPUS * max(32, 2 * _CPUS) * _PAGE_SIZE)


class MemoryMeter:
    """Reads one process's unique set size (/proc/PID/smaps_rollup) and its bound (/proc/PID/status).

    Both are opened once. Opening checks that we may read the process (the kernel takes its mm then); later
    reads go through the same descriptors, so they keep working after the vessel confines itself and can
    never reach another process that reuses the pid. A read of an exited process raises ProcessLookupError.
    """

    def __init__(self, pid: int) -> None:
        self._fd = os.open(f"/proc/{pid}/smaps_rollup", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._status = os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            os.close(self._fd)
            raise
        #: What the last full read found beyond the anonymous memory (private file-backed pages, swap).
        self._beyond_anonymous = 0

    def upper_bound(self) -> int:
        """A bound of `unique_bytes` that costs microseconds: anonymous memory, what the last full read found
        beyond it, and the counters' slack. Pages swapped out since the last full read are not in it."""
        return self.anonymous_bytes() + self._beyond_anonymous + GATE_SLACK

    def anonymous_bytes(self) -> int:
        """Anonymous, shared-memory and swapped pages (status: RssAnon + RssShmem + VmSwap), from the kernel's
        counters."""
        try:
            raw = os.pread(self._status, _ROLLUP_BYTES, 0)
        except OSError as error:
            raise ProcessLookupError(f"cannot read the process's memory counters: {error}") from error
        total_kb = 0
        found = 0
        for line in raw.split(b"\n"):
            if line.startswith(_BOUND_FIELDS):
                total_kb += int(line.split()[1])
                found += 1
        if found < len(_BOUND_FIELDS):  # a zombie's status has no memory lines
            raise ProcessLookupError("the process has exited")
        return total_kb * 1024

    def unique_bytes(self) -> int:
        """Bytes of memory only this process maps (resident or swapped)."""
        try:
            raw = os.pread(self._fd, _ROLLUP_BYTES, 0)
        except OSError as error:
            raise ProcessLookupError(f"cannot read the process's memory map: {error}") from error
        if not raw:  # the mm is gone: the process exited
            raise ProcessLookupError("the process has exited")
        unique = unique_bytes_of(raw)
        self._beyond_anonymous = max(0, unique - self.anonymous_bytes())
        return unique

    def close(self) -> None:
        os.close(self._status)
        os.close(self._fd)


def unique_bytes_of(rollup: bytes) -> int:
    """The unique set size in bytes from the text of a smaps_rollup file."""
    total_kb = 0
    for line in rollup.split(b"\n"):
        if line.startswith(_PRIVATE_FIELDS):
            total_kb += int(line.split()[1])
    return total_kb * 1024


def memory_charged(pid: int, baseline: int = 0) -> int:
    """What the vessel process `pid` is charged: its unique set size beyond `baseline` bytes (never < 0).

    `baseline` is the unique set size of the prepared process before it received its program (see the module
    doc); 0 charges the whole unique set size.
    """
    meter = MemoryMeter(pid)
    try:
        return max(0, meter.unique_bytes() - baseline)
    finally:
        meter.close()
