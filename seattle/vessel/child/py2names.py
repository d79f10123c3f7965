"""The Python 2 builtins a translated original-dialect program still names at run time.

The translator (`dialect`) rewrites what has a mechanical Python 3 spelling (`d.has_key(k)` becomes `k in d`,
no dict is patched); what is left are names, and they are here, added to the safe builtins of original-dialect
programs only. Each is a plain function or an existing safe builtin: none reaches anything the safe builtins
do not already offer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def cmp(a: Any, b: Any) -> int:
    """Python 2's cmp(): -1, 0 or 1."""
    order: int = (a > b) - (a < b)
    return order


def py2div(a: Any, b: Any) -> Any:
    """Python 2's `/` (the translator rewrites every `/` into this): floor division when both sides are ints."""
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    return a / b


def reduce(function: Callable[[Any, Any], Any], sequence: Any, *initial: Any) -> Any:
    """Python 2's builtin reduce (functools.reduce in Python 3)."""
    return functools.reduce(function, sequence, *initial)


def original_builtins() -> dict[str, object]:
    """The names to add to an original-dialect program's builtins."""
    return {
        "xrange": range,
        "long": int,
        "unicode": str,
        "basestring": str,
        "unichr": chr,
        "StandardError": Exception,
        "cmp": cmp,
        "reduce": reduce,
        "py2div": py2div,
    }
