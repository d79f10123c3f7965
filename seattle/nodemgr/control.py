"""The node's control socket, the daemon's side: how `seattle node status`/`stop` reach a running node manager.

    reason = await serve_until_stopped(node_dir, node, signals)   # in the daemon, once the node is up

The donor's side (`control_request`, `wait_until_stopped`) is `seattle.donor.daemonctl`. The status holds
`pool`: each pool vessel with its state (free, leased, ending), lessee, slot and expiry (docs/pool.md).

`<node_dir>/control.sock` is an AF_UNIX stream socket of mode 0600 in the node directory (itself 0700), so
only the donor's user can reach it: the file system is the authentication, as for any local daemon. It
carries one JSON line each way per connection:

    → {"cmd": "status"}          ← {"ok": true, "status": {pid, node_key, fingerprint, addresses, started,
                                                           percent, donated, vessels: [...], usage: {...},
                                                           server: {connections, counters: {...}}}}
    → {"cmd": "stop"}            ← {"ok": true, "pid": PID}      and the node then shuts down cleanly
    → {"cmd": "pool_evict", "vessel": NAME}            ← {"ok": true, "vessel": NAME, "lessee": KEY}
    → {"cmd": "pool_block", "key": KEY, "seconds": S}  ← {"ok": true, "key": KEY, "until": T}
    → anything else              ← {"ok": false, "error": "..."}

A request is at most 4 KiB and must arrive within 5 s; an answer is at most 1 MiB. A vessel's `usage` is what
its supervisor last reported (CPU share of one core over the last second, memory and disk bytes, and for
netsend, netrecv, loopsend and looprecv the rate in bytes/s over the last report interval of about a second,
plus `<name>_bytes`, the bytes since the vessel started); a vessel that does not run uses no CPU, memory or
network, and its disk is counted the way the nanny counts it. The node's `usage` is the vessels' sum, to set
against `donated` (whose netsend/netrecv are rates too).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from seattle.errors import NodeStartFailed, SeattleError
from seattle.keys import PublicKey
from seattle.nodemgr.nodedir import NodeDir
from seattle.pool.refusals import LeaseRefused
from seattle.vessel.diskusage import disk_usage

if TYPE_CHECKING:
    from seattle.nodemgr.node import NodeManager

log = logging.getLogger(__name__)

MAX_REQUEST = 4096
MAX_ANSWER = 1024 * 1024
REQUEST_TIMEOUT = 5.0
#: AF_UNIX paths are limited to 107 bytes on Linux (108 with the terminating NUL).
_MAX_SOCKET_PATH = 107
#: Each is a rate in bytes/s in a usage report, and `<name>_bytes` the bytes since the vessel started.
_NETWORK = ("netsend", "netrecv", "loopsend", "looprecv")


async def serve_until_stopped(node_dir: Path, node: NodeManager, signals: AsyncIterator[int]) -> str:
    """Answer control requests for `node` (a running NodeManager) until a stop request or one of `signals`;
    returns why it stopped, for the log. The socket file is removed on the way out."""
    path = NodeDir(node_dir).control_socket_path
    listener = await _bind(path)
    started = time.time()
    reasons: list[str] = []
    try:
        async with trio.open_nursery() as nursery:
            def stop(reason: str) -> None:
                reasons.append(reason)
                nursery.cancel_scope.cancel()

            async def watch_signals() -> None:
                async for signum in signals:
                    stop(f"received {signal.Signals(signum).name}")
                    return

            async def answer(stream: trio.SocketStream) -> None:
                # A client that goes away mid-answer is its own problem: it must never end the daemon.
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    async with stream:
                        with trio.move_on_after(REQUEST_TIMEOUT):
                            reply, stopping = await _handle(await _read_line(stream), node, node_dir,
                                                            started)
                            try:
                                await stream.send_all(json.dumps(reply).encode("utf-8") + b"\n")
                            finally:
                                if stopping:
                                    stop("stop requested over the control socket")

            nursery.start_soon(watch_signals)
            nursery.start_soon(trio.serve_listeners, answer, [trio.SocketListener(listener)])
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return reasons[0] if reasons else "cancelled"


async def _bind(path: Path) -> trio.socket.SocketType:
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        raise NodeStartFailed(f"the control socket path {path} is longer than {_MAX_SOCKET_PATH} bytes; "
                              "move the node to a directory with a shorter path")
    # Only one daemon can hold node.lock, so a socket file still here belongs to a dead predecessor.
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(os.fspath(path))
        # The node directory is 0700 already; the socket's own mode keeps it private if that ever changes.
        os.chmod(path, 0o600)
        sock.listen(8)
    except OSError:
        sock.close()
        raise
    return sock


async def _read_line(stream: trio.SocketStream) -> bytes:
    data = b""
    while b"\n" not in data and len(data) <= MAX_REQUEST:
        chunk = await stream.receive_some(MAX_REQUEST + 1)
        if not chunk:
            break
        data += chunk
    return data


async def _handle(data: bytes, node: NodeManager, node_dir: Path, started: float
                  ) -> tuple[dict[str, Any], bool]:
    """(the answer, whether to stop) for one request line."""
    line, newline, _ = data.partition(b"\n")
    if not newline or len(line) > MAX_REQUEST:
        return {"ok": False, "error": f"a request is one JSON line of at most {MAX_REQUEST} bytes"}, False
    try:
        request = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return {"ok": False, "error": "the request is not JSON"}, False
    command = request.get("cmd") if isinstance(request, dict) else None
    if command == "status":
        try:
            return {"ok": True, "status": node_status(node, node_dir, started)}, False
        except Exception as exc:  # a fault in reporting must not take the node down with it
            log.exception("the control socket's status failed")
            return {"ok": False, "error": f"status failed: {exc!r:.200}"}, False
    if command == "stop":
        return {"ok": True, "pid": os.getpid()}, True
    if command in ("pool_evict", "pool_block"):
        assert isinstance(request, dict)
        return await _pool_command(command, request, node), False
    return {"ok": False, "error": f"unknown command {command!r:.40}; the commands are status, stop, "
                                  "pool_evict and pool_block"}, False


async def _pool_command(command: str, request: dict[str, Any], node: NodeManager) -> dict[str, Any]:
    """The donor's control of the pool: end a lease now, or refuse a key for a while."""
    assert node.api is not None, "the node manager is running"
    pool = node.api.pool
    if pool is None:
        return {"ok": False, "error": "this node shares no vessels with the pool"}
    try:
        if command == "pool_evict":
            vessel = request.get("vessel")
            if not isinstance(vessel, str):
                return {"ok": False, "error": "pool_evict needs the vessel's name"}
            entry = await pool.evict(vessel, node.api.stop_for_pool)
            return {"ok": True, "vessel": entry.vessel, "lessee": entry.lessee.to_text()}
        key, seconds = request.get("key"), request.get("seconds")
        if not isinstance(key, str) or isinstance(seconds, bool) or not isinstance(seconds, int | float) \
                or not 0 < seconds <= 10 * 365 * 86400:
            return {"ok": False, "error": "pool_block needs a key (ed25519:...) and seconds (up to 10 years)"}
        blocked = PublicKey.from_text(key)
        until = time.time() + seconds
        await pool.block(blocked, until)
        return {"ok": True, "key": blocked.to_text(), "until": until}
    except LeaseRefused as exc:
        return {"ok": False, "error": exc.message}
    except SeattleError as exc:
        return {"ok": False, "error": str(exc)}


def node_status(node: NodeManager, node_dir: Path, started: float) -> dict[str, Any]:
    """What `seattle node status` shows: the node, the donation, and each vessel's use against its share."""
    assert node.state is not None and node.api is not None, "the node manager is running"
    donation = NodeDir(node_dir).read_donation()
    vessels = []
    total: dict[str, float] = {"cpu": 0.0, "memory": 0, "diskused": 0}
    for name in _NETWORK:
        total[name] = total[f"{name}_bytes"] = 0
    for record in node.state.get_vessels():
        handle = node.api.running_handle(record.name)
        live = handle.usage if handle is not None else {}
        usage = {"cpu": float(live.get("cpu", 0.0)), "memory": int(live.get("memory", 0)),
                 "diskused": int(live["diskused"]) if "diskused" in live
                 else disk_usage(node.state.vessel_dir(record.name))}
        for name in _NETWORK:
            usage[name] = float(live.get(name, 0.0))
            usage[f"{name}_bytes"] = int(live.get(f"{name}_bytes", 0))
        for name in total:
            total[name] += usage[name]
        allotted = record.resources
        vessels.append({
            "name": record.name, "status": record.status.value, "owner": _key_text(record.owner),
            "allotted": {name: allotted[name] for name in ("cpu", "memory", "diskused", "netsend", "netrecv")}
            | {"ports": sorted(allotted.connport)},
            "usage": usage,
        })
    return {
        "pid": os.getpid(), "node_key": node.node_key.to_text(), "fingerprint": node.node_key.fingerprint(),
        "addresses": list(node.addresses), "started": started,
        "percent": donation["percent"] if donation else None,
        "donated": _summary(donation["donated"]) if donation else None,
        "vessels": vessels, "usage": total,
        "pool": node.api.pool.donor_view() if node.api.pool is not None else [],
        # What the TCP server refused, dropped, evicted or paced (NodeServer.stats): how a donor, a test or a
        # benchmark sees an attack being absorbed.
        "server": {"connections": node.server.connections if node.server else 0,
                   "counters": dict(node.server.stats) if node.server else {}},
    }


def _summary(resources: Any) -> dict[str, Any]:
    return {name: resources[name] for name in ("cpu", "memory", "diskused", "netsend", "netrecv")}


def _key_text(raw: bytes) -> str:
    return PublicKey(raw).to_text()
