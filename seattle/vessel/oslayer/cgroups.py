"""The cgroup layer: the kernel holds a vessel to its `cpu` and `memory` allotment, without stopping it for long.

Where the host lets us create control groups, each vessel's process runs in a group of its own whose CPU
bandwidth is `quota = cpu × period` per `period` and whose memory limit is the `memory` allotment. The
kernel's scheduler then throttles the vessel in slices of at most one period (milliseconds), where the nanny's
SIGSTOP pauses last the vessel's debt divided by its share (tens of milliseconds at cpu 0.02), which is what
stalled a vessel's network work. The memory limit is the hard backstop behind the nanny's charge: the
kernel's OOM killer ends a vessel over it at once, between two of the nanny's polls.

Two kinds of host give us groups:

* cgroup v2 (one unified hierarchy), where `cpu` and `memory` are enabled and the subtree is ours: the root
  group when we are root and run in it, or a group delegated to us (systemd marks one made with
  `Delegate=yes` with the extended attribute `trusted.delegate` or `user.delegate`; `seattle node service
  install` writes such a unit). v2 forbids processes in a group that hands controllers to its children, so
  the first supervisor moves the daemon's own processes into a leaf, `seattle-host`, before creating the
  vessels' groups beside it.
* cgroup v1 (one hierarchy per controller; "hybrid" hosts mount v1 controllers and an empty v2), where the
  `cpu` and `memory` hierarchies are writable at the groups we run in: each vessel gets a group in each,
  plus one in `cpuacct` (for its CPU usage) when that hierarchy is writable too.

Elsewhere, or when `SEATTLE_CGROUPS=off` is in the environment (tests and benchmarks use it to exercise the
fallback), the nanny throttles with SIGSTOP/SIGCONT as before. Groups are named `seattle-vessel.<supervisor
pid>` under the group the daemon runs in; a supervisor removes its group when its vessel has ended, and
`remove_leftovers` (run by each new zygote) removes the empty groups whose supervisor is gone.

The period: the kernel accepts quotas of at least 1 ms, so a vessel's period is `PERIOD_US`, lengthened to
`1 ms / cpu` for small shares (50 ms at cpu 0.02). A busy vessel then runs one quota and waits the rest of the
period; a vessel whose average use stays under its share (a ping responder) is never throttled, because its
use within one period stays under the quota. docs/sandbox-layers.md gives the measurements behind
PERIOD_US.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

#: Names every group this module creates; nothing else under a base directory is ever touched.
PREFIX = "seattle-vessel."
#: The v2 leaf the daemon's own processes move into, so that their group may hand controllers to vessels.
HOST_LEAF = "seattle-host"
#: `SEATTLE_CGROUPS=off` switches the layer off: vessels get the nanny's throttle, as on a host without groups.
SWITCH_VARIABLE = "SEATTLE_CGROUPS"
#: The CPU bandwidth period for shares that allow it (see the module docstring and docs/sandbox-layers.md).
PERIOD_US = 5_000
#: The kernel refuses a quota below 1 ms and a period above 1 s.
MIN_QUOTA_US = 1_000
MAX_PERIOD_US = 1_000_000
#: After its last process exits a group may stay busy for a moment; removal retries this long.
REMOVE_PATIENCE = 2.0

_V1_ROOT_CONTROLLERS = ("cpu", "memory")
_DELEGATION_ATTRIBUTES = ("trusted.delegate", "user.delegate")


class CgroupError(OSError):
    """A group could not be created, configured or joined; the vessel must not start half-limited."""


@dataclass(frozen=True)
class CgroupSupport:
    """Which cgroup layer this host offers, and the one sentence `seattle vessel doctor` shows for it.

    kind: "v2", "v1" or "none" (the nanny throttles).
    bases: v2: (the directory the vessels' groups go in,); v1: the cpu, memory and (optional) cpuacct
        directories, in that order, each the group this process runs in within that hierarchy.
    host_leaf: v2 only: the leaf the daemon's processes must be in first (None when the base is the root).
    """

    kind: str
    reason: str
    bases: tuple[Path, ...] = ()
    host_leaf: Path | None = None

    @property
    def available(self) -> bool:
        return self.kind != "none"


def cpu_bandwidth(cpu: float) -> tuple[int, int]:
    """(quota, period) in microseconds for a share of `cpu` cores: quota = cpu × period, with PERIOD_US
    lengthened until the quota reaches the kernel's 1-ms minimum (so cpu 0.02 gets 1 ms every 50 ms)."""
    if not math.isfinite(cpu) or cpu <= 0:
        raise ValueError(f"the cpu share must be a finite number > 0, got {cpu!r}")
    period = min(MAX_PERIOD_US, max(PERIOD_US, math.ceil(MIN_QUOTA_US / cpu)))
    return max(MIN_QUOTA_US, round(cpu * period)), period


class VesselCgroup:
    """One vessel's group (in each v1 hierarchy, or the one v2 group): limits, membership, usage, removal."""

    def __init__(self, support: CgroupSupport, directories: tuple[Path, ...]) -> None:
        self.support = support
        self.directories = directories

    @classmethod
    def create(cls, support: CgroupSupport, cpu: float, memory: int) -> VesselCgroup:
        """Make this supervisor's group with the limits of an allotment of `cpu` cores and `memory` bytes.

        Raises CgroupError (the group half made is removed again) if any step fails.
        """
        if not support.available:
            raise CgroupError(errno.ENOTSUP, f"no cgroup layer on this host: {support.reason}")
        name = f"{PREFIX}{os.getpid()}"
        group = cls(support, tuple(base / name for base in support.bases))
        quota, period = cpu_bandwidth(cpu)
        try:
            for directory in group.directories:
                directory.mkdir(mode=0o755)
            if support.kind == "v2":
                (directory,) = group.directories
                _write(directory / "cpu.max", f"{quota} {period}")
                _write_if_present(directory / "cpu.max.burst", str(quota))
                _write(directory / "memory.max", str(memory))
                _write_if_present(directory / "memory.swap.max", "0")
            else:
                cpu_dir, memory_dir = group.directories[:2]
                _write(cpu_dir / "cpu.cfs_period_us", str(period))
                _write(cpu_dir / "cpu.cfs_quota_us", str(quota))
                _write_if_present(cpu_dir / "cpu.cfs_burst_us", str(quota))
                _write(memory_dir / "memory.limit_in_bytes", str(memory))
                # Without this, swap would let a vessel keep more than its limit (memsw ≥ limit is required).
                _write_if_present(memory_dir / "memory.memsw.limit_in_bytes", str(memory))
        except OSError as exc:
            group.remove()
            raise CgroupError(exc.errno or errno.EIO, f"cannot set up the vessel's cgroup: {exc}") from exc
        return group

    def add(self, pid: int) -> None:
        """Move process `pid` (all its threads) into the group, before it runs untrusted code."""
        try:
            for directory in self.directories:
                _write(directory / "cgroup.procs", str(pid))
        except OSError as exc:
            raise CgroupError(exc.errno or errno.EIO, f"cannot move the vessel into its cgroup: {exc}") from exc

    def bandwidth(self) -> tuple[int, int]:
        """(quota, period) in microseconds, as the kernel holds them."""
        if self.support.kind == "v2":
            quota, period = _read(self.directories[0] / "cpu.max").split()
            return int(quota), int(period)
        cpu_dir = self.directories[0]
        return int(_read(cpu_dir / "cpu.cfs_quota_us")), int(_read(cpu_dir / "cpu.cfs_period_us"))

    def memory_limit(self) -> int:
        if self.support.kind == "v2":
            return int(_read(self.directories[0] / "memory.max"))
        return int(_read(self.directories[1] / "memory.limit_in_bytes"))

    def pids(self) -> set[int]:
        """The processes in the group (in the CPU hierarchy, for v1)."""
        return {int(line) for line in _read(self.directories[0] / "cgroup.procs").split()}

    def holds(self, pid: int) -> bool:
        """Whether `pid` is still in the group whose quota holds its CPU (False too once it has exited)."""
        try:
            return pid in self.pids()
        except OSError:
            return False

    def cpu_seconds(self) -> float | None:
        """CPU time of everything that ever ran in the group, or None where the group does not count it
        (v1 without a writable cpuacct hierarchy)."""
        if self.support.kind == "v2":
            for line in _read(self.directories[0] / "cpu.stat").splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
            return None
        if len(self.directories) < 3:
            return None
        return int(_read(self.directories[2] / "cpuacct.usage")) / 1e9

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer ended in this group for going over its memory limit."""
        path = self.directories[0] / "memory.events" if self.support.kind == "v2" else (
            self.directories[1] / "memory.oom_control")
        try:
            text = _read(path)
        except OSError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def remove(self) -> None:
        """Remove the group once its processes are gone; a group still busy after REMOVE_PATIENCE stays
        (the next zygote's `remove_leftovers` takes it)."""
        for directory in self.directories:
            _remove_group(directory, REMOVE_PATIENCE)


def remove_leftovers(support: CgroupSupport) -> list[Path]:
    """Remove the groups of supervisors that are gone (killed before they could clean up); returns them.

    A group is only ever removed when its supervisor's pid is not running, and rmdir itself refuses a group
    that still holds a process, so a live vessel's group is never touched.
    """
    removed = []
    for base in support.bases:
        with contextlib.suppress(OSError):
            for entry in base.iterdir():
                owner = entry.name.removeprefix(PREFIX)
                if entry.name == owner or not owner.isdigit() or _running(int(owner)):
                    continue
                if _remove_group(entry, 0.0):
                    removed.append(entry)
    return removed


def detect_cgroups() -> CgroupSupport:
    """The cgroup layer this process can give its vessels: v2 where delegated, else v1 where writable, else
    none; each with the reason. v1 is tried by creating (and removing) a probe group."""
    if os.environ.get(SWITCH_VARIABLE, "").strip().lower() in ("off", "0", "no", "false"):
        return CgroupSupport("none", f"switched off by {SWITCH_VARIABLE}={os.environ[SWITCH_VARIABLE]}")
    mounts = _cgroup_mounts()
    own = _own_groups()
    v2_reason = "no cgroup v2 hierarchy is mounted"
    if "" in mounts:
        v2 = _detect_v2(mounts[""], own.get("", "/"))
        if v2.available:
            return v2
        v2_reason = v2.reason
    v1 = _detect_v1(mounts, own)
    if v1.available:
        return CgroupSupport(v1.kind, f"{v1.reason} ({v2_reason})", v1.bases)
    hint = ("run the node as a systemd service with Delegate=yes (`seattle node service install` writes one), "
            "or as root")
    return CgroupSupport("none", f"{v2_reason}; {v1.reason}; {hint}")


@functools.cache
def cgroup_support() -> CgroupSupport:
    """The layer this daemon's vessels get, made ready once per process: the zygote calls it before it forks
    any supervisor, which then find it cached. Ready means, for delegated v2, the daemon's processes moved
    into the leaf and the controllers enabled for the vessels' groups (if that fails, no layer: the nanny
    throttles); and the groups of supervisors that are gone removed."""
    support = detect_cgroups()
    if support.host_leaf is not None:
        try:
            _enter_host_leaf(support)
        except OSError as exc:
            return CgroupSupport("none", f"{support.reason}, but {exc.strerror or exc}")
    remove_leftovers(support)
    return support


def _detect_v2(mount: tuple[Path, str], own: str) -> CgroupSupport:
    mountpoint, mount_root = mount
    relative = _relative(own, mount_root)
    if relative is None:
        return CgroupSupport("none", f"cgroup v2: this process's group {own} is outside the mounted hierarchy")
    group = mountpoint / relative
    if group.name == HOST_LEAF:  # an earlier supervisor of this daemon already moved it into the leaf
        group = group.parent
    is_root = group == mountpoint
    missing = {"cpu", "memory"} - set(_read_quietly(group / "cgroup.controllers").split())
    if missing:
        where = "the root group" if is_root else f"group {group}"
        return CgroupSupport("none", f"cgroup v2: {where} has no {' and no '.join(sorted(missing))} controller")
    if is_root:
        if not os.access(group / "cgroup.subtree_control", os.W_OK):
            return CgroupSupport("none", "cgroup v2: the root group is not writable (not root)")
        return CgroupSupport("v2", f"cgroup v2: vessel groups in the root group {group}", (group,))
    if not _delegated(group):
        return CgroupSupport("none", f"cgroup v2 not delegated: group {group} is not marked delegated; run as a "
                             "systemd user service with Delegate=yes — `seattle node service install` asks for it")
    if not os.access(group / "cgroup.subtree_control", os.W_OK):
        return CgroupSupport("none", f"cgroup v2: the delegated group {group} is not writable by this user")
    return CgroupSupport("v2", f"cgroup v2: vessel groups in the delegated group {group}", (group,),
                         host_leaf=group / HOST_LEAF)


def _detect_v1(mounts: dict[str, tuple[Path, str]], own: dict[str, str]) -> CgroupSupport:
    bases = []
    for controller in (*_V1_ROOT_CONTROLLERS, "cpuacct"):
        if controller not in mounts:
            if controller == "cpuacct":
                continue
            return CgroupSupport("none", f"cgroup v1: no {controller} hierarchy is mounted")
        mountpoint, mount_root = mounts[controller]
        relative = _relative(own.get(controller, "/"), mount_root)
        if relative is None:
            return CgroupSupport("none", f"cgroup v1: this process's {controller} group is outside its mount")
        base = mountpoint / relative
        problem = _try_group(base)
        if problem is not None:
            if controller == "cpuacct":
                continue
            return CgroupSupport("none", f"cgroup v1: cannot create a {controller} group in {base}: {problem}")
        bases.append(base)
    if not (bases[0] / "cpu.cfs_quota_us").exists():
        return CgroupSupport("none", "cgroup v1: the cpu hierarchy has no CFS bandwidth control (cpu.cfs_quota_us)")
    counted = "CPU use from cpuacct" if len(bases) == 3 else "CPU use from the process clock"
    return CgroupSupport("v1", f"cgroup v1: vessel groups in {bases[0]} and {bases[1]}, {counted}", tuple(bases))


def _try_group(base: Path) -> str | None:
    """Create and remove a probe group under `base`: None if that worked, else why not."""
    probe = base / f"{PREFIX}{os.getpid()}"  # named like a supervisor's group, so a leftover is removed too
    try:
        probe.mkdir(exist_ok=True)
    except OSError as exc:
        return exc.strerror or str(exc)
    _remove_group(probe, REMOVE_PATIENCE)
    return None


def _enter_host_leaf(support: CgroupSupport) -> None:
    """v2, delegated: move the daemon's processes out of the base into `seattle-host` and enable the cpu and
    memory controllers for the base's children (the kernel allows that only in a group without processes)."""
    (base,) = support.bases
    leaf = support.host_leaf
    if leaf is None or {"cpu", "memory"} <= set(_read(base / "cgroup.subtree_control").split()):
        return
    with contextlib.suppress(FileExistsError):
        leaf.mkdir(mode=0o755)
    for pid in _read(base / "cgroup.procs").split():
        with contextlib.suppress(ProcessLookupError):
            _write(leaf / "cgroup.procs", pid)
    _write(base / "cgroup.subtree_control", "+cpu +memory")


def _cgroup_mounts() -> dict[str, tuple[Path, str]]:
    """Controller name → (mount point, root of the mount) for v1 hierarchies; "" → the v2 hierarchy."""
    mounts: dict[str, tuple[Path, str]] = {}
    for line in _read_quietly(Path("/proc/self/mountinfo")).splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        mount_root, mountpoint = _unescape(fields[3]), Path(_unescape(fields[4]))
        if tail[0] == "cgroup2":
            mounts.setdefault("", (mountpoint, mount_root))
        elif tail[0] == "cgroup":
            for option in tail[2].split(","):
                if option in ("cpu", "cpuacct", "memory"):
                    mounts.setdefault(option, (mountpoint, mount_root))
    return mounts


def _own_groups() -> dict[str, str]:
    """Controller name → this process's group path (from /proc/self/cgroup); "" → its v2 group."""
    groups: dict[str, str] = {}
    for line in _read_quietly(Path("/proc/self/cgroup")).splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            groups[controller] = path
    return groups


def _relative(path: str, mount_root: str) -> str | None:
    """`path` relative to the root of its mount (a container may mount a hierarchy from a subgroup)."""
    root = mount_root.rstrip("/")
    if path != root and not path.startswith(root + "/"):
        return None
    return path[len(root):].lstrip("/")


def _delegated(group: Path) -> bool:
    for attribute in _DELEGATION_ATTRIBUTES:
        with contextlib.suppress(OSError):
            if os.getxattr(group, attribute) == b"1":
                return True
    return False


def _remove_group(directory: Path, patience: float) -> bool:
    """rmdir, retried for `patience` seconds while the kernel still counts an exited process in the group."""
    deadline = time.monotonic() + patience
    while True:
        try:
            directory.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                return False
        time.sleep(0.01)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _read(path: Path) -> str:
    with open(path, encoding="ascii") as file:
        return file.read()


def _read_quietly(path: Path) -> str:
    try:
        return _read(path)
    except OSError:
        return ""


def _write(path: Path, text: str) -> None:
    # One write(2) per value: control files act on each write, and buffered text I/O could split it.
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode("ascii"))
    finally:
        os.close(fd)


def _write_if_present(path: Path, text: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        _write(path, text)
