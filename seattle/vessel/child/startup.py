"""The sandboxed vessel process, from the moment its supervisor forked it until the program ends.

Order matters: read the program, apply the OS layers while the process is still single-threaded (Landlock
confines only the calling thread and its future children), and only then start the broker client's reader
thread and run user code.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import NoReturn

from seattle.resources import DEFAULT_ALLOTMENT
from seattle.vessel import control
from seattle.vessel.child.accounting import Accountant
from seattle.vessel.child.broker_client import BrokerClient
from seattle.vessel.child.checker import check_and_compile
from seattle.vessel.child.context import VesselContext
from seattle.vessel.child.runtime import run_program
from seattle.vessel.child.safe_builtins import make_builtins
from seattle.vessel.oslayer import LAYER_NAMES, HostSupport, LayerPlan, SandboxSetupError, apply_layers
from seattle.vessel.spec import LANGUAGE_LAYER, VesselSpec
from seattle.vessel.status import EXIT_SANDBOX_SETUP
from seattle.vessel.traffic import Traffic

#: Descriptors the runtime itself holds (stdio, the broker socket, urandom) on top of the program's files
#: and sockets.
RUNTIME_FDS = 16
#: A program larger than this is refused before it is parsed.
MAX_PROGRAM_BYTES = 1024 * 1024

_log_lock = threading.Lock()

WARM_UP_PROGRAM = b"""
class Sample:
    def __init__(self, items):
        self.items = [str(i) for i in items if i % 2 == 0]

mycontext['sample'] = Sample(range(10)).items
log(' '.join(mycontext['sample']), '\\n')
"""


def write_log(data: bytes) -> None:
    """Write all of `data` to fd 1, the pipe to the supervisor; one writer at a time so lines never mix."""
    view = memoryview(data)
    with _log_lock:
        while view:
            written = os.write(1, view)
            view = view[written:]


def exit_now(code: int) -> NoReturn:
    """End the whole vessel at once: no finally blocks, no atexit, other threads stop where they are."""
    os._exit(code)


def read_program(spec: VesselSpec) -> bytes:
    fd = os.open(spec.vessel_dir / spec.program, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        source = f.read(MAX_PROGRAM_BYTES + 1)
    if len(source) > MAX_PROGRAM_BYTES:
        raise ValueError(f"the program is larger than {MAX_PROGRAM_BYTES} bytes")
    return source


def layer_plan(spec: VesselSpec) -> LayerPlan:
    allotment = spec.resources
    return LayerPlan(
        vessel_dir=spec.vessel_dir,
        memory_bytes=allotment.count("memory"),
        # The vessel holds a copy of each of its sockets (docs/sandbox-layers.md, "The network path").
        max_open_files=sum(allotment.count(name) for name in ("filesopened", "insockets", "outsockets"))
        + RUNTIME_FDS,
        max_file_bytes=max(allotment.count("diskused"), 1),
        layers=frozenset(spec.layers) & frozenset(LAYER_NAMES),
    )


def warm_up() -> None:
    """Walk the start path once on a sample, in a vessel process forked ahead of its request.

    A forked process shares its parent's memory until it writes to it, and CPython writes to every object it
    touches (reference counts), so the first run of any code copies pages one fault at a time. Doing that
    here, while the process waits for its request, takes those milliseconds off the real start. Nothing
    here depends on the host (no directory is looked at), so it cannot fail where a real start would not.
    """
    sample = VesselSpec(vessel_dir=Path("/"), program="warm-up", resources=DEFAULT_ALLOTMENT)
    spec = VesselSpec.from_wire(control.decode(control.encode({"t": "spec", **sample.to_wire()})))
    Accountant(spec.resources)
    make_builtins(print)
    check_and_compile(WARM_UP_PROGRAM, spec.program)


def run_child(
    spec: VesselSpec, broker_sock: socket.socket, support: HostSupport, supervisor_pid: int, traffic: Traffic
) -> NoReturn:
    """Entry point in the forked child; fd 1 and 2 already lead to the supervisor's log pipe, and `traffic`
    is the byte counters the supervisor reads.

    The parent-death signal is armed inside apply_layers; a supervisor that died before that would never
    send it, so the parent's pid is compared afterwards.
    """
    try:
        source = read_program(spec)
    except (OSError, ValueError) as exc:
        write_log(f"cannot read the program {spec.program!r}: {getattr(exc, 'strerror', None) or exc}\n".encode())
        exit_now(EXIT_SANDBOX_SETUP)
    try:
        plan = layer_plan(spec)
        applied = apply_layers(plan, support)
        if missing := plan.layers - set(applied):
            raise SandboxSetupError(f"requested layers not available on this host: {', '.join(sorted(missing))}")
        if os.getppid() != supervisor_pid:
            exit_now(EXIT_SANDBOX_SETUP)
        os.chdir(spec.vessel_dir)
    except (SandboxSetupError, OSError) as exc:
        write_log(f"the sandbox could not be set up: {exc}\n".encode())
        exit_now(EXIT_SANDBOX_SETUP)
    ctx = VesselContext(
        resources=spec.resources,
        accountant=Accountant(spec.resources, traffic=traffic),
        vessel_dir=spec.vessel_dir,
        broker=BrokerClient(broker_sock),
        write_log=write_log,
        exit=exit_now,
        args=list(spec.args),
        start_time=spec.requested_at,
    )
    run_program(ctx, source, spec.program, language_layer=LANGUAGE_LAYER in spec.layers, platform=spec.platform)
