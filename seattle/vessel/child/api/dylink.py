"""dylink: `dy_import_module`, `dy_import_module_symbols` and `dy_dispatch_module`, as in the original.

A library is a file in the vessel's directory. The first import reads it through the vessel's own file API
(`openfile` and `readat`, so it is charged as file reads like any read of the program's), translates it if the
vessel runs the original dialect, checks and compiles it with the same checker as the program, and evaluates
it once in a namespace of its own: the API, the exceptions, the shared `mycontext`, `callfunc` set to
"import" (so a library's `if callfunc == 'initialize':` block does not run) and dylink functions of its own.
Later imports of the same name use that namespace again.

    lib = dy_import_module("lib.r2py")       # the library as an object: lib.name; the same object every time
    dy_import_module_symbols("lib.r2py")     # its names copied into the caller's globals (from lib import *)
    dy_dispatch_module()                     # run callargs[0] as the program, with the caller's names

The names a library exports are those its evaluation bound or rebound: a library that defines `helper` exports
it, and one that replaces `openconnection` exports its replacement (the original's behaviour-changing
modules). A refused library raises CodeUnsafeError naming the library and its line; an error while it runs
propagates with the library's frames in the traceback.

The original loaded dylink itself as a first program (`dylink.r2py program.r2py args`); here the three names
are in every program's globals, and `dy_dispatch_module` serves programs written for that layout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from seattle.vessel import errors
from seattle.vessel.child.api.checks import api_call, require_str

if TYPE_CHECKING:
    from types import CodeType

    from seattle.vessel.child.context import VesselContext

#: The `callfunc` a library sees while it is imported, as in the original.
IMPORT_CALLFUNC = "import"
#: Names every namespace gets from the runtime, which a library therefore never exports.
RUNTIME_NAMES = frozenset({"__builtins__", "__name__", "mycontext", "callfunc", "callargs", "_context",
                           "dy_import_module", "dy_import_module_symbols", "dy_dispatch_module"})

#: Builds a fresh namespace (the API and the runtime's names) for a library or a dispatched program.
NamespaceFactory = Callable[[str, list[str]], dict[str, Any]]
#: Reads a library's source text through the vessel's file API.
SourceReader = Callable[[str], bytes]
#: Translates (for the original dialect), checks and compiles a library's source.
Compiler = Callable[[bytes, str], "CodeType"]


class DylinkModule:
    """A library as `dy_import_module` returns it: its exported names as attributes.

    A plain object: the program may read and set attributes (the original allowed `lib.foo = ...`, and a
    later import returns the same object with the change intact).
    """

    def __init__(self, names: dict[str, Any]) -> None:
        vars(self).update(names)

    def __repr__(self) -> str:
        return "<dylink module>"


class _Library:
    def __init__(self, names: dict[str, Any]) -> None:
        self.names = names
        self.module = DylinkModule(names)


class Dylink:
    """The libraries of one vessel process, loaded once each and kept by name.

    Each call has two halves: the checked half (the name, the read, the translation and the check, which run
    no program code) goes through `api_call` like any API call; the library's evaluation runs outside it,
    since whatever a library raises is the program's own error, with the library's frames in its traceback.
    """

    def __init__(self, ctx: VesselContext, new_namespace: NamespaceFactory, read: SourceReader,
                 compile_library: Compiler) -> None:
        self.new_namespace = new_namespace
        self.read = read
        self.compile_library = compile_library
        self.libraries: dict[str, _Library] = {}
        self.loading: set[str] = set()
        # Reentrant: a library that imports another one does so while its own import holds the lock.
        self.lock = threading.RLock()
        self.lookups = {name: api_call(ctx, name)(_function(self.lookup))
                        for name in ("dy_import_module", "dy_import_module_symbols")}
        self.dispatch_lookup = api_call(ctx, "dy_dispatch_module")(_function(self.program_code))

    def exports(self, namespace: dict[str, Any]) -> dict[str, object]:
        """The three dylink names for code running with `namespace` as its globals."""

        def dy_import_module(name: object) -> object:
            return self.library(name, "dy_import_module").module

        def dy_import_module_symbols(name: object) -> None:
            namespace.update(self.library(name, "dy_import_module_symbols").names)

        def dy_dispatch_module() -> None:
            code, args = self.dispatch_lookup(namespace.get("callargs"))
            names = self.new_namespace("initialize", args)
            names.update(_exported(namespace))
            _evaluate(code, names)

        return {
            "dy_import_module": dy_import_module,
            "dy_import_module_symbols": dy_import_module_symbols,
            "dy_dispatch_module": dy_dispatch_module,
        }

    def library(self, name: object, api_name: str) -> _Library:
        """The library in file `name`, loaded on first use."""
        with self.lock:
            found = self.lookups[api_name](name)
            if isinstance(found, _Library):
                return found
            filename, code = found
            self.loading.add(filename)
            try:
                namespace = self.new_namespace(IMPORT_CALLFUNC, [])
                base = dict(namespace)
                _evaluate(code, namespace)
            finally:
                self.loading.discard(filename)
            library = _Library(_changed(base, namespace))
            self.libraries[filename] = library
            return library

    def lookup(self, name: object) -> _Library | tuple[str, CodeType]:
        """The checked half of an import: a loaded library, or the file name and the code to evaluate."""
        filename = require_str(name, "name", allow_empty=False)
        library = self.libraries.get(filename)
        if library is not None:
            return library
        if filename in self.loading:
            raise errors.RepyArgumentError(f"dylink: {filename!r} imports itself (through the libraries it imports)")
        return filename, self.compile_library(self.read(filename), filename)

    def program_code(self, args: object) -> tuple[CodeType, list[str]]:
        """The checked half of dy_dispatch_module: callargs[0] compiled, and the arguments it gets."""
        if type(args) is not list or not args or any(type(arg) is not str for arg in args):
            raise errors.RepyArgumentError("dy_dispatch_module: callargs must be a list of str naming the program")
        program = args[0]
        return self.compile_library(self.read(program), program), list(args[1:])


def _function(method: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A plain function calling `method`: api_call names the function it wraps, which a bound method refuses."""

    def call(argument: Any) -> Any:
        return method(argument)

    return call


def _evaluate(code: CodeType, namespace: dict[str, Any]) -> None:
    """Run a library's code: outside any API wrapper, since whatever it raises is the program's own error."""
    exec(code, namespace)


def _changed(base: dict[str, Any], namespace: dict[str, Any]) -> dict[str, Any]:
    """The names evaluation bound or rebound, less those every namespace gets from the runtime and those the
    interpreter itself sets (`__doc__`, `__annotations__`): a program could not have spelled them."""
    return {
        key: value for key, value in namespace.items()
        if key not in RUNTIME_NAMES and "__" not in key and (key not in base or base[key] is not value)
    }


def _exported(namespace: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in namespace.items() if key not in RUNTIME_NAMES and "__" not in key}
