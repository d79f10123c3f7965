"""Relays with real node managers on loopback: reservations, circuits carrying NodeClient calls end to end
(the relay sees ciphertext only), refusals with their codes, and a dead relay replaced."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
import trio

from seattle.keys import Identity, generate_identity
from seattle.nodemgr.client import NodeClient
from seattle.nodemgr.node import NodeManager, init_node
from seattle.nodemgr.relay import (
    CIRCUITS_PER_NODE,
    IDENTITY_REQUIRED,
    NO_RESERVATION,
    RELAY_OFF,
    RelayLimits,
)
from seattle.nodemgr.relay_client import (
    Candidates,
    Grant,
    Incoming,
    RelayAddress,
    RelayError,
    RelayManager,
    RelayTimers,
    _ask,
    hold_reservation,
    open_circuit,
)
from seattle.nodemgr.relay_service import RESERVE
from seattle.nodemgr.routes import RELAYED_PORT, connect_node, relayed_name
from seattle.vouchers import check_voucher

pytestmark = pytest.mark.slow

FAST = RelayTimers(ping_interval=0.5, retry_interval=0.2, timeout=5.0)


@asynccontextmanager
async def node(path: Path, owner: Identity, **options: object) -> AsyncIterator[NodeManager]:
    init_node(path, owner.public_key)
    async with NodeManager(path, "127.0.0.1", 0, **options) as nm:  # type: ignore[arg-type]
        yield nm


def address_of(nm: NodeManager) -> RelayAddress:
    return RelayAddress("127.0.0.1", nm.port, nm.node_key)


async def wait_for_relays(nm: NodeManager, count: int, timeout: float = 10.0) -> list[tuple[str, bytes]]:
    with trio.fail_after(timeout):
        while len(nm.relay_entries()) < count:
            await trio.sleep(0.02)
    return nm.relay_entries()


def candidates(*relays: NodeManager) -> Candidates:
    async def offer() -> Sequence[tuple[str, int]]:
        return [("127.0.0.1", relay.port) for relay in relays if relay.server is not None]
    return offer


@asynccontextmanager
async def relayed_pair(tmp_path: Path, owner: Identity, **relay_options: object
                       ) -> AsyncIterator[tuple[NodeManager, NodeManager]]:
    """A relay, and a NATed node holding one reservation on it."""
    async with node(tmp_path / "relay", owner, **relay_options) as relay, \
            node(tmp_path / "nat", owner, needs_relay=True, relay_candidates=candidates(relay),
                 relay_timers=RelayTimers(wanted=1, ping_interval=0.5, timeout=5.0)) as nat:
        yield relay, nat


async def test_a_circuit_carries_node_manager_calls_end_to_end(tmp_path: Path) -> None:
    owner = generate_identity("owner")
    async with relayed_pair(tmp_path, owner) as (relay, nat):
        ((text, voucher),) = await wait_for_relays(nat, 1)
        assert text == f"127.0.0.1:{relay.port}"
        checked = check_voucher(voucher, nat.node_key, time.time())
        assert checked.relay == relay.node_key
        assert nat.advertised_addresses() == []
        marker = b"relay-must-not-see-this-" * 4
        stream = await open_circuit(address_of(relay), nat.node_key)
        seen: list[bytes] = []
        spy = _Spy(stream, seen)
        async with await NodeClient.over(spy, owner, address="relayed", expected=nat.node_key) as client:
            assert client.node_key == nat.node_key
            vessels = await client.call("GetVessels")
            assert vessels["node_key"] == nat.node_key.to_text()
            await client.call("AddFileToVessel", vessel="v1", filename="m.txt", data=marker)
            assert await client.call("RetrieveFileFromVessel", vessel="v1", filename="m.txt") == marker
        assert relay.server is not None and relay.server.relay is not None
        assert relay.server.relay.stats["circuits_call"] == 1
        assert relay.server.relay.stats["relayed_bytes"] > len(marker) * 2
        # What crossed the relay's splice (the inner stream, as the relay forwards it) is ciphertext.
        assert seen and marker not in b"".join(seen)
        assert nat.server is not None and nat.server.stats["streams_served"] == 1


class _Spy(trio.abc.HalfCloseableStream):
    """A stream that records what it receives: the bytes the relay forwarded to the researcher."""

    def __init__(self, inner: trio.abc.HalfCloseableStream, seen: list[bytes]) -> None:
        self.inner = inner
        self.seen = seen

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.seen.append(bytes(data))
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        self.seen.append(bytes(data))
        return data

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_relay_refuses_a_node_without_a_reservation_and_anonymous_reservations(tmp_path: Path) -> None:
    owner = generate_identity("owner")
    stranger = generate_identity("stranger").public_key
    async with node(tmp_path / "relay", owner) as relay:
        with pytest.raises(RelayError) as refused:
            await open_circuit(address_of(relay), stranger)
        assert refused.value.code == NO_RESERVATION
        assert stranger.fingerprint() in refused.value.message
        with pytest.raises(RelayError) as anonymous:
            await _ask(address_of(relay), None, RESERVE, {}, 5.0)
        assert anonymous.value.code == IDENTITY_REQUIRED


async def test_a_relay_turned_off_refuses(tmp_path: Path) -> None:
    owner = generate_identity("owner")
    async with node(tmp_path / "relay", owner, relay_limits=RelayLimits(enabled=False)) as relay:
        grants: list[Grant] = []

        async def serve(stream: trio.abc.Stream, peer: str) -> None:
            await stream.aclose()

        with pytest.raises(RelayError) as refused:
            await hold_reservation(address_of(relay), generate_identity("nat"), serve, grants.append)
        assert refused.value.code == RELAY_OFF
        assert not grants


async def test_a_relay_refuses_circuits_over_its_cap_per_node_with_the_numbers(tmp_path: Path) -> None:
    owner = generate_identity("owner")
    limits = RelayLimits(circuits_per_node=1)
    async with relayed_pair(tmp_path, owner, relay_limits=limits) as (relay, nat):
        await wait_for_relays(nat, 1)
        first = await open_circuit(address_of(relay), nat.node_key)
        with pytest.raises(RelayError) as refused:
            await open_circuit(address_of(relay), nat.node_key)
        assert refused.value.code == CIRCUITS_PER_NODE
        assert "1 circuits" in refused.value.message
        await first.aclose()


async def test_a_dead_relay_is_replaced_and_calls_go_on(tmp_path: Path) -> None:
    owner = generate_identity("owner")
    dying = trio.CancelScope()

    async def run_dying(*, task_status: trio.TaskStatus[NodeManager] = trio.TASK_STATUS_IGNORED) -> None:
        with dying:
            async with node(tmp_path / "r2", owner) as nm:
                task_status.started(nm)
                await trio.sleep_forever()

    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(node(tmp_path / "r1", owner))
        third = await stack.enter_async_context(node(tmp_path / "r3", owner))
        nursery = await stack.enter_async_context(trio.open_nursery())
        second = await nursery.start(run_dying)
        relays = [first, second]

        async def offer() -> Sequence[tuple[str, int]]:
            return [("127.0.0.1", nm.port) for nm in relays]

        nat = await stack.enter_async_context(node(tmp_path / "nat", owner, needs_relay=True, relay_candidates=offer,
                                                   relay_timers=FAST))
        held = {text for text, _ in await wait_for_relays(nat, 2)}
        assert held == {f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"}
        relays.append(third)
        started = trio.current_time()
        dying.cancel()  # the second relay dies
        with trio.fail_after(60):
            while f"127.0.0.1:{third.port}" not in {text for text, _ in nat.relay_entries()}:
                await trio.sleep(0.05)
        assert trio.current_time() - started < 60
        assert f"127.0.0.1:{second.port}" not in {text for text, _ in nat.relay_entries()}
        stream = await open_circuit(address_of(third), nat.node_key)
        async with await NodeClient.over(stream, owner, address="relayed", expected=nat.node_key) as client:
            assert (await client.call("GetVessels"))["node_key"] == nat.node_key.to_text()
        nursery.cancel_scope.cancel()


async def test_a_relayed_client_moves_to_a_punched_direct_path_between_calls(tmp_path: Path) -> None:
    owner = generate_identity("owner")
    async with relayed_pair(tmp_path, owner) as (relay, nat), trio.open_nursery() as nursery:
        await wait_for_relays(nat, 1)
        client = await connect_node(relayed_name(nat.node_key), RELAYED_PORT, owner, node_key=nat.node_key,
                                    relays=[address_of(relay)], upgrades=nursery)
        async with client:
            assert client.path == f"relay 127.0.0.1:{relay.port}"
            assert (await client.call("GetVessels"))["node_key"] == nat.node_key.to_text()
            with trio.fail_after(10):
                while client.punch_result is None:
                    await trio.sleep(0.02)
            assert client.punch_result == "success" and client.path.startswith("direct 127.0.0.1:")
            assert nat.punches["success"] == 1
            await client.call("AddFileToVessel", vessel="v1", filename="after.txt", data=b"direct")
            assert await client.call("RetrieveFileFromVessel", vessel="v1", filename="after.txt") == b"direct"
        assert relay.server is not None and relay.server.relay is not None
        assert relay.server.relay.stats["circuits_coordination"] == 1


async def test_reservations_follow_whether_the_node_needs_relays(tmp_path: Path) -> None:
    owner = generate_identity("owner")
    needed = False
    async with node(tmp_path / "relay", owner) as relay:

        async def serve(stream: trio.abc.Stream, incoming: Incoming) -> None:
            await stream.aclose()

        manager = RelayManager(generate_identity("nat"), serve, candidates(relay), needed=lambda: needed,
                               timers=RelayTimers(wanted=1, retry_interval=0.05, timeout=5.0))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.run)
            await trio.sleep(0.3)
            assert manager.entries() == []  # a node that can be dialled holds no reservation
            needed = True
            with trio.fail_after(10):
                while not manager.entries():
                    await trio.sleep(0.02)
            assert relay.server is not None and relay.server.relay is not None
            assert len(relay.server.relay.core.reservations) == 1
            needed = False  # e.g. reachability now says public
            with trio.fail_after(10):
                while manager.entries() or relay.server.relay.core.reservations:
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()


async def test_a_reservation_is_renewed_on_its_control_connection_before_it_expires(tmp_path: Path) -> None:
    owner = generate_identity("owner")
    async with node(tmp_path / "relay", owner, relay_limits=RelayLimits(reservation_ttl=3.0)) as relay:

        async def serve(stream: trio.abc.Stream, incoming: Incoming) -> None:
            await stream.aclose()

        grants: list[Grant] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(hold_reservation, address_of(relay), generate_identity("nat"), serve,
                                                 grants.append, ping_interval=0.2, renew_margin=2.5))
            with trio.fail_after(10):
                while len({grant.expires for grant in grants}) < 2:
                    await trio.sleep(0.05)
            assert relay.server is not None and relay.server.relay is not None
            assert len(relay.server.relay.core.reservations) == 1  # renewed, not added
            assert relay.server.relay.stats["reservations"] == 1  # on the one control connection
            nursery.cancel_scope.cancel()
