"""The node manager's server on real loopback sockets: pipelining, framing limits, connection limits,
idle timeout, replay refusal, and a flooding client that must not starve another one.

Every wait is bounded (trio.fail_after); assertions are on what completes, never on how fast.
"""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest
import trio

from seattle.channel.stream import SecureStream
from seattle.keys import Identity
from seattle.nodemgr.client import NodeClient, NodeClientError
from seattle.nodemgr.frames import HEADER, FrameDecoder, encode_frame
from seattle.nodemgr.server import ServerLimits
from seattle.nodemgr.signing import NONCE_SIZE, parse_response, public_request, sign_request
from tests.nodemgr.conftest import NodeFactory, secure_connection

WAIT = 20.0



async def _raw_connection(port: int) -> SecureStream:
    """A channel to the node on which the test writes frames itself."""
    return await secure_connection(port)


async def _read_until_closed(stream: trio.abc.Stream) -> list[object]:
    """Every frame the node sends until it closes the connection."""
    decoder = FrameDecoder()
    messages: list[object] = []
    with trio.fail_after(WAIT):
        while data := await stream.receive_some(65536):
            messages += decoder.feed(data)
    return messages


@pytest.mark.slow
async def test_pipelined_responses_come_back_in_request_order(
        start_node: NodeFactory, owner: Identity) -> None:
    async with start_node() as nm, await NodeClient.connect("127.0.0.1", nm.port, owner) as client:
        calls = []
        for index in range(60):
            if index % 3 == 0:
                calls.append(("GetVesselResources", {"vessel": f"v{index + 2}"}))
            elif index % 3 == 1:
                upload = {"vessel": "v1", "filename": f"f{index}", "data": b"x" * index}
                calls.append(("AddFileToVessel", upload))
            else:
                calls.append(("ListFilesInVessel", {"vessel": "v1"}))
        with trio.fail_after(WAIT):
            responses = await client.call_many(calls)
        assert len(responses) == len(calls)
        for index, response in enumerate(responses):
            if index % 3 == 0:
                assert response.code == "no_such_vessel" and f"v{index + 2}" in response.message
            elif index % 3 == 1:
                assert response.code == "ok"
            else:  # sees exactly the uploads requested before it
                assert response.result == sorted(f"f{i}" for i in range(1, index, 3))


@pytest.mark.slow
async def test_half_closed_connection_gets_its_response(start_node: NodeFactory) -> None:
    async with start_node() as nm:
        stream = await _raw_connection(nm.port)
        await stream.send_all(encode_frame(public_request("GetVessels", [])))
        await stream.send_eof()
        (reply,) = await _read_until_closed(stream)
        response = parse_response(reply)
        assert response.code == "ok" and response.result["vessels"][0]["name"] == "v1"


@pytest.mark.slow
async def test_frame_over_the_limit_is_refused_from_its_header(start_node: NodeFactory) -> None:
    async with start_node(ServerLimits(max_frame=1024)) as nm:
        stream = await _raw_connection(nm.port)
        await stream.send_all(HEADER.pack(1025))  # no body: the header alone must be enough
        (reply,) = await _read_until_closed(stream)
        response = parse_response(reply)
        assert (response.status, response.code) == ("error", "frame_too_large")
        assert "1025" in response.message and "1024" in response.message
        # the client library refuses to send such a frame at all
        async with await NodeClient.connect("127.0.0.1", nm.port, max_frame=1024) as client:
            with pytest.raises(NodeClientError, match="too large"):
                await client.call("GetVesselResources", vessel="v" * 2000)


@pytest.mark.slow
async def test_bad_frame_is_answered_then_the_connection_closed(start_node: NodeFactory) -> None:
    async with start_node() as nm:
        stream = await _raw_connection(nm.port)
        good = encode_frame(public_request("GetOffcutResources", []))
        await stream.send_all(good)
        decoder = FrameDecoder()
        with trio.fail_after(WAIT):
            while not (replies := decoder.feed(await stream.receive_some(65536))):
                pass
        assert parse_response(replies[0]).code == "ok"
        garbage = HEADER.pack(3) + b"\xc1\xc1\xc1"  # 0xc1 is never valid msgpack
        await stream.send_all(garbage + good)
        (reply,) = await _read_until_closed(stream)
        assert parse_response(reply).code == "bad_frame"


@pytest.mark.slow
async def test_malformed_public_request_keeps_the_connection(start_node: NodeFactory) -> None:
    async with start_node() as nm:
        stream = await _raw_connection(nm.port)
        frames = [encode_frame({"call": "GetVessels"}), encode_frame(["not", "a", "request"]),
                  encode_frame(public_request("GetOffcutResources", []))]
        await stream.send_all(b"".join(frames))
        await stream.send_eof()
        replies = [parse_response(reply) for reply in await _read_until_closed(stream)]
        assert [r.code for r in replies] == ["malformed", "malformed", "ok"]


@pytest.mark.slow
async def test_idle_connection_is_closed(start_node: NodeFactory) -> None:
    async with start_node(ServerLimits(idle_timeout=0.2)) as nm:
        stream = await _raw_connection(nm.port)
        assert await _read_until_closed(stream) == []
        # a client that keeps talking is not idle; one that falls silent is dropped, and is told so
        async with await NodeClient.connect("127.0.0.1", nm.port) as client:
            for _ in range(3):
                await client.call("GetVessels")
                await trio.sleep(0.05)
            with trio.fail_after(WAIT):
                while nm.server is not None and nm.server.connections:
                    await trio.sleep(0.05)
            with pytest.raises(NodeClientError, match="connection to the node failed"):
                await client.call("GetVessels")
            with pytest.raises(NodeClientError, match="unusable"):
                await client.call("GetVessels")


@pytest.mark.slow
async def test_connection_limit_per_address(start_node: NodeFactory) -> None:
    async with start_node(ServerLimits(max_connections_per_address=2)) as nm:
        first = await NodeClient.connect("127.0.0.1", nm.port)
        second = await NodeClient.connect("127.0.0.1", nm.port)
        # Refused before any handshake (refusing costs the node no cryptography), in words the client shows.
        with pytest.raises(NodeClientError, match=r"too_many_connections.*127\.0\.0\.1"):
            await NodeClient.connect("127.0.0.1", nm.port)
        assert (await first.call("GetVessels"))["vessels"]  # the admitted ones still work
        await first.aclose()
        with trio.fail_after(WAIT):  # the slot frees once the node has seen the close
            while True:
                try:
                    third = await NodeClient.connect("127.0.0.1", nm.port)
                    break
                except NodeClientError:
                    await trio.sleep(0.02)
        await third.aclose()
        await second.aclose()


@pytest.mark.slow
async def test_total_connection_limit(start_node: NodeFactory, owner: Identity) -> None:
    """When full, a newcomer evicts the oldest connection that never made an authorized call; only when every
    connection has made one is it refused. (Changed by issue 13: strangers once refused everyone.)"""
    async with start_node(ServerLimits(max_connections=1)) as nm:
        stranger = await NodeClient.connect("127.0.0.1", nm.port)
        admitted = await NodeClient.connect("127.0.0.1", nm.port, owner)
        async with stranger, admitted:
            assert await admitted.call("ListFilesInVessel", vessel="v1") == []
            with pytest.raises(NodeClientError):
                await stranger.call("GetVessels")
            with pytest.raises(NodeClientError, match=r"too_many_connections.*maximum of 1"):
                await NodeClient.connect("127.0.0.1", nm.port)
            assert nm.server is not None and nm.server.stats["connections_evicted"] == 1


@pytest.mark.slow
async def test_replayed_request_is_refused_and_public_calls_may_be_signed(
        start_node: NodeFactory, owner: Identity) -> None:
    async with start_node() as nm, await NodeClient.connect("127.0.0.1", nm.port, owner) as client:
        frame = encode_frame(sign_request(owner, nm.node_key, "ListFilesInVessel", {"vessel": "v1"},
                                          now=time.time(), nonce=os.urandom(NONCE_SIZE)))
        first, second = await client.exchange([frame, frame])
        assert (first.code, second.code) == ("ok", "replayed")
        assert (await client.call("GetVessels"))["vessels"][0]["name"] == "v1"


@pytest.mark.slow
async def test_a_flooding_client_does_not_starve_another(start_node: NodeFactory, owner: Identity) -> None:
    """One connection sends requests as fast as it can and never reads; another must still be served."""
    limits = ServerLimits(pipeline_depth=4)
    request = encode_frame(public_request("GetVessels", []))
    async with start_node(limits) as nm:
        flooder = await _raw_connection(nm.port)
        sent = 0

        async def flood() -> None:
            nonlocal sent
            with trio.move_on_after(WAIT):
                while True:
                    await flooder.send_all(request * 64)
                    sent += 64

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            with trio.fail_after(WAIT):
                while sent < 64:  # the flood is under way before the other client starts
                    await trio.sleep(0.01)
                async with await NodeClient.connect("127.0.0.1", nm.port, owner) as polite:
                    for index in range(20):
                        await polite.call("AddFileToVessel", vessel="v1", filename=f"p{index}", data=b"x")
                    assert len(await polite.call("ListFilesInVessel", vessel="v1")) == 20
            nursery.cancel_scope.cancel()
        await flooder.aclose()


@pytest.mark.slow
async def test_a_client_that_vanishes_mid_pipeline_does_not_disturb_the_node(start_node: NodeFactory) -> None:
    async with start_node() as nm:
        for _ in range(3):
            stream = await _raw_connection(nm.port)
            await stream.send_all(encode_frame(public_request("GetVessels", [])) * 200)
            # close with a reset (linger 0) while the node is still answering
            assert isinstance(stream.transport_stream, trio.SocketStream)
            stream.transport_stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await stream.aclose()
        async with await NodeClient.connect("127.0.0.1", nm.port) as client:
            assert (await client.call("GetVessels"))["vessels"][0]["name"] == "v1"
        with trio.fail_after(WAIT):
            while nm.server is not None and nm.server.connections:
                await trio.sleep(0.02)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_connections_per_address"):
        ServerLimits(max_connections_per_address=0)
    with pytest.raises(ValueError, match="idle_timeout"):
        ServerLimits(idle_timeout=-1)
    with pytest.raises(ValueError, match="max_frame"):
        ServerLimits(max_frame=2.5)  # type: ignore[arg-type]


def test_defaults_hold_a_budget_in_bytes() -> None:
    limits = ServerLimits()
    assert limits.small_frame * limits.pipeline_depth <= 256 * 1024
    assert limits.max_large_frames * limits.max_frame < 40 * 1024 * 1024
    assert limits.transfer_time(limits.frame_timeout, limits.max_frame) < 200
