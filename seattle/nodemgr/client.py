"""The client side of the node manager protocol, shared by the CLI, the advertiser and the tests.

    async with await NodeClient.connect("127.0.0.1", port, identity=me) as node:
        vessels = await node.call("GetVessels")
        await node.call("AddFileToVessel", vessel="v1", filename="hello.r2py", data=b"log('hi')\\n")
        responses = await node.call_many([("ListFilesInVessel", {"vessel": "v1"}), ...])   # pipelined

Every connection is a secure channel (`seattle.channel`, docs/nodemgr-protocol.md): the client runs the
Noise handshake before any frame, and the node proves its Ed25519 identity in it, so `node_key` is the key
that answered, and every request is signed for that key (a request meant for this node cannot be replayed to
another). The key the handshake must prove is, in order: `node_key` (the vessel record's key, `--node-key`),
else the pin for the address in `known_nodes` (`seattle.nodemgr.known_nodes`; a first contact pins what it
finds), else none (a caller that passes neither trusts whatever key answers, for this connection only). A
different key fails with `NodeKeyMismatch`, naming both fingerprints. With `identity=None` requests go
unsigned, which only public calls accept. One connection carries every call; `call_many` pipelines a batch
(sending and reading at the same time, so a long batch cannot deadlock on full socket buffers).

A node is a stranger's computer too: its answers are decoded within `boundedmsgpack.RESPONSE_LIMITS` and
`max_frame` bytes, so a hostile node costs the researcher (browse, every fan-out command) bounded memory and
work per answer, and an answer over a limit fails that node's call, not the command.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import trio

from seattle.boundedmsgpack import RESPONSE_LIMITS
from seattle.channel.stream import ChannelError, KeyMismatch, VersionMismatch, secure_client
from seattle.errors import SeattleError
from seattle.keys import Identity, PublicKey
from seattle.nodemgr.frames import DEFAULT_MAX_FRAME, FrameDecoder, FrameError, encode_frame
from seattle.nodemgr.known_nodes import KnownNodes, Pin
from seattle.nodemgr.signing import (
    DEFAULT_LIFETIME,
    ERROR,
    NONCE_SIZE,
    TOO_MANY_CONNECTIONS,
    MalformedResponse,
    Response,
    parse_response,
    public_request,
    sign_request,
)

DEFAULT_TIMEOUT = 30.0
_RECEIVE_SIZE = 64 * 1024
#: The most of a node's first bytes kept while the handshake runs: a refusal frame (`_Opening`) is smaller.
_REFUSAL_LIMIT = 1024
#: Request bytes sent ahead of the answers read (at least one request is always in flight). The node reads
#: a few requests ahead and caps its socket buffers; a client that pushed a whole batch at once would fill
#: both directions' buffers and wait on the node's write deadline instead of on its answers.
_MAX_AHEAD_BYTES = 128 * 1024

CallArgs = dict[str, Any]


class NodeClientError(Exception):
    """The conversation with the node failed (not a call the node refused: that is CallFailed)."""


class NodeKeyMismatch(NodeClientError):
    """The node at an address proved a different key than the one expected: someone else answers there."""

    def __init__(self, address: str, expected: PublicKey, actual: PublicKey, pin: Pin | None,
                 known_nodes: KnownNodes | None) -> None:
        if pin is not None and known_nodes is not None:
            source = f"pinned on line {pin.line} of {known_nodes.path}"
            advice = (f"If you know the node was reinstalled with a new key, remove line {pin.line} of "
                      f"{known_nodes.path} (`seattle known-nodes forget {address}`) and connect again.")
        else:
            source = "given (--node-key, or the key in the vessel's record)"
            advice = "Check the key you expect, or the address."
        super().__init__(
            f"THE NODE AT {address} PROVED A DIFFERENT KEY: expected fingerprint {expected.fingerprint()} "
            f"({source}), but it answered with {actual.fingerprint()}. Someone may be intercepting the connection "
            f"(a man in the middle), or another machine now has that address; nothing was sent to it. {advice}")
        self.expected = expected
        self.actual = actual


class CallFailed(NodeClientError):
    """The node answered a call with status error: `code` for programs, `message` for people."""

    def __init__(self, call: str, code: str, message: str) -> None:
        super().__init__(f"{call} failed: {code}: {message}")
        self.call = call
        self.code = code
        self.message = message


class NodeClient:
    """One connection to one node manager. Not for sharing between tasks without `call`'s own lock."""

    def __init__(self, stream: trio.abc.Stream, identity: Identity | None, node_key: PublicKey, *,
                 timeout: float, lifetime: float, max_frame: int) -> None:
        """Use `connect`."""
        self._stream = stream
        self.identity = identity
        #: The node's identity: proven in the channel's handshake (or, benchmarks only, taken on trust).
        self.node_key = node_key
        self.timeout = timeout
        self.lifetime = lifetime
        self.max_frame = max_frame
        self._decoder = FrameDecoder(max_frame, limits=RESPONSE_LIMITS)
        self._responses: list[object] = []
        #: Set (and replaced) whenever answers arrive: the sender waits on it while it is too far ahead.
        self._answered = trio.Event()
        self._lock = trio.Lock()
        self._broken: str | None = None

    @classmethod
    async def connect(cls, host: str, port: int, identity: Identity | None = None, *,
                      node_key: PublicKey | None = None, known_nodes: KnownNodes | None = None,
                      timeout: float = DEFAULT_TIMEOUT, lifetime: float = DEFAULT_LIFETIME,
                      max_frame: int = DEFAULT_MAX_FRAME,
                      plaintext_benchmark_only: bool = False) -> NodeClient:
        """Connect and complete the secure channel's handshake (see the module docstring for the expected key).

        NodeKeyMismatch if the node proves another key than expected; NodeClientError for every other failure.
        `plaintext_benchmark_only` skips the channel, for bench/bench_nodemgr.py's comparison with the
        plaintext protocol alone: it needs `node_key` and a server started with the same flag, and nothing
        else (no command, no configuration) may pass it.
        """
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            pin = known_nodes.expected(host, port) if node_key is None and known_nodes is not None else None
        except SeattleError as exc:  # a damaged file: this node's call fails, saying which file and why
            raise NodeClientError(str(exc)) from None
        expected = node_key if node_key is not None else (pin.key if pin is not None else None)
        try:
            with trio.fail_after(timeout):
                tcp = await trio.open_tcp_stream(host, port)
        except (OSError, trio.TooSlowError) as exc:
            raise NodeClientError(f"cannot connect to the node manager at {address}: "
                                  f"{exc or 'timed out'}") from None
        if plaintext_benchmark_only:
            if node_key is None:
                await tcp.aclose()
                raise ValueError("plaintext_benchmark_only needs the node_key")
            return cls(tcp, identity, node_key, timeout=timeout, lifetime=lifetime, max_frame=max_frame)
        opening = _Opening(tcp)
        try:
            # The client proves no identity in the handshake: each request carries its own signature.
            stream = await secure_client(opening, expected=expected, timeout=timeout)
        except KeyMismatch as exc:
            await trio.aclose_forcefully(tcp)
            raise NodeKeyMismatch(address, exc.expected, exc.actual, pin, known_nodes) from None
        except VersionMismatch as exc:
            await trio.aclose_forcefully(tcp)
            refusal = opening.refusal()
            if refusal is not None:
                raise NodeClientError(f"the node manager at {address} refused the connection: {refusal.code}: "
                                      f"{refusal.message}") from None
            raise NodeClientError(f"the node manager at {address} speaks another protocol version: {exc}") from None
        except (ChannelError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            await trio.aclose_forcefully(tcp)
            raise NodeClientError(f"no secure channel to the node manager at {address}: "
                                  f"{exc or type(exc).__name__}") from None
        except BaseException:
            await trio.aclose_forcefully(tcp)
            raise
        stream.transport_stream = tcp  # the handshake is over: nothing more to keep
        proven = stream.remote_key
        if proven is None:  # the responder always proves its key; a channel that says otherwise is broken
            await trio.aclose_forcefully(stream)
            raise NodeClientError(f"the node manager at {address} proved no key in the handshake")
        if expected is None and known_nodes is not None:
            try:
                known_nodes.pin(host, port, proven)
            except SeattleError as exc:
                await trio.aclose_forcefully(stream)
                raise NodeClientError(str(exc)) from None
        return cls(stream, identity, proven, timeout=timeout, lifetime=lifetime, max_frame=max_frame)

    async def __aenter__(self) -> NodeClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._stream.aclose()

    # -- calls --------------------------------------------------------------------------------------------

    async def call(self, name: str, **args: Any) -> Any:
        """Make one call; its result on success (or warning), CallFailed on error."""
        (response,) = await self.call_many([(name, args)])
        if response.status == ERROR:
            raise CallFailed(name, response.code, response.message)
        return response.result

    async def request(self, name: str, **args: Any) -> Response:
        """Make one call and return the whole response, errors included (for code that branches on codes)."""
        (response,) = await self.call_many([(name, args)])
        return response

    async def call_many(self, calls: Sequence[tuple[str, CallArgs]]) -> list[Response]:
        """Pipeline `calls`: send them all, read the responses (in the same order); errors are not raised."""
        frames = [self.encode(name, args) for name, args in calls]
        return await self.exchange(frames)

    def encode(self, name: str, args: CallArgs | list[Any]) -> bytes:
        """The frame of one request: signed for the node's key if the client has an identity."""
        if self.identity is not None:
            message: object = sign_request(self.identity, self.node_key, name, args, now=time.time(),
                                           nonce=os.urandom(NONCE_SIZE), lifetime=self.lifetime)
        else:
            message = public_request(name, args)
        try:
            return encode_frame(message, self.max_frame)
        except FrameError as exc:
            raise NodeClientError(f"{name} request too large to send: {exc.message}") from None

    async def exchange(self, frames: Sequence[bytes]) -> list[Response]:
        """Send already encoded request frames and read one response per frame (the raw pipeline)."""
        async with self._lock:
            if self._broken is not None:
                raise NodeClientError(f"the connection is unusable: {self._broken}")
            failure: Exception | None = None
            try:
                with trio.fail_after(self.timeout):
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._send_all, frames)
                        try:
                            messages = await self._receive(len(frames))
                        except (trio.BrokenResourceError, trio.ClosedResourceError, FrameError) as exc:
                            failure = exc
                            nursery.cancel_scope.cancel()
            except trio.TooSlowError:
                self._broken = f"no response within {self.timeout} s"
                raise NodeClientError(f"the node did not answer within {self.timeout} s") from None
            if failure is not None:
                self._broken = str(failure) or type(failure).__name__
                raise NodeClientError(f"the connection to the node failed: {self._broken}")
        try:
            return [parse_response(message) for message in messages]
        except MalformedResponse as exc:
            raise NodeClientError(f"the node sent an invalid response: {exc}") from None

    async def _send_all(self, frames: Sequence[bytes]) -> None:
        # A node that hangs up mid-batch (a refusal, a frame error) has usually answered first: the reader
        # gets that answer or the end of the stream, which says more than a broken pipe here would.
        # Frames that fit in the allowance go out in one write: one channel message per 64 KiB rather than
        # one per frame, which is most of the channel's cost for small pipelined requests.
        ahead: list[int] = []  # sizes of the frames sent and not yet answered, oldest first
        index = 0
        try:
            while index < len(frames):
                while True:
                    del ahead[:len(ahead) - (index - len(self._responses))]  # drop what was answered
                    if not ahead or sum(ahead) + len(frames[index]) <= _MAX_AHEAD_BYTES:
                        break
                    await self._answered.wait()
                end, total = index + 1, sum(ahead) + len(frames[index])
                while end < len(frames) and total + len(frames[end]) <= _MAX_AHEAD_BYTES:
                    total += len(frames[end])
                    end += 1
                batch = frames[index:end]
                await self._stream.send_all(batch[0] if len(batch) == 1 else b"".join(batch))
                ahead.extend(len(frame) for frame in batch)
                index = end
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def _receive(self, count: int) -> list[object]:
        while len(self._responses) < count:
            data = await self._stream.receive_some(_RECEIVE_SIZE)
            if not data:
                self._decoder.end_of_stream()
                got = len(self._responses)
                raise trio.BrokenResourceError(
                    f"the node closed the connection after {got} of {count} responses")
            self._responses.extend(self._decoder.feed(data))
            self._answered.set()
            self._answered = trio.Event()
        if len(self._responses) > count:
            # One answer per request, and every earlier batch was read whole: more is a node lying about
            # which answer belongs to which request (or filling the researcher's memory with unasked answers).
            raise trio.BrokenResourceError(
                f"the node sent {len(self._responses) - count} responses nobody asked for")
        out, self._responses = self._responses, []
        return out


class _Opening(trio.abc.HalfCloseableStream):
    """The TCP stream under a client's handshake, keeping the first bytes the node sends (`_REFUSAL_LIMIT`).

    A node over a connection budget answers at once with one plaintext error frame, `too_many_connections`,
    instead of its preamble (refusing costs it no cryptography; docs/nodemgr-protocol.md); the channel can only
    say that those bytes are not a preamble. `refusal` reads them as that frame, so the researcher is told the
    node is full rather than that it speaks an old protocol. Once the handshake is done the channel is given the
    TCP stream itself, so this costs nothing afterwards."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.first = bytearray()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.stream.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.stream.receive_some(max_bytes)
        if len(self.first) < _REFUSAL_LIMIT:
            self.first += data[:_REFUSAL_LIMIT - len(self.first)]
        return data

    async def aclose(self) -> None:
        await self.stream.aclose()

    def refusal(self) -> Response | None:
        """The node's `too_many_connections` answer, if that is what it sent first; else None."""
        try:
            messages = FrameDecoder(_REFUSAL_LIMIT, limits=RESPONSE_LIMITS).feed(bytes(self.first), 1)
            response = parse_response(messages[0]) if messages else None
        except (FrameError, MalformedResponse):
            return None
        return response if response is not None and response.code == TOO_MANY_CONNECTIONS else None
