"""The systemd unit writer refuses control characters and escapes `$`, `%`, quotes and backslashes (issue 13).

Before, a node directory named "x\\n[Service]\\nExecStart=/bin/sh -c evil" wrote a unit whose extra lines systemd
read as settings, and "$HOME" in a path was replaced by the service's environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seattle.donor.service import unit_text
from seattle.errors import UnsafeUnitValue
from tests.cli_runner import seattle


def _exec_words(text: str) -> list[str]:
    """systemd's reading of the ExecStart line (quotes, C escapes, then `%%` and `$$`): the words it runs."""
    line = next(line for line in text.split("\n") if line.startswith("ExecStart="))[len("ExecStart="):]
    words, i = [], 0
    while i < len(line):
        assert line[i] == '"', line
        i += 1
        word = ""
        while line[i] != '"':
            if line[i] == "\\":
                i += 1
            word += line[i]
            i += 1
        i += 2  # the closing quote and the space
        words.append(word.replace("%%", "\0").replace("$$", "$").replace("\0", "%"))
    return words


@pytest.mark.parametrize("name", ["x\n[Service]\nExecStart=/bin/sh -c evil", "tab\there", "esc\x1b[2J", "cr\r",
                                  "nul\x7f"])
def test_control_characters_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafeUnitValue):
        unit_text(tmp_path / name, python="/usr/bin/python3")
    with pytest.raises(UnsafeUnitValue):
        unit_text(tmp_path, python=f"/usr/bin/{name}")


def test_dollar_and_percent_are_escaped(tmp_path: Path) -> None:
    text = unit_text(tmp_path / "$HOME" / "${USER}%h", python="/usr/bin/python3")
    assert f'"{tmp_path}/$$HOME/$${{USER}}%%h"' in text
    assert _exec_words(text)[-1] == f"{tmp_path}/$HOME/${{USER}}%h"
    assert f'Description=seattle node manager for "{tmp_path}/$HOME/${{USER}}%%h"' in text


def test_service_install_refuses_a_directory_with_a_newline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    node_dir = tmp_path / "n\n[Service]\nExecStartPre=/bin/touch /tmp/pwned"
    assert seattle("node", "init", "--dir", str(node_dir), "--owner", generate_owner(), "--port", "0"
                   ).returncode == 0
    done = seattle("node", "service", "install", "--dir", str(node_dir))
    assert done.returncode == 2 and "control character" in done.stderr
    assert not (tmp_path / "config").exists() or not any((tmp_path / "config").rglob("*.service"))


def generate_owner() -> str:
    from seattle.keys import generate_identity

    return generate_identity("owner").public_key.to_text()


_PATH_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/"), min_size=1,
                     max_size=30)


@given(_PATH_TEXT, _PATH_TEXT)
def test_every_printable_path_survives_systemds_reading(directory: str, python: str) -> None:
    node_dir = Path("/srv") / directory
    text = unit_text(node_dir, python=f"/opt/{python}")
    lines = text.split("\n")  # systemd splits on newlines only (str.splitlines would split on more)
    assert [line for line in lines if line.startswith("[")] == ["[Unit]", "[Service]", "[Install]"]
    assert len(lines) == 16  # nothing added: 15 lines and the final newline
    assert _exec_words(text) == [f"/opt/{python}", "-m", "seattle.cli", "node", "run", "--dir",
                                 str(node_dir.resolve())]
