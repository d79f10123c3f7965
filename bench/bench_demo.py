"""`seattle demo` end to end: the README's first command must finish in under a minute on 2 cores.

    python bench/bench_demo.py [--runs N]

Runs the installed `seattle demo` as a subprocess (what a new user runs, process start-up and clean-up
included) `--runs` times, each in its own temporary working directory with its own SEATTLE_HOME, and reports
the slowest wall time against the goal, with the median beside it. The exit status is 1 if the goal is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.table import Row, print_table  # noqa: E402

GOAL_SECONDS = 60.0
SEATTLE = Path(sys.executable).with_name("seattle")


def one_run() -> float:
    """Wall seconds of one `seattle demo` from spawn to exit; raises if it fails."""
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as scratch:
        env = dict(os.environ, SEATTLE_HOME=os.path.join(scratch, "home"))
        started = time.perf_counter()
        done = subprocess.run([str(SEATTLE), "demo", "--out", os.path.join(scratch, "matrix.png")],
                              cwd=scratch, env=env, capture_output=True, text=True, timeout=300)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"seattle demo failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
        return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="how many demos to run (default 3)")
    runs = parser.parse_args().runs
    seconds = [one_run() for _ in range(runs)]
    worst = max(seconds)
    rows = [
        Row("`seattle demo` wall time, slowest of runs", f"< {GOAL_SECONDS:.0f} s", f"{worst:.1f} s",
            worst < GOAL_SECONDS),
        Row("`seattle demo` wall time, median", "-", f"{statistics.median(seconds):.1f} s ({runs} runs)", None),
    ]
    print_table("seattle demo (4 node managers x 2 vessels on loopback, all-pairs ping)", rows)
    return 0 if worst < GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
