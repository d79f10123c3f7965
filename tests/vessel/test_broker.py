"""The network broker on its own: a real BrokerClient and BrokerServer over a SOCK_SEQPACKET socketpair.

These tests call the broker directly, the way a child whose API layer was bypassed could, to show that
the server's own checks (ports, local IPs, types, sizes, handles, socket counts) hold without the API.
The sockets the broker hands over (udp_listen, tcp_connect, tcp_accept) are kept in `Broker.sockets`, and
the tests send and receive on them as the vessel does. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest

from seattle.resources import Resources
from seattle.vessel import broker_protocol as protocol
from seattle.vessel import errors
from seattle.vessel.child.broker_client import BrokerClient
from seattle.vessel.supervisor.broker_server import BrokerServer, NetworkPolicy, default_local_ip

LOCAL = "127.0.0.1"
USAGE = {"cpu": 0.25, "cpu_seconds": 1.5, "memory": 4096, "diskused": 8192, "stoptimes": [[1.0, 0.1]]}


def free_ports(count: int) -> list[int]:
    """Ports free for both TCP and UDP on 127.0.0.1 right now (the kernel picks them)."""
    ports: list[int] = []
    held: list[socket.socket] = []
    while len(ports) < count:
        tcp = socket.socket()
        tcp.bind((LOCAL, 0))
        port = tcp.getsockname()[1]
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind((LOCAL, port))
        except OSError:
            tcp.close()
            udp.close()
            continue
        held += [tcp, udp]
        ports.append(port)
    for sock in held:
        sock.close()
    return ports


@dataclass
class Broker:
    client: BrokerClient
    server: BrokerServer
    thread: threading.Thread
    ports: list[int]          # allowed as messport and connport
    forbidden: int            # free, but in neither set
    #: The vessel's copies of the sockets the broker handed over, by handle.
    sockets: dict[int, socket.socket] = field(default_factory=dict)

    def call(self, op: str, *args: object) -> Any:
        if op not in protocol.SOCKET_OPS:
            return self.client.call(op, *args)
        result, sock = self.client.call_with_socket(op, *args)
        self.sockets[result[2] if op == protocol.OP_TCP_ACCEPT else result] = sock
        return result

    def close_copies(self) -> None:
        """Close the vessel's copies, as a vessel that ends does."""
        for sock in self.sockets.values():
            sock.close()


def start_broker(policy_changes: dict[str, object] | None = None) -> Broker:
    *ports, forbidden = free_ports(5)
    fields: dict[str, object] = {
        "messport": frozenset(ports), "connport": frozenset(ports), "local_ips": (LOCAL,),
    }
    fields.update(policy_changes or {})
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server = BrokerServer(parent, NetworkPolicy(**fields), lambda: dict(USAGE))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    return Broker(BrokerClient(child), server, thread, ports, forbidden)


def stop_broker(broker: Broker) -> None:
    broker.close_copies()
    broker.client.close()
    broker.server.close()
    broker.thread.join(10)
    assert not broker.thread.is_alive()


@pytest.fixture
def broker() -> Iterator[Broker]:
    b = start_broker()
    yield b
    stop_broker(b)


def wait_readable(broker: Broker, handle: int) -> None:
    """Until the socket is readable: a TCP listener waits in the broker, a handed-over socket in select()."""
    sock = broker.sockets.get(handle)
    if sock is None:
        assert broker.call(protocol.OP_WAIT, handle, "r", 5.0) is True
    else:
        assert select.select([sock], [], [], 5.0)[0], "the socket never became readable"


def wait_until_parked(server: BrokerServer) -> None:
    """Until some op waits inside the server (a wait or a connect); fails rather than hang."""
    deadline = time.monotonic() + 10
    while not server._pending:
        assert time.monotonic() < deadline, "no operation became pending"
        time.sleep(0.005)


def connected_pair(broker: Broker) -> tuple[int, int, int]:
    """(listener, client side, server side) handles of a TCP connection made through the broker."""
    listener = broker.call(protocol.OP_TCP_LISTEN, LOCAL, broker.ports[0])
    conn = broker.call(protocol.OP_TCP_CONNECT, LOCAL, broker.ports[0], LOCAL, broker.ports[1], 5.0)
    wait_readable(broker, listener)
    ip, port, accepted = broker.call(protocol.OP_TCP_ACCEPT, listener)
    assert (ip, port) == (LOCAL, broker.ports[1])
    return listener, conn, accepted


# -- information ops -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_getmyip_and_usage(broker: Broker) -> None:
    assert broker.call(protocol.OP_GETMYIP) == LOCAL
    assert broker.call(protocol.OP_USAGE) == USAGE


@pytest.mark.slow
def test_gethostbyname(broker: Broker) -> None:
    assert broker.call(protocol.OP_GETHOSTBYNAME, "localhost") == LOCAL
    assert broker.call(protocol.OP_GETHOSTBYNAME, "127.0.0.5") == "127.0.0.5"
    with pytest.raises(errors.NetworkAddressError, match="could not be resolved"):
        broker.call(protocol.OP_GETHOSTBYNAME, "bad..name")  # refused before any DNS query is sent
    with pytest.raises(errors.RepyArgumentError, match="must be a str"):
        broker.call(protocol.OP_GETHOSTBYNAME, 5)
    with pytest.raises(errors.RepyArgumentError, match=r"1\.\.253 characters"):
        broker.call(protocol.OP_GETHOSTBYNAME, "")


# -- UDP -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_udp_listen_send_receive(broker: Broker) -> None:
    server_port, client_port = broker.ports[:2]
    listener = broker.call(protocol.OP_UDP_LISTEN, LOCAL, server_port)
    inbox = broker.sockets[listener]
    assert inbox.getsockname() == (LOCAL, server_port) and inbox.type == socket.SOCK_DGRAM
    with pytest.raises(BlockingIOError):  # the broker made it non-blocking; the copy shares the flag
        inbox.recvfrom(100)
    sent = broker.call(protocol.OP_UDP_SEND, LOCAL, server_port, b"ping", LOCAL, client_port)
    assert sent == 4
    wait_readable(broker, listener)
    assert inbox.recvfrom(100) == (b"ping", (LOCAL, client_port))
    with pytest.raises(errors.RepyArgumentError, match="is a udp socket"):  # the vessel waits on its copy
        broker.call(protocol.OP_WAIT, listener, "r", 0.05)


@pytest.mark.slow
def test_udp_send_uses_own_listener_as_source(broker: Broker) -> None:
    """Sending from the address of a UDPServerSocket sends from that very socket (it stays bound)."""
    a, b = broker.ports[:2]
    listener_a = broker.call(protocol.OP_UDP_LISTEN, LOCAL, a)
    listener_b = broker.call(protocol.OP_UDP_LISTEN, LOCAL, b)
    assert broker.call(protocol.OP_UDP_SEND, LOCAL, b, b"from a", LOCAL, a) == 6
    wait_readable(broker, listener_b)
    assert broker.sockets[listener_b].recvfrom(100) == (b"from a", (LOCAL, a))
    broker.call(protocol.OP_CLOSE, listener_a)


@pytest.mark.slow
def test_udp_send_without_local_address_is_the_v1_form(broker: Broker) -> None:
    listener = broker.call(protocol.OP_UDP_LISTEN, LOCAL, broker.ports[0])
    assert broker.call(protocol.OP_UDP_SEND, LOCAL, broker.ports[0], b"anon", None, 0) == 4
    wait_readable(broker, listener)
    data, (ip, port) = broker.sockets[listener].recvfrom(100)
    assert (ip, data) == (LOCAL, b"anon") and port not in broker.ports


@pytest.mark.slow
def test_udp_errors(broker: Broker) -> None:
    port = broker.ports[0]
    with pytest.raises(errors.RepyArgumentError, match="9216-byte limit"):
        broker.call(protocol.OP_UDP_SEND, LOCAL, port, b"x" * (protocol.MAX_UDP_PAYLOAD + 1), LOCAL,
                    broker.ports[1])
    with pytest.raises(errors.RepyArgumentError, match="local and destination address are the same"):
        broker.call(protocol.OP_UDP_SEND, LOCAL, port, b"x", LOCAL, port)
    with pytest.raises(errors.RepyArgumentError, match="must be bytes"):
        broker.call(protocol.OP_UDP_SEND, LOCAL, port, "text", LOCAL, broker.ports[1])
    broker.call(protocol.OP_UDP_LISTEN, LOCAL, port)
    with pytest.raises(errors.AlreadyListeningError):
        broker.call(protocol.OP_UDP_LISTEN, LOCAL, port)


@pytest.mark.slow
def test_udp_address_held_by_another_process() -> None:
    b = start_broker()
    try:
        outsider = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        outsider.bind((LOCAL, b.ports[0]))
        with pytest.raises(errors.AlreadyListeningError, match="already listens"):
            b.call(protocol.OP_UDP_LISTEN, LOCAL, b.ports[0])
        with pytest.raises(errors.DuplicateTupleError, match="already in use"):
            b.call(protocol.OP_UDP_SEND, LOCAL, b.ports[1], b"x", LOCAL, b.ports[0])
        outsider.close()
    finally:
        stop_broker(b)


# -- TCP -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_tcp_connect_accept_hands_over_connected_sockets(broker: Broker) -> None:
    _, conn, accepted = connected_pair(broker)
    client, server = broker.sockets[conn], broker.sockets[accepted]
    assert client.getpeername() == server.getsockname() == (LOCAL, broker.ports[0])
    assert server.getpeername() == client.getsockname() == (LOCAL, broker.ports[1])
    with pytest.raises(BlockingIOError):
        server.recv(100)
    assert client.send(b"hello") == 5
    wait_readable(broker, accepted)
    assert server.recv(100) == b"hello"


@pytest.mark.slow
def test_tcp_accept_would_block(broker: Broker) -> None:
    listener = broker.call(protocol.OP_TCP_LISTEN, LOCAL, broker.ports[0])
    with pytest.raises(errors.SocketWouldBlockError):
        broker.call(protocol.OP_TCP_ACCEPT, listener)


@pytest.mark.slow
def test_a_handed_over_connection_is_non_blocking(broker: Broker) -> None:
    _, conn, _ = connected_pair(broker)
    chunk = b"x" * protocol.MAX_TCP_CHUNK
    with pytest.raises(BlockingIOError):
        for _ in range(10_000):  # the socket buffers fill long before this
            broker.sockets[conn].send(chunk)


@pytest.mark.slow
def test_closing_the_handle_ends_the_connection_though_the_vessel_holds_a_copy(broker: Broker) -> None:
    _, conn, accepted = connected_pair(broker)
    assert broker.call(protocol.OP_CLOSE, accepted) is True  # the broker shuts the socket down
    wait_readable(broker, conn)
    assert broker.sockets[conn].recv(10) == b""  # the peer sees the end of the stream
    assert broker.sockets[accepted].recv(10) == b""  # and the copy reads nothing more


@pytest.mark.slow
def test_close_local_then_use(broker: Broker) -> None:
    _, conn, _ = connected_pair(broker)
    assert broker.call(protocol.OP_CLOSE, conn) is True
    assert broker.call(protocol.OP_CLOSE, conn) is False
    with pytest.raises(errors.SocketClosedLocal):
        broker.call(protocol.OP_WAIT, conn, "r", 0)


@pytest.mark.slow
def test_tcp_connection_refused(broker: Broker) -> None:
    with pytest.raises(errors.ConnectionRefusedError, match="refused"):
        broker.call(protocol.OP_TCP_CONNECT, LOCAL, broker.forbidden, LOCAL, broker.ports[0], 5.0)


@pytest.mark.slow
def test_tcp_connect_timeout(broker: Broker) -> None:
    """A listener whose accept queue is full drops new SYNs, so the connect can only time out."""
    full = socket.socket()
    full.bind((LOCAL, 0))
    full.listen(0)
    fillers: list[socket.socket] = []
    try:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(full.getsockname())
            fillers.append(filler)
        with pytest.raises(errors.TimeoutError, match="timed out"):
            broker.call(protocol.OP_TCP_CONNECT, LOCAL, full.getsockname()[1], LOCAL, broker.ports[0], 0.3)
        # The timed-out attempt holds no socket: the same local port connects elsewhere at once.
        listener = broker.call(protocol.OP_TCP_LISTEN, LOCAL, broker.ports[1])
        broker.call(protocol.OP_TCP_CONNECT, LOCAL, broker.ports[1], LOCAL, broker.ports[0], 5.0)
        broker.call(protocol.OP_CLOSE, listener)
    finally:
        for sock in [*fillers, full]:
            sock.close()


@pytest.mark.slow
def test_tcp_duplicate_tuple_and_already_listening(broker: Broker) -> None:
    listener, _, _ = connected_pair(broker)
    with pytest.raises(errors.DuplicateTupleError, match="already exists"):
        broker.call(protocol.OP_TCP_CONNECT, LOCAL, broker.ports[0], LOCAL, broker.ports[1], 5.0)
    with pytest.raises(errors.AlreadyListeningError):
        broker.call(protocol.OP_TCP_LISTEN, LOCAL, broker.ports[0])
    with pytest.raises(errors.AlreadyListeningError, match="listens on"):
        broker.call(protocol.OP_TCP_CONNECT, LOCAL, broker.ports[2], LOCAL, broker.ports[0], 5.0)
    # After closing, the address can be listened on again.
    assert broker.call(protocol.OP_CLOSE, listener) is True
    broker.call(protocol.OP_TCP_LISTEN, LOCAL, broker.ports[0])


@pytest.mark.slow
def test_tcp_listen_on_address_another_process_listens_on(broker: Broker) -> None:
    outsider = socket.socket()
    outsider.bind((LOCAL, broker.ports[0]))
    outsider.listen(1)
    try:
        with pytest.raises(errors.AlreadyListeningError, match="already listens"):
            broker.call(protocol.OP_TCP_LISTEN, LOCAL, broker.ports[0])
    finally:
        outsider.close()


@pytest.mark.slow
def test_local_ip_not_on_this_host_is_an_address_binding_error() -> None:
    # 192.0.2.1 (TEST-NET-1) is allowed by the policy but not configured: bind fails, nothing is sent.
    b = start_broker({"local_ips": (LOCAL, "192.0.2.1")})
    try:
        with pytest.raises(errors.AddressBindingError, match="not on this host"):
            b.call(protocol.OP_TCP_LISTEN, "192.0.2.1", b.ports[0])
        with pytest.raises(errors.AddressBindingError):
            b.call(protocol.OP_UDP_LISTEN, "192.0.2.1", b.ports[0])
    finally:
        stop_broker(b)


# -- the second layer: the broker's own checks ---------------------------------------------------------


@pytest.mark.slow
def test_forbidden_ports_are_refused_by_the_broker_itself(broker: Broker) -> None:
    bad = broker.forbidden
    cases = [
        (protocol.OP_UDP_LISTEN, (LOCAL, bad), "messport"),
        (protocol.OP_UDP_SEND, (LOCAL, broker.ports[0], b"x", LOCAL, bad), "messport"),
        (protocol.OP_TCP_LISTEN, (LOCAL, bad), "connport"),
        (protocol.OP_TCP_CONNECT, (LOCAL, broker.ports[0], LOCAL, bad, 1.0), "connport"),
    ]
    for op, args, resource in cases:
        expected = f"port {bad} is not in this vessel's {resource}"
        with pytest.raises(errors.ResourceForbiddenError, match=expected):
            broker.call(op, *args)
    # Nothing was bound: the forbidden port is still free for anyone.
    probe = socket.socket()
    probe.bind((LOCAL, bad))
    probe.close()


@pytest.mark.slow
def test_local_ips_outside_the_policy_are_refused(broker: Broker) -> None:
    with pytest.raises(errors.ResourceForbiddenError, match=r"may not use the local IP 127\.0\.0\.2"):
        broker.call(protocol.OP_TCP_LISTEN, "127.0.0.2", broker.ports[0])
    with pytest.raises(errors.ResourceForbiddenError, match=r"local IP 127\.0\.0\.3"):
        broker.call(protocol.OP_UDP_SEND, LOCAL, broker.ports[0], b"x", "127.0.0.3", broker.ports[1])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("op", "args", "message"),
    [
        (protocol.OP_UDP_LISTEN, (LOCAL, True), "localport must be an int in 1..65535"),
        (protocol.OP_UDP_LISTEN, (LOCAL, 0), "localport must be an int"),
        (protocol.OP_UDP_LISTEN, (LOCAL, 70000), "localport must be an int"),
        (protocol.OP_UDP_LISTEN, ("1.2.3", 1), "not a valid IPv4"),
        (protocol.OP_UDP_LISTEN, ("0.0.0.0", 1), "not a valid IPv4"),
        (protocol.OP_UDP_LISTEN, ("224.0.0.1", 1), "not a valid IPv4"),
        (protocol.OP_UDP_LISTEN, (b"127.0.0.1", 1), "localip must be a str"),
        (protocol.OP_UDP_LISTEN, (LOCAL,), "expected 2 arguments, got 1"),
        (protocol.OP_TCP_CONNECT, (LOCAL, 1, LOCAL, 2, 0), "timeout must be a finite number > 0"),
        (protocol.OP_TCP_CONNECT, (LOCAL, 1, LOCAL, 2, float("inf")), "finite number"),
        (protocol.OP_TCP_CONNECT, (LOCAL, 1, None, 5, 1.0), "localip must be a str"),
        (protocol.OP_WAIT, (1, "x", 1.0), None),
        ("format_disk", (), "unknown broker op 'format_disk'"),
    ],
)
def test_bad_arguments_are_refused(
    broker: Broker, op: str, args: tuple[object, ...], message: str | None
) -> None:
    with pytest.raises(errors.RepyArgumentError, match=message):
        broker.call(op, *args)


@pytest.mark.slow
def test_bad_handles(broker: Broker) -> None:
    udp = broker.call(protocol.OP_UDP_LISTEN, LOCAL, broker.ports[0])
    with pytest.raises(errors.RepyArgumentError, match="no socket with handle 999"):
        broker.call(protocol.OP_CLOSE, 999)
    with pytest.raises(errors.RepyArgumentError, match="must be an int"):
        broker.call(protocol.OP_CLOSE, str(udp))
    with pytest.raises(errors.RepyArgumentError, match="is a udp socket"):
        broker.call(protocol.OP_TCP_ACCEPT, udp)
    with pytest.raises(errors.RepyArgumentError, match="no socket with handle -1"):
        broker.call(protocol.OP_WAIT, -1, "r", 0)


@pytest.mark.slow
def test_socket_counts_are_capped_by_the_broker() -> None:
    b = start_broker({"insockets": 1, "outsockets": 1})
    try:
        b.call(protocol.OP_UDP_LISTEN, LOCAL, b.ports[0])
        with pytest.raises(errors.ResourceExhaustedError, match="insockets"):
            b.call(protocol.OP_TCP_LISTEN, LOCAL, b.ports[1])
        outsider = socket.socket()
        outsider.bind((LOCAL, 0))
        outsider.listen(5)
        b.call(protocol.OP_TCP_CONNECT, LOCAL, outsider.getsockname()[1], LOCAL, b.ports[2], 5.0)
        with pytest.raises(errors.ResourceExhaustedError, match="outsockets"):
            b.call(protocol.OP_TCP_CONNECT, LOCAL, outsider.getsockname()[1], LOCAL, b.ports[3], 5.0)
        outsider.close()
    finally:
        stop_broker(b)


# -- waiting, concurrency, shutdown --------------------------------------------------------------------


@pytest.mark.slow
def test_wait_wakes_when_a_connection_arrives_and_other_calls_go_on(broker: Broker) -> None:
    listener = broker.call(protocol.OP_TCP_LISTEN, LOCAL, broker.ports[0])
    result: list[object] = []
    waiter = threading.Thread(
        target=lambda: result.append(broker.call(protocol.OP_WAIT, listener, "r", 20.0)))
    waiter.start()
    # While that wait is parked in the broker, other calls are answered.
    for _ in range(20):
        assert broker.call(protocol.OP_GETMYIP) == LOCAL
    broker.call(protocol.OP_TCP_CONNECT, LOCAL, broker.ports[0], LOCAL, broker.ports[1], 5.0)
    waiter.join(10)
    assert result == [True]


@pytest.mark.slow
def test_closing_a_socket_ends_its_waits(broker: Broker) -> None:
    listener = broker.call(protocol.OP_TCP_LISTEN, LOCAL, broker.ports[0])
    outcome: list[BaseException] = []

    def wait() -> None:
        try:
            broker.call(protocol.OP_WAIT, listener, "r", 20.0)
        except errors.SocketClosedLocal as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    wait_until_parked(broker.server)
    assert broker.call(protocol.OP_CLOSE, listener) is True
    waiter.join(10)
    assert len(outcome) == 1


@pytest.mark.slow
def test_many_threads_share_one_client(broker: Broker) -> None:
    """Each reply reaches the thread that asked, even when replies come back out of order (lookups run
    on the broker's pool while other ops are answered on its loop)."""
    failures: list[str] = []

    def work(n: int) -> None:
        for i in range(50):
            ip = f"127.0.{n}.{i + 1}"
            if broker.call(protocol.OP_GETHOSTBYNAME, ip) != ip:
                failures.append(f"lookup {ip}")
            if broker.call(protocol.OP_GETMYIP) != LOCAL:
                failures.append("getmyip")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


@pytest.mark.slow
def test_server_close_closes_every_socket_and_fails_the_client() -> None:
    b = start_broker()
    listener = b.call(protocol.OP_TCP_LISTEN, LOCAL, b.ports[0])
    b.call(protocol.OP_UDP_LISTEN, LOCAL, b.ports[1])
    b.call(protocol.OP_TCP_CONNECT, LOCAL, b.ports[0], LOCAL, b.ports[2], 5.0)
    wait_readable(b, listener)
    b.call(protocol.OP_TCP_ACCEPT, listener)  # the listener has nothing waiting now, so a wait parks
    b.close_copies()  # the vessel ended; only the broker's own copies are left
    failure: list[BaseException] = []

    def wait() -> None:
        try:
            b.call(protocol.OP_WAIT, listener, "r", 20.0)
        except errors.InternalRepyError as exc:
            failure.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    wait_until_parked(b.server)
    b.server.close()
    b.thread.join(10)
    assert not b.thread.is_alive()
    waiter.join(10)
    assert len(failure) == 1 and "broker is gone" in str(failure[0])
    with pytest.raises(errors.InternalRepyError):
        b.call(protocol.OP_GETMYIP)
    # The broker's sockets are gone: the same addresses bind again.
    for port, kind in ((b.ports[0], socket.SOCK_STREAM), (b.ports[1], socket.SOCK_DGRAM)):
        probe = socket.socket(socket.AF_INET, kind)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((LOCAL, port))
        probe.close()
    b.client.close()


@pytest.mark.slow
def test_serve_returns_when_the_child_end_closes() -> None:
    b = start_broker()
    b.call(protocol.OP_UDP_LISTEN, LOCAL, b.ports[0])
    b.close_copies()
    b.client.close()
    b.thread.join(10)
    assert not b.thread.is_alive() and b.server.violation is None
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind((LOCAL, b.ports[0]))
    probe.close()


def test_close_before_serve() -> None:
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server = BrokerServer(parent, NetworkPolicy(frozenset(), frozenset(), (LOCAL,)), dict)
    server.close()
    server.serve()  # returns at once
    assert parent.fileno() == -1
    child.close()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xc1", "undecodable"),
        (msgpack.packb({"op": "getmyip"}), "non-empty array"),
        (msgpack.packb(["1", "getmyip"]), "bad request id"),
        (msgpack.packb([1, 2]), "request must be"),
        (b"\x90" + b"x" * protocol.MAX_MESSAGE, "exceeds"),
    ],
)
def test_protocol_violation_stops_the_server(raw: bytes, reason: str) -> None:
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    child.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * protocol.MAX_MESSAGE)
    server = BrokerServer(parent, NetworkPolicy(frozenset(), frozenset(), (LOCAL,)), dict)
    thread = threading.Thread(target=server.serve)
    thread.start()
    child.send(raw)
    thread.join(10)
    assert not thread.is_alive()
    assert server.violation is not None and reason in server.violation
    assert child.recv(100) == b""  # the server closed its end
    child.close()


# -- the client on its own -----------------------------------------------------------------------------


def fake_server(reply: bytes) -> tuple[BrokerClient, threading.Thread]:
    """A client whose 'server' answers the first request with `reply`, then closes."""
    near, far = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    def answer() -> None:
        far.recv(protocol.MAX_MESSAGE)
        far.send(reply)
        far.recv(protocol.MAX_MESSAGE)  # until the client closes
        far.close()

    thread = threading.Thread(target=answer)
    thread.start()
    return BrokerClient(near), thread


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (b"\xc1", errors.InternalRepyError, "bad reply"),
        (protocol.encode_ok(77, None), errors.InternalRepyError, "unknown request 77"),
        (protocol.encode_err(1, "NoSuchError", "?"), errors.InternalRepyError, "unknown vessel exception"),
        (protocol.encode_err(1, "InternalRepyError", "broker bug"), errors.InternalRepyError, "broker bug"),
        (protocol.encode_err(1, "SocketClosedRemote", "gone"), errors.SocketClosedRemote, "gone"),
    ],
)
def test_client_turns_replies_into_exceptions(reply: bytes, error: type[Exception], message: str) -> None:
    client, thread = fake_server(reply)
    with pytest.raises(error, match=message) as info:
        client.call(protocol.OP_GETMYIP)
    assert info.value.__context__ is None and info.value.__cause__ is None
    client.close()
    thread.join(10)


@pytest.mark.slow
def test_client_refuses_oversized_requests(broker: Broker) -> None:
    with pytest.raises(errors.RepyArgumentError, match="exceeds the 131072-byte limit"):
        broker.call(protocol.OP_UDP_SEND, LOCAL, 1, b"x" * protocol.MAX_MESSAGE, LOCAL, 2)
    assert broker.call(protocol.OP_GETMYIP) == LOCAL  # the client is still usable


def test_client_needs_a_seqpacket_socket() -> None:
    a, b = socket.socketpair()
    with pytest.raises(ValueError, match="SOCK_SEQPACKET"):
        BrokerClient(a)
    with pytest.raises(ValueError, match="SOCK_SEQPACKET"):
        BrokerServer(b, NetworkPolicy(frozenset(), frozenset(), (LOCAL,)), dict)
    a.close()
    b.close()


# -- policy --------------------------------------------------------------------------------------------


def test_policy_for_allotment() -> None:
    resources = Resources({"cpu": 0.1, "memory": 10**7, "diskused": 10**7, "insockets": 3, "outsockets": 4},
                          messport=frozenset({63100}), connport=frozenset({63101, 63102}))
    policy = NetworkPolicy.for_allotment(resources, ["127.0.0.1"])
    assert policy == NetworkPolicy(frozenset({63100}), frozenset({63101, 63102}), (LOCAL,), 3, 4)
    assert policy.allows_ip(LOCAL) and not policy.allows_ip("10.1.2.3")
    default = NetworkPolicy.for_allotment(resources)
    assert default.local_ips == (default_local_ip(),)
    assert default.allows_ip(LOCAL)


def test_default_local_ip_is_a_usable_ipv4() -> None:
    ip = default_local_ip()
    assert protocol.is_valid_ip(ip)
    assert ip == LOCAL or not ip.startswith(("127.", "169.254."))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"local_ips": ()}, "non-empty tuple"),
        ({"local_ips": ["127.0.0.1"]}, "non-empty tuple"),
        ({"local_ips": ("localhost",)}, "invalid IPv4"),
        ({"messport": {1}}, "must be a frozenset"),
        ({"connport": frozenset({0, 70000})}, "invalid ports: 0, 70000"),
        ({"outsockets": -1}, "outsockets must be an int"),
    ],
)
def test_policy_validation(changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"messport": frozenset(), "connport": frozenset(), "local_ips": (LOCAL,)}
    fields.update(changes)
    with pytest.raises(ValueError, match=message):
        NetworkPolicy(**fields)  # type: ignore[arg-type]


def test_address_rules() -> None:
    assert protocol.is_valid_ip("1.2.3.4") and protocol.is_valid_ip("223.255.255.255")
    bad_ips = ("0.1.2.3", "224.0.0.1", "1.2.3", "1.2.3.4.5", "1.2.3.256", "a.b.c.d", "1.2.3.+4", "١.2.3.4", 5)
    for bad in bad_ips:
        assert not protocol.is_valid_ip(bad), bad
    assert protocol.is_loopback("127.9.9.9") and not protocol.is_loopback("128.0.0.1")
    assert protocol.is_valid_port(65535)
    assert not protocol.is_valid_port(True) and not protocol.is_valid_port(0)
