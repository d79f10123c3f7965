"""The trio driver of the channel: a Noise XX handshake on a byte stream, then a `SecureStream` on top of it.

On the wire (docs/channel.md has every byte):

    client → node   preamble "SNOISE" ‖ version (2 bytes, big-endian), then XX message 1
    node → client   its preamble, then XX message 2 (its static key and identity payload, encrypted)
    client → node   XX message 3 (its static key and, if it has one, its identity payload)
    then both ways  transport messages

Every handshake and transport message is a 2-byte big-endian length and that many bytes of Noise message.
The Noise prologue is both preambles, so a peer that edits either (a downgrade) fails the handshake. The
client checks the node's identity right after message 2 and before it sends its own (a wrong node never
learns who the client is). The whole handshake has one deadline; a handshake message over 1 KiB is refused
from its length alone, and a half-finished handshake holds at most a few KiB.

Versions: a node answers a preamble of another version with its own preamble and closes; the client raises
VersionMismatch. A node that receives anything but a preamble (an old plaintext client's msgpack frame)
answers with one error frame in the old framing that tells its user to upgrade, and closes; a client that
receives anything but a preamble (an old plaintext node) raises VersionMismatch.

Transport: `send_all` cuts data into messages of at most 65,519 bytes of plaintext and writes them in one go;
`receive_some` returns the plaintext of whole messages. A message that fails authentication (tampered,
truncated, replayed, reordered) closes the transport and raises ChannelBroken. The end of a stream is a
message too (an empty plaintext, sent by `send_eof` and `aclose`), so an attacker cannot cut a stream short
without the reader seeing ChannelBroken, as with TLS's close_notify.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import msgpack
import trio

from seattle.channel.binding import anonymous_static, local_static, verify_payload
from seattle.channel.errors import (
    BAD_MESSAGE,
    CONNECTION_CLOSED,
    HANDSHAKE_TIMEOUT,
    MESSAGE_TOO_LARGE,
    PLAINTEXT_CLIENT,
    PLAINTEXT_NODE,
    UPGRADE_CLIENT,
    UPGRADE_REQUIRED,
    ChannelBroken,
    ChannelError,
    HandshakeFailed,
    KeyMismatch,
    VersionMismatch,
)
from seattle.channel.noise import MAX_PLAINTEXT, TAGLEN, CipherState, HandshakeState
from seattle.keys import Identity, PublicKey

__all__ = [
    "PROTOCOL_VERSION",
    "ChannelBroken",
    "ChannelError",
    "HandshakeFailed",
    "KeyMismatch",
    "SecureStream",
    "VersionMismatch",
    "secure_client",
    "secure_server",
]

PROTOCOL_VERSION = 1
MAGIC = b"SNOISE"
_PREAMBLE = struct.Struct(">6sH")
PREAMBLE_SIZE = _PREAMBLE.size
LENGTH = struct.Struct(">H")
#: The largest handshake message either side accepts (ours are 32, 192 and 64 or 160 bytes).
MAX_HANDSHAKE_MESSAGE = 1024
DEFAULT_TIMEOUT = 10.0
#: How long `aclose` waits to hand the peer its end-of-stream message.
CLOSE_TIMEOUT = 1.0
#: How long a refused plaintext client is given to read its error frame before the connection closes.
REFUSAL_LINGER = 1.0
#: The old framing's header (seattle.nodemgr.frames.HEADER), rebuilt here so the channel imports no nodemgr.
_OLD_HEADER = struct.Struct(">I")

T = TypeVar("T")

_HANDSHAKE_READ = 2048  # bytes asked of the transport per read during the handshake
_TRANSPORT_READ = LENGTH.size + 65535  # one whole message per read when the peer sends large ones


def preamble(version: int = PROTOCOL_VERSION) -> bytes:
    return _PREAMBLE.pack(MAGIC, version)


def upgrade_frame() -> bytes:
    """The one frame, in the old plaintext framing, that a node sends an old client: an error response whose
    message tells its user to upgrade (an old client prints it as the node's refusal)."""
    body: bytes = msgpack.packb({
        "status": "error",
        "code": UPGRADE_REQUIRED,
        "message": UPGRADE_CLIENT.format(version=PROTOCOL_VERSION),
        "result": None,
    }, use_bin_type=True)
    return _OLD_HEADER.pack(len(body)) + body


class _HandshakeReader:
    """Exact reads during the handshake; what arrives beyond the handshake is kept for the SecureStream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _fill(self, size: int) -> bool:
        """Read until `size` bytes are buffered; False if the peer closed first."""
        while len(self.buffer) < size:
            data = await self.stream.receive_some(_HANDSHAKE_READ)
            if not data:
                return False
            self.buffer += data
        return True

    async def preamble(self) -> int | None:
        """The peer's version, or None as soon as its bytes cannot be a preamble (the plaintext protocol)."""
        while len(self.buffer) < PREAMBLE_SIZE:
            if not MAGIC.startswith(bytes(self.buffer[:len(MAGIC)])):
                return None
            if not await self._fill(len(self.buffer) + 1):
                raise HandshakeFailed(CONNECTION_CLOSED, "the peer closed the connection before the handshake")
        magic, version = _PREAMBLE.unpack_from(self.buffer)
        if magic != MAGIC:
            return None
        del self.buffer[:PREAMBLE_SIZE]
        return int(version)

    async def message(self) -> bytes:
        if not await self._fill(LENGTH.size):
            raise HandshakeFailed(CONNECTION_CLOSED, "the peer closed the connection during the handshake")
        (length,) = LENGTH.unpack_from(self.buffer)
        if length > MAX_HANDSHAKE_MESSAGE:
            raise HandshakeFailed(MESSAGE_TOO_LARGE, f"a handshake message of {length} bytes was announced; "
                                                     f"the limit is {MAX_HANDSHAKE_MESSAGE}")
        if not await self._fill(LENGTH.size + length):
            raise HandshakeFailed(CONNECTION_CLOSED, "the peer closed the connection during the handshake")
        message = bytes(self.buffer[LENGTH.size:LENGTH.size + length])
        del self.buffer[:LENGTH.size + length]
        return message


def _framed(message: bytes) -> bytes:
    return LENGTH.pack(len(message)) + message


async def secure_client(stream: trio.abc.Stream, *, expected: PublicKey | None, identity: Identity | None = None,
                        timeout: float = DEFAULT_TIMEOUT) -> SecureStream:
    """Run the initiator's side of the handshake on `stream` and return the channel.

    `expected` is the node's Ed25519 key the caller trusts (KeyMismatch, naming both fingerprints, if the node
    proves another); None accepts any node and leaves the check to the caller (`remote_key`). `identity`, if
    given, is proven to the node; without it the client is anonymous. Raises HandshakeFailed, KeyMismatch or
    VersionMismatch, each after closing `stream`.
    """
    if identity is not None:
        local = local_static(identity)
        static, payload = local.key_pair, local.payload
    else:
        static, payload = anonymous_static(), b""
    ours = preamble()
    state = HandshakeState(initiator=True, static=static, prologue=ours + ours)
    reader = _HandshakeReader(stream)

    async def handshake() -> PublicKey:
        await stream.send_all(ours + _framed(state.write_message()))
        theirs = await reader.preamble()
        if theirs is None:
            raise VersionMismatch(PROTOCOL_VERSION, PLAINTEXT_NODE)
        if theirs != PROTOCOL_VERSION:
            raise VersionMismatch(PROTOCOL_VERSION, theirs)
        node_payload = state.read_message(await reader.message())
        assert state.remote_static is not None
        node_key = verify_payload(node_payload, state.remote_static, required=True)
        assert node_key is not None
        if expected is not None and node_key != expected:
            raise KeyMismatch(expected, node_key)
        await stream.send_all(_framed(state.write_message(payload)))
        return node_key

    node_key = await _run_handshake(stream, handshake, timeout)
    send, receive = state.split()
    return SecureStream(stream, send, receive, remote_key=node_key, handshake_hash=state.handshake_hash,
                        received=bytes(reader.buffer))


async def secure_server(stream: trio.abc.Stream, *, identity: Identity,
                        timeout: float = DEFAULT_TIMEOUT) -> SecureStream:
    """Run the responder's (node's) side of the handshake on `stream`, proving `identity`, and return the
    channel; its `remote_key` is the client's proven identity or None for an anonymous client. Raises
    HandshakeFailed or VersionMismatch, each after closing `stream` (an old plaintext client is first sent
    `upgrade_frame()`)."""
    local = local_static(identity)
    ours = preamble()
    reader = _HandshakeReader(stream)
    states: list[HandshakeState] = []

    async def handshake() -> PublicKey | None:
        theirs = await reader.preamble()
        if theirs is None:
            await _refuse_plaintext(stream)
            raise VersionMismatch(PROTOCOL_VERSION, PLAINTEXT_CLIENT)
        if theirs != PROTOCOL_VERSION:
            await stream.send_all(ours)
            raise VersionMismatch(PROTOCOL_VERSION, theirs)
        state = HandshakeState(initiator=False, static=local.key_pair, prologue=preamble(theirs) + ours)
        states.append(state)
        if state.read_message(await reader.message()):
            raise HandshakeFailed(BAD_MESSAGE, "the first handshake message must carry no payload")
        await stream.send_all(ours + _framed(state.write_message(local.payload)))
        client_payload = state.read_message(await reader.message())
        assert state.remote_static is not None
        return verify_payload(client_payload, state.remote_static, required=False)

    client_key = await _run_handshake(stream, handshake, timeout)
    send, receive = states[0].split()
    return SecureStream(stream, send, receive, remote_key=client_key, handshake_hash=states[0].handshake_hash,
                        received=bytes(reader.buffer))


async def _run_handshake(stream: trio.abc.Stream, handshake: Callable[[], Awaitable[T]], timeout: float) -> T:
    """`handshake()` under the deadline; every failure closes `stream` and comes out as a ChannelError."""
    try:
        with trio.fail_after(timeout):
            return await handshake()
    except BaseException as exc:
        await trio.aclose_forcefully(stream)
        if isinstance(exc, (HandshakeFailed, KeyMismatch, VersionMismatch)):
            raise
        if isinstance(exc, ChannelError):  # from the Noise core: a message refused
            raise HandshakeFailed(exc.code, exc.message) from None
        if isinstance(exc, trio.TooSlowError):
            raise HandshakeFailed(HANDSHAKE_TIMEOUT, f"the handshake did not complete within {timeout:g} s") from None
        if isinstance(exc, trio.BrokenResourceError):
            raise HandshakeFailed(CONNECTION_CLOSED, "the connection broke during the handshake") from None
        raise


async def _refuse_plaintext(stream: trio.abc.Stream) -> None:
    """Send an old client its upgrade frame, then let it read it: closing with its unread requests still in our
    receive buffer would reset the connection and could destroy the frame before the client reads it."""
    await stream.send_all(upgrade_frame())
    if isinstance(stream, trio.abc.HalfCloseableStream):
        await stream.send_eof()
    with trio.move_on_after(REFUSAL_LINGER):
        drained = 0
        while drained < 64 * 1024 and (data := await stream.receive_some(_HANDSHAKE_READ)):
            drained += len(data)


class SecureStream(trio.abc.HalfCloseableStream):
    """A channel: plaintext in, Noise transport messages on `transport_stream`, plaintext out.

    `remote_key` is the Ed25519 identity the peer proved in the handshake (None: an anonymous client);
    `handshake_hash` identifies the session (both sides hold the same value). One task may send while another
    receives; two tasks sending (or receiving) at once is trio.BusyResourceError, as for any trio stream.
    """

    def __init__(self, transport_stream: trio.abc.Stream, send_cipher: CipherState, receive_cipher: CipherState,
                 *, remote_key: PublicKey | None, handshake_hash: bytes, received: bytes = b"") -> None:
        self.transport_stream = transport_stream
        self.remote_key = remote_key
        self.handshake_hash = handshake_hash
        self._send_cipher = send_cipher
        self._receive_cipher = receive_cipher
        self._raw = bytearray(received)  # ciphertext received and not yet decrypted: at most a message and a read
        self._plain = b""  # plaintext of the last message not yet returned, from _plain_offset on
        self._plain_offset = 0
        self._sending = False
        self._receiving = False
        self._eof_sent = False
        self._eof_received = False
        self._broken = False  # a received message failed: nothing more can be read or sent
        self._send_broken = False  # a send was cut off: nothing more can be sent, but the peer's messages still read
        self._closed = False

    # --- sending ------------------------------------------------------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with self._send_guard():
            if self._eof_sent:
                raise trio.ClosedResourceError("this channel's sending side was closed (send_eof)")
            view = memoryview(data).cast("B")
            if not view:
                await trio.lowlevel.checkpoint()
                return
            parts: list[bytes] = []
            encrypt = self._send_cipher.encrypt_with_ad
            for offset in range(0, len(view), MAX_PLAINTEXT):
                ciphertext = encrypt(b"", bytes(view[offset:offset + MAX_PLAINTEXT]))
                parts.append(LENGTH.pack(len(ciphertext)))
                parts.append(ciphertext)
            await self._transport_send(b"".join(parts))

    async def send_eof(self) -> None:
        """End this direction with an authenticated end-of-stream message (the peer reads b""), then half-close
        the transport if it can."""
        with self._send_guard():
            if self._eof_sent:
                await trio.lowlevel.checkpoint()
                return
            await self._transport_send(self._end_of_stream())
            self._eof_sent = True
            if isinstance(self.transport_stream, trio.abc.HalfCloseableStream):
                await self.transport_stream.send_eof()

    async def wait_send_all_might_not_block(self) -> None:
        with self._send_guard():
            await self.transport_stream.wait_send_all_might_not_block()

    def _end_of_stream(self) -> bytes:
        return LENGTH.pack(TAGLEN) + self._send_cipher.encrypt_with_ad(b"", b"")

    async def _transport_send(self, wire: bytes) -> None:
        try:
            await self.transport_stream.send_all(wire)
        except BaseException:
            # Part of the messages may be on the wire (a cancel, a broken socket): the peer's next message
            # would be out of sequence, so nothing more can be sent. What the peer sent before it hung up (a
            # node's refusal, say) still decrypts in order with the receive cipher, so receiving goes on.
            self._send_broken = True
            raise

    def _send_guard(self) -> _Guard:
        return _Guard(self, sending=True)

    # --- receiving ----------------------------------------------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """The next plaintext (at most `max_bytes`): the next message's, joined with every further message
        already received whole (pipelined answers arrive as many small messages: one call returns them all);
        b"" once the peer ended the stream. ChannelBroken, after closing the transport, for a message that fails
        authentication or a stream cut off without its end-of-stream message."""
        if max_bytes is not None:
            max_bytes = operator.index(max_bytes)  # TypeError for a float, as any trio stream
            if max_bytes < 1:
                raise ValueError("max_bytes must be a positive integer or None")
        with _Guard(self, sending=False):
            # Every call is a checkpoint, taken before anything is consumed: a cancel loses no data.
            await trio.lowlevel.checkpoint()
            if self._plain_offset >= len(self._plain):
                if self._eof_received:
                    return b""
                plaintext = await self._next_message()
                if not plaintext:
                    self._eof_received = True
                    return b""
                self._plain, self._plain_offset = await self._with_buffered(plaintext, max_bytes), 0
            start = self._plain_offset
            end = len(self._plain) if max_bytes is None else min(len(self._plain), start + max_bytes)
            self._plain_offset = end
            if start == 0 and end == len(self._plain):
                return self._plain  # the whole message: no copy
            return self._plain[start:end]

    async def _next_message(self) -> bytes:
        while True:
            try:
                message = self._decrypt_buffered()
            except ChannelError as exc:
                await self._fail(exc)
            if message is not None:
                return message
            data = await self.transport_stream.receive_some(_TRANSPORT_READ)
            if not data:
                where = "inside a message" if self._raw else "without ending the channel (the stream may have been cut)"
                await self._fail(ChannelError(CONNECTION_CLOSED, f"the peer's connection closed {where}"))
            self._raw += data

    async def _with_buffered(self, plaintext: bytes, max_bytes: int | None) -> bytes:
        """`plaintext` joined with the messages after it that are already here whole, up to `max_bytes` (at
        most one whole message's when None); an end-of-stream message among them ends the stream after them."""
        limit = MAX_PLAINTEXT if max_bytes is None else max_bytes
        parts = [plaintext]
        size = len(plaintext)
        while size < limit and not self._eof_received:
            try:
                message = self._decrypt_buffered(room=limit - size)
            except ChannelError as exc:
                await self._fail(exc)
            if message is None:
                break
            if not message:
                self._eof_received = True
                break
            parts.append(message)
            size += len(message)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _decrypt_buffered(self, room: int = MAX_PLAINTEXT) -> bytes | None:
        """The next message in `_raw`, decrypted; None while it has not all arrived, or if its plaintext is over
        `room` bytes (it stays for the next read). ChannelError if it fails."""
        raw = self._raw
        if len(raw) < LENGTH.size:
            return None
        (length,) = LENGTH.unpack_from(raw)
        if length < TAGLEN:
            raise ChannelError(BAD_MESSAGE, f"a transport message of {length} bytes is shorter than its "
                                            "authentication tag")
        end = LENGTH.size + length
        if len(raw) < end or length - TAGLEN > room:
            return None
        ciphertext = bytes(memoryview(raw)[LENGTH.size:end])
        del raw[:end]
        return self._receive_cipher.decrypt_with_ad(b"", ciphertext)

    async def _fail(self, exc: ChannelError) -> NoReturn:
        self._broken = True
        self._raw = bytearray()
        await trio.aclose_forcefully(self.transport_stream)
        raise ChannelBroken(exc.code, exc.message)

    # --- closing ------------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Send the end-of-stream message (unless sent, broken, or another task is mid-send; at most
        CLOSE_TIMEOUT), then close the transport."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            if not (self._eof_sent or self._broken or self._send_broken or self._sending):
                with trio.move_on_after(CLOSE_TIMEOUT):
                    try:
                        await self.transport_stream.send_all(self._end_of_stream())
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
                self._eof_sent = True
        finally:
            self._raw = bytearray()
            await self.transport_stream.aclose()


class _Guard:
    """One sender and one receiver at a time, and no use after close or breakage: trio's stream contract."""

    __slots__ = ("sending", "stream")

    def __init__(self, stream: SecureStream, *, sending: bool) -> None:
        self.stream = stream
        self.sending = sending

    def __enter__(self) -> None:
        stream = self.stream
        if stream._closed:
            raise trio.ClosedResourceError("this channel is closed")
        if stream._broken:
            raise trio.BrokenResourceError("this channel is broken: a message was refused or a send was cut off")
        if self.sending:
            if stream._send_broken:
                raise trio.BrokenResourceError("this channel's sending side is broken: a send was cut off")
            if stream._sending:
                raise trio.BusyResourceError("another task is sending on this channel")
            stream._sending = True
        else:
            if stream._receiving:
                raise trio.BusyResourceError("another task is receiving on this channel")
            stream._receiving = True

    def __exit__(self, *exc_info: object) -> None:
        if self.sending:
            self.stream._sending = False
        else:
            self.stream._receiving = False
