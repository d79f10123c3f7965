"""`seattle node uninstall` removes exactly what seattle created, and `node service install` writes a unit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from seattle.donor.daemonctl import is_locked
from seattle.donor.donation import fallback_machine, init_node_from_profile
from seattle.donor.service import unit_name, unit_text
from seattle.donor.uninstall import uninstall
from seattle.errors import NoManifest
from seattle.keys import generate_identity, save_identity
from seattle.nodemgr.nodedir import NodeDir
from seattle.planner.profile import Profile, VesselPlan
from tests.cli_runner import ok, seattle


def _tree(root: Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, n), root) for d, dirs, files in os.walk(root) for n in dirs + files}


@pytest.mark.slow
def test_uninstall_stops_the_node_and_leaves_nothing_behind(tmp_path: Path) -> None:
    owner = generate_identity("alice")
    save_identity(owner)
    config_home = tmp_path / "xdg"
    # No systemctl on this PATH: `--enable` must fall back to printing the commands, never touch a real manager.
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home), "PATH": str(tmp_path / "no-bin")}
    before = _tree(tmp_path)
    node_dir = tmp_path / "node"
    ok("node", "init", "--dir", str(node_dir), "--owner", "alice", "--port", "0")
    installed = ok("node", "service", "install", "--dir", str(node_dir), "--enable", env=env)
    assert "could not enable it here (systemctl is not installed)" in installed
    unit = config_home / "systemd" / "user" / unit_name(node_dir)
    assert f"wrote {unit}" in installed and f"systemctl --user enable --now {unit.name}" in installed
    assert f'"{node_dir}"' in unit.read_text() and "KillSignal=SIGTERM" in unit.read_text()
    ok("node", "start", "--dir", str(node_dir))
    (node_dir / "vessels" / "v1" / "data.txt").write_text("a researcher's file")  # inside a vessel: seattle's

    out = ok("node", "uninstall", "--dir", str(node_dir), "--yes", env=env)
    assert "stopped the running node manager" in out and f"{node_dir} is gone" in out
    assert not node_dir.exists() and not unit.exists()
    # What is left is what was there before, plus the empty directories the unit went into.
    assert _tree(tmp_path) - before == {"xdg", "xdg/systemd", "xdg/systemd/user"}


def test_files_seattle_did_not_create_are_kept_with_their_directory(tmp_path: Path) -> None:
    node_dir = tmp_path / "existing"
    node_dir.mkdir()
    (node_dir / "notes.txt").write_text("mine")
    (node_dir / "node.json.bak").write_text("also mine")
    key = generate_identity("k").public_key
    init_node_from_profile(node_dir, Profile((VesselPlan(100, key),), (), key), planner=key, port=0,
                           machine=fallback_machine())
    assert NodeDir(node_dir).read_manifest()["created_dir"] is False
    result = uninstall(node_dir)
    assert not result.stopped
    assert sorted(p.name for p in result.kept) == ["node.json.bak", "notes.txt"]
    assert sorted(os.listdir(node_dir)) == ["node.json.bak", "notes.txt"]


def test_a_directory_that_existed_before_init_is_kept_even_when_empty(tmp_path: Path) -> None:
    node_dir = tmp_path / "existing"
    node_dir.mkdir()
    key = generate_identity("k").public_key
    init_node_from_profile(node_dir, Profile((VesselPlan(100, key),), (), key), planner=key, port=0,
                           machine=fallback_machine())
    uninstall(node_dir)
    assert node_dir.is_dir() and os.listdir(node_dir) == []


def test_without_a_manifest_nothing_is_removed(tmp_path: Path) -> None:
    node_dir = tmp_path / "node"
    node_dir.mkdir()
    (node_dir / "node.json").write_text("{}")
    with pytest.raises(NoManifest):
        uninstall(node_dir)
    refused = seattle("node", "uninstall", "--dir", str(node_dir), "--yes")
    assert refused.returncode == 2 and "nothing was removed" in refused.stderr
    NodeDir(node_dir).manifest_path.write_text(
        '{"format": "seattle-manifest-v1", "created_dir": true, "outside": ["rel"]}')
    with pytest.raises(NoManifest):  # a manifest naming a relative outside path is not one seattle wrote
        uninstall(node_dir)
    assert sorted(os.listdir(node_dir)) == [NodeDir.MANIFEST, "node.json"]
    assert not is_locked(node_dir)


def test_unit_text_quotes_paths_for_systemd(tmp_path: Path) -> None:
    text = unit_text(tmp_path / 'odd "dir" 100%', python="/opt/py thon/bin/python")
    assert 'ExecStart="/opt/py thon/bin/python" "-m" "seattle.cli" "node" "run" "--dir"' in text
    assert 'odd \\"dir\\" 100%%"' in text
