"""Landlock, through its three system calls: the filesystem, TCP and signal walls of the child.

Our own ctypes module rather than a PyPI one, because the only package (landlock 1.0.0.dev5) covers the
filesystem alone and rejects file (not directory) rules. Landlock needs no privilege beyond
no_new_privs, and once `restrict_self` has run, neither this thread nor anything it starts can undo it.
It confines only the calling thread and its future children, so it must run before any thread starts.

The ruleset handles every access right the running kernel knows (its ABI version), so whatever is not
granted by a rule is denied:

* read-only (read files, list directories) beneath the interpreter's paths;
* read-write beneath the vessel directory: read, write, truncate, create and remove regular files.
  Repy file names never contain a '/', so no right to make directories, and no symlinks, devices,
  sockets or fifos, which could otherwise point out of or into the vessel;
* ABI >= 4: TCP bind and connect are handled with no port allowed; the broker socket is AF_UNIX;
* ABI >= 6: signals and abstract unix sockets are scoped, so the child cannot signal or connect to
  any process outside its own Landlock domain (its supervisor included).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
from collections.abc import Iterable
from pathlib import Path

from seattle.vessel.oslayer.libc import LIBC, checked

# (landlock_create_ruleset, landlock_add_rule, landlock_restrict_self). The numbers were allocated after
# the syscall tables were unified, so they are the generic ones on both architectures.
SYSCALL_NUMBERS: dict[str, tuple[int, int, int]] = {
    "x86_64": (444, 445, 446),
    "aarch64": (444, 445, 446),
}

CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH = 1

ACCESS_FS_EXECUTE = 1 << 0
ACCESS_FS_WRITE_FILE = 1 << 1
ACCESS_FS_READ_FILE = 1 << 2
ACCESS_FS_READ_DIR = 1 << 3
ACCESS_FS_REMOVE_DIR = 1 << 4
ACCESS_FS_REMOVE_FILE = 1 << 5
ACCESS_FS_MAKE_CHAR = 1 << 6
ACCESS_FS_MAKE_DIR = 1 << 7
ACCESS_FS_MAKE_REG = 1 << 8
ACCESS_FS_MAKE_SOCK = 1 << 9
ACCESS_FS_MAKE_FIFO = 1 << 10
ACCESS_FS_MAKE_BLOCK = 1 << 11
ACCESS_FS_MAKE_SYM = 1 << 12
ACCESS_FS_REFER = 1 << 13  # ABI 2
ACCESS_FS_TRUNCATE = 1 << 14  # ABI 3
ACCESS_FS_IOCTL_DEV = 1 << 15  # ABI 5
ACCESS_NET_BIND_TCP = 1 << 0  # ABI 4
ACCESS_NET_CONNECT_TCP = 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

# Rights that apply to a file itself (a rule on a non-directory may hold only these).
_FILE_RIGHTS = ACCESS_FS_EXECUTE | ACCESS_FS_WRITE_FILE | ACCESS_FS_READ_FILE | ACCESS_FS_TRUNCATE
READ_ONLY = ACCESS_FS_READ_FILE | ACCESS_FS_READ_DIR
READ_WRITE = (
    READ_ONLY | ACCESS_FS_WRITE_FILE | ACCESS_FS_TRUNCATE | ACCESS_FS_MAKE_REG | ACCESS_FS_REMOVE_FILE
)


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


class LandlockUnsupported(OSError):
    """Landlock cannot be used here; the message says why, in words an operator can act on."""


def _numbers() -> tuple[int, int, int]:
    machine = platform.machine()
    if machine not in SYSCALL_NUMBERS:
        raise LandlockUnsupported(f"no Landlock system call numbers are known for the {machine} architecture")
    return SYSCALL_NUMBERS[machine]


def abi_version() -> int:
    """The Landlock ABI the kernel offers; LandlockUnsupported with the reason if it offers none."""
    create, _, _ = _numbers()
    ctypes.set_errno(0)
    flags = ctypes.c_uint32(CREATE_RULESET_VERSION)
    version: int = LIBC.syscall(ctypes.c_long(create), None, ctypes.c_size_t(0), flags)
    if version >= 1:
        return version
    code = ctypes.get_errno()
    if code == errno.ENOSYS:
        raise LandlockUnsupported("the kernel has no Landlock system calls (Linux < 5.13, or built without)")
    if code == errno.EOPNOTSUPP:
        raise LandlockUnsupported("Landlock is built into the kernel but off (add it to the lsm= boot list)")
    raise LandlockUnsupported(f"the Landlock version query failed: {os.strerror(code)}")


def handled_fs(abi: int) -> int:
    """Every filesystem right the kernel's ABI knows."""
    rights = (ACCESS_FS_MAKE_SYM << 1) - 1
    if abi >= 2:
        rights |= ACCESS_FS_REFER
    if abi >= 3:
        rights |= ACCESS_FS_TRUNCATE
    if abi >= 5:
        rights |= ACCESS_FS_IOCTL_DEV
    return rights


def _ruleset_attr(abi: int) -> tuple[_RulesetAttr, int]:
    """The attribute and the size to pass: older kernels reject a struct with fields they do not know."""
    attr = _RulesetAttr(handled_fs(abi), 0, 0)
    size = 8
    if abi >= 4:
        attr.handled_access_net = ACCESS_NET_BIND_TCP | ACCESS_NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        size = 24
    return attr, size


def _add_path_rule(ruleset_fd: int, path: Path, rights: int, handled: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot open {path} for a rule: {exc.strerror}") from None
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= _FILE_RIGHTS
        rule = _PathBeneathAttr(rights & handled, fd)
        _, add_rule, _ = _numbers()
        checked(
            LIBC.syscall,
            ctypes.c_long(add_rule),
            ctypes.c_int(ruleset_fd),
            ctypes.c_int(RULE_PATH_BENEATH),
            ctypes.byref(rule),
            ctypes.c_uint32(0),
            what=f"landlock_add_rule({path})",
        )
    finally:
        os.close(fd)


def restrict(readonly: Iterable[Path], readwrite: Iterable[Path], abi: int) -> None:
    """Confine this thread (and all it starts later) to the given paths, no TCP, scoped signals."""
    create, _, restrict_self = _numbers()
    attr, size = _ruleset_attr(abi)
    ruleset_fd = checked(
        LIBC.syscall,
        ctypes.c_long(create),
        ctypes.byref(attr),
        ctypes.c_size_t(size),
        ctypes.c_uint32(0),
        what="landlock_create_ruleset",
    )
    try:
        for path in readonly:
            _add_path_rule(ruleset_fd, path, READ_ONLY, attr.handled_access_fs)
        for path in readwrite:
            _add_path_rule(ruleset_fd, path, READ_WRITE, attr.handled_access_fs)
        checked(
            LIBC.syscall,
            ctypes.c_long(restrict_self),
            ctypes.c_int(ruleset_fd),
            ctypes.c_uint32(0),
            what="landlock_restrict_self",
        )
    finally:
        os.close(ruleset_fd)
