"""How often the nanny looks: slowly while a vessel's bucket is full, fast once it runs low at small shares."""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from seattle.resources import Resources
from seattle.vessel.supervisor.cpu_throttle import CpuThrottle
from seattle.vessel.supervisor.nanny import Nanny


def test_a_full_bucket_may_wait_its_burst_spread_over_the_cores() -> None:
    throttle = CpuThrottle(0.1, burst_seconds=0.05)
    assert throttle.safe_wait(1) == pytest.approx(0.05)
    assert throttle.safe_wait(2) == pytest.approx(0.025)


def test_a_spent_bucket_may_not_wait_at_all() -> None:
    throttle = CpuThrottle(0.1, burst_seconds=0.05)
    throttle.observe(0.0, 0.0)
    throttle.observe(0.2, 1.0)  # 0.2 s of CPU in 1 s at a 0.1 share: 0.05 burst + 0.1 earned < 0.2
    assert throttle.safe_wait(1) == 0.0


@pytest.mark.parametrize("cores", [0, -1, 1.5, True])
def test_safe_wait_refuses_a_bad_core_count(cores: object) -> None:
    with pytest.raises(ValueError, match="cores"):
        CpuThrottle(0.1).safe_wait(cores)  # type: ignore[arg-type]


@pytest.mark.slow
def test_at_a_small_share_the_pauses_are_short_because_the_nanny_looks_often(tmp_path: Path) -> None:
    # Looking every 10 ms, a busy child at 0.02 overspends about 10 ms per look and is paused 10/0.02 = 500 ms
    # each time; looking every millisecond once the bucket runs low keeps most pauses well under that.
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    stop = threading.Event()
    try:
        nanny = Nanny(child.pid, Resources({"cpu": 0.02, "memory": 1 << 30, "diskused": 1 << 20}), tmp_path)
        thread = threading.Thread(target=nanny.run, args=(stop,))
        thread.start()
        time.sleep(2.0)
        stop.set()
        thread.join(15)
    finally:
        child.kill()
        child.wait()
    pauses = [duration for _start, duration in nanny.stoptimes()]
    assert len(pauses) >= 4
    assert statistics.median(pauses) < 0.3
