"""`seattle demo --pool`: the all-pairs ping on vessels acquired from the testbed's pool, released after."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_runner import seattle as run
from tests.demo.test_demo import DEMO_TIMEOUT, assert_nothing_left, demo_env


@pytest.mark.slow
def test_the_pool_demo_acquires_pings_and_releases(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "seattle.cli", "demo", "--pool", "--nodes", "3",
                             "--out", str(tmp_path / "latency.png")],
                            capture_output=True, env=demo_env(tmp_path), timeout=DEMO_TIMEOUT, cwd=tmp_path)
    stdout = result.stdout.decode()
    assert result.returncode == 0, stdout + result.stderr.decode()
    assert "Acquired 6 vessels from the pool" in stdout and "leases signed by 3 nodes" in stdout
    assert "All 6 vessels reported: 30 of 30 pairs measured" in stdout
    assert "Released 6 of 6 leases" in stdout
    assert_nothing_left(tmp_path)


def test_the_pool_demo_refuses_more_than_one_key_may_lease() -> None:
    result = run("demo", "--pool", "--nodes", "6")
    assert result.returncode == 2 and "at most 10 vessels, 2 per node" in result.stderr
