"""Text from nodes reaches the researcher's terminal with its control characters escaped (issue 13).

Before, `list`, `show ownerinfo`, `show log`, `browse` and error messages printed what a node sent as it was:
an owner information or a vessel log holding "\\x1b]0;pwned\\x07" retitled the researcher's terminal and
"\\x1b[2J" cleared it. The fan-out is replaced by hostile answers here, so every rendering path is exercised
without a node; tests/cli/test_research.py runs the same commands against real node managers.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seattle.cli.terminal import printable
from seattle.experiment.fanout import Outcome
from seattle.experiment.targets import VesselRef
from tests.cli_runner import ok
from tests.cli_runner import seattle as run

HOSTILE = "\x1b]0;pwned\x07\x1b[2J"
SHOWN = "\\x1b]0;pwned\\x07\\x1b[2J"


@pytest.fixture
def hostile_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """A session with one target vessel whose node answers every call with hostile text."""
    ok("genkeys", "alice")

    def fan_out(command: str, *args: Any, **kwargs: Any) -> list[Outcome]:
        ref = VesselRef("127.0.0.1", 1224, "v1")
        if command == "files":
            result: Any = ["data.txt", f"evil{HOSTILE}\nforged line"]
        elif command in ("list", "ownerinfo"):
            result = {"status": f"Fresh{HOSTILE}", "ownerinfo": f"owner{HOSTILE}\nforged line",
                           "owner": "ed25519:x", "users": []}
        else:
            result = f"line one\n\tindented{HOSTILE}\r\n".encode()
        return [Outcome(1, ref, "ok", result),
                Outcome(2, ref, "refused", None, "bad", f"the node says {HOSTILE}")]

    monkeypatch.setattr("seattle.cli.research_vessels.fan_out", fan_out)


@pytest.mark.parametrize("command", [["list"], ["show", "ownerinfo"], ["show", "log"], ["cat", "f"],
                                     ["show", "files"]])
def test_hostile_node_text_is_escaped(hostile_node: None, command: list[str]) -> None:
    done = run(*command)
    everything = done.stdout + done.stderr
    assert "\x1b" not in everything and "\x07" not in everything and "\r" not in everything
    assert SHOWN in everything  # the refusal's message, and the answer itself
    if command[-1] == "files":
        assert "\nforged line" not in done.stdout and "evil" + SHOWN + "\\x0aforged line" in done.stdout
    elif command[0] in ("list", "show") and command[-1] != "log":
        assert "\nforged line" not in done.stdout and "owner" + SHOWN + "\\x0aforged line" in done.stdout
    else:
        assert "line one\n\tindented" + SHOWN in done.stdout  # a log keeps its lines and tabs


def test_an_error_message_quoting_a_node_is_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    from seattle.errors import CallRefused

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise CallRefused("ReadVesselLog", "bad", f"nope{HOSTILE}")

    monkeypatch.setattr("seattle.cli.call.make_call", refuse)
    done = run("call", "127.0.0.1:1224", "GetVessels")
    assert done.returncode != 0 and "\x1b" not in done.stderr and SHOWN in done.stderr


@given(st.text())
def test_printable_leaves_no_control_character(text: str) -> None:
    shown = printable(text)
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 or c in "\u2028\u2029\u202e\u2066" for c in shown)
    layout = printable(text, keep_layout=True)
    assert layout.count("\n") == text.count("\n") and layout.count("\t") == text.count("\t")
    assert "\r" not in layout and "\x1b" not in layout
    if text.isprintable():
        assert shown == text


def test_browse_shows_hostile_records_escaped_and_without_markup(capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from seattle.cli.research_targets import _print_found

    monkeypatch.setenv("COLUMNS", "300")  # the whole table, not cells shortened to fit 80 columns
    _print_found([{"target": "%1", "node": "127.0.0.1:1224", "vessel": f"v1{HOSTILE}", "status": "Fresh",
                   "role": "owner", "ownerinfo": f"[link=https://evil.example]click[/link]{HOSTILE}"}])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b]0;pwned" in out and "[link=https://evil.example]" in out


@pytest.mark.parametrize("terminal", [False, True])
def test_seattle_call_escapes_text_and_keeps_file_bytes_exact_off_a_terminal(monkeypatch: pytest.MonkeyPatch,
                                                                            terminal: bool) -> None:
    from seattle.nodemgr.signing import OK_CODE, SUCCESS, WARNING, Response

    answers = {"GetVessels": Response(WARNING, "odd", f"careful{HOSTILE}", {"ownerinfo": f"x{HOSTILE}"}),
               "GetVesselResources": Response(SUCCESS, OK_CODE, "", f"file{HOSTILE}\n".encode())}
    monkeypatch.setattr("seattle.cli.call.make_call", lambda address, identity, name, args, **kw: answers[name])
    monkeypatch.setattr("seattle.cli.call.stdout_is_terminal", lambda: terminal)
    text = run("call", "127.0.0.1:1224", "GetVessels")
    assert "\x1b" not in text.stdout + text.stderr and SHOWN in text.stdout and SHOWN in text.stderr
    data = run("call", "127.0.0.1:1224", "GetVesselResources", "v1")
    assert data.stdout_bytes == ((f"file{SHOWN}\n" if terminal else f"file{HOSTILE}\n").encode())
