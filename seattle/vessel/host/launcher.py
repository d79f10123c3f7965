"""The host side of vessels: start them through the zygote and follow them through a `VesselHandle`.

This is the contract the node manager builds on:

    async with VesselLauncher() as launcher:
        handle = await launcher.start(spec, log_path=...)   # returns once the vessel runs (or failed to)
        handle.status / handle.exit_code / handle.reason    # live state
        handle.log.read()                                    # the last 16 KiB of output
        handle.usage                                         # the latest CPU/memory/disk/network report
        await handle.stop()                                  # Stopped, exit code 44
        await handle.wait()                                  # the exit code

All vessels of a launcher share one zygote process; leaving the `async with` stops every vessel still running.
"""

from __future__ import annotations

import array
import math
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import trio

from seattle.errors import ConfinementUnavailable, UnknownLayer, VesselStartFailed
from seattle.vessel import control
from seattle.vessel.host.logbuffer import CircularLog
from seattle.vessel.oslayer import LAYER_NAMES, HostSupport, detect
from seattle.vessel.spec import LANGUAGE_LAYER, VesselSpec
from seattle.vessel.status import EXIT_SIGNALLED, VesselStatus, status_for_exit

ALL_LAYERS: tuple[str, ...] = (LANGUAGE_LAYER, *LAYER_NAMES)
#: How long stop() waits for the supervisor's exit report before killing the processes itself.
STOP_TIMEOUT = 10.0

OutputCallback = Callable[[bytes], None]


class VesselHandle:
    """One running (or finished) vessel, as seen from the host."""

    def __init__(self, spec: VesselSpec, sock: trio.socket.SocketType, log: CircularLog,
                 on_output: OutputCallback | None) -> None:
        self.spec = spec
        self.status = VesselStatus.STARTED
        self.exit_code: int | None = None
        self.reason = ""
        self.log = log
        self.usage: dict[str, Any] = {}
        self.pid: int | None = None
        self.supervisor_pid: int | None = None
        #: trio.current_time() of the supervisor's latest message; it reports usage once a second, so a long
        #: silence means the supervisor is stuck (the node manager then shows the vessel as Stale).
        self.last_report = trio.current_time()
        self._sock = sock
        self._on_output = on_output
        self._started = trio.Event()
        self._finished = trio.Event()

    @property
    def running(self) -> bool:
        return not self._finished.is_set()

    async def wait(self) -> int:
        await self._finished.wait()
        assert self.exit_code is not None
        return self.exit_code

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the program (state Stopped). Returns once it is gone; safe to call on a finished vessel."""
        if not self.running:
            return
        try:
            await self._sock.send(control.encode({"t": "stop"}))
        except OSError:
            pass
        with trio.move_on_after(timeout):
            await self._finished.wait()
            return
        self._kill_processes()
        with trio.move_on_after(timeout):
            await self._finished.wait()

    def _kill_processes(self) -> None:
        for pid in (self.pid, self.supervisor_pid):
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    async def _follow(self) -> None:
        """Read control messages until the supervisor reports the exit or goes away."""
        try:
            while True:
                try:
                    data = await self._sock.recv(control.MAX_CONTROL_MESSAGE)
                except OSError:
                    data = b""
                if not data:
                    self._finish(EXIT_SIGNALLED, "the vessel's supervisor disappeared")
                    return
                try:
                    message = control.decode(data)
                except control.ControlProtocolError:
                    continue
                if self._handle(message):
                    return
        finally:
            self._sock.close()
            self._started.set()
            self._finished.set()

    def silent_for(self) -> float:
        """Seconds since the supervisor last reported."""
        return trio.current_time() - self.last_report

    def _handle(self, message: dict[str, Any]) -> bool:
        self.last_report = trio.current_time()
        kind = message["t"]
        if kind == "started":
            self.pid, self.supervisor_pid = message["pid"], message["supervisor"]
            self._started.set()
        elif kind == "log":
            data = bytes(message["data"])
            self.log.write(data)
            if self._on_output is not None:
                self._on_output(data)
        elif kind == "usage":
            self.usage = dict(message["usage"])
        elif kind == "exit":
            self._finish(int(message["code"]), str(message["reason"]))
            return True
        return False

    def _finish(self, code: int, reason: str) -> None:
        self.exit_code = code
        self.reason = reason
        self.status = status_for_exit(code)


class VesselLauncher:
    """Owns the zygote and every vessel started through it."""

    def __init__(self, *, support: HostSupport | None = None, allow_unconfined: bool = False) -> None:
        self.support = support or detect()
        self.allow_unconfined = allow_unconfined
        self._handles: list[VesselHandle] = []
        self._zygote: trio.Process | None = None
        self._zygote_sock: trio.socket.SocketType | None = None
        self._nursery_manager = trio.open_nursery()
        self._nursery: trio.Nursery | None = None

    def default_layers(self) -> frozenset[str]:
        """Every layer this host can apply, plus the language layer."""
        return frozenset({LANGUAGE_LAYER}) | self.support.available()

    async def __aenter__(self) -> VesselLauncher:
        host_end, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._zygote = await trio.lowlevel.open_process(
            # -I: the zygote's sys.path must not hold the host's working directory, which would become a
            # read-only path every vessel could read (and neither PYTHONPATH nor user site-packages).
            [sys.executable, "-I", "-m", "seattle.vessel.supervisor.zygote", str(zygote_end.fileno())],
            pass_fds=(zygote_end.fileno(),),
        )
        zygote_end.close()
        self._zygote_sock = trio.socket.from_stdlib_socket(host_end)
        self._nursery = await self._nursery_manager.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> bool | None:
        with trio.CancelScope(shield=True):
            for handle in self._handles:
                await handle.stop()
            if self._zygote_sock is not None:
                self._zygote_sock.close()
            if self._zygote is not None:
                with trio.move_on_after(5):
                    await self._zygote.wait()
                if self._zygote.returncode is None:
                    self._zygote.kill()
                    await self._zygote.wait()
        return await self._nursery_manager.__aexit__(exc_type, exc, traceback)

    def check_layers(self, layers: frozenset[str]) -> None:
        """Refuse unknown layer names, and refuse to run untrusted code with no OS confinement at all."""
        for name in layers:
            if name not in ALL_LAYERS:
                raise UnknownLayer(name, ALL_LAYERS)
        if not self.allow_unconfined and not ({"seccomp", "landlock"} & layers & self.support.available()):
            raise ConfinementUnavailable("; ".join(self.support.details.get(n, "") for n in ("seccomp", "landlock")))

    async def start(self, spec: VesselSpec, *, log_path: Path | None = None,
                    on_output: OutputCallback | None = None) -> VesselHandle:
        """Start the vessel described by `spec`; `spec.layers` empty means every layer the host supports."""
        if self._nursery is None or self._zygote_sock is None:
            raise RuntimeError("VesselLauncher.start() needs `async with VesselLauncher()`")
        spec = replace(spec, requested_at=time.monotonic(), layers=spec.layers or self.default_layers())
        self.check_layers(spec.layers)
        if spec.resources.quantity("cpu") <= 0:
            raise VesselStartFailed("the allotment gives the vessel no CPU (resource cpu is 0)")
        if not (spec.vessel_dir / spec.program).is_file():
            raise VesselStartFailed(f"no program file {spec.program!r} in {spec.vessel_dir}")
        host_end, supervisor_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        request = control.encode({"t": "start", "spec": spec.to_wire()})
        fds = array.array("i", [supervisor_end.fileno()])
        try:
            await self._zygote_sock.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        finally:
            supervisor_end.close()
        handle = VesselHandle(spec, trio.socket.from_stdlib_socket(host_end), CircularLog(log_path), on_output)
        self._handles.append(handle)
        self._nursery.start_soon(handle._follow)
        await handle._started.wait()
        return handle


def run_until_done(launcher_args: dict[str, Any], spec: VesselSpec, on_output: OutputCallback,
                   timeout: float = math.inf) -> VesselHandle:
    """Start one vessel, wait for it to end (or stop it after `timeout`); synchronous, for CLIs and scripts."""

    async def main() -> VesselHandle:
        async with VesselLauncher(**launcher_args) as launcher:
            handle = await launcher.start(spec, on_output=on_output)
            with trio.move_on_after(timeout):
                await handle.wait()
            await handle.stop()
            return handle

    return trio.run(main)
