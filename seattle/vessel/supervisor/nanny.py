"""The nanny: enforces a vessel's `cpu`, `memory` and `diskused` allotment from outside the sandbox.

It runs as a thread of the supervisor, the sandboxed child's parent. Enforcement has to come from out
here: a single C-level call such as `sum(range(10**12))` ignores every timer inside the interpreter
(sandbox survey §2), while SIGSTOP stops the whole thread group and SIGKILL cannot be refused.

* CPU: the process's cumulative CPU time goes into a `CpuThrottle` (closed-loop token bucket); when it asks
  for a pause the process is SIGSTOPped for exactly that long, then SIGCONTed. The nanny looks every
  `cpu_tick` (10 ms) while the bucket holds more than that, and faster once it runs low, every `share ×
  STOP_GOAL` but at least every _FASTEST_TICK: what a process overspends between two looks is stopped for
  overspend / share, so at small shares the looks set the pauses' length (measured at cpu 0.02 on a
  busy loop: p99 pause 0.59 s looking every 10 ms, 0.23 s every 1 ms; docs/sandbox-layers.md), and an
  idle or modest vessel still costs one look every 10 ms. Each
  pause is kept as (start relative to the vessel's start, duration), the `stoptimes` of Repy's
  `getresources()`. When the vessel runs in a cgroup of its own (seattle.vessel.oslayer.cgroups), the
  kernel's CPU bandwidth limit throttles it instead: the nanny only samples the group's CPU time for
  `usage()`, every _SHARE_SAMPLE_EVERY, and never stops the process (so `stoptimes` stays empty). A
  process that is no longer in its group (only a vessel that got past both the language layer and Landlock
  could write to the cgroup files) is throttled by the nanny from then on, as on a host without groups.
* Memory: what the vessel is charged, every `memory_tick` (0.1 s, as in Repy V2): its unique set size beyond
  `memory_baseline` (`memcharge`: pages shared with the zygote are not the vessel's); over the allotment →
  SIGKILL. The unique set size is costly to read, so a tick reads it only when its cheap upper bound allows the
  vessel to be over, and otherwise once every `MEMORY_REFRESH` for the report.
* Disk: `disk_usage` of the vessel directory every `disk_tick` (0.5 s, as in Repy V2); over → SIGKILL.

The nanny never reaps the child; its caller (the supervisor) does, after `run` returns. The process is
pinned by a pidfd, so a signal can never reach a recycled pid, and the pidfd turns readable the moment
the process exits, even before it is reaped. The nanny's own cost matters because there is one per
vessel, so a tick only does a handful of syscalls on descriptors opened once, with no psutil objects.

Callers that wait for the child must not ask for stop/continue notifications (WUNTRACED, WCONTINUED):
every pause produces one of each.
"""

from __future__ import annotations

import math
import os
import select
import signal
import threading
import time
from collections import deque
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from seattle.vessel.diskusage import disk_usage
from seattle.vessel.oslayer.cgroups import VesselCgroup
from seattle.vessel.supervisor.cpu_throttle import CpuThrottle
from seattle.vessel.supervisor.memcharge import MemoryMeter

if TYPE_CHECKING:
    from seattle.resources import Resources

#: How many pauses `stoptimes()` remembers (Repy's getresources reports the recent ones).
STOPTIMES_KEPT = 100
#: The memory charge in usage() is refreshed at least this often even while the vessel cannot be over.
MEMORY_REFRESH = 1.0

#: The pause the nanny's fast looks aim for: at share s it looks every s × STOP_GOAL seconds when the bucket
#: runs low, so an overspend of one look's worth costs a pause of about this long.
STOP_GOAL = 0.02
#: The fastest the nanny looks; faster costs more of its own CPU than the pauses it saves.
_FASTEST_TICK = 0.001
_CORES = os.cpu_count() or 1
_CPUCLOCK_SCHED = 2  # the kernel's per-process "sum of runtime of all threads" clock, in nanoseconds
_SHARE_WINDOW = 1.0  # usage()["cpu"] is the share over about this many seconds
_SHARE_SAMPLE_EVERY = 0.1
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class NannyVerdict:
    """Why the nanny killed a vessel. `message` is meant for the vessel log."""

    resource: str  # "memory" or "diskused"
    limit: int
    observed: int
    message: str


class _ProcessGone(Exception):
    """The watched process exited or was reaped between two looks at it."""


class _WatchedProcess:
    """One process seen from outside: CPU time, memory, exit and signals, through descriptors opened once.

    /proc/<pid>/stat stays open and is re-read with pread. CPU time comes from the kernel's process CPU
    clock (nanoseconds, all threads); where that clock is unavailable for another process, from the
    utime+stime of /proc/<pid>/stat, which only has clock-tick (10 ms) resolution. Every failure to read
    or signal the process raises `_ProcessGone`.
    """

    def __init__(self, pid: int, memory: MemoryMeter | None = None) -> None:
        """`memory`: a meter opened earlier (it is closed with this object); by default one is opened."""
        self._pidfd = os.pidfd_open(pid)
        try:
            self._stat_fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            os.close(self._pidfd)
            raise
        try:
            self._memory = memory if memory is not None else MemoryMeter(pid)
        except OSError:
            os.close(self._stat_fd)
            os.close(self._pidfd)
            raise
        self._exit_poll = select.poll()
        self._exit_poll.register(self._pidfd, select.POLLIN)
        # The clock is named by pid number, unlike the pidfd and the open stat file, so a reading only
        # counts if `exited()` is still False after it (see Nanny._watch): then the pid was not recycled.
        self._clock: int | None = (~pid << 3) | _CPUCLOCK_SCHED
        try:
            time.clock_gettime(self._clock)
        except OSError:
            self._clock = None

    def exited(self) -> bool:
        """True once the process has exited (a zombie counts as exited)."""
        return bool(self._exit_poll.poll(0))

    def cpu_seconds(self) -> float:
        try:
            if self._clock is not None:
                return time.clock_gettime(self._clock)
            fields = self._stat_fields()
            return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        except OSError as error:
            raise _ProcessGone from error

    def unique_bytes(self) -> int:
        """The process's unique set size (memcharge.MemoryMeter)."""
        try:
            return self._memory.unique_bytes()
        except ProcessLookupError as error:
            raise _ProcessGone from error

    def memory_bound(self) -> int:
        """The cheap upper bound of `unique_bytes` (memcharge.MemoryMeter.upper_bound)."""
        try:
            return self._memory.upper_bound()
        except ProcessLookupError as error:
            raise _ProcessGone from error

    def signal(self, signum: int) -> None:
        try:
            signal.pidfd_send_signal(self._pidfd, signum)
        except OSError as error:
            raise _ProcessGone from error

    def close(self) -> None:
        self._memory.close()
        os.close(self._stat_fd)
        os.close(self._pidfd)

    def _stat_fields(self) -> list[bytes]:
        """The fields after `(comm)`, so index i is field i + 3 of proc(5); comm may contain anything."""
        raw = os.pread(self._stat_fd, 4096, 0)
        end = raw.rfind(b")")
        if end < 0:
            raise _ProcessGone(f"unreadable /proc stat line: {raw[:80]!r}")
        return raw[end + 2 :].split()


class Nanny:
    """Watches one vessel process and enforces its cpu, memory and diskused allotment.

    `run` is the loop (call it once, in its own thread); `usage` and `stoptimes` may be called from other
    threads at any time, which is how the broker answers the vessel's `getresources()`.
    """

    def __init__(
        self,
        pid: int,
        allotment: Resources,
        vessel_dir: Path,
        *,
        cpu_tick: float = 0.01,
        memory_tick: float = 0.1,
        disk_tick: float = 0.5,
        start_time: float | None = None,
        memory_meter: MemoryMeter | None = None,
        memory_baseline: int = 0,
        cgroup: VesselCgroup | None = None,
    ) -> None:
        """`start_time` is the vessel's start on the `time.monotonic` clock (default: now); stop times
        are reported relative to it, so pass the child's own start to line them up with getruntime().
        `memory_baseline` is the unique set size the process had before it was given its program (the
        supervisor measures it with `memory_meter`, opened while the process was still ours to read, and
        hands the meter over: `run` closes it); the vessel is charged for what it adds beyond it.
        `cgroup`: the vessel's group, whose kernel limit holds the CPU share; the nanny then only measures."""
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise ValueError(f"pid must be a positive int, got {pid!r}")
        for name, tick in (("cpu_tick", cpu_tick), ("memory_tick", memory_tick), ("disk_tick", disk_tick)):
            if not isinstance(tick, int | float) or not math.isfinite(tick) or tick <= 0:
                raise ValueError(f"{name} must be a finite number of seconds > 0, got {tick!r}")
        cpu = allotment.quantities["cpu"]
        if cpu <= 0:
            raise ValueError(f"the cpu allotment must be > 0 for the vessel to run at all, got {cpu!r}")
        self.pid = pid
        self.vessel_dir = Path(vessel_dir)
        if not self.vessel_dir.is_dir():
            raise NotADirectoryError(
                f"vessel directory {str(self.vessel_dir)!r} does not exist or is not a directory"
            )
        self.cpu_tick = float(cpu_tick)
        self.memory_tick = float(memory_tick)
        self.disk_tick = float(disk_tick)
        self.memory_limit = int(allotment.quantities["memory"])
        if type(memory_baseline) is not int or memory_baseline < 0:
            raise ValueError(f"memory_baseline must be an int >= 0, got {memory_baseline!r}")
        self.memory_baseline = memory_baseline
        self._memory_meter = memory_meter
        self.disk_limit = int(allotment.quantities["diskused"])
        self._throttle = CpuThrottle(float(cpu))
        self._fast_tick = min(self.cpu_tick, max(_FASTEST_TICK, float(cpu) * STOP_GOAL))
        self._cgroup = cgroup
        self._start_time = time.monotonic() if start_time is None else start_time
        self._lock = threading.Lock()
        self._ran = False
        self._stoptimes: deque[tuple[float, float]] = deque(maxlen=STOPTIMES_KEPT)
        # (monotonic time, cumulative CPU seconds): the last one is the latest reading, the others at
        # least _SHARE_SAMPLE_EVERY apart; enough of them to span _SHARE_WINDOW and then some.
        self._cpu_samples: deque[tuple[float, float]] = deque(
            maxlen=int(_SHARE_WINDOW / _SHARE_SAMPLE_EVERY) + 3
        )
        self._memory = 0
        self._memory_read_at = -math.inf
        self._disk = 0

    def run(self, stop: threading.Event) -> NannyVerdict | None:
        """Enforce until `stop` is set (→ None) or the process is gone (→ None), or kill it (→ verdict).

        Whatever ends the loop, the process is left running (SIGCONT) unless it was killed, so the caller
        can always kill and reap it. The loop never dies because the process vanished mid-read.
        """
        with self._lock:
            if self._ran:
                raise RuntimeError("Nanny.run was already called; a nanny watches one run of one process")
            self._ran = True
        try:
            process = _WatchedProcess(self.pid, self._memory_meter)
        except (ProcessLookupError, FileNotFoundError):  # already reaped: nothing left to enforce
            if self._memory_meter is not None:
                self._memory_meter.close()
            return None
        try:
            return self._watch(process, stop)
        except _ProcessGone:
            return None
        finally:
            with suppress(_ProcessGone):
                process.signal(signal.SIGCONT)
            process.close()

    def usage(self) -> dict[str, object]:
        """What the broker's "usage" op returns: the latest CPU share, CPU seconds, memory charged, disk and
        stops."""
        now = time.monotonic()
        with self._lock:
            samples = self._cpu_samples
            cpu = samples[-1][1] if samples else 0.0
            # The window starts at the newest sample at least one window old, else at the oldest there is,
            # and ends `now` rather than at the last sample, so a long pause reads as the idle time it is.
            since, cpu_then = next(
                (sample for sample in reversed(samples) if sample[0] <= now - _SHARE_WINDOW),
                samples[0] if samples else (now, cpu),
            )
            return {
                "cpu": (cpu - cpu_then) / (now - since) if now > since else 0.0,
                "cpu_seconds": cpu,
                "memory": self._memory,
                "diskused": self._disk,
                "stoptimes": [[start, duration] for start, duration in self._stoptimes],
            }

    def stoptimes(self) -> list[tuple[float, float]]:
        """The last `STOPTIMES_KEPT` pauses as (seconds since the vessel started, seconds stopped)."""
        with self._lock:
            return list(self._stoptimes)

    def _watch(self, process: _WatchedProcess, stop: threading.Event) -> NannyVerdict | None:
        next_memory = next_disk = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if self._cgroup is not None and not self._cgroup.holds(self.pid):
                self._leave_cgroup()
            cpu = self._cpu_seconds(process)
            if process.exited():
                return None
            self._note_cpu(now, cpu)
            pause = self._throttle.observe(cpu, now) if self._cgroup is None else 0.0
            if pause > 0:
                self._pause(process, pause, stop)
                now = time.monotonic()
            if now >= next_memory:
                verdict = self._check_memory(process, now)
                if verdict is not None:
                    return verdict
                next_memory = now + self.memory_tick
            if now >= next_disk:
                verdict = self._check_disk(process)
                if verdict is not None:
                    return verdict
                next_disk = now + self.disk_tick
            stop.wait(self._next_tick())
        return None

    def _next_tick(self) -> float:
        if self._cgroup is not None:
            return max(self.cpu_tick, _SHARE_SAMPLE_EVERY)
        return min(self.cpu_tick, max(self._fast_tick, self._throttle.safe_wait(_CORES)))

    def _leave_cgroup(self) -> None:
        """The group no longer holds the process: the throttle takes over, counting the process's own CPU time
        (the samples of the group's count are dropped, the two clocks start at different points)."""
        self._cgroup = None
        with self._lock:
            self._cpu_samples.clear()

    def _cpu_seconds(self, process: _WatchedProcess) -> float:
        """The group's CPU time where the group counts it (it covers any process the vessel started), else
        the process's."""
        if self._cgroup is not None:
            try:
                counted = self._cgroup.cpu_seconds()
            except OSError as error:
                raise _ProcessGone from error
            if counted is not None:
                return counted
        return process.cpu_seconds()

    def _note_cpu(self, now: float, cpu: float) -> None:
        """Keep the latest reading, and one every _SHARE_SAMPLE_EVERY for the share over a window."""
        with self._lock:
            if len(self._cpu_samples) > 1 and now - self._cpu_samples[-2][0] < _SHARE_SAMPLE_EVERY:
                self._cpu_samples[-1] = (now, cpu)
            else:
                self._cpu_samples.append((now, cpu))

    def _pause(self, process: _WatchedProcess, seconds: float, stop: threading.Event) -> None:
        """SIGSTOP for `seconds` (cut short if `stop` is set), then SIGCONT; record the actual pause."""
        began = time.monotonic()
        process.signal(signal.SIGSTOP)
        try:
            stop.wait(seconds)
        finally:
            process.signal(signal.SIGCONT)
        ended = time.monotonic()
        with self._lock:
            self._stoptimes.append((began - self._start_time, ended - began))

    def _check_memory(self, process: _WatchedProcess, now: float) -> NannyVerdict | None:
        could_be_over = process.memory_bound() - self.memory_baseline > self.memory_limit
        if not could_be_over and now - self._memory_read_at < MEMORY_REFRESH:
            return None
        self._memory_read_at = now
        charged = max(0, process.unique_bytes() - self.memory_baseline)
        with self._lock:
            self._memory = charged
        if charged <= self.memory_limit:
            return None
        self._kill(process)
        return NannyVerdict(
            "memory",
            self.memory_limit,
            charged,
            f"memory use {charged:,} bytes exceeds the allotment of {self.memory_limit:,} bytes; "
            "the nanny killed the vessel",
        )

    def _check_disk(self, process: _WatchedProcess) -> NannyVerdict | None:
        try:
            used = disk_usage(self.vessel_dir)
        except OSError:
            # Unreadable for the moment (say, the node manager is replacing the directory); the next disk
            # tick tries again, and the loop must not die of it.
            return None
        with self._lock:
            self._disk = used
        if used <= self.disk_limit:
            return None
        self._kill(process)
        return NannyVerdict(
            "diskused",
            self.disk_limit,
            used,
            f"disk use {used:,} bytes exceeds the diskused allotment of {self.disk_limit:,} bytes; "
            "the nanny killed the vessel",
        )

    @staticmethod
    def _kill(process: _WatchedProcess) -> None:
        # SIGKILL ends a stopped process too; the SIGCONT first is belt and braces for one syscall.
        process.signal(signal.SIGCONT)
        process.signal(signal.SIGKILL)
