"""Targets, groups and the saved session (seattle.experiment.targets, session): pure data, no network."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from seattle.errors import BadGroupName, BadSessionFile, BadSetting, BadTarget, UnknownTarget
from seattle.experiment.session import Session, load_session, save_session, session_path
from seattle.experiment.targets import Targets, VesselRef


def three() -> Targets:
    targets = Targets()
    for port, vessel in [(1224, "v1"), (1224, "v2"), (1225, "v1")]:
        targets.add_vessel(VesselRef("127.0.0.1", port, vessel))
    return targets


def test_vessels_are_numbered_once_and_resolved_by_every_form() -> None:
    targets = three()
    assert targets.add_vessel(VesselRef("127.0.0.1", 1224, "v2")) == 2  # known: same number
    assert targets.resolve("%all") == [1, 2, 3]
    assert targets.resolve("%3") == [3]
    assert targets.resolve("127.0.0.1:1225:v1") == [3]
    assert targets.resolve("[::1]:1224:v9") == [4]  # a new address is numbered on first use
    assert str(targets.vessels[4].ref) == "[::1]:1224:v9"
    with pytest.raises(UnknownTarget, match=r"%1\.\.%4"):
        targets.resolve("%9")
    with pytest.raises(UnknownTarget):
        targets.resolve("nosuchgroup")
    with pytest.raises(BadTarget):
        targets.resolve("127.0.0.1:1224:")


def test_groups_add_remove_move_and_forget() -> None:
    targets = three()
    targets.add_to_group("a", [1, 2])
    targets.add_to_group("b", [2, 3])
    targets.move_to_group("a", [3])
    assert targets.groups == {"a": [1, 2, 3], "b": [2]}
    targets.remove_from_group("a", [1])
    assert targets.resolve("a") == [2, 3]
    targets.forget([2])  # split or joined away: gone from every group
    assert targets.groups == {"a": [3], "b": []}
    assert targets.resolve("%all") == [1, 3]
    targets.delete_group("b")
    assert targets.group_names() == ["%all", "a"]
    for bad in ("%x", "1abc", "a b", ""):
        with pytest.raises(BadGroupName):
            targets.set_group(bad, [])


def test_the_session_survives_a_save_and_load(tmp_path: Path) -> None:
    session = Session(targets=three())
    session.set_identity("alice")
    session.set_timeout(5)
    session.target = "g"
    session.targets.set_group("g", [1, 3])
    save_session(session)
    assert session_path().stat().st_mode & 0o077 == 0
    loaded = load_session()
    assert loaded.to_json() == session.to_json()
    assert not any(name.endswith(".tmp") for name in os.listdir(session_path().parent))


def test_a_damaged_session_file_is_named_not_a_traceback() -> None:
    session_path().write_text("{not json")
    with pytest.raises(BadSessionFile, match=r"session\.json"):
        load_session()
    session_path().write_text(json.dumps({"format": "something else"}))
    with pytest.raises(BadSessionFile):
        load_session()


def test_settings_are_checked_and_large_uploads_get_more_time() -> None:
    session = Session()
    with pytest.raises(BadSetting):
        session.set_timeout(0)
    with pytest.raises(BadSetting):
        session.set_upload_rate(0)
    session.set_upload_rate(1000)
    assert session.upload_timeout(100) == session.timeout
    assert session.upload_timeout(100_000) == 100.0
