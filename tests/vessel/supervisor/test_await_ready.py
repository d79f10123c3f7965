"""The supervisor's wait for its prepared child: a host that hangs up meanwhile abandons the start.

Real socket pairs stand for the broker channel (child side sends READY) and the control channel (the host).
"""

from __future__ import annotations

import socket
import threading

import pytest

from seattle.vessel.supervisor.supervise import READY, _await_ready


def test_ready_child_starts_and_a_waiting_host_message_is_left_for_the_control_reader() -> None:
    broker, child = socket.socketpair()
    host, node = socket.socketpair()
    node.send(b"stop")
    threading.Timer(0.05, child.send, (READY,)).start()
    _await_ready(broker, host)
    assert host.recv(16) == b"stop"


def test_a_host_that_hangs_up_before_the_child_is_ready_abandons_the_start() -> None:
    broker, child = socket.socketpair()
    host, node = socket.socketpair()
    node.close()
    with pytest.raises(RuntimeError, match="node manager went away"):  # not the readiness timeout's error
        _await_ready(broker, host)
    child.close()


def test_a_child_that_died_is_not_waited_for() -> None:
    broker, child = socket.socketpair()
    host, _node = socket.socketpair()
    child.close()
    _await_ready(broker, host)
