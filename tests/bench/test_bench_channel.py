"""The channel benchmark runs end to end in its quick mode and prints every row.

No timing is asserted (goals are the benchmark's own verdict); this keeps the script from rotting.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_channel.py"


def test_the_benchmark_prints_every_row() -> None:
    finished = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )
    assert finished.returncode in (0, 1), finished.stderr[-2000:]  # 1: a goal missed, not a failure
    for figure in ("sans-IO core", "client + node CPU", "handshakes/s", "connections/s", "over memory streams",
                   "over loopback TCP", "ceiling"):
        assert figure in finished.stdout, finished.stdout[-3000:]
