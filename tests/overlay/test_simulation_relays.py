"""The relay model of the overlay simulation (`simulations/relays.py`) on 200 nodes, 60 % behind routers, 20 %
leave-and-join churn spread over 100 virtual seconds (so relays leave while holding reservations)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from seattle.nodemgr.relay import RESERVATIONS_FULL, RelayLimits
from seattle.overlay.simulation import Config, Result, run_simulation
from simulations.relays import RelayModel

pytestmark = pytest.mark.slow  # about 1.5 s: a 200-node overlay run

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def result() -> Result:
    return run_simulation(Config(nodes=200, churn=0.2, behind_nat=0.6, lookups=20, interval=5.0))


def test_nated_nodes_hold_two_reservations_on_public_nodes_and_dead_relays_are_replaced(result: Result) -> None:
    model = RelayModel(result.timeline)
    figures = model.run(hours=1.0)
    assert figures.nated > 100 and figures.relays > 50
    for client in model.clients.values():
        for relay in client.holding:
            assert result.timeline.kind[relay] is None and relay in model.cores
    alive = [client for client in model.clients.values() if client.left is None]
    assert all(len(client.holding) == 2 for client in alive)
    assert figures.reachable == figures.both_held == 1.0
    # Relays left with reservations on them; every NATed node still up got a replacement.
    assert figures.lost > 0 and figures.replaced > 0 and figures.unreplaced == 0
    assert 0 < figures.replace_median <= figures.replace_p95 < 60
    assert figures.reservations_peak <= RelayLimits().max_reservations and not figures.refusals
    assert figures.nated_bytes_per_hour > 0 and figures.relay_bytes_per_hour > 0


def test_no_relay_exceeds_its_cap_and_refusals_are_counted(result: Result) -> None:
    model = RelayModel(result.timeline, limits=RelayLimits(max_reservations=2))
    figures = model.run(hours=0.5)
    assert figures.reservations_peak <= 2 and figures.reservations_max <= 2
    assert figures.refusals.get(RESERVATIONS_FULL, 0) > 0
    assert all(len(core.reservations) <= 2 for core in model.cores.values())
    # 75 relays have 150 places for the 250 reservations wanted: the refused go on to other relays, and most
    # NATed nodes find at least one.
    assert 0.5 < figures.reachable < 1.0


def test_the_command_reports_the_relays_behind_nat(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "simulations" / "overlay.py"), "--nodes", "120", "--lookups", "10",
               "--interval", "2", "--churn", "0.1", "--behind-nat", "0.5", "--relay-hours", "0.2", "--json",
               "--out", str(tmp_path)]
    summary = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    assert summary["relays"]["hours"] == pytest.approx(0.2) and summary["relays"]["reachable"] == 1.0
    refused = subprocess.run([*command[:-3], "--relay-hours", "0", "--out", str(tmp_path)],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "--relay-hours must be a positive number" in refused.stderr
