"""The original dialects' network calls in-process, over a real broker and real loopback sockets: str in, str out,
every byte value intact."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seattle.vessel.child.runtime import Runtime
from seattle.vessel.spec import REPY_V1, REPY_V2
from tests.vessel.child.api.test_network import LOCAL, Vessel, close_vessel, make_vessel, wait_for

ALL_BYTES = "".join(chr(i) for i in range(256))


@pytest.fixture
def vessel(tmp_path: Path) -> Iterator[Vessel]:
    v = make_vessel(tmp_path)
    try:
        yield v
    finally:
        close_vessel(v)


def api(vessel: Vessel, platform: str = REPY_V2) -> dict[str, Any]:
    return Runtime(vessel.ctx, platform=platform).namespace("initialize", [])


def test_udp_messages_are_str(vessel: Vessel) -> None:
    names, (a, b) = api(vessel), vessel.ports[:2]
    server = names["listenformessage"](LOCAL, a)
    assert names["sendmessage"](LOCAL, a, ALL_BYTES, LOCAL, b) == 256
    messages: list[Any] = []
    wait_for(lambda: _take(server.getmessage, messages))
    assert messages == [(LOCAL, b, ALL_BYTES)]
    server.close()


def _take(call: Any, into: list[Any]) -> bool:
    """One result of `call` into `into`; False while it would block (SocketWouldBlockError)."""
    try:
        into.append(call())
    except Exception:
        return False
    return True


def test_tcp_streams_are_str(vessel: Vessel) -> None:
    names, (a, b) = api(vessel), vessel.ports[:2]
    listener = names["listenforconnection"](LOCAL, a)
    client = names["openconnection"](LOCAL, a, LOCAL, b, 5.0)
    accepted: list[Any] = []
    wait_for(lambda: _take(listener.getconnection, accepted))
    _, _, server_side = accepted[0]
    assert client.send(ALL_BYTES) == 256
    received: list[str] = []
    wait_for(lambda: _receive(server_side, received, 256))
    assert "".join(received) == ALL_BYTES and all(type(piece) is str for piece in received)
    client.close()
    server_side.close()
    listener.close()


def _receive(sock: Any, received: list[str], total: int) -> bool:
    try:
        received.append(sock.recv(total))
    except Exception:
        pass
    return sum(len(piece) for piece in received) >= total


def test_v1_recvmess_delivers_str(vessel: Vessel) -> None:
    names, (a, b) = api(vessel, REPY_V1), vessel.ports[:2]
    got: list[tuple[Any, ...]] = []
    done = threading.Event()

    def on_message(ip: str, port: int, message: Any, handle: object) -> None:
        got.append((ip, port, message))
        names["stopcomm"](handle)
        done.set()

    names["recvmess"](LOCAL, a, on_message)
    names["sendmess"](LOCAL, a, "\xff\x00ping", LOCAL, b)
    assert done.wait(10)
    assert got == [(LOCAL, b, "\xff\x00ping")]
