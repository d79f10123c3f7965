"""Reachability over real sockets (`UdpOverlay`): probes from a second socket, TCP dials, the local address.

Four nodes on 127.0.0.1-4 (one machine, so every dial-back gets through): the three with a TCP listener on
their overlay's port number end `public`; the one without ends `firewalled` (peers see its own address, and
its TCP port does not answer), which is what a donor whose firewall opens UDP only would see.
"""

from __future__ import annotations

import random
from contextlib import AsyncExitStack

import pytest
import trio

from seattle.overlay.addresses import Scope
from seattle.overlay.join import join
from seattle.overlay.nodeid import NetworkParameters
from seattle.overlay.protocol import OverlayNode
from seattle.overlay.reachability import State, Tracker
from seattle.overlay.udp import UdpOverlay
from seattle.testing.overlay import seeded_identity


@pytest.mark.slow
async def test_nodes_with_a_tcp_port_end_public_and_one_without_firewalled() -> None:
    async with AsyncExitStack() as stack:
        overlays = []
        for number in range(1, 5):
            node = OverlayNode(seeded_identity(f"reach{number}"), randomness=random.SystemRandom(),
                               scope=Scope.LOOPBACK, network=NetworkParameters.testing(),
                               reachability=Tracker(tcp=True))
            overlay = await stack.enter_async_context(UdpOverlay(node, f"127.0.0.{number}", 0))
            overlays.append(overlay)
            if number < 4:  # the node manager's TCP port: the same number
                listeners = await trio.open_tcp_listeners(overlay.address[1], host=overlay.address[0])
                for listener in listeners:
                    stack.push_async_callback(listener.aclose)
        for overlay in overlays[1:]:
            await join(overlay, [overlays[0].address], 5.0)
        with trio.fail_after(20):
            while any(o.node.reachability.value.state is State.UNKNOWN for o in overlays):  # type: ignore[union-attr]
                await trio.sleep(0.1)
        values = [o.node.reachability.value for o in overlays]  # type: ignore[union-attr]
        hosts = [o.address[0] for o in overlays]
    assert [value.state for value in values] == [State.PUBLIC] * 3 + [State.FIREWALLED]
    assert [(value.udp, value.tcp) for value in values] == [(True, True)] * 3 + [(True, False)]
    assert all(value.observed_ip in (None, host) for value, host in zip(values, hosts))
