"""`seattle shell` driven through a real pseudo-terminal (pty.fork): prompt, commands, groups, tab completion,
history, errors that do not end the shell, and leaving with exit and with Ctrl-D."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from seattle.keys import PassphraseCost, generate_identity, save_identity
from tests.cli.test_research import NodesInThread, make_nodes, ok, run

pytestmark = pytest.mark.slow

WAIT = 30.0
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")


class Terminal:
    """A child process on a pty; `expect` reads until a pattern shows up in the (de-ANSI-fied) output."""

    def __init__(self, *argv: str) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: become the shell
            os.environ["TERM"] = "xterm"
            os.environ["PROMPT_TOOLKIT_NO_CPR"] = "1"  # the test answers no cursor-position requests
            os.execv(sys.executable, [sys.executable, *argv])
        self.pid, self.fd = pid, fd
        self.seen = b""

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def expect(self, pattern: str, timeout: float = WAIT) -> str:
        """Everything up to and including the first match of `pattern` after what was read before."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern.encode())
        while True:
            clean = _ANSI.sub(b"", self.seen)
            match = regex.search(clean)
            if match:
                self.seen = clean[match.end():]
                return clean[:match.end()].decode(errors="replace")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} never appeared; the terminal showed:\n{clean.decode()!r}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the shell ended before {pattern!r}; it showed:\n{clean.decode()!r}")
                self.seen += chunk

    def settle(self, quiet: float = 0.5, timeout: float = WAIT) -> None:
        """Read until the terminal has been silent for `quiet` seconds (at most `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], quiet)
            if not ready:
                return
            self.seen += os.read(self.fd, 65536)

    def wait(self, timeout: float = WAIT) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            try:
                os.read(self.fd, 65536)  # drain, so the child never blocks on a full terminal
            except OSError:
                time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError("the shell did not exit")


def test_the_shell_runs_commands_completes_and_keeps_history(tmp_path: Path) -> None:
    ok("genkeys", "alice")
    with NodesInThread(make_nodes(tmp_path, "alice", [2])) as nodes:
        terminal = Terminal("-m", "seattle.cli", "shell")
        try:
            terminal.expect(r"alice@%all !>")
            terminal.send(f"contact {nodes.addresses[0]}\r")
            terminal.expect(r"added 2 vessels")
            terminal.expect(r"alice@%all !>")

            terminal.send("on %2\r")
            terminal.expect(r"alice@%2 !>")
            terminal.send("sho\t")  # Tab completes the command name
            terminal.expect(r"show")
            terminal.send(" targ\t")
            terminal.expect(r"targets")
            terminal.send("\r")
            terminal.expect(r"current target: %2")
            terminal.expect(r"alice@%2 !>")

            terminal.send("list\r")  # runs on the current target only
            terminal.expect(r"1 of 1 vessels ok: %2")
            terminal.send("on nosuchgroup\r")  # an error is one line and the shell goes on
            terminal.expect(r"Error: no target 'nosuchgroup'")
            terminal.expect(r"alice@%2 !>")
            terminal.send("add %1 to pair\r")
            terminal.expect(r"pair: %1")
            (tmp_path / "program.r2py").write_bytes(b"log('x')\n")
            terminal.send(f"upload {tmp_path}/progr\t")  # local file names complete
            terminal.expect(r"program\.r2py")
            terminal.send("\x15as al\t")  # Ctrl-U clears the line; identities complete
            terminal.expect(r"as alice")
            terminal.send("\x15on p\t")  # groups complete too
            terminal.settle()  # the completion is applied before Enter is read
            terminal.send("\r")
            terminal.expect(r"target is now pair")
            terminal.expect(r"alice@pair !>")
            terminal.send("exit\r")
            assert terminal.wait() == 0
        except BaseException:
            os.kill(terminal.pid, signal.SIGKILL)
            raise

    history = (Path(os.environ["SEATTLE_HOME"]) / "shell_history").read_text()
    assert "contact " in history and "add %1 to pair" in history
    assert "current target: pair (2 vessels known)" in ok("show", "targets")
    assert "pair: %1" in ok("show", "groups")  # the shell saved its session for the one-shot commands

    again = Terminal("-m", "seattle.cli", "shell")
    again.expect(r"alice@pair !>")
    again.send("\x04")  # Ctrl-D leaves
    assert again.wait() == 0


def test_a_long_fan_out_shows_a_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    ok("genkeys", "alice")
    with NodesInThread(make_nodes(tmp_path, "alice", [21])) as nodes:
        ok("contact", nodes.addresses[0])
        terminal = Terminal("-m", "seattle.cli", "list")
        terminal.expect(r"list: 21 vessels")  # the bar's description, on the terminal's standard error
        terminal.expect(r"21 of 21 vessels ok")
        assert terminal.wait() == 0
        piped = run("list")  # not a terminal: no bar
        assert piped.returncode == 0 and "21 of 21 vessels ok" in piped.stdout
        assert "vessels" not in piped.stderr


def test_the_shell_asks_a_passphrase_once_and_only_for_signed_calls(tmp_path: Path) -> None:
    save_identity(generate_identity("pat"), passphrase="open sesame", cost=PassphraseCost.minimum())
    with NodesInThread(make_nodes(tmp_path, "pat", [1])) as nodes:
        terminal = Terminal("-m", "seattle.cli", "shell")
        try:
            terminal.expect(r"\(no identity\)@%all !>")
            terminal.send("as pat\r")
            terminal.expect(r"pat@%all !>")
            terminal.send(f"contact {nodes.addresses[0]}\r")  # public: no passphrase
            terminal.expect(r"added 1 vessels")
            terminal.send("show files\r")
            terminal.expect(r"Passphrase for pat: ")
            terminal.send("open sesame\r")
            terminal.expect(r"1 of 1 vessels ok")
            terminal.send("show log\r")  # signed again: the shell remembers the key
            output = terminal.expect(r"1 of 1 vessels ok")
            assert "Passphrase" not in output
            terminal.send("quit\r")
            assert terminal.wait() == 0
        except BaseException:
            os.kill(terminal.pid, signal.SIGKILL)
            raise
