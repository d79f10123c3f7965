"""The steps every sandboxed child takes, whatever layers the plan asks for.

`no_new_privs` is what lets an unprivileged process install seccomp and Landlock at all, and it makes
sure no later `execve` (if one ever got through) could gain privileges from a setuid binary. The death
signal ties the child's life to its supervisor: if the supervisor dies, nobody is left to throttle or
account for the child, so the kernel kills it. A core dump of a vessel would write the program's memory
to the donor's disk outside the vessel's quota, so RLIMIT_CORE is 0.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal

from seattle.vessel.oslayer.libc import LIBC, checked

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39


def prctl(option: int, arg: int = 0, *, what: str) -> int:
    """prctl(2) with one argument; the unused ones are passed as 0 as the kernel requires."""
    zero = ctypes.c_ulong(0)
    return checked(LIBC.prctl, ctypes.c_int(option), ctypes.c_ulong(arg), zero, zero, zero, what=what)


def thread_count() -> int:
    """Threads of this process, as the kernel sees them (C threads included, not only Python's)."""
    return len(os.listdir("/proc/self/task"))


def harden_process() -> None:
    """Set no_new_privs, the parent-death signal (SIGKILL) and a zero core-file size."""
    prctl(PR_SET_NO_NEW_PRIVS, 1, what="prctl(PR_SET_NO_NEW_PRIVS)")
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL, what="prctl(PR_SET_PDEATHSIG)")
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
