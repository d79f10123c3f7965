"""The Noise channel's own costs: handshakes and bulk encryption, in one process and over loopback TCP.

    python bench/bench_channel.py [--handshakes 300] [--batches 5] [--quick]

Handshakes: `secure_client` (with an identity to prove) against `secure_server`, both in this process, one
after the other: the CPU time of the process per handshake is both sides' CPU (the goal, issue 14: < 1 ms),
and handshakes/s is their rate. The sans-IO row is the Noise core and the identity binding alone (no trio, no
framing): what any driver pays. Over loopback TCP the row is whole connections (connect, handshake, close) per
second against a server in the same process. Bulk: 1 MiB sent through an established channel and read back
whole on the other side (encrypt + decrypt and the framing, goal ≥ 50 MB/s), next to libsodium's
ChaCha20-Poly1305 on the same 1 MiB in 64 KiB messages, the ceiling. Each figure is the median over batches,
the rows taking turns. The exit status is 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nacl.bindings  # noqa: E402
import trio  # noqa: E402
import trio.testing  # noqa: E402

from bench.table import Row, print_table  # noqa: E402
from seattle.channel import SecureStream, secure_client, secure_server  # noqa: E402
from seattle.channel.binding import local_static, verify_payload  # noqa: E402
from seattle.channel.noise import MAX_PLAINTEXT, HandshakeState  # noqa: E402
from seattle.channel.stream import preamble  # noqa: E402
from seattle.keys import Identity, generate_identity  # noqa: E402

GOAL_HANDSHAKE_MS = 1.0
GOAL_MB_PER_SECOND = 50.0
MIB = 1 << 20

NODE = generate_identity("node")
CLIENT = generate_identity("client")


async def memory_handshake(client: Identity | None = CLIENT) -> tuple[SecureStream, SecureStream]:
    client_end, node_end = trio.testing.memory_stream_pair()
    sides: dict[str, SecureStream] = {}

    async def serve() -> None:
        sides["node"] = await secure_server(node_end, identity=NODE)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        sides["client"] = await secure_client(client_end, expected=NODE.public_key, identity=client)
    return sides["client"], sides["node"]


def sans_io_handshake() -> None:
    """Both sides of XX with the identity payloads, as the driver runs them, without any IO."""
    prologue = preamble() * 2
    node, client = local_static(NODE), local_static(CLIENT)
    initiator = HandshakeState(initiator=True, static=client.key_pair, prologue=prologue)
    responder = HandshakeState(initiator=False, static=node.key_pair, prologue=prologue)
    responder.read_message(initiator.write_message())
    payload = initiator.read_message(responder.write_message(node.payload))
    assert initiator.remote_static is not None
    verify_payload(payload, initiator.remote_static, required=True)
    payload = responder.read_message(initiator.write_message(client.payload))
    assert responder.remote_static is not None
    verify_payload(payload, responder.remote_static, required=False)
    initiator.split()
    responder.split()


async def transfer(sender: SecureStream, receiver: SecureStream, data: bytes) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender.send_all, data)
        remaining = len(data)
        while remaining:
            remaining -= len(await receiver.receive_some())


def libsodium_mib(data: bytes) -> None:
    key, nonce = bytes(32), bytes(12)
    for offset in range(0, len(data), MAX_PLAINTEXT):
        sealed = nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(data[offset:offset + MAX_PLAINTEXT], None,
                                                                          nonce, key)
        nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt(sealed, None, nonce, key)


class Measure:
    """Wall and process-CPU time of batches of an operation: medians per item."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    async def run(self, name: str, count: int, operation: Callable[[], Awaitable[object]]) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            await operation()
        self.wall.setdefault(name, []).append((time.perf_counter() - wall) / count)
        self.cpu.setdefault(name, []).append((time.process_time() - cpu) / count)

    def wall_per_item(self, name: str) -> float:
        return statistics.median(self.wall[name])

    def cpu_per_item(self, name: str) -> float:
        return statistics.median(self.cpu[name])


async def main_async(handshakes: int, batches: int, transfers: int) -> list[Row]:
    measure = Measure()
    data = bytes(index % 251 for index in range(MIB))
    local_static(NODE), local_static(CLIENT)  # each identity's static key is derived and signed once per process

    async def sans_io() -> None:
        sans_io_handshake()

    memory_client, memory_node = await memory_handshake()

    async with trio.open_nursery() as nursery:
        async def serve(stream: trio.SocketStream) -> None:
            channel = await secure_server(stream, identity=NODE)
            async with channel:
                while await channel.receive_some():
                    pass

        async def echo(stream: trio.SocketStream) -> None:
            channel = await secure_server(stream, identity=NODE)
            async with channel:
                while chunk := await channel.receive_some():
                    await channel.send_all(chunk)

        listeners = [await trio.open_tcp_listeners(0, host="127.0.0.1") for _ in range(2)]
        nursery.start_soon(trio.serve_listeners, serve, listeners[0])
        nursery.start_soon(trio.serve_listeners, echo, listeners[1])
        connect_port = listeners[0][0].socket.getsockname()[1]
        echo_port = listeners[1][0].socket.getsockname()[1]

        async def tcp_connection() -> None:
            stream = await trio.open_tcp_stream("127.0.0.1", connect_port)
            channel = await secure_client(stream, expected=NODE.public_key, identity=CLIENT)
            await channel.aclose()

        tcp_channel = await secure_client(await trio.open_tcp_stream("127.0.0.1", echo_port),
                                          expected=NODE.public_key, identity=CLIENT)

        async def tcp_round_trip() -> None:
            """1 MiB to the echoing node and back: two encryptions and two decryptions of each byte."""
            async with trio.open_nursery() as both_ways:
                both_ways.start_soon(tcp_channel.send_all, data)
                remaining = len(data)
                while remaining:
                    remaining -= len(await tcp_channel.receive_some())

        async def raw_crypto() -> None:
            libsodium_mib(data)

        for _ in range(batches):
            await measure.run("sans-io", handshakes, sans_io)
            await measure.run("memory", handshakes, memory_handshake)
            await measure.run("tcp", handshakes, tcp_connection)
            await measure.run("bulk memory", transfers, lambda: transfer(memory_client, memory_node, data))
            await measure.run("bulk tcp", transfers, tcp_round_trip)
            await measure.run("libsodium", transfers, raw_crypto)
        await tcp_channel.aclose()
        nursery.cancel_scope.cancel()

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.3f} ms"

    def mb_per_second(name: str, passes: int = 1) -> float:
        return passes * MIB / 1e6 / measure.wall_per_item(name)

    handshake_cpu = measure.cpu_per_item("memory")
    bulk_memory, bulk_tcp, ceiling = mb_per_second("bulk memory"), mb_per_second("bulk tcp", 2), mb_per_second(
        "libsodium")
    hs_goal, mb_goal = f"< {GOAL_HANDSHAKE_MS:g} ms", f"≥ {GOAL_MB_PER_SECOND:g} MB/s"
    return [
        Row("handshake, sans-IO core + identity binding, both sides (CPU)", "-", ms(measure.cpu_per_item("sans-io")),
            None),
        Row("handshake over memory streams, client + node CPU", hs_goal, ms(handshake_cpu),
            handshake_cpu < GOAL_HANDSHAKE_MS / 1000),
        Row("handshakes/s over memory streams (one at a time)", "report",
            f"{1 / measure.wall_per_item('memory'):,.0f}/s", None),
        Row("loopback TCP connections/s (connect + handshake + close)", "report",
            f"{1 / measure.wall_per_item('tcp'):,.0f}/s", None),
        Row("loopback TCP connection, client + node CPU", "-", ms(measure.cpu_per_item("tcp")), None),
        Row("1 MiB through a channel over memory streams (encrypt + decrypt)", mb_goal, f"{bulk_memory:,.0f} MB/s",
            bulk_memory >= GOAL_MB_PER_SECOND),
        Row("1 MiB each way through a channel over loopback TCP (echo)", mb_goal, f"{bulk_tcp:,.0f} MB/s",
            bulk_tcp >= GOAL_MB_PER_SECOND),
        Row("libsodium ChaCha20-Poly1305 encrypt + decrypt of 1 MiB (ceiling)", "-", f"{ceiling:,.0f} MB/s", None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handshakes", type=int, default=300, help="handshakes per batch")
    parser.add_argument("--transfers", type=int, default=20, help="1 MiB transfers per batch")
    parser.add_argument("--batches", type=int, default=5, help="batches (the median is reported)")
    parser.add_argument("--quick", action="store_true", help="30 handshakes and 3 transfers per batch, 3 batches")
    options = parser.parse_args()
    if options.quick:
        options.handshakes, options.transfers, options.batches = 30, 3, 3
    rows = trio.run(main_async, options.handshakes, options.batches, options.transfers)
    print_table(f"Noise channel (XX, 25519, ChaChaPoly, BLAKE2b; {options.handshakes} handshakes and "
                f"{options.transfers} × 1 MiB per batch, {options.batches} batches)", rows)
    if any(row.met is False for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
