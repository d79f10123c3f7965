"""The home routers of the simulated network (`seattle.overlay.simnet`): NAT mappings and stateful filters.

A `Router` is pure bookkeeping, told the time by the network: `outbound` is called for every datagram a node
behind it sends out of its LAN and says what source address the internet sees; `inbound` is called for every
datagram that arrives at the router's public address (or, for a firewall, at a host behind it) and says
where it goes, or None when the router drops it. The kinds (`seattle.natkind.NatKind`), in RFC 4787's terms:

    CONE       endpoint-independent mapping (one external port per internal address and port, whatever the
               destination; the internal port itself when it is free, as Linux's MASQUERADE does) and
               address-and-port-dependent filtering (a datagram comes in from an IP and port the internal
               endpoint has sent to: Linux's conntrack matches the whole 5-tuple, so a peer's other port is
               a stranger, which is what a dial-back from another port relies on)
    SYMMETRIC  address-and-port-dependent mapping (each destination IP and port gets a new random external
               port, as MASQUERADE --random-fully does) and address-and-port-dependent filtering (only from
               that destination)
    FIREWALL   no translation (hosts keep their public addresses); address-and-port-dependent filtering

Timeouts: a mapping, and each permission to come in, lasts `timeout` seconds after the last datagram sent
OUT through it. Inbound traffic does not refresh it: RFC 4787 asks NATs to refresh on outbound traffic and
only allows inbound refresh, so code that keeps its mappings alive by sending survives every NAT, and code
that relies on being sent to does not. RFC 4787 asks for at least 2 minutes, but routers keep less: Linux
conntrack keeps an unanswered UDP flow 30 s and an answered one 120 s; the default here is the shorter.
Expired entries are swept lazily, about once per timeout.

No hairpinning: a datagram from behind a router to the router's own public address is treated like one from
the internet.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from seattle.natkind import NatKind

#: An (IP, port) pair, as the overlay's `Address`.
Endpoint = tuple[str, int]

#: How long an idle UDP mapping lives (Linux conntrack's timeout for a flow with no answer yet).
DEFAULT_TIMEOUT = 30.0
#: External ports a NAT hands out: the non-privileged ones.
_PORTS = (1024, 65535)


@dataclass
class Mapping:
    """One external port of a NAT: who is behind it, and whom it lets in (peer -> last send to that peer)."""

    internal: Endpoint
    port: int
    #: For a symmetric NAT, the one destination the mapping was made for; None for a cone NAT's.
    destination: Endpoint | None
    last_out: float
    #: Cone: peer (IP, port) -> when the internal endpoint last sent to it.
    peers: dict[Endpoint, float] = field(default_factory=dict)


class Router:
    """A home router on the simulated network (module docstring). Made by `SimNetwork.add_router`."""

    def __init__(self, kind: NatKind, address: str | None, timeout: float, randomness: random.Random) -> None:
        if not isinstance(kind, NatKind):
            raise TypeError(f"a router's kind is a NatKind, not {type(kind).__name__}")
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"a router's mapping timeout must be a positive number of seconds, got {timeout!r}")
        self.kind = kind
        #: The public IP a NAT's hosts are seen at; None for a firewall (its hosts keep their own).
        self.address = address
        self.timeout = float(timeout)
        self._random = randomness
        #: Cone: internal endpoint -> mapping; symmetric: (internal, destination) -> mapping.
        self._mappings: dict[object, Mapping] = {}
        self._by_port: dict[int, Mapping] = {}
        #: Firewall: (internal, remote) -> when the internal endpoint last sent to the remote.
        self._flows: dict[tuple[Endpoint, Endpoint], float] = {}
        self._next_sweep = -math.inf
        #: Datagrams this router dropped on the way in (no mapping, filtered) or out (no free port).
        self.dropped = 0

    def __repr__(self) -> str:
        return f"Router({self.kind.value}, {self.address})"

    # --- the network's calls ----------------------------------------------------------------------------------

    def outbound(self, internal: Endpoint, destination: Endpoint, now: float) -> Endpoint | None:
        """The source the internet sees for a datagram `internal` sends to `destination`, creating or
        refreshing the mapping (or the firewall's flow); None when no external port is free (dropped)."""
        self._sweep(now)
        if self.kind is NatKind.FIREWALL:
            self._flows[(internal, destination)] = now
            return internal
        assert self.address is not None
        key: object = internal if self.kind is NatKind.CONE else (internal, destination)
        mapping = self._mappings.get(key)
        if mapping is not None and now - mapping.last_out >= self.timeout:
            self._forget(key, mapping)
            mapping = None
        if mapping is None:
            port = self._free_port(internal[1])
            if port is None:
                self.dropped += 1
                return None
            mapping = Mapping(internal, port, None if self.kind is NatKind.CONE else destination, now)
            self._mappings[key] = mapping
            self._by_port[port] = mapping
        mapping.last_out = now
        if self.kind is NatKind.CONE:
            mapping.peers[destination] = now
        return (self.address, mapping.port)

    def inbound(self, destination: Endpoint, source: Endpoint, now: float) -> Endpoint | None:
        """Where a datagram from `source` to `destination` (the router's public address and a port; for a
        firewall, a host behind it) goes inside, or None when the router drops it."""
        if self.kind is NatKind.FIREWALL:
            sent = self._flows.get((destination, source))
            if sent is not None and now - sent < self.timeout:
                return destination
            self.dropped += 1
            return None
        mapping = self._by_port.get(destination[1])
        if mapping is not None and now - mapping.last_out < self.timeout:
            if mapping.destination is None:  # cone: a peer the internal endpoint sent to, any mapping's
                if now - mapping.peers.get(source, -math.inf) < self.timeout:
                    return mapping.internal
            elif mapping.destination == source:
                return mapping.internal
        self.dropped += 1
        return None

    # --- what tests and simulations read ----------------------------------------------------------------------

    def mappings(self, now: float) -> list[Mapping]:
        """The NAT's live mappings (a firewall has none)."""
        return [mapping for mapping in self._by_port.values() if now - mapping.last_out < self.timeout]

    # --- inside -----------------------------------------------------------------------------------------------

    def _free_port(self, preferred: int) -> int | None:
        """A cone NAT keeps the internal port when no mapping holds it (port preservation); otherwise, and
        always for a symmetric NAT, a random free port."""
        if self.kind is NatKind.CONE and preferred not in self._by_port:
            return preferred
        low, high = _PORTS
        if len(self._by_port) >= high - low + 1:
            return None
        while True:
            port = self._random.randint(low, high)
            if port not in self._by_port:
                return port

    def _forget(self, key: object, mapping: Mapping) -> None:
        del self._mappings[key]
        del self._by_port[mapping.port]

    def _sweep(self, now: float) -> None:
        """Drop what has expired, at most once per timeout: the tables stay as large as the live traffic."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.timeout
        for key, mapping in list(self._mappings.items()):
            if now - mapping.last_out >= self.timeout:
                self._forget(key, mapping)
            elif mapping.peers:
                mapping.peers = {peer: at for peer, at in mapping.peers.items() if now - at < self.timeout}
        self._flows = {flow: at for flow, at in self._flows.items() if now - at < self.timeout}
