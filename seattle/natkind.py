"""The three kinds of home router the testbeds model: the namespace testbed (`seattle.netlab`) builds them
with Linux's iptables, the simulated network (`seattle.overlay.simnet`) models them in its routers.

A shared leaf (it imports nothing) so that both name the same kinds. The behaviours, in RFC 4787's terms:

    CONE       a NAT with endpoint-independent mapping: one internal address and port keep one external port
               whatever the destination (Linux: MASQUERADE, which keeps the source port where it can)
    SYMMETRIC  a NAT with endpoint-dependent mapping: every new destination gets a new, random external port
               (Linux: MASQUERADE --random-fully), so the port a peer saw is useless to any other peer
    FIREWALL   no translation (the hosts behind it keep public addresses) but stateful filtering: packets
               answering a flow a host opened come in, new inbound connections and datagrams are dropped

Every kind drops unsolicited inbound traffic; they differ in what an outbound flow opens.
"""

from __future__ import annotations

from enum import Enum


class NatKind(Enum):
    """A home router's behaviour (module docstring)."""

    CONE = "cone"
    SYMMETRIC = "symmetric"
    FIREWALL = "firewall"

    @property
    def translates(self) -> bool:
        """Whether hosts behind it have private addresses, seen outside as the router's address."""
        return self is not NatKind.FIREWALL
