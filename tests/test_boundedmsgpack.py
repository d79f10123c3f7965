"""Bounded msgpack decoding: `scan` agrees with msgpack on what it accepts, refuses what breaks a limit before
building anything, and never raises anything but ValueError, whatever the bytes."""

from __future__ import annotations

import time
import tracemalloc

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.boundedmsgpack import REQUEST_LIMITS, RESPONSE_LIMITS, Limits, scan, unpack

SMALL = Limits(max_objects=50, max_depth=4, max_str=20, max_bin=20, max_array=8, max_map=8)

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=30) | st.binary(max_size=30),
    lambda children: st.lists(children, max_size=10) | st.dictionaries(st.text(max_size=10), children, max_size=10),
    max_leaves=60,
)


@given(values)
@settings(max_examples=50)
def test_valid_values_within_the_limits_round_trip(value: object) -> None:
    assert unpack(msgpack.packb(value, use_bin_type=True), RESPONSE_LIMITS) == value


@given(values)
@settings(max_examples=50)
def test_scan_accepts_exactly_what_fits_the_limits(value: object) -> None:
    """Whatever scan accepts, msgpack builds within the same limits; whatever it refuses breaks one."""
    body = msgpack.packb(value, use_bin_type=True)
    try:
        scan(body, SMALL)
    except ValueError:
        assert _breaks(value, SMALL, depth=1)
    else:
        assert not _breaks(value, SMALL, depth=1)
        assert unpack(body, SMALL) == value


def _breaks(value: object, limits: Limits, depth: int) -> bool:
    count = 0

    def walk(item: object, level: int) -> bool:
        nonlocal count
        count += 1
        if isinstance(item, str) and len(item.encode("utf-8", "surrogatepass")) > limits.max_str:
            return True
        if isinstance(item, bytes) and len(item) > limits.max_bin:
            return True
        if isinstance(item, list):
            if len(item) > limits.max_array or (item and level >= limits.max_depth):
                return True
            return any(walk(child, level + 1) for child in item)
        if isinstance(item, dict):
            if len(item) > limits.max_map or (item and level >= limits.max_depth):
                return True
            return any(walk(key, level + 1) or walk(child, level + 1) for key, child in item.items())
        return False

    return walk(value, depth) or count > limits.max_objects


@given(st.binary(max_size=200))
@settings(max_examples=200)
def test_arbitrary_bytes_raise_only_value_error(data: bytes) -> None:
    try:
        unpack(data, REQUEST_LIMITS)
    except ValueError:
        pass


@given(values, st.data())
@settings(max_examples=50)
def test_truncated_and_extended_bodies_are_refused(value: object, data: st.DataObject) -> None:
    body = msgpack.packb(value, use_bin_type=True)
    cut = data.draw(st.integers(0, len(body) - 1))
    with pytest.raises(ValueError):
        unpack(body[:cut], RESPONSE_LIMITS)
    with pytest.raises(ValueError, match="extra bytes"):
        unpack(body + b"\xc0", RESPONSE_LIMITS)


@pytest.mark.parametrize(("body", "complaint"), [
    (b"\xd4\x01\x00", "ext types"),                      # fixext: never part of a request
    (b"\xc7\x01\x05\x00", "ext types"),
    (b"\xc1", "0xc1"),
    (b"\x91" * 7 + b"\xc0", "nested deeper than 6"),
    (b"\xdd\xff\xff\xff\xff", "an array of 4294967295 items"),  # announced, never allocated
    (b"\xdf\x00\x01\x00\x00", "a map of 65536 entries"),
    (b"\xdb\x7f\xff\xff\xff", "a string of"),
    (b"\xc6\xff\xff\xff\xff", "a bin of"),
    (b"\xc5\x00", "truncated"),
])
def test_refusals_name_the_limit(body: bytes, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        unpack(body, REQUEST_LIMITS)


def test_a_body_of_many_small_objects_costs_almost_nothing() -> None:
    """The issue's bomb: 4 MiB of one-byte maps used to cost ~300 MiB and a second to decode."""
    flat = b"\xdd" + (4 * 1024 * 1024).to_bytes(4, "big") + b"\x80" * (4 * 1024 * 1024)
    # within every length limit, over the object count: scan does max_objects steps, then refuses
    nested = b"\xdc\x00\x40" + (b"\xdc\xff\xff" + b"\x80" * 0xFFFF) * 0x40
    for bomb, limits in ((flat, REQUEST_LIMITS), (flat, RESPONSE_LIMITS), (nested, RESPONSE_LIMITS)):
        started = time.perf_counter()
        with pytest.raises(ValueError):
            unpack(bomb, limits)
        elapsed = time.perf_counter() - started
        assert elapsed < 0.5, elapsed
        tracemalloc.start()
        try:
            with pytest.raises(ValueError):
                unpack(bomb, limits)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 256 * 1024, peak
