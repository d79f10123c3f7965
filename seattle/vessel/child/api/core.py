"""The core vessel API: time, randomness, the log, threads, locks, exit and the resource report.

Also the thread machinery other API modules share (`start_thread`, `run_user_function`,
`report_uncaught`): in Repy an exception nobody catches in *any* thread ends the whole vessel, and a
thread the OS refuses to create ends it with its own exit code, so every program thread goes through here.

Program threads are ordinary non-daemon threads: the runtime waits for them after the main program
returns, so a vessel lives on while any thread it started still runs, as in Repy.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from seattle.resources import PORT_SETS, RESOURCE_NAMES
from seattle.vessel import errors, status
from seattle.vessel.child import lasterror, tracebacks
from seattle.vessel.child.api.checks import (
    api_call,
    api_object,
    require_bool,
    require_callable,
    require_float,
    require_str,
)

if TYPE_CHECKING:
    from seattle.vessel.child.context import VesselContext

#: Bytes returned (and charged to `random`) by one randombytes() call, as in Repy.
RANDOM_BYTES = 1024
#: getresources() reports at most this many of the most recent stop times, as in Repy.
STOPTIMES_KEPT = 100
#: sleep() waits in pieces no longer than this; time.sleep refuses very large values outright.
_SLEEP_PIECE = 86_400.0

_thread_names = threading.local()
_thread_numbers = itertools.count(1)


def exports(ctx: VesselContext) -> dict[str, object]:
    """The core API functions, bound to `ctx`."""
    report_lock = threading.Lock()

    def sleep(seconds: object) -> None:
        pause(require_float(seconds, "seconds"))

    def getruntime() -> float:
        return time.monotonic() - ctx.start_time

    def randombytes() -> bytes:
        ctx.accountant.charge("random", RANDOM_BYTES)
        return os.urandom(RANDOM_BYTES)

    write_log = _log_writer(ctx, "log")

    def log(*args: Any, **keywords: Any) -> None:
        if keywords:
            raise errors.RepyArgumentError("log: takes no keyword arguments, only values to write")
        # str() runs the program's own __str__ methods, so it happens here, outside the API wrapper: an
        # exception they raise is the program's, not a fault of the runtime.
        write_log([str(arg) for arg in args], " ", "")

    def getthreadname() -> str:
        return thread_name()

    def createlock() -> object:
        return make_lock(ctx)

    def createthread(function: object) -> None:
        target = require_callable(function, "function")
        handle = object()
        ctx.accountant.acquire("events", handle)

        def body() -> None:
            try:
                run_user_function(ctx, target, ())
            finally:
                ctx.accountant.release("events", handle)

        start_thread(ctx, body)

    def exitall() -> NoReturn:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                try:
                    stream.flush()
                except (OSError, ValueError):  # closed or broken: nothing left to flush
                    pass
        ctx.exit(status.EXIT_NORMAL)

    def getlasterror() -> str | None:
        # Inside the wrapper's `try` body, exc_info() is the exception the *calling* code is handling;
        # outside an except block, the one this thread handled last (as Python 2's exc_info() was).
        handled = sys.exc_info()[1] or lasterror.last_handled()
        return None if handled is None else tracebacks.format_user_exception(handled)

    def getresources() -> tuple[dict[str, Any], dict[str, Any], list[tuple[float, float]]]:
        with report_lock:  # Repy serialises these calls; the supervisor is asked one at a time
            measured = ctx.broker.call("usage")
        limits: dict[str, Any] = {}
        for name in RESOURCE_NAMES:
            limits[name] = set(ctx.resources.ports(name)) if name in PORT_SETS else ctx.resources.quantity(name)
        usage: dict[str, Any] = dict(ctx.accountant.usage())
        usage["cpu"] = float(measured["cpu"])
        usage["memory"] = int(measured["memory"])
        usage["diskused"] = int(measured["diskused"])
        usage["threadcpu"] = time.thread_time()
        for name in PORT_SETS:  # sets like the limits, as Repy reported them
            usage[name] = ctx.accountant.ports_used(name)
        stoptimes = [(float(when), float(length)) for when, length in measured["stoptimes"]]
        return limits, usage, stoptimes[-STOPTIMES_KEPT:]

    functions: dict[str, Callable[..., Any]] = {
        "sleep": sleep,
        "getruntime": getruntime,
        "randombytes": randombytes,
        "getthreadname": getthreadname,
        "createlock": createlock,
        "createthread": createthread,
        "exitall": exitall,
        "getlasterror": getlasterror,
        "getresources": getresources,
    }
    exported: dict[str, object] = {name: api_call(ctx, name)(fn) for name, fn in functions.items()}
    log.__qualname__ = "log"
    exported["log"] = log
    return exported


def make_print(ctx: VesselContext) -> Callable[..., None]:
    """The `print` builtin for programs (see safe_builtins.make_builtins): it writes to the vessel log.

    `print(*objects, sep=" ", end="\\n", flush=False)`; there is no `file` argument. Charges lograte.
    """
    write_log = _log_writer(ctx, "print")

    def print_(*objects: Any, sep: object = " ", end: object = "\n", flush: object = False) -> None:
        write_log([str(item) for item in objects], sep, end)

    print_.__name__ = print_.__qualname__ = "print"
    return print_


def _log_writer(ctx: VesselContext, api_name: str) -> Callable[[Sequence[str], object, object], None]:
    """The checked part of log() and print(): join the already str()-ed pieces, charge lograte, write."""

    def write(pieces: Sequence[str], sep: object, end: object) -> None:
        separator = " " if sep is None else require_str(sep, "sep")
        ending = "\n" if end is None else require_str(end, "end")
        text = separator.join(pieces) + ending  # join copies str subclasses into one plain str
        data = text.encode("utf-8", "backslashreplace")
        if data:
            ctx.accountant.charge("lograte", len(data))
            ctx.write_log(data)

    return api_call(ctx, api_name)(write)


def pause(seconds: float) -> None:
    """Sleep for at least `seconds` of monotonic time; unlike time.sleep it never wakes early."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(remaining, _SLEEP_PIECE))


def thread_name() -> str:
    """This thread's name for getthreadname(): unique among all threads the vessel process ever had."""
    name = getattr(_thread_names, "name", None)
    if name is None:
        if threading.current_thread() is threading.main_thread():
            name = "MainThread"
        else:
            name = f"Thread:{next(_thread_numbers)}"
        _thread_names.name = name
    return name


def make_lock(ctx: VesselContext) -> object:
    """A lock object for programs: `acquire(blocking=True) -> bool` and `release()`.

    Like Repy's (and unlike an RLock) it has no owner: any thread may release it, and releasing a lock
    that is not held raises LockDoubleReleaseError.
    """
    lock = threading.Lock()

    def acquire(blocking: object = True) -> bool:
        return lock.acquire(require_bool(blocking, "blocking"))

    def release() -> None:
        try:
            lock.release()
        except RuntimeError:
            raise errors.LockDoubleReleaseError("release() of a lock that is not held") from None

    return api_object("lock", {
        "acquire": api_call(ctx, "lock.acquire")(acquire),
        "release": api_call(ctx, "lock.release")(release),
    })


def start_thread(ctx: VesselContext, body: Callable[[], None]) -> threading.Thread:
    """Start `body` in a new program thread; if the OS refuses the thread, the vessel ends (ThreadErr)."""

    def guarded() -> None:
        try:
            body()
        except SystemExit:  # ctx.exit ending just this thread, where it does not end the process (tests)
            pass

    thread = threading.Thread(target=guarded, daemon=False)
    try:
        thread.start()
    except RuntimeError as exc:  # "can't start new thread": out of memory, tasks or address space
        _write_quietly(ctx, f"The system refused to start a thread ({exc}); the vessel ends.\n")
        ctx.exit(status.EXIT_THREAD_ERR)
    return thread


def run_user_function(ctx: VesselContext, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Call `function(*args)` as the body of a program thread; an uncaught exception ends the vessel.

    SystemExit passes: programs have no way to raise it (it is not among their builtins), so it can only
    be `ctx.exit` leaving the thread in-process, as it does under tests.
    """
    try:
        function(*args)
    except SystemExit:
        raise
    except BaseException as exc:
        report_uncaught(ctx, exc)


def report_uncaught(ctx: VesselContext, exc: BaseException) -> NoReturn:
    """Write the traceback of an exception that escaped a program thread, then end with EXIT_UNCAUGHT."""
    text = f"Uncaught exception in thread {thread_name()}:\n" + tracebacks.format_user_exception(exc)
    _write_quietly(ctx, text)
    ctx.exit(status.EXIT_UNCAUGHT)
    raise errors.InternalRepyError("the vessel should have ended after an uncaught exception")


def _write_quietly(ctx: VesselContext, text: str) -> None:
    """Write a message the vessel dies with: no lograte wait, and a broken log does not stop the exit."""
    try:
        ctx.write_log(text.encode("utf-8", "backslashreplace"))
    except Exception:  # the exit that follows matters more than the message
        pass
