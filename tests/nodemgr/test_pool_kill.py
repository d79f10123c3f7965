"""A real `seattle node run` daemon with pool vessels, SIGKILLed while acquires, releases and starts are in flight
and started again from the same directory: what it recovers to is checked through the public API and the disk.

Each round the researchers start programs (they write a file named after their lease and log its name) in the
vessels they hold, then release some leases and acquire others (uploading and starting a program as soon as a
lease arrives), at times two acquires of one slot, and the daemon gets SIGKILL after a seeded random delay,
from right after the first request was sent to past the last answer. The restarted node must show:

- every pool vessel free with no user, or leased with its lessee as its only user; nothing left ending;
- every lease a researcher got an answer for still held, a lease whose release was answered gone, and no slot
  of a key leased twice;
- in every vessel no file or log line of any lease but its current one, and no vessel process of the killed
  node; soon after, no process of the killed node at all;
- and at the end, every vessel free and wiped after the releases, and all of them leased again.

The restarted node does nothing itself about its predecessor's processes: each supervisor kills its vessel
when it finds the node's end of its control socket closed (within milliseconds: a vessel can still write a
file just after the kill, never after the restart, about half a second later), and the zygote exits when its
socket closes (one still warming up when the node died exits once warm, a second or two later).

Each restart gives the node a fresh acquire budget (a burst of 4 per network), so a round asks at most 4.
"""

from __future__ import annotations

import os
import random
import re
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from seattle.donor.daemonctl import control_request
from seattle.errors import NodeNotRunning
from seattle.keys import Identity, PublicKey, generate_identity
from seattle.nodemgr.client import CallFailed, NodeClient, NodeClientError
from seattle.nodemgr.nodedir import NodeDir
from seattle.pool.formats import Lease
from seattle.testbed import NodeSpec, free_port_pool, pool_vessels, write_node_config

pytestmark = pytest.mark.slow

POOL = 4
RESEARCHERS = 3
ROUNDS = 10
SEED = 1616
#: Seconds from the first request of a round to the SIGKILL: 0 kills right after it was sent. Most rounds
#: instead draw it up to the slowest answer seen so far, so the kill lands inside a call on a machine of any
#: speed.
KILL_DELAYS = (0.0, 0.003, 0.01, 0.04, 0.15, 0.6)
STARTUP = 30.0
WAIT = 20.0
TOKEN = re.compile(rb"tok\d{4}")
DURATION = 600.0


def program(token: str) -> bytes:
    """Writes a file named after the lease and logs its name, then keeps running until stopped or killed."""
    return (f"f = openfile('out_{token}', True)\nf.writeat('{token}', 0)\nf.close()\nlog('{token}\\n')\n"
            "while True:\n    sleep(0.05)\n").encode()


class Daemon:
    """One `seattle node run` process for a node directory: started, SIGKILLed, started again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.address = ""

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def start(self) -> None:
        stderr_path = self.directory.parent / "node.stderr"
        with open(stderr_path, "ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "seattle.cli", "node", "run", "--dir", str(self.directory)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, start_new_session=True)
        assert self.process.stdout is not None
        fd, line, deadline = self.process.stdout.fileno(), b"", time.monotonic() + STARTUP
        while b"\n" not in line:
            ready = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]
            chunk = os.read(fd, 4096) if ready else b""
            assert chunk, f"the node did not say `listening on`: {line!r}, see {stderr_path}"
            line += chunk
        assert line.startswith(b"listening on "), line
        self.address = line.split(b"\n")[0].decode().removeprefix("listening on ")

    def kill(self) -> dict[int, int]:
        """SIGKILL the node manager alone; returns what ran under it (pid → start time) at that moment: its
        zygote, supervisors and vessels, which it leaves to end on their own as a crash would."""
        assert self.process is not None
        tree = descendants(self.process.pid)
        self.process.kill()
        self.process.wait()
        self._close()
        return tree

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close()

    def _close(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


def _start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot), or None if it is gone or a zombie (dead, not yet reaped by
    the init process it was handed to)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def descendants(pid: int) -> dict[int, int]:
    """Every live process under `pid` (not itself), with its start time so a reused pid is not mistaken."""
    found: dict[int, int] = {}
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            for child in children:
                started = _start_time(child)
                if started is not None and child not in found:
                    found[child] = started
                    pending.append(child)
    return found


def survivors(tree: dict[int, int]) -> list[int]:
    return [pid for pid, started in tree.items() if _start_time(pid) == started]


def processes_in(directory: Path) -> list[int]:
    """Processes whose working directory is `directory` or below (a vessel's process runs in its directory)."""
    prefix = os.fspath(directory)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if cwd == prefix or cwd.startswith(prefix + "/") or cwd.startswith(prefix + " "):
                found.append(int(entry.name))
    return found


@dataclass
class Book:
    """What the researchers know: the leases they hold here, with the token their programs write."""

    node_key: PublicKey
    researchers: list[Identity]
    #: lease bytes → token, for every lease a researcher knows of (answered, or found after a restart).
    tokens: dict[bytes, str] = field(default_factory=dict)
    #: vessel → (researcher index, lease) held now, as the node last said.
    held: dict[str, tuple[int, Lease]] = field(default_factory=dict)
    issued: int = 0
    #: Vessel processes that ran when the node was killed, over all rounds.
    killed_running: int = 0
    #: The slowest answer of a round so far, in seconds from the round's first request.
    slowest: float = 0.0
    #: What happened, for the report of a failure and to see that kills landed at every stage.
    outcomes: list[str] = field(default_factory=list)

    def token(self, lease: Lease) -> str:
        if lease.raw not in self.tokens:
            self.issued += 1
            self.tokens[lease.raw] = f"tok{self.issued:04d}"
        return self.tokens[lease.raw]


@dataclass
class RoundLog:
    """The answers of one round: leases granted, releases confirmed, calls cut by the kill."""

    granted: list[tuple[int, Lease]] = field(default_factory=list)
    #: Leases whose release was sent (answered or not), and those whose release was answered.
    releasing: list[Lease] = field(default_factory=list)
    released: list[Lease] = field(default_factory=list)
    #: (researcher, slot) of the acquires the kill cut before their answer.
    unanswered: list[tuple[int, int]] = field(default_factory=list)
    #: Calls cut by the kill or refused, for the report of a failure.
    notes: list[str] = field(default_factory=list)


async def connect(daemon: Daemon, identity: Identity | None, book: Book) -> NodeClient:
    return await NodeClient.connect("127.0.0.1", daemon.port, identity, node_key=book.node_key, timeout=WAIT)


async def start_program(client: NodeClient, vessel: str, token: str) -> None:
    await client.call("AddFileToVessel", vessel=vessel, filename=f"p_{token}.r2py", data=program(token))
    await client.call("StartVessel", vessel=vessel, program=f"p_{token}.r2py", args=[])


async def run_programs(daemon: Daemon, book: Book) -> None:
    """Before the kill: a program runs in every held vessel and has written its file and log line."""
    for vessel, (who, lease) in sorted(book.held.items()):
        token = book.token(lease)
        async with await connect(daemon, book.researchers[who], book) as client:
            await start_program(client, vessel, token)
            with trio.fail_after(WAIT):
                while token.encode() not in await client.call("ReadVesselLog", vessel=vessel):
                    await trio.sleep(0.02)


async def chaos(daemon: Daemon, book: Book, rng: random.Random, number: int) -> tuple[RoundLog, dict[int, int]]:
    """Release some leases and acquire others, all at once, and SIGKILL the daemon meanwhile."""
    log = RoundLog()
    held = sorted(book.held.items())
    releasing = [item for item in held if rng.random() < 0.5]
    slots_used = {(who, lease.slot) for who, lease in book.held.values()}
    per_key = {who: sum(1 for w, _ in book.held.values() if w == who) for who in range(RESEARCHERS)}
    acquiring: list[tuple[int, int]] = []
    for _ in range(rng.randint(1, 4)):
        who = rng.randrange(RESEARCHERS)
        if per_key[who] >= 2:
            continue
        per_key[who] += 1
        # Sometimes a slot the key holds already, or asks for in this round too: the node must grant it once.
        mine = sorted({slot for w, slot in [*slots_used, *acquiring] if w == who})
        slot = rng.choice(mine) if mine and rng.random() < 0.3 else \
            rng.choice([s for s in range(10) if s not in mine])
        acquiring.append((who, slot))
    contested = slots_used | {asked for asked in acquiring if acquiring.count(asked) > 1}

    async def release(vessel: str, lease: Lease, client: NodeClient) -> None:
        log.releasing.append(lease)
        try:
            await client.call("ReleaseLease", vessel=vessel)
        except NodeClientError as exc:
            if isinstance(exc, CallFailed):
                raise
            log.notes.append(f"release {vessel}")
            return
        answered()
        log.released.append(lease)

    async def acquire(who: int, slot: int, client: NodeClient) -> None:
        try:
            answer = await client.request("AcquireVessel", slot=slot, duration=DURATION)
        except NodeClientError:
            log.unanswered.append((who, slot))
            log.notes.append(f"acquire {who}/{slot}")
            return
        answered()
        if answer.code != "ok":
            # The pool may be full meanwhile; a slot the key holds is refused, whichever lease holds it.
            assert answer.code == "pool_empty" or (answer.code == "slot_taken" and (who, slot) in contested), \
                (who, slot, answer)
            log.notes.append(f"refused {answer.code} {who}/{slot}")
            return
        lease = Lease.verify(answer.result["lease"], book.node_key, time.time())
        assert (lease.lessee, lease.slot) == (book.researchers[who].public_key, slot)
        log.granted.append((who, lease))
        try:
            await start_program(client, lease.vessel, book.token(lease))
        except NodeClientError as exc:
            if isinstance(exc, CallFailed):
                raise
            log.notes.append(f"program {lease.vessel}")
            return
        answered()

    tree: dict[int, int] = {}
    delay = rng.choice(KILL_DELAYS) if rng.random() < 0.3 or not book.slowest else \
        rng.uniform(0.0, book.slowest)
    began = trio.current_time()

    def answered() -> None:
        book.slowest = max(book.slowest, trio.current_time() - began)

    running: list[int] = []

    async def killer() -> None:
        await trio.sleep(delay)
        running.extend(processes_in(NodeDir(daemon.directory).vessels_path))
        tree.update(daemon.kill())

    # One connection per call (at most 8 per address), all open before the first request is sent.
    releases = [(vessel, lease, await connect(daemon, book.researchers[who], book))
                for vessel, (who, lease) in releasing]
    acquires = [(who, slot, await connect(daemon, book.researchers[who], book)) for who, slot in acquiring]
    try:
        async with trio.open_nursery() as nursery:
            for vessel, lease, client in releases:
                nursery.start_soon(release, vessel, lease, client)
            for who, slot, client in acquires:
                nursery.start_soon(acquire, who, slot, client)
            nursery.start_soon(killer)
    finally:
        for *_, client in [*releases, *acquires]:
            await client.aclose()
    book.killed_running += len(running)
    book.outcomes.append(f"round {number}: kill after {delay * 1000:.1f} ms ({len(running)} vessels running), released "
                         f"{[v for v, _ in releasing]} acquiring {acquiring}: granted "
                         f"{[(w, lease.vessel) for w, lease in log.granted]}, confirmed released "
                         f"{[lease.vessel for lease in log.released]}, cut or refused {log.notes}")
    return log, tree


async def node_status(directory: Path) -> dict[str, Any]:
    """`seattle node status`'s answer (the control socket opens just after the node says it listens)."""
    with trio.fail_after(WAIT):
        while True:
            try:
                answer: dict[str, Any] = control_request(directory, "status")["status"]
                return answer
            except NodeNotRunning:
                await trio.sleep(0.02)


async def check_recovered(daemon: Daemon, book: Book, log: RoundLog, tree: dict[int, int]) -> None:
    """The invariants of the module docstring, through the API and on disk; then `book` follows the node."""
    state = " / ".join(book.outcomes)
    directory = NodeDir(daemon.directory)
    # No vessel process of the killed node runs once the new one serves; its zygote and supervisors (each
    # ends when it finds its link to the node closed, after a warm-up still under way) end soon after.
    assert processes_in(directory.vessels_path) == [], state

    status = await node_status(daemon.directory)
    rows = {row["vessel"]: row for row in status["pool"]}
    assert len(rows) == POOL and {row["state"] for row in rows.values()} <= {"free", "leased"}, (rows, state)
    async with await connect(daemon, None, book) as anyone:
        listing = {v["name"]: v for v in (await anyone.call("GetVessels"))["vessels"]}
    live: dict[str, tuple[int, Lease]] = {}
    for who, identity in enumerate(book.researchers):
        async with await connect(daemon, identity, book) as me:
            for raw in (await me.call("GetPoolStatus"))["leases"]:
                lease = Lease.verify_signed(raw, book.node_key)
                assert lease.lessee == identity.public_key and lease.vessel not in live, (lease, state)
                live[lease.vessel] = (who, lease)
    assert len({(who, lease.slot) for who, lease in live.values()}) == len(live), (live, state)

    for vessel, row in rows.items():
        users = listing[vessel]["users"]
        assert listing[vessel]["status"] != "Started", (vessel, listing[vessel], state)
        if vessel in live:
            who, lease = live[vessel]
            lessee = book.researchers[who].public_key.to_text()
            assert (row["state"], row["lessee"], row["slot"], users) == ("leased", lessee, lease.slot, [lessee]), \
                (vessel, row, users, state)
        else:
            assert (row["state"], users) == ("free", []), (vessel, row, users, state)

    granted = [lease.vessel for _, lease in log.granted]
    busy = {vessel for vessel, (_, lease) in book.held.items() if lease not in log.releasing}
    assert len(set(granted)) == len(granted) and not busy & set(granted), f"a vessel leased twice; {state}"
    answered = [lease for _, lease in [*book.held.values(), *log.granted] if lease not in log.releasing]
    still = [lease for _, lease in live.values()]
    assert [lease.vessel for lease in answered if lease not in still] == [], f"answered leases lost; {state}"
    assert [lease.vessel for lease in log.released if lease in still] == [], f"released leases kept; {state}"
    # Where the kill landed: an unanswered acquire the node granted, a release cut before its record.
    before = [lease for _, lease in book.held.values()]
    fresh = {(who, lease.slot) for who, lease in live.values() if lease not in before}
    kept = [lease.vessel for lease in log.releasing if lease in still]
    book.outcomes.append(f"after the restart: unanswered acquires granted {sorted(fresh & set(log.unanswered))}, "
                         f"unanswered releases not done {kept}")

    owner = directory.load_identity()
    async with await connect(daemon, owner, book) as node_owner:
        for vessel in rows:
            allowed = {book.token(live[vessel][1]).encode()} if vessel in live else set()
            files = await node_owner.call("ListFilesInVessel", vessel=vessel)
            on_disk = sorted(p.name for p in (directory.vessels_path / vessel).iterdir())
            text = await node_owner.call("ReadVesselLog", vessel=vessel)
            found = set(TOKEN.findall(" ".join([*files, *on_disk]).encode() + text))
            assert found <= allowed, f"{vessel} shows {found - allowed} of an earlier lease; {state}"
            if vessel not in live:
                assert (files, on_disk, text) == ([], [], b""), (vessel, files, on_disk, text, state)
    book.held = live
    with trio.move_on_after(WAIT):
        while survivors(tree):
            await trio.sleep(0.05)
    assert survivors(tree) == [], f"processes of the killed node still run: {survivors(tree)}; {state}"


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    directory = tmp_path / "node"
    pool_vessels(generate_identity("donor").public_key, POOL)(
        NodeSpec(0, directory, "127.0.0.1", tuple(free_port_pool(2 * (POOL + 1)))))
    write_node_config(directory, "127.0.0.1", [])
    running = Daemon(directory)
    try:
        running.start()
        yield running
    finally:
        running.stop()


async def test_a_node_killed_during_acquires_and_releases_recovers(daemon: Daemon) -> None:
    rng = random.Random(SEED)
    book = Book(NodeDir(daemon.directory).load_identity().public_key,
                [generate_identity(f"researcher{n}") for n in range(RESEARCHERS)])
    for number in range(ROUNDS):
        await run_programs(daemon, book)
        log, tree = await chaos(daemon, book, rng, number)
        daemon.start()
        await check_recovered(daemon, book, log, tree)
    assert book.killed_running > 0, "no kill found a vessel running: the process checks tested nothing"

    # The node answers, releases what is left, and leases every freed vessel again.
    last = RoundLog()
    for vessel, (who, lease) in sorted(book.held.items()):
        async with await connect(daemon, book.researchers[who], book) as me:
            await me.call("ReleaseLease", vessel=vessel)
        last.releasing.append(lease)
        last.released.append(lease)
    await check_recovered(daemon, book, last, {})
    assert book.held == {}
    leased = set()
    for who in range(2):
        async with await connect(daemon, book.researchers[who], book) as me:
            for slot in range(2):
                granted = await me.call("AcquireVessel", slot=slot, duration=DURATION)
                leased.add(granted["vessel"])
                book.held[granted["vessel"]] = (who, Lease.verify_signed(granted["lease"], book.node_key))
    assert len(leased) == POOL
    await run_programs(daemon, book)
