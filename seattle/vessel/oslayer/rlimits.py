"""Kernel resource limits: the OS backstop behind the API's own accounting.

The API counts files, sockets and threads and charges every byte first; these limits are what still
holds if that accounting has a bug or the language layer is bypassed.

RLIMIT_AS (address space) is not RSS: the nanny polices real memory. It stops one huge allocation at
once, but it also counts address space that threads merely reserve. So the limit is

    what the interpreter has mapped now + memory_bytes + THREAD_ALLOWANCE thread stacks + EXTRA_SLACK

which lets THREAD_ALLOWANCE (64) threads start on top of the allotment. glibc would also reserve 64 MiB
of address space for each new malloc arena, one per thread up to eight per core (1 GiB on two cores);
the GIL serialises allocation anyway, so the child is held to one arena and that reservation vanishes.
With glibc's default 8 MiB stacks the slack is about 550 MiB over the allotment; a runtime that calls
`threading.stack_size()` before the layers are applied shrinks it, because the slack is computed from
the stack size threads will really get.

RLIMIT_NPROC counts every task of the real uid, and the kernel ignores it for root, so it is only set
when the child is not root: to the tasks the uid has now plus THREAD_ALLOWANCE. Inside a fresh user
namespace the kernel counts only that namespace's tasks, so there the base is the child alone.
"""

from __future__ import annotations

import ctypes
import os
import resource
import threading

from seattle.vessel.oslayer.libc import LIBC

THREAD_ALLOWANCE = 64
EXTRA_SLACK = 32 * 2**20
_M_ARENA_MAX = -8
_PTHREAD_ATTR_BYTES = 128  # larger than pthread_attr_t on every glibc target (56 on x86_64, 64 on arm64)


def mapped_bytes() -> int:
    """The address space this process has mapped now (VmSize)."""
    with open("/proc/self/statm", "rb") as statm:
        pages = int(statm.read().split()[0])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _default_thread_stack() -> int:
    """Stack plus guard that glibc reserves for a thread created without an explicit size."""
    attr = ctypes.create_string_buffer(_PTHREAD_ATTR_BYTES)
    if LIBC.pthread_getattr_default_np(attr) != 0:
        raise OSError("pthread_getattr_default_np failed")
    try:
        stack, guard = ctypes.c_size_t(), ctypes.c_size_t()
        LIBC.pthread_attr_getstacksize(attr, ctypes.byref(stack))
        LIBC.pthread_attr_getguardsize(attr, ctypes.byref(guard))
        return stack.value + guard.value
    finally:
        LIBC.pthread_attr_destroy(attr)


def thread_reservation() -> int:
    """Address space one new Python thread reserves: `threading.stack_size()` if set, else glibc's default."""
    explicit = threading.stack_size()
    if explicit:
        return explicit + os.sysconf("SC_PAGE_SIZE")
    return _default_thread_stack()


def address_space_limit(memory_bytes: int) -> int:
    """The RLIMIT_AS this process would get for an allotment of `memory_bytes` (see the module doc)."""
    return mapped_bytes() + memory_bytes + THREAD_ALLOWANCE * thread_reservation() + EXTRA_SLACK


def tasks_of_user(uid: int) -> int:
    """Threads of every process whose real uid is `uid`: what RLIMIT_NPROC counts.

    Every process's status is read (about 25 µs each): the owner of a /proc directory would be a cheaper
    filter, but it shows root for a non-dumpable process, such as one that has just changed its uid.
    """
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as status:
                fields = dict(line.split(b":", 1) for line in status.read().splitlines() if b":" in line)
        except OSError:
            continue  # the process ended while we looked
        if int(fields[b"Uid"].split()[0]) == uid:
            total += int(fields[b"Threads"])
    return total


def _lower(limit: int, wanted: int) -> None:
    """Set soft and hard `limit` to `wanted`, or to the current hard limit if that is already lower."""
    _, hard = resource.getrlimit(limit)
    value = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(limit, (value, value))


def apply_rlimits(
    memory_bytes: int, max_open_files: int, max_file_bytes: int, *, own_user_namespace: bool
) -> None:
    """Set RLIMIT_AS, NOFILE, FSIZE and (when not root) NPROC; hold malloc to a single arena first."""
    LIBC.mallopt(ctypes.c_int(_M_ARENA_MAX), ctypes.c_int(1))
    _lower(resource.RLIMIT_AS, address_space_limit(memory_bytes))
    _lower(resource.RLIMIT_NOFILE, max_open_files)
    _lower(resource.RLIMIT_FSIZE, max_file_bytes)
    uid = os.getuid()
    if uid != 0:
        base = len(os.listdir("/proc/self/task")) if own_user_namespace else tasks_of_user(uid)
        _lower(resource.RLIMIT_NPROC, base + THREAD_ALLOWANCE)
