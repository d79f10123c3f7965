"""The relay on a public node manager: reservations' control connections and spliced circuits (trio).

`NodeServer` hands a connection over when its first frame is a relay request (`is_relay_request`), after the
channel's handshake, so the relay knows the proven key of whoever asks. Three requests, each a public request
map in the node manager's framing (docs/relay.md has the bytes):

    RelayReserve {}                          a NATed node (its key proven in the handshake) asks for a
                                             reservation; the answer carries the relay's voucher, and the
                                             connection stays open as the reservation's control connection
    RelayConnect {"node": key, "kind": k}    a researcher asks for a circuit to `node` (coordination or call)
    RelayAccept {"circuit": id}              the NATed node opens its side of a circuit it was told of

On the control connection the node sends RelayPing {} (keep-alive, answered) and RelayReserve {} (renewal,
answered with a fresh voucher); the relay sends, unasked, {"notice": "circuit", "circuit": id, "from":
"IP:PORT", "kind": k} for each circuit asked for. The relay's answers are the node manager's response maps.
When both ends of a circuit are there, each gets an ok answer and from then on the relay copies bytes between
the two channels: the researcher's own channel to the node runs inside (secure_client with the node's key),
so the relay sees ciphertext only. A circuit ends at its byte budget (each way), its time budget, or when
either end closes; the donor's rate cap, if any, paces all circuits together.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import trio

from seattle.budgets import Source, source_of
from seattle.keys import PublicKey
from seattle.nodemgr.frames import FrameDecoder, FrameError, encode_frame
from seattle.nodemgr.relay import (
    BAD_REQUEST,
    Circuit,
    RelayCore,
    RelayRefused,
    Reservation,
)
from seattle.nodemgr.signing import error, ok

log = logging.getLogger(__name__)

RESERVE = "RelayReserve"
CONNECT = "RelayConnect"
ACCEPT = "RelayAccept"
PING = "RelayPing"
RELAY_CALLS = frozenset({RESERVE, CONNECT, ACCEPT})
#: Frames on a control connection are tiny: a request map each way.
CONTROL_FRAME = 1024
#: The relay tells the node of circuits through a queue of this many notices (more waiting: refused).
_NOTICE_QUEUE = 32
_PUMP_READ = 64 * 1024
CIRCUIT_EXHAUSTED = "relay_circuit_exhausted"


def is_relay_request(message: object) -> TypeGuard[dict[str, Any]]:
    """Whether a decoded first frame asks the relay (an unsigned map naming a relay call)."""
    return isinstance(message, dict) and message.get("call") in RELAY_CALLS


@dataclass(eq=False)
class _Pending:
    """A circuit waiting for the node's side."""

    circuit: Circuit
    arrived: trio.Event = field(default_factory=trio.Event)
    node_stream: trio.abc.Stream | None = None
    done: trio.Event = field(default_factory=trio.Event)


class RelayService:
    """The relay's connections; its rules are `core`'s. `stats` counts what was relayed and refused."""

    def __init__(self, core: RelayCore, clock: Callable[[], float] = time.time) -> None:
        self.core = core
        self.clock = clock
        self.stats: Counter[str] = Counter()
        self._controls: dict[PublicKey, tuple[Reservation, trio.MemorySendChannel[dict[str, Any]],
                                              trio.CancelScope]] = {}
        self._pending: dict[bytes, _Pending] = {}
        self._rate_tokens = float(core.limits.rate or 0)
        self._rate_updated = 0.0

    async def handle(self, stream: trio.abc.Stream, message: dict[str, Any], peer: str, remote_key: PublicKey | None,
                     protect: Callable[[], None]) -> None:
        """Serve a connection whose first frame was `message` (a relay request) until its role ends. `peer`
        is "IP:PORT" as the relay sees it; `protect()` keeps the connection from being evicted as a stranger
        once the relay has taken it on (bounded by the relay's own caps)."""
        call, args = message.get("call"), message.get("args")
        try:
            if not isinstance(args, dict):
                raise RelayRefused(BAD_REQUEST, "a relay request's args are a map")
            if call == RESERVE:
                await self._reserve(stream, peer, remote_key, protect)
            elif call == CONNECT:
                await self._connect(stream, args, peer, protect)
            else:
                await self._accept(stream, args, remote_key, protect)
        except RelayRefused as exc:
            self.stats[f"refused_{exc.code}"] += 1
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
                with trio.fail_after(self.core.limits.accept_timeout):
                    await stream.send_all(encode_frame(error(exc.code, exc.message)))

    # -- reservations -----------------------------------------------------------------------------------

    async def _reserve(self, stream: trio.abc.Stream, peer: str, node: PublicKey | None,
                       protect: Callable[[], None]) -> None:
        reservation, voucher = self.core.reserve(node, _source(peer), self.clock())
        self.stats["reservations"] += 1
        protect()
        held = self._controls.pop(reservation.node, None)
        if held is not None:  # the node reserved again from a new connection: the old one is done
            held[2].cancel()
        send, receive = trio.open_memory_channel[dict[str, Any]](_NOTICE_QUEUE)
        scope = trio.CancelScope()
        self._controls[reservation.node] = (reservation, send, scope)
        send.send_nowait(ok(_grant(reservation, voucher, peer)))
        try:
            with scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_control, stream, receive)
                    await self._read_control(stream, reservation, peer, send, scope)
                    send.close()  # the writer hands over what is queued (a refusal), then ends
        finally:
            current = self._controls.get(reservation.node)
            if current is not None and current[2] is scope:
                del self._controls[reservation.node]
                self.core.release(current[0])

    async def _write_control(self, stream: trio.abc.Stream, receive: trio.MemoryReceiveChannel[dict[str, Any]]) -> None:
        async for frame in receive:
            with trio.fail_after(self.core.limits.control_idle):
                await stream.send_all(encode_frame(frame, CONTROL_FRAME))

    async def _read_control(self, stream: trio.abc.Stream, reservation: Reservation, peer: str,
                            send: trio.MemorySendChannel[dict[str, Any]], scope: trio.CancelScope) -> None:
        decoder = FrameDecoder(CONTROL_FRAME)
        while True:
            with trio.move_on_after(self.core.limits.control_idle) as timer:
                data = await stream.receive_some(CONTROL_FRAME)
            if timer.cancelled_caught:
                self.stats["controls_idle"] += 1
                return
            if not data:
                return
            try:
                messages = decoder.feed(data)
            except FrameError:
                self.stats["controls_bad_frame"] += 1
                return
            for message in messages:
                call = message.get("call") if isinstance(message, dict) else None
                if call == PING:
                    reply = ok(None)
                elif call == RESERVE:
                    held = self._controls.get(reservation.node)
                    if held is None or held[2] is not scope:  # a newer connection of the node took over
                        return
                    try:
                        reservation, voucher = self.core.reserve(reservation.node, _source(peer),
                                                                 self.clock())
                    except RelayRefused as exc:
                        send.send_nowait(error(exc.code, exc.message))
                        return
                    self._controls[reservation.node] = (reservation, send, scope)
                    reply = ok(_grant(reservation, voucher, peer))
                else:
                    self.stats["controls_bad_request"] += 1
                    return
                try:
                    send.send_nowait(reply)
                except trio.WouldBlock:  # a node that does not read its control connection
                    self.stats["controls_stuck"] += 1
                    return

    # -- circuits ---------------------------------------------------------------------------------------

    async def _connect(self, stream: trio.abc.Stream, args: dict[str, Any], peer: str,
                       protect: Callable[[], None]) -> None:
        node, kind = args.get("node"), args.get("kind")
        if not isinstance(node, bytes) or len(node) != 32 or not isinstance(kind, str):
            raise RelayRefused(BAD_REQUEST, "RelayConnect takes {\"node\": a 32-byte key, \"kind\": a circuit kind}")
        circuit, reservation = self.core.open_circuit(PublicKey(node), _source(peer), kind, self.clock())
        pending = _Pending(circuit)
        self._pending[circuit.id] = pending
        try:
            control = self._controls.get(circuit.node)
            notice = {"notice": "circuit", "circuit": circuit.id, "from": peer, "kind": kind}
            if control is None or control[0] is not reservation:
                raise RelayRefused(BAD_REQUEST, "the node's reservation is ending; retry in a moment")
            try:
                control[1].send_nowait(notice)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                raise RelayRefused(BAD_REQUEST, "the node is not taking circuits right now; retry in a moment"
                                   ) from None
            with trio.move_on_after(self.core.limits.accept_timeout):
                await pending.arrived.wait()
            node_stream = pending.node_stream
            if node_stream is None:
                self.stats["circuits_not_accepted"] += 1
                raise RelayRefused(BAD_REQUEST, f"the node did not take the circuit within "
                                                f"{self.core.limits.accept_timeout:g} s")
            protect()
            budget = circuit.budget
            answer = encode_frame(ok({"circuit": circuit.id, "bytes": budget.bytes_each_way,
                                      "seconds": budget.seconds}))
            try:
                with trio.fail_after(self.core.limits.accept_timeout):
                    await node_stream.send_all(answer)
                    await stream.send_all(answer)
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
                return
            self.stats[f"circuits_{circuit.kind}"] += 1
            await self._splice(stream, node_stream, circuit)
        finally:
            self._pending.pop(circuit.id, None)
            pending.done.set()
            self.core.close_circuit(circuit)

    async def _accept(self, stream: trio.abc.Stream, args: dict[str, Any], node: PublicKey | None,
                      protect: Callable[[], None]) -> None:
        circuit = self.core.accept_circuit(args.get("circuit"), node)
        pending = self._pending.get(circuit.id)
        if pending is None:
            raise RelayRefused(BAD_REQUEST, "that circuit's researcher has gone")
        protect()
        pending.node_stream = stream
        pending.arrived.set()
        await pending.done.wait()  # the researcher's task splices and closes; this connection ends with it

    async def _splice(self, a: trio.abc.Stream, b: trio.abc.Stream, circuit: Circuit) -> None:
        budget = circuit.budget
        with trio.move_on_after(budget.seconds) as timer:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, a, b, budget.bytes_each_way, nursery.cancel_scope)
                nursery.start_soon(self._pump, b, a, budget.bytes_each_way, nursery.cancel_scope)
        if timer.cancelled_caught:
            self.stats["circuits_timed_out"] += 1
        for stream in (a, b):
            await trio.aclose_forcefully(stream)

    async def _pump(self, source: trio.abc.Stream, sink: trio.abc.Stream, limit: int, scope: trio.CancelScope) -> None:
        moved = 0
        try:
            while True:
                data = await source.receive_some(_PUMP_READ)
                if not data:
                    if isinstance(sink, trio.abc.HalfCloseableStream):
                        await sink.send_eof()
                    return
                moved += len(data)
                if moved > limit:
                    self.stats["circuits_exhausted"] += 1
                    scope.cancel()
                    return
                await self._pace(len(data))
                await sink.send_all(data)
                self.stats["relayed_bytes"] += len(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            scope.cancel()

    async def _pace(self, size: int) -> None:
        """Wait until the donor's rate cap allows `size` more bytes (no cap: at once)."""
        rate = self.core.limits.rate
        if rate is None:
            return
        now = trio.current_time()
        self._rate_tokens = min(float(rate), self._rate_tokens + (now - self._rate_updated) * rate)
        self._rate_updated = now
        self._rate_tokens -= size
        if self._rate_tokens < 0:
            await trio.sleep(-self._rate_tokens / rate)


def _grant(reservation: Reservation, voucher: bytes, peer: str) -> dict[str, Any]:
    return {"voucher": voucher, "expires": int(reservation.expires), "observed": peer}


def _source(peer: str) -> Source:
    """What `peer` ("IP:PORT") counts against; a peer with no IP address (a Unix socket in tests) is its own
    address and network."""
    host = peer.rpartition(":")[0]
    try:
        return source_of(host[1:-1] if host.startswith("[") else host)
    except ValueError:
        return Source(peer, peer)


def format_peer(host: str, port: int) -> str:
    """"IP:PORT" ([v6]:PORT) as relay notices and grants write a peer."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

