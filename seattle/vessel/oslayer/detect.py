"""What this host's kernel lets a vessel use, and why not where it does not.

Availability is found by trying, not by reading version numbers: distributions switch features off with
sysctls and security modules that no version tells about. Trying has side effects (a new namespace, a
seccomp filter that can never be removed), so `probe` does it in a forked, throwaway child that reports
through a pipe; the calling process is left exactly as it was. `detect` caches the answer: a host's
support does not change while the daemon runs, and vessels start often.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seattle.vessel.oslayer import landlock, seccomp_filter
from seattle.vessel.oslayer.baseline import PR_SET_NO_NEW_PRIVS, prctl
from seattle.vessel.oslayer.capabilities import CAP_SYS_ADMIN, has_capability
from seattle.vessel.oslayer.namespaces import ISOLATION_FLAGS, enter_user_namespace, unshare
from seattle.vessel.oslayer.plan import LAYER_NAMES

PROBE_TIMEOUT = 5.0

# Sysctls that switch unprivileged user namespaces off, and the value that does it.
_USERNS_SWITCHES = (
    ("/proc/sys/kernel/unprivileged_userns_clone", "0"),
    ("/proc/sys/user/max_user_namespaces", "0"),
    ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1"),
)


@dataclass(frozen=True)
class HostSupport:
    """The OS layers this host can apply. `details` holds one sentence per layer (and for
    "user_namespaces") saying why the layer is or is not available, for `seattle vessel doctor`."""

    seccomp: bool
    landlock_abi: int  # 0 = no Landlock
    user_namespaces: bool
    net_namespaces: bool
    details: dict[str, str] = field(default_factory=dict)

    def available(self) -> frozenset[str]:
        """Which LAYER_NAMES can be applied here (rlimits always can)."""
        present = {
            "rlimits": True,
            "namespaces": self.net_namespaces,
            "landlock": self.landlock_abi > 0,
            "seccomp": self.seccomp,
        }
        return frozenset(name for name in LAYER_NAMES if present[name])

    def can_confine_untrusted(self) -> bool:
        """Whether a kernel-enforced wall exists: rlimits and namespaces alone do not stop a file read."""
        return self.seccomp or self.landlock_abi > 0


def _attempt(action: Callable[[], object]) -> str | None:
    """None if `action` worked, else the OS error's text."""
    try:
        action()
    except OSError as exc:
        return str(exc)
    return None


def _userns_hint() -> str:
    for path, blocking in _USERNS_SWITCHES:
        with contextlib.suppress(OSError):
            if Path(path).read_text().strip() == blocking:
                return f"; {path.removeprefix('/proc/sys/').replace('/', '.')} is {blocking}"
    return ""


def _probe_namespaces() -> dict[str, str | None]:
    """Create the namespaces the layer would, in the order it would. Runs in the throwaway child."""
    if has_capability(CAP_SYS_ADMIN):
        net = _attempt(lambda: unshare(ISOLATION_FLAGS))
        user = _attempt(enter_user_namespace)
    else:
        user = _attempt(enter_user_namespace)
        net = (
            _attempt(lambda: unshare(ISOLATION_FLAGS))
            if user is None
            else "without CAP_SYS_ADMIN it needs a user namespace first"
        )
    return {"user": None if user is None else user + _userns_hint(), "net": net}


def _probe_seccomp() -> str | None:
    if seccomp_filter.IMPORT_ERROR:  # set exactly when pyseccomp could not be loaded
        return seccomp_filter.IMPORT_ERROR

    def load() -> None:
        prctl(PR_SET_NO_NEW_PRIVS, 1, what="prctl(PR_SET_NO_NEW_PRIVS)")
        seccomp_filter.probe()

    return _attempt(load)


def _probe_landlock() -> tuple[int, str | None]:
    try:
        return landlock.abi_version(), None
    except OSError as exc:
        return 0, str(exc)


def _probe_in_child() -> dict[str, object]:
    abi, landlock_error = _probe_landlock()
    return {
        "landlock_abi": abi,
        "landlock": landlock_error,
        **_probe_namespaces(),
        "seccomp": _probe_seccomp(),
    }


def _run_probe_child() -> dict[str, Any]:
    """Fork, probe in the child, read its JSON answer. A child that dies or hangs is reported as such."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the throwaway child: never returns into the caller's code
        status = 1
        try:
            os.close(read_end)
            os.write(write_end, json.dumps(_probe_in_child()).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    chunks: list[bytes] = []
    deadline = time.monotonic() + PROBE_TIMEOUT
    try:
        while (left := deadline - time.monotonic()) > 0 and select.select([read_end], [], [], left)[0]:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(read_end)
        _, wait_status = os.waitpid(pid, 0)
    if not chunks:
        raise OSError(f"the probe process gave no answer (wait status {wait_status:#x})")
    report: dict[str, Any] = json.loads(b"".join(chunks))
    return report


def _landlock_sentence(abi: int) -> str:
    parts = ["filesystem"]
    if abi >= 4:
        parts.append("TCP bind/connect")
    if abi >= 6:
        parts.append("signal and abstract-socket scoping")
    return f"Landlock ABI {abi}: " + ", ".join(parts)


def _support_from(answer: dict[str, Any]) -> HostSupport:
    root = os.getuid() == 0
    privileged = has_capability(CAP_SYS_ADMIN)
    abi = int(answer["landlock_abi"])
    user_error, net_error = answer["user"], answer["net"]
    landlock_error, seccomp_error = answer["landlock"], answer["seccomp"]
    route = "directly (CAP_SYS_ADMIN)" if privileged else "inside an unprivileged user namespace"
    details = {
        "rlimits": "setrlimit is always available"
        + ("; RLIMIT_NPROC is left unset because the kernel ignores it for root" if root else ""),
        "namespaces": f"a new network namespace can be created {route}"
        if net_error is None
        else f"no network namespace: {net_error}; the child keeps the host's network view "
        "(seccomp still denies it sockets)",
        "landlock": _landlock_sentence(abi)
        if landlock_error is None
        else f"no Landlock: {landlock_error}; the child can read whatever its uid can",
        "seccomp": "seccomp filters load through libseccomp"
        if seccomp_error is None
        else f"no seccomp: {seccomp_error}; the child could fork, exec and open sockets",
        "user_namespaces": "this process can create user namespaces"
        if user_error is None
        else f"no user namespaces: {user_error}",
    }
    return HostSupport(
        seccomp=seccomp_error is None,
        landlock_abi=abi if landlock_error is None else 0,
        user_namespaces=user_error is None,
        net_namespaces=net_error is None,
        details=details,
    )


def probe() -> HostSupport:
    """Probe the host now, in a forked child (uncached; see `detect`)."""
    try:
        answer = _run_probe_child()
    except OSError as exc:
        reason = f"the probe failed: {exc}"
        answer = {"landlock_abi": 0, "landlock": reason, "user": reason, "net": reason, "seccomp": reason}
    return _support_from(answer)


@functools.cache
def detect() -> HostSupport:
    """The host's support, probed once per process and then remembered."""
    return probe()
