"""The builtins a vessel program sees: the second half of the language layer (the checker is the first).

An allowlist, built fresh for each namespace, so that a program that somehow changed its builtins changes
only its own copy. What is deliberately absent, and why:

* `getattr`, `setattr`, `delattr`, `hasattr`, `vars`, `dir`, `globals`, `locals`: they look attributes and
  names up from strings built at run time, which would undo the checker's name rules.
* `eval`, `exec`, `compile`, `__import__`, `open`, `input`, `breakpoint`, `help`, `exit`, `quit`: unchecked
  code, modules, host files, the terminal, the debugger.
* `memoryview`: the usual ingredient of CPython's use-after-free crashers, and nothing a program needs next
  to bytes and bytearray.
* `format`: `format(x, spec)` is harmless by itself, but the name is banned by the checker (str.format
  traverses attributes), so offering it would only invite confusion.
* `property`, `classmethod`, `staticmethod`: decorators are refused, so their natural spelling is not
  available, and they build descriptors that run program code on plain attribute reads, a surprise for any
  code (ours included) that reads attributes of program objects. No Repy program used them.
* `aiter`, `anext`, `ExceptionGroup`, `BaseExceptionGroup`: async code and `except*` are refused anyway.
* `TimeoutError`, `FileNotFoundError`, `ConnectionRefusedError`: the Repy API exports classes of these
  names (in the program's globals), and a builtin of the same name would be caught by mistake.

Kept, with reasons:

* `object`: every attribute it has is a dunder, which the checker refuses, and programs need sentinels.
* `super`: its own attributes (`__self__`, `__thisclass__`) are dunders, and through it a method reaches
  only what `Base.method(self)` would reach; zero-argument `super()` works because the compiler supplies the
  class cell, not the program.
* `type`: replaced by `safe_type`, which takes one argument and never returns a metaclass (`type` itself
  included), so `type(type(0))` and `type(int)` raise instead of handing out the class factory.
* `__build_class__` and `__name__`: class statements need them (the body sets `__module__` from
  `__name__`); programs cannot name either.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable

from seattle.vessel.child import lasterror

#: Builtins copied as they are: pure functions, value types and the exceptions a program would catch.
PLAIN_NAMES: tuple[str, ...] = (
    # functions
    "abs", "all", "any", "ascii", "bin", "callable", "chr", "divmod", "enumerate", "filter", "hash", "hex",
    "id", "isinstance", "issubclass", "iter", "len", "map", "max", "min", "next", "oct", "ord", "pow",
    "repr", "reversed", "round", "sorted", "sum", "zip",
    # types
    "bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list", "object", "range",
    "set", "slice", "str", "super", "tuple",
    # constants
    "Ellipsis", "NotImplemented",
    # exceptions
    "BaseException", "Exception", "ArithmeticError", "AssertionError", "AttributeError", "EOFError",
    "FloatingPointError", "IndexError", "KeyError", "LookupError", "MemoryError", "NameError",
    "NotImplementedError", "OverflowError", "RecursionError", "RuntimeError", "StopIteration",
    "TypeError", "UnboundLocalError", "UnicodeError", "UnicodeDecodeError", "UnicodeEncodeError",
    "ValueError", "ZeroDivisionError",
)  # fmt: skip

#: What class bodies see as `__name__` (and so as their `__module__`) when the globals do not say.
PROGRAM_MODULE_NAME = "program"

_real_type = builtins.type


def safe_type(*args: object) -> type:
    """type(x) for a vessel: the class of `x`, but never a metaclass and never the three-argument form.

    The class of an ordinary object is harmless to hand out; the class of a class is `type` (or another
    metaclass), the factory that builds classes with any hook, so asking for it is refused. The check
    reads the real type of the argument, never its `__class__`, which a program object could fake.
    """
    if len(args) != 1:
        raise TypeError(
            f"type() takes exactly one argument in a vessel ({len(args)} given); "
            "classes are made with the class statement"
        )
    cls = _real_type(args[0])
    if issubclass(cls, _real_type):
        raise TypeError("type() of a class is not available in a vessel")
    return cls


safe_type.__name__ = safe_type.__qualname__ = "type"


def make_builtins(print_function: Callable[..., None]) -> dict[str, object]:
    """A new builtins dict for one program namespace, with `print_function` as `print`.

    `print_function` writes to the vessel log (the runtime charges `lograte` there); it must be callable.
    """
    if not callable(print_function):
        raise TypeError(f"print_function must be callable, not {_real_type(print_function).__name__}")
    namespace: dict[str, object] = {name: getattr(builtins, name) for name in PLAIN_NAMES}
    namespace["print"] = print_function
    namespace["type"] = safe_type
    namespace["__build_class__"] = builtins.__build_class__
    namespace["__name__"] = PROGRAM_MODULE_NAME
    namespace[lasterror.HOOK] = lasterror.note_handled
    return namespace
