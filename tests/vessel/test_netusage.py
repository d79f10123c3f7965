"""The supervisor's network figures: the broker and the vessel count the bytes they move, the usage report
carries the sum (the vessel's counters are memory it shares with its supervisor).

The broker tests run a real BrokerServer on a thread over a SOCK_SEQPACKET socketpair (as test_broker does);
the vessel test runs a real sandboxed program through the launcher that sends a known number of bytes to
itself over UDP and TCP. All traffic stays on 127.0.0.1; the net/loop split for other addresses is checked on
the counters alone, which send nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from seattle.resources import DEFAULT_ALLOTMENT, Resources
from seattle.vessel import broker_protocol as protocol
from seattle.vessel.host.launcher import VesselLauncher
from seattle.vessel.supervisor.supervise import NetworkMeter
from seattle.vessel.traffic import Traffic
from tests.vessel.test_broker import LOCAL, Broker, free_ports, start_broker, stop_broker
from tests.vessel_helpers import log_text, start_vessel

#: What the vessel program below sends to itself: UDP datagrams, then one TCP stream.
DATAGRAMS, DATAGRAM_SIZE, STREAM_SIZE = 20, 1000, 50_000

SELF_TRAFFIC = """
a, b, c, d, datagrams, size, stream = [int(arg) for arg in callargs]
inbox = listenformessage('127.0.0.1', a)
for i in range(datagrams):
    sendmessage('127.0.0.1', a, 'x' * size, '127.0.0.1', b)
got = 0
start = getruntime()
while got < datagrams * size and getruntime() - start < 10:
    try:
        got += len(inbox.getmessage()[2])
    except SocketWouldBlockError:
        sleep(0.01)

listener = listenforconnection('127.0.0.1', c)
outgoing = openconnection('127.0.0.1', c, '127.0.0.1', d, 5)
incoming = None
while incoming is None and getruntime() - start < 20:
    try:
        incoming = listener.getconnection()[2]
    except SocketWouldBlockError:
        sleep(0.01)
data = b'y' * stream
sent = streamed = 0
while streamed < stream and getruntime() - start < 30:
    if sent < stream:
        try:
            sent += outgoing.send(data[sent:])
        except SocketWouldBlockError:
            pass
    try:
        streamed += len(incoming.recv(65536))
    except SocketWouldBlockError:
        sleep(0.005)
log('moved ' + str(got) + ' ' + str(streamed) + '\\n')
while True:
    sleep(0.1)
"""


@pytest.fixture
def broker() -> Iterator[Broker]:
    b = start_broker()
    yield b
    stop_broker(b)


def test_traffic_charges_127_peers_to_loopback_and_others_to_the_network() -> None:
    traffic = Traffic()
    assert traffic.sent("127.0.0.1", 10) == 10
    traffic.sent("127.5.6.7", 5)
    traffic.sent("10.1.2.3", 7)
    traffic.received("127.0.0.1", 3)
    traffic.received("192.0.2.8", 4)
    traffic.received("1.127.0.0", 2)  # 127 elsewhere than the first byte is not loopback
    assert traffic.snapshot() == {"netsend": 7, "netrecv": 6, "loopsend": 15, "looprecv": 3}


def test_meter_reports_byte_counts_and_rates_over_each_interval() -> None:
    traffic = Traffic()
    traffic.sent("127.0.0.1", 100)  # before the meter: counted in the bytes, not in the first rate
    meter = NetworkMeter((traffic,), now=10.0)
    traffic.sent("127.0.0.1", 500)
    traffic.received("10.0.0.1", 2000)
    first = meter.report(now=10.5)
    assert first == {"netsend": 0.0, "netsend_bytes": 0, "netrecv": 4000.0, "netrecv_bytes": 2000,
                     "loopsend": 1000.0, "loopsend_bytes": 600, "looprecv": 0.0, "looprecv_bytes": 0}
    traffic.sent("10.0.0.1", 300)
    second = meter.report(now=12.5)
    assert second["netsend"] == 150.0 and second["netrecv"] == 0.0 and second["loopsend"] == 0.0
    assert second["netsend_bytes"] == 300 and second["loopsend_bytes"] == 600
    assert meter.report(now=12.5)["netsend"] == 0.0  # no time passed: no rate, and no division by zero


@pytest.mark.slow
def test_broker_counts_what_it_sends_for_the_vessel(broker: Broker) -> None:
    """The broker counts the datagrams it sends itself; what the vessel moves on its own sockets is the
    vessel's to count (test_a_vessels_usage_report_carries_its_loopback_traffic)."""
    a, b = broker.ports[:2]
    broker.call(protocol.OP_UDP_LISTEN, LOCAL, a)
    assert broker.call(protocol.OP_UDP_SEND, LOCAL, a, b"p" * 300, LOCAL, b) == 300
    assert broker.call(protocol.OP_UDP_SEND, LOCAL, a, b"q" * 200, None, 0) == 200  # the V1 form
    assert broker.server.traffic.snapshot() == {"netsend": 0, "netrecv": 0, "loopsend": 500, "looprecv": 0}


def test_shared_counters_are_seen_by_the_other_process() -> None:
    traffic = Traffic.shared()
    pid = os.fork()
    if pid == 0:
        traffic.sent("127.0.0.1", 1234)
        traffic.received("192.0.2.1", 99)
        os._exit(0)
    os.waitpid(pid, 0)
    assert traffic.snapshot() == {"netsend": 0, "netrecv": 99, "loopsend": 1234, "looprecv": 0}


@pytest.mark.slow
async def test_a_vessels_usage_report_carries_its_loopback_traffic(
        launcher: VesselLauncher, tmp_path: Path) -> None:
    ports = free_ports(4)
    resources = Resources(dict(DEFAULT_ALLOTMENT.quantities), messport=frozenset(ports),
                          connport=frozenset(ports))
    handle = await start_vessel(launcher, tmp_path, SELF_TRAFFIC, resources=resources,
                                args=tuple(map(str, [*ports, DATAGRAMS, DATAGRAM_SIZE, STREAM_SIZE])))
    moved = DATAGRAMS * DATAGRAM_SIZE + STREAM_SIZE
    try:
        with trio.move_on_after(45):
            while handle.running and handle.usage.get("looprecv_bytes", 0) < moved:
                await trio.sleep(0.1)
        text = log_text(handle)
        assert f"moved {DATAGRAMS * DATAGRAM_SIZE} {STREAM_SIZE}" in text, text
        usage = handle.usage
        assert usage["loopsend_bytes"] >= moved and usage["looprecv_bytes"] >= moved, usage
        assert usage["netsend_bytes"] == 0 and usage["netrecv_bytes"] == 0
        assert usage["netsend"] == 0.0 and usage["netrecv"] == 0.0
        assert {"cpu", "cpu_seconds", "memory", "diskused", "stoptimes"} <= usage.keys()  # the nanny's, still
    finally:
        await handle.stop()
