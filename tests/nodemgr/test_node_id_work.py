"""`init_node` draws the node key until its overlay id carries the network's work (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seattle.keys import generate_identity
from seattle.nodemgr.node import init_node
from seattle.nodemgr.nodedir import NodeDir
from seattle.overlay.nodeid import DEFAULT_NETWORK, NetworkParameters, NodeId, id_is_bound, id_work


def test_init_node_stores_a_key_whose_id_is_bound(tmp_path: Path) -> None:
    network = NetworkParameters(puzzle_bits=9)
    node_key = init_node(tmp_path / "node", generate_identity("owner").public_key, network=network)
    stored = NodeDir(tmp_path / "node").load_identity()
    assert stored.public_key == node_key  # the key is the whole solution: nothing else is stored
    assert id_work(NodeId.from_public_key(node_key)) >= 9


@pytest.mark.slow  # 0.2 s on average, but a geometric tail: 1 s at the p99
def test_init_node_solves_the_real_networks_puzzle_by_default(tmp_path: Path) -> None:
    node_key = init_node(tmp_path / "node", generate_identity("owner").public_key)
    assert id_is_bound(NodeId.from_public_key(node_key), DEFAULT_NETWORK)
