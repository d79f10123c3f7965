"""Drop every Linux capability of the child, so a vessel started by a root daemon is not root in power.

A node manager may run as root. Its vessels then run as uid 0, and uid 0 with capabilities can do
things no layer below is built to stop: change the clock, load kernel keys, read the kernel log, open
any file by handle, mknod a disk device. Emptying the effective, permitted, inheritable and ambient
sets (and the bounding set where we may) leaves a uid-0 process with only what file ownership gives it.
This runs after the namespaces layer, which needs CAP_SYS_ADMIN as root, and before everything else.
"""

from __future__ import annotations

import ctypes
import errno

from seattle.vessel.oslayer.baseline import prctl
from seattle.vessel.oslayer.libc import LIBC, checked

CAP_SETPCAP = 8
CAP_SYS_ADMIN = 21
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def _header() -> _CapHeader:
    return _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)


def effective_capabilities() -> int:
    """The effective capability set of this thread, as a bit mask (bit n = capability n)."""
    data = (_CapData * 2)()
    checked(LIBC.capget, ctypes.byref(_header()), data, what="capget")
    mask: int = data[0].effective | (data[1].effective << 32)
    return mask


def has_capability(capability: int) -> bool:
    return bool(effective_capabilities() >> capability & 1)


def _drop_bounding_set() -> None:
    """Drop capabilities 0, 1, ... from the bounding set until the kernel says the number is past its last."""
    capability = 0
    while True:
        try:
            prctl(PR_CAPBSET_DROP, capability, what=f"prctl(PR_CAPBSET_DROP, {capability})")
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return
            raise
        capability += 1


def drop_all_capabilities() -> None:
    """Empty every capability set of this process (dropping needs no privilege, except the bounding set)."""
    if has_capability(CAP_SETPCAP):
        _drop_bounding_set()
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, what="prctl(PR_CAP_AMBIENT_CLEAR_ALL)")
    checked(LIBC.capset, ctypes.byref(_header()), (_CapData * 2)(), what="capset")
