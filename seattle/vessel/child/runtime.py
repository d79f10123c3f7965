"""Runs a checked program inside the (already confined) vessel process.

This is the last step of a vessel's start: build the program's globals from the API modules, translate the
source if it is in the original dialect, check and compile it, execute it, wait for the threads it started,
and end the process with an exit code that `seattle.vessel.status` maps to a vessel state. Nothing here is
reachable from user code: the program sees only the names `Runtime.namespace` puts in its namespace.
"""

from __future__ import annotations

import builtins
import threading
from typing import TYPE_CHECKING, Any, NoReturn

from seattle.vessel import errors
from seattle.vessel.child import dialect
from seattle.vessel.child.api import core, files, legacy, network, strdata, vnamespace
from seattle.vessel.child.api.checks import api_call, require_str
from seattle.vessel.child.api.contextview import GlobalsView
from seattle.vessel.child.api.dylink import Dylink
from seattle.vessel.child.checker import MAX_SOURCE_BYTES, check_and_compile
from seattle.vessel.child.context import VesselContext
from seattle.vessel.child.py2names import original_builtins
from seattle.vessel.child.safe_builtins import make_builtins
from seattle.vessel.child.tracebacks import format_user_exception
from seattle.vessel.spec import ORIGINAL_PLATFORMS, PYTHON3
from seattle.vessel.status import EXIT_CODE_UNSAFE, EXIT_INTERNAL, EXIT_NORMAL, EXIT_UNCAUGHT

if TYPE_CHECKING:
    from types import CodeType

API_MODULES = (core, files, network, legacy, vnamespace)
#: The accountant's handle for the program's main thread.
MAIN_THREAD = "main thread"


class Runtime:
    """What the program and its libraries share: the API (adapted to the dialect), `mycontext`, dylink.

    Every namespace it builds (the program's, each library's, a dispatched program's) gets the same API
    functions and its own fresh safe builtins, `_context` and dylink names.
    """

    def __init__(self, ctx: VesselContext, *, language_layer: bool = True, platform: str = PYTHON3) -> None:
        self.ctx = ctx
        self.language_layer = language_layer
        self.original = platform in ORIGINAL_PLATFORMS
        api: dict[str, Any] = {}
        for module in API_MODULES:
            api.update(module.exports(ctx))
        # Libraries are read through the program's own file API, before any adaptation: as bytes.
        self.openfile = api["openfile"]
        if self.original:
            api = strdata.adapt(ctx, api)
            api["createvirtualnamespace"] = self._translating_namespace(api["createvirtualnamespace"])
        self.api = api
        self.print = core.make_print(ctx)
        self.mycontext: dict[Any, Any] = {}
        self.dylink = Dylink(ctx, self.namespace, self.read_library, self.compile)

    def namespace(self, callfunc: str, callargs: list[str]) -> dict[str, Any]:
        """A new global namespace: the API, the Repy exceptions, `mycontext`, `callfunc`, `callargs`, dylink."""
        namespace: dict[str, Any] = dict(self.api)
        namespace.update(errors.EXPORTED)
        namespace["mycontext"] = self.mycontext
        namespace["callfunc"] = callfunc
        namespace["callargs"] = callargs
        # Class bodies read `__name__` to set `__module__`; programs cannot name it themselves.
        namespace["__name__"] = "program"
        namespace["_context"] = GlobalsView(namespace)
        namespace.update(self.dylink.exports(namespace))
        if self.language_layer:
            safe = make_builtins(self.print)
            if self.original:
                safe.update(original_builtins())
            namespace["__builtins__"] = safe
        else:
            namespace["__builtins__"] = {**builtins.__dict__, "print": self.print}
        return namespace

    def compile(self, source: str | bytes, filename: str) -> CodeType:
        """Translate (for the original dialect), check and compile a program or library; CodeUnsafeError."""
        if self.original:
            source = dialect.translate(source, filename)
        if self.language_layer:
            try:
                return check_and_compile(source, filename)
            except errors.CodeUnsafeError as exc:
                if self.original or not dialect.looks_original(source, filename, str(exc)):
                    raise
                raise errors.CodeUnsafeError(f"{exc}; {dialect.HINT}") from None
        return compile(source, filename, "exec")

    def read_library(self, filename: str) -> bytes:
        """A library's text, read through the file API (charged like the program's own reads)."""
        handle = self.openfile(filename, False)
        try:
            data = handle.readat(MAX_SOURCE_BYTES + 1, 0)
        finally:
            handle.close()
        if len(data) > MAX_SOURCE_BYTES:
            raise errors.CodeUnsafeError(f"{filename}: the library is larger than {MAX_SOURCE_BYTES} bytes")
        assert type(data) is bytes
        return data

    def _translating_namespace(self, createvirtualnamespace: Any) -> Any:
        """createvirtualnamespace for the original dialect: the code is translated before it is checked."""

        def create(code: object, name: object) -> object:
            label = require_str(name, "name")
            return createvirtualnamespace(dialect.translate(require_str(code, "code"), label), label)

        return api_call(self.ctx, "createvirtualnamespace")(create)


def build_globals(ctx: VesselContext, *, language_layer: bool = True, platform: str = PYTHON3) -> dict[str, Any]:
    """The program's global namespace: the API, the Repy exceptions, `mycontext`, `callfunc`, `callargs`.

    With the language layer switched off (only for testing the other layers) the program also gets the real
    builtins, so it can import and introspect freely and the OS layers alone must hold it.
    """
    return Runtime(ctx, language_layer=language_layer, platform=platform).namespace("initialize", list(ctx.args))


def run_program(ctx: VesselContext, source: bytes, filename: str, *, language_layer: bool = True,
                platform: str = PYTHON3) -> NoReturn:
    """Translate (original dialect), check, compile and run `source`; never returns (exits through `ctx.exit`)."""
    runtime = Runtime(ctx, language_layer=language_layer, platform=platform)
    try:
        code = runtime.compile(source, filename)
    except errors.CodeUnsafeError as exc:
        ctx.write_log(f"CodeUnsafeError: {exc}\n".encode())
        ctx.exit(EXIT_CODE_UNSAFE)
    except SyntaxError as exc:  # only without the language layer; the checker reports syntax errors itself
        ctx.write_log(f"SyntaxError: {exc}\n".encode())
        ctx.exit(EXIT_CODE_UNSAFE)
    namespace = runtime.namespace("initialize", list(ctx.args))
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
