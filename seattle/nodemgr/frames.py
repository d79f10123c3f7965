"""Framing of node manager messages on a TCP stream: a 4-byte big-endian length, then a msgpack body.

Sans-IO: the caller reads from its socket and hands the bytes to `FrameDecoder.feed`, which returns every
message completed so far. The decoder checks a frame's length from its header alone, before it waits for or
keeps any of the body, so a peer cannot make it buffer more than `max_frame` bytes (plus a header) by
announcing a huge frame. One connection carries any number of frames back to back, which is what makes
pipelining possible; a frame error leaves the stream unsynchronised, so the decoder refuses all further input
and the connection must be closed.

Two frame limits: `small_frame` for anyone, `max_frame` only for a frame its receiver agrees to take. A frame
announced larger than `small_frame` makes `feed` stop at the first `decision_prefix` bytes of its body and
expose them as `awaiting`; the receiver looks at them (the node: the key a signed request claims to be from)
and calls `decide(True)` to take the frame or `decide(False)` to refuse it (`frame_too_large`). Until then the
decoder holds at most what was fed, so a stranger's announced 4 MiB frame costs a 16 KiB budget, not 4 MiB.

Bodies are decoded with `boundedmsgpack` limits (objects, depth, string, bin, array and map lengths), so the
cost of decoding is bounded by what a valid message can hold, not by the frame size.
"""

from __future__ import annotations

import struct

import msgpack

from seattle.boundedmsgpack import REQUEST_LIMITS, Limits, unpack

HEADER = struct.Struct(">I")

#: 4 MiB of file data (the largest upload) plus room for the signed envelope around it.
DEFAULT_MAX_FRAME = 4 * 1024 * 1024 + 64 * 1024

#: What anyone may send before its receiver has looked at who is sending it.
DEFAULT_SMALL_FRAME = 16 * 1024

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


def decode_body(body: bytes | bytearray | memoryview, limits: Limits = REQUEST_LIMITS) -> object:
    """One frame body → its object; FrameError for anything but exactly one well-formed msgpack object
    within `limits` (checked before any object is built)."""
    try:
        return unpack(body, limits)
    except ValueError as exc:
        raise FrameError(BAD_FRAME, f"frame body is not valid msgpack within the limits ({exc})") from None


class FrameDecoder:
    """Turns a byte stream into messages; see the module docstring for the guarantees.

    With `small_frame` None every frame up to `max_frame` is taken (a client reading its node's answers);
    otherwise frames over `small_frame` wait for `decide`.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME, *, small_frame: int | None = None,
                 decision_prefix: int = 0, limits: Limits = REQUEST_LIMITS) -> None:
        self.max_frame = _check_limit(max_frame)
        self.small_frame = self.max_frame if small_frame is None else min(_check_limit(small_frame), max_frame)
        if type(decision_prefix) is not int or not 0 <= decision_prefix <= self.small_frame:
            raise ValueError(f"decision_prefix must be an integer from 0 to small_frame, got {decision_prefix!r}")
        self.decision_prefix = decision_prefix
        self.limits = limits
        self._buffer = bytearray()
        self._body_length: int | None = None  # known once the current frame's header has been read
        self._allowed = False  # the current frame is over small_frame and its receiver took it
        self._failure: FrameError | None = None
        #: Frames completed so far: tells a receiver timing each frame when a new one has begun.
        self.completed = 0
        #: The last feed stopped at its `limit` with more bytes buffered: feed(b"") goes on.
        self.more = False

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame (header included): never more than max_frame + 4, and no more
        than small_frame + 4 plus one fed chunk while a large frame awaits its decision."""
        return len(self._buffer) + (0 if self._body_length is None else HEADER.size)

    @property
    def current_frame(self) -> int | None:
        """The announced body length of the frame being received, None between frames."""
        return self._body_length

    @property
    def awaiting(self) -> bytes | None:
        """The first `decision_prefix` bytes of a frame over `small_frame` that waits for `decide`, else None."""
        if (self._body_length is None or self._allowed or self._body_length <= self.small_frame
                or len(self._buffer) < self.decision_prefix):
            return None
        return bytes(self._buffer[:self.decision_prefix])

    def feed(self, data: bytes | bytearray, limit: int | None = None) -> list[object]:
        """Add bytes read from the stream; return the messages they complete, in order, at most `limit` of them.

        Stops early, keeping the rest, when a large frame needs a decision (`awaiting`) or `limit` messages
        are decoded (`more` is then true): a receiver decodes no more requests than it can queue, so a chunk
        full of tiny pipelined frames costs it one queue's worth of work at a time. Raises FrameError
        for a frame over the limit (as soon as its header is in) or an undecodable body; once it has raised,
        every later call raises the same error. Messages completed earlier in the same call are dropped with
        it: the stream is broken and the connection is about to be closed.
        """
        if self._failure is not None:
            raise self._failure
        try:
            return self._feed(data, limit)
        except FrameError as exc:
            self._fail(exc)
            raise

    @property
    def admitted_frame(self) -> int:
        """The announced length of the frame being received if it is taken (small, or decided), else 0."""
        if self._body_length is None or (self._body_length > self.small_frame and not self._allowed):
            return 0
        return self._body_length

    def decide(self, refusal: str | None, limit: int | None = None) -> list[object]:
        """Take (None) or refuse (`refusal` says why: FrameError frame_too_large) the large frame that is
        `awaiting`, then go on with what is buffered: the messages completed."""
        if self.awaiting is None:
            raise RuntimeError("no frame awaits a decision")
        if refusal is not None:
            exc = FrameError(FRAME_TOO_LARGE, f"frame of {self._body_length} bytes announced; {refusal}")
            self._fail(exc)
            raise exc
        self._allowed = True
        return self.feed(b"", limit)

    def end_of_stream(self) -> None:
        """The peer closed its side: FrameError if it did so in the middle of a frame."""
        if self._failure is not None:
            raise self._failure
        if self.buffered:
            raise FrameError(BAD_FRAME, f"connection closed {self.buffered} bytes into an unfinished frame")

    def _fail(self, exc: FrameError) -> None:
        self._failure = exc
        self._buffer = bytearray()
        self._body_length = None

    def _feed(self, data: bytes | bytearray, limit: int | None) -> list[object]:
        buffer = self._buffer
        buffer += data
        messages: list[object] = []
        offset = 0
        self.more = False
        while True:
            if limit is not None and len(messages) >= limit:
                self.more = len(buffer) > offset
                break
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
                self._allowed = False
            if self._body_length > self.small_frame and not self._allowed:
                break  # awaiting a decision (or more bytes of the prefix it needs)
            end = offset + self._body_length
            if len(buffer) < end:
                break
            messages.append(decode_body(bytes(memoryview(buffer)[offset:end]), self.limits))
            offset = end
            self._body_length = None
            self.completed += 1
        del buffer[:offset]
        return messages
