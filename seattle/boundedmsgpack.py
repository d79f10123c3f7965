"""Decoding msgpack from strangers with the cost bounded before any object is built.

`msgpack.unpackb` builds every object a body describes: 4 MiB of one-byte maps become four million dicts
(about 300 MiB) and hold the event loop for a second. `unpack` first walks the bytes with `scan`, which
builds nothing, does at most `max_objects` steps and stops at the first object that breaks a limit (too many
objects, too deep, a string, bin, array or map longer than allowed, an ext type, truncation, bytes after the
end), and only then lets msgpack build the objects, with its own length limits as a second line.

    value = unpack(body, REQUEST_LIMITS)   # ValueError naming the limit broken

A leaf: imports msgpack only, so the envelope, the node manager and the researcher's client share it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import msgpack


@dataclass(frozen=True)
class Limits:
    """What one msgpack value may hold. Sized by each caller to what a valid message of its kind needs."""

    #: Objects in all (every scalar, string and container counts one): bounds the work and the allocations.
    max_objects: int
    #: Containers inside containers; the top-level value is depth 1.
    max_depth: int
    max_str: int
    max_bin: int
    max_array: int
    max_map: int


#: A node manager request (the frame, and the signed envelope inside it): StartVessel's 256 program
#: arguments and ChangeUsers' 64 keys are the largest collections; resource text (64 Ki characters) the
#: longest string; a 4 MiB upload inside the signed bin the largest bin.
REQUEST_LIMITS = Limits(max_objects=1024, max_depth=6, max_str=256 * 1024, max_bin=4 * 1024 * 1024 + 64 * 1024,
                        max_array=512, max_map=32)

#: A node's answer as the researcher decodes it: room for a thousand vessels with users or a 64 Ki-file listing,
#: and at most ~0.1 s of scanning (about 1.3 µs per object) for an answer built to waste the researcher's time.
RESPONSE_LIMITS = Limits(max_objects=64 * 1024, max_depth=12, max_str=4 * 1024 * 1024 + 64 * 1024,
                         max_bin=4 * 1024 * 1024 + 64 * 1024, max_array=64 * 1024, max_map=4096)

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")

# Fixed-size scalars by first byte: nil, false, true, float32/64, uint8..64, int8..64 → bytes after the type.
_FIXED = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,
          0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}


def scan(data: bytes | bytearray | memoryview, limits: Limits) -> None:
    """ValueError unless `data` is exactly one msgpack value within `limits` (no ext types). Builds nothing;
    at most `limits.max_objects` steps, each O(1)."""
    view = memoryview(data)
    end = len(view)
    offset = 0
    objects = 0
    pending = [1]  # per open container (and the top level): values still to read at that depth
    while pending:
        if pending[-1] == 0:
            pending.pop()
            continue
        pending[-1] -= 1
        objects += 1
        if objects > limits.max_objects:
            raise ValueError(f"more than {limits.max_objects} objects")
        if offset >= end:
            raise ValueError("truncated")
        kind = view[offset]
        offset += 1
        children = 0
        if kind <= 0x7F or kind >= 0xE0:
            continue
        if kind in _FIXED:
            offset += _FIXED[kind]
        elif 0xA0 <= kind <= 0xBF or kind in (0xD9, 0xDA, 0xDB):
            if kind <= 0xBF:
                size = kind & 0x1F
            else:
                size, offset = _length(view, offset, kind - 0xD9)
            if size > limits.max_str:
                raise ValueError(f"a string of {size} bytes; the limit is {limits.max_str}")
            offset += size
        elif kind in (0xC4, 0xC5, 0xC6):
            size, offset = _length(view, offset, kind - 0xC4)
            if size > limits.max_bin:
                raise ValueError(f"a bin of {size} bytes; the limit is {limits.max_bin}")
            offset += size
        elif 0x90 <= kind <= 0x9F or kind in (0xDC, 0xDD):
            size, offset = (kind & 0x0F, offset) if kind <= 0x9F else _length(view, offset, kind - 0xDB)
            if size > limits.max_array:
                raise ValueError(f"an array of {size} items; the limit is {limits.max_array}")
            children = size
        elif 0x80 <= kind <= 0x8F or kind in (0xDE, 0xDF):
            size, offset = (kind & 0x0F, offset) if kind <= 0x8F else _length(view, offset, kind - 0xDD)
            if size > limits.max_map:
                raise ValueError(f"a map of {size} entries; the limit is {limits.max_map}")
            children = 2 * size
        else:
            raise ValueError(f"type byte 0x{kind:02x} (ext types and 0xc1 are not accepted)")
        if offset > end:
            raise ValueError("truncated")
        if children:
            if len(pending) >= limits.max_depth:
                raise ValueError(f"nested deeper than {limits.max_depth}")
            pending.append(children)
    if offset != end:
        raise ValueError(f"{end - offset} extra bytes after its message")


def _length(view: memoryview, offset: int, width_code: int) -> tuple[int, int]:
    """The length field of width 1, 2 or 4 bytes (width_code 0, 1, 2) at `offset` → (length, new offset)."""
    if width_code == 0:
        if offset + 1 > len(view):
            raise ValueError("truncated")
        return view[offset], offset + 1
    field = _U16 if width_code == 1 else _U32
    if offset + field.size > len(view):
        raise ValueError("truncated")
    return field.unpack_from(view, offset)[0], offset + field.size


def unpack(data: bytes | bytearray | memoryview, limits: Limits) -> object:
    """The one value in `data`, once `scan` has passed it; ValueError (a message naming what is wrong)
    for anything else: over a limit, truncated, trailing bytes, invalid UTF-8, non-string map keys."""
    scan(data, limits)
    try:
        return msgpack.unpackb(data, raw=False, max_str_len=limits.max_str, max_bin_len=limits.max_bin,
                               max_array_len=limits.max_array, max_map_len=limits.max_map, max_ext_len=0)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
