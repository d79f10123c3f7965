"""Where cgroup v2 gives vessels their groups, decided on a directory tree laid out like a v2 hierarchy.

This host's kernel binds cpu and memory to v1, so the v2 choice is tested on files: which group is the base,
when it counts as delegated (systemd's `user.delegate` mark), and the reason given when it is not.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from seattle.vessel.oslayer.cgroups import HOST_LEAF, _detect_v2


def hierarchy(root: Path, group: str, controllers: str = "cpu memory") -> Path:
    directory = root / group.strip("/") if group.strip("/") else root
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cgroup.controllers").write_text(controllers + "\n")
    (directory / "cgroup.subtree_control").write_text("\n")
    return directory


def test_a_group_not_marked_delegated_is_refused_with_the_way_to_get_one(tmp_path: Path) -> None:
    hierarchy(tmp_path, "/system.slice/seattle.service")
    found = _detect_v2((tmp_path, "/"), "/system.slice/seattle.service")
    assert not found.available
    assert "not delegated" in found.reason
    assert "Delegate=yes" in found.reason and "seattle node service install" in found.reason


def test_a_delegated_group_is_the_base_and_the_daemon_moves_into_a_leaf(tmp_path: Path) -> None:
    service = hierarchy(tmp_path, "/user.slice/seattle.service")
    os.setxattr(service, "user.delegate", b"1")
    found = _detect_v2((tmp_path, "/"), "/user.slice/seattle.service")
    assert found.kind == "v2"
    assert found.bases == (service,)
    assert found.host_leaf == service / HOST_LEAF
    # Once the daemon is in the leaf, the leaf's parent is still the base.
    assert _detect_v2((tmp_path, "/"), f"/user.slice/seattle.service/{HOST_LEAF}").bases == (service,)


def test_a_delegated_group_without_the_cpu_controller_is_refused(tmp_path: Path) -> None:
    service = hierarchy(tmp_path, "/seattle.service", controllers="memory pids")
    os.setxattr(service, "user.delegate", b"1")
    found = _detect_v2((tmp_path, "/"), "/seattle.service")
    assert not found.available and "no cpu controller" in found.reason


@pytest.mark.skipif(os.getuid() != 0, reason="the root group counts as ours only for root")
def test_root_in_the_root_group_uses_it_without_a_leaf(tmp_path: Path) -> None:
    hierarchy(tmp_path, "/")
    found = _detect_v2((tmp_path, "/"), "/")
    assert found.kind == "v2" and found.bases == (tmp_path,) and found.host_leaf is None


def test_a_group_outside_the_mount_is_refused(tmp_path: Path) -> None:
    found = _detect_v2((tmp_path, "/container"), "/elsewhere")
    assert not found.available and "outside" in found.reason
