"""The paths the interpreter must still be able to read once Landlock has confined the child.

The runtime imports every module it needs before the layers go on, so what remains is what CPython and
the C library may open later on their own: stdlib modules imported lazily (an encoding looked up by
`str.encode`, for one), extension modules and the shared libraries they link, found through
/etc/ld.so.cache. So: the standard library, what sys.path names, the seattle package, the system
library directories, and two devices: /dev/null for code that opens it, /dev/urandom for kernels
without getrandom(2), where CPython falls back to it.

Less is better. Not the Python prefixes as a whole (their bin/, include/ and share/ serve no running
interpreter); not /etc, /home, /root or /tmp; and not /proc/self, whose maps and environ would only
tell a program about its host (CPython 3.11 and glibc read nothing there after start-up).
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig
from pathlib import Path

import seattle

SYSTEM_PATHS = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/etc/ld.so.cache", "/dev/null", "/dev/urandom")


@functools.cache
def default_readonly_paths() -> tuple[Path, ...]:
    """Existing, resolved, de-duplicated: the stdlib, sys.path, the seattle package, system libraries.

    Cached: it takes milliseconds (sysconfig, path resolution), and the zygote computes it once so that no
    forked vessel pays for it on its start path.
    """
    candidates = [
        sysconfig.get_path("stdlib"),
        sysconfig.get_path("platstdlib"),
        *(entry for entry in sys.path if entry),
        str(Path(seattle.__file__).parent),  # an editable install finds the package outside sys.path
        *SYSTEM_PATHS,
    ]
    seen: dict[Path, None] = {}
    for candidate in candidates:
        path = Path(candidate)
        if path.is_absolute() and os.path.exists(path):  # False, not an error, where we may not look
            seen.setdefault(path.resolve(), None)
    return tuple(seen)
