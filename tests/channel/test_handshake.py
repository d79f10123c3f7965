"""The handshake over in-memory streams: identities, key pinning, versions, limits and the deadline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import outcome
import pytest
import trio
import trio.testing

from seattle.channel import HandshakeFailed, KeyMismatch, VersionMismatch, secure_client, secure_server
from seattle.channel.binding import local_static
from seattle.channel.errors import PLAINTEXT_CLIENT, PLAINTEXT_NODE
from seattle.channel.noise import HandshakeState
from seattle.channel.stream import PROTOCOL_VERSION, preamble
from seattle.keys import generate_identity
from seattle.nodemgr.frames import FrameDecoder, encode_frame
from tests.channel.helpers import CLIENT, NODE, read_exactly

OTHER = generate_identity("other")


async def both(client: Callable[[], Awaitable[Any]], server: Callable[[], Awaitable[Any]]
               ) -> tuple[outcome.Outcome[Any], outcome.Outcome[Any]]:
    results: dict[str, outcome.Outcome[Any]] = {}

    async def run(name: str, fn: Callable[[], Awaitable[Any]]) -> None:
        results[name] = await outcome.acapture(fn)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "client", client)
        nursery.start_soon(run, "server", server)
    return results["client"], results["server"]


def _error(result: outcome.Outcome[Any]) -> BaseException:
    assert isinstance(result, outcome.Error), f"expected a failure, got {result!r}"
    return result.error


async def test_key_mismatch_names_both_fingerprints_and_the_node_learns_nothing() -> None:
    client_end, node_end = trio.testing.memory_stream_pair()
    client, server = await both(
        lambda: secure_client(client_end, expected=OTHER.public_key, identity=CLIENT),
        lambda: secure_server(node_end, identity=NODE),
    )
    mismatch = _error(client)
    assert isinstance(mismatch, KeyMismatch)
    assert mismatch.code == "key_mismatch"
    assert (mismatch.expected, mismatch.actual) == (OTHER.public_key, NODE.public_key)
    assert OTHER.public_key.fingerprint() in str(mismatch) and NODE.public_key.fingerprint() in str(mismatch)
    # The client stopped before its third message: the node never saw who the client is.
    failed = _error(server)
    assert isinstance(failed, HandshakeFailed) and failed.code == "connection_closed"


async def test_no_expected_key_accepts_the_node_and_reports_it() -> None:
    client_end, node_end = trio.testing.memory_stream_pair()
    client, server = await both(lambda: secure_client(client_end, expected=None),
                                lambda: secure_server(node_end, identity=NODE))
    assert client.unwrap().remote_key == NODE.public_key
    assert server.unwrap().remote_key is None


async def _fake_node(stream: trio.abc.Stream, payload: bytes) -> None:
    """A node that runs the handshake with its own static key but sends `payload` as its identity proof."""
    received = await read_exactly(stream, 8 + 2 + 32)
    state = HandshakeState(initiator=False, static=local_static(NODE).key_pair, prologue=preamble() + preamble())
    state.read_message(received[10:])
    message = state.write_message(payload)
    await stream.send_all(preamble() + len(message).to_bytes(2, "big") + message)
    await stream.receive_some()


@pytest.mark.parametrize("forgery", ["swapped_static", "wrong_signature", "wrong_key", "truncated", "none"])
async def test_a_node_payload_that_does_not_prove_its_key_fails_the_handshake(forgery: str) -> None:
    genuine = local_static(NODE).payload
    payload = {
        # Another identity's genuine proof: it signs that identity's static key, not the one in this handshake.
        "swapped_static": local_static(OTHER).payload,
        "wrong_signature": genuine[:40] + bytes([genuine[40] ^ 1]) + genuine[41:],
        "wrong_key": OTHER.public_key.raw + genuine[32:],
        "truncated": genuine[:-1],
        "none": b"",
    }[forgery]
    client_end, node_end = trio.testing.memory_stream_pair()
    client, _ = await both(lambda: secure_client(client_end, expected=None),
                           lambda: _fake_node(node_end, payload))
    failed = _error(client)
    assert isinstance(failed, HandshakeFailed) and failed.code == "bad_identity"


async def test_a_client_payload_that_does_not_prove_its_key_fails_at_the_node() -> None:
    """The client's message 3 carries a proof for another static key: the node refuses it."""
    client_end, node_end = trio.testing.memory_stream_pair()

    async def fake_client() -> None:
        state = HandshakeState(initiator=True, static=local_static(CLIENT).key_pair, prologue=preamble() * 2)
        first = state.write_message()
        await client_end.send_all(preamble() + len(first).to_bytes(2, "big") + first)
        answer = await read_exactly(client_end, 8 + 2 + 192)
        state.read_message(answer[10:])
        third = state.write_message(local_static(OTHER).payload)
        await client_end.send_all(len(third).to_bytes(2, "big") + third)

    _, server = await both(fake_client, lambda: secure_server(node_end, identity=NODE))
    failed = _error(server)
    assert isinstance(failed, HandshakeFailed) and failed.code == "bad_identity"


async def test_an_old_plaintext_client_gets_a_readable_error_frame() -> None:
    client_end, node_end = trio.testing.memory_stream_pair()

    async def old_client() -> dict[str, Any]:
        await client_end.send_all(encode_frame({"call": "GetVessels", "args": []}))
        decoder = FrameDecoder()
        while not (messages := decoder.feed(await client_end.receive_some())):
            pass
        assert await client_end.receive_some() == b""  # the node ended its side after the frame
        await client_end.aclose()  # which lets the node, draining what the client had sent, close at once
        reply = messages[0]
        assert isinstance(reply, dict)
        return reply

    client, server = await both(old_client, lambda: secure_server(node_end, identity=NODE))
    reply = client.unwrap()
    assert reply["status"] == "error" and reply["code"] == "upgrade_required"
    assert "upgrade seattle" in reply["message"]
    refused = _error(server)
    assert isinstance(refused, VersionMismatch) and refused.theirs == PLAINTEXT_CLIENT


async def test_a_new_client_to_an_old_plaintext_node_raises_version_mismatch() -> None:
    """The old node read the preamble as a frame header announcing a gigabyte and refused it in its framing."""
    client_end, node_end = trio.testing.memory_stream_pair()

    async def old_node() -> None:
        header = await read_exactly(node_end, 4)
        assert int.from_bytes(header, "big") > 4 * 1024 * 1024 + 64 * 1024
        await node_end.send_all(encode_frame({"status": "error", "code": "frame_too_large",
                                              "message": "too large", "result": None}))
        await node_end.aclose()

    client, _ = await both(lambda: secure_client(client_end, expected=NODE.public_key), old_node)
    mismatch = _error(client)
    assert isinstance(mismatch, VersionMismatch)
    assert (mismatch.code, mismatch.ours, mismatch.theirs) == ("version_mismatch", PROTOCOL_VERSION, PLAINTEXT_NODE)
    assert "plaintext" in str(mismatch)


async def test_a_client_of_another_version_gets_the_nodes_preamble() -> None:
    client_end, node_end = trio.testing.memory_stream_pair()

    async def future_client() -> bytes:
        await client_end.send_all(preamble(PROTOCOL_VERSION + 1))
        return await read_exactly(client_end, 8)

    client, server = await both(future_client, lambda: secure_server(node_end, identity=NODE))
    assert client.unwrap() == preamble(PROTOCOL_VERSION)
    refused = _error(server)
    assert isinstance(refused, VersionMismatch) and refused.theirs == PROTOCOL_VERSION + 1


async def test_a_node_of_a_newer_version_tells_the_client_to_upgrade() -> None:
    client_end, node_end = trio.testing.memory_stream_pair()

    async def future_node() -> None:
        await read_exactly(node_end, 8)
        await node_end.send_all(preamble(PROTOCOL_VERSION + 1))
        await node_end.aclose()

    client, _ = await both(lambda: secure_client(client_end, expected=None), future_node)
    mismatch = _error(client)
    assert isinstance(mismatch, VersionMismatch) and mismatch.theirs == PROTOCOL_VERSION + 1
    assert "upgrade seattle" in str(mismatch)


async def test_a_silent_peer_ends_the_handshake_at_the_deadline(autojump_clock: trio.testing.MockClock) -> None:
    client_end, node_end = trio.testing.memory_stream_pair()
    start = trio.current_time()
    with pytest.raises(HandshakeFailed) as caught:
        await secure_server(node_end, identity=NODE)
    assert caught.value.code == "handshake_timeout"
    assert trio.current_time() - start == pytest.approx(10.0)
    assert await client_end.receive_some() == b""  # the node closed the connection

    with pytest.raises(HandshakeFailed) as caught:
        await secure_client(trio.testing.memory_stream_pair()[0], expected=None, timeout=2.5)
    assert caught.value.code == "handshake_timeout"


async def test_an_oversize_handshake_message_is_refused_from_its_length(
        autojump_clock: trio.testing.MockClock) -> None:
    client_end, node_end = trio.testing.memory_stream_pair()
    await client_end.send_all(preamble() + (1025).to_bytes(2, "big"))
    with pytest.raises(HandshakeFailed) as caught:
        await secure_server(node_end, identity=NODE)
    assert caught.value.code == "message_too_large"  # at once, not at the deadline
    assert trio.current_time() == 0


async def test_a_first_message_with_a_payload_is_refused() -> None:
    client_end, node_end = trio.testing.memory_stream_pair()
    state = HandshakeState(initiator=True, static=local_static(CLIENT).key_pair, prologue=preamble() * 2)
    first = state.write_message(b"surprise")
    await client_end.send_all(preamble() + len(first).to_bytes(2, "big") + first)
    with pytest.raises(HandshakeFailed) as caught:
        await secure_server(node_end, identity=NODE)
    assert caught.value.code == "bad_message"


async def test_a_tampered_second_message_fails_the_handshake() -> None:
    client_end, client_facing = trio.testing.memory_stream_pair()
    server_facing, node_end = trio.testing.memory_stream_pair()

    async def flipping_proxy() -> None:
        await server_facing.send_all(await read_exactly(client_facing, 8 + 2 + 32))
        answer = bytearray(await read_exactly(server_facing, 8 + 2 + 192))
        answer[-1] ^= 0x80
        await client_facing.send_all(bytes(answer))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flipping_proxy)
        nursery.start_soon(lambda: outcome.acapture(secure_server, node_end, identity=NODE))
        with pytest.raises(HandshakeFailed) as caught:
            await secure_client(client_end, expected=NODE.public_key)
        nursery.cancel_scope.cancel()
    assert caught.value.code == "decrypt_failed"


async def test_data_sent_with_the_last_handshake_message_is_not_lost() -> None:
    """A client may send its first transport message in the same write as its third handshake message: the
    node's last handshake read then holds both, and the channel starts with the rest."""
    client_end, node_end = trio.testing.memory_stream_pair()

    async def eager_client() -> None:
        state = HandshakeState(initiator=True, static=local_static(CLIENT).key_pair, prologue=preamble() * 2)
        first = state.write_message()
        await client_end.send_all(preamble() + len(first).to_bytes(2, "big") + first)
        state.read_message((await read_exactly(client_end, 8 + 2 + 192))[10:])
        third = state.write_message(local_static(CLIENT).payload)
        send, _ = state.split()
        request = send.encrypt_with_ad(b"", b"first request")
        await client_end.send_all(len(third).to_bytes(2, "big") + third + len(request).to_bytes(2, "big") + request)

    async def server() -> tuple[bytes, object]:
        channel = await secure_server(node_end, identity=NODE)
        return await channel.receive_some(), channel.remote_key

    _, received = await both(eager_client, server)
    assert received.unwrap() == (b"first request", CLIENT.public_key)


@pytest.mark.parametrize(("client", "third"), [(CLIENT, 2 + 160), (None, 2 + 64)])
async def test_the_handshake_writes_the_documented_bytes(client: Any, third: int) -> None:
    """docs/channel.md: the client writes 42 bytes, the node 202, the client 162 (66 when anonymous)."""
    client_end, client_facing = trio.testing.memory_stream_pair()
    server_facing, node_end = trio.testing.memory_stream_pair()
    written: list[tuple[str, int]] = []

    async def relay(name: str, source: trio.abc.Stream, sink: trio.abc.Stream) -> None:
        while data := await source.receive_some():
            written.append((name, len(data)))
            await sink.send_all(data)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(relay, "client", client_facing, server_facing)
        nursery.start_soon(relay, "node", server_facing, client_facing)
        nursery.start_soon(lambda: secure_server(node_end, identity=NODE))
        channel = await secure_client(client_end, expected=NODE.public_key, identity=client)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert written == [("client", 42), ("node", 202), ("client", third)]
    assert written[0][1] == 8 + 2 + 32 and channel.remote_key == NODE.public_key
