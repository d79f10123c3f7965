"""One supervisor process per vessel: forks the sandboxed child, then holds it to its allotment.

The supervisor is forked from the zygote and stays unconfined; it is the "separate process" of the design.
Before the child gets its spec (and so before it runs any of the vessel's code), the supervisor puts it in a
cgroup of its own where the host offers one (seattle.vessel.oslayer.cgroups): the kernel then holds its CPU
share and memory, and the group is removed when the child has been reaped.
Its threads:
  - nanny: CPU throttle (SIGSTOP/SIGCONT, unless the cgroup holds the CPU), memory and disk kills
    (seattle.vessel.supervisor.nanny);
  - broker: performs the child's network calls after checking them again (seattle.vessel.supervisor.broker_server);
  - log pump: the child's stdout/stderr pipe → control channel;
  - control reader: "stop" from the host, or the host going away;
  - usage reporter: Nanny.usage() and the broker's network figures (NetworkMeter) to the host once a second.
The main thread waits for the child and sends the final "exit" message.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from seattle.resources import DEFAULT_ALLOTMENT
from seattle.vessel import control
from seattle.vessel.child.startup import run_child, warm_up
from seattle.vessel.oslayer import HostSupport
from seattle.vessel.oslayer.cgroups import CgroupError, VesselCgroup, cgroup_support
from seattle.vessel.spec import VesselSpec
from seattle.vessel.status import (
    EXIT_RESOURCE_KILL,
    EXIT_SANDBOX_SETUP,
    EXIT_SIGNALLED,
    EXIT_STOPPED,
    exit_reason,
    status_for_exit,
)
from seattle.vessel.supervisor.broker_server import BrokerServer, NetworkPolicy
from seattle.vessel.supervisor.memcharge import MemoryMeter
from seattle.vessel.supervisor.nanny import Nanny, NannyVerdict
from seattle.vessel.traffic import Traffic

LOG_CHUNK = 64 * 1024
USAGE_INTERVAL = 1.0
#: What the prepared child sends on its broker socket once warmed up, before it reads its spec.
READY = b"ready"
#: How long a start waits for a prepared child still warming up before measuring its baseline anyway.
READY_TIMEOUT = 10.0
#: After the child is gone, how long the log pump may take to drain the pipe.
LOG_DRAIN_TIMEOUT = 2.0


class ControlSender:
    """Sends control messages from several threads; a vanished host is not an error here."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        data = control.encode(message)
        with self._lock:
            try:
                self._sock.send(data)
            except OSError:
                pass


class NetworkMeter:
    """The usage report's network figures: the broker's byte counters (what it sent for the vessel) plus the
    vessel's own (what it moved on the sockets it holds, in memory shared with this process).

    For each of netsend, netrecv, loopsend and looprecv the report carries `<name>_bytes`, the payload bytes
    since the vessel started, and `<name>`, the rate in bytes/s over the interval since the previous report
    (USAGE_INTERVAL, about the one-second window of the CPU share; the first interval starts with the
    meter). The rate takes the plain name so that, as with `cpu`, usage[name] compares with the allotment's
    resource of the same name.
    """

    def __init__(self, counters: tuple[Traffic, ...], now: float) -> None:
        self._counters = counters
        self._since = now
        self._then = self._snapshot()

    def _snapshot(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for traffic in self._counters:
            for name, count in traffic.snapshot().items():
                totals[name] = totals.get(name, 0) + count
        return totals

    def report(self, now: float) -> dict[str, float | int]:
        counts = self._snapshot()
        elapsed = now - self._since
        figures: dict[str, float | int] = {}
        for name, count in counts.items():
            figures[f"{name}_bytes"] = count
            figures[name] = (count - self._then[name]) / elapsed if elapsed > 0 else 0.0
        self._since, self._then = now, counts
        return figures


class Supervision:
    """The state the supervisor's threads share about one child."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.stop_requested = threading.Event()
        self.finished = threading.Event()
        self.verdict: NannyVerdict | None = None

    def kill(self) -> None:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                return


@dataclass
class PreparedChild:
    """A vessel process forked ahead of its request, waiting for the spec on `spec_write`'s pipe."""

    pid: int
    broker: socket.socket  # the supervisor's end of the broker socketpair
    log_read: int          # the child's stdout and stderr
    spec_write: int
    traffic: Traffic       # the child's byte counters, in memory both processes share


def prepare_child(support: HostSupport, inherited: list[socket.socket]) -> PreparedChild:
    """Fork the vessel's process now; it waits, doing nothing, until `start_prepared` hands it a spec.

    Forking before the request takes the fork (and the copy-on-write faults after it) off the start path.
    `inherited` are sockets of this process that the child must not keep.
    """
    broker_parent, broker_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    log_read, log_write = os.pipe()
    spec_read, spec_write = os.pipe()
    traffic = Traffic.shared()
    supervisor_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        for sock in (*inherited, broker_parent):
            sock.close()
        for fd in (log_read, spec_write):
            os.close(fd)
        _become_child(support, supervisor_pid, broker_child, log_write, spec_read, traffic)
    broker_child.close()
    os.close(log_write)
    os.close(spec_read)
    return PreparedChild(pid, broker_parent, log_read, spec_write, traffic)


def serve_as_spare(zygote_link: socket.socket, support: HostSupport) -> NoReturn:
    """A supervisor forked before any request: prepare the child, then wait for the zygote to hand over one
    start request (its spec and the control channel); never returns."""
    prepared = prepare_child(support, [zygote_link])
    _warm_up_supervisor(prepared.pid)
    try:
        data, fds, _flags, _addr = socket.recv_fds(zygote_link, control.MAX_CONTROL_MESSAGE, 1)
    except OSError:
        data, fds = b"", []
    zygote_link.close()
    if not data or len(fds) != 1:  # the zygote is gone (or confused): nothing to run
        for fd in fds:
            os.close(fd)
        Supervision(prepared.pid).kill()
        os._exit(0)
    control_sock = socket.socket(fileno=fds[0])
    try:
        spec = VesselSpec.from_wire(control.decode(data)["spec"])
    except (control.ControlProtocolError, KeyError, TypeError, ValueError) as exc:
        Supervision(prepared.pid).kill()
        refuse(control_sock, f"malformed start request: {exc}")
        os._exit(0)
    run_supervisor(spec, control_sock, prepared)


def _warm_up_supervisor(pid: int) -> None:
    """The supervisor's share of the start path, run once on a sample before the request (see child.startup.warm_up)."""
    sample = VesselSpec(vessel_dir=Path("/"), program="warm-up", resources=DEFAULT_ALLOTMENT)
    VesselSpec.from_wire(control.decode(control.encode({"t": "start", "spec": sample.to_wire()}))["spec"])
    Nanny(pid, sample.resources, sample.vessel_dir)
    NetworkPolicy.for_allotment(sample.resources, ("127.0.0.1",))
    control.encode({"t": "started", "pid": pid, "supervisor": pid, "layers": ["language"]})


def refuse(control_sock: socket.socket, reason: str) -> None:
    """Report a start request that could not even begin, as the vessel's exit."""
    message = {"t": "exit", "code": EXIT_SANDBOX_SETUP, "status": str(status_for_exit(EXIT_SANDBOX_SETUP)),
               "reason": reason}
    try:
        control_sock.send(control.encode(message))
    except OSError:
        pass
    control_sock.close()


def run_supervisor(spec: VesselSpec, control_sock: socket.socket, prepared: PreparedChild) -> NoReturn:
    """Start the prepared child with `spec` and supervise it to its end; never returns."""
    sender = ControlSender(control_sock)
    try:
        code, reason = _supervise(spec, control_sock, sender, prepared)
    except Exception as exc:  # a fault of ours: report it rather than vanish silently
        code, reason = EXIT_SANDBOX_SETUP, f"supervisor failure: {exc!r}"
    sender.send({"t": "exit", "code": code, "status": str(status_for_exit(code)), "reason": reason})
    os._exit(0)


def _supervise(
    spec: VesselSpec, control_sock: socket.socket, sender: ControlSender, prepared: PreparedChild
) -> tuple[int, str]:
    pid = prepared.pid
    supervision = Supervision(pid)
    cgroup: VesselCgroup | None = None
    try:
        # Measured once the prepared process, warmed up, waits for its spec: what it holds now is our
        # runtime's, the same in every vessel, and the vessel is charged only for what it adds (memcharge).
        _await_ready(prepared.broker, control_sock)
        meter = MemoryMeter(pid)
        baseline = meter.unique_bytes()
        cgroup = _join_cgroup(spec, pid)
        _write_all(prepared.spec_write, control.encode({"t": "spec", **spec.to_wire()}))
        os.close(prepared.spec_write)
        nanny = Nanny(pid, spec.resources, spec.vessel_dir, start_time=spec.requested_at,
                      memory_meter=meter, memory_baseline=baseline, cgroup=cgroup)
        policy = NetworkPolicy.for_allotment(spec.resources, spec.local_ips or None)
        broker = BrokerServer(prepared.broker, policy, nanny.usage)
    except BaseException:
        supervision.kill()
        _forward_available_log(prepared.log_read, sender)  # e.g. why the prepared child is already gone
        if cgroup is not None:
            os.waitpid(pid, 0)
            cgroup.remove()
        raise
    sender.send({"t": "started", "pid": pid, "supervisor": os.getpid(), "layers": sorted(spec.layers)})
    log_pump = _thread(_pump_log, prepared.log_read, sender)
    nanny_thread = _thread(_run_nanny, nanny, supervision)
    _thread(broker.serve)
    _thread(_read_control, control_sock, supervision)
    network_meter = NetworkMeter((broker.traffic, prepared.traffic), time.monotonic())
    _thread(_report_usage, nanny, network_meter, sender, supervision)

    status = os.waitpid(pid, 0)[1]
    supervision.finished.set()
    log_pump.join(LOG_DRAIN_TIMEOUT)
    # A nanny kill may end the child before _run_nanny records the verdict; wait for it (it returns at once
    # now that `finished` is set) so the exit is reported as the resource kill it was.
    nanny_thread.join()
    broker.close()
    if cgroup is not None:
        _note_kernel_memory_kill(status, cgroup, supervision, int(spec.resources.quantity("memory")))
        cgroup.remove()
    code, reason = _outcome(status, supervision)
    if supervision.verdict is not None:
        sender.send({"t": "log", "data": f"\nKilled: {supervision.verdict.message}\n".encode()})
    return code, reason


def _await_ready(broker: socket.socket, host: socket.socket) -> None:
    """Wait for the prepared child's READY (a spare forked moments ago may still be warming up). A child that
    died is not waited for (its start fails with its own log); one that never gets ready fails the start,
    so that no late READY can reach the broker server as a request. If the host hangs up meanwhile (its node
    manager was killed), the start is abandoned: a program handed over now would run, for the moment it takes
    `_read_control` to notice, in a vessel that the node's successor may already be resetting for someone else."""
    poller = select.poll()
    poller.register(broker, select.POLLIN)
    poller.register(host, select.POLLIN)
    deadline = time.monotonic() + READY_TIMEOUT
    while (remaining := deadline - time.monotonic()) > 0:
        ready = {fd for fd, _ in poller.poll(remaining * 1000)}
        if broker.fileno() in ready:
            try:
                broker.recv(len(READY))
            except OSError:  # the child is gone
                pass
            return
        if host.fileno() in ready:
            if _hung_up(host):
                raise RuntimeError("the node manager went away before the vessel started")
            poller.unregister(host)  # a message waits for _read_control: only a hang-up matters here
    raise RuntimeError(f"the prepared vessel process was not ready within {READY_TIMEOUT:.0f} s")


def _hung_up(sock: socket.socket) -> bool:
    """Whether the peer closed `sock`, without consuming a message that may be waiting on it."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _join_cgroup(spec: VesselSpec, pid: int) -> VesselCgroup | None:
    """Put the waiting child in a cgroup with its allotment's CPU quota and memory limit, where the host offers
    cgroups. If this vessel's group cannot be made, the nanny throttles it as on a host without cgroups: the
    allotment is enforced either way."""
    support = cgroup_support()
    if not support.available:
        return None
    try:
        group = VesselCgroup.create(support, spec.resources.quantity("cpu"), int(spec.resources.quantity("memory")))
    except CgroupError:
        return None
    try:
        group.add(pid)
    except CgroupError:
        group.remove()
        return None
    return group


def _note_kernel_memory_kill(status: int, cgroup: VesselCgroup, supervision: Supervision, allotment: int) -> None:
    """A child SIGKILLed by the kernel's OOM killer went over its group's memory limit: report that as the
    resource kill it is, as if the nanny had caught it, naming the allotment (the kernel's limit is it rounded
    down to whole pages)."""
    if supervision.verdict is not None or supervision.stop_requested.is_set():
        return
    if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL) or cgroup.oom_kills() == 0:
        return
    supervision.verdict = NannyVerdict(
        "memory", allotment, cgroup.memory_limit(),
        f"memory use reached the allotment of {allotment:,} bytes; the kernel's memory limit killed the vessel",
    )


def _forward_available_log(fd: int, sender: ControlSender) -> None:
    os.set_blocking(fd, False)
    try:
        data = os.read(fd, LOG_CHUNK)
    except OSError:
        return
    if data:
        sender.send({"t": "log", "data": data})


def _become_child(support: HostSupport, supervisor_pid: int, broker_child: socket.socket, log_write: int,
                  spec_read: int, traffic: Traffic) -> NoReturn:
    """In the forked child: stdio to the log pipe, wait for the spec, then run the vessel."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log_write, 1)
    os.dup2(log_write, 2)
    os.close(devnull)
    os.close(log_write)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    warm_up()
    try:
        broker_child.send(READY)
    except OSError:  # the supervisor is gone: the spec read below finds out
        pass
    wire = _read_all(spec_read)
    os.close(spec_read)
    if not wire:  # the supervisor went away before a request came
        os._exit(0)
    run_child(VesselSpec.from_wire(control.decode(wire)), broker_child, support, supervisor_pid, traffic)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _thread(target: Callable[..., object], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _pump_log(fd: int, sender: ControlSender) -> None:
    while True:
        try:
            data = os.read(fd, LOG_CHUNK)
        except OSError:
            data = b""
        if not data:
            os.close(fd)
            return
        sender.send({"t": "log", "data": data})


def _run_nanny(nanny: Nanny, supervision: Supervision) -> None:
    verdict = nanny.run(supervision.finished)
    if verdict is not None and not supervision.stop_requested.is_set():
        supervision.verdict = verdict
        supervision.kill()


def _read_control(sock: socket.socket, supervision: Supervision) -> None:
    """A "stop" message or a closed channel (the host is gone) both end the vessel."""
    while not supervision.finished.is_set():
        try:
            data = sock.recv(control.MAX_CONTROL_MESSAGE)
        except OSError:
            data = b""
        if data:
            try:
                message = control.decode(data)
            except control.ControlProtocolError:
                continue
            if message["t"] != "stop":
                continue
        supervision.stop_requested.set()
        supervision.kill()
        return


def _report_usage(nanny: Nanny, meter: NetworkMeter, sender: ControlSender, supervision: Supervision) -> None:
    while not supervision.finished.wait(USAGE_INTERVAL):
        sender.send({"t": "usage", "usage": nanny.usage() | meter.report(time.monotonic())})


def _outcome(status: int, supervision: Supervision) -> tuple[int, str]:
    """The exit code and the reason a person reads, from the wait status and what the supervisor did."""
    if supervision.stop_requested.is_set():
        return EXIT_STOPPED, exit_reason(EXIT_STOPPED)
    if supervision.verdict is not None:
        return EXIT_RESOURCE_KILL, supervision.verdict.message
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return EXIT_SIGNALLED, f"killed by signal {signal.Signals(sig).name}"
    code = os.waitstatus_to_exitcode(status)
    return code, exit_reason(code)

