"""`seattle node init --profile`, `start`, `status`, `top` and `stop` against a real daemon over the control socket.

Every command runs in process (tests/cli_runner.py) in the test's own SEATTLE_HOME; `node start` starts the node
manager as a background process, as it does for a donor; the node listens on 127.0.0.1 with a port
chosen by the OS, and its vessels get a port pool of their own. Every wait is bounded.
"""

from __future__ import annotations

import json
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seattle.donor.daemonctl import control_request, is_locked
from seattle.donor.donation import fallback_machine, init_node_from_profile
from seattle.keys import generate_identity, save_identity
from seattle.nodemgr.nodedir import NodeDir
from seattle.planner.profile import VesselPlan, read_profile, write_profile
from tests.cli_runner import ok, seattle

pytestmark = pytest.mark.slow

MEMORY_PROGRAM = b'data = "x" * 30000000\nlog("holding\\n")\nwhile True:\n  sleep(0.1)\n'
#: Sends itself 1000-byte datagrams over loopback (v1's ports 47100-47101), 20 a second for at most 20 s.
LOOPBACK_PROGRAM = b"""
inbox = listenformessage('127.0.0.1', 47100)
for i in range(400):
    sendmessage('127.0.0.1', 47100, 'x' * 1000, '127.0.0.1', 47101)
    try:
        while True:
            inbox.getmessage()
    except SocketWouldBlockError:
        pass
    sleep(0.05)
"""


@pytest.fixture
def node_dir(tmp_path: Path) -> Iterator[Path]:
    """A node made by `seattle node init --profile`: v1 (70 %) owned by alice, v2 (30 %) by bob."""
    alice, bob = generate_identity("alice"), generate_identity("bob")
    save_identity(alice)
    save_identity(bob)
    profile = tmp_path / "site.profile"
    write_profile(profile, [VesselPlan(70, alice.public_key), VesselPlan(30, bob.public_key, (alice.public_key,))],
                  [], alice)
    directory = tmp_path / "node"
    # Loopback: a profile's node listens on every interface by default (issue 15); this one stays local.
    out = ok("node", "init", "--dir", str(directory), "--profile", str(profile), "--planner", "alice", "--port", "0",
             "--host", "127.0.0.1", "--percent", "20", "--ports", "47100-47109")
    assert "This node gives away 20% of this machine" in out
    assert "v1: 70%" in out and "47100-47106" in out and "v2: 30%" in out and "47107-47109" in out
    yield directory
    if is_locked(directory):  # a failed test must not leave a node manager running
        seattle("node", "stop", "--dir", str(directory))


def test_start_status_stop(node_dir: Path) -> None:
    started = ok("node", "start", "--dir", str(node_dir))
    assert "node started" in started and "listening on 127.0.0.1:" in started
    mode = NodeDir(node_dir).control_socket_path.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600

    again = seattle("node", "start", "--dir", str(node_dir))
    assert again.returncode == 1 and "already running" in again.stderr

    status = json.loads(ok("node", "status", "--dir", str(node_dir), "--json"))
    assert status["percent"] == 20 and status["addresses"][0] in started
    assert [v["name"] for v in status["vessels"]] == ["v1", "v2"]
    assert [v["status"] for v in status["vessels"]] == ["Fresh", "Fresh"]
    assert status["vessels"][0]["allotted"]["ports"] == list(range(47100, 47107))
    shares = sum(v["allotted"]["cpu"] for v in status["vessels"])
    assert shares < status["donated"]["cpu"]  # the offcuts are not the vessels'

    table = ok("node", "status", "--dir", str(node_dir))
    assert "donated 20% of this machine" in table and "v1" in table and "47100-47106" in table
    assert "v2" in ok("node", "top", "--dir", str(node_dir), "--count", "2", "--interval", "0.2")

    stopped = ok("node", "stop", "--dir", str(node_dir))
    assert f"node stopped (pid {status['pid']})" in stopped
    assert not NodeDir(node_dir).control_socket_path.exists() and not is_locked(node_dir)
    after = seattle("node", "status", "--dir", str(node_dir))
    assert after.returncode == 1 and "is not running" in after.stderr
    assert "stop requested over the control socket" in (node_dir / "nodemanager.log").read_text()


def test_status_shows_a_running_vessels_use_against_its_share(node_dir: Path) -> None:
    address = ok("node", "start", "--dir", str(node_dir)).rsplit(" ", 1)[1].strip()
    ok("call", "--as", "alice", address, "AddFileToVessel", "v1", "hold.r2py", "-", stdin=MEMORY_PROGRAM)
    ok("call", "--as", "alice", address, "StartVessel", "v1", "hold.r2py")
    deadline = time.monotonic() + 30
    while True:
        status = control_request(node_dir, "status")["status"]
        v1 = status["vessels"][0]
        if v1["usage"]["memory"] > 30_000_000 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert v1["status"] == "Started"
    assert 30_000_000 < v1["usage"]["memory"] <= v1["allotted"]["memory"]
    assert v1["usage"]["diskused"] >= len(MEMORY_PROGRAM)  # the uploaded program is on its disk
    assert status["usage"]["memory"] == v1["usage"]["memory"] + status["vessels"][1]["usage"]["memory"]
    ok("node", "stop", "--dir", str(node_dir))
    assert not is_locked(node_dir)


def test_status_shows_a_vessels_network_rates_and_bytes(node_dir: Path) -> None:
    address = ok("node", "start", "--dir", str(node_dir)).rsplit(" ", 1)[1].strip()
    ok("call", "--as", "alice", address, "AddFileToVessel", "v1", "loop.r2py", "-", stdin=LOOPBACK_PROGRAM)
    ok("call", "--as", "alice", address, "StartVessel", "v1", "loop.r2py")
    deadline = time.monotonic() + 30
    while True:
        used = control_request(node_dir, "status")["status"]["vessels"][0]["usage"]
        if (used["loopsend_bytes"] >= 5000 and used["loopsend"] > 0) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert used["loopsend_bytes"] >= 5000 and used["looprecv_bytes"] >= 5000, used
    assert used["loopsend"] > 0 and used["looprecv"] > 0  # it sends every 50 ms, so every report sees some
    assert used["netsend"] == used["netrecv"] == 0 and used["netsend_bytes"] == used["netrecv_bytes"] == 0

    status = json.loads(ok("node", "status", "--dir", str(node_dir), "--json"))
    v1, v2 = status["vessels"]
    assert v1["usage"]["loopsend_bytes"] >= used["loopsend_bytes"]
    assert v2["usage"]["loopsend"] == v2["usage"]["loopsend_bytes"] == 0  # v2 never ran
    for name in ("netsend", "netrecv", "loopsend", "looprecv", "netsend_bytes", "looprecv_bytes"):
        assert status["usage"][name] == v1["usage"][name] + v2["usage"][name], name
    assert status["donated"]["netsend"] > 0 and v1["allotted"]["netsend"] > 0  # the rates' yardsticks
    table = ok("node", "status", "--dir", str(node_dir))
    assert "net out" in table and "net in" in table and "does not report" not in table
    ok("node", "stop", "--dir", str(node_dir))
    assert not is_locked(node_dir)


def test_bad_control_requests_are_answered_and_the_node_keeps_running(node_dir: Path) -> None:
    ok("node", "start", "--dir", str(node_dir))
    path = str(NodeDir(node_dir).control_socket_path)
    for request in (b"not json\n", b'{"cmd": "reboot"}\n', b"[1, 2]\n", b"x" * 5000 + b"\n"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(path)
            sock.sendall(request)
            reply = json.loads(sock.makefile("rb").readline())
        assert reply["ok"] is False and reply["error"], request[:20]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:  # says nothing: dropped after 5 s
        silent.connect(path)
        assert control_request(node_dir, "status")["status"]["vessels"]  # others are served meanwhile
    ok("node", "stop", "--dir", str(node_dir))


def test_commands_on_a_node_that_is_not_running_or_not_there(tmp_path: Path, node_dir: Path) -> None:
    stop = seattle("node", "stop", "--dir", str(node_dir))
    assert stop.returncode == 1 and "is not running" in stop.stderr
    missing = seattle("node", "start", "--dir", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "is not a node directory" in missing.stderr
    bad = seattle("node", "init", "--dir", str(tmp_path / "n2"), "--profile", str(tmp_path / "site.profile"),
                  "--planner", "alice", "--percent", "0")
    assert bad.returncode == 2 and "whole percent from 1 to 100" in bad.stderr
    assert not (tmp_path / "n2").exists()
    with socket.socket() as taken:  # a node whose port is in use fails to start, and says why
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = tmp_path / "busy"
        profile = read_profile(tmp_path / "site.profile")
        init_node_from_profile(busy, profile, planner=profile.planner, host="127.0.0.1",
                               port=taken.getsockname()[1], machine=fallback_machine())
        failed = seattle("node", "start", "--dir", str(busy))
    assert failed.returncode == 1 and "exited with status 2 while starting" in failed.stderr
    assert "cannot listen on 127.0.0.1" in failed.stderr and not is_locked(busy)
    garbage = tmp_path / "garbage.profile"
    garbage.write_bytes(b"\0" * 200)
    refused = seattle("node", "init", "--dir", str(tmp_path / "n3"), "--profile", str(garbage))
    assert refused.returncode == 2 and "installer profile" in refused.stderr and "rejected" in refused.stderr
