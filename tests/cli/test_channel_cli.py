"""Issue 14 through the command line: what an on-path observer of a whole experiment sees (nothing it can
read), `--node-key`, and the known-nodes file (first use pins, a changed key fails loudly, forget works).

The node managers run in a background thread (tests/cli/test_research.py's NodesInThread); a relaying proxy
(tests/mitm.py) in another records every byte between the commands and the node.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seattle.keys import PublicKey, generate_identity
from tests.cli.test_research import NodesInThread, make_nodes
from tests.cli_runner import ok
from tests.cli_runner import seattle as run
from tests.mitm import DOWN, UP, proxy_in_thread

WAIT = 30.0
PROGRAM_MARKER = "PROGRAM-MARKER-7f3a"
ARGUMENT_MARKER = "ARGUMENT-MARKER-91c2"
FILE_MARKER = "FILE-MARKER-4d2e"
#: Built by the program at run time, so it is in the log and nowhere in the program's text.
LOG_MARKER = "LOG-MARKER-b81e"
PROGRAM = f"""# {PROGRAM_MARKER}
f = openfile("input.txt", False)
data = f.readat(None, 0)
f.close()
log("LOG" + "-MARKER-" + "b81e " + callargs[0] + " " + str(data, "utf-8") + "\\n")
while True:
  sleep(0.1)
"""


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodesInThread]:
    ok("genkeys", "alice")
    with NodesInThread(make_nodes(tmp_path, "alice", [1])) as nodes:
        yield nodes


def _known_nodes() -> Path:
    return Path(os.environ["SEATTLE_HOME"]) / "known_nodes"


def _node_key(address: str) -> PublicKey:
    return PublicKey.from_text(json.loads(ok("call", "--json", address, "GetNodeInfo"))["result"]["node_key"])


@pytest.mark.slow
def test_an_observer_of_a_whole_experiment_reads_none_of_it(node: NodesInThread, tmp_path: Path) -> None:
    port = int(node.addresses[0].rsplit(":", 1)[1])
    program = tmp_path / "marked.r2py"
    program.write_text(PROGRAM)
    data = tmp_path / "input.txt"
    data.write_text(FILE_MARKER)
    with proxy_in_thread(port) as proxy:
        address = f"127.0.0.1:{proxy.port}"
        ok("contact", address)
        assert "1 of 1 vessels ok" in ok("upload", str(data))
        assert "1 of 1 vessels ok" in ok("run", str(program), ARGUMENT_MARKER)
        deadline = time.monotonic() + WAIT
        while LOG_MARKER not in (log := run("show", "log").stdout) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert f"{LOG_MARKER} {ARGUMENT_MARKER} {FILE_MARKER}" in log
        ok("download", "marked.r2py", str(tmp_path / "back"))
        (copy,) = tmp_path.glob("back.127.0.0.1_*")
        assert PROGRAM_MARKER in copy.read_text()
        ok("stop")
    captured = bytes(proxy.captured[UP]) + b"\n" + bytes(proxy.captured[DOWN])
    assert len(proxy.captured[UP]) > len(PROGRAM) and len(proxy.captured[DOWN]) > len(PROGRAM)  # it all went by
    for marker in (PROGRAM_MARKER, ARGUMENT_MARKER, FILE_MARKER, LOG_MARKER):
        assert marker.encode() not in captured, f"{marker} crossed the wire in clear"
    assert b"AddFileToVessel" not in captured and b"StartVessel" not in captured  # nor which calls were made


@pytest.mark.slow
def test_first_use_pins_a_changed_key_fails_loudly_and_forget_works(node: NodesInThread) -> None:
    address = node.addresses[0]
    real = _node_key(address)  # the first contact pins
    path = _known_nodes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    listing = ok("known-nodes", "list")
    assert address in listing and real.fingerprint() in listing and "1 pinned" in listing

    other = generate_identity("other").public_key
    path.write_text(f"# pinned by hand\n{address} {other.to_text()}\n")
    changed = run("call", address, "GetNodeInfo")
    assert changed.returncode == 1
    message = " ".join(changed.stderr.split())
    assert "PROVED A DIFFERENT KEY" in message and address in message
    assert real.fingerprint() in message and other.fingerprint() in message
    assert f"line 2 of {path}" in message and f"seattle known-nodes forget {address}" in message

    assert "forgot" in ok("known-nodes", "forget", address)
    assert _node_key(address) == real  # pinned afresh
    assert run("known-nodes", "forget", "127.0.0.1:1").returncode == 1


@pytest.mark.slow
def test_node_key_is_insisted_on(node: NodesInThread) -> None:
    address = node.addresses[0]
    other = generate_identity("other").public_key
    refused = run("call", "--node-key", other.to_text(), address, "GetNodeInfo")
    assert refused.returncode == 1
    message = " ".join(refused.stderr.split())
    assert "PROVED A DIFFERENT KEY" in message and other.fingerprint() in message
    assert not _known_nodes().exists()  # a given key pins nothing
    real = _node_key(address)
    assert ok("call", "--node-key", real.to_text(), address, "GetNodeInfo")
    contacted = run("contact", "--node-key", other.to_text(), address)
    assert contacted.returncode == 1 and other.fingerprint() in " ".join(contacted.stderr.split())
