"""The cgroup layer on this host's real cgroup hierarchy: bandwidth arithmetic, groups and their removal.

The tests that make groups need a writable hierarchy (root on a v1 or hybrid host, or a delegated v2 subtree)
and are skipped elsewhere; the ones about the switch and the arithmetic run everywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from seattle.vessel.oslayer.cgroups import (
    PREFIX,
    SWITCH_VARIABLE,
    CgroupError,
    CgroupSupport,
    VesselCgroup,
    cpu_bandwidth,
    detect_cgroups,
    remove_leftovers,
)

MIB = 1024 * 1024


@pytest.mark.parametrize(("cpu", "expected"), [
    (0.5, (2_500, 5_000)),      # the short period, as is
    (0.1, (1_000, 10_000)),     # lengthened: the kernel's minimum quota is 1 ms
    (0.02, (1_000, 50_000)),
    (2.0, (10_000, 5_000)),     # two cores: the quota may exceed the period
    (0.0005, (1_000, 1_000_000)),  # the longest period the kernel takes, and its minimum quota
])
def test_bandwidth_is_the_share_of_a_short_period(cpu: float, expected: tuple[int, int]) -> None:
    assert cpu_bandwidth(cpu) == expected


@pytest.mark.parametrize("cpu", [0.0, -1.0, float("nan"), float("inf")])
def test_bandwidth_refuses_a_share_that_is_not_positive(cpu: float) -> None:
    with pytest.raises(ValueError, match="cpu share"):
        cpu_bandwidth(cpu)


def test_the_switch_turns_the_layer_off_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH_VARIABLE, "off")
    found = detect_cgroups()
    assert found.kind == "none" and not found.available
    assert f"{SWITCH_VARIABLE}=off" in found.reason
    with pytest.raises(CgroupError):
        VesselCgroup.create(found, 0.1, 64 * MIB)


def test_a_group_gets_the_allotments_quota_and_memory_limit_and_is_removed(support: CgroupSupport) -> None:
    group = VesselCgroup.create(support, 0.25, 48 * MIB)
    try:
        assert all(directory.is_dir() for directory in group.directories)
        assert all(directory.name == f"{PREFIX}{os.getpid()}" for directory in group.directories)
        assert group.bandwidth() == cpu_bandwidth(0.25) == (1_250, 5_000)
        assert group.memory_limit() == 48 * MIB
        assert group.pids() == set()
        assert group.oom_kills() == 0
    finally:
        group.remove()
    assert not any(directory.exists() for directory in group.directories)


@pytest.mark.slow
def test_a_process_moved_in_is_counted_and_the_group_goes_once_it_has_exited(support: CgroupSupport) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read(); sum(range(3_000_000))"],
                             stdin=subprocess.PIPE)
    group = VesselCgroup.create(support, 1.0, 256 * MIB)
    try:
        group.add(child.pid)
        assert group.pids() == {child.pid}
        child.communicate(b"")  # now it runs its loop, inside the group, and exits
        counted = group.cpu_seconds()
        if counted is not None:  # v1 without a cpuacct hierarchy does not count
            assert counted > 0.01
    finally:
        child.kill()
        child.wait()
        group.remove()
    assert not any(directory.exists() for directory in group.directories)


@pytest.mark.slow
def test_leftovers_of_dead_supervisors_are_removed_and_live_ones_kept(support: CgroupSupport) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = [base / f"{PREFIX}{dead.pid}" for base in support.bases]
    alive = [base / f"{PREFIX}{os.getpid()}" for base in support.bases]
    unrelated = [base / "seattle-vessel-not-ours" for base in support.bases]
    for directory in (*leftover, *alive, *unrelated):
        directory.mkdir()
    try:
        removed = remove_leftovers(support)
        assert set(removed) == set(leftover)
        assert not any(directory.exists() for directory in leftover)
        assert all(directory.is_dir() for directory in (*alive, *unrelated))
    finally:
        for directory in (*leftover, *alive, *unrelated):
            if directory.exists():
                directory.rmdir()


def test_holds_tells_whether_a_process_is_in_the_group(support: CgroupSupport) -> None:
    group = VesselCgroup.create(support, 0.5, 64 * MIB)
    try:
        assert not group.holds(os.getpid())
    finally:
        group.remove()
    assert not group.holds(os.getpid())  # a removed group holds nothing
