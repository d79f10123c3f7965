"""The pool on a real node manager over loopback TCP: acquire → the key is a user → its program runs →
release wipes it; recovery after a kill at any point of an acquire or a release; pool vessels keep their owner;
a flood of fresh keys from one network is held back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from seattle.keys import Identity, generate_identity
from seattle.nodemgr.client import CallFailed, NodeClient
from seattle.nodemgr.node import NodeManager, init_node, load_node_identity
from seattle.nodemgr.nodedir import NodeDir
from seattle.nodemgr.nodeerror import NodeError
from seattle.nodemgr.signing import sign_request
from seattle.nodemgr.vessels import NodeState
from seattle.pool.formats import Lease
from seattle.pool.ledger import Ledger, OverlayView
from seattle.resources import DEFAULT_ALLOTMENT, Resources

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
WAIT = 20.0
PROGRAM = b"f = openfile('private_notes', True)\nf.writeat('mine', 0)\nf.close()\nlog('hello from the lessee')\n"


def small(port: int) -> Resources:
    return Resources({**DEFAULT_ALLOTMENT.quantities, "memory": 64 * MIB, "diskused": MIB},
                     messport=frozenset({port}), connport=frozenset({port}))


def make_node(path: Path) -> Identity:
    owner = generate_identity("owner")
    init_node(path, owner.public_key, [(small(63210), owner.public_key, [])], pool=[small(63211), small(63212)])
    return load_node_identity(path)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[NodeManager]:
    make_node(tmp_path / "node")
    async with NodeManager(tmp_path / "node", "127.0.0.1", 0) as nm:
        yield nm


async def client(nm: NodeManager, identity: Identity | None) -> NodeClient:
    return await NodeClient.connect("127.0.0.1", nm.port, identity)


async def test_acquire_run_release_leaves_nothing_behind(node: NodeManager) -> None:
    researcher = generate_identity("researcher")
    async with await client(node, researcher) as me:
        status = await me.call("GetPoolStatus")
        assert (status["free"], status["total"], status["leases"]) == (2, 2, [])
        granted = await me.call("AcquireVessel", slot=0, duration=600.0)
        lease = Lease.verify(granted["lease"], node.node_key, time.time())
        assert (lease.lessee, lease.vessel, lease.slot) == (researcher.public_key, granted["vessel"], 0)
        vessel = lease.vessel
        listing = {v["name"]: v for v in (await me.call("GetVessels"))["vessels"]}
        assert listing[vessel]["users"] == [researcher.public_key.to_text()]
        assert listing[vessel]["owner"] == node.node_key.to_text() and not listing[vessel]["advertise"]
        assert (await me.call("GetPoolStatus"))["leases"] == [lease.raw]

        await me.call("AddFileToVessel", vessel=vessel, filename="hello.r2py", data=PROGRAM)
        await me.call("StartVessel", vessel=vessel, program="hello.r2py", args=[])
        with trio.fail_after(WAIT):
            while b"hello from the lessee" not in await me.call("ReadVesselLog", vessel=vessel):
                await trio.sleep(0.05)
        renewed = await me.call("RenewLease", vessel=vessel, duration=900.0)
        assert renewed["expires"] > granted["expires"]

        await me.call("ReleaseLease", vessel=vessel)
        with pytest.raises(CallFailed) as refused:
            await me.call("ListFilesInVessel", vessel=vessel)
        assert refused.value.code == "insufficient_permissions"
    assert node.state is not None
    record = node.state.get_vessel(vessel)
    assert (list(record.users), record.status.value) == ([], "Fresh")
    assert list(node.state.vessel_dir(vessel).iterdir()) == [] and node.state.read_log(vessel) == b""
    assert node.api is not None and node.api.running_handle(vessel) is None


async def test_refusals_say_why(node: NodeManager) -> None:
    alice, bob = generate_identity("alice"), generate_identity("bob")
    async with await client(node, alice) as a, await client(node, bob) as b:
        await a.call("AcquireVessel", slot=1, duration=60.0)
        taken = await a.request("AcquireVessel", slot=1, duration=60.0)
        assert taken.code == "slot_taken" and "quota 1/10 (slot 1 held at" in taken.message
        assert (await a.request("AcquireVessel", slot=10, duration=60.0)).code == "quota"
        await b.call("AcquireVessel", slot=0, duration=60.0)  # the fourth acquire from 127.0.0.1: its burst
        assert (await b.request("AcquireVessel", slot=1, duration=60.0)).code == "rate_limited"
        assert (await b.request("RenewLease", vessel="v2", duration=60.0)).code == "insufficient_permissions"


async def test_pool_vessels_keep_their_owner(node: NodeManager, tmp_path: Path) -> None:
    node_identity = load_node_identity(tmp_path / "node")
    async with await client(node, node_identity) as self_signed:
        for call, args in (("ChangeOwner", {"owner": generate_identity("x").public_key.to_text()}),
                           ("ChangeUsers", {"users": []}), ("ChangeAdvertise", {"advertise": True})):
            response = await self_signed.request(call, vessel="v2", **args)
            assert response.code == "pool_vessel" and "belongs to the pool" in response.message


async def test_a_flood_of_fresh_keys_from_one_network_is_held_back(node: NodeManager) -> None:
    codes = []
    for _ in range(10):
        async with await client(node, generate_identity("fresh")) as fresh:
            codes.append((await fresh.request("AcquireVessel", slot=0, duration=60.0)).code)
    assert codes[:2] == ["ok", "ok"] and codes[2:4] == ["pool_empty", "pool_empty"]
    assert set(codes[4:]) == {"rate_limited"}  # a burst of 4 per network, then one per 30 s


def _offline_ledger(path: Path) -> Ledger:
    """The node's ledger as a node manager killed at this point left it."""
    identity = load_node_identity(path)
    directory = NodeDir(path)
    return Ledger(identity, ["v2", "v3"], directory.write_pool, saved=directory.read_pool())


async def test_killed_during_acquire_the_lessee_becomes_the_user(tmp_path: Path) -> None:
    path = tmp_path / "node"
    node_identity = make_node(path)
    researcher = generate_identity("researcher")
    request = sign_request(researcher, node_identity.public_key, "AcquireVessel", [0, 60.0], now=1e9,
                           nonce=b"n" * 16)
    lease = _offline_ledger(path).acquire(researcher.public_key, 0, 600.0, request, OverlayView(), time.time())
    # Killed after the ledger's write, before the user was set: the restarted node sets it.
    async with NodeManager(path, "127.0.0.1", 0) as nm:
        assert nm.state is not None
        assert list(nm.state.get_vessel(lease.vessel).users) == [researcher.public_key.raw]


async def test_killed_during_release_the_reset_is_finished_and_no_stray_user_is_left(tmp_path: Path) -> None:
    path = tmp_path / "node"
    node_identity = make_node(path)
    researcher = generate_identity("researcher")
    request = sign_request(researcher, node_identity.public_key, "AcquireVessel", [0, 60.0], now=1e9,
                           nonce=b"n" * 16)
    ledger = _offline_ledger(path)
    lease = ledger.acquire(researcher.public_key, 0, 600.0, request, OverlayView(), time.time())
    with NodeState.open(path) as state:
        state.change_users(lease.vessel, [researcher.public_key.raw])
        state.add_file(lease.vessel, "left.txt", b"x")
        state.change_users("v3", [researcher.public_key.raw])  # a user with no lease: must not survive
    ledger.release(researcher.public_key, lease.vessel)  # killed right after the release was recorded
    async with NodeManager(path, "127.0.0.1", 0) as nm:
        assert nm.state is not None
        for name in ("v2", "v3"):
            assert list(nm.state.get_vessel(name).users) == [] and nm.state.list_files(name) == []
        async with await client(nm, None) as anyone:
            assert (await anyone.call("GetPoolStatus"))["free"] == 2


async def test_a_lease_expires_on_time_and_its_vessel_is_wiped(node: NodeManager) -> None:
    researcher = generate_identity("researcher")
    async with await client(node, researcher) as me:
        granted = await me.call("AcquireVessel", slot=0, duration=1.0)
        await me.call("AddFileToVessel", vessel=granted["vessel"], filename="x.txt", data=b"x")
        assert node.state is not None
        with trio.fail_after(WAIT):
            while node.state.get_vessel(granted["vessel"]).users:
                await trio.sleep(0.05)
        assert time.time() >= granted["expires"]  # never before its end (how soon after: bench, not here)
        with trio.fail_after(WAIT):
            while node.state.list_files(granted["vessel"]):
                await trio.sleep(0.05)
        assert (await me.call("GetPoolStatus"))["free"] == 2


async def test_a_damaged_ledger_stops_the_start_with_its_path(tmp_path: Path) -> None:
    make_node(tmp_path / "node")
    NodeDir(tmp_path / "node").write_pool(b"\xc1")
    with pytest.raises(NodeError, match=r"pool\.ledger"):
        async with NodeManager(tmp_path / "node", "127.0.0.1", 0):
            pass
