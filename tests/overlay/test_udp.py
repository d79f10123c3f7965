"""Real overlay nodes on real UDP sockets on 127.0.0.1, driven by `UdpOverlay`.

All nodes share one /24 here, so the routing tables get a per-subnet cap of k (the default of 2 would keep
all but two loopback peers out of each bucket) and drop a contact after one missed reply, so the dead-node
test needs one timeout, not three.
"""

from __future__ import annotations

import random
import secrets
from contextlib import AsyncExitStack

import nacl.signing
import pytest
import trio

from seattle.keys import Identity
from seattle.overlay import messages
from seattle.overlay.lookup import RttEstimator
from seattle.overlay.messages import Kind
from seattle.overlay.nodeid import NetworkParameters, NodeId
from seattle.overlay.protocol import OverlayNode
from seattle.overlay.routing import RoutingTable
from seattle.overlay.udp import UdpOverlay
from seattle.testing.overlay import seeded_identity

K = 4
COUNT = 14


def new_node(name: str) -> OverlayNode:
    identity = seeded_identity(name)
    own_id = NodeId.from_public_key(identity.public_key)
    table = RoutingTable(own_id, k=K, max_failures=1, max_per_subnet=K)
    # A 1 s floor on reply timeouts, so a loaded test machine's scheduling stall is not taken for a dead peer.
    rtt = RttEstimator(initial_timeout=1.0, min_timeout=1.0)
    return OverlayNode(identity, randomness=random.SystemRandom(), table=table, rtt=rtt,
                       network=NetworkParameters.testing())


def true_closest(overlays: list[UdpOverlay], target: NodeId, me: UdpOverlay) -> list[NodeId]:
    return sorted((o.node.node_id for o in overlays if o is not me), key=target.distance)[:K]


@pytest.mark.slow
async def test_a_loopback_overlay_bootstraps_looks_up_and_drops_the_dead() -> None:
    overlays = [UdpOverlay(new_node(f"udp{number}"), "127.0.0.1", 0) for number in range(COUNT)]
    stacks = [AsyncExitStack() for _ in overlays]
    with trio.fail_after(30):
        try:
            for stack, overlay in zip(stacks, overlays):
                await stack.enter_async_context(overlay)
            first = overlays[0]
            assert first.address[0] == "127.0.0.1" and first.address[1] > 0
            for overlay in overlays[1:]:
                answer = await overlay.bootstrap(*first.address)
                assert answer.sender_id == first.node.node_id
                await overlay.lookup(overlay.node.node_id, answers=[answer])
            await trio.sleep(0.2)  # let the verification pings of the last joins land

            chooser = random.Random(3)
            for _ in range(8):
                me = chooser.choice(overlays)
                target = NodeId(chooser.getrandbits(256))
                found = [contact.node_id for contact in await me.lookup(target)]
                assert found == true_closest(overlays, target, me)

            # The last node entered is the one whose nursery can close first (trio nests them).
            victim, asker = overlays[-1], overlays[4]
            victim_contact = victim.contact
            asker.node.table.observe(victim_contact, asker.now())
            await stacks[-1].aclose()
            with pytest.raises(TimeoutError, match="got no answer"):
                await asker.ping(victim_contact)
            assert victim_contact.node_id not in asker.node.table
            live = [o for o in overlays if o is not victim]
            found = [contact.node_id for contact in await asker.lookup(victim_contact.node_id)]
            assert victim_contact.node_id not in found
            assert found == true_closest(live, victim_contact.node_id, asker)
        finally:
            for stack in reversed(stacks):
                await stack.aclose()


@pytest.mark.slow
async def test_forged_datagrams_from_a_plain_socket_are_ignored() -> None:
    node = new_node("target")
    with trio.fail_after(10):
        async with UdpOverlay(node, "127.0.0.1", 0) as overlay:
            forger = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            with forger:
                await forger.bind(("127.0.0.1", 0))
                outsider = Identity("outsider", nacl.signing.SigningKey.generate())
                ping = bytearray(messages.encode(outsider, Kind.PING, secrets.token_bytes(8), {}))
                ping[-1] ^= 1  # signed payload altered after signing
                unasked = messages.encode(outsider, Kind.PONG, secrets.token_bytes(8), {})
                for datagram in (b"\x00garbage", bytes(ping), unasked, b"x" * 5000):
                    await forger.sendto(datagram, overlay.address)
                with trio.move_on_after(0.5) as quiet:
                    await forger.recv(2048)
                assert quiet.cancelled_caught, "a forged datagram got an answer"
                assert sum(node.dropped.values()) == 4
                assert node.dropped["unexpected"] == 1
                assert len(node.table) == 0

                unbound = messages.encode(outsider, Kind.PING, secrets.token_bytes(8), {})
                await forger.sendto(unbound, overlay.address)
                # An unbound request (a bootstrap request) is answered, and admits nobody: no cookie.
                assert messages.decode(await forger.recv(2048)).kind is Kind.PONG
                stale = messages.encode(outsider, Kind.PING, secrets.token_bytes(8), {}, to=node.node_id,
                                        at=overlay.now() - 3600)
                await forger.sendto(stale, overlay.address)
                # Bound to this node but not fresh (a replayed capture): answered, with no cookie.
                stale_pong = messages.decode(await forger.recv(2048))
                assert stale_pong.kind is Kind.PONG and stale_pong.cookie is None
                fresh = messages.encode(outsider, Kind.PING, secrets.token_bytes(8), {}, to=node.node_id,
                                        at=overlay.now())
                await forger.sendto(fresh, overlay.address)
                # Fresh and bound: the pong carries a cookie, and the unknown requester enters the table only
                # when its ack brings the cookie back from this address (here never).
                fresh_pong = messages.decode(await forger.recv(2048))
                assert fresh_pong.kind is Kind.PONG and fresh_pong.cookie is not None
                assert fresh_pong.sender_id == node.node_id
                assert len(node.table) == 0


async def test_bad_arguments_and_use_outside_the_block_are_named() -> None:
    node = new_node("args")
    with pytest.raises(ValueError, match="IP address literal"):
        UdpOverlay(node, "localhost", 0)
    with pytest.raises(ValueError, match="port"):
        UdpOverlay(node, "127.0.0.1", 70000)
    with pytest.raises(TypeError, match="OverlayNode"):
        UdpOverlay("node", "127.0.0.1", 0)  # type: ignore[arg-type]
    overlay = UdpOverlay(node, "127.0.0.1", 0)
    with pytest.raises(RuntimeError, match="not running"):
        overlay.address  # noqa: B018
    with pytest.raises(RuntimeError, match="not running"):
        await overlay.lookup(node.node_id)
