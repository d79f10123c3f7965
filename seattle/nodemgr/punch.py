"""Hole punching: upgrade a relayed connection to a direct TCP connection, coordinated over the relay (in the
manner of libp2p's DCUtR; docs/relay.md has the message formats).

The researcher opens a `coordination` circuit to the node through the relay and runs the node's channel on it
(the node proves its key, so the coordination is authenticated end to end), then:

    researcher → node   {"punch": "offer", "port": P}       P: the local port it will dial from
    node → researcher   {"punch": "answer", "ip": I, "port": Q}
                                                            I: the node's address as its relay sees it (its
                                                            NAT's public side), Q: the port it will dial from
    researcher → node   {"punch": "sync"}                   sent once the answer's round trip is measured

The node dials (researcher's address as the relay saw it, P) from Q as soon as the sync arrives; the
researcher dials (I, Q) from P half a round trip after sending it, so both SYNs leave at about the same time
and TCP's simultaneous open joins them. A cone NAT (Linux MASQUERADE) keeps the local port as the public one,
so each side's SYN opens the mapping that lets the other's in; a symmetric NAT picks another port, the SYNs
miss, and the relayed path stays. Before each dial a side sends one SYN with a low TTL (`prime_ttl`, 2 by
default: past its own router, dead before the peer's) from the same port: it opens the local mapping first, so
the peer's SYN, should it arrive before ours, meets a mapping instead of being taken for a new inbound
connection (which Linux's conntrack would then remap or a firewall drop). Dials that meet a reset are retried,
jittered, until `window` seconds have passed.

The direct connection carries a fresh channel handshake (the node's key again), exactly as a dialled one.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import random
import socket

import trio

from seattle.boundedmsgpack import RESPONSE_LIMITS
from seattle.channel.stream import ChannelError, secure_client, secure_server
from seattle.keys import Identity, PublicKey
from seattle.nodemgr.client import NodeClientError
from seattle.nodemgr.frames import FrameDecoder, FrameError, encode_frame
from seattle.nodemgr.relay import COORDINATION
from seattle.nodemgr.relay_client import RelayAddress, open_circuit
from seattle.nodemgr.relay_service import CONTROL_FRAME, format_peer

#: Outcomes, as libp2p's measurement campaign recorded them.
SUCCESS = "success"
FAILED = "failed"
NO_CONNECTION = "no_connection"
#: Seconds both sides keep dialling in one attempt (a SYN the NAT dropped is resent by the kernel after 1 s).
WINDOW = 2.0
#: Rounds of offer, answer and dials, each with fresh ports (libp2p's DCUtR makes 3).
ATTEMPTS = 3
DEFAULT_PRIME_TTL = 2
_RETRY = (0.01, 0.05)
#: Dial errors that mean "not yet" (the peer's side is not open yet, or the NAT refused this SYN): dial again.
_RETRIED = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, errno.EHOSTUNREACH,
                      errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EADDRINUSE})


class PunchFailed(Exception):
    """No direct connection: `outcome` is FAILED (the dials missed) or NO_CONNECTION (no coordination)."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def _bound_socket(family: socket.AddressFamily, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    return sock


def reserve_port(family: socket.AddressFamily) -> tuple[socket.socket, int]:
    """A local port to dial from, held (bound, not listening) until the dial binds it again."""
    sock = _bound_socket(family, 0)
    return sock, int(sock.getsockname()[1])


def _prime(family: socket.AddressFamily, port: int, remote: tuple[str, int], ttl: int) -> None:
    """One SYN from `port` to `remote` with TTL `ttl`: it opens this side's NAT mapping and dies on the way."""
    sock = _bound_socket(family, port)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6 if family == socket.AF_INET6 else socket.IPPROTO_IP,
                        socket.IPV6_UNICAST_HOPS if family == socket.AF_INET6 else socket.IP_TTL, ttl)
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            sock.connect(remote)
    finally:
        sock.close()


async def simultaneous_open(port: int, remote: tuple[str, int], *, window: float = WINDOW,
                            prime_ttl: int | None = DEFAULT_PRIME_TTL) -> trio.SocketStream:
    """A TCP connection between local `port` and `remote`, made while the peer does the same (module
    docstring): this side dials, and also listens on `port` for the peer's dial (taken only from the peer's
    IP), so whichever SYN gets through first makes the one connection the two ports can have. PunchFailed
    (FAILED) if none came up within `window` seconds."""
    remote_ip = ipaddress.ip_address(remote[0])
    family = socket.AF_INET6 if remote_ip.version == 6 else socket.AF_INET
    if remote_ip.is_loopback:
        # No router on the way: the priming SYN would reach the peer itself and open a connection that the
        # priming socket's close then abandons.
        prime_ttl = None
    won: list[trio.SocketStream] = []
    last: list[BaseException] = []
    listener = trio.socket.from_stdlib_socket(_bound_socket(family, port))
    listener.listen(1)

    async def accept(scope: trio.CancelScope) -> None:
        while True:
            connection, address = await listener.accept()
            if address[0] == remote[0]:
                won.append(trio.SocketStream(connection))
                scope.cancel()
                return
            connection.close()  # someone else found the port: not the peer

    async def dial(scope: trio.CancelScope) -> None:
        while True:
            if prime_ttl is not None:
                _prime(family, port, remote, prime_ttl)
            sock = trio.socket.from_stdlib_socket(_bound_socket(family, port))
            try:
                await sock.connect(remote)
            except OSError as exc:
                sock.close()
                if exc.errno not in _RETRIED:
                    last.append(exc)
                    return
                last[:] = [exc]
                await trio.sleep(random.uniform(*_RETRY))
                continue
            except BaseException:
                sock.close()
                raise
            won.append(trio.SocketStream(sock))
            scope.cancel()
            return

    try:
        with trio.move_on_after(window):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(accept, nursery.cancel_scope)
                nursery.start_soon(dial, nursery.cancel_scope)
    finally:
        listener.close()
    if won:
        for extra in won[1:]:
            await trio.aclose_forcefully(extra)
        return won[0]
    raise PunchFailed(FAILED, f"no direct connection to {format_peer(*remote)} within {window:g} s"
                              + (f" ({last[-1]})" if last else ""))


async def _frame(stream: trio.abc.Stream, decoder: FrameDecoder) -> dict[str, object]:
    while True:
        data = await stream.receive_some(CONTROL_FRAME)
        if not data:
            raise trio.BrokenResourceError("the other side ended the coordination")
        messages = decoder.feed(data)
        if messages:
            message = messages[0]
            if len(messages) > 1 or decoder.buffered or not isinstance(message, dict):
                raise FrameError("bad_frame", "one map at a time")
            return message


def _endpoint(message: dict[str, object]) -> tuple[str, int]:
    ip, port = message.get("ip"), message.get("port")
    if not isinstance(ip, str) or len(ip) > 45 or isinstance(port, bool) or not isinstance(port, int):
        raise FrameError("bad_frame", "an endpoint is an IP address and a port")
    ipaddress.ip_address(ip)  # ValueError for anything else
    if not 1 <= port <= 65535:
        raise FrameError("bad_frame", "a port is 1..65535")
    return ip, port


async def punch_to(relay: RelayAddress, node: PublicKey, *, timeout: float = 10.0, window: float = WINDOW,
                   attempts: int = ATTEMPTS, prime_ttl: int | None = DEFAULT_PRIME_TTL
                   ) -> tuple[trio.SocketStream, str]:
    """The researcher's side: a direct TCP stream to `node` and its "IP:PORT", coordinated through `relay`
    (up to `attempts` rounds, each with fresh ports on both sides); PunchFailed with the outcome otherwise."""
    try:
        circuit = await open_circuit(relay, node, kind=COORDINATION, timeout=timeout)
    except NodeClientError as exc:
        raise PunchFailed(NO_CONNECTION, f"no coordination circuit: {exc}") from None
    family = socket.AF_INET6 if ":" in relay.host else socket.AF_INET
    failure: PunchFailed | None = None
    try:
        with trio.fail_after(timeout):
            channel = await secure_client(circuit, expected=node, timeout=timeout)
        decoder = FrameDecoder(CONTROL_FRAME, limits=RESPONSE_LIMITS)
        for _ in range(attempts):
            holder, port = reserve_port(family)
            try:
                with trio.fail_after(timeout):
                    sent = trio.current_time()
                    await channel.send_all(encode_frame({"punch": "offer", "port": port}))
                    answer = await _frame(channel, decoder)
                    rtt = trio.current_time() - sent
                    remote = _endpoint(answer)
                    await channel.send_all(encode_frame({"punch": "sync"}))
                await trio.sleep(rtt / 2)
            finally:
                holder.close()
            try:
                stream = await simultaneous_open(port, remote, window=window, prime_ttl=prime_ttl)
            except PunchFailed as exc:
                failure = exc
                continue
            return stream, format_peer(*remote)
    except (ChannelError, FrameError, ValueError, trio.TooSlowError, trio.BrokenResourceError,
            trio.ClosedResourceError, OSError) as exc:
        raise PunchFailed(NO_CONNECTION, f"the coordination failed: {exc or type(exc).__name__}") from None
    finally:
        await trio.aclose_forcefully(circuit)
    assert failure is not None
    raise failure


async def punch_from(circuit: trio.abc.Stream, identity: Identity, researcher: str, observed: str, *,
                     timeout: float = 10.0, window: float = WINDOW, attempts: int = ATTEMPTS,
                     prime_ttl: int | None = DEFAULT_PRIME_TTL) -> tuple[str, trio.SocketStream | None, str]:
    """The node's side, on a coordination circuit from `researcher` ("IP:PORT" as the relay saw it); `observed`
    is this node's "IP:PORT" as that relay sees it. (outcome, the direct stream if it came up, the
    researcher's "IP:PORT" on it): the node manager serves the stream like an accepted connection."""
    researcher_ip = researcher.rpartition(":")[0].strip("[]")
    own_ip = observed.rpartition(":")[0].strip("[]")
    try:
        ipaddress.ip_address(researcher_ip)
        ipaddress.ip_address(own_ip)
    except ValueError:
        await trio.aclose_forcefully(circuit)
        return NO_CONNECTION, None, researcher
    family = socket.AF_INET6 if ":" in own_ip else socket.AF_INET
    outcome = NO_CONNECTION
    try:
        with trio.fail_after(timeout):
            channel = await secure_server(circuit, identity=identity, timeout=timeout)
        decoder = FrameDecoder(CONTROL_FRAME)
        for _ in range(attempts):
            holder, port = reserve_port(family)
            try:
                with trio.fail_after(timeout + window):  # the researcher's next offer comes after its window
                    offer = await _frame(channel, decoder)
                    if offer.get("punch") != "offer":
                        return NO_CONNECTION, None, researcher
                    remote = (researcher_ip, _endpoint({"ip": researcher_ip, "port": offer.get("port")})[1])
                    await channel.send_all(encode_frame({"punch": "answer", "ip": own_ip, "port": port}))
                    if (await _frame(channel, decoder)).get("punch") != "sync":
                        return NO_CONNECTION, None, researcher
            finally:
                holder.close()
            try:
                stream = await simultaneous_open(port, remote, window=window, prime_ttl=prime_ttl)
            except PunchFailed as exc:
                outcome = exc.outcome
                continue
            return SUCCESS, stream, format_peer(*remote)
    except (ChannelError, FrameError, ValueError, trio.TooSlowError, trio.BrokenResourceError,
            trio.ClosedResourceError, OSError):
        pass
    finally:
        await trio.aclose_forcefully(circuit)
    return outcome, None, researcher
