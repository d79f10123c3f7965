"""Which peer addresses a node talks to: every address falls in a scope, and a node reaches only its own.

Sans-IO, no sockets. A stranger chooses the addresses it puts in a `nodes` answer and, by spoofing, the
source of a datagram; a node that took them as they come would send datagrams on the stranger's behalf to
hosts that never joined (its owner's LAN, its own loopback services, multicast groups, the broadcast
address), or keep contacts nobody can reach. So every address has a `Scope`:

    None       special use, never a peer: unspecified (0.0.0.0/8, ::), multicast, broadcast, reserved
               (240/4, IPv6 outside 2000::/3 and the ranges below), link-local (it needs an interface),
               documentation ranges, IETF protocol assignments, 6to4 and NAT64 prefixes
               (they lead to IPv4 addresses this check would not see), port 0
    GLOBAL     a public address
    PRIVATE    RFC 1918, shared address space (100.64/10), unique local IPv6 (fc00::/7), and the benchmarking
               range 198.18.0.0/15 (RFC 2544: for networks built to test, never routed on the internet; the
               namespace testbed, `seattle.netlab`, numbers its "public" hosts from it)
    LOOPBACK   127/8, ::1

A node's scope (`OverlayNode.scope`) is the widest scope it runs on (the address it is bound to, the
bootstrap nodes its owner named), and it reaches an address whose scope is at most that: a node on the internet
ignores private and loopback addresses, a node on a 10.x testbed reaches public and private ones, a node on
127.0.0.1 (tests, one-machine testbeds) reaches all three. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, how a dual-stack
socket reports IPv4 peers) has the scope of the IPv4 address it carries.
"""

from __future__ import annotations

import ipaddress
from enum import IntEnum
from functools import lru_cache


class Scope(IntEnum):
    """Where an address is reachable from; a larger scope is a narrower network that also reaches the smaller."""

    GLOBAL = 1
    PRIVATE = 2
    LOOPBACK = 3


def _networks(*texts: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(text) for text in texts)


_SPECIAL_V4 = _networks(
    "0.0.0.0/8", "169.254.0.0/16", "192.0.0.0/24", "192.0.2.0/24", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
)
_PRIVATE_V4 = _networks("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "198.18.0.0/15")
_LOOPBACK_V4 = _networks("127.0.0.0/8")
#: Inside 2000::/3 (the only IPv6 range handed out as public addresses), the parts that are not public ones.
_SPECIAL_V6 = _networks(
    "2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20",
)
_GLOBAL_V6 = ipaddress.ip_network("2000::/3")
_PRIVATE_V6 = ipaddress.ip_network("fc00::/7")
_MAPPED_V6 = ipaddress.ip_network("::ffff:0:0/96")


@lru_cache(maxsize=1 << 16)
def scope_of(host: str) -> Scope | None:
    """The scope of IP literal `host` (module docstring); None for special use or anything not an IP literal.

    Cached: it runs for every datagram's source and every contact learned. A flood of distinct addresses
    evicts the least recently used entries; the cache stays at 65,536 of them.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.version == 6:
        assert isinstance(address, ipaddress.IPv6Address)
        if address.scope_id is not None:  # fe80::1%eth0: meaningful on one interface only
            return None
        if address in _MAPPED_V6:
            assert address.ipv4_mapped is not None
            return scope_of(str(address.ipv4_mapped))
        if address == ipaddress.IPv6Address("::1"):
            return Scope.LOOPBACK
        if address in _PRIVATE_V6:
            return Scope.PRIVATE
        if address in _GLOBAL_V6 and not any(address in network for network in _SPECIAL_V6):
            return Scope.GLOBAL
        return None
    if any(address in network for network in _SPECIAL_V4):
        return None
    if any(address in network for network in _LOOPBACK_V4):
        return Scope.LOOPBACK
    if any(address in network for network in _PRIVATE_V4):
        return Scope.PRIVATE
    return Scope.GLOBAL


def reachable(within: Scope, host: str, port: int) -> bool:
    """Whether a node whose scope is `within` talks to (host, port): a scope no wider, and a real port."""
    scope = scope_of(host)
    return scope is not None and scope <= within and port.__class__ is int and 1 <= port <= 65535


def bound_scope(host: str) -> Scope:
    """The scope of a node bound to `host`: that address's scope; GLOBAL for a wildcard (0.0.0.0, ::)
    or any address that is no peer's (the narrowest choice: the node then reaches only public addresses)."""
    scope = scope_of(host)
    return Scope.GLOBAL if scope is None else scope
