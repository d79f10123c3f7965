"""`_context`: a program's own global namespace as a mapping, as the original gave it to programs and libraries.

The original's programs ran in a SafeDict that they could also reach by name, `_context`; its libraries (and
dylink itself) read and wrote global names through it. Here the globals are a real dict (the interpreter
needs one), and `_context` is a view of it that applies the checker's rule for names to every key, read or
written: an exact str without `__`. So the view reaches exactly the names the program could have spelled
itself, and never `__builtins__` or `__name__`, which the runtime keeps in the same dict.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NoReturn, TypeGuard

from seattle.vessel import errors
from seattle.vessel.child.api.checks import type_name

_MISSING = object()


def is_global_name(key: object) -> TypeGuard[str]:
    """Whether `key` is a name a program could write itself: an exact str without `__`."""
    return type(key) is str and "__" not in key


def _checked(key: object) -> str:
    if type(key) is not str:
        raise errors.ContextUnsafeError(f"_context keys must be str, not {type_name(key)}")
    if "__" in key:
        raise errors.ContextUnsafeError(f"_context key {key!r} is unsafe: it holds '__'")
    return key


class GlobalsView:
    """The global names of one program or library, read and written with the checker's rule for names."""

    # Name-mangled (`_GlobalsView__names`): the checker refuses `__` in any name, so programs cannot reach
    # the dict itself (and with it `__builtins__`).
    __slots__ = ("__names",)

    def __init__(self, names: dict[str, Any]) -> None:
        self.__names = names

    def __init_subclass__(cls, **kwargs: object) -> NoReturn:
        raise errors.RepyArgumentError("_context's class cannot be subclassed")

    def __getitem__(self, key: object) -> Any:
        if not is_global_name(key):
            raise KeyError(key)
        return self.__names[key]

    def __setitem__(self, key: object, value: Any) -> None:
        self.__names[_checked(key)] = value

    def __delitem__(self, key: object) -> None:
        if not is_global_name(key):
            raise KeyError(key)
        del self.__names[key]

    def __contains__(self, key: object) -> bool:
        return is_global_name(key) and key in self.__names

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __repr__(self) -> str:
        return "<_context>"

    def keys(self) -> list[str]:
        return [key for key in self.__names if is_global_name(key)]

    def values(self) -> list[Any]:
        return [value for key, value in self.__names.items() if is_global_name(key)]

    def items(self) -> list[tuple[str, Any]]:
        return [(key, value) for key, value in self.__names.items() if is_global_name(key)]

    def get(self, key: object, default: Any = None) -> Any:
        if not is_global_name(key):
            return default
        return self.__names.get(key, default)

    def has_key(self, key: object) -> bool:
        return key in self

    def pop(self, key: object, default: Any = _MISSING) -> Any:
        if is_global_name(key) and key in self.__names:
            return self.__names.pop(key)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def setdefault(self, key: object, default: Any = None) -> Any:
        return self.__names.setdefault(_checked(key), default)

    def update(self, other: object) -> None:
        """Copy the items of a dict or another mapping of names; every key is checked before any is written."""
        if type(other) is dict:
            items = list(other.items())
        elif type(other) is GlobalsView:
            items = other.items()
        else:
            raise errors.RepyArgumentError(f"update()'s argument must be a dict, not {type_name(other)}")
        for key, _ in items:
            _checked(key)
        self.__names.update(items)

    def copy(self) -> dict[str, Any]:
        return dict(self.items())
