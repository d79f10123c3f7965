"""The vessel's network API (V2 calls and V1 names) over a real broker, in-process.

Each "vessel" here is a VesselContext with the real Accountant and a real BrokerClient whose
BrokerServer runs on a thread over a SOCK_SEQPACKET socketpair, so every call goes through both
layers. The accountant runs on a fake clock that only moves when it sleeps, which makes the charges
exact: after draining every bucket, a bucket's level is what the last operation charged to it.
All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from seattle.resources import Resources
from seattle.vessel import broker_protocol as protocol
from seattle.vessel import errors, status
from seattle.vessel.child.accounting import METERED, Accountant
from seattle.vessel.child.api import network
from seattle.vessel.child.broker_client import BrokerClient
from seattle.vessel.child.checker import check_and_compile
from seattle.vessel.child.context import VesselContext
from seattle.vessel.child.runtime import build_globals
from seattle.vessel.supervisor.broker_server import BrokerServer, NetworkPolicy
from tests.vessel.test_broker import free_ports

pytestmark = pytest.mark.slow

LOCAL = "127.0.0.1"
RATE = 1_000_000.0
DEADLINE = 10.0


class FakeTime:
    """A clock that moves only when the accountant sleeps (or a test drains the buckets)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Vessel:
    ctx: VesselContext
    api: dict[str, Any]
    time: FakeTime
    server: BrokerServer
    thread: threading.Thread
    ports: list[int]
    forbidden: int
    log: list[bytes] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)

    def charges(self, operation: Callable[[], Any]) -> tuple[Any, dict[str, int]]:
        """Run `operation` with every bucket empty; return its result and what it charged."""
        self.time.now += 10**6
        result = operation()
        usage = self.ctx.accountant.usage()
        return result, {name: round(usage[name]) for name in sorted(METERED) if usage[name]}

    def held(self, item: str) -> int:
        return int(self.ctx.accountant.usage()[item])


def make_vessel(tmp_path: Path, **quantities: float) -> Vessel:
    *ports, forbidden = free_ports(5)
    amounts: dict[str, float] = {
        "cpu": 0.5, "memory": 10**8, "diskused": 10**8, "events": 10, "insockets": 4, "outsockets": 4,
        "netsend": RATE, "netrecv": RATE, "loopsend": RATE, "looprecv": RATE, "lograte": RATE,
    }
    amounts.update(quantities)
    resources = Resources(amounts, messport=frozenset(ports), connport=frozenset(ports))
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server = BrokerServer(parent, NetworkPolicy.for_allotment(resources, [LOCAL]), lambda: {})
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    fake = FakeTime()
    log: list[bytes] = []
    exits: list[int] = []

    def exit_vessel(code: int) -> NoReturn:
        exits.append(code)
        raise SystemExit(code)

    ctx = VesselContext(
        resources=resources,
        accountant=Accountant(resources, clock=fake.clock, sleep=fake.sleep),
        vessel_dir=tmp_path,
        broker=BrokerClient(child),
        write_log=log.append,
        exit=exit_vessel,
    )
    return Vessel(ctx, network.exports(ctx), fake, server, thread, ports, forbidden, log, exits)


def close_vessel(vessel: Vessel) -> None:
    vessel.server.close()
    vessel.thread.join(DEADLINE)
    vessel.ctx.broker.close()
    assert not vessel.thread.is_alive()


@pytest.fixture
def vessel(tmp_path: Path) -> Iterator[Vessel]:
    v = make_vessel(tmp_path)
    yield v
    close_vessel(v)


def until_ready(operation: Callable[[], Any]) -> Any:
    """Retry a non-blocking V2 operation until it stops raising SocketWouldBlockError."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            return operation()
        except errors.SocketWouldBlockError:
            assert time.monotonic() < deadline, "the operation kept blocking"
            time.sleep(0.005)


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.005)


def tcp_pair(vessel: Vessel) -> tuple[object, object, object]:
    """(TCPServerSocket, client socket, server-side socket) connected over loopback."""
    api, (a, b) = vessel.api, vessel.ports[:2]
    server = api["listenforconnection"](LOCAL, a)
    client = api["openconnection"](LOCAL, a, LOCAL, b, 5.0)
    ip, port, accepted = until_ready(server.getconnection)
    assert (ip, port) == (LOCAL, b)
    return server, client, accepted


# -- names and addresses -------------------------------------------------------------------------------


def test_exports_every_v2_and_v1_network_name(vessel: Vessel) -> None:
    assert set(vessel.api) == {
        "gethostbyname", "getmyip", "sendmessage", "listenformessage", "openconnection",
        "listenforconnection", "sendmess", "recvmess", "stopcomm", "openconn", "waitforconn", "gethostbyname_ex",
    }


def test_getmyip_and_its_charge(vessel: Vessel) -> None:
    ip, charged = vessel.charges(vessel.api["getmyip"])
    assert ip == LOCAL
    assert charged == {"netsend": network.GETMYIP_SEND, "netrecv": network.GETMYIP_RECV}


def test_gethostbyname(vessel: Vessel) -> None:
    ip, charged = vessel.charges(lambda: vessel.api["gethostbyname"]("localhost"))
    assert ip == LOCAL
    assert charged == {"netsend": 1024, "netrecv": 4096}
    with pytest.raises(errors.NetworkAddressError):
        vessel.api["gethostbyname"]("bad..name")
    with pytest.raises(errors.RepyArgumentError, match="name must be a str, not int"):
        vessel.api["gethostbyname"](5)
    with pytest.raises(errors.RepyArgumentError, match="must not be empty"):
        vessel.api["gethostbyname"]("")


# -- UDP (V2) ------------------------------------------------------------------------------------------


def test_udp_send_and_receive_with_charges(vessel: Vessel) -> None:
    api, (a, b) = vessel.api, vessel.ports[:2]
    server = api["listenformessage"](LOCAL, a)
    assert vessel.held("insockets") == 1
    with pytest.raises(errors.SocketWouldBlockError):
        server.getmessage()
    sent, charged = vessel.charges(lambda: api["sendmessage"](LOCAL, a, "héllo", LOCAL, b))
    assert sent == len("héllo".encode())
    assert charged == {"loopsend": 64 + sent}  # loopback: nothing on netsend
    assert vessel.held("outsockets") == 0  # the one-off sending socket is gone again
    message, charged = vessel.charges(lambda: until_ready(server.getmessage))
    assert message == (LOCAL, b, "héllo".encode())
    assert charged == {"looprecv": 64 + sent}
    assert server.close() is True and server.close() is False
    assert vessel.held("insockets") == 0
    with pytest.raises(errors.SocketClosedLocal):
        server.getmessage()


def test_udp_reply_from_the_listening_address(vessel: Vessel) -> None:
    api, (a, b) = vessel.api, vessel.ports[:2]
    first, second = api["listenformessage"](LOCAL, a), api["listenformessage"](LOCAL, b)
    api["sendmessage"](LOCAL, b, b"from a", LOCAL, a)
    assert until_ready(second.getmessage) == (LOCAL, a, b"from a")
    first.close()
    second.close()


def test_udp_argument_errors(vessel: Vessel) -> None:
    api, (a, b) = vessel.api, vessel.ports[:2]
    cases: list[tuple[tuple[Any, ...], str]] = [
        ((LOCAL, a, b"x" * 9217, LOCAL, b), "message is 9217 bytes long; the limit is 9216"),
        ((LOCAL, a, b"x", LOCAL, a), "local address cannot be the destination"),
        (("1.2.3", a, b"x", LOCAL, b), "destip '1.2.3' is not a valid IPv4 address"),
        ((LOCAL, True, b"x", LOCAL, b), "destport must be an int, not bool"),
        ((LOCAL, a, 5, LOCAL, b), "message must be bytes or a str, not int"),
        ((LOCAL, a, b"x", LOCAL, 0), "localport must be at least 1"),
        ((LOCAL, a, b"x", LOCAL), "missing 1 required positional argument"),
    ]
    for args, message in cases:
        with pytest.raises(errors.RepyArgumentError, match=message):
            api["sendmessage"](*args)
    with pytest.raises(errors.RepyArgumentError, match="localip must be a str"):
        api["listenformessage"](None, a)


def test_udp_already_listening_releases_the_insocket(vessel: Vessel) -> None:
    server = vessel.api["listenformessage"](LOCAL, vessel.ports[0])
    with pytest.raises(errors.AlreadyListeningError):
        vessel.api["listenformessage"](LOCAL, vessel.ports[0])
    assert vessel.held("insockets") == 1
    server.close()


def test_forbidden_ports_are_refused_by_the_api(vessel: Vessel) -> None:
    """The first layer: with the broker already gone, a forbidden port is still refused, so the refusal
    comes from the API in the vessel before any request is sent."""
    vessel.server.close()
    vessel.thread.join(DEADLINE)
    api, bad, ok = vessel.api, vessel.forbidden, vessel.ports[0]
    calls = [
        lambda: api["listenformessage"](LOCAL, bad),
        lambda: api["sendmessage"](LOCAL, ok, b"x", LOCAL, bad),
        lambda: api["listenforconnection"](LOCAL, bad),
        lambda: api["openconnection"](LOCAL, ok, LOCAL, bad, 1.0),
        lambda: api["recvmess"](LOCAL, bad, print),
        lambda: api["sendmess"](LOCAL, ok, b"x", LOCAL, bad),
        lambda: api["waitforconn"](LOCAL, bad, print),
        lambda: api["openconn"](LOCAL, ok, LOCAL, bad),
    ]
    for call in calls:
        with pytest.raises(errors.ResourceForbiddenError, match=str(bad)):
            call()
    assert vessel.exits == []
    assert vessel.held("insockets") == vessel.held("outsockets") == 0


def test_the_broker_refuses_forbidden_ports_on_its_own(vessel: Vessel) -> None:
    """A child whose API layer was bypassed talks to the broker directly; the broker still refuses."""
    expected = f"port {vessel.forbidden} is not in this vessel's messport"
    with pytest.raises(errors.ResourceForbiddenError, match=expected):
        vessel.ctx.broker.call(protocol.OP_UDP_LISTEN, LOCAL, vessel.forbidden)
    with pytest.raises(errors.ResourceForbiddenError, match="connport"):
        vessel.ctx.broker.call(protocol.OP_TCP_CONNECT, LOCAL, vessel.ports[0], LOCAL, vessel.forbidden, 1.0)


# -- TCP (V2) ------------------------------------------------------------------------------------------


def test_tcp_connection_with_charges_and_counts(vessel: Vessel) -> None:
    api, (a, b) = vessel.api, vessel.ports[:2]
    server = api["listenforconnection"](LOCAL, a)
    client, charged = vessel.charges(lambda: api["openconnection"](LOCAL, a, LOCAL, b, 5.0))
    assert charged == {"loopsend": 128, "looprecv": 64}
    (ip, port, accepted), charged = vessel.charges(lambda: until_ready(server.getconnection))
    assert (ip, port) == (LOCAL, b)
    assert charged == {"looprecv": 128, "loopsend": 64}
    assert vessel.held("insockets") == 1 and vessel.held("outsockets") == 2

    with pytest.raises(errors.SocketWouldBlockError):
        accepted.recv(10)
    sent, charged = vessel.charges(lambda: client.send("data"))
    assert sent == 4 and charged == {"loopsend": 64 + 4, "looprecv": 64}
    data, charged = vessel.charges(lambda: until_ready(lambda: accepted.recv(100)))
    assert data == b"data" and charged == {"looprecv": 64 + 4, "loopsend": 64}

    closed, charged = vessel.charges(client.close)
    assert closed is True and charged == {"looprecv": 64, "loopsend": 128}
    assert client.close() is False
    assert vessel.held("outsockets") == 1
    for call in (lambda: client.recv(1), lambda: client.send(b"x")):
        with pytest.raises(errors.SocketClosedLocal):
            call()
    with pytest.raises(errors.SocketClosedRemote):
        until_ready(lambda: accepted.recv(10))
    accepted.close()
    server.close()
    assert vessel.held("insockets") == vessel.held("outsockets") == 0
    with pytest.raises(errors.SocketClosedLocal):
        server.getconnection()


def test_tcp_large_send_is_partial(vessel: Vessel) -> None:
    _, client, accepted = tcp_pair(vessel)
    sent = client.send(b"y" * (3 * protocol.MAX_TCP_CHUNK))
    assert 0 < sent <= protocol.MAX_TCP_CHUNK
    received = 0
    while received < sent:
        received += len(until_ready(lambda: accepted.recv(protocol.MAX_TCP_CHUNK)))
    assert received == sent


def test_tcp_refused_and_timeout_release_the_outsocket(vessel: Vessel) -> None:
    api, (a, b) = vessel.api, vessel.ports[:2]
    with pytest.raises(errors.ConnectionRefusedError):
        api["openconnection"](LOCAL, vessel.forbidden, LOCAL, a, 5.0)
    full = socket.socket()
    full.bind((LOCAL, 0))
    full.listen(0)
    fillers = []
    for _ in range(3):  # fill the accept queue: further SYNs are dropped, so a connect can only time out
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(full.getsockname())
        fillers.append(filler)
    try:
        with pytest.raises(errors.TimeoutError):
            api["openconnection"](LOCAL, full.getsockname()[1], LOCAL, b, 0.2)
    finally:
        for sock in [*fillers, full]:
            sock.close()
    assert vessel.held("outsockets") == 0
    with pytest.raises(errors.RepyArgumentError, match="timeout must be more than 0"):
        api["openconnection"](LOCAL, a, LOCAL, b, 0)


def test_tcp_duplicate_tuple_and_already_listening(vessel: Vessel) -> None:
    api, (a, b, c) = vessel.api, vessel.ports[:3]
    tcp_pair(vessel)
    with pytest.raises(errors.DuplicateTupleError):
        api["openconnection"](LOCAL, a, LOCAL, b, 5.0)
    with pytest.raises(errors.AlreadyListeningError):
        api["listenforconnection"](LOCAL, a)
    with pytest.raises(errors.AlreadyListeningError):
        api["openconnection"](LOCAL, c, LOCAL, a, 5.0)
    assert vessel.held("outsockets") == 2 and vessel.held("insockets") == 1


def test_outsockets_run_out_at_the_allotment(tmp_path: Path) -> None:
    v = make_vessel(tmp_path, outsockets=2)
    try:
        api, (a, b, c) = v.api, v.ports[:3]
        _, client, _ = tcp_pair(v)
        with pytest.raises(errors.ResourceExhaustedError, match="outsockets"):
            api["openconnection"](LOCAL, a, LOCAL, c, 5.0)
        with pytest.raises(errors.ResourceExhaustedError, match="outsockets"):
            api["sendmessage"](LOCAL, a, b"x", LOCAL, b)
        client.close()
        api["openconnection"](LOCAL, a, LOCAL, c, 5.0)
    finally:
        close_vessel(v)


def test_insockets_run_out_at_the_allotment(tmp_path: Path) -> None:
    v = make_vessel(tmp_path, insockets=1)
    try:
        listener = v.api["listenformessage"](LOCAL, v.ports[0])
        with pytest.raises(errors.ResourceExhaustedError, match="insockets"):
            v.api["listenforconnection"](LOCAL, v.ports[1])
        with pytest.raises(errors.ResourceExhaustedError, match="insockets"):
            v.api["recvmess"](LOCAL, v.ports[1], print)
        listener.close()
        v.api["listenforconnection"](LOCAL, v.ports[1]).close()
    finally:
        close_vessel(v)


def test_api_objects_are_read_only(vessel: Vessel) -> None:
    server, client, _ = tcp_pair(vessel)
    with pytest.raises(errors.RepyArgumentError, match="read-only"):
        client.recv = print
    with pytest.raises(errors.RepyArgumentError, match="read-only"):
        server.handle = 1
    with pytest.raises(errors.RepyArgumentError, match="bytes must be at least 1"):
        client.recv(0)


def test_a_lost_broker_ends_the_vessel(vessel: Vessel) -> None:
    vessel.server.close()
    vessel.thread.join(DEADLINE)
    with pytest.raises(SystemExit):
        vessel.api["getmyip"]()
    assert vessel.exits == [status.EXIT_INTERNAL]
    assert b"broker is gone" in b"".join(vessel.log)


# -- Repy V1 -------------------------------------------------------------------------------------------


def test_v1_ping_server_and_client(tmp_path: Path) -> None:
    """The seed program's UDP ping pair, two vessels exchanging a message with recvmess/sendmess."""
    server, client = make_vessel(tmp_path / "s"), make_vessel(tmp_path / "c")
    try:
        server_port, client_port = server.ports[0], client.ports[0]
        got: list[tuple[Any, ...]] = []
        done = threading.Event()

        def got_message(srcip: str, srcport: int, mess: bytes, ch: object) -> None:
            server.api["sendmess"](srcip, srcport, mess)

        def got_reply(srcip: str, srcport: int, mess: bytes, ch: object) -> None:
            got.append((srcip, mess, client.ctx.accountant.usage()["events"]))
            assert client.api["stopcomm"](ch) is True
            done.set()

        server_handle = server.api["recvmess"](server.api["getmyip"](), server_port, got_message)
        client.api["recvmess"](client.api["getmyip"](), client_port, got_reply)
        sent = client.api["sendmess"](LOCAL, server_port, "hello", client.api["getmyip"](), client_port)
        assert sent == 5
        assert done.wait(DEADLINE)
        assert got == [(LOCAL, b"hello", 1)]  # the callback ran as one event
        assert server.api["stopcomm"](server_handle) is True
        assert server.api["stopcomm"](server_handle) is False
        for v in (server, client):
            wait_for(lambda v=v: v.held("insockets") == 0 and v.held("events") == 0)
    finally:
        close_vessel(server)
        close_vessel(client)


SEED_SERVER = """
def got_message(srcip, srcport, mess, ch):
    sendmess(srcip, srcport, mess)
    stopcomm(ch)

if callfunc == 'initialize':
    recvmess(getmyip(), SERVER_PORT, got_message)
"""

SEED_CLIENT = """
def got_reply(srcip, srcport, mess, ch):
    print('received:', mess, 'from', srcip)
    stopcomm(ch)

if callfunc == 'initialize':
    recvmess(getmyip(), CLIENT_PORT, got_reply)
    sendmess(callargs[0], SERVER_PORT, callargs[1], getmyip(), CLIENT_PORT)
"""


def test_v1_seed_programs_run_through_the_checker(tmp_path: Path) -> None:
    """The seed's ping server and client as programs: checked, compiled and run with the full globals."""
    server, client = make_vessel(tmp_path / "s"), make_vessel(tmp_path / "c")
    before = threading.active_count()
    try:
        ports = {"SERVER_PORT": str(server.ports[0]), "CLIENT_PORT": str(client.ports[0])}
        client.ctx.args[:] = [LOCAL, "ping!"]
        for v, source in ((server, SEED_SERVER), (client, SEED_CLIENT)):
            for name, value in ports.items():
                source = source.replace(name, value)
            exec(check_and_compile(source, "ping.r2py"), build_globals(v.ctx))
        # Both programs stop listening after one message; their dispatcher threads then end.
        wait_for(lambda: threading.active_count() <= before)
        assert b"".join(client.log) == f"received: b'ping!' from {LOCAL}\n".encode()
        assert server.exits == client.exits == []
    finally:
        close_vessel(server)
        close_vessel(client)


def test_v1_openconn_waitforconn_echo(vessel: Vessel) -> None:
    api, (a, b) = vessel.api, vessel.ports[:2]
    seen: list[tuple[Any, ...]] = []

    def echo(
        remoteip: str, remoteport: int, sock: Any, thiscommhandle: object, listencommhandle: object
    ) -> None:
        seen.append((remoteip, remoteport, vessel.ctx.accountant.usage()["events"]))
        data = sock.recv(1024)  # blocks until the client has sent
        assert sock.send(data.upper()) == len(data)
        assert api["stopcomm"](thiscommhandle) is True  # closes this connection
        assert api["stopcomm"](listencommhandle) is True  # and stops listening

    api["waitforconn"](LOCAL, a, echo)
    conn = api["openconn"]("localhost", a, LOCAL, b)  # a host name is looked up first
    assert conn.send("echo me") == 7
    assert conn.recv(100) == b"ECHO ME"  # blocks until the reply is there
    with pytest.raises(errors.SocketClosedRemote):
        conn.recv(100)
    assert conn.close() is True and conn.close() is False
    assert seen == [(LOCAL, b, 1)]
    wait_for(lambda: vessel.held("insockets") == vessel.held("outsockets") == vessel.held("events") == 0)


def test_v1_openconn_without_a_local_address(vessel: Vessel) -> None:
    server = vessel.api["listenforconnection"](LOCAL, vessel.ports[0])
    conn = vessel.api["openconn"](LOCAL, vessel.ports[0])
    ip, port, accepted = until_ready(server.getconnection)
    assert ip == LOCAL and port not in vessel.ports
    big = b"z" * (3 * protocol.MAX_TCP_CHUNK)
    sender = threading.Thread(target=lambda: conn.send(big))  # blocks until all is sent
    sender.start()
    received = b""
    while len(received) < len(big):
        received += until_ready(lambda: accepted.recv(protocol.MAX_TCP_CHUNK))
    sender.join(DEADLINE)
    assert received == big


def test_v1_recvmess_again_replaces_the_function(vessel: Vessel) -> None:
    api, (a, b) = vessel.api, vessel.ports[:2]
    calls: list[str] = []
    arrived = threading.Event()

    def first(*args: Any) -> None:
        calls.append("first")

    def second(srcip: str, srcport: int, mess: bytes, ch: object) -> None:
        calls.append("second")
        arrived.set()

    old = api["recvmess"](LOCAL, a, first)
    new = api["recvmess"](LOCAL, a, second)
    assert vessel.held("insockets") == 1
    api["sendmess"](LOCAL, a, b"x", LOCAL, b)
    assert arrived.wait(DEADLINE)
    assert calls == ["second"]
    assert api["stopcomm"](old) is False
    assert api["stopcomm"](new) is True
    wait_for(lambda: vessel.held("insockets") == 0)


def test_v1_argument_errors(vessel: Vessel) -> None:
    api, (a, b) = vessel.api, vessel.ports[:2]
    with pytest.raises(errors.RepyArgumentError, match="given together"):
        api["sendmess"](LOCAL, a, b"x", LOCAL)
    with pytest.raises(errors.RepyArgumentError, match="function must be callable"):
        api["recvmess"](LOCAL, a, "not a function")
    with pytest.raises(errors.RepyArgumentError, match="commhandle must be a handle"):
        api["stopcomm"]("commhandle:1")
    with pytest.raises(errors.RepyArgumentError, match="timeout must be more than 0"):
        api["openconn"](LOCAL, a, LOCAL, b, 0)
    assert vessel.held("insockets") == 0


def test_v1_uncaught_exception_in_a_callback_ends_the_vessel(vessel: Vessel) -> None:
    api, (a, b) = vessel.api, vessel.ports[:2]

    def broken(srcip: str, srcport: int, mess: bytes, ch: object) -> None:
        raise ValueError("callback failed")

    api["recvmess"](LOCAL, a, broken)
    api["sendmess"](LOCAL, a, b"x", LOCAL, b)
    wait_for(lambda: vessel.exits == [status.EXIT_UNCAUGHT])
    assert b"callback failed" in b"".join(vessel.log)


def test_v1_callback_waits_for_a_free_event(tmp_path: Path) -> None:
    """With every event in use, a message waits in the kernel; it is handled once an event is free."""
    v = make_vessel(tmp_path, events=1)
    try:
        api, (a, b) = v.api, v.ports[:2]
        token = object()
        v.ctx.accountant.acquire("events", token)  # the program's one event is busy elsewhere
        got = threading.Event()
        handle = api["recvmess"](LOCAL, a, lambda srcip, srcport, mess, ch: got.set())
        api["sendmess"](LOCAL, a, b"queued", LOCAL, b)
        assert not got.wait(0.3)
        v.ctx.accountant.release("events", token)
        assert got.wait(DEADLINE)
        assert api["stopcomm"](handle) is True
    finally:
        close_vessel(v)
