"""Kill a process in the middle of node-state calls with SIGKILL, reopen the node, check every invariant.

The child (this file run as a script) opens the node and makes random mutating calls as fast as it can:
splits, joins, uploads, deletions, resets, status and owner changes. The parent kills it at a random moment,
then reopens the node as a restarted node manager would and checks that nothing was lost or torn:

* SQLite's integrity check passes and no reset is left half-done;
* the conserved total (sum of vessels + (n − 1)·offcut, port sets included) is what the node started with,
  and no port belongs to two vessels;
* vessel names only grow: no name that has disappeared ever comes back, and the next number never shrinks;
* the directories match the vessels exactly, with no leftover temporary upload and no orphan log;
* every file is whole: the child writes files that carry the SHA-256 of their own content;
* after recover(), no vessel is recorded as running, and each one recovered has the reason in its log.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seattle.nodemgr import vesselfiles
from seattle.nodemgr.database import Store
from seattle.nodemgr.nodeerror import NodeError
from seattle.nodemgr.vessels import RECOVERY_NOTE, RUNNING, NodeState
from seattle.resources import Resources
from seattle.vessel.host.logbuffer import CircularLog
from seattle.vessel.status import VesselStatus

pytestmark = pytest.mark.slow

KILLS = 30
NODE_KEY = b"N" * 32
OWNERS = (b"O" * 32, b"P" * 32)
USERS = (b"A" * 32, b"B" * 32, b"C" * 32)
MIB = 1024 * 1024
FILENAMES = ("program.py", "data.bin", "notes.txt", "private_state")
READY = b"ready\n"


def _allotment(first_port: int) -> Resources:
    ports = frozenset(range(first_port, first_port + 10))
    return Resources(
        {"cpu": 0.5, "memory": 500 * MIB, "diskused": 200 * MIB, "events": 200, "filesopened": 60,
         "insockets": 20, "outsockets": 20, "filewrite": 1_000_000.0, "fileread": 1_000_000.0,
         "lograte": 100_000.0, "random": 1000.0},
        messport=ports, connport=ports,
    )


def _self_checking(rng: random.Random) -> bytes:
    """Random content prefixed by its own SHA-256, so a torn or mixed-up file is detectable."""
    body = rng.randbytes(rng.choice((0, 10, 5000, 70_000, 300_000)))
    return hashlib.sha256(body).digest() + body


def _is_whole(data: bytes) -> bool:
    return len(data) >= 32 and hashlib.sha256(data[32:]).digest() == data[:32]


def _random_request(rng: random.Random, parent: Resources) -> str:
    """A resource-file request for a slice of the parent: sometimes too large, so refusals happen too."""
    share = rng.choice((0.05, 0.2, 0.5, 1.5))
    have = parent.quantities
    lines = [f"resource cpu {round(have['cpu'] * share, 4)}",
             f"resource memory {int(have['memory'] * share)}",
             f"resource diskused {int(have['diskused'] * share)}",
             f"resource events {int(have['events'] * share)}"]
    for kind in ("messport", "connport"):
        held = sorted(getattr(parent, kind))
        lines += [f"resource {kind} {port}" for port in rng.sample(held, k=len(held) // 2)]
    return "\n".join(lines) + "\n"


def _one_call(node: NodeState, rng: random.Random) -> None:
    """One random mutating call; refusals (NodeError) are part of the workload."""
    vessels = node.get_vessels()
    vessel = rng.choice(vessels)
    action = rng.choice(("split", "split", "join", "join", "add", "add", "add", "delete", "reset",
                         "status", "status", "owner", "users", "info", "advertise"))
    if action == "split":
        node.split(vessel.name, _random_request(rng, vessel.resources))
    elif action == "join" and len(vessels) > 1:
        other = rng.choice([v for v in vessels if v.name != vessel.name])
        node.join(vessel.name, other.name)
    elif action == "add":
        filename = rng.choice(FILENAMES[:3])
        node.add_file(vessel.name, filename, _self_checking(rng))
    elif action == "delete":
        node.delete_file(vessel.name, rng.choice(FILENAMES[:3]))
    elif action == "reset":
        # as the program itself would, leave a private_ file, which a reset must keep
        (node.vessel_dir(vessel.name) / FILENAMES[3]).write_bytes(b"")
        node.reset(vessel.name)
    elif action == "status":
        status = rng.choice(list(VesselStatus))
        node.set_status(vessel.name, status)
        if status is VesselStatus.STARTED:  # a running vessel writes its log, as the launcher would
            CircularLog(node.log_path(vessel.name)).write(b"output of a running program\n")
    elif action == "owner":
        node.change_owner(vessel.name, rng.choice(OWNERS))
    elif action == "users":
        node.change_users(vessel.name, rng.sample(USERS, k=rng.randint(0, len(USERS))))
    elif action == "info":
        node.change_ownerinfo(vessel.name, rng.choice(("", "lab", "x" * 256, "x" * 300)))
    elif action == "advertise":
        node.change_advertise(vessel.name, rng.choice((True, False)))


def child_main(node_dir: Path, seed: int) -> None:
    """The process that gets killed: call and call until the signal comes."""
    rng = random.Random(seed)
    node = NodeState.open(node_dir)
    os.write(1, READY)
    while True:
        try:
            _one_call(node, rng)
        except NodeError:
            pass


class Invariants:
    """What the parent remembers between kills, and the checks it runs after each one."""

    def __init__(self, node_dir: Path, total: Resources) -> None:
        self.node_dir = node_dir
        self.total = total
        self.seen: set[int] = set()
        self.gone: set[int] = set()
        self.next_vessel = 1
        self.recovered = 0

    def check(self) -> None:
        store = Store.open(self.node_dir)
        try:
            assert store.integrity_problems() == []
            next_vessel = store.reader().node().next_vessel
        finally:
            store.close()
        assert next_vessel >= self.next_vessel, "the vessel counter went backwards"
        self.next_vessel = next_vessel
        with NodeState.open(self.node_dir) as node:
            self._check_opened(node)
        store = Store.open(self.node_dir)
        try:
            assert store.reader().pending_resets() == [], "open left a committed reset unfinished"
        finally:
            store.close()

    def _check_opened(self, node: NodeState) -> None:
        vessels = node.get_vessels()
        numbers = {int(vessel.name[1:]) for vessel in vessels}
        assert not numbers & self.gone, f"vessel names came back: {sorted(numbers & self.gone)}"
        assert all(number < self.next_vessel for number in numbers)
        self.gone |= self.seen - numbers
        self.seen |= numbers
        assert node.total() == self.total, "the conserved total changed"
        for kind in ("messport", "connport"):
            held = [port for vessel in vessels for port in getattr(vessel.resources, kind)]
            assert len(held) == len(set(held)), f"two vessels share a {kind} port"
        names = sorted(vessel.name for vessel in vessels)
        assert sorted(os.listdir(self.node_dir / "vessels")) == names
        assert {p.name.split(".")[0] for p in (self.node_dir / "logs").iterdir()} <= set(names)
        for vessel in vessels:
            for entry in os.listdir(node.vessel_dir(vessel.name)):
                assert not entry.startswith(vesselfiles.UPLOAD_PREFIX), f"upload left over in {vessel.name}"
                if entry in FILENAMES[:3]:
                    assert _is_whole(node.retrieve_file(vessel.name, entry)), f"{vessel.name}/{entry} is torn"
        running = [vessel.name for vessel in vessels if vessel.status in RUNNING]
        assert node.recover() == running
        for name in running:
            assert node.read_log(name).endswith(RECOVERY_NOTE)
            assert node.get_vessel(name).status is VesselStatus.TERMINATED
        self.recovered += len(running)
        assert not any(vessel.status in RUNNING for vessel in node.get_vessels())


def test_sigkill_at_random_moments_never_breaks_the_node(tmp_path: Path) -> None:
    node_dir = tmp_path / "node"
    with NodeState.create(node_dir, NODE_KEY) as node:
        node.create_initial_vessels([(_allotment(63100 + 10 * i), OWNERS[i % 2], list(USERS[:i]))
                                     for i in range(4)])
        total = node.total()
        counter_at_start = node.change_counter()
    invariants = Invariants(node_dir, total)
    rng = random.Random(20240611)
    for kill in range(KILLS):
        with subprocess.Popen([sys.executable, __file__, str(node_dir), str(kill)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
            assert child.stdout is not None and child.stderr is not None
            if child.stdout.readline() == READY:
                time.sleep(rng.uniform(0.0, 0.15))
                child.send_signal(signal.SIGKILL)
            child.wait()
            errors = child.stderr.read()
        assert child.returncode == -signal.SIGKILL, f"the child ended on its own: {errors!r}"
        invariants.check()
    with NodeState.open(node_dir) as node:
        changes = node.change_counter() - counter_at_start
    assert changes > KILLS, "the children hardly changed anything; the test would prove little"
    assert len(invariants.seen) > 4, "no split or join ever committed"


if __name__ == "__main__":
    child_main(Path(sys.argv[1]), int(sys.argv[2]))
