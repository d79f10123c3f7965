"""The channel on real loopback TCP sockets: the handshake, 1 MiB each way, and a clean end of stream."""

from __future__ import annotations

import pytest
import trio

from seattle.channel import ChannelError, KeyMismatch, SecureStream, secure_client, secure_server
from seattle.keys import Identity, PublicKey
from tests.channel.helpers import CLIENT, NODE

pytestmark = pytest.mark.slow


async def _echo_node(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    async def serve(stream: trio.SocketStream) -> None:
        try:
            channel = await secure_server(stream, identity=NODE)
        except ChannelError:  # a refused handshake ends this connection only
            return
        async with channel:
            while data := await channel.receive_some():
                await channel.send_all(data)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(serve, listeners)


async def _connect(port: int, expected: PublicKey, identity: Identity | None = None) -> SecureStream:
    return await secure_client(await trio.open_tcp_stream("127.0.0.1", port), expected=expected, identity=identity)


async def test_a_mebibyte_echoes_over_loopback_and_the_stream_ends_cleanly() -> None:
    data = bytes(index % 253 for index in range(1 << 20))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(_echo_node)
        channel = await _connect(port, expected=NODE.public_key, identity=CLIENT)
        assert channel.remote_key == NODE.public_key
        received = bytearray()

        async def send() -> None:
            await channel.send_all(data)
            await channel.send_eof()

        async with trio.open_nursery() as transfer:
            transfer.start_soon(send)
            while chunk := await channel.receive_some():
                received += chunk
        assert bytes(received) == data
        await channel.aclose()
        nursery.cancel_scope.cancel()


async def test_a_wrong_expected_key_is_refused_over_loopback() -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(_echo_node)
        with pytest.raises(KeyMismatch):
            await _connect(port, expected=CLIENT.public_key)
        nursery.cancel_scope.cancel()
