"""A real VesselContext for testing API modules in-process: a temporary vessel directory, the real Accountant on
a clock that only moves when it sleeps, and a real broker pair whose supervisor side reports fixed usage."""

from __future__ import annotations

import builtins
import copy
import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import seattle
from seattle.resources import DEFAULT_ALLOTMENT
from seattle.vessel.child.accounting import Accountant
from seattle.vessel.child.broker_client import BrokerClient
from seattle.vessel.child.context import VesselContext
from seattle.vessel.supervisor.broker_server import BrokerServer, NetworkPolicy

SUPERVISOR_USAGE: dict[str, Any] = {
    "cpu": 0.125, "cpu_seconds": 2.5, "memory": 7_000_000, "diskused": 8192,
    "stoptimes": [[10.0, 0.5], [11.0, 0.25]],
}
#: How long a test waits for something another thread does before it fails (never reached when correct).
PATIENCE = 10.0
PACKAGE_DIR = str(Path(seattle.__file__).resolve().parent)


class VesselExit(SystemExit):
    """What the tests' ctx.exit raises instead of ending the process."""


class SettableClock:
    """The accountant's time source in these tests: it only moves when the accountant sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@dataclass
class Harness:
    ctx: VesselContext
    clock: SettableClock
    supervisor_usage: dict[str, Any]
    exits: list[int] = field(default_factory=list)
    written: bytearray = field(default_factory=bytearray)

    def api(self, module: ModuleType) -> dict[str, Any]:
        return module.exports(self.ctx)

    def log(self) -> str:
        return self.written.decode("utf-8")

    def usage(self, resource: str) -> Any:
        """The accountant's figure for `resource`, as an approx for renewables (bucket levels are floats)."""
        value = self.ctx.accountant.usage()[resource]
        return pytest.approx(value, abs=1e-3) if type(value) is float else value


@contextmanager
def vessel(directory: Path, **allotment: Any) -> Iterator[Harness]:
    """A VesselContext over `directory` with DEFAULT_ALLOTMENT changed by `allotment`."""
    resources = DEFAULT_ALLOTMENT.replace(**allotment)
    directory.mkdir(parents=True, exist_ok=True)
    clock = SettableClock()
    supervisor_usage = copy.deepcopy(SUPERVISOR_USAGE)
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server = BrokerServer(parent, NetworkPolicy.for_allotment(resources, ("127.0.0.1",)),
                          lambda: copy.deepcopy(supervisor_usage))
    serving = threading.Thread(target=server.serve, daemon=True)
    serving.start()
    client = BrokerClient(child)
    log_lock = threading.Lock()
    harness: Harness

    def write_log(data: bytes) -> None:
        assert type(data) is bytes
        with log_lock:
            harness.written.extend(data)

    def exit_vessel(code: int) -> Any:
        harness.exits.append(code)
        raise VesselExit(code)

    ctx = VesselContext(
        resources=resources,
        accountant=Accountant(resources, clock=clock, sleep=clock.sleep),
        vessel_dir=directory,
        broker=client,
        write_log=write_log,
        exit=exit_vessel,
    )
    harness = Harness(ctx, clock, supervisor_usage)
    try:
        yield harness
    finally:
        client.close()
        server.close()
        serving.join(PATIENCE)


def run_user_code(source: str, names: dict[str, Any], filename: str = "prog.r2py") -> dict[str, Any]:
    """Run `source` the way vessel code runs: its own (non-host) builtins dict and `names` as globals.

    Frames of such code count as user frames for the tracebacks, exactly as checked programs' do.
    """
    user_builtins = {name: getattr(builtins, name)
                     for name in ("ValueError", "KeyError", "Exception", "len", "str", "range", "list",
                                  "__build_class__", "isinstance", "int", "type")}
    namespace = dict(names, __builtins__=user_builtins, __name__="program")
    exec(compile(textwrap.dedent(source), filename, "exec"), namespace)
    return namespace


def wait_until(condition: Any) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for another thread"
        time.sleep(0.005)
