"""Real vessels in the cgroup layer: each vessel's group, its limits and members, its removal, and the kernel
holding the CPU share; and the same vessels with the layer switched off, where the nanny throttles instead.

Skipped where the host gives no cgroup layer (see seattle.vessel.oslayer.cgroups); the nanny's own tests are in
tests/vessel/supervisor/.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from seattle.resources import DEFAULT_ALLOTMENT, Resources
from seattle.vessel.host.launcher import VesselHandle, VesselLauncher
from seattle.vessel.oslayer.cgroups import PREFIX, SWITCH_VARIABLE, CgroupSupport, detect_cgroups
from seattle.vessel.status import EXIT_RESOURCE_KILL, EXIT_STOPPED
from tests.vessel_helpers import run_vessel, start_vessel

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
SLEEPER = "log('up')\nwhile True:\n    sleep(0.05)\n"
BUSY = "log('up')\nwhile True:\n    pass\n"
#: How long the share of a busy vessel is measured.
SHARE_WINDOW = 2.0


@pytest.fixture
async def nanny_launcher(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[VesselLauncher]:
    """A launcher whose zygote (and so every supervisor) runs with the cgroup layer switched off."""
    monkeypatch.setenv(SWITCH_VARIABLE, "off")
    async with VesselLauncher() as vessel_launcher:
        yield vessel_launcher


def allotment(cpu: float, memory: int = DEFAULT_ALLOTMENT.count("memory")) -> Resources:
    return DEFAULT_ALLOTMENT.replace(cpu=cpu, memory=memory)


def groups_of(support: CgroupSupport, handle: VesselHandle) -> list[Path]:
    return [base / f"{PREFIX}{handle.supervisor_pid}" for base in support.bases]


async def wait_for_log(handle: VesselHandle, text: bytes) -> None:
    with trio.fail_after(20):
        while text not in handle.log.read():
            await trio.sleep(0.02)


async def busy_share(handle: VesselHandle) -> float:
    """The vessel process's CPU share over SHARE_WINDOW, from the kernel's process CPU clock."""
    assert handle.pid is not None
    clock = (~handle.pid << 3) | 2  # CPUCLOCK_SCHED of that process
    await wait_for_log(handle, b"up")
    cpu, wall = time.clock_gettime(clock), time.monotonic()
    await trio.sleep(SHARE_WINDOW)
    return (time.clock_gettime(clock) - cpu) / (time.monotonic() - wall)


async def test_a_vessel_runs_in_its_own_group_with_its_allotment_and_the_group_goes_with_it(
        support: CgroupSupport, launcher: VesselLauncher, tmp_path: Path) -> None:
    handle = await start_vessel(launcher, tmp_path, SLEEPER, resources=allotment(0.1, 96 * MIB))
    await wait_for_log(handle, b"up")
    directories = groups_of(support, handle)
    cpu_dir = directories[0]
    if support.kind == "v2":
        assert (cpu_dir / "cpu.max").read_text().split() == ["1000", "10000"]
        assert int((cpu_dir / "memory.max").read_text()) == 96 * MIB
    else:
        assert int((cpu_dir / "cpu.cfs_quota_us").read_text()) == 1000
        assert int((cpu_dir / "cpu.cfs_period_us").read_text()) == 10000
        assert int((directories[1] / "memory.limit_in_bytes").read_text()) == 96 * MIB
    for directory in directories:
        assert (directory / "cgroup.procs").read_text().split() == [str(handle.pid)]
    await handle.stop()
    assert handle.exit_code == EXIT_STOPPED
    with trio.fail_after(10):
        while any(directory.exists() for directory in directories):
            await trio.sleep(0.05)


async def test_the_kernel_holds_a_busy_vessel_to_its_share(support: CgroupSupport, launcher: VesselLauncher,
                                                            tmp_path: Path) -> None:
    handle = await start_vessel(launcher, tmp_path, BUSY, resources=allotment(0.1))
    try:
        share = await busy_share(handle)
        assert 0.05 <= share <= 0.2
        assert handle.usage.get("stoptimes", []) == []  # the nanny never stopped it
    finally:
        await handle.stop()


async def test_leftover_groups_are_removed_when_the_next_launcher_starts(support: CgroupSupport,
                                                                        tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    leftovers = [base / f"{PREFIX}{gone.pid}" for base in support.bases]
    for directory in leftovers:
        directory.mkdir()
    try:
        async with VesselLauncher() as launcher:
            await run_vessel(launcher, tmp_path, "log('ran')\n")
        assert not any(directory.exists() for directory in leftovers)
    finally:
        for directory in leftovers:
            if directory.exists():
                directory.rmdir()


async def test_a_vessel_over_its_memory_is_killed_as_a_memory_kill(support: CgroupSupport,
                                                                    launcher: VesselLauncher,
                                                                    tmp_path: Path) -> None:
    handle = await run_vessel(launcher, tmp_path, "x = b'x' * 200000000\nwhile True:\n    sleep(1)\n",
                              resources=allotment(0.5, 64 * MIB))
    assert handle.exit_code == EXIT_RESOURCE_KILL
    assert "memory" in (handle.reason or "")


async def test_with_the_layer_off_no_group_is_made_and_the_nanny_throttles(
        nanny_launcher: VesselLauncher, tmp_path: Path) -> None:
    handle = await start_vessel(nanny_launcher, tmp_path, BUSY, resources=allotment(0.1))
    try:
        share = await busy_share(handle)
        assert 0.05 <= share <= 0.2
        assert handle.usage["stoptimes"]  # SIGSTOP pauses, each one recorded
        real = detect_cgroups()
        assert not any(directory.exists() for directory in groups_of(real, handle)) if real.available else True
    finally:
        await handle.stop()
