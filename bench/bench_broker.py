"""What a brokered network call costs compared with a plain in-process function call.

The broker server runs in a forked process of its own, as the supervisor does for a real vessel, and
the client calls it over the same AF_UNIX SOCK_SEQPACKET socketpair. Each figure is the median of
several batches, per call. Goal (sandbox-survey.md §6.2): under 50 µs extra per brokered call.

Run: .venv/bin/python bench/bench_broker.py [--calls N] [--batches B]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.table import Row, print_table  # noqa: E402
from seattle.vessel import broker_protocol as protocol  # noqa: E402
from seattle.vessel.child.broker_client import BrokerClient  # noqa: E402
from seattle.vessel.supervisor.broker_server import BrokerServer, NetworkPolicy  # noqa: E402

GOAL_EXTRA_US = 50.0
LOCAL = "127.0.0.1"


def per_call_us(operation: Callable[[], object], calls: int, batches: int) -> float:
    """Median over `batches` of the mean time of one call, in microseconds."""
    for _ in range(min(calls, 1000)):  # warm up caches, the socket buffers and the server's loop
        operation()
    results = []
    for _ in range(batches):
        start = time.perf_counter_ns()
        for _ in range(calls):
            operation()
        results.append((time.perf_counter_ns() - start) / calls / 1000)
    return statistics.median(results)


def start_server(policy: NetworkPolicy) -> tuple[BrokerClient, int]:
    """Fork a process that serves the broker; return the client end and the server's pid."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        child.close()
        try:
            BrokerServer(parent, policy, lambda: {"cpu": 0.0}).serve()
        finally:
            os._exit(0)
    parent.close()
    return BrokerClient(child), pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per batch")
    parser.add_argument("--batches", type=int, default=5, help="batches (the median is reported)")
    options = parser.parse_args()

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOCAL, 0))
        port = probe.getsockname()[1]
    policy = NetworkPolicy(frozenset({port}), frozenset({port}), (LOCAL,))

    def plain() -> str:
        return policy.local_ips[0]

    client, pid = start_server(policy)
    try:
        sink = client.call(protocol.OP_UDP_LISTEN, LOCAL, port)
        payload = b"x" * 64
        plain_us = per_call_us(plain, options.calls, options.batches)
        brokered_us = per_call_us(lambda: client.call(protocol.OP_GETMYIP), options.calls, options.batches)
        datagram_us = per_call_us(
            lambda: client.call(protocol.OP_UDP_SEND, LOCAL, port, payload, None, 0),
            max(1, options.calls // 4), options.batches,
        )
        client.call(protocol.OP_CLOSE, sink)
    finally:
        client.close()
        os.waitpid(pid, 0)

    extra = brokered_us - plain_us
    print_table("Brokered network call", [
        Row("plain in-process function call", "-", f"{plain_us:.3f} µs", None),
        Row("brokered call round trip (getmyip)", "-", f"{brokered_us:.1f} µs", None),
        Row("extra per brokered call", f"< {GOAL_EXTRA_US:.0f} µs", f"{extra:.1f} µs", extra < GOAL_EXTRA_US),
        Row("brokered 64-byte UDP send to loopback", "-", f"{datagram_us:.1f} µs", None),
    ])

if __name__ == "__main__":
    main()
