"""How fast the node manager can check signed requests, next to the Ed25519 limit measured in the same run.

    python bench/bench_signing.py [--requests 10000] [--batches 5]

Raw figures call libsodium directly (sign; verify with `crypto_sign_open`, which is all `verify()` does
cryptographically). `RequestVerifier.verify()` is the whole check a request gets: signature, envelope
decode, destination, expiry, lifetime and replay cache. "frame decode + verify()" also takes each request
out of its length-prefixed frame, as the daemon will. Each figure is the median over batches of distinct
requests (a fresh verifier per batch, so no request is a replay), with the operations taking turns.
Goal (issue 3): at least 3,000 signed calls/s, and the ratio to the raw verify rate reported; the daemon
adds networking on top of the frame row. The exit status is 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nacl.bindings  # noqa: E402

from bench.table import Row, print_table  # noqa: E402
from seattle.keys import generate_identity  # noqa: E402
from seattle.nodemgr.frames import FrameDecoder, encode_frame  # noqa: E402
from seattle.nodemgr.signing import NONCE_SIZE, RequestVerifier, sign_request  # noqa: E402

GOAL_CALLS_PER_SECOND = 3000.0
NOW = 1_700_000_000.0


def rates(operations: dict[str, Callable[[], object]], count: int, batches: int) -> dict[str, float]:
    """Median over batches of items per second for each operation (each runs `count` items per call).

    The operations take turns within every batch, so a burst of load on the machine slows all of them
    alike and leaves their ratios meaningful.
    """
    results: dict[str, list[float]] = {name: [] for name in operations}
    for _ in range(batches):
        for name, operation in operations.items():
            start = time.perf_counter()
            operation()
            results[name].append(count / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="distinct requests per batch")
    parser.add_argument("--batches", type=int, default=5, help="batches (the median is reported)")
    options = parser.parse_args()
    count, batches = options.requests, options.batches

    caller, node = generate_identity("researcher"), generate_identity("node")
    args = ["v1", "repyV2", "program.r2py", "--port", "63100"]  # a typical StartVessel-sized call

    def make_requests() -> list[bytes]:
        return [
            sign_request(
                caller, node.public_key, "StartVesselEx", args, now=NOW, nonce=os.urandom(NONCE_SIZE)
            )
            for _ in range(count)
        ]

    requests = make_requests()
    size = len(requests[0])
    message = requests[0][64:]
    key = caller.public_key.raw

    def verify_all() -> None:
        verifier = RequestVerifier(node.public_key, replay_capacity=count)
        for raw in requests:
            verifier.verify(raw, NOW)

    stream = b"".join(encode_frame(raw) for raw in requests)

    def decode_and_verify_all() -> None:
        verifier = RequestVerifier(node.public_key, replay_capacity=count)
        decoder = FrameDecoder()
        for start in range(0, len(stream), 65536):  # as if read from a socket 64 KiB at a time
            for raw in decoder.feed(stream[start : start + 65536]):
                verifier.verify(raw, NOW)

    def verify_in_two_threads() -> None:
        verifier = RequestVerifier(node.public_key, replay_capacity=count)
        halves = (requests[: count // 2], requests[count // 2 :])
        threads = [
            threading.Thread(target=lambda half=half: [verifier.verify(raw, NOW) for raw in half])
            for half in halves
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    measured = rates(
        {
            "sign": lambda: [caller.signing_key.sign(message) for _ in range(count)],
            "raw verify": lambda: [nacl.bindings.crypto_sign_open(raw, key) for raw in requests],
            "sign_request": make_requests,
            "verify": verify_all,
            "framed": decode_and_verify_all,
            "threads": verify_in_two_threads,
        },
        count,
        batches,
    )
    sign_rate, raw_verify_rate, sign_request_rate = (
        measured[k] for k in ("sign", "raw verify", "sign_request")
    )
    verify_rate, framed_rate, threaded_rate = (measured[k] for k in ("verify", "framed", "threads"))
    ratio = framed_rate / raw_verify_rate

    goal = f"≥ {GOAL_CALLS_PER_SECOND:,.0f}/s"
    rows = [
        Row(f"Ed25519 sign, {size - 64}-byte message (libsodium)", "-", f"{sign_rate:,.0f}/s", None),
        Row("Ed25519 verify (libsodium crypto_sign_open)", "-", f"{raw_verify_rate:,.0f}/s", None),
        Row("sign_request() (client side)", "-", f"{sign_request_rate:,.0f}/s", None),
        Row(
            "RequestVerifier.verify()", goal, f"{verify_rate:,.0f}/s", verify_rate >= GOAL_CALLS_PER_SECOND
        ),
        Row("frame decode + verify()", goal, f"{framed_rate:,.0f}/s", framed_rate >= GOAL_CALLS_PER_SECOND),
        Row("frame decode + verify() / raw Ed25519 verify", "report", f"{ratio:.2f}", None),
        Row("verify() from 2 threads, one verifier", "-", f"{threaded_rate:,.0f}/s", None),
    ]
    print_table(
        f"Signed request checks ({count:,} requests × {batches} batches, {size}-byte requests)", rows
    )
    if any(row.met is False for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
