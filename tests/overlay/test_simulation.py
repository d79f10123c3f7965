"""The overlay simulation (`seattle.overlay.simulation`) and its command (`simulations/overlay.py`), on small
overlays: real protocol engines on the simulated network, in virtual time."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from seattle.overlay.nodeid import ID_BITS
from seattle.overlay.simulation import Config, LiveIds, run_simulation, write_csv, write_plot

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def calm() -> object:
    return run_simulation(Config(nodes=300, lookups=60, seed=7))


@pytest.fixture(scope="module")
def churned() -> object:
    return run_simulation(Config(nodes=300, lookups=60, churn=0.3, loss=0.01, seed=7))


@pytest.mark.slow
def test_without_churn_every_lookup_finds_the_closest_node(calm) -> None:
    summary = calm.summary
    assert summary.lookups == len(calm.lookups) == 60
    assert summary.success_rate == 1.0 and summary.closest_found_mean == 1.0
    assert summary.timed_out == summary.left == summary.joined == 0
    # 300 nodes, tables of ~80 contacts: two or three request rounds, never more than a handful.
    assert 1 <= summary.hops_median <= 3 and max(f.hops for f in calm.lookups) <= 5
    # A lookup asks at least the k = 20 closest and hears from each: at least 40 datagrams of its own.
    assert all(f.messages >= 40 for f in calm.lookups)
    assert summary.datagrams_per_lookup >= summary.messages_mean
    assert 0 < summary.latency_median <= summary.latency_p90 < 5


@pytest.mark.slow
def test_churn_and_loss_leave_and_join_nodes_and_lookups_still_find_the_closest(churned, calm) -> None:
    summary = churned.summary
    assert summary.left == 90 and summary.joined + summary.joins_failed == 90
    assert summary.joined >= 85  # a join retries its bootstrap; 1 % loss rarely defeats three tries
    # The protocol routes around the dead: with 30 % churn nearly every lookup still gets the closest node
    # (each lookup waits for the k closest that answer, so only a loss-struck final reply can cost one).
    assert summary.success_rate >= 0.95 and summary.timed_out == 0
    assert summary.closest_found_mean >= 0.9
    # Dead peers cost timeouts and the joins cost datagrams: churn is visible in the figures.
    assert summary.latency_median > calm.summary.latency_median
    assert summary.datagrams_per_lookup > calm.summary.datagrams_per_lookup


@pytest.mark.slow
def test_the_same_seed_gives_the_same_figures() -> None:
    config = Config(nodes=120, lookups=15, churn=0.2, loss=0.02, seed=3)
    first, second = run_simulation(config), run_simulation(config)
    assert first.lookups == second.lookups
    other = run_simulation(Config(nodes=120, lookups=15, churn=0.2, loss=0.02, seed=4))
    assert other.lookups != first.lookups


@pytest.mark.slow
def test_csv_and_png_hold_every_lookup(calm, tmp_path: Path) -> None:
    write_csv(calm, tmp_path / "lookups.csv")
    write_plot(calm, tmp_path / "lookups.png")
    with (tmp_path / "lookups.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["index"]) for row in rows] == list(range(60))
    assert {row["success"] for row in rows} == {"True"}
    assert all(float(row["latency"]) > 0 and int(row["hops"]) >= 1 for row in rows)
    assert (tmp_path / "lookups.png").read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.slow
def test_the_command_prints_json_and_writes_its_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [
        sys.executable, str(ROOT / "simulations" / "overlay.py"), "--nodes", "150", "--lookups", "20",
        "--churn", "0.1", "--seed", "5", "--out", str(out), "--json",
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    summary = json.loads(finished.stdout)
    assert summary["nodes"] == 150 and summary["lookups"] == 20 and summary["churn"] == 0.1
    assert summary["left"] == 15 and summary["out"] == str(out)
    assert 0.9 <= summary["success_rate"] <= 1.0
    assert summary["peak_rss_mib"] > 10
    assert len((out / "lookups.csv").read_text().splitlines()) == 21
    assert (out / "lookups.png").read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.slow
def test_without_rejoin_churn_only_removes_nodes(tmp_path: Path) -> None:
    command = [
        sys.executable, str(ROOT / "simulations" / "overlay.py"), "--nodes", "150", "--lookups", "20",
        "--churn", "0.2", "--no-rejoin", "--seed", "5", "--out", str(tmp_path / "run"), "--json",
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    summary = json.loads(finished.stdout)
    assert (summary["rejoin"], summary["left"], summary["joined"]) == (False, 30, 0)
    assert summary["success_rate"] >= 0.9


@pytest.mark.slow
def test_the_command_names_a_bad_flag(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "simulations" / "overlay.py"), "--churn", "1.5", "--out", str(tmp_path)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2 and "churn" in finished.stderr
    assert not any(tmp_path.iterdir())  # nothing written for a run that never started


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [("nodes", 1, "nodes"), ("churn", -0.1, "churn"), ("loss", 1.0, "loss"), ("lookups", 0, "lookups"),
     ("interval", 0.0, "interval"), ("churn", 1.0, "churn")],
)
def test_bad_configs_are_named(field: str, value: float, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Config(**{field: value})


def test_the_live_set_answers_exactly_as_sorting_everything_does() -> None:
    chooser = random.Random(9)
    ids = [chooser.getrandbits(ID_BITS) for _ in range(500)]
    live = LiveIds(ids)
    for value in ids[:100]:
        live.remove(value)
    extra = [chooser.getrandbits(ID_BITS) for _ in range(50)]
    for value in extra:
        live.add(value)
    present = ids[100:] + extra
    for _ in range(50):
        target = chooser.getrandbits(ID_BITS)
        exclude = chooser.choice(present)
        expected = sorted((v for v in present if v != exclude), key=lambda v: v ^ target)[:20]
        assert live.closest(target, 20, exclude) == expected
