"""seattle.nodemgr.nodedir: NodeDir creates the directory privately, round-trips its records, knows its files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from seattle.errors import NodeNotFound, NoManifest
from seattle.nodemgr.config import NodeConfig
from seattle.nodemgr.nodedir import MANIFEST_FORMAT, NodeDir


def test_create_makes_a_private_directory(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        NodeDir(tmp_path / "a" / "node").create()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a" / "node").stat().st_mode) == 0o700


def test_config_round_trips_atomically(tmp_path: Path) -> None:
    node_dir = NodeDir(tmp_path)
    with pytest.raises(NodeNotFound):
        node_dir.read_config()
    assert not node_dir.holds_node()
    config = NodeConfig("127.0.0.1", 1224, ("127.0.0.1",), ("127.0.0.1:9",))
    node_dir.write_config(config)
    assert node_dir.read_config() == config and node_dir.holds_node()
    assert os.listdir(tmp_path) == [NodeDir.CONFIG]


def test_manifest_round_trips_and_a_foreign_one_is_refused(tmp_path: Path) -> None:
    node_dir = NodeDir(tmp_path)
    with pytest.raises(NoManifest):
        node_dir.read_manifest()
    manifest = {"format": MANIFEST_FORMAT, "created_dir": True, "outside": ["/x"]}
    node_dir.write_manifest(manifest)
    assert node_dir.read_manifest() == manifest
    node_dir.write_manifest({"format": MANIFEST_FORMAT, "created_dir": True, "outside": ["relative"]})
    with pytest.raises(NoManifest):
        node_dir.read_manifest()


def test_owns_seattles_names_only(tmp_path: Path) -> None:
    node_dir = NodeDir(tmp_path)
    for name in ("node.json", "nodemanager.log.2", ".node.json.0a1b2c.tmp", "notes.txt", "node.json.bak"):
        (tmp_path / name).write_text("x")
    (tmp_path / "vessels").mkdir()
    (tmp_path / "logs").symlink_to(tmp_path / "vessels")
    owned = sorted(entry.name for entry in tmp_path.iterdir() if node_dir.owns(entry))
    assert owned == [".node.json.0a1b2c.tmp", "node.json", "nodemanager.log.2", "vessels"]
