"""The vessel's own I/O on the sockets the broker handed it: closing ends waits, counts reach the supervisor.

In-process, over a real broker on a thread (test_network's harness). The vessel waits for a handed-over
socket in poll() on its own copy, in slices of WAIT_SLICE (5 s); closing the socket must end such a wait at
once (the broker shuts the socket down), and the descriptor is closed only after the last thread using it
has left, so the port is free again right after. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seattle.vessel import errors
from seattle.vessel.child.api import network
from tests.vessel.child.api.test_network import (
    LOCAL,
    Vessel,
    close_vessel,
    make_vessel,
    tcp_pair,
    until_ready,
    wait_for,
)

pytestmark = pytest.mark.slow

#: Far below WAIT_SLICE: a wait that ends within this was woken by the close, not by its own timeout.
PROMPT = 1.5
assert PROMPT < network.WAIT_SLICE


@pytest.fixture
def vessel(tmp_path: Path) -> Iterator[Vessel]:
    v = make_vessel(tmp_path)
    yield v
    close_vessel(v)


def port_is_free(kind: int, port: int) -> bool:
    probe = socket.socket(socket.AF_INET, kind)
    try:
        probe.bind((LOCAL, port))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def test_stopcomm_ends_the_dispatchers_wait_and_frees_the_port(vessel: Vessel) -> None:
    port = vessel.ports[0]
    handle = vessel.api["recvmess"](LOCAL, port, print)
    time.sleep(0.1)  # the dispatcher is in poll() now
    assert not port_is_free(socket.SOCK_DGRAM, port)
    began = time.monotonic()
    assert vessel.api["stopcomm"](handle) is True
    wait_for(lambda: port_is_free(socket.SOCK_DGRAM, port))
    assert time.monotonic() - began < PROMPT
    assert vessel.held("insockets") == 0


def test_closing_a_connection_ends_a_v1_recv_waiting_in_another_thread(vessel: Vessel) -> None:
    api, (a, b) = vessel.api, vessel.ports[:2]
    listener = api["listenforconnection"](LOCAL, a)
    conn = api["openconn"](LOCAL, a, LOCAL, b)
    until_ready(listener.getconnection)
    outcome: list[BaseException] = []

    def receive() -> None:
        try:
            conn.recv(10)  # V1: blocks until data comes
        except errors.RepyException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=receive)
    reader.start()
    time.sleep(0.1)
    began = time.monotonic()
    assert conn.close() is True
    reader.join(PROMPT)
    assert not reader.is_alive() and time.monotonic() - began < PROMPT
    assert len(outcome) == 1 and isinstance(outcome[0], errors.SocketClosedLocal)


def test_the_vessel_counts_its_own_traffic_for_the_supervisor(vessel: Vessel) -> None:
    api, (a, b) = vessel.api, vessel.ports[:2]
    inbox = api["listenformessage"](LOCAL, a)
    outbox = api["listenformessage"](LOCAL, b)
    assert api["sendmessage"](LOCAL, a, b"x" * 300, LOCAL, b) == 300  # from a listener: the vessel sends
    until_ready(inbox.getmessage)
    server, client, accepted = tcp_pair(vessel)
    assert client.send(b"y" * 1000) == 1000
    received = 0
    while received < 1000:
        received += len(until_ready(lambda: accepted.recv(4096)))
    counts: dict[str, Any] = vessel.ctx.accountant.traffic.snapshot()
    assert counts == {"netsend": 0, "netrecv": 0, "loopsend": 1300, "looprecv": 1300}
    assert vessel.server.traffic.snapshot()["loopsend"] == 0  # nothing went through the broker
    outbox.close()
    server.close()
