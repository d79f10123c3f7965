"""SIGKILL a running node manager daemon in the middle of client calls, restart it, check every invariant.

tests/nodemgr/test_crash.py kills a process driving `NodeState` directly; this one kills the whole daemon —
server, launcher, zygote parent — while a client drives it over loopback with random mutating calls (split,
join, owner/users/ownerinfo/advertise changes, uploads, deletions, start and stop of a looping program).
After each kill:

* no vessel process survives: every supervisor (and the zygote) notices the daemon is gone and ends;
* a copy of the node directory passes that test's `Invariants` (SQLite integrity, the conserved total,
  disjoint ports, names never reused, directories matching vessels, every file whole, recovery marking
  each vessel that was running Terminated). The copy is checked, not the directory itself, so that the
  restarted daemon — not the checker — is the one that recovers the real node;
* the restarted daemon serves calls, reports exactly the vessels that existed at the kill, reports each
  vessel recorded as running at the kill as Terminated with the recovery note at the end of its log, and
  hands back every file whole.

The daemon is the real `seattle node run`, on 127.0.0.1 and a port the OS picks; the test waits for the line it
prints when ready, `listening on HOST:PORT`.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import trio

from seattle.keys import Identity, PublicKey, generate_identity
from seattle.nodemgr.client import CallFailed, NodeClient, NodeClientError
from seattle.nodemgr.config import NodeConfig
from seattle.nodemgr.node import init_node
from seattle.nodemgr.nodedir import NodeDir
from seattle.nodemgr.vessels import RECOVERY_NOTE, RUNNING, NodeState
from seattle.resources import parse_resources
from tests.nodemgr.test_crash import FILENAMES, Invariants, _allotment, _is_whole, _random_request, _self_checking

pytestmark = pytest.mark.slow

KILLS = 15
#: Bounds on how long the daemon runs client calls before it is killed.
KILL_AFTER = (0.05, 0.6)
#: Generous bounds on a daemon start and on vessel processes ending; exceeding one is a failure.
START_TIMEOUT = 15.0
STRAY_TIMEOUT = 10.0
PROGRAM = "loop.r2py"
LOOPING = b"while True:\n    sleep(0.05)\n"



@dataclass
class Daemon:
    process: subprocess.Popen[bytes]
    port: int


def start_daemon(node_dir: Path) -> Daemon:
    """Start the daemon on 127.0.0.1 and wait for its `listening on` line."""
    process = subprocess.Popen([sys.executable, "-m", "seattle.cli", "node", "run", "--dir", str(node_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    try:
        line = process.stdout.readline().decode()
        assert line.startswith("listening on 127.0.0.1:"), f"the daemon did not start: {line!r}"
    except BaseException:
        process.kill()
        _, errors = process.communicate(timeout=START_TIMEOUT)
        raise AssertionError(f"the daemon did not start: {errors.decode(errors='replace')}") from None
    return Daemon(process, int(line.rsplit(":", 1)[1]))


def kill_daemon(daemon: Daemon) -> list[psutil.Process]:
    """SIGKILL the daemon; returns its vessel machinery (zygote, supervisors, vessels) as it was then."""
    machinery = psutil.Process(daemon.process.pid).children(recursive=True)
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait()
    # A vessel forked between the listing and the kill is a child of a process already listed.
    for process in list(machinery):
        try:
            machinery += [child for child in process.children(recursive=True) if child not in machinery]
        except psutil.NoSuchProcess:
            pass
    return machinery


class Workload:
    """Random mutating calls through one client per vessel owner, until the connection breaks."""

    def __init__(self, owners: dict[str, Identity], users: list[PublicKey], rng: random.Random) -> None:
        self.owners = owners
        self.users = users
        self.rng = rng
        self.completed = 0
        self.starts = 0

    async def run(self, port: int) -> None:
        clients: dict[str, NodeClient] = {}
        try:
            for text, identity in self.owners.items():
                clients[text] = await NodeClient.connect("127.0.0.1", port, identity, timeout=START_TIMEOUT)
            while True:
                try:
                    await self._one_call(clients)
                except CallFailed:
                    pass  # refusals (too large a split, not running, start_failed) are part of the workload
                self.completed += 1
        except NodeClientError:
            pass  # the daemon was killed
        finally:
            for client in clients.values():
                with trio.CancelScope(shield=True):
                    await client.aclose()

    async def _one_call(self, clients: dict[str, NodeClient]) -> None:
        any_client = next(iter(clients.values()))
        vessels = (await any_client.call("GetVessels"))["vessels"]
        vessel = self.rng.choice(vessels)
        name, node = vessel["name"], clients[vessel["owner"]]
        action = self.rng.choice(("split", "split", "join", "join", "add", "add", "program", "delete",
                                  "start", "start", "stop", "owner", "users", "info", "advertise"))
        if action == "split":
            have = parse_resources(await node.call("GetVesselResources", vessel=name))
            await node.call("SplitVessel", vessel=name, resources=_random_request(self.rng, have))
        elif action == "join" and len(vessels) > 1:
            other = self.rng.choice([v["name"] for v in vessels if v["name"] != name])
            await node.call("JoinVessels", vessel=name, other=other)
        elif action == "add":
            await node.call("AddFileToVessel", vessel=name, filename=self.rng.choice(FILENAMES[:3]),
                            data=_self_checking(self.rng))
        elif action == "program":
            await node.call("AddFileToVessel", vessel=name, filename=PROGRAM, data=LOOPING)
        elif action == "delete":
            await node.call("DeleteFileInVessel", vessel=name,
                            filename=self.rng.choice((*FILENAMES[:3], PROGRAM)))
        elif action == "start":
            await node.call("StartVessel", vessel=name, program=PROGRAM, args=[])
            self.starts += 1
        elif action == "stop":
            await node.call("StopVessel", vessel=name)
        elif action == "owner":
            await node.call("ChangeOwner", vessel=name, owner=self.rng.choice(list(self.owners)))
        elif action == "users":
            chosen = self.rng.sample(self.users, k=self.rng.randint(0, len(self.users)))
            await node.call("ChangeUsers", vessel=name, users=[key.to_text() for key in chosen])
        elif action == "info":
            await node.call("ChangeOwnerInformation", vessel=name, ownerinfo=self.rng.choice(("", "lab")))
        elif action == "advertise":
            await node.call("ChangeAdvertise", vessel=name, advertise=self.rng.choice((True, False)))


async def drive_then_kill(daemon: Daemon, workload: Workload, delay: float) -> list[psutil.Process]:
    """Run the workload against the daemon and SIGKILL the daemon after `delay` seconds of it."""
    machinery: list[psutil.Process] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(workload.run, daemon.port)
        await trio.sleep(delay)
        machinery = kill_daemon(daemon)
    return machinery


def running_at_kill(node_dir: Path) -> dict[str, bool]:
    """Each vessel's name → whether the node records it as running (opened without recovering)."""
    with NodeState.open(node_dir) as node:
        return {vessel.name: vessel.status in RUNNING for vessel in node.get_vessels()}


async def check_restarted(port: int, owners: dict[str, Identity], before: dict[str, bool]) -> None:
    """The restarted daemon serves calls and reports the node as it really is after the kill."""
    clients = {text: await NodeClient.connect("127.0.0.1", port, identity, timeout=START_TIMEOUT)
               for text, identity in owners.items()}
    try:
        vessels = (await next(iter(clients.values())).call("GetVessels"))["vessels"]
        assert sorted(v["name"] for v in vessels) == sorted(before), "the daemon lost or invented a vessel"
        for vessel in vessels:
            name, node = vessel["name"], clients[vessel["owner"]]
            if before[name]:
                assert vessel["status"] == "Terminated", f"{name} was running at the kill: {vessel}"
                assert (await node.call("ReadVesselLog", vessel=name)).endswith(RECOVERY_NOTE)
            else:
                assert vessel["status"] not in ("Started", "Stale"), f"{name} reported running: {vessel}"
            for filename in await node.call("ListFilesInVessel", vessel=name):
                data = await node.call("RetrieveFileFromVessel", vessel=name, filename=filename)
                if filename == PROGRAM:
                    assert data == LOOPING, f"{name}/{filename} is torn"
                elif filename in FILENAMES[:3]:
                    assert _is_whole(data), f"{name}/{filename} is torn"
            await node.call("ChangeOwnerInformation", vessel=name, ownerinfo="checked after restart")
    finally:
        for client in clients.values():
            await client.aclose()


def test_sigkill_of_the_daemon_never_breaks_the_node(tmp_path: Path) -> None:
    node_dir, copy_dir = tmp_path / "node", tmp_path / "checked"
    owners = [generate_identity("owner-a"), generate_identity("owner-b")]
    users = [generate_identity(f"user-{i}").public_key for i in range(3)]
    layout = [(_allotment(63100 + 10 * i), owners[i % 2].public_key, users[:i]) for i in range(4)]
    init_node(node_dir, owners[0].public_key, layout)
    NodeDir(node_dir).config_path.write_text(NodeConfig(host="127.0.0.1", port=0).to_json())
    with NodeState.open(node_dir) as node:
        invariants = Invariants(copy_dir, node.total())
    by_text = {identity.public_key.to_text(): identity for identity in owners}
    rng = random.Random(20261122)
    workload = Workload(by_text, users, rng)
    before: dict[str, bool] | None = None
    recovered_by_daemon = 0
    for _ in range(KILLS):
        daemon = start_daemon(node_dir)
        try:
            if before is not None:
                trio.run(check_restarted, daemon.port, by_text, before)
                recovered_by_daemon += sum(before.values())
            machinery = trio.run(drive_then_kill, daemon, workload, rng.uniform(*KILL_AFTER))
        finally:
            if daemon.process.poll() is None:
                daemon.process.kill()
                daemon.process.wait()
        assert daemon.process.returncode == -signal.SIGKILL, "the daemon ended on its own"
        _, alive = psutil.wait_procs(machinery, timeout=STRAY_TIMEOUT)
        assert alive == [], f"vessel processes outlived the daemon: {[p.pid for p in alive]}"
        before = running_at_kill(node_dir)
        shutil.rmtree(copy_dir, ignore_errors=True)
        shutil.copytree(node_dir, copy_dir, ignore=shutil.ignore_patterns("control.sock"))  # a socket cannot be copied
        invariants.check()
    daemon = start_daemon(node_dir)
    try:
        trio.run(check_restarted, daemon.port, by_text, before)
        recovered_by_daemon += sum(before.values())
    finally:
        _, alive = psutil.wait_procs(kill_daemon(daemon), timeout=STRAY_TIMEOUT)
    assert alive == [], f"vessel processes outlived the daemon: {[p.pid for p in alive]}"
    assert workload.completed > KILLS, "the client hardly made any calls; the test would prove little"
    assert workload.starts > 0 and recovered_by_daemon > 0, "no kill ever caught a running vessel"
    assert len(invariants.seen) > 4, "no split or join ever committed"
