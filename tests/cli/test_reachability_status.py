"""How `seattle node status` shows the node's reachability (the control socket's `reachability` field)."""

from __future__ import annotations

from seattle.cli.donor import reachability_line

NOW = 1_800_000_000.0


def test_a_measured_node_shows_its_state_what_it_means_its_address_and_its_checks() -> None:
    line = reachability_line({"state": "nat", "observed": ["198.18.1.10:63100"], "observed_ip": "198.18.1.10",
                              "udp": False, "tcp": False, "checked_at": NOW - 75, "next_check": NOW + 3525}, NOW)
    assert line == ("reachability: nat (behind a NAT: peers cannot reach this node unasked); seen at "
                    "198.18.1.10:63100; checked 1m15s ago, next in 58m45s")


def test_an_unmeasured_node_says_so_and_a_symmetric_nat_shows_its_ip() -> None:
    unknown = {"state": "unknown", "observed": [], "observed_ip": None, "udp": None, "tcp": None,
               "checked_at": None, "next_check": None}
    assert reachability_line(unknown, NOW) == "reachability: unknown (not measured yet)"
    symmetric = reachability_line({"state": "nat", "observed": [], "observed_ip": "198.18.1.11", "udp": False,
                                   "tcp": False, "checked_at": NOW, "next_check": NOW + 3600}, NOW)
    assert "seen at 198.18.1.11;" in symmetric
