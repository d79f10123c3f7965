"""Fan-out over real node managers on loopback (in-process), and the outcome of every kind of failure;
plus the encrypted state file."""

from __future__ import annotations

import functools
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from seattle.channel.stream import secure_server
from seattle.errors import BadStateFile, StateFilePassphrase
from seattle.experiment import operations
from seattle.experiment.fanout import FAILED, OK, REFUSED, TIMED_OUT, UNREACHABLE, fan_out, summarize
from seattle.experiment.session import Session
from seattle.experiment.statefile import load_state, save_state
from seattle.experiment.targets import VesselRef
from seattle.keys import Identity, check_private_key, generate_identity, save_identity
from seattle.nodemgr.frames import FrameDecoder, encode_frame
from seattle.nodemgr.node import NodeManager, init_node
from seattle.resources import DEFAULT_ALLOTMENT, Resources
from tests.net_helpers import closed_port

pytestmark = pytest.mark.slow

WAIT = 30.0


@pytest.fixture
def owner() -> Identity:
    return generate_identity("owner")


@pytest.fixture
async def node(tmp_path: Path, owner: Identity) -> AsyncIterator[NodeManager]:
    layout = [(DEFAULT_ALLOTMENT.replace(messport=frozenset({63100 + i}), connport=frozenset({63100 + i}),
                                         cpu=0.1, memory=32 << 20, diskused=4 << 20), owner.public_key, ())
              for i in range(3)]
    init_node(tmp_path / "node", owner.public_key, layout)
    async with NodeManager(tmp_path / "node", "127.0.0.1", 0) as nm:
        yield nm


async def test_every_outcome_kind_is_reported_per_vessel(node: NodeManager, owner: Identity) -> None:
    silent = socket.socket()  # accepts (the kernel completes the handshake) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    dead = closed_port()
    items = [(1, VesselRef("127.0.0.1", node.port, "v1")), (2, VesselRef("127.0.0.1", node.port, "v9")),
             (3, VesselRef("127.0.0.1", dead, "v1")), (4, VesselRef("127.0.0.1", silent.getsockname()[1], "v1")),
             (5, VesselRef("127.0.0.1", node.port, "v2"))]
    progress: list[tuple[int, int]] = []
    try:
        with trio.fail_after(WAIT):
            outcomes = await fan_out(items, operations.call("ListFilesInVessel"), identity=owner, timeout=1.0,
                                     progress=lambda done, total: progress.append((done, total)))
    finally:
        silent.close()
    assert [o.number for o in outcomes] == [1, 2, 3, 4, 5]
    assert [o.kind for o in outcomes] == [OK, REFUSED, UNREACHABLE, TIMED_OUT, OK]
    assert outcomes[1].code == "no_such_vessel"
    assert "refused" in outcomes[2].message.lower()
    assert progress[-1] == (5, 5) and len(progress) == 5
    reasons = [reason for reason, _ in summarize(outcomes)]
    assert reasons[0] == OK and len(reasons) == 4


async def test_an_unsigned_call_is_refused_not_crashed(node: NodeManager) -> None:
    outcomes = await fan_out([(1, VesselRef("127.0.0.1", node.port, "v1"))], operations.call("StopVessel"),
                             identity=None, timeout=5.0)
    assert outcomes[0].kind == REFUSED and outcomes[0].code == "insufficient_permissions"


async def test_a_local_failure_fails_one_vessel_and_the_rest_go_on(node: NodeManager, owner: Identity) -> None:
    from seattle.errors import LocalFileError

    async def picky(node_: operations.Node, ref: VesselRef) -> str:
        if ref.vessel == "v2":
            raise LocalFileError("out.v2", "disk full")
        return ref.vessel

    items = [(n, VesselRef("127.0.0.1", node.port, f"v{n}")) for n in (1, 2, 3)]
    outcomes = await fan_out(items, picky, identity=owner, timeout=5.0, concurrency=1)
    assert [o.kind for o in outcomes] == [OK, FAILED, OK]


async def test_split_and_join_replace_the_vessels_in_the_session(node: NodeManager, owner: Identity) -> None:
    session = Session()
    numbers = await operations.contact(session, "127.0.0.1", node.port, owner.public_key)
    assert numbers == [1, 2, 3]
    piece = Resources({"cpu": 0.01, "memory": 1 << 20, "diskused": 1 << 20})
    outcomes = await operations.split(session, [1], piece.to_text(), owner)
    assert outcomes[0].ok and outcomes[0].result == ["v4", "v5"]
    assert session.targets.groups["split1"] == [4] and session.targets.groups["split2"] == [5]
    assert 1 not in session.targets.vessels
    joined = await operations.join(session, [4, 5], owner)
    assert [o.kind for o in joined] == [OK, OK]
    assert session.targets.groups["joingood"] == [6]
    assert str(session.targets.vessels[6].ref).endswith(":v6")


def test_the_state_file_round_trips_and_refuses_a_wrong_passphrase(tmp_path: Path) -> None:
    session = Session()
    session.targets.add_vessel(VesselRef("127.0.0.1", 1224, "v1"))
    session.set_identity("alice")
    alice = generate_identity("alice")
    save_identity(alice)
    path = tmp_path / "state"
    save_state(path, "pass phrase", session, ["alice"])
    assert path.stat().st_mode & 0o077 == 0
    loaded = load_state(path, "pass phrase")
    assert loaded.session.to_json() == session.to_json()
    assert check_private_key("alice", loaded.keys["alice"]) == alice.public_key
    with pytest.raises(StateFilePassphrase, match="wrong passphrase"):
        load_state(path, "pass phrasE")
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(StateFilePassphrase):
        load_state(path, "pass phrase")
    path.write_bytes(b"not a state file")
    with pytest.raises(BadStateFile, match="not a state file"):
        load_state(path, "pass phrase")


async def test_a_node_with_malformed_answers_fails_its_vessels_not_the_command(owner: Identity) -> None:
    """A fake node (its handshake is valid) whose GetVessels answer has the wrong shape and a hostile name."""
    fake = generate_identity("fake")
    answers = [{"node_key": "x", "vessels": [{"name": "../../etc", "status": "Fresh", "owner": "o", "users": [],
                                              "ownerinfo": "", "advertise": True}]}]

    async def fake_node(tcp: trio.SocketStream) -> None:
        stream = await secure_server(tcp, identity=fake)
        decoder = FrameDecoder()
        for answer in answers:
            while not decoder.feed(await stream.receive_some(65536)):
                pass
            await stream.send_all(encode_frame({"status": "success", "code": "ok", "message": "", "result": answer}))
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, fake_node, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(WAIT):
            outcomes = await fan_out([(1, VesselRef("127.0.0.1", port, "v1"))], operations.describe,
                                     identity=None, timeout=5.0)
        nursery.cancel_scope.cancel()
    assert outcomes[0].kind == FAILED and "unusable answer" in outcomes[0].message, outcomes


async def test_a_node_with_another_key_than_before_is_not_talked_to(node: NodeManager, owner: Identity) -> None:
    session = Session()
    await operations.contact(session, "127.0.0.1", node.port, owner.public_key)
    assert session.targets.vessels[1].node_key == node.node_key.to_text()
    assert all(o.ok for o in await operations.execute(session, "files", [1], operations.call("ListFilesInVessel"),
                                                       owner))
    impostor = generate_identity("impostor").public_key.to_text()
    for known in session.targets.vessels.values():
        known.node_key = impostor
    outcomes = await operations.execute(session, "files", [1, 2], operations.call("ListFilesInVessel"), owner)
    assert [o.kind for o in outcomes] == [FAILED, FAILED]
    assert "PROVED A DIFFERENT KEY" in outcomes[0].message
    assert session.targets.groups["filesfail"] == [1, 2]
