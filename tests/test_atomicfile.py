"""seattle.atomicfile: mode, replacement, no partial file on failure, no writing through a planted link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from seattle import atomicfile
from seattle.atomicfile import write_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_with_the_mode_asked_for_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "public", b"p", mode=0o644)
        write_atomic(tmp_path / "program", b"x", mode=0o755)
    finally:
        os.umask(old)
    write_atomic(tmp_path / "private", b"s")
    assert (_mode(tmp_path / "public"), _mode(tmp_path / "program"), _mode(tmp_path / "private")) == (
        0o644, 0o755, 0o600)
    assert (tmp_path / "public").read_bytes() == b"p"


def test_replaces_an_existing_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    target.write_bytes(b"old")
    write_atomic(target, b"new" * 100_000, mode=0o644)
    assert target.read_bytes() == b"new" * 100_000
    assert os.listdir(tmp_path) == ["f.json"]


def test_replaces_a_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"untouched")
    (tmp_path / "f").symlink_to(outside)
    write_atomic(tmp_path / "f", b"mine")
    assert not (tmp_path / "f").is_symlink() and (tmp_path / "f").read_bytes() == b"mine"
    assert outside.read_bytes() == b"untouched"


def test_overwrite_false_refuses_an_existing_target(tmp_path: Path) -> None:
    target = tmp_path / "key"
    write_atomic(target, b"first", overwrite=False)
    with pytest.raises(FileExistsError):
        write_atomic(target, b"second", overwrite=False)
    assert target.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["key"]


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")

    def fail(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomicfile.os, "write", fail)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


def test_refuses_to_follow_a_symlink_planted_at_the_temporary_name(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    (tmp_path / ".f.planted.tmp").symlink_to(victim)
    monkeypatch.setattr(atomicfile, "temporary_name", lambda target: f".{target}.planted.tmp")
    with pytest.raises(FileExistsError):
        write_atomic(tmp_path / "f", b"evil")
    assert victim.read_bytes() == b"untouched"
    assert not (tmp_path / "f").exists()
    assert (tmp_path / ".f.planted.tmp").is_symlink()
