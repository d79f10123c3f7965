"""Move the child into a network namespace of its own: no interface, not even a working loopback.

The child never needs the network namespace itself: the supervisor's broker makes every socket the child
uses (in the host's namespace, after its checks) and hands it over the socketpair the child already holds;
a socket keeps the namespace it was made in, so both keep working across the move. A fresh network
namespace has only a `lo` that is down, so even if a socket could be made, nothing is reachable. A new
IPC namespace comes with it for free and hides the host's SysV shared memory and message queues.

Root (more exactly: CAP_SYS_ADMIN) can unshare the network namespace directly. An unprivileged process
must first create a user namespace, which grants it capabilities over namespaces it then owns; its own
uid and gid are mapped to themselves, so files keep their owners and the child does not pose as root.
"""

from __future__ import annotations

import ctypes
import os

from seattle.vessel.oslayer.capabilities import CAP_SYS_ADMIN, has_capability
from seattle.vessel.oslayer.libc import LIBC, checked

CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
ISOLATION_FLAGS = CLONE_NEWNET | CLONE_NEWIPC


def unshare(flags: int) -> None:
    checked(LIBC.unshare, ctypes.c_int(flags), what=f"unshare({flags:#x})")


def _write_proc_self(name: str, text: str) -> None:
    """One write(2) per file: the kernel accepts an id map only as a single write."""
    fd = os.open(f"/proc/self/{name}", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    except OSError as exc:
        raise OSError(exc.errno, f"writing /proc/self/{name}: {exc.strerror}") from None
    finally:
        os.close(fd)


def enter_user_namespace() -> None:
    """Create a user namespace that maps this process's uid and gid to themselves."""
    uid, gid = os.geteuid(), os.getegid()
    unshare(CLONE_NEWUSER)
    _write_proc_self("setgroups", "deny")
    _write_proc_self("uid_map", f"{uid} {uid} 1\n")
    _write_proc_self("gid_map", f"{gid} {gid} 1\n")


def isolate_network() -> bool:
    """Enter new network and IPC namespaces. Returns True if a new user namespace had to be created first.

    Must run while the process has one thread: the kernel refuses a user namespace to a threaded process.
    """
    if has_capability(CAP_SYS_ADMIN):
        unshare(ISOLATION_FLAGS)
        return False
    enter_user_namespace()
    unshare(ISOLATION_FLAGS)
    return True
