"""Argument checks and the wrapper that every vessel API function and method goes through.

The API is the boundary between untrusted program code and the runtime, so two rules hold everywhere:

* Arguments are accepted only as exact built-in types (`type(x) is str`, never `isinstance`). A user
  subclass of `str` or `int` could override `__eq__`, `__hash__`, `__len__` or `__index__` and so run its
  own code *inside* the API, in the middle of our bookkeeping (and call back into the API from there).
  Checking the exact type first means no method of a user object ever runs inside an API call.
* `api_call` decides what may leave an API call. Repy exceptions go out as fresh instances holding only a
  message: no `__cause__`, no `__context__`, no traceback into runtime frames, so nothing reachable from
  them leads back to host objects. Any other exception is a fault of the runtime: it is written to the
  vessel log and the vessel ends with EXIT_INTERNAL. Errors the program caused (a bad file name, a full
  disk) must therefore already have been translated into a Repy exception when they reach the wrapper.

`api_object` builds the objects handed to programs (files, locks, namespaces, sockets): a bundle of
wrapped closures with no reachable state, no constructor worth calling and no subclassing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from seattle.vessel import errors, status
from seattle.vessel.child import tracebacks

if TYPE_CHECKING:
    from seattle.vessel.child.context import VesselContext

F = TypeVar("F", bound=Callable[..., Any])

#: The largest integer any API argument may hold: file offsets and sizes must fit an off_t / ssize_t, so
#: a larger value is refused as an argument error instead of surfacing as an OverflowError from the OS.
MAX_INT = 2**63 - 1

_TYPE_NAME = type.__dict__["__name__"]


def type_name(value: object) -> str:
    """The name of `value`'s type, read without running any attribute hook of a user class."""
    name: str = _TYPE_NAME.__get__(type(value))
    return name


def _wrong_type(name: str, expected: str, value: object) -> errors.RepyArgumentError:
    return errors.RepyArgumentError(f"{name} must be {expected}, not {type_name(value)}")


def require_str(value: object, name: str, *, max_length: int | None = None, allow_empty: bool = True) -> str:
    """`value` as a str; an exact `str` only, so no user method runs while we use it."""
    if type(value) is not str:
        raise _wrong_type(name, "a str", value)
    if not allow_empty and not value:
        raise errors.RepyArgumentError(f"{name} must not be empty")
    if max_length is not None and len(value) > max_length:
        raise errors.RepyArgumentError(f"{name} is {len(value)} characters long; the limit is {max_length}")
    return value


def require_str_or_bytes(value: object, name: str, *, max_length: int | None = None) -> bytes:
    """Data as bytes: bytes and bytearray are copied, a str is encoded as UTF-8.

    `max_length` bounds the resulting number of bytes. A str holding a lone surrogate cannot be encoded,
    which is the program's mistake, so it is an argument error rather than a UnicodeEncodeError.
    """
    if type(value) is bytes:
        data = value
    elif type(value) is bytearray:
        data = bytes(value)
    elif type(value) is str:
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            position = exc.start
            raise errors.RepyArgumentError(
                f"{name} cannot be encoded as UTF-8: it holds a lone surrogate at index {position}"
            ) from None
    else:
        raise _wrong_type(name, "bytes or a str", value)
    if max_length is not None and len(data) > max_length:
        raise errors.RepyArgumentError(f"{name} is {len(data)} bytes long; the limit is {max_length}")
    return data


def require_int(value: object, name: str, *, minimum: int | None = 0, maximum: int | None = MAX_INT) -> int:
    """`value` as an int within [minimum, maximum]; the minimum defaults to 0 as in Repy. bool is refused."""
    if type(value) is not int:
        raise _wrong_type(name, "an int", value)
    if minimum is not None and value < minimum:
        raise errors.RepyArgumentError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise errors.RepyArgumentError(f"{name} must be at most {maximum}, got {value}")
    return value


def require_int_or_none(
    value: object, name: str, *, minimum: int | None = 0, maximum: int | None = MAX_INT
) -> int | None:
    """Like `require_int`, but None is allowed too (e.g. readat's "read to the end" size limit)."""
    if value is None:
        return None
    if type(value) is not int:
        raise _wrong_type(name, "an int or None", value)
    return require_int(value, name, minimum=minimum, maximum=maximum)


def require_float(value: object, name: str, *, minimum: float | None = 0.0) -> float:
    """A finite number (exact int or float) as a float, at least `minimum`; bool, NaN and inf are refused."""
    kind = type(value)
    if kind is int:
        try:
            number = float(value)  # type: ignore[arg-type]
        except OverflowError:
            raise errors.RepyArgumentError(f"{name} is too large: {value}") from None
    elif kind is float:
        number = value  # type: ignore[assignment]
    else:
        raise _wrong_type(name, "a number (int or float)", value)
    if not math.isfinite(number):
        raise errors.RepyArgumentError(f"{name} must be a finite number, got {number}")
    if minimum is not None and number < minimum:
        raise errors.RepyArgumentError(f"{name} must be at least {minimum}, got {number}")
    return number


def require_bool(value: object, name: str) -> bool:
    """Exactly True or False; Repy's Bool check, so `1` or `"yes"` is an argument error."""
    if type(value) is not bool:
        raise _wrong_type(name, "True or False", value)
    return value


def require_callable(value: object, name: str) -> Callable[..., Any]:
    """A callable; `callable()` looks at the type's call slot and runs no user code."""
    if not callable(value):
        raise _wrong_type(name, "callable", value)
    return value


def require_list_or_tuple(value: object, name: str) -> tuple[Any, ...]:
    """An exact list or tuple, copied into a new tuple so later changes by the program do not reach us."""
    if type(value) is list or type(value) is tuple:
        return tuple(value)
    raise _wrong_type(name, "a list or tuple", value)


def api_call(ctx: VesselContext, name: str | None = None) -> Callable[[F], F]:
    """Wrap `fn` as the vessel API function `name` (default: its own name).

    The returned function is what programs call. `fn` itself gets `name` as its `__qualname__`, so the
    TypeError Python raises for a wrong number of arguments reads "openfile() missing ..." and can be
    turned into a RepyArgumentError: a TypeError whose traceback stops at the wrapper's frame was raised
    while binding the arguments, before `fn` ran. Every other unexpected exception is an internal fault.
    """

    def decorate(fn: F) -> F:
        api_name = name or fn.__name__
        fn.__name__ = fn.__qualname__ = api_name

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except errors.RepyException as exc:
                error: BaseException = _fresh_repy_error(ctx, api_name, exc)
            except TypeError as exc:
                if exc.__traceback__ is None or exc.__traceback__.tb_next is not None:
                    internal_fault(ctx, api_name, exc)
                error = errors.RepyArgumentError(_message(exc))
            except (MemoryError, RecursionError) as exc:
                # The program's own state (a deep stack, a full heap) made the call fail, not a bug of ours.
                error = type(exc)(f"{api_name}: {_message(exc)}")
            except Exception as exc:
                internal_fault(ctx, api_name, exc)
            # Raised outside the except clauses, so the runtime's exception is not its __context__.
            raise error

        call.__name__ = call.__qualname__ = api_name
        return call  # type: ignore[return-value]

    return decorate


def _message(exc: BaseException) -> str:
    args = exc.args
    if len(args) == 1 and type(args[0]) is str:
        return args[0]
    return str(exc)


def _fresh_repy_error(ctx: VesselContext, api_name: str, exc: errors.RepyException) -> errors.RepyException:
    """A new instance of the same exported class with the same message, and nothing else attached."""
    cls = type(exc)
    if errors.EXPORTED.get(cls.__name__) is not cls:
        internal_fault(ctx, api_name, exc)
    message = _message(exc)
    if cls is errors.RepyArgumentError and not message.startswith(api_name):
        message = f"{api_name}: {message}"
    return cls(message)


def internal_fault(ctx: VesselContext, where: str, exc: BaseException) -> NoReturn:
    """Log a fault of the runtime and end the vessel with EXIT_INTERNAL; the program never sees it."""
    text = tracebacks.format_internal_fault(exc, where)
    try:
        ctx.write_log(text.encode("utf-8", "backslashreplace"))
    except Exception:  # the log may be gone; ending the vessel matters more
        pass
    ctx.exit(status.EXIT_INTERNAL)
    raise errors.InternalRepyError(f"the vessel should have ended after an internal fault in {where}")


def api_object(kind: str, methods: dict[str, Callable[..., Any]]) -> object:
    """An object for programs whose only attributes are `methods` (already wrapped with `api_call`).

    All state lives in the methods' closures, which programs cannot reach (the checker refuses `__`
    names). The object is read-only, its class cannot be subclassed, and calling the class (reachable
    through `type(obj)`) only makes an empty object with no methods: there is no constructor taking file
    descriptors or handles that a program could call with its own arguments.
    """
    cls = api_object_class(kind, tuple(methods))
    obj: object = object.__new__(cls)
    for method_name, method in methods.items():
        object.__setattr__(obj, method_name, method)
    return obj


@functools.cache
def api_object_class(kind: str, method_names: tuple[str, ...]) -> type:
    """The class of `api_object(kind, ...)` objects with these method names (one class per combination).

    Lets a function that takes back an object it handed out (a timer handle, say) check `type(x) is cls`
    before touching it, so a look-up never runs a user-defined `__hash__` or `__eq__`.
    """
    def refuse_change(self: object, attribute: str, value: object = None) -> NoReturn:
        raise errors.RepyArgumentError(f"{kind} objects are read-only (cannot change {attribute!r})")

    def refuse_subclass(cls: type, **kwargs: object) -> NoReturn:
        raise errors.RepyArgumentError(f"{kind} objects cannot be subclassed")

    def describe(self: object) -> str:
        return f"<{kind}>"

    namespace = {
        # __weakref__: the runtime may watch an object to release what it holds when the program drops it.
        "__slots__": (*method_names, "__weakref__"),
        "__setattr__": refuse_change,
        "__delattr__": refuse_change,
        "__init_subclass__": refuse_subclass,
        "__repr__": describe,
        "__module__": "vessel",
        "__doc__": f"A vessel API {kind} object.",
    }
    return type(kind, (), namespace)
