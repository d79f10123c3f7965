"""Real vessels through the launcher: states, exit codes, logs, usage, stop, and the nanny's kills."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from seattle.resources import DEFAULT_ALLOTMENT
from seattle.vessel.host.launcher import VesselLauncher
from seattle.vessel.oslayer.cgroups import detect_cgroups
from seattle.vessel.status import (
    EXIT_CODE_UNSAFE,
    EXIT_NORMAL,
    EXIT_RESOURCE_KILL,
    EXIT_STOPPED,
    EXIT_UNCAUGHT,
    VesselStatus,
)
from tests.vessel_helpers import log_text, run_vessel, start_vessel

pytestmark = pytest.mark.slow


async def test_program_runs_and_its_output_reaches_the_log(launcher: VesselLauncher, tmp_path: Path) -> None:
    handle = await run_vessel(launcher, tmp_path, "print('hello', callargs)\nlog('no newline')\n",
                              args=("a", "b"))
    assert handle.exit_code == EXIT_NORMAL
    assert handle.status == VesselStatus.TERMINATED
    assert log_text(handle) == "hello ['a', 'b']\nno newline"


async def test_uncaught_exception_terminates_with_a_traceback_of_user_frames_only(
        launcher: VesselLauncher, tmp_path: Path) -> None:
    source = "def f():\n    return 1 // 0\n\nf()\n"
    handle = await run_vessel(launcher, tmp_path, source)
    assert handle.exit_code == EXIT_UNCAUGHT
    text = log_text(handle)
    assert "ZeroDivisionError" in text
    assert "line 2" in text and "line 4" in text
    assert "seattle/vessel" not in text and "site-packages" not in text


async def test_unsafe_program_is_refused_with_line_and_reason(launcher: VesselLauncher, tmp_path: Path) -> None:
    handle = await run_vessel(launcher, tmp_path, "x = 1\nimport os\n")
    assert handle.exit_code == EXIT_CODE_UNSAFE
    assert handle.status == VesselStatus.TERMINATED
    text = log_text(handle)
    assert "CodeUnsafeError" in text and "line 2" in text


async def test_exitall_ends_the_program_at_once(launcher: VesselLauncher, tmp_path: Path) -> None:
    handle = await run_vessel(launcher, tmp_path, "log('before')\nexitall()\nlog('after')\n")
    assert handle.exit_code == EXIT_NORMAL
    assert log_text(handle) == "before"


async def test_stop_gives_state_stopped(launcher: VesselLauncher, tmp_path: Path) -> None:
    handle = await start_vessel(launcher, tmp_path, "log('up')\nwhile True:\n    sleep(0.05)\n")
    with trio.fail_after(10):
        while b"up" not in handle.log.read():
            await trio.sleep(0.01)
    assert handle.running and handle.status == VesselStatus.STARTED
    await handle.stop()
    assert handle.exit_code == EXIT_STOPPED
    assert handle.status == VesselStatus.STOPPED


async def test_program_lives_on_while_its_threads_run(launcher: VesselLauncher, tmp_path: Path) -> None:
    source = "def later():\n    sleep(0.2)\n    log('thread done')\n\ncreatethread(later)\nlog('main done ')\n"
    handle = await run_vessel(launcher, tmp_path, source)
    assert handle.exit_code == EXIT_NORMAL
    assert log_text(handle) == "main done thread done"


async def test_usage_is_reported_while_running(launcher: VesselLauncher, tmp_path: Path) -> None:
    source = "start = getruntime()\nwhile getruntime() - start < 2.5:\n    pass\n"
    handle = await start_vessel(launcher, tmp_path, source)
    with trio.fail_after(20):
        while not handle.usage.get("cpu_seconds"):
            await trio.sleep(0.05)
    assert handle.usage["memory"] > 0  # what the vessel added to its prepared process (issue 17)
    assert handle.usage["cpu_seconds"] > 0
    await handle.wait()


async def test_cpu_share_is_held_near_the_allotment(launcher: VesselLauncher, tmp_path: Path) -> None:
    source = ("start = getruntime()\nwhile getruntime() - start < 3:\n    pass\n"
              "limits, usage, stops = getresources()\nlog(len(stops))\n")
    resources = DEFAULT_ALLOTMENT.replace(cpu=0.2)
    handle = await run_vessel(launcher, tmp_path, source, resources=resources)
    assert handle.exit_code == EXIT_NORMAL, log_text(handle)
    if detect_cgroups().available:  # the kernel's quota throttles: no SIGSTOP pauses to report
        assert int(log_text(handle)) == 0, "the nanny stopped a program its cgroup holds"
    else:
        assert int(log_text(handle)) > 0, "the nanny never stopped a busy program"
    assert handle.usage["cpu_seconds"] < 0.5 * 3


async def test_memory_over_the_allotment_kills_the_vessel(launcher: VesselLauncher, tmp_path: Path) -> None:
    source = "chunks = []\nwhile True:\n    chunks.append(b'x' * 1000000)\n    sleep(0.005)\n"
    resources = DEFAULT_ALLOTMENT.replace(memory=60_000_000)
    handle = await run_vessel(launcher, tmp_path, source, resources=resources)
    assert handle.exit_code == EXIT_RESOURCE_KILL, log_text(handle)
    assert "memory" in handle.reason


async def test_disk_over_the_allotment_kills_the_vessel(launcher: VesselLauncher, tmp_path: Path) -> None:
    source = ("n = 0\nwhile True:\n    f = openfile('f' + str(n), True)\n    f.writeat(b'x' * 20000, 0)\n"
              "    f.close()\n    n = n + 1\n    sleep(0.005)\n")
    resources = DEFAULT_ALLOTMENT.replace(diskused=500_000)
    handle = await run_vessel(launcher, tmp_path, source, resources=resources)
    assert handle.exit_code == EXIT_RESOURCE_KILL, log_text(handle)
    assert "disk" in handle.reason


async def test_the_hosts_working_directory_is_not_readable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The zygote must not put the host's working directory on its path, where Landlock would let vessels
    read it; checked with the language layer off, so only the OS layers stand in the way."""
    host_dir = tmp_path / "host-cwd"
    host_dir.mkdir()
    (host_dir / "secret.txt").write_text("HOST-SECRET")
    monkeypatch.chdir(host_dir)
    async with VesselLauncher() as launcher:
        layers = launcher.default_layers() - {"language"}
        source = ("try:\n    print(open(callargs[0]).read())\nexcept OSError as error:\n"
                  "    print('refused', error.errno)\n")
        handle = await run_vessel(launcher, tmp_path / "vessel", source, layers=layers,
                                  args=(str(host_dir / "secret.txt"),))
    assert "HOST-SECRET" not in log_text(handle)
    assert log_text(handle).strip() == "refused 13", (handle.exit_code, handle.reason)
