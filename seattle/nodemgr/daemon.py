"""Setting up a node directory and running its node manager in the foreground until told to stop.

    create_node(node_dir, owner, NodeConfig("127.0.0.1", 1224))  # `seattle node init`
    run_daemon(node_dir)                                          # `seattle node run`: returns 0 on SIGTERM

`create_node` writes `node.json` next to the node's key and state, so `run_daemon` needs nothing but the
directory: where to listen is a property of the node, not of each start. `run_daemon` logs to
`nodemanager.log` in the node directory (rotated, so a node left running for months cannot fill the disk),
prints one line `listening on HOST:PORT` to standard output once requests are accepted (scripts and tests
wait for that line), and on SIGTERM or SIGINT leaves `NodeManager`, which stops every running vessel and
records it Stopped before the process exits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import logging.handlers
import resource
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import trio

from seattle.addresses import split_ip_port
from seattle.errors import NodeExists, NodeStartFailed
from seattle.keys import PublicKey
from seattle.nodemgr.config import NodeConfig
from seattle.nodemgr.control import serve_until_stopped
from seattle.nodemgr.node import Layout, NodeManager, init_node
from seattle.nodemgr.nodedir import NodeDir
from seattle.nodemgr.nodeerror import NodeError
from seattle.resources import Resources

log = logging.getLogger(__name__)

#: 1 MiB per log file and three old ones: enough for weeks of calls, bounded for ever.
LOG_MAX_BYTES = 1024 * 1024
LOG_BACKUPS = 3

_SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def create_node(node_dir: Path, owner: PublicKey, config: NodeConfig, layout: Layout | None = None,
                pool: Sequence[Resources] = ()) -> PublicKey:
    """Make `node_dir` a node: node key, first vessel owned by `owner`, `node.json`. Returns the node key.

    With `layout` (an installer profile's division) the node gets those vessels instead of one default one.
    Refuses (NodeExists) a directory that already holds a node, so a repeated `init` cannot replace the key
    researchers know the node by or the vessels' state.
    """
    node_dir = Path(node_dir)
    if NodeDir(node_dir).holds_node():
        raise NodeExists(node_dir)
    try:
        node_key = init_node(node_dir, owner, layout, pool=pool)
    except NodeError as exc:
        raise NodeExists(node_dir, exc.args[0]) from None
    NodeDir(node_dir).write_config(config)
    return node_key


def run_daemon(node_dir: Path, *, allow_unconfined: bool = False, out: TextIO | None = None,
               bootstrap: Sequence[str] = ()) -> int:
    """Run the node in `node_dir` until SIGTERM or SIGINT; returns the exit status (0 after a clean stop).

    `bootstrap` ("HOST:PORT" texts), when given, replaces node.json's overlay bootstrap nodes for this run.
    """
    node_dir = Path(node_dir)
    config = NodeDir(node_dir).read_config()
    NodeDir(node_dir).secure()  # before the log, the database or the socket is opened in it
    if bootstrap:
        config = dataclasses.replace(config, bootstrap=tuple(bootstrap))
    handler = _open_log(node_dir)
    package_log = logging.getLogger("seattle")
    package_log.addHandler(handler)
    package_log.setLevel(logging.INFO)
    raise_open_file_limit()
    try:
        trio.run(_serve, node_dir, config, allow_unconfined, out or sys.stdout)
    finally:
        package_log.removeHandler(handler)
        handler.close()
    return 0


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (or the kernel's cap); the soft limit now in force.

    The default soft limit (often 1024) is what a connection flood exhausts first; every connection, vessel
    pipe and log needs a descriptor. The server backs off when accept fails for want of one (EMFILE) rather
    than stopping, and the higher limit makes that rarer. A limit that cannot be raised is logged and kept."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for target in (hard, _nr_open()):
        if target == soft or (target != resource.RLIM_INFINITY and soft != resource.RLIM_INFINITY
                              and target < soft):
            return soft
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            log.info("open file limit raised from %s to %s", soft, target)
            return target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open file limit from %s to %s: %s", soft, target, exc)
    return soft


def _nr_open() -> int:
    """The kernel's per-process descriptor cap (Linux /proc/sys/fs/nr_open), for a hard limit of infinity."""
    try:
        return int(Path("/proc/sys/fs/nr_open").read_text())
    except (OSError, ValueError):
        return 65536


def _open_log(node_dir: Path) -> logging.Handler:
    handler = logging.handlers.RotatingFileHandler(NodeDir(node_dir).log_path, maxBytes=LOG_MAX_BYTES,
                                                   backupCount=LOG_BACKUPS, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


async def _serve(node_dir: Path, config: NodeConfig, allow_unconfined: bool, out: TextIO) -> None:
    # The receiver is open before the node starts: a SIGTERM that arrives during start-up is queued and
    # handled as a clean stop instead of killing the process with vessels half started.
    with trio.open_signal_receiver(*_SHUTDOWN_SIGNALS) as signals:
        async with contextlib.AsyncExitStack() as stack:
            manager = NodeManager(node_dir, config.host, config.port, local_ips=config.local_ips,
                                  allow_unconfined=allow_unconfined, overlay=True,
                                  bootstrap=[split_ip_port(a) for a in config.bootstrap],
                                  beneficiary=PublicKey.from_text(config.beneficiary) if config.beneficiary
                                  else None, country=config.country)
            try:
                node = await stack.enter_async_context(manager)
            except OSError as exc:
                raise NodeStartFailed(f"cannot listen on {config.host}:{config.port}: "
                                      f"{exc.strerror or exc}") from None
            except NodeError as exc:
                raise NodeStartFailed(f"the node state in {node_dir} cannot be opened: {exc}") from None
            log.info("node %s listening on %s", node.node_key.fingerprint(), ", ".join(node.addresses))
            log.info("overlay on udp %s, joining through %s", node.addresses[0],
                     ", ".join(config.bootstrap) or "its saved contacts only (none: a new overlay)")
            print(f"listening on {node.addresses[0]}", file=out, flush=True)
            reason = await serve_until_stopped(node_dir, node, signals)
            log.info("%s: stopping the vessels and shutting down", reason)
    log.info("node manager stopped cleanly")
