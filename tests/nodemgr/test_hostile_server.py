"""Issue 13's attacks on the node manager's TCP path, against a real NodeServer on loopback: each is refused
or cut off, counted in `NodeServer.stats`, and the owner's calls keep working. Every loop is bounded in count
and time; assertions are on what completes and on the counters, never on how fast."""

from __future__ import annotations

import errno
import os
import socket
import time
import tracemalloc
from pathlib import Path
from typing import Any, cast

import pytest
import trio

from seattle.channel.stream import SecureStream, secure_client, secure_server
from seattle.keys import Identity, generate_identity
from seattle.nodemgr.client import NodeClient, NodeClientError
from seattle.nodemgr.frames import HEADER, FrameDecoder, encode_frame
from seattle.nodemgr.node import NodeManager
from seattle.nodemgr.server import NodeServer, ServerLimits
from seattle.nodemgr.signing import NONCE_SIZE, ReplayCache, parse_response, public_request, sign_request
from tests.nodemgr.conftest import NodeFactory

WAIT = 20.0
#: What a frame bomb gets: refused from its header and prefix, or taken (a claim of the owner's key) and refused.
_BOMB_REFUSALS = ("frame_too_large", "bad_frame", "bad_signature", "malformed")



def _server(nm: NodeManager) -> NodeServer:
    assert nm.server is not None
    return nm.server


async def _connect(port: int, source: str = "127.0.0.1", receive_buffer: int | None = None) -> SecureStream:
    """A channel from `source` (its handshake done, as any client's must be before its frames are read)."""
    return await secure_client(await _tcp(port, source, receive_buffer), expected=None)


async def _tcp(port: int, source: str = "127.0.0.1", receive_buffer: int | None = None) -> trio.SocketStream:
    """A bare TCP connection from `source`: to the node, a handshake that has not started."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    await sock.bind((source, 0))
    await sock.connect(("127.0.0.1", port))
    return trio.SocketStream(sock)


async def _read_until_closed(stream: trio.abc.Stream) -> list[object]:
    decoder = FrameDecoder()
    messages: list[object] = []
    with trio.fail_after(WAIT):
        try:
            while data := await stream.receive_some(65536):
                messages += decoder.feed(data)
        except trio.BrokenResourceError:
            pass
    return messages


async def _owner_works(nm: NodeManager, owner: Identity, calls: int = 5) -> None:
    async with await NodeClient.connect("127.0.0.1", nm.port, owner, timeout=WAIT) as client:
        for index in range(calls):
            await client.call("AddFileToVessel", vessel="v1", filename=f"owner{index}", data=b"x")
        assert len(await client.call("ListFilesInVessel", vessel="v1")) >= calls


def _signed(identity: Identity, nm: NodeManager, call: str, args: dict[str, Any]) -> bytes:
    return encode_frame(sign_request(identity, nm.node_key, call, args, now=time.time(),
                                     nonce=os.urandom(NONCE_SIZE)))


@pytest.mark.slow
async def test_a_stranger_announcing_a_large_frame_is_refused_after_its_prefix(
        start_node: NodeFactory, owner: Identity) -> None:
    stranger = generate_identity("stranger")
    async with start_node() as nm:
        # a signed request over the small limit from a key with no vessel, and a public map over it
        big = _signed(stranger, nm, "AddFileToVessel", {"vessel": "v1", "filename": "f", "data": b"x" * 100_000})
        bomb = HEADER.pack(4 * 1024 * 1024) + b"\xdd\x00\x40\x00\x00" + b"\x80" * 200
        for frame in (big[:300], bomb):
            stream = await _connect(nm.port)
            await stream.send_all(frame)  # the rest is never needed: the header and prefix decide
            (reply,) = [parse_response(m) for m in await _read_until_closed(stream)]
            assert reply.code == "frame_too_large" and "owners and users" in reply.message
            await stream.aclose()
        assert _server(nm).stats["large_frames_refused"] == 2
        # the owner's own large upload is taken
        async with await NodeClient.connect("127.0.0.1", nm.port, owner) as client:
            await client.call("AddFileToVessel", vessel="v1", filename="big", data=b"y" * 1_000_000)
            assert await client.call("RetrieveFileFromVessel", vessel="v1", filename="big") == b"y" * 1_000_000


@pytest.mark.slow
async def test_frame_bombs_cost_the_node_little_memory(start_node: NodeFactory, owner: Identity) -> None:
    """4 MiB frames of small objects (which once cost ~300 MiB each to decode) from strangers, and from a
    sender that claims the owner's key (so its frame is taken, then fails its signature check)."""
    async with start_node() as nm:
        inner = b"\xdc\x01\xff" + b"\x80" * 511
        small_objects = b"\xdc\x02\x00" + (b"\xdc\x00\x10" + inner * 16) * 512
        claimed = bytearray(_signed(owner, nm, "GetVessels", {})[HEADER.size:])
        body = b"\xc6" + (4 * 1024 * 1024).to_bytes(4, "big") + bytes(claimed[2:]).ljust(4 * 1024 * 1024, b"\x80")
        tracemalloc.start()
        try:
            for frame in [HEADER.pack(len(small_objects)) + small_objects] * 4 + [HEADER.pack(len(body)) + body] * 4:
                stream = await _connect(nm.port)
                with trio.move_on_after(WAIT):
                    try:
                        await stream.send_all(frame)
                        await stream.send_eof()
                    except trio.BrokenResourceError:
                        pass  # refused from its prefix: the node closed before the rest arrived
                # The node's answer, when the channel can still be read after the node hung up mid-send (a
                # refused send marks the whole channel broken): the node's counters below say it either way.
                replies = [parse_response(m) for m in await _read_until_closed(stream)]
                assert all(reply.code in _BOMB_REFUSALS for reply in replies)
                await stream.aclose()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        stats = _server(nm).stats
        assert sum(stats[f"frames_{code}"] + stats[f"rejected_{code}"] for code in _BOMB_REFUSALS) == 8, stats
        assert peak < 40 * 1024 * 1024, peak
        await _owner_works(nm, owner)


@pytest.mark.slow
async def test_strangers_leave_nothing_in_the_replay_cache(start_node: NodeFactory, owner: Identity) -> None:
    async with start_node() as nm:
        server = _server(nm)
        server.verifier.replays = ReplayCache(20)
        strangers = [generate_identity(f"s{i}") for i in range(10)]
        stream = await _connect(nm.port)
        frames = [_signed(s, nm, call, args) for s in strangers for call, args in (
            ("ListFilesInVessel", {"vessel": "v1"}), ("StartVessel", {"vessel": "v1", "program": "p", "args": []}),
            ("GetVessels", {}), ("NoSuchCall", {}), ("ReadVesselLog", {"vessel": "nope"}))]
        await stream.send_all(b"".join(frames))
        await stream.send_eof()
        codes = [parse_response(m).code for m in await _read_until_closed(stream)]
        assert codes.count("insufficient_permissions") == 20 and codes.count("ok") == 10
        assert codes.count("no_such_call") == 10 and codes.count("no_such_vessel") == 10
        assert len(server.verifier.replays) == 0
        await _owner_works(nm, owner, calls=15)  # 15 + GetNodeInfo... within the 20 the cache holds


@pytest.mark.slow
async def test_a_client_that_never_reads_is_dropped_at_the_write_deadline(
        start_node: NodeFactory, owner: Identity) -> None:
    limits = ServerLimits(write_timeout=0.5, min_transfer_rate=1024 * 1024, send_buffer=4096,
                          stranger_rate=1e6, stranger_burst=10_000, network_rate=1e6, network_burst=10_000)
    async with start_node(limits) as nm:
        stream = await _connect(nm.port, receive_buffer=4096)
        request = encode_frame(public_request("GetVessels", []))
        with trio.move_on_after(WAIT):
            try:
                for _ in range(2000):  # bounded: far more answers than the buffers hold
                    await stream.send_all(request * 16)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        with trio.fail_after(WAIT):
            while not _server(nm).stats["write_timeouts"]:
                await trio.sleep(0.05)
        await _owner_works(nm, owner)
        await stream.aclose()


@pytest.mark.slow
async def test_a_request_trickled_byte_by_byte_is_dropped_at_the_frame_deadline(
        start_node: NodeFactory, owner: Identity) -> None:
    async with start_node(ServerLimits(frame_timeout=0.5, idle_timeout=30)) as nm:
        stream = await _connect(nm.port)
        frame = encode_frame(public_request("GetVessels", [])) + b"\x00" * 100
        with trio.move_on_after(WAIT):
            try:
                for byte in frame:  # always sending, never finishing: the idle timeout alone never fires
                    await stream.send_all(bytes([byte]))
                    await trio.sleep(0.05)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        assert _server(nm).stats["frame_timeouts"] == 1
        await _owner_works(nm, owner)


@pytest.mark.slow
async def test_connection_floods_from_many_addresses_do_not_lock_out_the_owner(
        start_node: NodeFactory, owner: Identity) -> None:
    limits = ServerLimits(max_connections=20, max_connections_per_address=2, max_connections_per_network=6)
    async with start_node(limits) as nm:
        server = _server(nm)
        flood: list[trio.SocketStream] = []
        for network in range(1, 8):  # 28 connections from 28 addresses in 7 networks, for 20 places
            for host in range(1, 5):
                flood.append(await _connect(nm.port, f"127.0.{network}.{host}"))
        with trio.fail_after(WAIT):
            while server.stats["connections_evicted"] < 8:
                await trio.sleep(0.02)
        assert server.connections == 20 and not server.stats["connections_refused"]
        # the node is full of strangers: the owner evicts the oldest and is served
        await _owner_works(nm, owner)
        assert server.stats["connections_evicted"] >= 1
        for stream in flood:
            await stream.aclose()


@pytest.mark.slow
async def test_one_network_cannot_take_every_connection(start_node: NodeFactory) -> None:
    limits = ServerLimits(max_connections=50, max_connections_per_address=2, max_connections_per_network=4)
    async with start_node(limits) as nm:
        # Half-open handshakes count as connections: the first four take the network's budget.
        streams = [await _tcp(nm.port, f"127.0.9.{host}") for host in range(1, 11)]
        with trio.fail_after(WAIT):
            while _server(nm).stats["connections_refused"] < 6:
                await trio.sleep(0.02)
        assert _server(nm).connections == 4
        for stream in streams:
            await stream.aclose()


@pytest.mark.slow
async def test_strangers_flooding_public_calls_do_not_starve_the_owner(
        start_node: NodeFactory, owner: Identity) -> None:
    async with start_node() as nm:
        request = encode_frame(public_request("GetVessels", []))

        async def flood(source: str) -> None:
            stream = await _connect(nm.port, source)
            with trio.move_on_after(3.0):
                try:
                    while True:
                        await stream.send_all(request * 32)
                        await stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            await stream.aclose()

        async with trio.open_nursery() as nursery:
            for host in range(1, 9):
                nursery.start_soon(flood, f"127.0.{host}.1")
            await trio.sleep(0.3)
            started = trio.current_time()
            await _owner_works(nm, owner, calls=20)
            assert trio.current_time() - started < WAIT
        assert _server(nm).stats["requests_paced"] > 0


async def test_accept_errors_back_off_and_keep_listening() -> None:
    """EMFILE, ENFILE, ENOBUFS and ENOMEM from accept are waited out; the listener is never closed for them."""

    class Failing(trio.abc.Listener[trio.SocketStream]):
        def __init__(self) -> None:
            self.calls = 0
            self.closed = False

        async def accept(self) -> trio.SocketStream:
            self.calls += 1
            codes = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
            raise OSError(codes[self.calls % 4], os.strerror(codes[self.calls % 4]))

        async def aclose(self) -> None:
            self.closed = True

    server = NodeServer(cast(Any, None), cast(Any, None), identity=cast(Any, None))
    listener = Failing()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server._accept_loop, listener, nursery)
        await trio.sleep(0.2)
        assert listener.calls >= 4 and not listener.closed
        nursery.cancel_scope.cancel()
    assert sum(server.stats[f"accept_{name}"] for name in ("emfile", "enfile", "enobufs", "enomem")) >= 4


async def test_a_large_retrieve_is_refused_without_reading_the_file(tmp_path: Path) -> None:
    from seattle.nodemgr import vesselfiles
    from seattle.nodemgr.nodeerror import NodeError

    (tmp_path / "big").write_bytes(b"")
    os.truncate(tmp_path / "big", 1 << 30)  # 1 GiB, sparse: reading it whole would be the attack
    tracemalloc.start()
    try:
        with pytest.raises(NodeError) as caught:
            vesselfiles.retrieve_file(tmp_path, "big")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.code == "file_too_large" and str(4 * 1024 * 1024) in caught.value.message
    assert peak < 1024 * 1024
    (tmp_path / "small").write_bytes(b"z" * 100)
    with pytest.raises(NodeError, match="holds 100 bytes"):
        vesselfiles.retrieve_file(tmp_path, "small", limit=99)
    assert vesselfiles.retrieve_file(tmp_path, "small", limit=100) == b"z" * 100


@pytest.mark.slow
async def test_the_client_refuses_a_hostile_nodes_answers_cheaply() -> None:
    """A node answering GetNodeInfo with a 4 MiB frame of small objects, announcing a frame over the limit, or
    sending answers nobody asked for: the researcher's call fails with NodeClientError (that node only),
    without building the objects. (The node completes the channel's handshake first, as a hostile node that
    owns its key can.)"""
    node = generate_identity("hostile-node")
    inner = b"\xdc\xff\xff" + b"\x80" * 0xFFFF
    bomb = b"\xdc\x00\x40" + inner * 0x40
    unasked = encode_frame({"status": "success", "code": "ok", "message": "", "result": {}}) * 2
    answers = [HEADER.pack(len(bomb)) + bomb, HEADER.pack(64 * 1024 * 1024), unasked]
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def hostile_node(tcp: trio.SocketStream) -> None:
        stream = await secure_server(tcp, identity=node)
        await stream.receive_some(65536)
        answer = answers.pop(0)
        with trio.move_on_after(WAIT):
            try:
                # In pieces, so the fake node's own encryption does not count against the client's memory.
                for offset in range(0, len(answer), 65536):
                    await stream.send_all(answer[offset:offset + 65536])
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, hostile_node, listeners)
        for complaint in ("more than 65536 objects", "the limit is", "1 responses nobody asked for"):
            tracemalloc.start()
            try:
                async with await NodeClient.connect("127.0.0.1", port, timeout=WAIT) as client:
                    with pytest.raises(NodeClientError, match=complaint):
                        await client.call("GetNodeInfo")
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert peak < 3 * len(bomb), peak
        nursery.cancel_scope.cancel()


@pytest.mark.slow
async def test_a_sender_claiming_the_owners_key_holds_a_large_slot_only_until_its_deadline(
        start_node: NodeFactory, owner: Identity) -> None:
    """The only large-frame slot is taken by a sender that claims the owner's key and then stalls: it is dropped
    at the frame deadline, the slot comes back, and the owner's upload (waiting for it) goes through."""
    async with start_node(ServerLimits(max_large_frames=1, frame_timeout=1.5)) as nm:
        frame = _signed(owner, nm, "AddFileToVessel", {"vessel": "v1", "filename": "f", "data": b"x" * 100_000})
        staller = await _connect(nm.port)
        await staller.send_all(frame[:1000])  # header and prefix: the node takes the frame, then nothing more
        with trio.fail_after(WAIT):
            while _server(nm)._large_frames.value != 0:
                await trio.sleep(0.01)
        async with await NodeClient.connect("127.0.0.1", nm.port, owner, timeout=WAIT) as client:
            await client.call("AddFileToVessel", vessel="v1", filename="mine", data=b"y" * 100_000)
        server = _server(nm)
        assert server.stats["frame_timeouts"] == 1 and not server.stats["large_frames_busy"]
        assert server._large_frames.value == 1  # every slot given back
        await staller.aclose()


@pytest.mark.slow
async def test_strangers_draining_the_owners_address_do_not_pace_the_owners_signed_calls(
        start_node: NodeFactory, owner: Identity) -> None:
    async with start_node() as nm:
        server = _server(nm)
        stranger = generate_identity("stranger")
        # Drain 127.0.0.1's stranger bucket (burst 40) with requests signed by a key without rights.
        stream = await _connect(nm.port)
        await stream.send_all(b"".join(_signed(stranger, nm, "GetVessels", {}) for _ in range(60)))
        await stream.send_eof()
        await _read_until_closed(stream)
        paced_before = server.stats["requests_paced"]
        assert paced_before > 0
        # The owner's signed call on a fresh connection from the same address is not queued behind them.
        for _ in range(5):
            owner_stream = await _connect(nm.port)
            await owner_stream.send_all(_signed(owner, nm, "ListFilesInVessel", {"vessel": "v1"}))
            await owner_stream.send_eof()
            [answer] = await _read_until_closed(owner_stream)
            assert parse_response(answer).code == "ok"
        assert server.stats["requests_paced"] == paced_before


@pytest.mark.slow
async def test_a_forged_claim_of_the_owners_key_is_answered_and_its_connection_closed(
        start_node: NodeFactory, owner: Identity) -> None:
    async with start_node() as nm:
        forged = bytearray(sign_request(owner, nm.node_key, "ListFilesInVessel", {"vessel": "v1"},
                                        now=time.time(), nonce=os.urandom(NONCE_SIZE)))
        forged[10] ^= 0xFF  # inside the signature: the frame still claims the owner's key
        stream = await _connect(nm.port)
        # Two forged requests pipelined: the first is answered, then the connection is closed unread.
        await stream.send_all(encode_frame(bytes(forged)) * 2)
        answers = await _read_until_closed(stream)
        assert [parse_response(m).code for m in answers] == ["bad_signature"]
        assert _server(nm).stats["forged_claims_closed"] == 1
        await _owner_works(nm, owner)
