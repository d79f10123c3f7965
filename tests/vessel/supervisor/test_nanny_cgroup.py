"""The nanny beside a vessel's cgroup: it measures instead of stopping, and throttles a process that left."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seattle.resources import Resources
from seattle.vessel.oslayer.cgroups import VesselCgroup, detect_cgroups
from seattle.vessel.supervisor.nanny import Nanny

pytestmark = pytest.mark.slow

ALLOTMENT = Resources({"cpu": 0.1, "memory": 1 << 30, "diskused": 1 << 20})


@pytest.fixture
def busy_in_group() -> Iterator[tuple[subprocess.Popen[bytes], VesselCgroup]]:
    support = detect_cgroups()
    if not support.available:
        pytest.skip(f"no cgroup layer here: {support.reason}")
    group = VesselCgroup.create(support, 0.1, 1 << 30)
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        group.add(child.pid)
        yield child, group
    finally:
        child.kill()
        child.wait()
        group.remove()


def run_nanny_for(nanny: Nanny, seconds: float) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=nanny.run, args=(stop,))
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join(15)


def test_with_the_group_holding_the_cpu_the_nanny_never_stops_the_process(
        busy_in_group: tuple[subprocess.Popen[bytes], VesselCgroup], tmp_path: Path) -> None:
    child, group = busy_in_group
    nanny = Nanny(child.pid, ALLOTMENT, tmp_path, cgroup=group)
    run_nanny_for(nanny, 1.5)
    assert nanny.stoptimes() == []
    usage = nanny.usage()
    assert 0.02 <= float(usage["cpu"]) <= 0.3  # type: ignore[arg-type]  # the group's quota, measured


def test_a_process_that_left_its_group_is_throttled_by_the_nanny(
        busy_in_group: tuple[subprocess.Popen[bytes], VesselCgroup], tmp_path: Path) -> None:
    child, group = busy_in_group
    for directory, base in zip(group.directories, group.support.bases, strict=True):
        (base / "cgroup.procs").write_text(str(child.pid))  # what an escaped vessel would do
        assert str(child.pid) not in (directory / "cgroup.procs").read_text().split()
    nanny = Nanny(child.pid, ALLOTMENT, tmp_path, cgroup=group)
    run_nanny_for(nanny, 1.5)
    assert nanny.stoptimes()  # SIGSTOP pauses: the nanny took over
