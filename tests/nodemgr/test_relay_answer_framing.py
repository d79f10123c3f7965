"""A relay's answer on a circuit is read to its last byte and no further: what follows is the far end's.

Regression: the far end's first bytes (a researcher's channel preamble) used to arrive in the same read as the
relay's answer and were decoded as a second frame ("frame of 1397641033 bytes announced"), which failed about
half the relayed connections to NATed nodes on the namespace testbed.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from seattle.nodemgr.frames import encode_frame
from seattle.nodemgr.relay_client import RelayError, _read_frame


async def test_the_bytes_after_the_answer_stay_for_the_circuit() -> None:
    ours, relay = trio.testing.memory_stream_pair()
    await relay.send_all(encode_frame({"status": "ok", "result": None}) + b"SNOISE\x00\x01 the far end")
    assert await _read_frame(ours, "relay") == {"status": "ok", "result": None}
    assert await ours.receive_some() == b"SNOISE\x00\x01 the far end"


async def test_an_answer_announced_too_large_is_refused_before_it_is_read() -> None:
    ours, relay = trio.testing.memory_stream_pair()
    await relay.send_all(b"SNOISE\x00\x01")
    with pytest.raises(RelayError, match="frame of 1397641033 bytes announced"):
        await _read_frame(ours, "relay")


async def test_a_relay_that_hangs_up_mid_answer_is_reported() -> None:
    ours, relay = trio.testing.memory_stream_pair()
    await relay.send_all(encode_frame({"status": "ok", "result": None})[:-1])
    await relay.aclose()
    with pytest.raises(RelayError, match="closed the connection"):
        await _read_frame(ours, "relay")
