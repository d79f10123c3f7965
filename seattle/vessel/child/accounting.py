"""Per-call resource accounting inside the vessel process: rate buckets, item counts and port sets.

The API functions call the `Accountant` around every operation that uses a metered resource. CPU, memory
and disk are not here: the supervisor's nanny measures those from outside, because code inside the vessel
cannot be trusted to report its own use of them.

Renewable resources (rates in units per second) are leaky buckets that drain at the allotted rate. A call
first waits until its bucket is empty and only then adds its amount, so over any window W the amount
charged is at most rate × (W + SLACK) plus the last call's amount. The original let the bucket hold one
second's worth before a caller waited; here the only allowance is SLACK (10 ms of the rate): a bucket that
drained less than SLACK ago counts from when it drained, not from now. That keeps the long-run rate exact (within
a percent) although a waiter always wakes a little late and the operation itself takes time: without it
every call would lose its oversleep and its own duration, which held a flooding sender 15 % under its
allotment, and a fast sender slept (at least the timer's 50 µs) after nearly every call.

The bucket is kept as the time at which it will be empty (`free_at`) rather than as a fill level, so a
waiter sleeps exactly until that time and no rounding of a level can leave it a hair short of empty.

`charge` checks and adds under one lock, so concurrent chargers keep the bound. `wait_for` followed later
by `record` (for operations whose amount is only known afterwards, like a receive) lets every thread that
passed `wait_for` record once, so with T such threads in flight the excess is up to T calls, not one.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable

from seattle.resources import ITEMS, PORT_SETS, RENEWABLE, Resources
from seattle.vessel.errors import InternalRepyError, ResourceExhaustedError, ResourceForbiddenError
from seattle.vessel.traffic import Traffic

#: The renewables charged per call. cpu is renewable too, but the nanny throttles it from outside.
METERED: frozenset[str] = RENEWABLE - {"cpu"}
#: How far back a bucket that has drained still counts from when it drained (module docstring), seconds.
SLACK = 0.01


class Accountant:
    """The in-vessel meter for one allotment. Thread-safe; the clock and sleep are injectable for tests.

    Errors for vessel programs (ResourceExhaustedError, ResourceForbiddenError) name the resource.
    A wrong resource name or a negative amount is a bug in our API code, so it raises InternalRepyError.
    """

    def __init__(
        self,
        allotment: Resources,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        traffic: Traffic | None = None,
    ) -> None:
        self._allotment = allotment
        #: The vessel's byte counters (shared with its supervisor's usage report); `record` counts payloads.
        self.traffic = traffic if traffic is not None else Traffic()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        start = clock()
        self._free_at: dict[str, float] = {name: start for name in METERED}
        #: The metered rates as floats, looked up on every call (a datagram costs four of these calls).
        self._rates: dict[str, float] = {name: float(allotment.quantities[name]) for name in METERED}
        self._held: dict[str, set[Hashable]] = {name: set() for name in ITEMS}
        self._ports_used: dict[str, set[int]] = {name: set() for name in PORT_SETS}
        #: The allotted port sets, looked up on every datagram sent.
        self._ports: dict[str, frozenset[int]] = {name: allotment.ports(name) for name in PORT_SETS}

    # -- renewable resources ------------------------------------------------------------------------------

    def wait_for(self, resource: str) -> None:
        """Block until `resource`'s bucket is empty. Call it before an operation whose amount comes later.

        Waiting means the caller is about to use the resource, so a zero allotment raises
        ResourceExhaustedError here, before the operation runs, instead of after it in `record`.
        """
        if not self._rates.get(resource):  # not metered, or an allotment of 0: _rate raises the right error
            self._rate(resource)
        while True:
            # No lock: reading one float from the dict is atomic, and a caller racing a `record` may pass
            # it either way, which the T-threads bound in the module docstring already allows for.
            delay = self._free_at[resource] - self._clock()
            if delay <= 0:
                return
            self._sleep(delay)

    def charge(self, resource: str, amount: float) -> None:
        """Wait until `resource`'s bucket is empty, then add `amount` (known before the operation runs)."""
        rate = self._rate(resource)
        _check_amount(resource, amount)
        while True:
            with self._lock:
                now = self._clock()
                delay = self._free_at[resource] - now
                if delay <= 0:
                    self._free_at[resource] = _start(self._free_at[resource], now) + amount / rate
                    return
            self._sleep(delay)

    def record(self, resource: str, amount: float, payload: int = 0) -> None:
        """Add `amount` without waiting: the operation already ran after a `wait_for`. `payload` (network
        resources only): the data bytes among `amount`, counted in `traffic` under the same lock."""
        rate = self._rates.get(resource)
        if not rate or type(amount) is not int or amount <= 0:  # every case but a byte count: check it all
            _check_amount(resource, amount)
            if amount == 0 and resource in METERED:
                return
            rate = self._rate(resource)
        with self._lock:
            # _start, inlined: a datagram costs two of these calls.
            free_at, now = self._free_at[resource], self._clock()
            self._free_at[resource] = (free_at if free_at >= now - SLACK else now) + amount / rate
            if payload:
                self.traffic.add_unlocked(resource, payload)

    def _rate(self, resource: str) -> float:
        rate = self._rates.get(resource)
        if rate is None:
            raise InternalRepyError(f"{resource!r} is not a per-call renewable resource "
                                    f"(expected one of {', '.join(sorted(METERED))})")
        if rate == 0:
            raise ResourceExhaustedError(f"{resource}: this vessel's allotment is 0, so it may not use any")
        return rate

    # -- fungible items -----------------------------------------------------------------------------------

    def acquire(self, resource: str, handle: Hashable) -> None:
        """Count `handle` against `resource` (threads, open files, sockets); holding it already is a no-op.

        Raises ResourceExhaustedError when the vessel already holds its whole allotment.
        """
        limit = self._item_limit(resource)
        with self._lock:
            held = self._held[resource]
            if handle in held:
                return
            if len(held) >= limit:
                if limit == 0:
                    raise ResourceExhaustedError(f"{resource}: this vessel's allotment is 0")
                raise ResourceExhaustedError(f"{resource}: all {limit} allowed are in use")
            held.add(handle)

    def release(self, resource: str, handle: Hashable) -> None:
        """Stop counting `handle`; releasing one that is not held is fine (close paths may race)."""
        self._item_limit(resource)
        with self._lock:
            self._held[resource].discard(handle)

    def _item_limit(self, resource: str) -> int:
        if resource not in ITEMS:
            raise InternalRepyError(f"{resource!r} is not an item resource "
                                    f"(expected one of {', '.join(sorted(ITEMS))})")
        return self._allotment.count(resource)

    # -- port sets ----------------------------------------------------------------------------------------

    def check_port(self, resource: str, port: int) -> None:
        """Raise ResourceForbiddenError unless `port` is in the vessel's messport or connport set; a port that
        passes counts as used from then on (`ports_used`)."""
        allowed = self._ports.get(resource)
        if allowed is None:
            raise InternalRepyError(f"{resource!r} is not a port set (expected messport or connport)")
        if port not in allowed:
            raise ResourceForbiddenError(f"{resource}: port {port} is not in this vessel's allotment")
        used = self._ports_used[resource]
        if port not in used:  # a membership test needs no lock; a port is added once, then every send passes
            with self._lock:
                used.add(port)

    def ports_used(self, resource: str) -> set[int]:
        """The allotted ports of `resource` the vessel has used since it started, as Repy's nanny kept them
        (its tattle_check added a port to the usage set and nothing took it out)."""
        with self._lock:
            return set(self._ports_used[resource])

    # -- reporting ----------------------------------------------------------------------------------------

    def usage(self) -> dict[str, float | int]:
        """Metered renewables: what is still in the bucket (units); items: how many are held."""
        with self._lock:
            now = self._clock()
            levels: dict[str, float | int] = {
                name: max(0.0, free_at - now) * float(self._allotment.quantities[name])
                for name, free_at in self._free_at.items()
            }
            levels.update({name: len(held) for name, held in self._held.items()})
        return levels


def _start(free_at: float, now: float) -> float:
    """Where a new amount starts in a bucket that empties at `free_at`: there, if it is still filling or
    drained less than SLACK ago (a caller keeping up with the rate), else now (the bucket sat idle)."""
    return free_at if free_at >= now - SLACK else now


def _check_amount(resource: str, amount: float) -> None:
    is_number = isinstance(amount, int | float) and not isinstance(amount, bool)
    if not is_number or (isinstance(amount, float) and not math.isfinite(amount)) or amount < 0:
        raise InternalRepyError(f"{resource}: amount must be a finite number ≥ 0, got {amount!r}")
