"""Real node managers with the overlay on loopback advertise their vessels, and `browse` finds them.

Each node manager runs in its own task (so any one can be stopped while the others keep running), with its
UDP overlay on the same port number as its TCP API. Changes are made by signed calls through NodeClient, and
every "the change is visible" check is a bounded wait: browse again until it shows, or fail after WAIT s.
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from seattle.advertise.dht import find_records, publish
from seattle.errors import BadBootstrapNode, NoBootstrapNode, OverlayUnreachable
from seattle.experiment.browse import BrowseResult, FoundVessel, bootstrap_nodes, browse
from seattle.home import seattle_home
from seattle.keys import Identity, PublicKey, generate_identity, resolve
from seattle.nodemgr.client import NodeClient
from seattle.nodemgr.node import NodeManager, init_node
from seattle.nodemgr.nodedir import NodeDir
from seattle.overlay.nodeid import NodeId
from seattle.overlay.protocol import OverlayNode
from seattle.overlay.records import sign
from seattle.overlay.routing import RoutingTable
from seattle.overlay.udp import UdpOverlay
from tests.cli_runner import ok

WAIT = 20.0
TIMEOUT = 3.0
HOST = "127.0.0.1"


class Cluster:
    """Node managers in one nursery: `start` one, `stop` one, all stopped when the block ends."""

    def __init__(self, nursery: trio.Nursery, root: Path) -> None:
        self.nursery = nursery
        self.root = root
        self.stops: dict[str, trio.Event] = {}
        self.done: dict[str, trio.Event] = {}

    def create(self, name: str, owner: PublicKey) -> Path:
        init_node(self.root / name, owner)
        return self.root / name

    async def start(self, name: str, bootstrap: Sequence[NodeManager] = (), port: int = 0) -> NodeManager:
        self.stops[name], self.done[name] = trio.Event(), trio.Event()
        addresses = [(HOST, node.port) for node in bootstrap]
        return await self.nursery.start(self._run, name, addresses, port)

    async def stop(self, name: str) -> None:
        self.stops[name].set()
        with trio.fail_after(WAIT):
            await self.done[name].wait()

    async def _run(self, name: str, bootstrap: list[tuple[str, int]], port: int,
                   *, task_status: trio.TaskStatus[NodeManager] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with NodeManager(self.root / name, HOST, port, overlay=True, bootstrap=bootstrap) as node:
                task_status.started(node)
                await self.stops[name].wait()
        finally:
            self.done[name].set()


@asynccontextmanager
async def cluster(root: Path) -> AsyncIterator[Cluster]:
    async with trio.open_nursery() as nursery:
        running = Cluster(nursery, root)
        try:
            yield running
        finally:
            for stop in running.stops.values():
                stop.set()


async def until(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll `check` until it holds; fail naming `what` after WAIT s."""
    with trio.move_on_after(WAIT):
        while not await check():
            await trio.sleep(0.3)
        return
    pytest.fail(f"not within {WAIT} s: {what}")


def where(result: BrowseResult) -> set[tuple[int, str]]:
    return {(found.port, found.vessel) for found in result.vessels}


async def signed_call(identity: Identity, node: NodeManager, call: str, **args: Any) -> Any:
    async with await NodeClient.connect(HOST, node.port, identity, timeout=TIMEOUT) as client:
        return await client.call(call, **args)


async def records_for(key: PublicKey, start: NodeManager) -> set[PublicKey]:
    """The node keys the overlay currently advertises under `key`, read by a separate light client."""
    identity = generate_identity("reader")
    async with UdpOverlay(OverlayNode(identity, randomness=random.SystemRandom(), serve=False), HOST, 0) as reader:
        await reader.bootstrap(HOST, start.port, TIMEOUT)
        return {record.node for record in await find_records(reader, key, timeout=TIMEOUT)}


@pytest.mark.slow
async def test_vessels_are_found_by_owner_and_user_and_follow_changes(tmp_path: Path) -> None:
    alice, bob, carol, dave, erin = (generate_identity(n) for n in ("alice", "bob", "carol", "dave", "erin"))
    async with cluster(tmp_path) as nodes:
        for name, owner in (("n0", alice), ("n1", alice), ("n2", carol), ("n3", dave)):
            nodes.create(name, owner.public_key)
        n0 = await nodes.start("n0")  # no bootstrap: it starts the overlay
        n1, n2, n3 = [await nodes.start(name, [n0]) for name in ("n1", "n2", "n3")]
        seeds = [(HOST, n0.port)]

        async def shows(key: PublicKey, expected: set[tuple[int, str]], start: NodeManager = n0) -> bool:
            return where(await browse(key, [(HOST, start.port)], timeout=TIMEOUT)) == expected

        await until("alice finds her two vessels", lambda: shows(alice.public_key, {(n0.port, "v1"),
                                                                                   (n1.port, "v1")}))
        result = await browse(carol.public_key, [(HOST, n3.port)], timeout=TIMEOUT)
        (found,) = result.vessels
        assert found == FoundVessel(n2.node_key, HOST, n2.port, "v1", carol.public_key, (), "Fresh", True, "")
        assert found.address == f"{HOST}:{n2.port}" and result.unreachable == []

        # A user finds the vessel as well as its owner, and loses it when no longer a user.
        await signed_call(carol, n2, "ChangeUsers", vessel="v1", users=[bob.public_key.to_text()])
        await until("bob finds carol's vessel as its user", lambda: shows(bob.public_key, {(n2.port, "v1")}))
        (as_user,) = (await browse(bob.public_key, seeds, timeout=TIMEOUT)).vessels
        assert as_user.owner == carol.public_key and as_user.users == (bob.public_key,)

        # ChangeOwner: the new owner finds it; the old one does not, and the overlay withdrew the record.
        await signed_call(alice, n1, "ChangeOwner", vessel="v1", owner=erin.public_key.to_text())
        await until("erin finds the vessel given to her", lambda: shows(erin.public_key, {(n1.port, "v1")}))
        await until("alice no longer finds it", lambda: shows(alice.public_key, {(n0.port, "v1")}))
        assert n1.node_key not in await records_for(alice.public_key, n2)

        await signed_call(carol, n2, "ChangeUsers", vessel="v1", users=[])
        await until("bob no longer finds it", lambda: shows(bob.public_key, set()))

        # Advertising off hides the vessel (this was the only one of alice's on n0).
        await signed_call(alice, n0, "ChangeAdvertise", vessel="v1", advertise=False)
        await until("alice's unadvertised vessel is hidden", lambda: shows(alice.public_key, set(), n3))

        # A node whose key differs from the record's is reported, not used: an impostor advertises n0's
        # address for erin under its own key.
        impostor = generate_identity("impostor")
        async with UdpOverlay(OverlayNode(impostor, randomness=random.SystemRandom()), HOST, 0) as overlay:
            await overlay.bootstrap(HOST, n2.port, TIMEOUT)
            fake = sign(impostor, erin.public_key, [f"{HOST}:{n0.port}"], sequence=1, now=time.time())
            assert await publish(overlay, fake, timeout=TIMEOUT) >= 1
        result = await browse(erin.public_key, seeds, timeout=TIMEOUT)
        assert where(result) == {(n1.port, "v1")}
        ((address, why),) = result.unreachable
        assert address == f"{HOST}:{n0.port}" and impostor.public_key.fingerprint() in why

        # A node that stopped still has records in the overlay: browse reports it unreachable.
        await nodes.stop("n3")
        result = await browse(dave.public_key, seeds, timeout=TIMEOUT)
        assert result.vessels == [] and result.unreachable == [(f"{HOST}:{n3.port}", "refused")]


@pytest.mark.slow
async def test_a_node_restarted_from_its_routing_table_rejoins_without_its_bootstrap_node(tmp_path: Path) -> None:
    owner = generate_identity("owner")
    async with cluster(tmp_path) as nodes:
        for name in ("boot", "x", "c", "d"):
            nodes.create(name, owner.public_key)
        boot = await nodes.start("boot")
        x = await nodes.start("x", [boot])
        c, d = await nodes.start("c", [boot]), await nodes.start("d", [boot])
        assert x.overlay is not None

        def ids(*managers: NodeManager) -> set[NodeId]:
            return {NodeId.from_public_key(manager.node_key) for manager in managers}

        async def x_knows_c_and_d() -> bool:
            assert x.overlay is not None
            return ids(c, d) <= {contact.node_id for contact in x.overlay.node.table}

        await until("x learns of c and d", x_knows_c_and_d)
        port = x.port
        await nodes.stop("x")
        saved = tmp_path / "x" / NodeDir.ROUTING
        assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
        table = RoutingTable.from_dict(json.loads(saved.read_text()))
        assert ids(c, d) <= {contact.node_id for contact in table}
        await nodes.stop("boot")

        x = await nodes.start("x", port=port)  # no bootstrap node: only routing.json
        assert x.overlay is not None and len(x.overlay.node.table) >= 2
        found = await x.overlay.lookup(NodeId.from_public_key(generate_identity("t").public_key), TIMEOUT * 4)
        assert {contact.node_id for contact in found} >= ids(c, d)

        async def x_is_found() -> bool:
            result = await browse(owner.public_key, [(HOST, c.port)], timeout=TIMEOUT)
            return (x.port, "v1") in where(result) and (c.port, "v1") in where(result)

        await until("the restarted node is found through the others", x_is_found)


@pytest.mark.slow
async def test_a_damaged_routing_file_is_ignored_and_replaced(tmp_path: Path) -> None:
    owner = generate_identity("owner")
    async with cluster(tmp_path) as nodes:
        nodes.create("n", owner.public_key)
        (tmp_path / "n" / NodeDir.ROUTING).write_text('{"format": "seattle-routing-v1", "contacts": [')
        node = await nodes.start("n")
        assert node.overlay is not None and len(node.overlay.node.table) == 0
        # Alone in a new overlay, the node still answers for its own vessels.
        await until("the lone node is found", lambda: _finds(owner.public_key, node))
        await nodes.stop("n")
    assert json.loads((tmp_path / "n" / NodeDir.ROUTING).read_text())["format"] == "seattle-routing-v1"


async def _finds(key: PublicKey, node: NodeManager) -> bool:
    return where(await browse(key, [(HOST, node.port)], timeout=TIMEOUT)) == {(node.port, "v1")}


@pytest.mark.slow
async def test_browse_says_when_no_bootstrap_node_answers() -> None:
    silent = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    with silent:
        await silent.bind((HOST, 0))
        port = silent.getsockname()[1]
        with trio.fail_after(WAIT), pytest.raises(OverlayUnreachable, match=f"{HOST}:{port}"):
            await browse(generate_identity("r").public_key, [(HOST, port)], timeout=1.0)
    with pytest.raises(NoBootstrapNode):
        await browse(generate_identity("r").public_key, [])


def test_bootstrap_nodes_come_from_the_option_the_environment_or_the_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEATTLE_BOOTSTRAP", raising=False)
    with pytest.raises(NoBootstrapNode, match="--bootstrap HOST:PORT"):
        bootstrap_nodes()
    (seattle_home() / "bootstrap").write_text("# our testbed\n10.0.0.5:1224  # lab\n\n[2001:db8::5]:1224\n")
    assert bootstrap_nodes() == [("10.0.0.5", 1224), ("2001:db8::5", 1224)]
    monkeypatch.setenv("SEATTLE_BOOTSTRAP", "10.0.0.6:1, 10.0.0.7:2")
    assert bootstrap_nodes() == [("10.0.0.6", 1), ("10.0.0.7", 2)]
    assert bootstrap_nodes(["127.0.0.1:99"]) == [("127.0.0.1", 99)]
    with pytest.raises(BadBootstrapNode, match="--bootstrap"):
        bootstrap_nodes(["localhost"])
    monkeypatch.setenv("SEATTLE_BOOTSTRAP", "10.0.0.6:99999")
    with pytest.raises(BadBootstrapNode, match="SEATTLE_BOOTSTRAP"):
        bootstrap_nodes()
    monkeypatch.delenv("SEATTLE_BOOTSTRAP")
    (seattle_home() / "bootstrap").write_text("10.0.0.5:1224\nnode.example:1224\n")
    with pytest.raises(BadBootstrapNode, match="line 2"):
        bootstrap_nodes()


async def run_daemon(node_dir: Path, *bootstrap: str) -> tuple[subprocess.Popen[bytes], int]:
    """`seattle node run` in the background; returns it and its port once it printed `listening on`."""
    options = [word for address in bootstrap for word in ("--bootstrap", address)]
    process = subprocess.Popen([sys.executable, "-m", "seattle.cli", "node", "run", "--dir", str(node_dir),
                                *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    line = ""
    with trio.move_on_after(WAIT):
        line = (await trio.to_thread.run_sync(process.stdout.readline, abandon_on_cancel=True)).decode()
    if not line.startswith(f"listening on {HOST}:"):
        process.kill()
        pytest.fail(f"the daemon did not start: {line!r} {process.communicate(timeout=WAIT)[1].decode()}")
    return process, int(line.rsplit(":", 1)[1])


def stop_daemon(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=WAIT) == 0
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.slow
async def test_seattle_node_run_joins_the_overlay_through_bootstrap(tmp_path: Path) -> None:
    ok("keygen", "alice")
    alice = resolve("alice")
    first, second = tmp_path / "first", tmp_path / "second"
    ok("node", "init", "--dir", str(first), "--port", "0", "--owner", "alice")
    # node.json keeps init's --bootstrap; run's --bootstrap replaces it (this one points nowhere useful).
    ok("node", "init", "--dir", str(second), "--port", "0", "--owner", "alice", "--bootstrap", f"{HOST}:9")
    assert json.loads((second / "node.json").read_text())["bootstrap"] == [f"{HOST}:9"]
    daemons = [await run_daemon(first)]
    try:
        daemons.append(await run_daemon(second, f"{HOST}:{daemons[0][1]}"))
        ports = {port for _, port in daemons}

        async def both_found() -> bool:
            result = await browse(alice, [(HOST, daemons[0][1])], timeout=TIMEOUT)
            return {found.port for found in result.vessels} == ports

        await until("browse finds the vessels of both daemons", both_found)
    finally:
        for process, _ in daemons:
            stop_daemon(process)
    assert "overlay on udp" in (second / "nodemanager.log").read_text()
    assert (second / NodeDir.ROUTING).exists()
