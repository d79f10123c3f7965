"""Framing of node manager messages on a TCP stream: a 4-byte big-endian length, then a msgpack body.

Sans-IO: the caller reads from its socket and hands the bytes to `FrameDecoder.feed`, which returns every
message completed so far. The decoder checks a frame's length from its header alone, before it waits for or
keeps any of the body, so a peer cannot make it buffer more than `max_frame` bytes (plus a header) by
announcing a huge frame. One connection carries any number of frames back to back, which is what makes
pipelining possible; a frame error leaves the stream unsynchronised, so the decoder refuses all further input
and the connection must be closed.
"""

from __future__ import annotations

import struct

import msgpack

HEADER = struct.Struct(">I")

#: 4 MiB of file data (the largest upload) plus room for the signed envelope around it.
DEFAULT_MAX_FRAME = 4 * 1024 * 1024 + 64 * 1024

#: Error codes carried by `FrameError.code`, stable for responses and logs.
FRAME_TOO_LARGE = "frame_too_large"
BAD_FRAME = "bad_frame"


class FrameError(Exception):
    """A frame that cannot be accepted; `code` is FRAME_TOO_LARGE or BAD_FRAME, the text says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _check_limit(max_frame: int) -> int:
    if type(max_frame) is not int or not 1 <= max_frame < 2**32:
        raise ValueError(f"max_frame must be an integer from 1 to 2**32 - 1 bytes, got {max_frame!r}")
    return max_frame


def encode_frame(message: object, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Header + msgpack body of `message`; FrameError if the body would exceed `max_frame`.

    Checking on the sending side turns "the node hung up on me" into an error that says what was too big.
    """
    body: bytes = msgpack.packb(message, use_bin_type=True)
    if len(body) > _check_limit(max_frame):
        raise FrameError(FRAME_TOO_LARGE, f"message of {len(body)} bytes exceeds the frame limit {max_frame}")
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes | bytearray) -> object:
    """One frame body → its object; FrameError for anything but exactly one well-formed msgpack object."""
    try:
        return msgpack.unpackb(body, raw=False)
    except msgpack.ExtraData:
        raise FrameError(BAD_FRAME, "frame holds extra bytes after its message") from None
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        # ValueError covers truncated data, invalid UTF-8, over-deep nesting and non-string map keys.
        detail = str(exc) or type(exc).__name__
        raise FrameError(BAD_FRAME, f"frame body is not valid msgpack ({detail})") from None


class FrameDecoder:
    """Turns a byte stream into messages; see the module docstring for the guarantees."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = _check_limit(max_frame)
        self._buffer = bytearray()
        self._body_length: int | None = None  # known once the current frame's header has been read
        self._failure: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame (header included): never more than max_frame + 4."""
        return len(self._buffer) + (0 if self._body_length is None else HEADER.size)

    def feed(self, data: bytes) -> list[object]:
        """Add bytes read from the stream; return the messages they complete, in order.

        Raises FrameError for a frame over the limit (as soon as its header is in) or an undecodable body;
        once it has raised, every later call raises the same error. Messages completed earlier in the same
        call are dropped with it: the stream is broken and the connection is about to be closed.
        """
        if self._failure is not None:
            raise self._failure
        try:
            return self._feed(data)
        except FrameError as exc:
            self._failure = exc
            self._buffer = bytearray()
            self._body_length = None
            raise

    def end_of_stream(self) -> None:
        """The peer closed its side: FrameError if it did so in the middle of a frame."""
        if self._failure is not None:
            raise self._failure
        if self.buffered:
            raise FrameError(BAD_FRAME, f"connection closed {self.buffered} bytes into an unfinished frame")

    def _feed(self, data: bytes) -> list[object]:
        buffer = self._buffer
        buffer += data
        messages: list[object] = []
        offset = 0
        while True:
            if self._body_length is None:
                if len(buffer) - offset < HEADER.size:
                    break
                (length,) = HEADER.unpack_from(buffer, offset)
                if length > self.max_frame:
                    raise FrameError(
                        FRAME_TOO_LARGE, f"frame of {length} bytes announced; the limit is {self.max_frame}"
                    )
                offset += HEADER.size
                self._body_length = length
            if len(buffer) - offset < self._body_length:
                break
            end = offset + self._body_length
            messages.append(decode_body(buffer[offset:end]))
            offset = end
            self._body_length = None
        del buffer[:offset]
        return messages
