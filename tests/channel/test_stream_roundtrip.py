"""Hypothesis round trips: any sizes (the 65,519 / 65,520 / 65,535 boundaries weighted in), any cuts of the wire
on the way, any max_bytes on the reading side: the reader gets exactly the bytes that were sent."""

from __future__ import annotations

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.channel.noise import MAX_MESSAGE, MAX_PLAINTEXT, TAGLEN
from tests.channel.helpers import read_exactly, tapped_pair

BOUNDARIES = [0, 1, MAX_PLAINTEXT - 1, MAX_PLAINTEXT, MAX_PLAINTEXT + 1, MAX_MESSAGE, 2 * MAX_PLAINTEXT + 1]
sizes = st.one_of(st.sampled_from(BOUNDARIES), st.integers(min_value=0, max_value=3 * MAX_PLAINTEXT))


def _wire_size(size: int) -> int:
    messages = -(-size // MAX_PLAINTEXT)
    return size + messages * (2 + TAGLEN)


@settings(max_examples=30, deadline=None)
@given(sends=st.lists(sizes, min_size=1, max_size=4),
       cuts=st.lists(st.integers(min_value=1, max_value=70_000), max_size=8),
       reads=st.lists(st.one_of(st.none(), st.integers(min_value=1, max_value=100_000)), min_size=1, max_size=8),
       seed=st.integers(min_value=0, max_value=255))
def test_any_sizes_cuts_and_reads_round_trip(sends: list[int], cuts: list[int], reads: list[int | None],
                                             seed: int) -> None:
    payloads = [bytes((seed + index) % 256 for index in range(size)) for size in sends]
    expected = b"".join(payloads)

    async def main() -> bytes:
        tap = await tapped_pair()
        for payload in payloads:
            await tap.client.send_all(payload)
        wire = await read_exactly(tap.client_facing, sum(_wire_size(len(payload)) for payload in payloads))
        received = bytearray()

        async def deliver() -> None:
            offset = 0
            for cut in [*cuts, len(wire)]:
                await tap.server_facing.send_all(wire[offset:offset + cut])
                offset += cut
                if offset >= len(wire):
                    break
            await tap.client.aclose()  # its end-of-stream message, through the tap too
            await tap.server_facing.send_all(await tap.client_facing.receive_some())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(deliver)
            index = 0
            while chunk := await tap.server.receive_some(reads[index % len(reads)]):
                limit = reads[index % len(reads)]
                # At most max_bytes; without it, at most one whole message's worth (messages already here are
                # joined, none is split to fill a read).
                assert len(chunk) <= (MAX_PLAINTEXT if limit is None else limit)
                received += chunk
                index += 1
        return bytes(received)

    assert trio.run(main) == expected
