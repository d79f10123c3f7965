"""The CPU share controller of the nanny: a closed-loop token bucket, free of clocks and signals.

A vessel's `cpu` allotment is a share of one core. The nanny enforces it from outside the sandboxed
process by stopping the whole process (SIGSTOP) and letting it go again (SIGCONT), because code inside
the interpreter cannot be trusted to yield: a single C-level call such as `sum(range(10**12))` ignores
every in-process timer.

Why a token bucket, and why closed loop: the sandbox survey (§2.1) measured three controllers. An
open-loop duty cycle drifts (sleep and signal latency pile up on the running side); Repy V2's rule is
exact on average but, at 25 %, runs 0.1 s and stops 0.3 s, so short windows swing by ±5 points. A bucket
that is fed the *measured* CPU time at every tick and stops the process exactly until the allowance
catches up held the long-run share within ±0.3 points with 1-s windows of sd ≈ 1.2 points, close to a
kernel CFS quota. Because it is fed measurements, anything that lets the process run longer than asked
(a late tick, signal latency, an oversleeping nanny) is charged on the next observation instead of
being lost.

This module only does the arithmetic, so it can be tested with synthetic inputs; `seattle.vessel.supervisor.nanny`
owns the clock, the process and the signals.
"""

from __future__ import annotations

import math


class CpuThrottle:
    """Turns observations of a process's cumulative CPU time into "stay stopped for this long".

    The allowance, in CPU seconds, grows at `share` per second of wall time and is capped at
    `burst_seconds`; the CPU the process used since the previous observation is spent from it. When it
    goes negative the process must stay stopped until the accrual has paid the debt back, which takes
    `debt / share` seconds. The bucket starts full, so a fresh vessel may run `burst_seconds` at once.
    """

    def __init__(self, share: float, burst_seconds: float = 0.05) -> None:
        if not _is_number(share) or share <= 0:
            raise ValueError(f"cpu share must be a finite number > 0, got {share!r}")
        if not _is_number(burst_seconds) or burst_seconds < 0:
            raise ValueError(f"burst_seconds must be a finite number >= 0, got {burst_seconds!r}")
        self.share = float(share)
        self.burst_seconds = float(burst_seconds)
        self._allowance = self.burst_seconds
        self._last_cpu: float | None = None
        self._last_now = 0.0

    def observe(self, cpu_seconds: float, now: float) -> float:
        """Account for the CPU used since the last call; return how long the process must stay stopped.

        `cpu_seconds` is the process's cumulative CPU time (all threads) and `now` a monotonic time in
        seconds. The first call only sets the baseline: CPU used before the nanny started is not charged.
        0.0 means keep running. The caller must observe again after the stop, with the stop's wall
        time included in `now`, which is how the stopped time pays the debt back.
        """
        if not (_is_number(cpu_seconds) and _is_number(now)):
            raise ValueError(f"observe needs finite numbers, got cpu_seconds={cpu_seconds!r}, now={now!r}")
        if self._last_cpu is None:
            self._last_cpu, self._last_now = cpu_seconds, now
            return 0.0
        if now < self._last_now:
            raise ValueError(f"time went backwards: now={now!r} after {self._last_now!r}")
        if cpu_seconds < self._last_cpu:
            raise ValueError(f"cpu_seconds went backwards: {cpu_seconds!r} after {self._last_cpu!r}")
        earned = self.share * (now - self._last_now)
        spent = cpu_seconds - self._last_cpu
        # The cap applies after spending: CPU used within this interval may draw on what the interval
        # itself earned, but idle time can never bank more than one burst.
        self._allowance = min(self._allowance + earned - spent, self.burst_seconds)
        self._last_cpu, self._last_now = cpu_seconds, now
        if self._allowance >= 0:
            return 0.0
        return -self._allowance / self.share

    def safe_wait(self, cores: int) -> float:
        """How long the caller can wait before the next observation without the process overspending: the
        allowance it still has, spent at the fastest rate possible (all `cores` busy). A process overspends
        by what it used after the allowance ran out and before the next observation, and its next pause is
        that overspend divided by the share (at share 0.02, every millisecond over is a 50-ms pause), so
        the observer wants to look often exactly when this is small, and can sleep while it is large."""
        if not isinstance(cores, int) or isinstance(cores, bool) or cores <= 0:
            raise ValueError(f"cores must be a positive int, got {cores!r}")
        return max(0.0, self._allowance) / cores


def _is_number(value: object) -> bool:
    """True for a finite int or float; bools are refused because `True` as a share is a caller's bug."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
