"""The overlay simulation with a share of its nodes behind home routers (`Config.behind_nat`): they measure
their reachability, stay DHT clients, and lookups from them and among the public nodes still succeed."""

from __future__ import annotations

import pytest

from seattle.overlay.simulation import Config, run_simulation


@pytest.mark.slow
def test_sixty_percent_behind_routers_with_churn_every_node_is_measured_right_and_lookups_succeed() -> None:
    summary = run_simulation(Config(nodes=150, lookups=30, churn=0.2, behind_nat=0.6, seed=3)).summary
    assert summary.behind_nat == 0.6 and summary.joins_failed == 0 and summary.joined == 30
    assert summary.success_rate == 1.0
    # Every live node (joiners too) has a state, the one its router gives, within seconds of its start.
    assert summary.measured == 1.0 and summary.state_correct == 1.0
    assert 0 < summary.reachable_median <= summary.reachable_p90 < 10


def test_behind_nat_is_a_share_of_the_nodes() -> None:
    with pytest.raises(ValueError, match="behind_nat"):
        Config(behind_nat=1.0)
