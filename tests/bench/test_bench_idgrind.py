"""The id-grinding benchmark runs end to end with few inits and trials, and prints every row.

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
SCRIPT = ROOT / "bench" / "bench_idgrind.py"


def test_the_benchmark_prints_every_row() -> None:
    finished = subprocess.run(
        [sys.executable, str(SCRIPT), "--inits", "3", "--trials", "1"],
        capture_output=True, text=True, cwd=ROOT, timeout=240, env={**os.environ, "COLUMNS": "200"},
    )
    assert finished.returncode in (0, 1), finished.stderr[-2000:]  # 1: a goal missed, not a failure
    for figure in ("grinder's loop", "id_is_bound", "node init", "place 1 id", "surround a key", "model check"):
        assert figure in finished.stdout, finished.stdout[-3000:]
