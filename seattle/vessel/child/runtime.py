"""Runs a checked program inside the (already confined) vessel process.

This is the last step of a vessel's start: build the program's globals from the API modules, check and
compile the source, execute it, wait for the threads it started, and end the process with an exit code that
`seattle.vessel.status` maps to a vessel state. Nothing here is reachable from user code: the program sees
only the names `build_globals` puts in its namespace.
"""

from __future__ import annotations

import builtins
import threading
from typing import Any, NoReturn

from seattle.vessel import errors
from seattle.vessel.child.api import core, files, legacy, network, vnamespace
from seattle.vessel.child.checker import check_and_compile
from seattle.vessel.child.context import VesselContext
from seattle.vessel.child.safe_builtins import make_builtins
from seattle.vessel.child.tracebacks import format_user_exception
from seattle.vessel.status import EXIT_CODE_UNSAFE, EXIT_INTERNAL, EXIT_NORMAL, EXIT_UNCAUGHT

API_MODULES = (core, files, network, legacy, vnamespace)
#: The accountant's handle for the program's main thread.
MAIN_THREAD = "main thread"


def build_globals(ctx: VesselContext, *, language_layer: bool = True) -> dict[str, Any]:
    """The program's global namespace: the API, the Repy exceptions, `mycontext`, `callfunc`, `callargs`.

    With the language layer switched off (only for testing the other layers) the program also gets the real
    builtins, so it can import and introspect freely and the OS layers alone must hold it.
    """
    namespace: dict[str, Any] = {}
    for module in API_MODULES:
        namespace.update(module.exports(ctx))
    namespace.update(errors.EXPORTED)
    namespace["mycontext"] = {}
    namespace["callfunc"] = "initialize"
    namespace["callargs"] = list(ctx.args)
    # Class bodies read `__name__` to set `__module__`; programs cannot name it themselves.
    namespace["__name__"] = "program"
    if language_layer:
        namespace["__builtins__"] = make_builtins(core.make_print(ctx))
    else:
        namespace["__builtins__"] = {**builtins.__dict__, "print": core.make_print(ctx)}
    return namespace


def run_program(ctx: VesselContext, source: bytes, filename: str, *, language_layer: bool = True) -> NoReturn:
    """Check, compile and run `source`; never returns (the process exits through `ctx.exit`)."""
    try:
        if language_layer:
            code = check_and_compile(source, filename)
        else:
            code = compile(source, filename, "exec")
    except errors.CodeUnsafeError as exc:
        ctx.write_log(f"CodeUnsafeError: {exc}\n".encode())
        ctx.exit(EXIT_CODE_UNSAFE)
    except SyntaxError as exc:  # only without the language layer; the checker reports syntax errors itself
        ctx.write_log(f"SyntaxError: {exc}\n".encode())
        ctx.exit(EXIT_CODE_UNSAFE)
    namespace = build_globals(ctx, language_layer=language_layer)
    try:
        # As in Repy, the main thread is the first of the program's `events`.
        ctx.accountant.acquire("events", MAIN_THREAD)
        exec(code, namespace)
    except errors.InternalRepyError as exc:
        ctx.write_log(f"Internal error in the vessel runtime: {exc}\n".encode())
        ctx.exit(EXIT_INTERNAL)
    except BaseException as exc:  # the program's own uncaught exception, whatever it is
        ctx.write_log(format_user_exception(exc, filename).encode())
        ctx.exit(EXIT_UNCAUGHT)
    _wait_for_program_threads()
    ctx.exit(EXIT_NORMAL)


def _wait_for_program_threads() -> None:
    """The program lives on while any thread it started runs (timers, listeners), as in Repy."""
    main = threading.main_thread()
    while True:
        pending = [t for t in threading.enumerate() if t is not main and not t.daemon]
        if not pending:
            return
        for thread in pending:
            thread.join()
