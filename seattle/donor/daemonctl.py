"""The donor's side of a running node manager: start it detached, ask it for its status, stop it.

    status = start_daemon(node_dir)                  # `seattle node start`: returns its first status
    control_request(node_dir, "status")              # `seattle node status | top`, over the control socket
    control_request(node_dir, "stop"); wait_until_stopped(node_dir, 60)      # `seattle node stop`

The protocol (one JSON line each way over `<node_dir>/control.sock`) is served by
`seattle.nodemgr.control`; this module is its client, with plain blocking sockets for one-shot commands.
`wait_until_stopped` tells a stopped node by its `node.lock`: the daemon holds that flock until its state is
closed, which is after every vessel has been stopped, and the kernel drops it if the process dies.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from seattle.errors import NodeAlreadyRunning, NodeControlFailed, NodeNotRunning
from seattle.nodemgr.control import MAX_ANSWER, REQUEST_TIMEOUT
from seattle.nodemgr.nodedir import NodeDir

#: How long `start_daemon` waits for the control socket to answer.
START_TIMEOUT = 60.0


def start_daemon(node_dir: Path, *, allow_unconfined: bool = False) -> dict[str, Any]:
    """Start `seattle node run` for `node_dir` in its own session, its output appended to `node.out`, and
    wait until it answers; returns its status. NodeAlreadyRunning, or NodeControlFailed if it exits or does
    not answer within START_TIMEOUT (with the last line it printed)."""
    paths = NodeDir(node_dir)
    paths.read_config()  # a missing or damaged node fails here, with its own message
    if is_locked(node_dir):
        raise NodeAlreadyRunning(node_dir)
    command = [sys.executable, "-m", "seattle.cli", "node", "run", "--dir", str(node_dir)]
    if allow_unconfined:
        command.append("--allow-unconfined")
    # O_NOFOLLOW: a symlink planted under node.out must not make the daemon's output go somewhere else.
    try:
        log_fd = os.open(paths.start_log_path,
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise NodeControlFailed(node_dir, f"its start log {paths.start_log_path} cannot be opened "
                                          f"({exc.strerror}; a symbolic link there is refused)") from None
    with open(log_fd, "ab") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                   start_new_session=True, close_fds=True)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            status: dict[str, Any] = control_request(node_dir, "status")["status"]
            return status
        except NodeNotRunning:
            pass
        if process.poll() is not None:
            raise NodeControlFailed(node_dir, f"the node manager exited with status {process.returncode} "
                                              f"while starting: {_tail(paths.start_log_path)}")
        if time.monotonic() >= deadline:
            raise NodeControlFailed(node_dir, f"it did not answer within {START_TIMEOUT:g} s of starting")
        time.sleep(0.1)


def _tail(path: Path, limit: int = 4096) -> str:
    """The last line of the start log that says something (a traceback ends in frames of `|` and `+-`)."""
    try:
        text = path.read_bytes()[-limit:].decode("utf-8", "replace")
    except OSError:
        return "(no output)"
    lines = [line.strip(" |+-") for line in text.splitlines()]
    meaningful = [line for line in lines if any(c.isalpha() for c in line)]
    return meaningful[-1][:300] if meaningful else "(no output)"


def control_request(node_dir: Path, command: str, timeout: float = REQUEST_TIMEOUT, **args: Any) -> dict[str, Any]:
    """Send one command (with `args`, JSON values) to the node in `node_dir`; its answer's payload. NodeNotRunning
    if nobody listens, NodeControlFailed if the answer is missing, too large or an error."""
    path = NodeDir(node_dir).control_socket_path
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(os.fspath(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise NodeNotRunning(node_dir) from None
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):
                raise NodeNotRunning(node_dir) from None
            raise NodeControlFailed(node_dir, f"its control socket cannot be reached: {exc.strerror}") from None
        try:
            sock.sendall(json.dumps({**args, "cmd": command}).encode("utf-8") + b"\n")
            data = b""
            while b"\n" not in data and len(data) <= MAX_ANSWER:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            raise NodeControlFailed(node_dir, f"no answer to {command!r} within {timeout:g} s") from None
        except OSError as exc:
            raise NodeControlFailed(node_dir, f"the control connection failed: {exc.strerror}") from None
    line, newline, _ = data.partition(b"\n")
    try:
        if not newline:
            raise ValueError
        reply = json.loads(line)
    except ValueError:
        raise NodeControlFailed(node_dir, f"its answer to {command!r} is not one JSON line") from None
    if not isinstance(reply, dict) or reply.get("ok") is not True:
        error = reply.get("error") if isinstance(reply, dict) else None
        raise NodeControlFailed(node_dir, f"{command!r} refused: {error}")
    return reply


def is_locked(node_dir: Path) -> bool:
    """True while a node manager holds the node's state open (node.lock is flocked)."""
    try:
        fd = os.open(NodeDir(node_dir).lock_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def wait_until_stopped(node_dir: Path, timeout: float) -> bool:
    """Poll (every 0.1 s, at most `timeout` s) until no node manager holds the node; True if none does."""
    deadline = time.monotonic() + timeout
    while is_locked(node_dir):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True
