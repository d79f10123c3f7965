"""FrameDecoder against hostile streams: arbitrary bytes, truncated, oversized and type-confused frames, and the
small-frame limit that holds until the receiver decides to take a large frame. Each is refused with its code,
and the decoder's state stays consistent: bounded buffering, and a failure that sticks."""

from __future__ import annotations

import os
import time
import tracemalloc

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.keys import generate_identity
from seattle.nodemgr.frames import BAD_FRAME, FRAME_TOO_LARGE, HEADER, FrameDecoder, FrameError, encode_frame
from seattle.nodemgr.signing import NONCE_SIZE, SIGNER_PREFIX, claimed_signer, sign_request

SMALL = 256


def _decoder(max_frame: int = 4096) -> FrameDecoder:
    return FrameDecoder(max_frame, small_frame=SMALL, decision_prefix=16)


@given(st.lists(st.binary(max_size=600), max_size=20))
@settings(max_examples=200)
def test_arbitrary_chunks_are_messages_or_one_sticky_frame_error(chunks: list[bytes]) -> None:
    decoder = _decoder()
    failure: FrameError | None = None
    for chunk in chunks:
        try:
            decoder.feed(chunk)
            while decoder.awaiting is not None:
                decoder.decide(None if chunk[:1] == b"\x00" else "no rights")
        except FrameError as exc:
            assert exc.code in (BAD_FRAME, FRAME_TOO_LARGE)
            failure = exc
            break
        # never more than a frame's worth held: a small frame, a decided one, or a prefix plus one chunk
        assert decoder.buffered <= max(decoder.max_frame, SMALL + len(chunk)) + HEADER.size
    if failure is not None:
        with pytest.raises(FrameError) as again:
            decoder.feed(b"\x00\x00\x00\x01\xc0")
        assert again.value is failure
        assert decoder.buffered == 0


@given(st.recursive(st.none() | st.integers(-5, 5) | st.text(max_size=5) | st.binary(max_size=5),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=4), c, max_size=4),
                    max_leaves=20),
       st.integers(1, 50))
@settings(max_examples=200)
def test_valid_frames_survive_any_chunking(message: object, step: int) -> None:
    stream = encode_frame(message) * 3
    decoder = _decoder()
    got: list[object] = []
    for start in range(0, len(stream), step):
        got += decoder.feed(stream[start:start + step])
        while decoder.awaiting is not None:
            got += decoder.decide(None)
    assert got == [message] * 3 and decoder.buffered == 0


@given(st.binary(min_size=1, max_size=300))
@settings(max_examples=200)
def test_truncated_stream_is_a_bad_frame_at_its_end(body: bytes) -> None:
    decoder = _decoder()
    frame = HEADER.pack(len(body)) + body
    try:
        decoder.feed(frame[:-1])
        if decoder.awaiting is not None:
            decoder.decide(None)
    except FrameError:
        return  # refused before its end (over a limit, or a bad body completed earlier)
    with pytest.raises(FrameError) as caught:
        decoder.end_of_stream()
    assert caught.value.code == BAD_FRAME


@pytest.mark.parametrize("body", [
    msgpack.packb([[[[[[[[1]]]]]]]]),             # nested deeper than a request can be
    msgpack.packb(list(range(600))),               # an array longer than any request's
    msgpack.packb({str(i): i for i in range(40)}),  # a map wider than any request's
    b"\xd6\xff\x00\x00\x00\x00",                   # a timestamp (ext): never part of a request
    b"\x81\xc0\xc0",                               # a map keyed by nil
])
def test_type_confused_bodies_are_bad_frames(body: bytes) -> None:
    decoder = FrameDecoder()
    with pytest.raises(FrameError) as caught:
        decoder.feed(HEADER.pack(len(body)) + body)
    assert caught.value.code == BAD_FRAME


def test_a_large_frame_waits_for_a_decision_holding_only_its_prefix() -> None:
    decoder = _decoder(max_frame=1 << 20)
    body = msgpack.packb(b"k" * 5000, use_bin_type=True)
    assert decoder.feed(HEADER.pack(len(body)) + body[:10]) == []
    assert decoder.awaiting is None  # the prefix is not complete yet
    assert decoder.feed(body[10:20]) == []
    assert decoder.awaiting == body[:16]
    assert decoder.admitted_frame == 0
    assert decoder.feed(body[20:]) == [] and decoder.awaiting == body[:16]  # still undecided: nothing decoded
    assert decoder.decide(None) == [b"k" * 5000]
    assert decoder.buffered == 0 and decoder.completed == 1
    with pytest.raises(RuntimeError):
        decoder.decide(None)


def test_a_refused_large_frame_is_frame_too_large_and_sticks() -> None:
    decoder = _decoder()
    decoder.feed(HEADER.pack(1000) + b"\xc5" + b"\x00" * 20)
    with pytest.raises(FrameError, match="frame of 1000 bytes announced; no rights") as caught:
        decoder.decide("no rights")
    assert caught.value.code == FRAME_TOO_LARGE
    with pytest.raises(FrameError):
        decoder.feed(b"")


def test_the_signer_a_signed_request_claims_is_read_from_its_prefix() -> None:
    owner, node = generate_identity("owner"), generate_identity("node")
    for size in (10, 100_000):  # bin8/bin16 and bin32 headers
        raw = sign_request(owner, node.public_key, "AddFileToVessel", ["v1", "f", b"x" * size],
                           now=time.time(), nonce=os.urandom(NONCE_SIZE))
        body = encode_frame(raw)[HEADER.size:]
        assert claimed_signer(body[:SIGNER_PREFIX]) == owner.public_key.raw
    assert claimed_signer(msgpack.packb({"call": "x"})) is None
    assert claimed_signer(b"") is None
    assert claimed_signer(b"\xc6" + b"\x00" * (SIGNER_PREFIX - 1)) is None  # no context: not a request


def test_a_4_mib_frame_of_small_objects_is_refused_cheaply() -> None:
    """The issue's bomb, taken as a large frame: refused after ~1,000 objects, not after 4 million."""
    inner = b"\xdc\x01\xff" + b"\x80" * 511  # 511 empty maps: every length within the request limits
    payload = b"\xdc\x02\x00" + (b"\xdc\x00\x10" + inner * 16) * 512  # 4 MiB, ~4 million objects
    frame = HEADER.pack(len(payload)) + payload
    decoder = FrameDecoder(len(payload))  # as if the sender had rights: the body is decoded
    tracemalloc.start()
    try:
        started = time.perf_counter()
        with pytest.raises(FrameError) as caught:
            for start in range(0, len(frame), 65536):
                decoder.feed(frame[start:start + 65536])
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.code == BAD_FRAME and "more than 1024 objects" in caught.value.message
    assert peak < 3 * len(payload), peak  # the raw bytes (buffer and one copy), not 300 MiB of objects
    assert elapsed < 2.0, elapsed
