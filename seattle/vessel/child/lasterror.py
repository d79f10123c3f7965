"""What getlasterror() returns outside an except block: the exception a thread's program code last handled.

Repy ran on Python 2, where `sys.exc_info()` still names the handled exception after its except block ends,
so programs call getlasterror() after the block (for instance in a helper that logs "what went wrong"). Python
3 forgets the exception at the end of the block. To keep that behaviour, the checked program's every except
handler starts with a call to a hook that remembers the exception it handles, per thread.

The hook is inserted into the tree after the checker has passed it, under a name that is not an identifier
(`HOOK`), which a program can neither write nor look up; it reaches the program through the builtins mapping
that `safe_builtins.make_builtins` builds. It copies the first statement's position, so line numbers in
tracebacks stay the user's own.
"""

from __future__ import annotations

import ast
import sys
import threading
from collections.abc import Iterable

#: The hook's name in the builtins mapping; not an identifier, so no program source can name it.
HOOK = "$handled"

_last = threading.local()


def note_handled() -> None:
    """The hook: remember the exception this thread's program code is handling now."""
    _last.error = sys.exc_info()[1]


def last_handled() -> BaseException | None:
    """The exception this thread last handled in program code, or None."""
    error: BaseException | None = getattr(_last, "error", None)
    return error


def instrument(handlers: Iterable[ast.ExceptHandler]) -> None:
    """Start every one of a checked tree's except `handlers` (the checker's walk collects them) with a call to
    the hook."""
    for node in handlers:
        if node.body:
            first = node.body[0]
            name = ast.Name(HOOK, ast.Load())
            call = ast.Call(name, [], [])
            statement = ast.Expr(call)
            for piece in (name, call, statement):
                ast.copy_location(piece, first)
            node.body.insert(0, statement)
