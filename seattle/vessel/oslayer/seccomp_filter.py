"""The seccomp filter: the system calls a vessel never needs fail with EPERM, everything else runs.

It is installed last, after every other layer has used the calls it forbids (unshare, socket writes to
/proc, prctl). Each group below says why it is denied:

* new programs and processes: execve, execveat, fork, vfork, and clone without CLONE_THREAD (threads
  stay possible). clone3 gets ENOSYS rather than EPERM, because its flags sit in memory a filter cannot
  read; glibc then falls back to clone, whose flags the filter can check;
* reaching into other processes: ptrace, process_vm_readv/writev, kcmp, pidfd_open/getfd/send_signal;
  kill, tgkill and rt_(tg)sigqueueinfo only towards the child's own pid; tkill not at all; and the
  calls that change another process's limits or scheduling (prlimit64, sched_set*, setpriority,
  ioprio_set) only on itself. Without this a vessel could SIGSTOP its own supervisor and escape the
  CPU throttle, or kill(-1) every process of the donor's uid;
* namespaces and mounts: unshare, setns, mount, umount2, pivot_root, chroot and the new mount API;
* kernel attack surface a program has no use for: bpf, perf_event_open, userfaultfd, io_uring_*,
  keyctl/add_key/request_key, module loading, kexec, reboot, swapon/off, acct, syslog, quotactl,
  iopl/ioperm, the clock setters, sethostname/setdomainname, open_by_handle_at, fanotify_init, mknod,
  vhangup; personality except its read-only query; ioctl TIOCSTI/TIOCLINUX (typing into a terminal);
* sockets: socket and socketpair for every family, and what would give a socket another address or
  peer, or change its options: bind, connect, listen, accept, accept4, setsockopt. The child holds the
  broker socketpair and the sockets the broker made for it after its checks (bound UDP listeners,
  connected TCP streams; docs/sandbox-layers.md, "The network path"), and may only send and receive on
  them: a listener cannot be re-bound to a port outside messport, a stream cannot be pointed at another
  host, SO_BROADCAST stays off (so the kernel refuses a broadcast), and multicast keeps its TTL of 1.
  sendmsg and sendmmsg are denied too (the child sends with send/sendto; sendmsg could pass descriptors
  on); recvmsg stays, since the broker's replies bring the sockets (SCM_RIGHTS).

System calls of another architecture (the 32-bit x86 ABI, x32) kill the process: a deny list for the
native numbers would otherwise be bypassed by `int 0x80`.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import struct
from collections.abc import Iterable

from seattle.vessel.oslayer.libc import LIBC, checked

try:
    import pyseccomp
except (ImportError, RuntimeError) as exc:  # RuntimeError: pyseccomp found no libseccomp.so.2
    pyseccomp = None
    IMPORT_ERROR = f"pyseccomp cannot load libseccomp ({exc}); install Debian's libseccomp2"
else:
    IMPORT_ERROR = ""

CLONE_THREAD = 0x00010000
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
PERSONALITY_QUERY = 0xFFFFFFFF
PRIO_PROCESS = 0
IOPRIO_WHO_PROCESS = 1

DENIED = (
    "execve", "execveat", "fork", "vfork",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "tkill",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "keyctl", "add_key", "request_key", "init_module", "finit_module", "delete_module",
    "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "acct", "syslog", "quotactl",
    "iopl", "ioperm", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname", "open_by_handle_at", "fanotify_init", "mknod", "mknodat", "vhangup",
    "socket", "socketpair", "bind", "connect", "listen", "accept", "accept4", "setsockopt",
    "sendmsg", "sendmmsg",
)  # fmt: skip

# System call -> argument index that must equal the child's own pid.
OWN_PID_ARGUMENT = {"kill": 0, "tgkill": 0, "rt_sigqueueinfo": 0, "rt_tgsigqueueinfo": 0}

# (system call, argument index, the only value allowed there): the value that means "this process".
ONLY_VALUE = (
    ("prlimit64", 0, 0),
    ("sched_setaffinity", 0, 0),
    ("sched_setscheduler", 0, 0),
    ("sched_setparam", 0, 0),
    ("sched_setattr", 0, 0),
    ("setpriority", 0, PRIO_PROCESS),
    ("setpriority", 1, 0),
    ("ioprio_set", 0, IOPRIO_WHO_PROCESS),
    ("ioprio_set", 1, 0),
    ("personality", 0, PERSONALITY_QUERY),
)


def _native_numbers(names: Iterable[str]) -> dict[str, int]:
    """Name -> number for the calls this architecture has (fork, iopl... do not exist on aarch64).

    Resolved once at import, in the zygote, so that building a child's filter costs no name lookups.
    """
    numbers = {name: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) for name in names}
    return {name: number for name, number in numbers.items() if number >= 0}


_CONDITIONAL = ("clone3", "clone", "ioctl", *OWN_PID_ARGUMENT, *(name for name, _, _ in ONLY_VALUE))
NUMBERS = _native_numbers((*DENIED, *_CONDITIONAL)) if pyseccomp is not None else {}


def _deny(syscall_filter: pyseccomp.SyscallFilter, action: int, name: str, *args: pyseccomp.Arg) -> None:
    if name in NUMBERS:  # a call this architecture lacks needs no rule
        syscall_filter.add_rule(action, NUMBERS[name], *args)


def build_filter(own_pid: int) -> pyseccomp.SyscallFilter:
    """The vessel filter for a child whose pid is `own_pid`, ready to load."""
    eperm = pyseccomp.ERRNO(errno.EPERM)
    arg, ne, masked_eq = pyseccomp.Arg, pyseccomp.NE, pyseccomp.MASKED_EQ
    syscall_filter = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    syscall_filter.set_attr(pyseccomp.Attr.ACT_BADARCH, pyseccomp.KILL_PROCESS)
    try:
        syscall_filter.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, 2)  # a binary tree: cost grows with log(rules)
    except OSError:
        pass  # libseccomp < 2.5 has only the linear layout; the filter is the same, a little slower
    for name in DENIED:
        _deny(syscall_filter, eperm, name)
    _deny(syscall_filter, pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    _deny(syscall_filter, eperm, "clone", arg(0, masked_eq, CLONE_THREAD, 0))
    for request in (TIOCSTI, TIOCLINUX):
        _deny(syscall_filter, eperm, "ioctl", arg(1, masked_eq, 0xFFFFFFFF, request))
    for name, index in OWN_PID_ARGUMENT.items():
        _deny(syscall_filter, eperm, name, arg(index, ne, own_pid))
    for name, index, allowed in ONLY_VALUE:
        _deny(syscall_filter, eperm, name, arg(index, ne, allowed))
    return syscall_filter


#: Stands for the child's pid in the compiled template; no pid or other constant of the filter equals it.
PID_PLACEHOLDER = 0x7EA5C0DE
_INSTRUCTION = struct.Struct("=HBBI")  # struct sock_filter: code, jt, jf, k
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_char_p))


@functools.cache
def compiled_template() -> bytes:
    """The filter compiled to BPF once, with PID_PLACEHOLDER where the child's pid goes.

    libseccomp takes about two milliseconds to build and compile the filter; the zygote does it once and
    every child only patches its pid into a copy, which keeps the compile off each vessel's start path.
    """
    fd = os.memfd_create("seattle-seccomp-template", os.MFD_CLOEXEC)
    with os.fdopen(fd, "w+b") as exported:
        build_filter(PID_PLACEHOLDER).export_bpf(exported)
        exported.seek(0)
        return exported.read()


def program_for(own_pid: int) -> bytes:
    """The compiled filter for a child whose pid is `own_pid`."""
    template = compiled_template()
    patched = bytearray(template)
    replaced = 0
    for offset in range(0, len(template), _INSTRUCTION.size):
        code, jt, jf, k = _INSTRUCTION.unpack_from(template, offset)
        if k == PID_PLACEHOLDER:
            _INSTRUCTION.pack_into(patched, offset, code, jt, jf, own_pid)
            replaced += 1
    # The optimiser may share one comparison among the signal calls, so one slot or more is right; none
    # would mean the placeholder was compiled into something we do not recognise.
    if not replaced:
        raise OSError(errno.EINVAL, "the compiled seccomp template holds no pid comparison")
    return bytes(patched)


def install(own_pid: int) -> None:
    """Load the vessel filter into this process (no_new_privs must be set). OSError if the kernel refuses it."""
    program = program_for(own_pid)
    fprog = _SockFprog(len(program) // _INSTRUCTION.size, program)
    checked(LIBC.prctl, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0, what="load seccomp filter")


def probe() -> None:
    """Load a one-rule filter, as a capability test: run it only in a throwaway process."""
    syscall_filter = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    syscall_filter.add_rule(pyseccomp.ERRNO(errno.EPERM), "acct")
    syscall_filter.load()
