"""The commands the namespace testbed runs (`ip`, `iptables`), and the removal of everything with a prefix.

Everything the testbed creates is a network namespace named with its prefix; links and bridges live inside
those namespaces, so deleting the namespaces deletes them. Removal is by prefix, not by a list kept in
memory, so that it also finds what a killed run left behind: namespaces, the processes still running in them
(a namespace with a process in it outlives `ip netns del`, and so do its links), and any link with the prefix
in the root namespace (the testbed never puts one there, but a run killed halfway through `ip link add` could).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence

from seattle.netlab.errors import LabCommandFailed, NeedsRoot, ToolMissing

#: No single `ip`/`iptables` command takes long; one that hangs fails the build instead of hanging it.
COMMAND_TIMEOUT = 30.0
#: How long removal waits for killed processes to leave a namespace before deleting it anyway.
KILL_WAIT = 5.0

#: The commands the testbed needs, and the Debian package of each (`.ci/run` installs them).
TOOLS = {"ip": "iproute2", "iptables": "iptables"}


def require_tools() -> None:
    """Raise the error a person can act on when the testbed cannot work here: not root, or a tool missing."""
    if os.geteuid() != 0:
        raise NeedsRoot()
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            raise ToolMissing(tool, package)


def command(argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> str:
    """Run `argv`; its standard output, or LabCommandFailed naming the command and its last error line."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as expired:
        stderr = expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else ""
        raise LabCommandFailed(argv, None, stderr) from None
    if done.returncode != 0:
        raise LabCommandFailed(argv, done.returncode, done.stderr)
    return done.stdout


def ip(*args: str, namespace: str | None = None) -> str:
    """`ip [-n NAMESPACE] ARGS...`."""
    return command(["ip", *(("-n", namespace) if namespace else ()), *args])


def in_namespace(namespace: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs `argv` inside `namespace`."""
    return ["ip", "netns", "exec", namespace, *argv]


def namespaces(prefix: str) -> list[str]:
    """The named network namespaces whose names start with `prefix` (`ip netns list` prints "NAME (id: N)")."""
    names = (line.split()[0] for line in ip("netns", "list").splitlines() if line.strip())
    return sorted(name for name in names if name.startswith(prefix))


def root_links(prefix: str) -> list[str]:
    """The links of the root namespace whose names start with `prefix` (a veth shows as "NAME@PEER")."""
    names = (re.split(r"[@:]", line.split(": ", 2)[1])[0] for line in ip("-o", "link", "show").splitlines())
    return sorted(name for name in names if name.startswith(prefix))


def pids_in(namespace: str) -> list[int]:
    """The processes running in `namespace` (gone or unreadable: none)."""
    try:
        return [int(word) for word in ip("netns", "pids", namespace).split()]
    except LabCommandFailed:
        return []


def remove_everything(prefix: str) -> None:
    """Kill every process in the prefix's namespaces, delete the namespaces (and with them their links,
    bridges and iptables rules), then delete any link with the prefix left in the root namespace."""
    for namespace in namespaces(prefix):
        _kill_all(namespace)
        try:
            ip("netns", "delete", namespace)
        except LabCommandFailed:
            if namespace in namespaces(prefix):
                raise  # it did not vanish by itself in the meantime
    for link in root_links(prefix):
        ip("link", "delete", link)


def _kill_all(namespace: str) -> None:
    """SIGKILL the processes in `namespace` until none is left (bounded: KILL_WAIT)."""
    deadline = time.monotonic() + KILL_WAIT
    while (pids := pids_in(namespace)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
