"""The C library handle the OS layers call through, and the one way to turn its errors into OSError.

The layers need a handful of calls that the `os` module does not offer (prctl, unshare, capset, raw
syscall numbers for Landlock, mallopt). Loading libc once, at import time, keeps `dlopen` out of the
forked child: the zygote imports this module, so a child only calls functions that are already bound.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

LIBC = ctypes.CDLL(None, use_errno=True)


def checked(function: Callable[..., int], *args: object, what: str) -> int:
    """Call a libc function that returns -1 and sets errno on failure; raise OSError naming `what`."""
    ctypes.set_errno(0)
    result = function(*args)
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result
