"""`seattle node init|run` and `seattle call` through the real command line: real daemon, real sockets.

Every command runs in process (tests/cli_runner.py) in the SEATTLE_HOME the autouse fixture gives each test,
except `seattle node run`, a daemon in the foreground, which runs as a subprocess; the node listens on 127.0.0.1
with a port chosen by the OS, and the tests learn it from the daemon's `listening on` line.
"""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from seattle.addresses import parse_address
from seattle.cli.call_arguments import parse_call, usage
from seattle.errors import BadCallArguments, BadNodeAddress, UnknownCall
from seattle.keys import generate_identity, read_public_key, save_identity
from seattle.nodemgr.calltable import CALLS
from tests.cli_runner import ok, seattle

STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 30.0
LOOP_PROGRAM = b'log("looping\\n")\nwhile True:\n  sleep(0.1)\n'


@dataclass
class Node:
    process: subprocess.Popen[bytes]
    address: str
    directory: Path


def start_node(node_dir: Path) -> Node:
    """`seattle node run` in the background; returns once it printed its `listening on` line."""
    process = subprocess.Popen([sys.executable, "-m", "seattle.cli", "node", "run", "--dir", str(node_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: queue.Queue[bytes] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=STARTUP_TIMEOUT).decode()
    except queue.Empty:
        process.kill()
        pytest.fail(f"the node did not say it was listening within {STARTUP_TIMEOUT} s")
    if not line.startswith("listening on "):
        process.kill()
        _, err = process.communicate(timeout=SHUTDOWN_TIMEOUT)
        pytest.fail(f"unexpected first line {line!r}; stderr: {err.decode()}")
    return Node(process, line.removeprefix("listening on ").strip(), node_dir)


def stop_node(node: Node) -> int:
    if node.process.poll() is None:
        node.process.send_signal(signal.SIGTERM)
    try:
        return node.process.wait(timeout=SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        node.process.kill()
        node.process.wait(timeout=SHUTDOWN_TIMEOUT)
        raise


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    ok("keygen", "alice")
    directory = tmp_path / "node"
    ok("node", "init", "--dir", str(directory), "--port", "0", "--owner", "alice")
    return directory


@pytest.fixture
def node(node_dir: Path) -> Iterator[Node]:
    running = start_node(node_dir)
    try:
        yield running
    finally:
        stop_node(running)


def vessels(address: str) -> dict[str, dict[str, object]]:
    response = json.loads(ok("call", address, "GetVessels", "--json"))
    assert response["status"] == "success"
    return {vessel["name"]: vessel for vessel in response["result"]["vessels"]}


def wait_for_log(address: str, text: str) -> str:
    deadline = time.monotonic() + 20
    log = ""
    while time.monotonic() < deadline:
        log = ok("call", "--as", "alice", address, "ReadVesselLog", "v1")
        if text in log:
            return log
        time.sleep(0.2)
    pytest.fail(f"{text!r} never appeared in the vessel log; last log: {log!r}")


# --- through the command line ----------------------------------------------------------------------------


def test_init_writes_a_node_directory_owned_by_the_identity(node_dir: Path) -> None:
    config = json.loads((node_dir / "node.json").read_text())
    assert (config["host"], config["port"], config["local_ips"]) == ("127.0.0.1", 0, [])
    assert (node_dir / "node.privatekey").stat().st_mode & 0o077 == 0
    result = seattle("node", "init", "--dir", str(node_dir), "--owner", "alice")
    assert result.returncode == 2
    assert "already holds a node" in result.stderr
    assert json.loads((node_dir / "node.json").read_text()) == config


@pytest.mark.slow
def test_owner_drives_a_vessel_from_the_shell(node: Node, tmp_path: Path) -> None:
    info = ok("call", node.address, "GetNodeInfo")
    assert read_public_key(node.directory / "node.publickey").to_text() in info
    alice = read_public_key(Path(os.environ["SEATTLE_HOME"]) / "keys" / "alice.publickey")
    assert vessels(node.address)["v1"]["owner"] == alice.to_text()
    assert vessels(node.address)["v1"]["status"] == "Fresh"

    program = tmp_path / "loop.r2py"
    program.write_bytes(LOOP_PROGRAM)
    assert ok("call", "--as", "alice", node.address, "AddFileToVessel", "v1", "loop.r2py", str(program)) == "ok\n"
    data = bytes(range(256))
    ok("call", "--as", "alice", node.address, "AddFileToVessel", "v1", "data.bin", "-", stdin=data)
    assert ok("call", "--as", "alice", node.address, "ListFilesInVessel", "v1").split() == ["data.bin", "loop.r2py"]
    out = tmp_path / "back.bin"
    ok("call", "--as", "alice", "--out", str(out), node.address, "RetrieveFileFromVessel", "v1", "data.bin")
    assert out.read_bytes() == data

    assert ok("call", "--as", "alice", node.address, "StartVessel", "v1", "loop.r2py").strip() == "Started"
    assert vessels(node.address)["v1"]["status"] == "Started"
    wait_for_log(node.address, "looping")
    assert ok("call", "--as", "alice", node.address, "StopVessel", "v1").strip() == "Stopped"
    assert vessels(node.address)["v1"]["status"] == "Stopped"


@pytest.mark.slow
def test_a_stranger_is_refused_and_the_node_keeps_serving(node: Node, tmp_path: Path) -> None:
    ok("keygen", "mallory")
    program = tmp_path / "evil.r2py"
    program.write_bytes(b"log('mine now')\n")
    result = seattle("call", "--as", "mallory", node.address, "AddFileToVessel", "v1", "evil.r2py", str(program))
    assert result.returncode == 1
    assert "insufficient_permissions" in result.stderr
    refused = json.loads(seattle("call", "--as", "mallory", "--json", node.address, "StopVessel", "v1").stdout)
    assert (refused["status"], refused["code"]) == ("error", "insufficient_permissions")
    assert ok("call", "--as", "alice", node.address, "ListFilesInVessel", "v1").split() == []


@pytest.mark.slow
def test_sigterm_stops_the_vessels_and_the_restarted_node_reports_them_stopped(node_dir: Path) -> None:
    first = start_node(node_dir)
    try:
        ok("call", "--as", "alice", first.address, "AddFileToVessel", "v1", "loop.r2py", "-", stdin=LOOP_PROGRAM)
        ok("call", "--as", "alice", first.address, "StartVessel", "v1", "loop.r2py")
        wait_for_log(first.address, "looping")
    finally:
        status = stop_node(first)
    assert status == 0, first.process.stderr.read().decode() if first.process.stderr else ""
    log = (node_dir / "nodemanager.log").read_text()
    assert "received SIGTERM" in log and "stopped cleanly" in log
    second = start_node(node_dir)
    try:
        assert vessels(second.address)["v1"]["status"] == "Stopped"
    finally:
        assert stop_node(second) == 0


def test_mistakes_on_the_command_line_are_named_before_anything_is_sent(tmp_path: Path) -> None:
    # Port 1 has no node: each of these must fail on its words, not on the connection.
    unknown = seattle("call", "127.0.0.1:1", "GetVesels")
    assert unknown.returncode == 2
    assert "'GetVesels'" in unknown.stderr and "GetVessels" in unknown.stderr
    count = seattle("call", "--as", "alice", "127.0.0.1:1", "AddFileToVessel", "v1", "x")
    assert count.returncode == 2
    assert "AddFileToVessel VESSEL FILENAME LOCAL_FILE|-" in count.stderr
    unsigned = seattle("call", "127.0.0.1:1", "StopVessel", "v1")
    assert unsigned.returncode == 2 and "--as IDENTITY" in unsigned.stderr
    address = seattle("call", "localhost", "GetNodeInfo")
    assert address.returncode == 2 and "HOST:PORT" in address.stderr
    missing = seattle("call", "--as", "alice", "127.0.0.1:1", "AddFileToVessel", "v1", "x", str(tmp_path / "no"))
    assert missing.returncode == 2
    assert str(tmp_path / "no") in missing.stderr and "No such file" in missing.stderr


@pytest.mark.slow
def test_an_unreachable_node_is_reported(tmp_path: Path) -> None:
    result = seattle("call", "127.0.0.1:1", "GetNodeInfo")
    assert result.returncode == 1
    assert "127.0.0.1:1" in result.stderr


def test_run_and_init_refuse_bad_directories_and_settings(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    result = seattle("node", "run", "--dir", str(empty))
    assert result.returncode == 2 and "node.json" in result.stderr
    assert seattle("node", "init", "--dir", str(tmp_path / "n"), "--host", "nowhere").returncode == 2
    no_owner = seattle("node", "init", "--dir", str(tmp_path / "n"))
    assert no_owner.returncode == 2 and "--owner" in no_owner.stderr
    ok("keygen", "alice")
    ok("keygen", "bob")
    two = seattle("node", "init", "--dir", str(tmp_path / "n"))
    assert two.returncode == 2 and "alice, bob" in two.stderr
    assert not (tmp_path / "n" / "node.json").exists()


# --- the word parser -------------------------------------------------------------------------------------


def test_every_parameter_of_every_call_can_be_written_on_a_command_line() -> None:
    for name in CALLS:
        assert usage(name).startswith(name)


def test_words_become_arguments() -> None:
    stdin = io.BytesIO(b"resource cpu 0.1\n")
    bob = generate_identity("bob")
    save_identity(bob)
    assert parse_call(["StartVessel", "v1", "p.r2py", "a", "--b"], stdin) == (
        "StartVessel", {"vessel": "v1", "program": "p.r2py", "args": ["a", "--b"]})
    assert parse_call(["ChangeUsers", "v1", "bob"], stdin)[1]["users"] == [bob.public_key.to_text()]
    assert parse_call(["ChangeUsers", "v1"], stdin)[1]["users"] == []
    assert parse_call(["ChangeAdvertise", "v1", "off"], stdin)[1]["advertise"] is False
    assert parse_call(["SplitVessel", "v1", "-"], stdin)[1]["resources"] == "resource cpu 0.1\n"
    with pytest.raises(BadCallArguments, match="advertise"):
        parse_call(["ChangeAdvertise", "v1", "maybe"], stdin)
    with pytest.raises(BadCallArguments, match="expected 1 argument, got 2"):
        parse_call(["StopVessel", "v1", "v2"], stdin)
    with pytest.raises(UnknownCall):
        parse_call([], stdin)


def test_addresses() -> None:
    assert parse_address("127.0.0.1:1224") == ("127.0.0.1", 1224)
    assert parse_address("[::1]:80") == ("::1", 80)
    for bad in ("127.0.0.1", "::1:80", "127.0.0.1:0", "127.0.0.1:http", ":80"):
        with pytest.raises(BadNodeAddress):
            parse_address(bad)
