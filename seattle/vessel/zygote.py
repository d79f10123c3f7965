"""The fork-server: a process that has already imported everything a vessel needs, and forks supervisors.

Starting a vessel from a cold `python` costs tens of milliseconds of imports; forking this warm process costs
about one. The zygote stays single-threaded (forking a threaded process is unsafe), ignores SIGCHLD so the
kernel reaps its supervisors, and lives in its own process group so a Ctrl-C meant for the host does not reach
the vessels. It exits when the host closes its end of the socket.

Run as `python -m seattle.vessel.zygote FD`, FD being an AF_UNIX SOCK_SEQPACKET socket shared with the host.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys

from seattle.vessel import control
from seattle.vessel.oslayer import HostSupport, default_readonly_paths, detect
from seattle.vessel.oslayer.seccomp_filter import compiled_template
from seattle.vessel.spec import VesselSpec
from seattle.vessel.status import EXIT_SANDBOX_SETUP
from seattle.vessel.supervisor import run_supervisor


def serve(sock: socket.socket, support: HostSupport) -> None:
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, control.MAX_CONTROL_MESSAGE, 1)
        except InterruptedError:
            continue
        if not data:
            return
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            continue
        control_sock = socket.socket(fileno=fds[0])
        try:
            spec = VesselSpec.from_wire(control.decode(data)["spec"])
        except (control.ControlProtocolError, KeyError, TypeError, ValueError) as exc:
            _refuse(control_sock, f"malformed start request: {exc}")
            continue
        pid = os.fork()
        if pid == 0:
            sock.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            run_supervisor(spec, control_sock, support)
        control_sock.close()


def _refuse(control_sock: socket.socket, reason: str) -> None:
    message = {"t": "exit", "code": EXIT_SANDBOX_SETUP, "status": "Terminated", "reason": reason}
    try:
        control_sock.send(control.encode(message))
    finally:
        control_sock.close()


def main(argv: list[str]) -> None:
    os.setpgid(0, 0)
    # Probe the host first: the probe forks and waits, which ignoring SIGCHLD would break.
    support = detect()
    # Cached from now on, so that no vessel computes them on its start path.
    default_readonly_paths()
    if support.seccomp:
        compiled_template()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=int(argv[1]))
    # Move every object imported so far out of the collector's reach: a collection in a forked child would
    # otherwise touch the whole inherited heap and copy it page by page.
    gc.freeze()
    serve(sock, support)


if __name__ == "__main__":
    main(sys.argv)
