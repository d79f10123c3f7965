"""A researcher's view of donors behind NATs, run inside a namespace of the testbed (`seattle.netlab`): used by
bench/bench_nat.py and tests/netlab/test_relays.py.

    python bench/nat_researcher.py --bootstrap 198.18.0.10:1224 --identity alice --expect 9

Browses for the identity's vessels until `--expect` are found (or `--deadline` passes), then, per node, makes
`--calls` GetVessels calls over the route it starts on (direct for a public node, else a relay) and, for a
relayed node, `--tries` times: connects again with hole punching allowed, makes one call, waits up to
`--punch-wait` seconds for the punch, and notes the path the next call takes. Prints one JSON object: when the
vessels were found, and per node its route, the latencies of its calls (ms), the relay's round trip (one TCP
handshake, ms), and each try's punch outcome and final path.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import trio

from seattle.addresses import split_ip_port
from seattle.experiment.browse import FoundVessel, browse
from seattle.keys import Identity, load_identity
from seattle.nodemgr.client import NodeClient, NodeClientError
from seattle.nodemgr.routes import connect_node


async def _latencies(client: NodeClient, calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        await client.call("GetVessels")
        out.append((time.perf_counter() - started) * 1000)
    return out


async def _relay_rtt(found: FoundVessel) -> float | None:
    if not found.relays:
        return None
    relay = found.relays[0]
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        stream = await trio.open_tcp_stream(relay.host, relay.port)
        samples.append((time.perf_counter() - started) * 1000)
        await stream.aclose()
    return statistics.median(samples)


async def _measure(found: FoundVessel, identity: Identity, calls: int, tries: int, punch_wait: float) -> dict[str, Any]:
    row: dict[str, Any] = {"node": found.address, "relayed": bool(found.relays), "tries": []}
    try:
        client = await connect_node(found.host, found.port, identity, node_key=found.node_key, relays=found.relays)
        async with client:
            row["path"] = client.path
            row["latencies"] = await _latencies(client, calls)
        row["relay_rtt"] = await _relay_rtt(found)
        for _ in range(tries if found.relays else 0):
            async with trio.open_nursery() as upgrades:
                client = await connect_node(found.host, found.port, identity, node_key=found.node_key,
                                            relays=found.relays, upgrades=upgrades)
                async with client:
                    await client.call("GetVessels")
                    with trio.move_on_after(punch_wait):
                        while client.punch_result is None:
                            await trio.sleep(0.01)
                    after = await _latencies(client, calls)
                    row["tries"].append({"punch": client.punch_result, "path": client.path, "latencies": after})
                upgrades.cancel_scope.cancel()
    except (NodeClientError, OSError) as exc:
        row["error"] = str(exc)
    return row


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--tries", type=int, default=1)
    parser.add_argument("--punch-wait", type=float, default=10.0)
    args = parser.parse_args(argv)
    identity = load_identity(args.identity)
    started = time.monotonic()
    found: list[FoundVessel] = []
    problems: list[tuple[str, str]] = []
    while time.monotonic() - started < args.deadline:
        result = await browse(identity.public_key, [split_ip_port(args.bootstrap)], timeout=3.0)
        found, problems = result.vessels, result.unreachable
        if len(found) >= args.expect:
            break
        await trio.sleep(0.2)
    report: dict[str, Any] = {"found": len(found), "found_after": time.monotonic() - started, "found_at": time.time(),
                              "unreachable": problems, "nodes": []}
    nodes = {vessel.address: vessel for vessel in found}
    # One node at a time, so no node's latencies include another's work.
    report["nodes"] = [await _measure(vessel, identity, args.calls, args.tries, args.punch_wait)
                       for _, vessel in sorted(nodes.items())]
    print(json.dumps(report))


if __name__ == "__main__":
    trio.run(main, sys.argv[1:])
