"""Repy V1 names that are not about the network: settimer, canceltimer, getlock, randomfloat, listdir.

They let programs written for the original V1 API (the `StartVessel` path) run with Python 3 syntax.
The V1 network names (sendmess, recvmess, stopcomm, openconn, waitforconn, gethostbyname_ex) live in `api.network`.

A timer is a program thread that sleeps first. It counts as an `events` item only while it runs the
function, not while it waits, so a program may have more pending timers than its events allotment; if
none is free when a timer fires, that is an uncaught ResourceExhaustedError in the timer's thread,
which ends the vessel like any other uncaught exception.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

from seattle.vessel import errors
from seattle.vessel.child.api import core, files
from seattle.vessel.child.api.checks import (
    api_call,
    api_object,
    api_object_class,
    require_callable,
    require_float,
    require_list_or_tuple,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from seattle.vessel.child.context import VesselContext

#: randomfloat() draws this many random bytes (charged to `random`) for its 53 bits.
RANDOMFLOAT_BYTES = 8
_TIMER = "timer"
#: Waiting timers wake at least this often; Condition.wait refuses very long timeouts.
_WAIT_PIECE = 86_400.0


class _Timer:
    """One settimer() call: cancelled and started are decided under `lock`, so exactly one of them wins."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.cancelled = False
        self.started = False


def exports(ctx: VesselContext) -> dict[str, object]:
    """The V1 names, bound to `ctx`."""
    timers: dict[object, _Timer] = {}  # keys are our own handle objects: identity hash and equality only
    timers_lock = threading.Lock()
    handle_class = api_object_class(_TIMER, ())

    def settimer(waittime: object, function: object, args: object) -> object:
        delay = require_float(waittime, "waittime")
        target = require_callable(function, "function")
        arguments = require_list_or_tuple(args, "args")
        timer = _Timer()
        handle = api_object(_TIMER, {})
        with timers_lock:
            timers[handle] = timer

        def body() -> None:
            try:
                _run_timer(ctx, timer, delay, target, arguments)
            finally:
                with timers_lock:
                    timers.pop(handle, None)

        core.start_thread(ctx, body)
        return handle

    def canceltimer(timerhandle: object) -> bool:
        if type(timerhandle) is not handle_class:
            raise errors.RepyArgumentError("timerhandle must be a handle returned by settimer")
        with timers_lock:
            timer = timers.get(timerhandle)
        if timer is None:  # it already ran, or was cancelled before
            return False
        with timer.lock:
            if timer.started or timer.cancelled:
                return False
            timer.cancelled = True
        timer.wake.set()
        return True

    def getlock() -> object:
        return core.make_lock(ctx)

    def randomfloat() -> float:
        ctx.accountant.charge("random", RANDOMFLOAT_BYTES)
        return (int.from_bytes(os.urandom(RANDOMFLOAT_BYTES), "big") >> 11) / (1 << 53)

    def listdir() -> list[str]:
        return files.list_files(ctx)

    functions: dict[str, Callable[..., Any]] = {
        "settimer": settimer,
        "canceltimer": canceltimer,
        "getlock": getlock,
        "randomfloat": randomfloat,
        "listdir": listdir,
    }
    return {name: api_call(ctx, name)(fn) for name, fn in functions.items()}


def _run_timer(
    ctx: VesselContext, timer: _Timer, delay: float, function: Callable[..., Any], args: tuple[Any, ...]
) -> None:
    """The timer thread: wait `delay` seconds unless cancelled, then run the function as an event."""
    deadline = time.monotonic() + delay
    while (remaining := deadline - time.monotonic()) > 0:
        if timer.wake.wait(min(remaining, _WAIT_PIECE)):
            return  # cancelled
    with timer.lock:
        if timer.cancelled:
            return
        timer.started = True
    try:
        ctx.accountant.acquire("events", timer)
    except errors.ResourceExhaustedError as exc:
        core.report_uncaught(ctx, exc)
    try:
        core.run_user_function(ctx, function, args)
    finally:
        ctx.accountant.release("events", timer)
