"""`seattle node uninstall` removes only what seattle made for this node, whatever its manifest says (issue 13).

Before, every path in the manifest's "outside" list was unlinked (files) or removed whole (directories with a
pyvenv.cfg): a tampered manifest naming /etc/passwd, ~/.ssh/authorized_keys or someone's virtual environment
had them deleted by the donor's own uninstall.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seattle.donor.donation import fallback_machine, init_node_from_profile
from seattle.donor.service import unit_directory, unit_name
from seattle.donor.uninstall import VENV_MARKER, allowed_outside, uninstall
from seattle.errors import UnsafeManifest
from seattle.keys import generate_identity
from seattle.nodemgr.nodedir import NodeDir
from seattle.planner import installer
from seattle.planner.profile import Profile, VesselPlan


@pytest.fixture
def node_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    key = generate_identity("k").public_key
    directory = tmp_path / "install" / "node"
    init_node_from_profile(directory, Profile((VesselPlan(100, key),), (), key), planner=key, port=0,
                           machine=fallback_machine())
    return directory


def _tamper(node_dir: Path, outside: list[str]) -> None:
    path = NodeDir(node_dir).manifest_path
    manifest = json.loads(path.read_text())
    manifest["outside"] = outside
    path.write_text(json.dumps(manifest))


def _victims(tmp_path: Path) -> dict[str, Path]:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA me")
    (home / "project" / "venv").mkdir(parents=True)
    (home / "project" / "venv" / "pyvenv.cfg").write_text("home = /usr/bin")
    other_unit = unit_directory() / "seattle-node-0123456789.service"
    other_unit.parent.mkdir(parents=True)
    other_unit.write_text("[Unit]\n")
    return {"ssh": home / ".ssh", "keys": home / ".ssh" / "authorized_keys", "venv": home / "project" / "venv",
            "unit": other_unit, "passwd": Path("/etc/passwd"), "home": home,
            "dotdot": node_dir_parent_escape(tmp_path)}


def node_dir_parent_escape(tmp_path: Path) -> Path:
    """A path that starts at the install directory and climbs out of it."""
    return Path(f"{tmp_path}/install/../home/.ssh/authorized_keys")


@pytest.mark.parametrize("victim", ["ssh", "keys", "venv", "unit", "passwd", "home", "dotdot"])
def test_a_tampered_manifest_is_refused_and_nothing_is_removed(tmp_path: Path, node_dir: Path, victim: str) -> None:
    victims = _victims(tmp_path)
    legit = unit_directory() / unit_name(node_dir)
    legit.write_text("[Unit]\n")
    _tamper(node_dir, [str(legit), str(victims[victim])])
    before = sorted(os.listdir(node_dir))
    with pytest.raises(UnsafeManifest):
        uninstall(node_dir)
    assert sorted(os.listdir(node_dir)) == before and legit.exists()
    assert all(path.exists() for path in victims.values())


def test_the_nodes_own_unit_and_installer_directories_are_removed(tmp_path: Path, node_dir: Path) -> None:
    unit = unit_directory() / unit_name(node_dir)
    unit.parent.mkdir(parents=True)
    unit.write_text("[Unit]\n")
    venv = node_dir.parent / "venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin")
    (venv / VENV_MARKER).write_text(f"{node_dir}\n")
    _tamper(node_dir, [str(unit), str(venv), str(node_dir.parent)])  # the installer records venv first
    result = uninstall(node_dir)
    assert not unit.exists() and not node_dir.parent.exists()
    assert {unit, venv, node_dir.parent, node_dir} <= set(result.removed)


def test_a_venv_the_installer_did_not_mark_for_this_node_is_kept(tmp_path: Path, node_dir: Path) -> None:
    venv = node_dir.parent / "venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin")
    (venv / VENV_MARKER).write_text("/some/other/node\n")
    _tamper(node_dir, [str(node_dir.parent), str(venv)])
    result = uninstall(node_dir)
    assert (venv / "pyvenv.cfg").exists() and venv in result.kept


def test_allowed_outside_takes_only_this_nodes_paths(node_dir: Path) -> None:
    assert allowed_outside(node_dir, unit_directory() / unit_name(node_dir))
    assert not allowed_outside(node_dir, unit_directory() / unit_name(node_dir.parent))
    assert not allowed_outside(node_dir, Path("venv"))  # relative
    assert not allowed_outside(node_dir, Path("/"))
    assert allowed_outside(node_dir, node_dir.parent / "venv")
    assert installer.VENV_MARKER == VENV_MARKER


_SEGMENTS = st.sampled_from(["..", ".", "install", "node", "venv", "config", "systemd", "user", "etc", "passwd",
                             "seattle-node-0123456789.service", ""])


@given(st.lists(_SEGMENTS, max_size=8))
def test_no_spelling_of_a_path_escapes_the_three_allowed_ones(segments: list[str]) -> None:
    node_dir = Path("/srv/install/node")
    path = Path("/srv/" + "/".join(segments))
    allowed = {Path("/srv/install/venv"), Path("/srv/install")}
    if allowed_outside(node_dir, path):
        assert path in allowed or path.name == unit_name(node_dir)
        assert ".." not in path.parts
