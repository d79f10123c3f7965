"""Acquire, run, renew and release on a loopback testbed of 24 real node managers with pool vessels.

Built once for the module. The offers are the ones each node signs (the test holds the node directories, so it
signs them with the node keys, as the node publishes them); everything after that is the researcher's library
against real node managers over TCP: signed AcquireVessel, verified leases, ordinary targets, ReleaseLease.
Each node's acquire budget for one network is a burst of 4, so the tests together ask any node at most that.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import trio

from seattle.addresses import split_ip_port
from seattle.advertise.dht import find_records
from seattle.errors import NoFreeSlots
from seattle.experiment import operations, pool
from seattle.experiment.browse import light_client
from seattle.experiment.fanout import Node
from seattle.experiment.session import Session
from seattle.experiment.targets import VesselRef
from seattle.keys import generate_identity
from seattle.nodemgr.client import NodeClient
from seattle.nodemgr.nodedir import NodeDir
from seattle.pool.formats import BASE_QUOTA, Offer, slot_key
from seattle.testbed import LocalTestbed, TestbedNode, pool_vessels
from tests.cli_runner import ok
from tests.cli_runner import seattle as run

pytestmark = pytest.mark.slow

NODES = 24
PROGRAM = b"log('hello from the lessee')\n"


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTestbed]:
    donor = generate_identity("donor")
    with LocalTestbed(tmp_path_factory.mktemp("pool"), NODES, pool_vessels(donor.public_key, 2),
                      ports_per_node=6) as bed:
        yield bed


def offers(testbed: LocalTestbed, nodes: list[TestbedNode] | None = None) -> list[pool.Reachable]:
    """Each node's offer, signed with its key (2 free pool vessels each), reached at the node's address."""
    signed = []
    for node in nodes or testbed.nodes:
        identity = NodeDir(node.directory).load_identity()
        raw = Offer.sign(identity, size={"cpu": 0.1}, free=2, total=2, reachability="public", uptime=60.0,
                         country="CH" if node.index % 2 else "DE", addresses=[node.address], now=time.time())
        signed.append(Offer.verify(raw, time.time()))
    return pool.reachable_directly(signed)


async def free_counts(testbed: LocalTestbed) -> list[int]:
    counts = []
    for node in testbed.nodes:
        async with await NodeClient.connect(*split_ip_port(node.address)) as client:
            counts.append((await client.call("GetPoolStatus"))["free"])
    return counts


def test_acquire_run_renew_release_leaves_nothing(testbed: LocalTestbed) -> None:
    researcher, session = generate_identity("researcher"), Session()

    async def scenario() -> None:
        result = await pool.acquire(session, researcher, offers(testbed), 6, duration=600.0,
                                    where=pool.parse_filter("country=DE"))
        numbers = session.targets.resolve("acquiregood")
        assert len(numbers) == 6 and result.numbers == numbers
        assert {a.slot for a in result.attempts if a.kept} == set(range(6))
        de = {node.address for node in testbed.nodes if node.index % 2 == 0}
        assert all(session.targets.vessels[n].ref.address in de for n in numbers)
        # Every researcher command works on them: run a program, read its log.
        ran = await operations.execute(session, "run", numbers, operations.run("hello.r2py", PROGRAM, []),
                                       researcher)
        assert all(o.ok for o in ran), [o.reason for o in ran if not o.ok]

        async def log(node: Node, ref: VesselRef) -> bytes:
            with trio.fail_after(10):
                while b"hello from the lessee" not in (text := await node.client.call("ReadVesselLog",
                                                                                        vessel=ref.vessel)):
                    await trio.sleep(0.1)
            return bytes(text)

        assert all(o.ok for o in await operations.execute(session, "log", numbers, log, researcher))
        before = {n: pool.stored_lease(session, n) for n in numbers}
        await trio.sleep(1.1)
        renewed = await pool.renew(session, numbers, researcher, duration=1200.0)
        assert all(o.ok for o in renewed)
        for number in numbers:
            old, new = before[number], pool.stored_lease(session, number)
            assert old is not None and new is not None and new.expires > old.expires and new.slot == old.slot
        released = await pool.release(session, numbers, researcher)
        assert all(o.ok for o in released)
        assert session.targets.vessels == {}
        assert await free_counts(testbed) == [2] * NODES

    trio.run(scenario)


def test_two_researchers_acquiring_at_once_never_share_a_vessel(testbed: LocalTestbed) -> None:
    sessions = {name: Session() for name in ("alice", "bob")}
    keys = {name: generate_identity(name) for name in sessions}
    everyone = offers(testbed)

    async def scenario() -> None:
        async with trio.open_nursery() as nursery:
            for name in sessions:
                nursery.start_soon(lambda n=name: pool.acquire(sessions[n], keys[n], everyone, 8, duration=600.0))
        held = {name: {str(known.ref) for known in s.targets.vessels.values()} for name, s in sessions.items()}
        assert len(held["alice"]) == len(held["bob"]) == 8
        assert not held["alice"] & held["bob"]
        for name, session in sessions.items():
            assert all(o.ok for o in await pool.release(session, sorted(session.targets.vessels), keys[name]))

    trio.run(scenario)


def test_quota_ten_holds_across_nodes_and_the_refusal_gives_its_numbers(testbed: LocalTestbed) -> None:
    researcher, session = generate_identity("researcher"), Session()

    async def filed(slot: int) -> None:  # the holding node files the lease's record in the overlay
        async with light_client([split_ip_port(testbed.nodes[0].address)], 5.0) as overlay:
            with trio.fail_after(20):
                while not await find_records(overlay, slot_key(researcher.public_key, slot), timeout=5.0):
                    await trio.sleep(0.2)

    async def scenario() -> None:
        result = await pool.acquire(session, researcher, offers(testbed), 10, duration=600.0)
        assert len(result.numbers) == 10
        with pytest.raises(NoFreeSlots, match=r"quota 10/10"):
            await pool.acquire(session, researcher, offers(testbed), 1)
        # Another machine of the same researcher, which does not know the leases, asks a node holding none.
        holder = next(a for a in result.attempts if a.kept and a.slot == 0)
        used = {a.address for a in result.attempts if a.kept}
        stranger = next(n for n in testbed.nodes if n.address not in used)
        await filed(0)
        other = Session()
        elsewhere = await pool.acquire(other, researcher, offers(testbed, [stranger]), 1)
        refusal = next(a for a in elsewhere.attempts if a.slot == 0)
        assert (refusal.kind, refusal.code) == ("refused", "slot_taken")
        assert f"(slot 0 held at {holder.node.fingerprint()} until" in refusal.message
        for each in (session, other):
            assert all(o.ok for o in await pool.release(each, sorted(each.targets.vessels), researcher))

    trio.run(scenario)


def test_the_commands_acquire_through_the_overlay_and_release(testbed: LocalTestbed) -> None:
    node0 = testbed.nodes[0].address

    async def published() -> None:  # nodes file their offers shortly after they start
        bootstrap = [split_ip_port(node0)]
        with trio.fail_after(20):
            while len(await pool.find_offers(bootstrap, timeout=5.0)) < NODES:
                await trio.sleep(0.2)

    trio.run(published)
    ok("keygen", "me")
    nothing = run("acquire", "2", "--where", "country=JP", "--bootstrap", node0, "--as", "me")
    assert nothing.returncode == 1 and "no pool offer matches 'country=JP'" in nothing.stderr
    rows = [json.loads(line) for line in ok("acquire", "3", "--bootstrap", node0, "--as", "me", "--json",
                                              "--for", "20m").splitlines()]
    kept = [row for row in rows if row["target"] is not None]
    # Three distinct slots within the quota: usually 0-2, but a node the module's earlier tests left rate
    # limited (one /24 for every loopback researcher) refuses its slot, and the next free one is asked instead.
    assert len(kept) == 3 and len({row["slot"] for row in kept}) == 3
    assert all(0 <= int(row["slot"]) < BASE_QUOTA for row in kept)
    assert all(row["outcome"] == "ok" and row["expires"] > time.time() + 1000 for row in kept)
    listed = ok("list", "--on", "acquiregood", "--as", "me")  # an ordinary target for every command
    assert listed.count("Fresh") == 3
    ok("renew", "acquiregood", "--for", "30m", "--as", "me")
    released = run("release", "acquiregood", "--as", "me")
    assert released.returncode == 0 and "released 3 of 3 vessels" in released.stdout
    assert "no vessels" in run("list", "--on", "%all", "--as", "me").stderr
