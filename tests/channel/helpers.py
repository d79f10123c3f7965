"""Channel pairs for the channel tests: a handshake over trio's in-memory streams, with or without a tap.

The tap sits between the two sides like an attacker on the path: during the handshake it relays every byte
unchanged; afterwards the test reads what one side sent and decides what the other
side receives: `client_facing` carries what the client sent and takes what it should receive, `server_facing`
the same for the node.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio
import trio.testing

from seattle.channel import SecureStream, secure_client, secure_server
from seattle.keys import Identity, generate_identity

NODE = generate_identity("node")
CLIENT = generate_identity("client")


async def channel_pair(node: Identity = NODE, client: Identity | None = CLIENT) -> tuple[SecureStream, SecureStream]:
    """(client side, node side) of a channel over an in-memory stream pair."""
    client_end, node_end = trio.testing.memory_stream_pair()
    return await _handshake(client_end, node_end, node, client)


async def _handshake(client_end: trio.abc.Stream, node_end: trio.abc.Stream, node: Identity,
                     client: Identity | None) -> tuple[SecureStream, SecureStream]:
    sides: dict[str, SecureStream] = {}

    async def serve() -> None:
        sides["node"] = await secure_server(node_end, identity=node)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        sides["client"] = await secure_client(client_end, expected=node.public_key, identity=client)
    return sides["client"], sides["node"]


@dataclass
class Tapped:
    client: SecureStream
    server: SecureStream
    client_facing: trio.abc.Stream
    server_facing: trio.abc.Stream


async def _relay(source: trio.abc.ReceiveStream, sink: trio.abc.SendStream) -> None:
    while data := await source.receive_some():
        await sink.send_all(data)


async def tapped_pair(node: Identity = NODE, client: Identity | None = CLIENT) -> Tapped:
    """A channel whose bytes pass through the test: relayed during the handshake, held afterwards."""
    client_end, client_facing = trio.testing.memory_stream_pair()
    server_facing, node_end = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as relays:
        relays.start_soon(_relay, client_facing, server_facing)
        relays.start_soon(_relay, server_facing, client_facing)
        client_side, node_side = await _handshake(client_end, node_end, node, client)
        relays.cancel_scope.cancel()
    return Tapped(client_side, node_side, client_facing, server_facing)


async def read_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await stream.receive_some(size - len(data))
        assert chunk, f"stream ended after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)
