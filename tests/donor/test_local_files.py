"""Node directories are forced to 0700 and files seattle creates never follow a planted symlink (issue 13).

Before, `node init` into an existing directory kept its mode (0755 or 0777: anyone could list it, and with
0777 plant files and symlinks the node manager would use), and `node start` appended its output through a
symlink planted as node.out.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from seattle.donor.daemonctl import start_daemon
from seattle.errors import NodeControlFailed, UnsafeNodeDirectory
from seattle.keys import generate_identity
from seattle.nodemgr.nodedir import NodeDir
from tests.cli_runner import ok


@pytest.mark.parametrize("mode", [0o755, 0o777, 0o701])
def test_an_existing_directory_is_tightened_to_0700(tmp_path: Path, mode: int) -> None:
    node_dir = tmp_path / "node"
    node_dir.mkdir()
    node_dir.chmod(mode)
    owner = generate_identity("owner").public_key.to_text()
    ok("node", "init", "--dir", str(node_dir), "--owner", owner, "--port", "0")
    assert stat.S_IMODE(node_dir.stat().st_mode) == 0o700


def test_an_existing_node_is_tightened_when_it_is_opened_again(tmp_path: Path) -> None:
    node_dir = tmp_path / "node"
    NodeDir(node_dir).create()
    node_dir.chmod(0o755)
    NodeDir(node_dir).create()
    assert stat.S_IMODE(node_dir.stat().st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_a_directory_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    node_dir = tmp_path / "theirs"
    node_dir.mkdir(mode=0o755)
    os.chown(node_dir, 12345, 12345)
    with pytest.raises(UnsafeNodeDirectory, match="belongs to user 12345"):
        NodeDir(node_dir).create()
    assert stat.S_IMODE(node_dir.stat().st_mode) == 0o755


def test_start_refuses_a_symlink_planted_as_its_log(tmp_path: Path) -> None:
    node_dir = tmp_path / "node"
    owner = generate_identity("owner").public_key.to_text()
    ok("node", "init", "--dir", str(node_dir), "--owner", owner, "--port", "0")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (node_dir / NodeDir.START_LOG).symlink_to(victim)
    with pytest.raises(NodeControlFailed, match="symbolic link"):
        start_daemon(node_dir)
    assert victim.read_text() == "precious\n"



class _Stop(Exception):
    pass


def test_the_node_manager_tightens_its_directory_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from seattle.nodemgr.daemon import run_daemon

    node_dir = tmp_path / "node"
    ok("node", "init", "--dir", str(node_dir), "--owner", generate_identity("o").public_key.to_text(), "--port",
       "0")
    node_dir.chmod(0o755)

    def stop(*args: object) -> None:  # the first thing opened in the directory after the check
        raise _Stop

    monkeypatch.setattr("seattle.nodemgr.daemon._open_log", stop)
    with pytest.raises(_Stop):
        run_daemon(node_dir)
    assert stat.S_IMODE(node_dir.stat().st_mode) == 0o700
