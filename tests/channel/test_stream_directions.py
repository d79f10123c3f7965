"""A failed send breaks only the sending side, and one read returns every message already received whole."""

from __future__ import annotations

import pytest
import trio

from seattle.channel.stream import ChannelBroken
from tests.channel.helpers import read_exactly, tapped_pair


async def test_after_a_failed_send_the_peers_last_words_still_read() -> None:
    # A node answers and hangs up while the client is still sending (a refused upload): the client's send
    # fails, and the answer already on its way must still reach it.
    tap = await tapped_pair()
    await tap.server.send_all(b"refused: frame_too_large")
    answer = await tap.server_facing.receive_some()
    await tap.client_facing.send_all(answer)
    await tap.client_facing.aclose()  # the node's socket is gone

    with pytest.raises(trio.BrokenResourceError):
        await tap.client.send_all(b"x" * 100_000)
    assert await tap.client.receive_some() == b"refused: frame_too_large"
    with pytest.raises(trio.BrokenResourceError, match="sending side"):
        await tap.client.send_all(b"more")
    with pytest.raises(ChannelBroken):  # then the cut without an end-of-stream message shows
        await tap.client.receive_some()


async def test_one_read_returns_every_message_already_here() -> None:
    tap = await tapped_pair()
    for answer in (b"first", b"second", b"third"):
        await tap.client.send_all(answer)
    wire = await read_exactly(tap.client_facing, 3 * (2 + 16) + len(b"firstsecondthird"))
    await tap.server_facing.send_all(wire)

    # max_bytes still bounds a read, and a message that would not fit waits whole for the next one.
    assert await tap.server.receive_some(7) == b"first"
    assert await tap.server.receive_some() == b"secondthird"


async def test_a_read_stops_at_the_end_of_stream_and_reports_it_next() -> None:
    tap = await tapped_pair()
    await tap.client.send_all(b"last")
    await tap.client.send_eof()
    wire = await read_exactly(tap.client_facing, 2 * (2 + 16) + 4)
    await tap.server_facing.send_all(wire)

    assert await tap.server.receive_some() == b"last"
    assert await tap.server.receive_some() == b""
