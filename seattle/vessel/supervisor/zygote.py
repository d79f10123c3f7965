"""The fork-server: a process that has already imported everything a vessel needs, and forks supervisors.

Starting a vessel from a cold `python` costs tens of milliseconds of imports; forking this warm process costs
about one. Better still, the zygote keeps one *spare*: a supervisor forked ahead of time whose vessel process
is forked too and waits for its spec. A start request is handed to the spare over a socket, and only then is
the next spare forked, so no fork lies on a vessel's start path.

The zygote stays single-threaded (forking a threaded process is unsafe), ignores SIGCHLD so the kernel reaps
its supervisors, and lives in its own process group so a Ctrl-C meant for the host does not reach the vessels.
It exits when the host closes its end of the socket.

Run as `python -m seattle.vessel.supervisor.zygote FD`, FD being an AF_UNIX SOCK_SEQPACKET socket shared with the host.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys

from seattle.vessel import control
from seattle.vessel.oslayer import HostSupport, default_readonly_paths, detect
from seattle.vessel.oslayer.cgroups import cgroup_support
from seattle.vessel.oslayer.seccomp_filter import compiled_template
from seattle.vessel.supervisor.supervise import serve_as_spare


def serve(sock: socket.socket, support: HostSupport) -> None:
    """Hand each start request to the spare supervisor, then fork the next spare; until the host leaves."""
    spare = _fork_spare(sock, support)
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, control.MAX_CONTROL_MESSAGE, 1)
        except InterruptedError:
            continue
        if not data:
            spare.close()
            return
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            continue
        try:
            socket.send_fds(spare, [data], fds)
        except OSError:  # the spare died: start this vessel from a fresh one
            spare.close()
            spare = _fork_spare(sock, support)
            socket.send_fds(spare, [data], fds)
        os.close(fds[0])
        spare.close()
        spare = _fork_spare(sock, support)


def _fork_spare(host_sock: socket.socket, support: HostSupport) -> socket.socket:
    """Fork a supervisor that prepares its vessel process at once and then waits for a request."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        host_sock.close()
        ours.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        serve_as_spare(theirs, support)
    theirs.close()
    return ours


def main(argv: list[str]) -> None:
    os.setpgid(0, 0)
    # Probe the host first: the probe forks and waits, which ignoring SIGCHLD would break.
    support = detect()
    # The cgroup layer, made ready (and the groups of supervisors that died removed) before any fork, so every
    # supervisor finds the answer cached.
    cgroup_support()
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
