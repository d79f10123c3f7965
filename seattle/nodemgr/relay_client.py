"""Both clients of a relay (`seattle.nodemgr.relay_service` is the relay): the researcher's circuit, and the
NATed node's reservations.

    stream = await open_circuit(relay, node_key)                  # researcher: a spliced stream to the node
    client = await NodeClient.over(stream, identity, node_key)    # the node's own channel, end to end

    manager = RelayManager(identity, server.serve_stream, candidates, on_change=republish)
    nursery.start_soon(manager.run)                               # NATed node: two reservations, kept

A NATed node holds `wanted` (2) reservations, on the relays that answer a handshake fastest among the
candidates it is given (overlay contacts). Each reservation is a control connection proving the node's key;
the node pings it every `ping_interval` (so the relay and the NATs on the way keep it) and renews it
`renew_margin` before its voucher expires. When a relay dies or refuses, the manager picks another within
`retry_interval` and tells `on_change`, so the node's records name live relays only; a relay that refused
is not asked again for `backoff` seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from seattle.boundedmsgpack import RESPONSE_LIMITS
from seattle.channel.stream import ChannelError, SecureStream, secure_client
from seattle.keys import Identity, PublicKey
from seattle.nodemgr.client import NodeClientError
from seattle.nodemgr.frames import HEADER, FrameDecoder, FrameError, decode_body, encode_frame
from seattle.nodemgr.relay import CALL, CIRCUIT_ID_SIZE, KINDS
from seattle.nodemgr.relay_service import ACCEPT, CONNECT, CONTROL_FRAME, PING, RESERVE, format_peer
from seattle.nodemgr.signing import ERROR, MalformedResponse, Response, parse_response, public_request
from seattle.vouchers import VOUCHER_SIZE

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
PING_INTERVAL = 25.0
RENEW_MARGIN = 15 * 60.0
RETRY_INTERVAL = 5.0
BACKOFF = 3600.0
#: Relays held at once, as libp2p's AutoRelay and the issue ask: one may die without the node going dark.
WANTED_RELAYS = 2
#: Candidates probed per round (their handshake time is the latency that ranks them).
MAX_PROBES = 8
#: Circuits the node opens at once at its relays' word (a relay's notices are bounded by its own caps; a
#: lying relay cannot make the node open more).
MAX_ACCEPTING = 16


class RelayError(NodeClientError):
    """A relay refused (`code`, one of `seattle.nodemgr.relay`'s) or broke its protocol (`code` "")."""

    def __init__(self, relay: str, code: str, message: str) -> None:
        super().__init__(f"the relay at {relay} refused: {code}: {message}" if code else
                         f"the relay at {relay}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, order=True)
class RelayAddress:
    """A relay: where it listens and the node key it proves."""

    host: str
    port: int
    key: PublicKey

    @property
    def text(self) -> str:
        return format_peer(self.host, self.port)


@dataclass(frozen=True)
class Grant:
    """A reservation as the relay granted it."""

    relay: RelayAddress
    voucher: bytes
    expires: float
    #: "IP:PORT" the relay saw the node at (its NAT's public side): what hole punching offers a researcher.
    observed: str


async def _connect(host: str, port: int, expected: PublicKey | None, identity: Identity | None,
                   timeout: float) -> SecureStream:
    where = format_peer(host, port)
    try:
        with trio.fail_after(timeout):
            tcp = await trio.open_tcp_stream(host, port)
    except (OSError, trio.TooSlowError) as exc:
        raise NodeClientError(f"cannot connect to the relay at {where}: {exc or 'timed out'}") from exc
    try:
        return await secure_client(tcp, expected=expected, identity=identity, timeout=timeout)
    except (ChannelError, trio.BrokenResourceError, OSError) as exc:
        raise NodeClientError(f"no secure channel to the relay at {where}: {exc}") from exc


async def _read_frame(stream: trio.abc.Stream, where: str) -> object:
    """The relay's one answer, read to its last byte and not one byte further: on a circuit the bytes after it
    are the far end's, for the channel run over the circuit (within the caller's deadline); RelayError if the
    relay hangs up or sends a bad frame."""
    (length,) = HEADER.unpack(await _receive_exactly(stream, HEADER.size, where))
    if length > CONTROL_FRAME:
        raise RelayError(where, "", f"the relay sent a bad frame: frame of {length} bytes announced; the limit "
                                    f"is {CONTROL_FRAME}")
    try:
        return decode_body(await _receive_exactly(stream, length, where), RESPONSE_LIMITS)
    except FrameError as exc:
        raise RelayError(where, "", f"the relay sent a bad frame: {exc.message}") from None


async def _receive_exactly(stream: trio.abc.Stream, size: int, where: str) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await stream.receive_some(size - len(data))
        if not chunk:
            raise RelayError(where, "", "the relay closed the connection")
        data += chunk
    return bytes(data)


def _response(message: object, where: str) -> Response:
    try:
        response = parse_response(message)
    except MalformedResponse as exc:
        raise RelayError(where, "", f"the relay sent an invalid answer: {exc}") from None
    if response.status == ERROR:
        raise RelayError(where, response.code, response.message)
    return response


async def _ask(relay: RelayAddress, identity: Identity | None, call: str, args: dict[str, Any],
               timeout: float) -> tuple[SecureStream, Response]:
    """A fresh channel to `relay` and its answer to one relay request."""
    stream = await _connect(relay.host, relay.port, relay.key, identity, timeout)
    try:
        with trio.fail_after(timeout):
            await stream.send_all(encode_frame(public_request(call, args)))
            response = _response(await _read_frame(stream, relay.text), relay.text)
    except trio.TooSlowError:
        await trio.aclose_forcefully(stream)
        raise RelayError(relay.text, "", f"no answer within {timeout:g} s") from None
    except (RelayError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        await trio.aclose_forcefully(stream)
        if isinstance(exc, RelayError):
            raise
        raise RelayError(relay.text, "", f"the connection broke: {exc}") from None
    return stream, response


async def open_circuit(relay: RelayAddress, node: PublicKey, *, kind: str = CALL,
                       timeout: float = DEFAULT_TIMEOUT) -> SecureStream:
    """A circuit through `relay` to `node`: a stream whose other end is the node's node manager (run the
    node's channel on it, `NodeClient.over`). RelayError if the relay refuses, with its code."""
    stream, _ = await _ask(relay, None, CONNECT, {"node": node.raw, "kind": kind}, timeout)
    return stream


# --- the NATed node's side -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Incoming:
    """A circuit the relay told the node of: who asked ("IP:PORT" as the relay saw them), which kind, and the
    grant of the relay it comes through (whose `observed` is the node's public side, for hole punching)."""

    peer: str
    kind: str
    grant: Grant


Serve = Callable[[trio.abc.Stream, Incoming], Awaitable[None]]


def _grant(relay: RelayAddress, response: Response) -> Grant:
    result = response.result
    try:
        voucher, expires, observed = result["voucher"], result["expires"], result["observed"]
        if not isinstance(voucher, bytes) or len(voucher) != VOUCHER_SIZE or not isinstance(observed, str):
            raise TypeError("voucher or observed address of the wrong shape")
        if len(observed) > 64 or not isinstance(expires, int) or isinstance(expires, bool):
            raise TypeError("observed address or expiry of the wrong shape")
    except (TypeError, KeyError) as exc:
        raise RelayError(relay.text, "", f"the relay's grant is unusable ({exc})") from None
    return Grant(relay, voucher, float(expires), observed)


async def hold_reservation(relay: RelayAddress, identity: Identity, serve: Serve,
                           on_grant: Callable[[Grant], None], *, ping_interval: float = PING_INTERVAL,
                           renew_margin: float = RENEW_MARGIN, timeout: float = DEFAULT_TIMEOUT,
                           clock: Callable[[], float] = time.time,
                           task_status: trio.TaskStatus[Grant] = trio.TASK_STATUS_IGNORED) -> None:
    """Reserve on `relay` and keep the reservation until the relay goes away (returns) or refuses (RelayError);
    `on_grant` sees every grant (the first and each renewal); each circuit the relay announces is opened and
    handed to `serve(stream, Incoming(...))`."""
    stream, response = await _ask(relay, identity, RESERVE, {}, timeout)
    grant = _grant(relay, response)
    on_grant(grant)
    task_status.started(grant)
    answers_send, answers = trio.open_memory_channel[object](4)
    accepting = trio.CapacityLimiter(MAX_ACCEPTING)
    try:
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                decoder = FrameDecoder(CONTROL_FRAME, limits=RESPONSE_LIMITS)
                while True:
                    data = await stream.receive_some(CONTROL_FRAME)
                    if not data:
                        raise RelayError(relay.text, "", "the relay closed the reservation")
                    for message in decoder.feed(data):
                        if isinstance(message, dict) and message.get("notice") == "circuit":
                            circuit, peer = message.get("circuit"), message.get("from")
                            kind = message.get("kind")
                            if (isinstance(circuit, bytes) and len(circuit) == CIRCUIT_ID_SIZE
                                    and isinstance(peer, str) and len(peer) <= 64 and kind in KINDS
                                    and accepting.available_tokens > 0):
                                assert isinstance(kind, str)
                                nursery.start_soon(_accept, relay, identity, circuit, Incoming(peer, kind, grant),
                                                   serve, timeout, accepting)
                        else:
                            answers_send.send_nowait(message)  # more answers than asked: WouldBlock ends it

            async def keep() -> None:
                nonlocal grant
                while True:
                    renew_at = grant.expires - renew_margin
                    await trio.sleep(max(0.0, min(ping_interval, renew_at - clock())))
                    call = RESERVE if clock() >= renew_at else PING
                    with trio.fail_after(timeout):
                        await stream.send_all(encode_frame(public_request(call, {})))
                        answer = _response(await answers.receive(), relay.text)
                    if call == RESERVE:
                        grant = _grant(relay, answer)
                        on_grant(grant)

            nursery.start_soon(read)
            await keep()
    except BaseExceptionGroup as group:
        ended, rest = group.split((RelayError, trio.BrokenResourceError, trio.ClosedResourceError,
                                   trio.TooSlowError, trio.WouldBlock, FrameError))
        if rest is not None or ended is None:
            raise
        first = _leaves(ended)[0]
        if isinstance(first, RelayError) and first.code:
            raise first from None  # a refusal (of a renewal): the manager backs off this relay
        log.info("reservation on relay %s ended: %s", relay.text, first)
    finally:
        await trio.aclose_forcefully(stream)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


async def _accept(relay: RelayAddress, identity: Identity, circuit: bytes, incoming: Incoming, serve: Serve,
                  timeout: float, accepting: trio.CapacityLimiter) -> None:
    async with accepting:
        try:
            stream, _ = await _ask(relay, identity, ACCEPT, {"circuit": circuit}, timeout)
        except NodeClientError as exc:
            log.info("circuit through %s not opened: %s", relay.text, exc)
            return
        await serve(stream, incoming)


Candidates = Callable[[], Awaitable[Sequence[tuple[str, int]]]]


@dataclass(frozen=True)
class RelayTimers:
    """The NATed node's timers (parameters, so tests can make a dead relay's replacement fast)."""

    wanted: int = WANTED_RELAYS
    ping_interval: float = PING_INTERVAL
    renew_margin: float = RENEW_MARGIN
    retry_interval: float = RETRY_INTERVAL
    backoff: float = BACKOFF
    timeout: float = DEFAULT_TIMEOUT


class RelayManager:
    """The NATed node's reservations (module docstring): `grants` are the live ones, by relay."""

    def __init__(self, identity: Identity, serve: Serve, candidates: Candidates, *,
                 on_change: Callable[[], None] = lambda: None, timers: RelayTimers | None = None,
                 needed: Callable[[], bool] = lambda: True, clock: Callable[[], float] = time.time) -> None:
        """`needed()` says whether the node needs relays now (it cannot be dialled); when it stops needing
        them, the reservations are given up."""
        self.identity = identity
        self.needed = needed
        self.serve = serve
        self.candidates = candidates
        self.on_change = on_change
        timers = timers or RelayTimers()
        self.wanted = timers.wanted
        self.ping_interval = timers.ping_interval
        self.renew_margin = timers.renew_margin
        self.retry_interval = timers.retry_interval
        self.backoff = timers.backoff
        self.timeout = timers.timeout
        self.clock = clock
        self.grants: dict[tuple[str, int], Grant] = {}
        #: Relays not to ask before the time given (they refused, or just died), by address.
        self.avoid: dict[tuple[str, int], float] = {}
        self._holding: dict[tuple[str, int], trio.CancelScope] = {}
        self._wake = trio.Event()

    def entries(self) -> list[tuple[str, bytes]]:
        """(relay "IP:PORT", voucher) of each live reservation, for the node's records."""
        return [(grant.relay.text, grant.voucher) for _, grant in sorted(self.grants.items())]

    async def run(self) -> None:
        """Keep `wanted` reservations until cancelled."""
        async with trio.open_nursery() as nursery:
            while True:
                self._wake = trio.Event()
                if not self.needed():
                    for scope in self._holding.values():
                        scope.cancel()
                elif (missing := self.wanted - len(self._holding)) > 0:
                    for relay in await self._choose(missing):
                        scope = self._holding[(relay.host, relay.port)] = trio.CancelScope()
                        nursery.start_soon(self._hold, relay, scope)
                # Woken at once when a reservation ends; otherwise `needed()` is read again this often.
                with trio.move_on_after(self.retry_interval):
                    await self._wake.wait()

    async def _choose(self, count: int) -> list[RelayAddress]:
        """The `count` candidates that complete a handshake fastest (not held, not avoided)."""
        now = self.clock()
        for address, until in list(self.avoid.items()):
            if until <= now:
                del self.avoid[address]
        try:
            offered = list(await self.candidates())
        except Exception as exc:  # a candidate source that failed: retry later, the node keeps running
            log.warning("no relay candidates: %s", exc)
            return []
        fresh = [c for c in dict.fromkeys(offered) if c not in self._holding and c not in self.avoid][:MAX_PROBES]
        timed: list[tuple[float, RelayAddress]] = []

        async def probe(host: str, port: int) -> None:
            started = trio.current_time()
            try:
                with trio.fail_after(self.timeout):
                    stream = await _connect(host, port, None, None, self.timeout)
            except (NodeClientError, trio.TooSlowError):
                self.avoid[(host, port)] = self.clock() + self.retry_interval
                return
            elapsed = trio.current_time() - started
            key = stream.remote_key
            await trio.aclose_forcefully(stream)
            if key is not None:
                timed.append((elapsed, RelayAddress(host, port, key)))

        async with trio.open_nursery() as nursery:
            for host, port in fresh:
                nursery.start_soon(probe, host, port)
        return [relay for _, relay in sorted(timed)[:count]]

    async def _hold(self, relay: RelayAddress, scope: trio.CancelScope) -> None:
        address = (relay.host, relay.port)

        def granted(grant: Grant) -> None:
            self.grants[address] = grant
            self.on_change()

        try:
            with scope:
                await hold_reservation(relay, self.identity, self.serve, granted, ping_interval=self.ping_interval,
                                       renew_margin=self.renew_margin, timeout=self.timeout, clock=self.clock)
            self.avoid[address] = self.clock() + self.retry_interval
        except RelayError as exc:
            log.info("relay %s: %s", relay.text, exc)
            self.avoid[address] = self.clock() + (self.backoff if exc.code else self.retry_interval)
        except NodeClientError as exc:
            log.info("relay %s unreachable: %s", relay.text, exc)
            self.avoid[address] = self.clock() + self.retry_interval
        finally:
            self._holding.pop(address, None)
            if self.grants.pop(address, None) is not None:
                self.on_change()
            self._wake.set()

