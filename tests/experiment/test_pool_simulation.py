"""The pool simulation on a small pool: real ledgers, the real acquire plan, churn and cheating keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from seattle.experiment.pool_simulation import PoolConfig, run_simulation

ROOT = Path(__file__).resolve().parents[2]


def test_no_key_gets_a_slot_twice_once_its_lease_is_filed_and_cheaters_are_banned() -> None:
    summary = run_simulation(PoolConfig(nodes=300, researchers=30, acquires=60, churn=0.2, cheaters=0.1, seed=5))
    assert summary.acquires > 40
    assert summary.over_quota_beyond_window == 0
    assert summary.cheater_bans > 0  # after their first race, every node refuses them
    assert 0 < summary.learnt_bans < summary.cheater_bans  # most from evidence another node found and filed
    assert summary.over_quota_max <= 10  # at most one quota's worth of doubles, from one race window
    assert summary.vessels_leased + summary.slots_lost >= summary.vessels_asked * 0.9


def test_without_churn_or_cheaters_every_acquire_gets_everything() -> None:
    summary = run_simulation(PoolConfig(nodes=200, researchers=20, acquires=40, churn=0.0, cheaters=0.0, seed=2))
    assert summary.success == 1.0
    assert summary.over_quota_keys == 0 and summary.over_quota_in_window == 0
    assert summary.refusals == {}
    assert summary.median_seconds() < 1.0  # no node left: round trips only, no timeout


@pytest.mark.slow
def test_the_command_prints_the_summary_as_json() -> None:
    finished = subprocess.run([sys.executable, str(ROOT / "simulations" / "pool.py"), "--nodes", "50",
                               "--researchers", "5", "--acquires", "5", "--json"],
                              check=True, capture_output=True, text=True, timeout=60)
    figures = json.loads(finished.stdout)
    assert figures["acquires"] + figures["over_quota_keys"] >= 1 and "median_seconds" in figures
