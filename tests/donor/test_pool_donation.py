"""A donation with a pool share: pool vessels cut from it, owned by the node's own key, not advertised."""

from __future__ import annotations

import json
from pathlib import Path

from seattle.donor.donation import divide, fallback_machine, init_node_from_profile
from seattle.keys import PublicKey, generate_identity
from seattle.nodemgr.node import load_node_identity
from seattle.nodemgr.nodedir import NodeDir
from seattle.nodemgr.vessels import NodeState
from seattle.planner.profile import PoolShare, Profile, VesselPlan

OWNER = generate_identity("owner").public_key
PLANNER = generate_identity("planner").public_key


def test_the_pool_share_becomes_pool_vessels_of_its_size() -> None:
    donation = divide(fallback_machine(cores=4), [VesselPlan(60, OWNER)], 50, range(50000, 50100),
                      pool_share=PoolShare(40, 10))
    assert donation.pool == 4 and len(donation.vessels) == 5
    own, *pool = [resources for resources, _, _ in donation.vessels]
    assert all(vessel["cpu"] == pool[0]["cpu"] for vessel in pool[:-1]) and pool[0]["cpu"] < own["cpu"]
    assert "for the pool" in donation.summary()


def test_init_node_from_profile_makes_pool_vessels_the_nodes_own(tmp_path: Path) -> None:
    profile = Profile((VesselPlan(80, OWNER),), (), PLANNER, PoolShare(20))
    node_dir = tmp_path / "node"
    init_node_from_profile(node_dir, profile, planner=PLANNER, percent=20, port=0, ports=range(40000, 40020),
                           machine=fallback_machine(cores=2))
    node_key = load_node_identity(node_dir).public_key
    with NodeState.open(node_dir) as state:
        vessels = state.get_vessels()
    assert len(vessels) == 11 and PublicKey(vessels[0].owner) == OWNER and vessels[0].advertise
    assert all(PublicKey(v.owner) == node_key and not v.users and not v.advertise for v in vessels[1:])
    record = json.loads(NodeDir(node_dir).donation_path.read_text())
    assert [v["pool"] for v in record["vessels"]] == [False] + [True] * 10
