"""What a donor gives: measure the machine, take a percent of it, divide that into a profile's vessels.

    machine = measure_machine(node_dir.parent)             # psutil, rlimits, a short disk and random probe
    donation = divide(machine, profile.vessels, percent=10)
    print(donation.summary())                               # what is given away, in plain words
    init_node_from_profile(node_dir, profile, percent=10)   # all of the above, then the node's state

The computation follows the original installer (reference §7.2): donated = capacity × percent / 100, with
threads (`events`) fixed at 500 whatever the percent; then one offcut per vessel is set aside for the
overhead of having that vessel, and what remains is shared by the vessels' percents. Each vessel's share is
rounded down on the resource grid and the last vessel takes the crumbs, so

    sum(vessels) + #vessels · offcut == donated            (exactly, every quantity)

and no vessel is ever larger than the donation. Ports: the pool (default 63100..63199) is cut into
consecutive runs in proportion to the percents (largest remainder), each run being the vessel's UDP and TCP
ports, so vessels never share one. Several nodes on one host need disjoint pools: that is what `ports` is for.

A value that cannot be measured here (the network's capacity when the link speed is unknown, loopback and
log rates) falls back to the original's defaults and is reported as not measured, so the donor sees which
numbers are guesses.
"""

from __future__ import annotations

import os
import resource
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import psutil

from seattle.donor.manifest import record_install
from seattle.errors import BadDonationPercent, BadPortPool, DonationTooSmall, UntrustedPlanner
from seattle.keys import PublicKey
from seattle.nodemgr.config import NodeConfig
from seattle.nodemgr.daemon import create_node
from seattle.nodemgr.nodedir import NodeDir
from seattle.planner.profile import PoolShare, Profile, VesselPlan
from seattle.resources import (
    DEFAULT_OFFCUT,
    MAX_RENEWABLE,
    QUANTITY_NAMES,
    RENEWABLE,
    RENEWABLE_RESOLUTION,
    ResourceArithmeticError,
    Resources,
)

#: The original's vessel ports: 100 ports, 10 per 10 % slice.
DEFAULT_PORTS: tuple[int, ...] = tuple(range(63100, 63200))
#: Threads donated whatever the percent (the original's fixed `events`), unless the process limit is lower.
DONATED_EVENTS = 500
DEFAULT_PERCENT = 10
#: The record `init_node_from_profile` stores in the node directory (`NodeDir.write_donation`), for
#: `seattle node status`.
DONATION_FORMAT = "seattle-donation-v1"

_MB = 1_000_000
#: The original's DEFAULT_MAX_RESOURCE_DICT, used for whatever cannot be measured.
FALLBACK: dict[str, float | int] = {
    "cores": 1, "memory": 510 * _MB, "disk_free": 3_700 * _MB, "threads": 500, "files": 250, "sockets": 250,
    "disk_read": 1.2 * _MB, "disk_write": 1.2 * _MB, "net_send": 500_000.0, "net_recv": 500_000.0,
    "loop": 50.0 * _MB, "lograte": 1.5 * _MB, "random": 200_000.0,
}
#: Bytes written (and read back) to estimate the disk's rates: enough to get past caches, quick to do.
_PROBE_BYTES = 4 * 1024 * 1024
_RANDOM_PROBE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Measured:
    """One property of the machine, and whether it was measured here or is the original's default."""

    value: float | int
    measured: bool
    how: str


@dataclass(frozen=True)
class MachineResources:
    """The whole machine, as far as it can be known: counts in units, sizes in bytes, rates in bytes/s."""

    cores: Measured
    memory: Measured
    disk_free: Measured
    threads: Measured
    files: Measured
    sockets: Measured
    disk_read: Measured
    disk_write: Measured
    net_send: Measured
    net_recv: Measured
    loop: Measured
    lograte: Measured
    random: Measured

    def capacity(self) -> Resources:
        """The machine as one allotment (no ports): what 100 % would give."""
        return Resources({
            "cpu": float(self.cores.value), "memory": int(self.memory.value),
            "diskused": int(self.disk_free.value), "events": int(self.threads.value),
            "filesopened": int(self.files.value), "insockets": int(self.sockets.value),
            "outsockets": int(self.sockets.value), "netsend": _rate(self.net_send), "netrecv": _rate(self.net_recv),
            "loopsend": _rate(self.loop), "looprecv": _rate(self.loop), "fileread": _rate(self.disk_read),
            "filewrite": _rate(self.disk_write), "lograte": _rate(self.lograte), "random": _rate(self.random),
        })

    def to_dict(self) -> dict[str, Any]:
        return {name: {"value": m.value, "measured": m.measured, "how": m.how} for name, m in self.items()}

    def items(self) -> list[tuple[str, Measured]]:
        return [(name, getattr(self, name)) for name in FALLBACK]


def _rate(measured: Measured) -> float:
    """A rate on the resource grid, at least one grid step (a vessel with rate 0 could not do anything) and at
    most the largest value a resource holds (a cached disk probe can report absurd speeds)."""
    return min(MAX_RENEWABLE, max(float(RENEWABLE_RESOLUTION), round(float(measured.value), 4)))


def fallback_machine(**overrides: float | int) -> MachineResources:
    """A machine made of the original's defaults (all not measured), with some values given: for tests and
    simulations that need the same numbers on every host."""
    values = {name: Measured(value, False, "the original's default") for name, value in FALLBACK.items()}
    values.update({name: Measured(value, True, "given") for name, value in overrides.items()})
    return MachineResources(**values)


def measure_machine(where: Path | None = None) -> MachineResources:
    """Measure this machine; disk space and rates are those of the file system holding `where` (default: the
    current directory). Takes well under a second: one 4 MiB write, fsync and read, one 1 MiB random read."""
    where = Path(where) if where is not None else Path.cwd()
    while not where.exists() and where != where.parent:
        where = where.parent
    values = {name: Measured(value, False, "the original's default") for name, value in FALLBACK.items()}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else psutil.cpu_count()
    if cores:
        values["cores"] = Measured(cores, True, "CPUs this process may use")
    values["memory"] = Measured(psutil.virtual_memory().total, True, "psutil: total memory")
    values["disk_free"] = Measured(psutil.disk_usage(str(where)).free, True, f"psutil: free space at {where}")
    threads = _limit(resource.RLIMIT_NPROC)
    if threads:
        values["threads"] = Measured(threads, True, "RLIMIT_NPROC (processes and threads)")
    files = _limit(resource.RLIMIT_NOFILE)
    if files:
        values["files"] = Measured(files, True, "RLIMIT_NOFILE (open files per process)")
        values["sockets"] = Measured(files, True, "RLIMIT_NOFILE (sockets are files)")
    values.update(_disk_rates(where))
    link = _link_speed()
    if link:
        values["net_send"] = Measured(link, True, "psutil: fastest network link's speed")
        values["net_recv"] = Measured(link, True, "psutil: fastest network link's speed")
    started = time.perf_counter()
    os.urandom(_RANDOM_PROBE_BYTES)
    elapsed = time.perf_counter() - started
    if elapsed > 0:
        values["random"] = Measured(round(_RANDOM_PROBE_BYTES / elapsed), True, "timed os.urandom")
    return MachineResources(**values)


def _limit(which: int) -> int | None:
    soft, _ = resource.getrlimit(which)
    return None if soft == resource.RLIM_INFINITY or soft <= 0 else soft


def _link_speed() -> float | None:
    """Bytes/s of the fastest interface that is up and not loopback, if the driver reports a speed."""
    speeds = [stats.speed for name, stats in psutil.net_if_stats().items()
              if stats.isup and stats.speed > 0 and not name.startswith("lo")]
    return max(speeds) * 1_000_000 / 8 if speeds else None


def _disk_rates(where: Path) -> dict[str, Measured]:
    """Write, fsync, drop from the page cache and read back one probe file; {} if that is not possible."""
    if not os.path.isdir(where) or not hasattr(os, "posix_fadvise"):
        return {}
    probe = where / f".seattle-disk-probe-{secrets.token_hex(6)}"  # unguessable: nobody can occupy it first
    data = os.urandom(_PROBE_BYTES)
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError:
        return {}
    try:
        started = time.perf_counter()
        os.write(fd, data)
        os.fsync(fd)
        wrote = time.perf_counter() - started
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        started = time.perf_counter()
        os.pread(fd, _PROBE_BYTES, 0)
        read = time.perf_counter() - started
    except OSError:
        return {}
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)
    return {"disk_write": Measured(round(_PROBE_BYTES / max(wrote, 1e-6)), True, "timed 4 MiB write + fsync"),
            "disk_read": Measured(round(_PROBE_BYTES / max(read, 1e-6)), True, "timed 4 MiB uncached read")}


# ---------------------------------------------------------------------------------------------------------


Vessel = tuple[Resources, PublicKey, tuple[PublicKey, ...]]


@dataclass(frozen=True)
class Donation:
    """A division: what is donated, the overhead set aside, and each vessel with its owner and users."""

    percent: int
    machine: MachineResources
    capacity: Resources
    donated: Resources
    offcut: Resources
    offcuts: Resources
    vessels: list[Vessel] = field(default_factory=list)
    plans: tuple[VesselPlan, ...] = ()
    #: The last `pool` vessels are pool vessels: the node's own key owns them (docs/pool.md).
    pool: int = 0

    def summary(self) -> str:
        """What the donor gives away, in plain words: one line per resource, then one per vessel."""
        lines = [f"This node gives away {self.percent}% of this machine:"]
        for label, name, unit in _SUMMARY_ROWS:
            measured = all(getattr(self.machine, m).measured for m in _MEASURED_BY[name])
            note = "" if measured else "  (not measurable here: the original's default assumed)"
            lines.append(f"  {label:<14}{_show(self.donated[name], unit):>12} of "
                         f"{_show(self.capacity[name], unit)}{note}")
        lines.append(f"  {'threads':<14}{self.donated['events']:>12}")
        lines.append(f"  {'ports':<14}{_ports(self.donated.connport):>12} (TCP and UDP)")
        lines.append(f"divided into {len(self.vessels)} vessel{'s' if len(self.vessels) != 1 else ''}, after "
                     f"one offcut each for its overhead ({_show(self.offcut['cpu'], 'cpu')} CPU, "
                     f"{_show(self.offcut['memory'], 'B')} memory):")
        first_pool = len(self.vessels) - self.pool
        for number, ((resources, owner, users), plan) in enumerate(zip(self.vessels, self.plans, strict=True), 1):
            whose = "for the pool" if number > first_pool else f"owned by {owner.fingerprint()}"
            lines.append(f"  v{number}: {plan.percent}% {whose}"
                         f"{f' with {len(users)} user(s)' if users else ''}: "
                         f"{_show(resources['cpu'], 'cpu')} CPU, {_show(resources['memory'], 'B')} memory, "
                         f"{_show(resources['diskused'], 'B')} disk, ports {_ports(resources.connport)}")
        lines.append("Vessels run untrusted code in a sandbox held to these limits.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The record `donation.json` holds (plain JSON values)."""
        return {"format": DONATION_FORMAT, "percent": self.percent, "machine": self.machine.to_dict(),
                "capacity": self.capacity.to_dict(), "donated": self.donated.to_dict(),
                "offcut": self.offcut.to_dict(),
                "vessels": [{"percent": plan.percent, "owner": owner.to_text(), "resources": res.to_dict(),
                             "pool": number >= len(self.vessels) - self.pool}
                            for number, ((res, owner, _), plan) in enumerate(zip(self.vessels, self.plans,
                                                                                 strict=True))]}


_SUMMARY_ROWS = (("CPU", "cpu", "cpu"), ("memory", "memory", "B"), ("disk", "diskused", "B"),
                 ("network out", "netsend", "B/s"), ("network in", "netrecv", "B/s"),
                 ("disk reads", "fileread", "B/s"), ("disk writes", "filewrite", "B/s"))
_MEASURED_BY = {"cpu": ("cores",), "memory": ("memory",), "diskused": ("disk_free",), "netsend": ("net_send",),
                "netrecv": ("net_recv",), "fileread": ("disk_read",), "filewrite": ("disk_write",)}


def _show(value: object, unit: str) -> str:
    if unit == "cpu":
        return f"{float(value):.3g} core{'s' if value != 1 else ''}"  # type: ignore[arg-type]
    number = float(value)  # type: ignore[arg-type]
    for prefix in ("", "k", "M", "G", "T"):
        if number < 1000 or prefix == "T":
            return f"{number:.3g} {prefix}{unit}"
        number /= 1000
    raise AssertionError("unreachable")


def _ports(ports: frozenset[int]) -> str:
    if not ports:
        return "none"
    low, high = min(ports), max(ports)
    return f"{low}-{high}" if len(ports) == high - low + 1 else ", ".join(map(str, sorted(ports)))


def divide(machine: MachineResources, plans: Sequence[VesselPlan], percent: int = DEFAULT_PERCENT,
           ports: Sequence[int] | None = None, offcut: Resources = DEFAULT_OFFCUT,
           pool_share: PoolShare | None = None) -> Donation:
    """Donate `percent` of `machine` and divide it into `plans` (module docstring), then the pool's share into
    its pool vessels (last, the very last taking the crumbs of a share that is not a multiple of their size);
    DonationTooSmall if the vessels' offcuts do not fit or a vessel would get nothing of CPU, memory, disk or
    threads."""
    if type(percent) is not int or not 1 <= percent <= 100:
        raise BadDonationPercent(percent)
    pooled = () if pool_share is None or not plans else (
        (VesselPlan(pool_share.vessel_percent, plans[0].owner),) * pool_share.count)
    plans = tuple(plans) + pooled
    pool = _check_pool(DEFAULT_PORTS if ports is None else ports, len(plans))
    capacity = machine.capacity()
    donated = _scale(capacity, Fraction(percent, 100)).replace(
        events=min(DONATED_EVENTS, capacity["events"]), messport=frozenset(pool), connport=frozenset(pool))
    offcuts = _times(offcut, len(plans))
    try:
        available = donated - offcuts
    except ResourceArithmeticError as exc:
        raise DonationTooSmall(f"{len(plans)} offcuts need more than is donated ({'; '.join(exc.problems)})"
                               ) from None
    available = available.replace(messport=frozenset(), connport=frozenset())
    runs = _port_runs(pool, [plan.percent for plan in plans])
    shares = [_scale(available, Fraction(plan.percent, 100)) for plan in plans[:-1]]
    shares.append(available - _sum(shares))
    vessels: list[Vessel] = []
    for number, (share, plan, run) in enumerate(zip(shares, plans, runs, strict=True), start=1):
        empty = [name for name in ("cpu", "memory", "diskused", "events") if not share[name]]
        if empty:
            raise DonationTooSmall(f"vessel v{number} ({plan.percent}%) would get no {', '.join(empty)}")
        vessels.append((share.replace(messport=frozenset(run), connport=frozenset(run)), plan.owner, plan.users))
    return Donation(percent, machine, capacity, donated, offcut, offcuts, vessels, plans, len(pooled))


def _check_pool(ports: Sequence[int], vessels: int) -> tuple[int, ...]:
    pool = tuple(ports)
    for port in pool:
        if type(port) is not int or not 1 <= port <= 65535:
            raise BadPortPool(f"{port!r:.20} is not a port number from 1 to 65535")
    if len(set(pool)) != len(pool):
        raise BadPortPool("a port is listed twice")
    if len(pool) < vessels:
        raise BadPortPool(f"{len(pool)} ports cannot give each of {vessels} vessels its own")
    return pool


def _port_runs(pool: tuple[int, ...], percents: list[int]) -> list[tuple[int, ...]]:
    """Consecutive runs of the pool in proportion to the percents (largest remainder), each at least one."""
    exact = [Fraction(len(pool) * p, 100) for p in percents]
    counts = [max(1, int(share)) for share in exact]
    order = sorted(range(len(percents)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    for i in order:
        if sum(counts) >= len(pool):
            break
        counts[i] += 1
    while sum(counts) > len(pool):  # the minimum of one port pushed the total over: take from the largest
        counts[counts.index(max(counts))] -= 1
    runs, start = [], 0
    for count in counts:
        runs.append(pool[start:start + count])
        start += count
    return runs


def _scale(resources: Resources, factor: Fraction) -> Resources:
    """Every quantity times `factor`, rounded down (renewables on their grid), ports dropped."""
    quantities: dict[str, float | int] = {}
    for name in QUANTITY_NAMES:
        value = resources.quantities[name]
        if name in RENEWABLE:
            units = round(Fraction(value) / RENEWABLE_RESOLUTION) * factor
            quantities[name] = float(int(units) * RENEWABLE_RESOLUTION)
        else:
            quantities[name] = int(value * factor)
    return Resources(quantities)


def _times(resources: Resources, count: int) -> Resources:
    return _sum([resources] * count) if count else Resources({})


def _sum(parts: Sequence[Resources]) -> Resources:
    total = Resources({})
    for part in parts:
        total = total + part
    return total


def init_node_from_profile(node_dir: Path, profile: Profile, *, planner: PublicKey, percent: int = DEFAULT_PERCENT,
                           host: str = "127.0.0.1", port: int = 1224, ports: Sequence[int] | None = None,
                           machine: MachineResources | None = None, local_ips: Sequence[str] = ()) -> Donation:
    """Create a node in `node_dir` laid out by `profile`: measure (unless `machine` is given), divide, write
    the node's key, vessels, `node.json` (with the profile's bootstrap nodes), `donation.json` and the
    manifest `seattle node uninstall` works from. Refuses a directory that already holds a node.

    `planner` is the key the donor trusts (pinned or confirmed): a profile signed by any other key is refused
    (UntrustedPlanner) before anything is created, so every caller has to say whom it trusts."""
    if profile.planner != planner:
        raise UntrustedPlanner(profile.planner.fingerprint(), profile.planner.to_text(), planner.fingerprint())
    node_dir = Path(node_dir)
    created_dir = not node_dir.exists()
    config = NodeConfig(host, port, tuple(local_ips), profile.bootstrap)
    donation = divide(machine or measure_machine(node_dir), profile.vessels, percent, ports,
                      pool_share=profile.pool)
    own = len(donation.vessels) - donation.pool
    create_node(node_dir, profile.vessels[0].owner, config, donation.vessels[:own],
                pool=[resources for resources, _, _ in donation.vessels[own:]])
    NodeDir(node_dir).write_donation(donation.to_dict())
    record_install(node_dir, created_dir)
    return donation

