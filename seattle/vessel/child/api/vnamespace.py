"""Virtual namespaces: code checked once, then run any number of times in contexts the program supplies.

`createvirtualnamespace(code, name)` runs the same safety checker as for the program itself, so a
namespace can do nothing the program could not. `evaluate(context)` executes the code with the context as
its globals and fresh safe builtins; the program uses this to load modules (Repy's dylink) or to run code
it received at run time.

A context's keys become global names of that code, so they must be names the checker would have
allowed: str, no leading `_`, no `__`. Above all this keeps `__builtins__` out, which would otherwise
hand the code a builtins mapping of the program's choosing. `SafeDict` enforces the rule on every write;
a plain dict is checked and copied into a SafeDict when it is evaluated.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from seattle.vessel import errors
from seattle.vessel.child.api import core
from seattle.vessel.child.api.checks import api_call, api_object, require_str, type_name
from seattle.vessel.child.checker import check_and_compile
from seattle.vessel.child.safe_builtins import make_builtins

if TYPE_CHECKING:
    from types import CodeType

    from seattle.vessel.child.context import VesselContext

_MISSING = object()


def is_safe_key(key: object) -> bool:
    """Whether `key` may be a name in a context: an exact str with no leading `_` and no `__`."""
    return type(key) is str and not key.startswith("_") and "__" not in key


def check_key(key: object) -> str:
    """`key` if it is safe; ContextUnsafeError naming the key (or its type) otherwise."""
    if type(key) is not str:
        raise errors.ContextUnsafeError(f"context keys must be str, not {type_name(key)}")
    if not is_safe_key(key):
        raise errors.ContextUnsafeError(f"context key {key!r} is unsafe: it starts with '_' or holds '__'")
    return key


def contents(safedict: SafeDict) -> dict[str, Any]:
    """The dict inside a SafeDict: its slot is name-mangled, so programs cannot name it."""
    data: dict[str, Any] = object.__getattribute__(safedict, "_SafeDict__data")
    return data


def _checked_copy(source: object, what: str) -> dict[str, Any]:
    """A new dict with the items of an exact dict or a SafeDict, every key checked first."""
    if type(source) is SafeDict:
        return dict(contents(source))
    if type(source) is dict:
        for key in source:  # type checks come before any hashing, so no user __hash__/__eq__ runs
            check_key(key)
        return dict(source)
    raise errors.RepyArgumentError(f"{what} must be a dict or a SafeDict, not {type_name(source)}")


class SafeDict:
    """A dict whose keys are always safe global names; the context type for virtual namespaces.

    Keys are exact str objects, so lookups never run program code. Reading a key that is not a str simply
    finds nothing (KeyError, False, the default); storing one raises ContextUnsafeError. Its methods raise
    ordinary dict errors (KeyError) like a dict would, which is why they do not go through `api_call`,
    where any non-Repy exception would count as a fault of the runtime.
    """

    # Name-mangled (`_SafeDict__data`), so it holds `__`, which the checker refuses in any name: programs may
    # use names with one leading underscore, as in the original, and must not reach the raw dict.
    __slots__ = ("__data",)

    def __init__(self, initial: object = None) -> None:
        self.__data: dict[str, Any] = {} if initial is None else _checked_copy(initial, "SafeDict(initial)")

    def __init_subclass__(cls, **kwargs: object) -> NoReturn:
        raise errors.RepyArgumentError("SafeDict cannot be subclassed")

    def __getitem__(self, key: object) -> Any:
        if type(key) is not str:
            raise KeyError(key)
        return self.__data[key]

    def __setitem__(self, key: object, value: Any) -> None:
        self.__data[check_key(key)] = value

    def __delitem__(self, key: object) -> None:
        if type(key) is not str:
            raise KeyError(key)
        del self.__data[key]

    def __contains__(self, key: object) -> bool:
        return type(key) is str and key in self.__data

    def __len__(self) -> int:
        return len(self.__data)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.__data))  # a snapshot: the loop body may change the SafeDict

    def __repr__(self) -> str:
        return f"SafeDict({self.__data!r})"

    def keys(self) -> list[str]:
        return list(self.__data)

    def values(self) -> list[Any]:
        return list(self.__data.values())

    def items(self) -> list[tuple[str, Any]]:
        return list(self.__data.items())

    def get(self, key: object, default: Any = None) -> Any:
        if type(key) is not str:
            return default
        return self.__data.get(key, default)

    def pop(self, key: object, default: Any = _MISSING) -> Any:
        if type(key) is str and key in self.__data:
            return self.__data.pop(key)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def setdefault(self, key: object, default: Any = None) -> Any:
        return self.__data.setdefault(check_key(key), default)

    def update(self, other: object) -> None:
        self.__data.update(_checked_copy(other, "update()'s argument"))

    def copy(self) -> SafeDict:
        return SafeDict(self)

    def has_key(self, key: object) -> bool:
        """Repy's SafeDict had it (it was a Python 2 dict); same as `key in safedict`."""
        return key in self

    def clear(self) -> None:
        self.__data.clear()


def exports(ctx: VesselContext) -> dict[str, object]:
    """createvirtualnamespace and the SafeDict class, bound to `ctx`."""
    print_function = core.make_print(ctx)
    check_lock = threading.Lock()  # one check at a time, as in Repy: checks are the expensive part

    def createvirtualnamespace(code: object, name: object) -> object:
        source = require_str(code, "code")
        label = require_str(name, "name")
        with check_lock:
            compiled = check_and_compile(source, label)
        return _virtual_namespace(ctx, compiled, print_function)

    return {
        "createvirtualnamespace": api_call(ctx, "createvirtualnamespace")(createvirtualnamespace),
        "SafeDict": SafeDict,
    }


def _virtual_namespace(ctx: VesselContext, code: CodeType, print_function: Any) -> object:
    def prepare(context: object) -> SafeDict:
        if type(context) is SafeDict:
            return context
        if type(context) is dict:
            return SafeDict(context)
        raise errors.RepyArgumentError(f"context must be a dict or a SafeDict, not {type_name(context)}")

    checked_context = api_call(ctx, "VirtualNamespace.evaluate")(prepare)

    def evaluate(context: object) -> SafeDict:
        # The code runs here, outside the API wrapper: whatever it raises is the program's own exception.
        result = checked_context(context)
        namespace = contents(result)
        namespace["__builtins__"] = make_builtins(print_function)
        try:
            exec(code, namespace)
        finally:
            # Functions the code defined keep the builtins they were created with; the context itself
            # goes back to holding only safe keys.
            namespace.pop("__builtins__", None)
        return result

    evaluate.__name__ = evaluate.__qualname__ = "VirtualNamespace.evaluate"
    return api_object("VirtualNamespace", {"evaluate": evaluate})
