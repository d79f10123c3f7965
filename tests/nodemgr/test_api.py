"""Every node manager call over real TCP on 127.0.0.1, against a real NodeManager running real vessels.

Covers each call's result, the permission matrix (owner, user, stranger, unsigned) for every call, and each
error case: the generic ones (no_such_call, bad_arguments, no_such_vessel, insufficient_permissions) and the
calls' own codes.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from seattle.keys import Identity, IdentityExists, generate_identity
from seattle.nodemgr.calltable import CALLS, MAX_FILE_DATA, PUBLIC_CALLS, Permission
from seattle.nodemgr.client import CallFailed, NodeClient
from seattle.nodemgr.frames import encode_frame
from seattle.nodemgr.node import NodeManager, init_node, load_node_identity
from seattle.nodemgr.nodeerror import NodeError
from seattle.nodemgr.signing import NONCE_SIZE, sign_request
from seattle.resources import DEFAULT_ALLOTMENT, DEFAULT_OFFCUT, Resources, parse_resources

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
#: Generous bound on anything a vessel does; a test that needs longer is a failed test, not a slow one.
WAIT = 20.0
LOOPING = b"log('up', callargs)\nwhile True:\n    sleep(0.05)\n"
SMALL = Resources({"cpu": 0.1, "memory": 64 * MIB, "diskused": 64 * 1024, "events": 10},
                  messport=frozenset({63200}), connport=frozenset({63200}))


@dataclass
class Node:
    nm: NodeManager
    owner: Identity
    user: Identity
    stranger: Identity

    async def client(self, identity: Identity | None) -> NodeClient:
        return await NodeClient.connect("127.0.0.1", self.nm.port, identity)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    owner, user, stranger = (generate_identity(name) for name in ("owner", "user", "stranger"))
    layout = [(DEFAULT_ALLOTMENT, owner.public_key, [user.public_key]), (SMALL, owner.public_key, [])]
    init_node(tmp_path / "node", owner.public_key, layout)
    async with NodeManager(tmp_path / "node", "127.0.0.1", 0) as nm:
        yield Node(nm, owner, user, stranger)


async def _code(client: NodeClient, call: str, **args: Any) -> str:
    return (await client.request(call, **args)).code


async def _status(client: NodeClient, vessel: str) -> str:
    vessels = (await client.call("GetVessels"))["vessels"]
    return next(v["status"] for v in vessels if v["name"] == vessel)


async def _wait_for_status(client: NodeClient, vessel: str, wanted: str) -> None:
    with trio.fail_after(WAIT):
        while await _status(client, vessel) != wanted:
            await trio.sleep(0.05)


async def _wait_for_log(client: NodeClient, vessel: str, text: bytes) -> bytes:
    with trio.fail_after(WAIT):
        while text not in (log := await client.call("ReadVesselLog", vessel=vessel)):
            await trio.sleep(0.05)
    return log


# --- node creation -----------------------------------------------------------------------------------------


def test_init_node_writes_a_private_key_and_refuses_a_second_time(tmp_path: Path) -> None:
    owner = generate_identity("owner")
    node_key = init_node(tmp_path / "n", owner.public_key)
    key_file = tmp_path / "n" / "node.privatekey"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_node_identity(tmp_path / "n").public_key == node_key
    with pytest.raises((NodeError, IdentityExists)):
        init_node(tmp_path / "n", owner.public_key)


# --- public calls ------------------------------------------------------------------------------------------


async def test_public_calls_answer_unsigned_requests(node: Node) -> None:
    async with await node.client(None) as client:
        info = await client.call("GetNodeInfo")
        assert info["node_key"] == node.nm.node_key.to_text()
        assert info["fingerprint"] == node.nm.node_key.fingerprint()
        assert f"127.0.0.1:{node.nm.port}" in info["addresses"]
        assert info["layers"]["language"]["available"] is True
        assert set(info["layers"]) >= {"language", "seccomp", "landlock", "rlimits", "namespaces"}

        listing = await client.call("GetVessels")
        assert listing["node_key"] == node.nm.node_key.to_text()
        v1, v2 = listing["vessels"]
        assert v1 == {"name": "v1", "status": "Fresh", "advertise": True, "ownerinfo": "",
                      "owner": node.owner.public_key.to_text(), "users": [node.user.public_key.to_text()]}
        assert v2["name"] == "v2" and v2["users"] == []

        text = await client.call("GetVesselResources", vessel="v1")
        assert parse_resources(text) == DEFAULT_ALLOTMENT
        assert parse_resources(await client.call("GetOffcutResources")) == DEFAULT_OFFCUT
        with pytest.raises(CallFailed) as refused:
            await client.call("GetVesselResources", vessel="v9")
        assert refused.value.code == "no_such_vessel"


# --- the permission matrix ---------------------------------------------------------------------------------

#: Arguments with which every call passes its argument checks and changes nothing that later calls need:
#: where the call would change the vessel it is made to fail after the permission check instead.
HARMLESS_ARGS: dict[str, dict[str, Any]] = {
    "GetNodeInfo": {}, "GetVessels": {}, "GetOffcutResources": {}, "GetVesselResources": {"vessel": "v1"},
    "StartVessel": {"vessel": "v1", "program": "missing.r2py", "args": []},
    "StopVessel": {"vessel": "v1"},
    "ResetVessel": {"vessel": "v1"},
    "AddFileToVessel": {"vessel": "v1", "filename": "matrix.txt", "data": b"x"},
    "RetrieveFileFromVessel": {"vessel": "v1", "filename": "matrix.txt"},
    "ListFilesInVessel": {"vessel": "v1"},
    "DeleteFileInVessel": {"vessel": "v1", "filename": "matrix.txt"},
    "ReadVesselLog": {"vessel": "v1"},
    "ChangeUsers": {"vessel": "v1", "users": "SELF_USERS"},
    "ChangeOwner": {"vessel": "v1", "owner": "SELF_OWNER"},
    "ChangeOwnerInformation": {"vessel": "v1", "ownerinfo": ""},
    "ChangeAdvertise": {"vessel": "v1", "advertise": True},
    "SplitVessel": {"vessel": "v1",
                    "resources": "resource cpu 100\nresource memory 1\nresource diskused 1\n"},
    "JoinVessels": {"vessel": "v1", "other": "v1"},
    # The pool's calls on a node with no pool vessels: refused after the permission check (pool_empty,
    # not_pool_vessel).
    "AcquireVessel": {"slot": 0, "duration": 60.0},
    "RenewLease": {"vessel": "v1", "duration": 60.0},
    "ReleaseLease": {"vessel": "v1"},
    "GetPoolStatus": {},
}


def test_the_matrix_covers_every_call() -> None:
    assert set(HARMLESS_ARGS) == set(CALLS)
    assert {"GetVessels", "GetVesselResources", "GetOffcutResources", "GetNodeInfo", "GetPoolStatus"} == PUBLIC_CALLS


async def test_permission_matrix_of_every_call(node: Node) -> None:
    def args_for(name: str) -> dict[str, Any]:
        args = dict(HARMLESS_ARGS[name])
        if args.get("owner") == "SELF_OWNER":
            args["owner"] = node.owner.public_key.to_text()
        if args.get("users") == "SELF_USERS":
            args["users"] = [node.user.public_key.to_text()]
        return args

    clients = {who: await node.client(identity) for who, identity in
               (("owner", node.owner), ("user", node.user), ("stranger", node.stranger), ("unsigned", None))}
    try:
        for name, call in sorted(CALLS.items()):
            allowed = {"owner": True, "user": call.permission is not Permission.OWNER,
                       "stranger": call.permission in (Permission.PUBLIC, Permission.SIGNED),
                       "unsigned": call.permission is Permission.PUBLIC}
            for who, client in clients.items():
                response = await client.request(name, **args_for(name))
                refused = response.code == "insufficient_permissions"
                assert refused != allowed[who], (name, who, response)
                if refused:
                    assert name in response.message and response.result is None
    finally:
        for client in clients.values():
            await client.aclose()


async def test_permission_is_checked_on_both_vessels_of_a_join(node: Node) -> None:
    async with await node.client(node.owner) as owner:
        await owner.call("ChangeOwner", vessel="v2", owner=node.stranger.public_key.to_text())
    async with await node.client(node.stranger) as stranger:
        assert await _code(stranger, "JoinVessels", vessel="v2", other="v1") == "insufficient_permissions"


# --- running a program -------------------------------------------------------------------------------------


async def test_program_uploaded_started_logged_stopped_and_restarted(node: Node) -> None:
    async with await node.client(node.user) as user:
        await user.call("AddFileToVessel", vessel="v1", filename="loop.r2py", data=LOOPING)
        assert await user.call("ListFilesInVessel", vessel="v1") == ["loop.r2py"]
        started = await user.call("StartVessel", vessel="v1", program="loop.r2py", args=["a", "b c"])
        assert started == "Started"
        assert await _status(user, "v1") == "Started"
        assert b"up ['a', 'b c']" in await _wait_for_log(user, "v1", b"up")

        again = await _code(user, "StartVessel", vessel="v1", program="loop.r2py", args=[])
        assert again == "already_started"
        for call in ("SplitVessel", "JoinVessels"):
            async with await node.client(node.owner) as owner:
                args = ({"resources": SMALL.to_text()} if call == "SplitVessel" else {"other": "v2"})
                assert await _code(owner, call, vessel="v1", **args) == "vessel_running"

        assert await user.call("StopVessel", vessel="v1") == "Stopped"
        assert await _status(user, "v1") == "Stopped"
        assert await _code(user, "StopVessel", vessel="v1") == "not_running"

        assert await user.call("StartVessel", vessel="v1", program="loop.r2py", args=[]) == "Started"
        assert await user.call("StopVessel", vessel="v1") == "Stopped"


async def test_a_program_that_ends_is_recorded_terminated(node: Node) -> None:
    async with await node.client(node.owner) as owner:
        await owner.call("AddFileToVessel", vessel="v1", filename="once.r2py", data=b"log('done')\n")
        await owner.call("StartVessel", vessel="v1", program="once.r2py", args=[])
        await _wait_for_status(owner, "v1", "Terminated")
        assert await owner.call("ReadVesselLog", vessel="v1") == b"done"
        await owner.call("AddFileToVessel", vessel="v1", filename="bad.r2py", data=b"import os\n")
        await owner.call("StartVessel", vessel="v1", program="bad.r2py", args=[])
        await _wait_for_status(owner, "v1", "Terminated")
        assert b"CodeUnsafeError" in await owner.call("ReadVesselLog", vessel="v1")


async def test_start_errors(node: Node) -> None:
    async with await node.client(node.owner) as owner:
        await owner.call("AddFileToVessel", vessel="v1", filename="loop.r2py", data=LOOPING)
        cases = [
            ({"program": "missing.r2py", "args": []}, "file_not_found"),
            ({"program": "private_x", "args": []}, "private_filename"),
            ({"program": "Bad/Name", "args": []}, "bad_filename"),
            ({"program": "loop.r2py", "args": "a b"}, "bad_arguments"),
            ({"program": "loop.r2py", "args": [1]}, "bad_arguments"),
            ({"program": "loop.r2py", "args": ["x"] * 257}, "bad_arguments"),
            ({"program": 7, "args": []}, "bad_arguments"),
        ]
        for args, code in cases:
            assert await _code(owner, "StartVessel", vessel="v1", **args) == code, args
        assert await _status(owner, "v1") == "Fresh"


async def test_reset_stops_a_running_vessel_and_empties_it(node: Node) -> None:
    async with await node.client(node.user) as user:
        await user.call("AddFileToVessel", vessel="v1", filename="loop.r2py", data=LOOPING)
        await user.call("StartVessel", vessel="v1", program="loop.r2py", args=[])
        await _wait_for_log(user, "v1", b"up")
        private = node.nm.state.vessel_dir("v1") / "private_keep"  # type: ignore[union-attr]
        private.write_bytes(b"kept")
        assert await user.call("ResetVessel", vessel="v1") is None
        assert await _status(user, "v1") == "Fresh"
        assert await user.call("ListFilesInVessel", vessel="v1") == []
        assert await user.call("ReadVesselLog", vessel="v1") == b""
        assert private.read_bytes() == b"kept"


async def test_shutdown_stops_vessels_and_records_them_stopped(tmp_path: Path) -> None:
    owner = generate_identity("owner")
    init_node(tmp_path / "node", owner.public_key)
    async with NodeManager(tmp_path / "node", "127.0.0.1", 0) as nm:
        client = await NodeClient.connect("127.0.0.1", nm.port, owner)
        async with client:
            await client.call("AddFileToVessel", vessel="v1", filename="loop.r2py", data=LOOPING)
            await client.call("StartVessel", vessel="v1", program="loop.r2py", args=[])
    async with NodeManager(tmp_path / "node", "127.0.0.1", 0) as nm:
        client = await NodeClient.connect("127.0.0.1", nm.port, owner)
        async with client:
            assert await _status(client, "v1") == "Stopped"


# --- files -------------------------------------------------------------------------------------------------


async def test_file_calls(node: Node) -> None:
    async with await node.client(node.user) as user:
        data = os.urandom(100_000)
        assert await user.call("AddFileToVessel", vessel="v1", filename="data.bin", data=data) is None
        await user.call("AddFileToVessel", vessel="v1", filename="a.txt", data=b"")
        assert await user.call("RetrieveFileFromVessel", vessel="v1", filename="data.bin") == data
        assert await user.call("ListFilesInVessel", vessel="v1") == ["a.txt", "data.bin"]
        await user.call("AddFileToVessel", vessel="v1", filename="a.txt", data=b"replaced")
        assert await user.call("RetrieveFileFromVessel", vessel="v1", filename="a.txt") == b"replaced"
        assert await user.call("DeleteFileInVessel", vessel="v1", filename="a.txt") is None
        assert await user.call("ListFilesInVessel", vessel="v1") == ["data.bin"]


async def test_file_call_errors(node: Node) -> None:
    async with await node.client(node.owner) as owner:
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("RetrieveFileFromVessel", {"vessel": "v1", "filename": "nope"}, "file_not_found"),
            ("DeleteFileInVessel", {"vessel": "v1", "filename": "nope"}, "file_not_found"),
            ("AddFileToVessel", {"vessel": "v1", "filename": "private_x", "data": b""}, "private_filename"),
            ("RetrieveFileFromVessel", {"vessel": "v1", "filename": "private_x"}, "private_filename"),
            ("DeleteFileInVessel", {"vessel": "v1", "filename": "private_x"}, "private_filename"),
            ("AddFileToVessel", {"vessel": "v1", "filename": "../escape", "data": b""}, "bad_filename"),
            ("AddFileToVessel", {"vessel": "v1", "filename": "", "data": b""}, "bad_filename"),
            ("AddFileToVessel", {"vessel": "v1", "filename": "x" * 121, "data": b""}, "bad_arguments"),
            ("AddFileToVessel", {"vessel": "v1", "filename": "t.txt", "data": "text"}, "bad_arguments"),
            ("AddFileToVessel", {"vessel": "v2", "filename": "big", "data": b"x" * 64 * 1024}, "disk_full"),
            ("AddFileToVessel", {"vessel": "v1", "filename": "huge", "data": b"x" * (MAX_FILE_DATA + 1)},
             "bad_arguments"),
            ("ListFilesInVessel", {"vessel": "v7"}, "no_such_vessel"),
            ("ReadVesselLog", {"vessel": "nonsense"}, "no_such_vessel"),
        ]
        for call, args, code in cases:
            response = await owner.request(call, **args)
            assert (response.status, response.code) == ("error", code), (call, args, response)
            assert response.message


# --- owner calls -------------------------------------------------------------------------------------------


async def test_change_users_grants_and_revokes_access(node: Node) -> None:
    async with await node.client(node.owner) as owner, await node.client(node.stranger) as stranger:
        assert await _code(stranger, "ListFilesInVessel", vessel="v1") == "insufficient_permissions"
        await owner.call("ChangeUsers", vessel="v1", users=[node.stranger.public_key.to_text()])
        assert await stranger.call("ListFilesInVessel", vessel="v1") == []
        users = (await owner.call("GetVessels"))["vessels"][0]["users"]
        assert users == [node.stranger.public_key.to_text()]
        await owner.call("ChangeUsers", vessel="v1", users=[])
        assert await _code(stranger, "ListFilesInVessel", vessel="v1") == "insufficient_permissions"
        assert await _code(owner, "ChangeUsers", vessel="v1", users=["ed25519:short"]) == "bad_key"
        assert await _code(owner, "ChangeUsers", vessel="v1", users="ed25519:x") == "bad_arguments"
        twice = [node.user.public_key.to_text()] * 2
        assert await _code(owner, "ChangeUsers", vessel="v1", users=twice) == "bad_key"


async def test_change_owner_moves_control_and_clears_ownerinfo(node: Node) -> None:
    async with await node.client(node.owner) as owner, await node.client(node.stranger) as new_owner:
        await owner.call("ChangeOwnerInformation", vessel="v1", ownerinfo="lab 7")
        await owner.call("ChangeAdvertise", vessel="v1", advertise=False)
        assert await _code(owner, "ChangeOwner", vessel="v1", owner="alice") == "bad_key"
        await owner.call("ChangeOwner", vessel="v1", owner=node.stranger.public_key.to_text())
        v1 = (await owner.call("GetVessels"))["vessels"][0]
        assert (v1["owner"], v1["ownerinfo"], v1["advertise"]) == (
            node.stranger.public_key.to_text(), "", True)
        refused = await _code(owner, "ChangeAdvertise", vessel="v1", advertise=True)
        assert refused == "insufficient_permissions"
        assert await new_owner.call("ChangeAdvertise", vessel="v1", advertise=False) is None


async def test_ownerinfo_and_advertise_errors(node: Node) -> None:
    async with await node.client(node.owner) as owner:
        info = "ChangeOwnerInformation"
        assert await _code(owner, info, vessel="v1", ownerinfo="x" * 257) == "string_too_long"
        assert await _code(owner, info, vessel="v1", ownerinfo="a\nb") == "newline_in_string"
        assert await _code(owner, info, vessel="v1", ownerinfo=5) == "bad_arguments"
        assert await _code(owner, "ChangeAdvertise", vessel="v1", advertise="True") == "bad_arguments"
        await owner.call("ChangeOwnerInformation", vessel="v1", ownerinfo="x" * 256)
        assert (await owner.call("GetVessels"))["vessels"][0]["ownerinfo"] == "x" * 256


async def test_split_and_join_over_the_wire(node: Node) -> None:
    async with await node.client(node.owner) as owner:
        await owner.call("AddFileToVessel", vessel="v1", filename="gone.txt", data=b"x")
        leftover, piece = await owner.call("SplitVessel", vessel="v1", resources=SMALL.replace(
            messport=frozenset({63101}), connport=frozenset({63101})).to_text())
        assert (leftover, piece) == ("v3", "v4")
        names = [v["name"] for v in (await owner.call("GetVessels"))["vessels"]]
        assert names == ["v2", "v3", "v4"]
        assert parse_resources(await owner.call("GetVesselResources", vessel="v4")).messport == {63101}
        assert await owner.call("ListFilesInVessel", vessel="v3") == []
        assert await _code(owner, "GetVesselResources", vessel="v1") == "no_such_vessel"

        # the user of v1 is a user of both pieces
        async with await node.client(node.user) as user:
            assert await user.call("ListFilesInVessel", vessel="v4") == []

        too_much = DEFAULT_ALLOTMENT.to_text()
        assert await _code(owner, "SplitVessel", vessel="v3", resources=too_much) == "too_large"
        assert await _code(owner, "SplitVessel", vessel="v2", resources=too_much) == "too_small_to_split"
        bad_text = "resource cpu lots\n"
        assert await _code(owner, "SplitVessel", vessel="v3", resources=bad_text) == "bad_resources"
        assert await _code(owner, "SplitVessel", vessel="v3", resources=b"bytes") == "bad_arguments"
        assert await _code(owner, "JoinVessels", vessel="v3", other="v3") == "same_vessel"
        assert await _code(owner, "JoinVessels", vessel="v3", other="v99") == "no_such_vessel"

        joined = await owner.call("JoinVessels", vessel="v3", other="v4")
        assert joined == "v5"
        assert parse_resources(await owner.call("GetVesselResources", vessel="v5")) == DEFAULT_ALLOTMENT

        await owner.call("ChangeOwner", vessel="v2", owner=node.user.public_key.to_text())
        await owner.call("ChangeUsers", vessel="v5", users=[])
        async with await node.client(node.user) as user:
            await user.call("ChangeUsers", vessel="v2", users=[node.owner.public_key.to_text()])
        # the owner of v5 is only a user of v2: refused before the owners are compared
        assert await _code(owner, "JoinVessels", vessel="v5", other="v2") == "insufficient_permissions"


# --- generic errors ----------------------------------------------------------------------------------------


async def test_generic_errors(node: Node) -> None:
    async with await node.client(node.owner) as owner:
        response = await owner.request("FormatDisk")
        assert response.code == "no_such_call" and "GetVessels" in response.message
        assert await _code(owner, "ListFilesInVessel") == "bad_arguments"
        assert await _code(owner, "ListFilesInVessel", vessel="v1", extra=1) == "bad_arguments"
        assert await _code(owner, "ListFilesInVessel", vessel=1) == "bad_arguments"
        assert await _code(owner, "ListFilesInVessel", vessel="v1" * 100) == "bad_arguments"
        assert await _code(owner, "ListFilesInVessel", vessel="v42") == "no_such_vessel"
        # positional arguments work too, and their count is checked
        (ok, wrong) = await owner.exchange([owner.encode("ListFilesInVessel", ["v1"]),
                                            owner.encode("ListFilesInVessel", ["v1", "v2"])])
        assert (ok.code, ok.result) == ("ok", [])
        assert wrong.code == "bad_arguments" and "takes 1 argument" in wrong.message


async def test_signed_requests_are_checked_before_the_call(node: Node) -> None:
    async with await node.client(node.owner) as owner:
        other_node = generate_identity("elsewhere").public_key
        misaddressed = sign_request(node.owner, other_node, "ListFilesInVessel", {"vessel": "v1"},
                                    now=time.time(), nonce=os.urandom(NONCE_SIZE))
        expired = sign_request(node.owner, node.nm.node_key, "NoSuchCall", {}, now=time.time() - 1000,
                               nonce=os.urandom(NONCE_SIZE))
        tampered = misaddressed[:-1] + bytes([misaddressed[-1] ^ 1])
        responses = await owner.exchange([encode_frame(misaddressed), encode_frame(expired),
                                          encode_frame(tampered)])
        assert [r.code for r in responses] == ["wrong_destination", "expired", "bad_signature"]


async def test_two_clients_with_one_key_work_at_once(node: Node) -> None:
    """Unlike the original's per-key sequence numbers, random nonces let one identity run clients in parallel."""
    first, second = await node.client(node.owner), await node.client(node.owner)
    results: list[list[str]] = []

    async def list_files(client: NodeClient) -> None:
        results.append([name for _ in range(50) for name in await client.call("ListFilesInVessel", vessel="v1")])

    async with first, second, trio.open_nursery() as nursery:
        nursery.start_soon(list_files, first)
        nursery.start_soon(list_files, second)
    assert len(results) == 2
