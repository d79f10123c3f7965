"""The known-nodes file: a first contact pins, the pin is what later contacts expect, forget removes it; the file
is 0600, bounded, and a damaged one is refused naming the file and the line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from seattle.errors import BadKnownNodesFile, KnownNodesFull, UnknownKnownNode
from seattle.keys import generate_identity
from seattle.nodemgr import known_nodes
from seattle.nodemgr.known_nodes import KnownNodes


def test_first_use_pins_and_later_uses_expect_the_pin(tmp_path: Path) -> None:
    known = KnownNodes(tmp_path / "known_nodes")
    first, second = generate_identity("a").public_key, generate_identity("b").public_key
    assert known.expected("127.0.0.1", 1224) is None
    known.pin("127.0.0.1", 1224, first)
    known.pin("::1", 1224, second)
    pin = known.expected("127.0.0.1", 1224)
    assert pin is not None and (pin.key, pin.line) == (first, 1)
    assert known.expected("::1", 1224) == known_nodes.Pin(second, 2)
    assert known.expected("127.0.0.1", 1225) is None  # the port is part of the address
    # A pin is never replaced by a later one: the first key stays what is expected.
    known.pin("127.0.0.1", 1224, second)
    assert known.expected("127.0.0.1", 1224) == known_nodes.Pin(first, 1)
    assert stat.S_IMODE((tmp_path / "known_nodes").stat().st_mode) == 0o600
    assert list(known.entries()) == ["127.0.0.1:1224", "[::1]:1224"]


def test_forget_removes_one_pin_and_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "known_nodes"
    key = generate_identity("a").public_key
    path.write_text(f"# my nodes\n10.0.0.1:1224 {key.to_text()}\n\n10.0.0.2:1224 {key.to_text()}\n")
    known = KnownNodes(path)
    assert known.forget("10.0.0.1:1224").key == key
    assert path.read_text() == f"# my nodes\n\n10.0.0.2:1224 {key.to_text()}\n"
    assert known.expected("10.0.0.2", 1224) == known_nodes.Pin(key, 3)
    with pytest.raises(UnknownKnownNode, match=r"10\.0\.0\.1:1224 is not pinned"):
        known.forget("10.0.0.1:1224")


@pytest.mark.parametrize(("text", "complaint"), [
    ("10.0.0.1:1224\n", "line 1 is not `HOST:PORT KEY`"),
    ("# ok\n10.0.0.1 ed25519:AAAA\n", "line 2"),
    ("10.0.0.1:1224 not-a-key\n", "line 1"),
    ("10.0.0.1:1224 {key}\n10.0.0.1:1224 {key}\n", "line 2 pins 10.0.0.1:1224 again"),
])
def test_a_damaged_file_is_refused_naming_the_line(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "known_nodes"
    path.write_text(text.format(key=generate_identity("a").public_key.to_text()))
    with pytest.raises(BadKnownNodesFile, match=complaint) as caught:
        KnownNodes(path).expected("10.0.0.1", 1224)
    assert str(path) in str(caught.value)


def test_the_file_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(known_nodes, "MAX_ENTRIES", 2)
    known = KnownNodes(tmp_path / "known_nodes")
    key = generate_identity("a").public_key
    known.pin("10.0.0.1", 1, key)
    known.pin("10.0.0.2", 1, key)
    with pytest.raises(KnownNodesFull, match="forget"):
        known.pin("10.0.0.3", 1, key)
    monkeypatch.setattr(known_nodes, "MAX_FILE_BYTES", 10)
    with pytest.raises(BadKnownNodesFile, match="larger than 10 bytes"):
        known.entries()


def test_a_symlinked_file_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").write_text("")
    (tmp_path / "known_nodes").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(BadKnownNodesFile):
        KnownNodes(tmp_path / "known_nodes").entries()
