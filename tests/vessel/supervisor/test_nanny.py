"""The nanny against real child processes: CPU throttling, memory and disk kills, stop and exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from seattle.resources import Resources
from seattle.vessel.diskusage import PER_FILE_OVERHEAD, disk_usage
from seattle.vessel.supervisor.nanny import Nanny, NannyVerdict, _WatchedProcess

MIB = 1024 * 1024
BUSY = "while True: pass"
#: How long any nanny run in this file may take before the test counts it as hung.
JOIN_TIMEOUT = 15.0

Spawn = Callable[[str], subprocess.Popen[bytes]]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start `python -c code` in tmp_path; every child is killed and reaped when the test ends."""
    children: list[subprocess.Popen[bytes]] = []

    def start(code: str) -> subprocess.Popen[bytes]:
        child = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path)
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
        child.wait()


def allotment(cpu: float = 0.5, memory: int = 256 * MIB, diskused: int = 100 * MIB) -> Resources:
    return Resources({"cpu": cpu, "memory": memory, "diskused": diskused})


class NannyThread:
    """Runs `Nanny.run` in a thread, the way the supervisor does, and hands back its result."""

    def __init__(self, nanny: Nanny) -> None:
        self.nanny = nanny
        self.stop = threading.Event()
        self.result: NannyVerdict | str | None = "not finished"
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.result = self.nanny.run(self.stop)

    def join(self) -> NannyVerdict | None:
        self._thread.join(JOIN_TIMEOUT)
        assert not self._thread.is_alive(), "the nanny did not return"
        assert not isinstance(self.result, str)
        return self.result

    def stop_and_join(self) -> NannyVerdict | None:
        self.stop.set()
        return self.join()


def process_state(pid: int) -> str:
    """The one-letter state of /proc/<pid>/stat: R, S, T (stopped), Z, ..."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2]


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + JOIN_TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


# --- CPU ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_busy_child_is_throttled_and_its_stops_recorded(spawn: Spawn, tmp_path: Path) -> None:
    child = spawn(BUSY)
    measured = psutil.Process(child.pid)
    started = time.monotonic()
    runner = NannyThread(Nanny(child.pid, allotment(cpu=0.2), tmp_path, start_time=started))
    cpu_before = sum(measured.cpu_times()[:2])
    time.sleep(3.0)
    cpu_used = sum(measured.cpu_times()[:2]) - cpu_before
    wall = time.monotonic() - started
    usage = runner.nanny.usage()
    assert runner.stop_and_join() is None

    assert 0.05 < cpu_used / wall < 0.4, f"share {cpu_used / wall:.3f} for a 20 % allotment"
    stops = runner.nanny.stoptimes()
    assert len(stops) > 5
    assert all(duration > 0 for _, duration in stops)
    starts = [start for start, _ in stops]
    assert starts == sorted(starts)
    assert starts[0] >= 0 and starts[-1] < time.monotonic() - started
    assert usage["cpu_seconds"] > 0
    assert 0 < usage["cpu"] < 0.6
    assert usage["memory"] > 1 * MIB
    assert usage["diskused"] == 0
    assert usage["stoptimes"] and all(len(pair) == 2 for pair in usage["stoptimes"])


@pytest.mark.slow
def test_stop_returns_none_and_leaves_the_child_running(spawn: Spawn, tmp_path: Path) -> None:
    # At 1 % the child spends nearly all its time stopped, so `stop` lands in the middle of a pause.
    child = spawn(BUSY)
    runner = NannyThread(Nanny(child.pid, allotment(cpu=0.01), tmp_path))
    wait_until(lambda: process_state(child.pid) == "T", "the nanny to stop the child")
    assert runner.stop_and_join() is None
    assert process_state(child.pid) not in ("T", "t")
    assert child.poll() is None, "the nanny must not kill the child on stop"


@pytest.mark.slow
def test_a_child_that_exits_ends_the_run_with_no_verdict(spawn: Spawn, tmp_path: Path) -> None:
    child = spawn("pass")
    runner = NannyThread(Nanny(child.pid, allotment(), tmp_path))
    # The nanny notices the exit of the (unreaped) child by itself; `stop` is never set.
    assert runner.join() is None
    assert child.wait() == 0


@pytest.mark.slow
def test_a_reaped_child_ends_the_run_at_once(spawn: Spawn, tmp_path: Path) -> None:
    child = spawn("pass")
    nanny = Nanny(child.pid, allotment(), tmp_path)
    child.wait()
    stop = threading.Event()
    stop_timer = threading.Timer(JOIN_TIMEOUT, stop.set)  # only matters if the pid were recycled at once
    stop_timer.start()
    try:
        assert nanny.run(stop) is None
        assert not stop.is_set()
    finally:
        stop_timer.cancel()


@pytest.mark.slow
def test_both_cpu_sources_and_the_memory_reading_agree_with_psutil(spawn: Spawn) -> None:
    """The process CPU clock is preferred; /proc/<pid>/stat (10 ms ticks) is the fallback. Same answer.
    The memory reading is the unique set size, as psutil's memory_full_info().uss."""
    child = spawn("import time\nblock = b'm' * (30 * 1024 * 1024)\nwhile time.monotonic() < 1e12: pass")
    watched = _WatchedProcess(child.pid)
    measured = psutil.Process(child.pid)
    try:
        wait_until(lambda: measured.memory_full_info().uss > 30 * MIB, "the child to fill its block")
        os.kill(child.pid, signal.SIGSTOP)  # hold the numbers still while comparing them
        wait_until(lambda: process_state(child.pid) == "T", "the child to stop")
        precise = watched.cpu_seconds()
        unique = watched.unique_bytes()
        watched._clock = None  # what a kernel without the process CPU clock leaves us
        coarse = watched.cpu_seconds()
        psutil_times = measured.cpu_times()
        assert precise > 0
        assert abs(coarse - precise) <= 0.03
        assert abs(coarse - (psutil_times.user + psutil_times.system)) <= 0.011
        assert abs(unique - measured.memory_full_info().uss) < 1 * MIB
        assert unique > 30 * MIB
        assert not watched.exited()
    finally:
        os.kill(child.pid, signal.SIGCONT)
        watched.close()


# --- memory and disk ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_child_over_its_memory_allotment_is_killed(spawn: Spawn, tmp_path: Path) -> None:
    child = spawn("import time\nblock = b'x' * (200 * 1024 * 1024)\ntime.sleep(60)")
    limit = 64 * MIB
    verdict = NannyThread(Nanny(child.pid, allotment(memory=limit), tmp_path)).join()
    assert isinstance(verdict, NannyVerdict)
    assert verdict.resource == "memory"
    assert verdict.limit == limit
    assert verdict.observed > limit
    assert f"{limit:,}" in verdict.message and "memory" in verdict.message
    assert child.wait(JOIN_TIMEOUT) == -signal.SIGKILL


FILL_ONE_BIG_FILE = """
import time
with open("big.bin", "wb") as f:
    for _ in range(4):
        f.write(b"x" * 512 * 1024)
time.sleep(60)
"""

FILL_MANY_SMALL_FILES = """
import os, time
os.mkdir("sub")
for i in range(400):
    with open(os.path.join("sub", f"f{i}"), "wb") as f:
        f.write(b"y" * 10)
time.sleep(60)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "program", [FILL_ONE_BIG_FILE, FILL_MANY_SMALL_FILES], ids=["big-file", "small-files"]
)
def test_a_child_over_its_disk_allotment_is_killed(spawn: Spawn, tmp_path: Path, program: str) -> None:
    # Both write about 2 MB: one file of 2 MiB, or 400 files of 10 bytes that cost 4,106 bytes each.
    child = spawn(program)
    limit = 1 * MIB
    verdict = NannyThread(Nanny(child.pid, allotment(diskused=limit), tmp_path, disk_tick=0.05)).join()
    assert isinstance(verdict, NannyVerdict)
    assert verdict.resource == "diskused"
    assert verdict.limit == limit
    assert verdict.observed > limit
    assert f"{limit:,}" in verdict.message and "disk" in verdict.message
    assert child.wait(JOIN_TIMEOUT) == -signal.SIGKILL


@pytest.mark.slow
def test_a_child_within_its_allotment_is_left_alone(spawn: Spawn, tmp_path: Path) -> None:
    child = spawn("import time\nopen('small', 'wb').write(b'z' * 100)\ntime.sleep(60)")
    runner = NannyThread(Nanny(child.pid, allotment(), tmp_path, disk_tick=0.05))
    wait_until(lambda: runner.nanny.usage()["diskused"] == 100 + PER_FILE_OVERHEAD, "the disk sample")
    assert runner.stop_and_join() is None
    assert child.poll() is None


# --- disk_usage -----------------------------------------------------------------------------------------


def test_disk_usage_charges_each_file_its_size_plus_a_block(tmp_path: Path) -> None:
    assert disk_usage(tmp_path) == 0
    (tmp_path / "a").write_bytes(b"1" * 10)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "b").write_bytes(b"2" * 5000)
    assert disk_usage(tmp_path) == 10 + 0 + 5000 + 3 * PER_FILE_OVERHEAD


def test_disk_usage_does_not_follow_or_charge_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    vessel = tmp_path / "vessel"
    outside.mkdir()
    vessel.mkdir()
    (outside / "huge").write_bytes(b"h" * 100_000)
    (vessel / "link-to-file").symlink_to(outside / "huge")
    (vessel / "link-to-dir").symlink_to(outside)
    (vessel / "own").write_bytes(b"o")
    assert disk_usage(vessel) == 1 + PER_FILE_OVERHEAD


def test_disk_usage_survives_files_vanishing_during_the_walk(tmp_path: Path) -> None:
    done = threading.Event()

    def churn() -> None:
        while not done.is_set():
            for i in range(20):
                directory = tmp_path / f"d{i}"
                directory.mkdir()
                (directory / "f").write_bytes(b"c")
            for i in range(20):
                (tmp_path / f"d{i}" / "f").unlink()
                (tmp_path / f"d{i}").rmdir()

    (tmp_path / "stays").write_bytes(b"s" * 7)
    churner = threading.Thread(target=churn)
    churner.start()
    try:
        totals = {disk_usage(tmp_path) for _ in range(300)}
    finally:
        done.set()
        churner.join()
    assert min(totals) >= 7 + PER_FILE_OVERHEAD
    assert max(totals) <= 7 + 21 * PER_FILE_OVERHEAD + 20


@pytest.mark.parametrize("name", ["missing", "a-file"])
def test_disk_usage_refuses_a_path_that_is_not_a_directory(tmp_path: Path, name: str) -> None:
    (tmp_path / "a-file").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match=name):
        disk_usage(tmp_path / name)


# --- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pid", [0, -5, True, "123", 1.5])
def test_a_bad_pid_is_refused(tmp_path: Path, pid: object) -> None:
    with pytest.raises(ValueError, match="pid"):
        Nanny(pid, allotment(), tmp_path)  # type: ignore[arg-type]


@pytest.mark.parametrize("tick", ["cpu_tick", "memory_tick", "disk_tick"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), "0.1"])
def test_a_bad_tick_is_refused_by_name(tmp_path: Path, tick: str, value: object) -> None:
    with pytest.raises(ValueError, match=tick):
        Nanny(os.getpid(), allotment(), tmp_path, **{tick: value})  # type: ignore[arg-type]


def test_a_zero_cpu_allotment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cpu allotment"):
        Nanny(os.getpid(), allotment(cpu=0), tmp_path)


def test_a_missing_vessel_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="nowhere"):
        Nanny(os.getpid(), allotment(), tmp_path / "nowhere")


@pytest.mark.slow
def test_run_may_be_called_only_once(spawn: Spawn, tmp_path: Path) -> None:
    child = spawn("pass")
    nanny = Nanny(child.pid, allotment(), tmp_path)
    child.wait()
    stop = threading.Event()
    stop.set()
    assert nanny.run(stop) is None
    with pytest.raises(RuntimeError, match="already called"):
        nanny.run(stop)
