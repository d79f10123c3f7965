"""The network fast path in real vessels: every allotment still holds when the vessel does its own I/O.

A vessel sends and receives on the sockets its broker handed it (docs/sandbox-layers.md, "The network path"),
so these tests check from outside, with plain sockets of the test process, that a program sending or
receiving flat out gets no more than its loopsend/netsend/looprecv rate over a window, and that the vessel still
holds only the sockets and ports of its allotment. The bound is the accountant's: rate × (window + SLACK)
plus one call, with a margin for when the outside receiver saw the first byte. Only the upper bound is
asserted; how close a vessel comes to its rate is bench/bench_netpath.py's business. All traffic stays on
this host (127.0.0.1, and for netsend the host's own address).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import trio

from seattle.resources import DEFAULT_ALLOTMENT
from seattle.vessel.child.accounting import SLACK
from seattle.vessel.host.launcher import VesselLauncher
from seattle.vessel.spec import VesselSpec
from seattle.vessel.supervisor.broker_server import default_local_ip
from tests.vessel_helpers import log_text, run_vessel, start_vessel

pytestmark = pytest.mark.slow

LOCAL = "127.0.0.1"
RATE = 100_000  # bytes a second
WINDOW = 1.0
PACKET = 64
#: When the outside side saw the first byte compared with when the vessel sent it, at most (seconds).
FIRST_BYTE_MARGIN = 0.1


def allowed(rate: float, largest_call: int) -> float:
    return rate * (WINDOW + SLACK + FIRST_BYTE_MARGIN) + largest_call


def count_for(receive: socket.socket, per_read_overhead: int) -> float:
    """Bytes (plus the overhead per read) that arrive in WINDOW seconds from the first read on."""
    receive.settimeout(10)
    total = len(receive.recv(65536)) + per_read_overhead
    first = time.monotonic()
    receive.settimeout(0.05)
    while time.monotonic() - first < WINDOW:
        try:
            total += len(receive.recv(65536)) + per_read_overhead
        except TimeoutError:
            pass
    return total


UDP_FLOOD = """
ip, port = callargs[0], int(callargs[1])
sink = listenformessage(ip, 63100)
while True:
    sendmessage(ip, port, b'u' * 1000, ip, 63100)
"""


@pytest.mark.parametrize("resource", ["loopsend", "netsend"])
async def test_a_udp_sender_flat_out_is_held_to_its_rate(
        launcher: VesselLauncher, tmp_path: Path, resource: str) -> None:
    """netsend: to the host's own non-loopback address, which the kernel delivers locally (nothing leaves)."""
    ip = LOCAL if resource == "loopsend" else default_local_ip()
    if ip == LOCAL and resource == "netsend":
        return  # the host has no other IPv4 address; the loopsend case covers the same path
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    receiver.bind((ip, 0))
    resources = DEFAULT_ALLOTMENT.replace(**{resource: RATE})
    handle = await start_vessel(launcher, tmp_path / "v", UDP_FLOOD, resources=resources,
                                args=(ip, str(receiver.getsockname()[1])), local_ips=(ip,))
    try:
        counted = await trio.to_thread.run_sync(count_for, receiver, PACKET)
    finally:
        await handle.stop()
        receiver.close()
    assert counted <= allowed(RATE, 1000 + PACKET), (counted, log_text(handle))
    assert counted > 0


TCP_FLOOD = """
sock = openconnection('127.0.0.1', int(callargs[0]), '127.0.0.1', 63101, 5)
data = b't' * 65536
while True:
    try:
        sock.send(data)
    except SocketWouldBlockError:
        sleep(0.001)
"""


async def test_a_tcp_sender_flat_out_is_held_to_loopsend(launcher: VesselLauncher, tmp_path: Path) -> None:
    server = socket.socket()
    server.bind((LOCAL, 0))
    server.listen(1)
    resources = DEFAULT_ALLOTMENT.replace(loopsend=RATE)
    handle = await start_vessel(launcher, tmp_path / "v", TCP_FLOOD,
                                resources=resources, args=(str(server.getsockname()[1]),))
    try:
        server.settimeout(10)
        conn, _ = await trio.to_thread.run_sync(server.accept)
        with conn:
            counted = await trio.to_thread.run_sync(count_for, conn, 0)
    finally:
        await handle.stop()
        server.close()
    # Each send is charged its bytes plus 64, so the stream itself stays below the rate.
    assert counted <= allowed(RATE, 65536 + PACKET), (counted, log_text(handle))
    assert counted > 0


UDP_SINK = """
inbox = listenformessage('127.0.0.1', 63102)
log('ready\\n')
got = 0
start = None
while start is None or getruntime() - start < WINDOW:
    try:
        got += len(inbox.getmessage()[2]) + 64
        if start is None:
            start = getruntime()
    except SocketWouldBlockError:
        sleep(0.001)
log('received ' + str(got) + '\\n')
"""


async def test_a_listener_flooded_from_outside_is_held_to_looprecv(launcher: VesselLauncher, tmp_path: Path) -> None:
    resources = DEFAULT_ALLOTMENT.replace(looprecv=RATE)
    ready = trio.Event()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    vessel_dir = tmp_path / "v"
    vessel_dir.mkdir()
    (vessel_dir / "program.py").write_text(UDP_SINK.replace("WINDOW", str(WINDOW)))
    spec = VesselSpec(vessel_dir=vessel_dir, program="program.py", resources=resources, local_ips=(LOCAL,))
    handle = await launcher.start(spec, on_output=lambda _data: ready.set())
    try:
        with trio.fail_after(30):
            await ready.wait()
            while handle.running:  # flood far past the rate; the kernel drops what the vessel leaves
                for _ in range(200):
                    sender.sendto(b"r" * 1000, (LOCAL, 63102))
                await trio.sleep(0.005)
    finally:
        sender.close()
        await handle.stop()
    text = log_text(handle)
    received = int(text.split("received ")[1].split()[0])
    assert 0 < received <= allowed(RATE, 1000 + PACKET), text


SOCKETS = """
first = listenformessage('127.0.0.1', 63100)
try:
    listenformessage('127.0.0.1', 63101)
except ResourceExhaustedError as error:
    log('second listener refused: insockets\\n')
try:
    listenformessage('127.0.0.1', 50999)
except ResourceForbiddenError as error:
    log('forbidden port refused\\n')
first.close()
second = listenformessage('127.0.0.1', 63101)
log('after close: listening again\\n')
"""


async def test_sockets_and_ports_stay_held_to_the_allotment(launcher: VesselLauncher, tmp_path: Path) -> None:
    resources = DEFAULT_ALLOTMENT.replace(insockets=1)
    handle = await run_vessel(launcher, tmp_path / "v", SOCKETS, resources=resources)
    text = log_text(handle)
    assert handle.exit_code == 0, text
    assert "second listener refused: insockets" in text and "forbidden port refused" in text, text
    assert "after close: listening again" in text, text
