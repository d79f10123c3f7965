"""The researcher's commands through the real command line, against real node managers on loopback.

The node managers run in-process in a background thread (one trio loop for all of them, real sockets, real
vessel sandboxes); every `seattle` command runs in process (tests/cli_runner.py) in the test's own SEATTLE_HOME,
and the session file carries state from one command to the next exactly as it does for a researcher.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import trio

from seattle.keys import PublicKey, read_public_key
from seattle.nodemgr.node import NodeManager, init_node
from seattle.resources import DEFAULT_ALLOTMENT, Resources
from tests.cli_runner import ok
from tests.cli_runner import seattle as run
from tests.net_helpers import closed_port

WAIT = 30.0
LOOP_PROGRAM = b'log("looping\\n")\nwhile True:\n  sleep(0.1)\n'
PIECE = Resources({"cpu": 0.05, "memory": 16 * 1024 * 1024, "diskused": 1024 * 1024, "events": 4},
                  messport=frozenset({63100}), connport=frozenset({63100}))


class NodesInThread:
    """Node managers on 127.0.0.1 in one trio loop on a background thread; `addresses` once started."""

    def __init__(self, directories: list[Path], *, overlay: bool = False) -> None:
        self.directories = directories
        self.overlay = overlay
        self.addresses: list[str] = []
        self._ready: queue.Queue[object] = queue.Queue()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=lambda: trio.run(self._main), daemon=True)

    def __enter__(self) -> NodesInThread:
        self._thread.start()
        ready = self._ready.get(timeout=WAIT * 2)
        if isinstance(ready, BaseException):
            raise ready
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._token is not None and self._stop is not None
        self._token.run_sync_soon(self._stop.set)
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the node managers did not shut down"

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        try:
            async with AsyncExitStack() as stack:
                bootstrap: list[tuple[str, int]] = []
                for directory in self.directories:
                    # With the overlay, every node joins through the first one.
                    nm = await stack.enter_async_context(NodeManager(directory, "127.0.0.1", 0, overlay=self.overlay,
                                                                     bootstrap=bootstrap))
                    bootstrap = bootstrap or [("127.0.0.1", nm.port)]
                    self.addresses.append(f"127.0.0.1:{nm.port}")
                self._ready.put(None)
                await self._stop.wait()
        except BaseException as exc:
            self._ready.put(exc)
            raise


def public_key(name: str) -> PublicKey:
    return read_public_key(Path(os.environ["SEATTLE_HOME"]) / "keys" / f"{name}.publickey")


def make_nodes(tmp_path: Path, owner: str, vessels_per_node: list[int]) -> list[Path]:
    key = public_key(owner)
    directories = []
    for index, count in enumerate(vessels_per_node):
        directory = tmp_path / f"node{index}"
        layout = [(DEFAULT_ALLOTMENT.replace(cpu=0.1, memory=64 * 1024 * 1024, diskused=8 * 1024 * 1024,
                                             messport=frozenset({63100 + i}), connport=frozenset({63100 + i})),
                   key, ()) for i in range(count)]
        init_node(directory, key, layout)
        directories.append(directory)
    return directories


@pytest.fixture
def alice() -> str:
    ok("genkeys", "alice")
    return "alice"


@pytest.fixture
def two_nodes(tmp_path: Path, alice: str) -> Iterator[NodesInThread]:
    with NodesInThread(make_nodes(tmp_path, alice, [1, 2])) as nodes:
        yield nodes


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def wait_for_logs(text: str, count: int) -> str:
    deadline = time.monotonic() + WAIT
    out = ""
    while time.monotonic() < deadline:
        out = run("show", "log").stdout
        if out.count(text) >= count:
            return out
        time.sleep(0.3)
    pytest.fail(f"{text!r} did not appear in {count} logs; last output:\n{out}")


@pytest.mark.slow
def test_a_whole_experiment(two_nodes: NodesInThread, tmp_path: Path) -> None:
    for address in two_nodes.addresses:
        ok("contact", address)
    targets = ok("show", "targets")
    assert "%1" in targets and "%3" in targets and "%4" not in targets

    listing = json_lines(ok("list", "--json"))
    assert [row["outcome"] for row in listing] == ["ok"] * 3
    assert {row["result"]["owner"] for row in listing} == {public_key("alice").to_text()}  # type: ignore[index]
    assert "*" in ok("list").splitlines()[1]

    program = tmp_path / "loop.r2py"
    program.write_bytes(LOOP_PROGRAM)
    data = tmp_path / "data.txt"
    data.write_text("some input\n")
    assert "3 of 3 vessels ok" in ok("upload", str(data))
    assert "3 of 3 vessels ok" in ok("run", str(program))
    assert wait_for_logs("looping", 3).count("--- %") == 3
    assert ok("show", "files", "--on", "%2").splitlines()[1].split() == ["data.txt", "loop.r2py"]

    ok("download", "data.txt", str(tmp_path / "back"))
    copies = sorted(tmp_path.glob("back.127.0.0.1_*"))
    assert len(copies) == 3 and all(copy.read_text() == "some input\n" for copy in copies)
    assert ok("cat", "data.txt", "--on", "%1").count("some input") == 1

    assert "3 of 3 vessels ok" in ok("stop")
    assert {row["result"]["status"] for row in json_lines(ok("list", "--json"))} == {"Stopped"}  # type: ignore[index]
    ok("reset")
    assert "data.txt" not in ok("show", "files")
    groups = ok("show", "groups")
    assert "rungood: %1 %2 %3" in groups and "runfail: (empty)" in groups

    refused = run("stop", "--on", "%1")  # nothing runs any more: the node refuses, the command says why
    assert refused.returncode == 1
    assert "refused: not_running" in refused.stdout


@pytest.mark.slow
def test_split_join_and_owner_and_user_changes_seen_by_a_second_identity(tmp_path: Path, alice: str) -> None:
    ok("genkeys", "bob")
    ok("as", "alice")
    with NodesInThread(make_nodes(tmp_path, "alice", [1])) as nodes:
        address = nodes.addresses[0]
        ok("contact", address)
        piece = tmp_path / "piece.resources"
        piece.write_text(PIECE.to_text())
        assert "-> v2, v3" in ok("split", str(piece))
        assert "split2: %3" in ok("show", "groups")
        ok("set", "users", "bob", "--on", "split2")

        bob_view = ok("as", "bob", "contact", address)
        assert "added 1 vessels" in bob_view and ":v3" in bob_view
        assert ok("as", "bob", "show", "files", "--on", f"{address}:v3").strip().startswith("--- %")
        refused = run("as", "bob", "set", "ownerinfo", "mine now", "--on", f"{address}:v3")
        assert refused.returncode == 1 and "insufficient_permissions" in refused.stdout

        joined = ok("join", "--on", "%all")
        assert "-> v4" in joined
        assert "joingood: %4" in ok("show", "groups")
        ok("set", "owner", "bob", "--on", "%4")
        owners = json_lines(ok("as", "bob", "list", "--json", "--on", f"{address}:v4"))
        assert owners[0]["result"]["owner"] == public_key("bob").to_text()  # type: ignore[index]
        assert run("stop", "--on", "%4").returncode == 1  # alice is no longer owner nor user


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP server on loopback that accepts connections and never answers (closed after the test)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


@pytest.mark.slow
def test_unreachable_and_slow_nodes_are_reported_with_their_reasons(tmp_path: Path, alice: str,
                                                                    silent_port: int) -> None:
    dead = closed_port()
    with NodesInThread(make_nodes(tmp_path, "alice", [1])) as nodes:
        ok("contact", nodes.addresses[0])
        ok("add", f"127.0.0.1:{dead}:v1", "to", "everything")
        ok("add", f"127.0.0.1:{silent_port}:v1", "to", "everything")
        ok("add", "%1", "to", "everything")
        result = run("list", "--on", "everything", "--timeout", "1")
        assert result.returncode == 1
        lines = result.stdout.splitlines()
        assert any(line.startswith("1 of 3 vessels ok: %1") for line in lines)
        assert any("unreachable" in line and f":{dead}:v1" in line for line in lines)
        assert any("timed out" in line and f":{silent_port}:v1" in line for line in lines)

        rows = {row["vessel"]: row for row in json_lines(run("list", "--json", "--on", "everything",
                                                                 "--timeout", "1").stdout)}
        assert rows[f"127.0.0.1:{dead}:v1"]["outcome"] == "unreachable"
        assert rows[f"127.0.0.1:{silent_port}:v1"]["outcome"] == "timed out"
        assert rows[f"{nodes.addresses[0]}:v1"]["outcome"] == "ok"
        groups = ok("show", "groups")
        assert "listgood: %1" in groups and "listfail: %2 %3" in groups


def test_usage_errors_exit_2_with_one_line(alice: str, tmp_path: Path) -> None:
    for args, words in [(("list", "--on", "nosuchgroup"), "no target 'nosuchgroup'"),
                        (("list",), "holds no vessels"),
                        (("upload", str(tmp_path / "missing.r2py")), "missing.r2py"),
                        (("on", "%7"), "no target '%7'"),
                        (("contact", "127.0.0.1"), "HOST:PORT")]:
        result = run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert words in result.stderr and "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1


@pytest.mark.slow
def test_savestate_and_loadstate_round_trip(tmp_path: Path, alice: str) -> None:
    ok("as", "alice")
    ok("add", "127.0.0.1:1224:v1", "to", "mine")
    ok("add", "127.0.0.1:1225:v7", "to", "mine")
    ok("set", "timeout", "12")
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse\n")
    state = tmp_path / "experiment.state"
    ok("savestate", str(state), "--passphrase-file", str(secret))
    assert state.stat().st_mode & 0o077 == 0
    assert b"127.0.0.1" not in state.read_bytes()
    before = ok("show", "targets") + ok("show", "groups")

    wrong = tmp_path / "wrong"
    wrong.write_text("incorrect horse\n")
    other_home = tmp_path / "elsewhere"
    env = {"SEATTLE_HOME": str(other_home)}
    refused = run("loadstate", str(state), "--passphrase-file", str(wrong), env=env)
    assert refused.returncode == 2 and "wrong passphrase" in refused.stderr and "Traceback" not in refused.stderr

    loaded = ok("loadstate", str(state), "--passphrase-file", str(secret), env=env)
    assert "added identity alice" in loaded
    assert ok("show", "targets", env=env) + ok("show", "groups", env=env) == before
    assert ok("show", "timeout", env=env).strip() == "12"
    assert "* alice" in ok("show", "identities", env=env)
    key_file = other_home / "keys" / "alice.privatekey"
    assert key_file.stat().st_mode & 0o077 == 0


@pytest.mark.slow
def test_browse_finds_the_vessels_through_the_overlay(tmp_path: Path, alice: str) -> None:
    with NodesInThread(make_nodes(tmp_path, "alice", [1, 2, 1]), overlay=True) as nodes:
        bootstrap = nodes.addresses[0]
        deadline = time.monotonic() + WAIT
        found = ""
        while time.monotonic() < deadline:  # the nodes advertise shortly after they start
            result = run("browse", "--bootstrap", bootstrap, "--timeout", "3")
            found = result.stdout
            if "found 4 vessels" in found:
                break
            time.sleep(0.5)
        assert "found 4 vessels" in found, found
        assert found.count("│ owner │") == 4, found  # the role column of every row
        assert "browsegood: %1 %2 %3 %4" in ok("show", "groups")
        as_json = run("browse", "--bootstrap", bootstrap, "--timeout", "3", "--json")
        rows = [json.loads(line) for line in as_json.stdout.splitlines()]
        assert sorted(row["target"] for row in rows) == ["%1", "%2", "%3", "%4"]
        assert {row["node"] for row in rows} == set(nodes.addresses)
        assert all(row["role"] == "owner" and row["node_key"].startswith("ed25519:") for row in rows)
        assert "4 of 4 vessels ok" in ok("list", "--on", "browsegood")


@pytest.mark.slow
def test_the_remaining_commands_each_do_their_job(tmp_path: Path, alice: str) -> None:
    with NodesInThread(make_nodes(tmp_path, "alice", [2])) as nodes:
        address = nodes.addresses[0]
        ok("contact", f"{address}:v2")  # one vessel only
        assert "%1" in ok("show", "targets") and "%2" not in ok("show", "targets")
        ok("contact", address)
        assert ok("show", "ip").split() == ["127.0.0.1"]
        assert ok("show", "hostname").startswith("127.0.0.1 ")
        info = ok("show", "info", "--on", "%1")
        assert "fingerprint" in info and "1 of 1 vessels ok" in info
        assert "resource cpu 0.1" in ok("show", "resources", "--on", "%1")
        assert "resource cpu" in ok("show", "offcut", "--on", "%1")

        ok("set", "ownerinfo", "run 7")
        ok("set", "advertise", "off", "--on", "%2")
        assert ok("show", "ownerinfo").count("run 7") == 2
        assert [line.split()[-1] for line in ok("show", "advertise").splitlines()[:2]] == ["True", "False"]
        assert "(alice)" in ok("show", "owner", "--on", "%1")
        assert "(no users)" in ok("show", "users", "--on", "%1")

        program = tmp_path / "hello.r2py"
        program.write_bytes(b'log("hello " + callargs[0] + "\\n")\n')
        ok("upload", str(program), "--on", "%1")
        ok("start", "hello.r2py", "world", "--on", "%1")
        deadline = time.monotonic() + WAIT
        while "hello world" not in (log := run("show", "log", "--on", "%1").stdout) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert "hello world" in log
        ok("delete", "hello.r2py", "--on", "%1")
        assert "hello.r2py" not in ok("show", "files", "--on", "%1")

        ok("move", "%1", "to", "first")
        ok("add", "%2", "to", "first")
        ok("move", "%2", "to", "second")
        groups = ok("show", "groups")
        assert "first: %1\n" in groups and "second: %2\n" in groups
        ok("remove", "second")
        assert "second" not in ok("show", "groups")

        ok("set", "timeout", "7")
        ok("set", "uploadrate", "100")
        assert ok("show", "timeout").strip() == "7" and ok("show", "uploadrate").strip() == "100"
        assert run("set", "timeout", "-1").returncode == 2

    assert "Usage: seattle show log" in ok("help", "show", "log")
    assert run("help", "nosuchcommand").returncode == 2

    ok("genkeys", "carol")
    assert "* carol" in ok("show", "identities")
    exported = tmp_path / "export"
    exported.mkdir()
    (exported / "dave.privatekey").write_bytes(
        (Path(os.environ["SEATTLE_HOME"]) / "keys" / "carol.privatekey").read_bytes())
    (exported / "dave.privatekey").chmod(0o600)
    assert "identity is now dave2" in ok("loadkeys", str(exported / "dave.privatekey"), "--as", "dave2")
    assert "* dave2" in ok("show", "identities")
