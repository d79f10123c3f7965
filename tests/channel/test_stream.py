"""SecureStream: trio's stream contract, round trips, and every refused ciphertext closing the transport."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from seattle.channel import ChannelBroken, SecureStream
from seattle.channel.noise import MAX_MESSAGE, MAX_PLAINTEXT, TAGLEN
from tests.channel.helpers import CLIENT, NODE, channel_pair, read_exactly, tapped_pair


async def test_trio_half_closeable_stream_contract() -> None:
    async def maker() -> tuple[SecureStream, SecureStream]:
        return await channel_pair()

    await trio.testing.check_half_closeable_stream(maker, None)


async def test_both_sides_hold_the_proven_identities_and_the_same_session() -> None:
    client, node = await channel_pair()
    assert client.remote_key == NODE.public_key
    assert node.remote_key == CLIENT.public_key
    assert client.handshake_hash == node.handshake_hash


async def test_an_anonymous_client_has_no_remote_key_at_the_node() -> None:
    client, node = await channel_pair(client=None)
    assert node.remote_key is None
    assert client.remote_key == NODE.public_key


async def _transfer(sender: SecureStream, receiver: SecureStream, data: bytes) -> bytes:
    received = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender.send_all, data)
        while len(received) < len(data):
            chunk = await receiver.receive_some()
            assert chunk
            received += chunk
    return bytes(received)


@pytest.mark.parametrize("size", [1, MAX_PLAINTEXT - 1, MAX_PLAINTEXT, MAX_PLAINTEXT + 1, MAX_MESSAGE,
                                  3 * MAX_PLAINTEXT + 7, 1 << 20])
async def test_round_trip_at_the_message_boundaries(size: int) -> None:
    client, node = await channel_pair()
    data = bytes(index % 251 for index in range(size))
    assert await _transfer(client, node, data) == data
    assert await _transfer(node, client, data[::-1]) == data[::-1]


async def test_send_all_writes_whole_messages_in_one_write() -> None:
    tap = await tapped_pair()
    await tap.client.send_all(b"x" * (MAX_PLAINTEXT + 1))
    wire = await read_exactly(tap.client_facing, 2 + MAX_MESSAGE + 2 + 1 + TAGLEN)
    assert wire[:2] == MAX_MESSAGE.to_bytes(2, "big")
    assert wire[2 + MAX_MESSAGE:2 + MAX_MESSAGE + 2] == (1 + TAGLEN).to_bytes(2, "big")
    assert b"xxxx" not in wire


async def test_receive_some_honours_max_bytes_and_keeps_the_rest() -> None:
    client, node = await channel_pair()
    await client.send_all(b"abcdefgh")
    assert await node.receive_some(3) == b"abc"
    assert await node.receive_some(3) == b"def"
    assert await node.receive_some() == b"gh"


async def test_the_end_of_stream_is_authenticated() -> None:
    client, node = await channel_pair()
    await client.send_all(b"last words")
    await client.aclose()
    assert await node.receive_some() == b"last words"
    assert await node.receive_some() == b""
    assert await node.receive_some() == b""


async def _refused(receiver: SecureStream, code: str) -> None:
    with pytest.raises(ChannelBroken) as caught:
        await receiver.receive_some()
    assert caught.value.code == code
    assert isinstance(caught.value, trio.BrokenResourceError)
    with pytest.raises(trio.BrokenResourceError):
        await receiver.receive_some()
    with pytest.raises(trio.BrokenResourceError):
        await receiver.send_all(b"anything")


async def _assert_transport_closed(facing: trio.abc.Stream) -> None:
    """The refusing side closed its transport: the tap sees the end of the stream."""
    with trio.fail_after(1):
        assert await facing.receive_some() == b""


async def _sent_by_client(tap_client: SecureStream, facing: trio.abc.Stream, data: bytes) -> bytes:
    await tap_client.send_all(data)
    return await read_exactly(facing, 2 + len(data) + TAGLEN)


@pytest.mark.parametrize("position", [0, 1, 2, 10, -1])
async def test_tampered_ciphertext_is_refused_and_closes_the_transport(position: int) -> None:
    tap = await tapped_pair()
    wire = bytearray(await _sent_by_client(tap.client, tap.client_facing, b"delete everything"))
    wire[position] ^= 0x01
    await tap.server_facing.send_all(bytes(wire))
    # A flipped length byte either asks for more than arrives (so the tap then ends the stream) or cuts the tag.
    if position in (0, 1):
        await tap.server_facing.send_eof()
    await _refused(tap.server, "connection_closed" if position == 0 else "decrypt_failed")
    await _assert_transport_closed(tap.server_facing)


async def test_truncated_ciphertext_is_refused() -> None:
    tap = await tapped_pair()
    wire = await _sent_by_client(tap.client, tap.client_facing, b"a whole message")
    await tap.server_facing.send_all(wire[:-5])
    await tap.server_facing.send_eof()
    await _refused(tap.server, "connection_closed")
    await _assert_transport_closed(tap.server_facing)


async def test_a_stream_cut_between_messages_is_refused() -> None:
    tap = await tapped_pair()
    await tap.server_facing.send_all(await _sent_by_client(tap.client, tap.client_facing, b"part one"))
    await tap.server_facing.send_eof()
    assert await tap.server.receive_some() == b"part one"
    await _refused(tap.server, "connection_closed")


async def test_replayed_ciphertext_is_refused() -> None:
    tap = await tapped_pair()
    wire = await _sent_by_client(tap.client, tap.client_facing, b"pay 10")
    await tap.server_facing.send_all(wire)
    assert await tap.server.receive_some() == b"pay 10"
    await tap.server_facing.send_all(wire)
    await _refused(tap.server, "decrypt_failed")
    await _assert_transport_closed(tap.server_facing)


async def test_reordered_ciphertext_is_refused() -> None:
    tap = await tapped_pair()
    first = await _sent_by_client(tap.client, tap.client_facing, b"first")
    second = await _sent_by_client(tap.client, tap.client_facing, b"second")
    await tap.server_facing.send_all(second + first)
    await _refused(tap.server, "decrypt_failed")
    await _assert_transport_closed(tap.server_facing)


async def test_a_message_shorter_than_its_tag_is_refused() -> None:
    tap = await tapped_pair()
    await tap.server_facing.send_all((TAGLEN - 1).to_bytes(2, "big") + bytes(TAGLEN - 1))
    await _refused(tap.server, "bad_message")


async def test_a_message_from_the_other_direction_is_refused() -> None:
    """The two directions have their own keys: a message reflected back to its sender does not decrypt."""
    tap = await tapped_pair()
    wire = await _sent_by_client(tap.client, tap.client_facing, b"reflect me")
    await tap.client_facing.send_all(wire)
    await _refused(tap.client, "decrypt_failed")
