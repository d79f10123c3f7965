"""The frame codec: length-prefixed msgpack, its size limit, and its behaviour on arbitrary input."""

from __future__ import annotations

import itertools
import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.nodemgr.frames import (
    BAD_FRAME,
    DEFAULT_MAX_FRAME,
    FRAME_TOO_LARGE,
    HEADER,
    FrameDecoder,
    FrameError,
    encode_frame,
)

MESSAGES = [
    {"call": "GetVessels", "args": []},
    b"\x00" * 100,
    ["x", 1, 2.5, None, True, {"nested": [b"bytes"]}],
    "text",
    0,
]


def test_round_trip_in_one_chunk() -> None:
    stream = b"".join(encode_frame(message) for message in MESSAGES)
    decoder = FrameDecoder()
    assert decoder.feed(stream) == MESSAGES
    assert decoder.buffered == 0
    decoder.end_of_stream()


def test_round_trip_one_byte_at_a_time() -> None:
    stream = b"".join(encode_frame(message) for message in MESSAGES)
    decoder = FrameDecoder()
    received = [
        message for index in range(len(stream)) for message in decoder.feed(stream[index : index + 1])
    ]
    assert received == MESSAGES


def test_frame_layout_is_big_endian_length_then_msgpack() -> None:
    frame = encode_frame({"a": 1})
    body = msgpack.packb({"a": 1})
    assert frame == struct.pack(">I", len(body)) + body
    assert encode_frame(b"\x01\x02")[4:] == b"\xc4\x02\x01\x02"  # bytes travel as msgpack bin


def test_oversized_frame_is_refused_from_its_header_alone() -> None:
    decoder = FrameDecoder(max_frame=1000)
    with pytest.raises(FrameError, match="frame of 1001 bytes announced; the limit is 1000") as caught:
        decoder.feed(HEADER.pack(1001))
    assert caught.value.code == FRAME_TOO_LARGE
    assert decoder.buffered == 0


def test_frame_exactly_at_the_limit_is_accepted() -> None:
    payload = b"x" * (1000 - 3)  # bin 16 header is 3 bytes
    frame = encode_frame(payload, max_frame=1000)
    assert len(frame) == HEADER.size + 1000
    assert FrameDecoder(max_frame=1000).feed(frame) == [payload]


def test_huge_announced_frame_does_not_buffer_its_body() -> None:
    decoder = FrameDecoder()
    with pytest.raises(FrameError) as caught:
        decoder.feed(HEADER.pack(2**32 - 1) + b"a" * 10)
    assert caught.value.code == FRAME_TOO_LARGE and str(DEFAULT_MAX_FRAME) in str(caught.value)


def test_sender_is_told_when_a_message_is_too_large() -> None:
    with pytest.raises(FrameError, match="exceeds the frame limit 100") as caught:
        encode_frame(b"x" * 200, max_frame=100)
    assert caught.value.code == FRAME_TOO_LARGE


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"\x01\x02", "extra bytes after its message"),  # trailing garbage inside the frame
        (b"", "not valid msgpack"),  # an empty frame holds no message
        (b"\x92\x01", "not valid msgpack"),  # an array that ends early
        (b"\xc1", "not valid msgpack"),  # the one byte msgpack never uses
        (b"\xa1\xff", "not valid msgpack"),  # a string that is not UTF-8
        (b"\x81\x90\x01", "not valid msgpack"),  # a map keyed by an array
        (b"\x91" * 5000 + b"\x00", "not valid msgpack"),  # nesting too deep
    ],
)
def test_undecodable_bodies_are_bad_frames(body: bytes, complaint: str) -> None:
    decoder = FrameDecoder()
    with pytest.raises(FrameError, match=complaint) as caught:
        decoder.feed(HEADER.pack(len(body)) + body)
    assert caught.value.code == BAD_FRAME


def test_a_failed_decoder_refuses_everything_after() -> None:
    decoder = FrameDecoder(max_frame=10)
    with pytest.raises(FrameError):
        decoder.feed(HEADER.pack(11))
    with pytest.raises(FrameError, match="11 bytes announced"):
        decoder.feed(encode_frame(1))
    with pytest.raises(FrameError, match="11 bytes announced"):
        decoder.end_of_stream()


def test_closing_in_the_middle_of_a_frame_is_an_error() -> None:
    decoder = FrameDecoder()
    frame = encode_frame("hello")
    assert decoder.feed(frame[:-2]) == []
    with pytest.raises(FrameError, match="connection closed 8 bytes into an unfinished frame") as caught:
        decoder.end_of_stream()
    assert caught.value.code == BAD_FRAME


@pytest.mark.parametrize("limit", [0, -1, 2**32, 1.5, "4096"])
def test_bad_limits_are_refused(limit: object) -> None:
    with pytest.raises(ValueError, match="max_frame must be an integer"):
        FrameDecoder(max_frame=limit)  # type: ignore[arg-type]


# --- properties -------------------------------------------------------------------------------------------

SMALL_LIMIT = 64

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    edges = [0, *points, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(edges)]


def feed_all(decoder: FrameDecoder, chunks: list[bytes]) -> tuple[list[object], FrameError | None]:
    """Feed chunk by chunk; check the buffering bound after every call; stop at the first error."""
    received: list[object] = []
    for chunk in chunks:
        try:
            received.extend(decoder.feed(chunk))
        except FrameError as exc:
            return received, exc
        assert decoder.buffered <= decoder.max_frame + HEADER.size
    return received, None


def packed(messages: list[object]) -> bytes:
    """Compare decoded values by their encoding, so NaN payloads and -0.0 compare exactly."""
    return msgpack.packb(messages, use_bin_type=True)


# Random bytes alone nearly always start with a huge length; frames of random bodies reach the body decoder.
random_frames = st.lists(
    st.binary(max_size=SMALL_LIMIT + 6).map(lambda body: HEADER.pack(len(body)) + body)
)
arbitrary_bytes = st.one_of(
    st.binary(max_size=300),
    random_frames.map(b"".join),
    st.tuples(random_frames.map(b"".join), st.binary(max_size=20)).map(b"".join),
)


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(data=arbitrary_bytes, cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_any_bytes_in_any_chunking_decode_as_a_whole_or_fail(data: bytes, cuts: list[int]) -> None:
    whole, whole_error = feed_all(FrameDecoder(SMALL_LIMIT), [data])
    chunked, chunked_error = feed_all(FrameDecoder(SMALL_LIMIT), split(data, cuts))
    assert (whole_error is None) == (chunked_error is None)
    if whole_error is None:
        assert packed(chunked) == packed(whole)
    else:
        # The same frame is the first bad one however the bytes arrive, so the verdict is the same.
        assert chunked_error is not None and chunked_error.code == whole_error.code


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(messages=st.lists(values, max_size=6), cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_valid_streams_round_trip_in_any_chunking(messages: list[object], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(message) for message in messages)
    received, failure = feed_all(FrameDecoder(), split(stream, cuts))
    assert failure is None
    assert packed(received) == packed(messages)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    prefix=st.lists(values, max_size=3),
    garbage=st.binary(max_size=80),
    cuts=st.lists(st.integers(), max_size=8),
)
def test_good_frames_before_garbage_are_delivered_in_order(
    prefix: list[object], garbage: bytes, cuts: list[int]
) -> None:
    stream = b"".join(encode_frame(message, max_frame=4096) for message in prefix) + garbage
    received, _ = feed_all(FrameDecoder(4096), split(stream, cuts))
    assert packed(received[: len(prefix)]) == packed(prefix[: len(received)])
