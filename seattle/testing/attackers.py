"""Bounded attack clients against a node manager on this machine, for the hostile-peers test and the benchmark.

    report = await frame_bombs(target, Bound(count=4, seconds=10))
    report = await stranger_flood(target, node_key, Bound(count=20_000, seconds=15))

Every attack is a trio function that stops at whichever comes first of its `Bound`: `count` units of work
(frames, connections, datagrams, records) or `seconds`. Each closes every socket it opened before it
returns, and each returns an `AttackReport` (what was sent, and what happened to it, counted), so a caller
can tell an attack that was refused from one that never ran.

Attacks only ever go to loopback (127.0.0.0/8; `Target` refuses anything else): they are for a daemon the
caller started. Linux answers on the whole of 127.0.0.0/8, so a client socket bound to 127.a.b.c before it
connects looks like a distinct peer to the node: `source_address(i)` spreads attackers over many addresses
and /24 prefixes, which is what per-address and per-prefix budgets must be measured against. The owner whose
service is measured calls from 127.0.0.1, outside every attacker prefix (`ATTACKER_NET`).

Every TCP connection to a node starts with the secure channel's handshake (issue 14): the attacks that send
frames complete one first (as the cheapest honest client would), so they still reach the frame layer they
attack; `connection_flood` never starts one (each of its connections is a half-open handshake to the node),
and `handshake_flood` attacks the handshake itself.

The attacks, after issues 13 and 14:

* `frame_bombs` — a 4 MiB frame of one-byte msgpack objects (each a Python object once decoded).
* `slow_readers` — pipelined requests whose answers are never read.
* `trickle_writers` — a frame sent one byte at a time, each just inside the idle timeout (slowloris).
* `connection_flood` — many idle connections from many addresses and prefixes: half-open handshakes.
* `handshake_flood` — complete handshakes as fast as the node answers them, from many addresses (each costs
  the node its Diffie-Hellman and signature work), closed at once.
* `stranger_flood` — validly signed requests from random keys with no rights on the node.
* `udp_flood` — datagrams at full rate to the overlay port: random bytes, well-formed messages with a bad
  signature, and datagrams from source port 0 (through a raw socket, so root or CAP_NET_RAW; without it
  the report says so and that part sends nothing: feed the engine directly instead).
* `record_cap_flood` — throwaway node keys storing records under one victim key, from several addresses
  (each under the holder's per-address write budget) to reach the per-key cap.
* `id_grinding` — how many keys per second this machine turns into node ids, and how long placing ids
  around a target takes at that rate (`grinding_estimate`).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import random
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import msgpack
import trio

from seattle.channel.stream import ChannelError, VersionMismatch, secure_client
from seattle.keys import Identity, PublicKey, generate_identity
from seattle.nodemgr.frames import HEADER, FrameDecoder, FrameError, encode_frame
from seattle.nodemgr.signing import DEFAULT_MAX_LIFETIME, NONCE_SIZE, public_request, sign_request
from seattle.overlay import messages, records
from seattle.overlay.messages import Kind
from seattle.overlay.nodeid import Contact, NodeId
from seattle.overlay.protocol import OverlayNode
from seattle.overlay.udp import UdpOverlay

#: Attackers come from here (127.66.0.0/16): never 127.0.0.1, where the owner's calls come from.
ATTACKER_NET = ipaddress.ip_network("127.66.0.0/16")
#: Addresses per /24 in `source_address`: many addresses in few prefixes, and many prefixes.
PER_PREFIX = 16
#: Where each TCP attack's addresses start (`source_address`): a block of 16 /24s (256 addresses) each, so
#: attacks run together (tests/nodemgr/test_hostile_peers.py) meet the node's per-address and per-network
#: budgets as separate attackers would, instead of taking each other's.
FIRST = {name: block * 16 * PER_PREFIX for block, name in enumerate(
    ("frame_bombs", "slow_readers", "trickle_writers", "connection_flood", "handshake_flood", "stranger_flood"))}
#: Just under the 4 MiB + 64 KiB frame limit: the largest frame the node accepts before any check.
BOMB_FRAME = 4 * 1024 * 1024
#: The frame a trickle writer announces; it sends its body a byte at a time and never finishes.
TRICKLE_FRAME = 1024
#: Seconds an attacker waits for the node's side of a handshake.
HANDSHAKE_TIMEOUT = 10.0
#: What connecting (and its handshake) raises when the node refuses, resets or never answers.
CONNECT_ERRORS = (OSError, ChannelError, trio.BrokenResourceError)
#: The UDP payload with which the datagram floods are padded: the overlay's datagram limit.
DATAGRAM = messages.MAX_DATAGRAM


@dataclass(frozen=True)
class Bound:
    """Stop after `count` units of work or `seconds`, whichever comes first."""

    count: int
    seconds: float


@dataclass(frozen=True)
class Target:
    """A node manager on loopback: TCP and the overlay's UDP on the same port."""

    host: str
    port: int

    def __post_init__(self) -> None:
        if not ipaddress.ip_address(self.host).is_loopback:
            raise ValueError(f"attacks go to loopback only, not {self.host!r}")


@dataclass
class AttackReport:
    """What one attack did: units sent, and outcomes by name (`refused`, `reset`, a response code...)."""

    name: str
    sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    note: str = ""

    def summary(self) -> str:
        outcomes = ", ".join(f"{name} {count}" for name, count in self.outcomes.most_common(4))
        text = f"{self.sent:,} sent in {self.elapsed:.1f} s" + (f" ({outcomes})" if outcomes else "")
        return f"{text}; {self.note}" if self.note else text


def source_address(index: int) -> str:
    """The `index`-th attacker address: PER_PREFIX addresses in each /24 of ATTACKER_NET."""
    prefix, host = divmod(index, PER_PREFIX)
    if not 0 <= prefix < 256:
        raise ValueError(f"source index {index} is beyond the {256 * PER_PREFIX} attacker addresses")
    return f"127.66.{prefix}.{host + 1}"


async def bounded(bound: Bound, report: AttackReport, work: Callable[[], Awaitable[None]]) -> AttackReport:
    """Run `work` under `bound.seconds`, time it into `report`; the caller's loop counts against bound.count."""
    start = time.perf_counter()
    with trio.move_on_after(bound.seconds):
        await work()
    report.elapsed = time.perf_counter() - start
    return report


async def bounded_tasks(bound: Bound, report: AttackReport, task: Callable[[int], Awaitable[None]], count: int,
                        *, stagger: bool = False) -> AttackReport:
    """`bounded` over `count` copies of `task(index)` run at once; `stagger` lets each start before the next
    (thousands of connections open one after another rather than in one burst)."""

    async def work() -> None:
        async with trio.open_nursery() as nursery:
            for index in range(count):
                nursery.start_soon(task, index)
                if stagger:
                    await trio.sleep(0)

    return await bounded(bound, report, work)


async def _connect(target: Target, source: str, *, handshake: bool = True) -> trio.abc.Stream:
    """A connection from `source`; with `handshake`, the secure channel over it (a client's first step)."""
    stream = await trio.open_tcp_stream(target.host, target.port, local_address=source)
    if not handshake:
        return stream
    try:
        return await secure_client(stream, expected=None, timeout=HANDSHAKE_TIMEOUT)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise


def _outcome_of(exc: BaseException) -> str:
    if isinstance(exc, VersionMismatch):
        # The node under attack speaks the channel: bytes other than its preamble are its refusal in clear
        # (too_many_connections), sent before any handshake.
        return "refused"
    if isinstance(exc, ChannelError):
        return exc.code
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc.errno)).lower()
    return type(exc).__name__


async def _drain_one_frame(stream: trio.abc.Stream, timeout: float) -> str:
    """Read one response frame; its code, or what happened instead (closed, timeout, reset)."""
    buffer = b""
    with trio.move_on_after(timeout):
        try:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return "closed"
                buffer += data
                if len(buffer) >= HEADER.size:
                    (length,) = HEADER.unpack_from(buffer)
                    if len(buffer) >= HEADER.size + length:
                        answer = msgpack.unpackb(buffer[HEADER.size:HEADER.size + length], raw=False)
                        return str(answer.get("code", "?")) if isinstance(answer, dict) else "?"
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return "reset"
        except (ValueError, msgpack.UnpackException):
            return "bad_answer"
    return "no_answer"


# --- TCP: the node manager's port -------------------------------------------------------------------------


def bomb_frame(size: int = BOMB_FRAME) -> bytes:
    """A frame whose body is one msgpack array of `size - 5` empty arrays: 1 byte each on the wire, a Python
    list each (56 bytes, plus 8 for the pointer) once decoded."""
    items = size - 5
    body = b"\xdd" + struct.pack(">I", items) + b"\x90" * items
    return HEADER.pack(len(body)) + body


async def frame_bombs(target: Target, bound: Bound, *, parallel: int = 2) -> AttackReport:
    """`bound.count` bomb frames, `parallel` connections at a time, each from its own address; each waits for
    the node's answer (or its hang-up) before the next bomb goes."""
    report = AttackReport("frame bombs")
    frame = bomb_frame()
    remaining = bound.count

    async def bomber(index: int) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            try:
                stream = await _connect(target, source_address(FIRST["frame_bombs"] + index))
            except CONNECT_ERRORS as exc:
                report.outcomes[_outcome_of(exc)] += 1
                continue
            async with stream:
                report.sent += 1  # a bomb the node cuts off after its first bytes still counts as sent
                try:
                    await stream.send_all(frame)
                    report.outcomes[await _drain_one_frame(stream, 10.0)] += 1
                except (trio.BrokenResourceError, OSError) as exc:
                    report.outcomes[_outcome_of(exc)] += 1

    return await bounded_tasks(bound, report, bomber, parallel)


async def slow_readers(target: Target, bound: Bound, *, connections: int = 64, per_address: int = 8,
                       batch: int = 64) -> AttackReport:
    """`connections` connections (`per_address` from each address) send pipelined public GetVessels requests,
    up to `bound.count` in all, and never read an answer; they hold on until the time is up."""
    report = AttackReport("slow readers")
    frame = encode_frame(public_request("GetVessels", {}))
    share = max(1, bound.count // connections)

    async def reader(index: int) -> None:
        try:
            stream = await _connect(target, source_address(FIRST["slow_readers"] + index // per_address))
        except CONNECT_ERRORS as exc:
            report.outcomes[_outcome_of(exc)] += 1
            return
        async with stream:
            try:
                left = share
                while left > 0:
                    # Blocks once the node stops reading (its queue full, or TCP's window shut): that is the
                    # point, and the time bound ends it.
                    step = min(batch, left)
                    await stream.send_all(frame * step)
                    report.sent += step
                    left -= step
                report.outcomes["all_sent"] += 1
                await trio.sleep_forever()
            except (trio.BrokenResourceError, OSError) as exc:
                report.outcomes[_outcome_of(exc)] += 1

    return await bounded_tasks(bound, report, reader, connections)


async def trickle_writers(target: Target, bound: Bound, *, per_address: int = 4,
                          interval: float = 1.0) -> AttackReport:
    """`bound.count` connections (`per_address` from each address) that each announce a TRICKLE_FRAME frame
    and send its body one byte every `interval` seconds, so no idle timeout ever sees them silent."""
    report = AttackReport("trickle writers")

    async def writer(index: int) -> None:
        try:
            stream = await _connect(target, source_address(FIRST["trickle_writers"] + index // per_address))
        except CONNECT_ERRORS as exc:
            report.outcomes[_outcome_of(exc)] += 1
            return
        async with stream:
            try:
                await stream.send_all(HEADER.pack(TRICKLE_FRAME))
                report.sent += 1  # the header reached the node: the trickle has begun
                for _ in range(TRICKLE_FRAME - 1):  # the last byte never comes
                    await trio.sleep(interval)
                    await stream.send_all(b"\x00")
                    report.sent += 1
                report.outcomes["frame_unfinished"] += 1
                await trio.sleep_forever()
            except (trio.BrokenResourceError, OSError) as exc:
                report.outcomes[_outcome_of(exc)] += 1

    return await bounded_tasks(bound, report, writer, bound.count, stagger=True)


async def connection_flood(target: Target, bound: Bound, *, per_address: int = 4) -> AttackReport:
    """`bound.count` connections, `per_address` from each attacker address, opened as fast as the node
    accepts them and held silent until the time is up (or the node closes them): to the node each is a
    handshake that never starts, which its per-address counts cap and its handshake deadline ends."""
    report = AttackReport("connection flood")

    async def hold(index: int) -> None:
        try:
            source = source_address(FIRST["connection_flood"] + index // per_address)
            stream = await _connect(target, source, handshake=False)
        except CONNECT_ERRORS as exc:
            report.outcomes[_outcome_of(exc)] += 1
            return
        report.sent += 1
        outcome = "held"  # until the time is up, unless the node answers or hangs up first
        try:
            async with stream:
                outcome = await _drain_one_frame(stream, bound.seconds)
        finally:
            report.outcomes[outcome] += 1

    return await bounded_tasks(bound, report, hold, bound.count, stagger=True)


async def handshake_flood(target: Target, bound: Bound, *, parallel: int = 16) -> AttackReport:
    """`bound.count` complete handshakes, `parallel` at a time, each task from its own address, each connection
    closed as soon as its handshake completes: the node's cryptographic work per connection, at full rate."""
    report = AttackReport("handshake flood")
    remaining = bound.count

    async def shaker(index: int) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            report.sent += 1
            try:
                stream = await _connect(target, source_address(FIRST["handshake_flood"] + index))
            except CONNECT_ERRORS as exc:
                report.outcomes[_outcome_of(exc)] += 1
                continue
            report.outcomes["completed"] += 1
            await trio.aclose_forcefully(stream)

    return await bounded_tasks(bound, report, shaker, parallel)


async def stranger_flood(target: Target, node_key: PublicKey, bound: Bound, *, keys: int = 64,
                         connections: int = 4, batch: int = 64,
                         call: tuple[str, dict[str, str]] = ("ListFilesInVessel", {"vessel": "v1"})) -> AttackReport:
    """`bound.count` requests correctly signed for the node by `keys` random keys that have no rights on it,
    pipelined `batch` at a time on `connections` connections from distinct addresses; answers are read (this
    is not a slow reader) and counted by code. Each request claims the longest lifetime a node accepts
    (DEFAULT_MAX_LIFETIME), the worst case for anything the node remembers per request until it expires."""
    report = AttackReport("stranger flood")
    strangers = [generate_identity(f"stranger{i}") for i in range(keys)]
    remaining = bound.count

    async def flood(index: int) -> None:
        nonlocal remaining
        try:
            stream = await _connect(target, source_address(FIRST["stranger_flood"] + index))
        except CONNECT_ERRORS as exc:
            report.outcomes[_outcome_of(exc)] += 1
            return
        decoder = FrameDecoder()
        async with stream:
            try:
                while remaining > 0:
                    step = min(batch, remaining)
                    remaining -= step
                    now = time.time()
                    frames = b"".join(encode_frame(sign_request(
                        strangers[(report.sent + i) % keys], node_key, *call, now=now,
                        nonce=os.urandom(NONCE_SIZE), lifetime=DEFAULT_MAX_LIFETIME)) for i in range(step))
                    await stream.send_all(frames)
                    report.sent += step
                    answers: list[object] = []
                    while len(answers) < step:
                        data = await stream.receive_some(65536)
                        if not data:
                            report.outcomes["closed"] += 1
                            return
                        answers += decoder.feed(data)
                    for answer in answers:
                        report.outcomes[str(answer.get("code")) if isinstance(answer, dict) else "?"] += 1
            except (*CONNECT_ERRORS, FrameError) as exc:
                report.outcomes[_outcome_of(exc)] += 1

    return await bounded_tasks(bound, report, flood, connections)


async def node_key_of(target: Target, *, timeout: float = 10.0) -> PublicKey:
    """The node's key, as its handshake proves it to any client (what a stranger learns first)."""
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream(target.host, target.port)
        async with await secure_client(stream, expected=None, timeout=timeout) as channel:
            if channel.remote_key is None:
                raise ConnectionError("the node proved no key in its handshake")
            return channel.remote_key


# --- UDP: the overlay's port ------------------------------------------------------------------------------


GARBAGE = "garbage"
BAD_SIGNATURE = "bad_signature"
PORT_ZERO = "port_zero"
UDP_FLOODS = (GARBAGE, BAD_SIGNATURE, PORT_ZERO)


def bad_signature_datagrams(count: int) -> list[bytes]:
    """`count` well-formed find_node requests from random keys, each with one signature byte flipped: they
    pass every cheap check and cost the node a signature verification each."""
    out = []
    for index in range(count):
        identity = generate_identity(f"forger{index}")
        target = NodeId.from_bytes(os.urandom(32))
        data = bytearray(messages.encode(identity, Kind.FIND_NODE, os.urandom(messages.TXID_SIZE),
                                         {"target": target}))
        data[index % messages.SIGNATURE_SIZE] ^= 0x01
        out.append(bytes(data))
    return out


def port_zero_packet(source: str, target: Target, payload: bytes) -> bytes:
    """An IPv4 + UDP packet from `source`:0 to the target (UDP checksum 0: none, which IPv4 allows); the
    kernel fills in the IP checksum and length of a raw IPPROTO_RAW send."""
    udp = struct.pack("!HHHH", 0, target.port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(source), socket.inet_aton(target.host))
    return ip + udp


async def udp_flood(target: Target, bound: Bound, kind: str, *, sources: int = 16) -> AttackReport:
    """`bound.count` datagrams of `kind` (GARBAGE, BAD_SIGNATURE or PORT_ZERO) to the overlay port, from
    `sources` addresses in turn, as fast as this process can send them (yielding to trio every 64)."""
    if kind not in UDP_FLOODS:
        raise ValueError(f"kind must be one of {', '.join(UDP_FLOODS)}, not {kind!r}")
    report = AttackReport(f"UDP {kind.replace('_', ' ')} flood")
    addresses = [source_address(index) for index in range(sources)]
    sockets: list[socket.socket] = []
    try:
        if kind == PORT_ZERO:
            try:
                raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            except PermissionError:
                report.note = "a raw socket needs root or CAP_NET_RAW: nothing sent from port 0"
                return report
            sockets.append(raw)
            payloads = [port_zero_packet(address, target, os.urandom(1 + index % 200))
                        for index, address in enumerate(addresses)]
        else:
            for address in addresses:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind((address, 0))
            payloads = (bad_signature_datagrams(64) if kind == BAD_SIGNATURE
                        else [os.urandom(1 + (index * 97) % DATAGRAM) for index in range(256)])
        for sock in sockets:
            sock.setblocking(False)

        async def work() -> None:
            destination = (target.host, 0 if kind == PORT_ZERO else target.port)
            while report.sent < bound.count:
                sock = sockets[report.sent % len(sockets)]
                try:
                    sock.sendto(payloads[report.sent % len(payloads)], destination)
                    report.sent += 1
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(sock)
                except OSError as exc:  # e.g. ECONNREFUSED queued from an earlier send: the port closed
                    report.outcomes[_outcome_of(exc)] += 1
                    await trio.sleep(0.01)
                if report.sent % 64 == 0:
                    await trio.sleep(0)

        return await bounded(bound, report, work)
    finally:
        for sock in sockets:
            sock.close()


async def record_cap_flood(target: Target, node_key: PublicKey, victim: PublicKey, bound: Bound, *,
                           sources: int = 8, timeout: float = 5.0) -> AttackReport:
    """`bound.count` records about `victim`, each signed by a throwaway node key and pointing at an attacker
    address, stored on the node through the overlay's own get_records / add_record exchange, spread over
    `sources` addresses (a holder's write budget is per address). Answers are counted by kind or code."""
    report = AttackReport("record-cap flood")
    holder = Contact.at(NodeId.from_public_key(node_key), target.host, target.port)
    key = records.dht_key(victim)
    share = -(-bound.count // sources)

    async def from_source(index: int) -> None:
        source = source_address(index)
        client = OverlayNode(generate_identity(f"flooder{index}"), randomness=_system_random(), serve=False)
        async with UdpOverlay(client, source, 0) as overlay:
            for _ in range(min(share, bound.count - report.sent)):
                raw = records.sign(generate_identity("throwaway"), victim, [f"{source}:9"],
                                   sequence=time.time_ns() // 1000, now=time.time())
                try:
                    answer = await overlay.request(holder, Kind.GET_RECORDS, {"key": key, "skip": 0}, timeout)
                    if answer.kind is not Kind.RECORDS:
                        report.outcomes[str(answer.body.get("code"))] += 1
                        continue
                    added = await overlay.request(
                        holder, Kind.ADD_RECORD, {"record": raw, "token": answer.body["token"]}, timeout)
                except TimeoutError:
                    report.outcomes["timeout"] += 1
                    continue
                report.sent += 1
                report.outcomes[added.kind.value if added.kind is Kind.ADDED else str(added.body["code"])] += 1

    return await bounded_tasks(bound, report, from_source, sources)


def _system_random() -> random.Random:
    return random.SystemRandom()


# --- id grinding ------------------------------------------------------------------------------------------


def id_grinding(bound: Bound, derive: Callable[[Identity], NodeId | None] | None = None) -> AttackReport:
    """Generate keys and derive their node ids for `bound.seconds` (or `bound.count` keys) on one core.

    `derive` turns a fresh key into the id the network would accept for it, or None when the network would
    refuse that key (a node id bound to work: a key that fails the puzzle is worth nothing to the attacker);
    by default the id is the key's hash (`NodeId.from_public_key`). `sent` counts keys tried, `outcomes["ids"]`
    the usable ids among them.
    """
    def default(identity: Identity) -> NodeId | None:
        return NodeId.from_public_key(identity.public_key)

    derive = derive or default
    report = AttackReport("id grinding")
    start = time.perf_counter()
    deadline = start + bound.seconds
    while report.sent < bound.count and (report.sent % 256 or time.perf_counter() < deadline):
        if derive(generate_identity("grind")) is not None:
            report.outcomes["ids"] += 1
        report.sent += 1
    report.elapsed = time.perf_counter() - start
    return report


def grinding_estimate(ids_per_second: float, overlay_size: int, k: int = 20) -> float:
    """Seconds to surround a chosen key: place `k` ids closer to it than its closest honest node.

    In an overlay of n nodes with uniform ids, the closest honest node to a key is at an expected 1/(n+1) of
    the id space; a random id lands closer with that probability, so k such ids take k·(n+1) tries on average.
    """
    return k * (overlay_size + 1) / ids_per_second


# --- running an attack in its own process -----------------------------------------------------------------


TCP_ATTACKS = ("frame_bombs", "slow_readers", "trickle_writers", "connection_flood", "handshake_flood",
               "stranger_flood")
ATTACKS = (*TCP_ATTACKS, *UDP_FLOODS, "record_cap_flood")


async def run_attack(name: str, target: Target, bound: Bound, *, victim: PublicKey | None = None) -> AttackReport:
    """The attack called `name` (one of ATTACKS) with its default shape; `victim` is record_cap_flood's."""
    if name == "frame_bombs":
        return await frame_bombs(target, bound)
    if name == "slow_readers":
        return await slow_readers(target, bound)
    if name == "trickle_writers":
        return await trickle_writers(target, bound)
    if name == "connection_flood":
        return await connection_flood(target, bound)
    if name == "handshake_flood":
        return await handshake_flood(target, bound)
    if name in UDP_FLOODS:
        return await udp_flood(target, bound, name)
    node_key = await node_key_of(target)
    if name == "stranger_flood":
        return await stranger_flood(target, node_key, bound)
    if name == "record_cap_flood":
        if victim is None:
            raise ValueError("record_cap_flood needs the victim key")
        return await record_cap_flood(target, node_key, victim, bound)
    raise ValueError(f"unknown attack {name!r}; the attacks are {', '.join(ATTACKS)}")


def attack_command(name: str, target: Target, bound: Bound, *, victim: PublicKey | None = None) -> list[str]:
    """The command line that runs one attack in a process of its own (`main`), so it competes with the node
    for CPU as a remote attacker's traffic would, not with the caller's own measurements."""
    return [sys.executable, "-m", "seattle.testing.attackers", name, target.host, str(target.port),
            str(bound.count), str(bound.seconds), *([victim.to_text()] if victim is not None else [])]


def parse_report(output: bytes | str) -> AttackReport:
    """The report `main` printed (its last line, JSON)."""
    text = output.decode() if isinstance(output, bytes) else output
    data = json.loads(text.strip().splitlines()[-1])
    return AttackReport(data["name"], data["sent"], Counter(data["outcomes"]), data["elapsed"], data["note"])


def main(argv: Sequence[str]) -> None:
    """`python -m seattle.testing.attackers NAME HOST PORT COUNT SECONDS [VICTIM_KEY]`: one JSON line."""
    name, host, port, count, seconds, *rest = argv
    victim = PublicKey.from_text(rest[0]) if rest else None
    report = trio.run(partial(run_attack, name, Target(host, int(port)), Bound(int(count), float(seconds)),
                              victim=victim))
    print(json.dumps({"name": report.name, "sent": report.sent, "outcomes": dict(report.outcomes),
                      "elapsed": report.elapsed, "note": report.note}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
