"""The iterative Kademlia node lookup as a sans-IO state machine, and the RTT estimator behind its timeouts.

The driver (trio UDP transport or the network simulator) owns sockets and the clock; this module only decides
whom to ask next. Loop: `expire(now)` (feed the returned contacts to `RoutingTable.record_failure`), send
find_node to every contact from `next_requests(now)`, feed answers to `on_reply()`, and sleep until the next
reply or `next_deadline()`. Stop when `done`; `result()` is then the k closest contacts that answered.

Unlike lockstep rounds (bmuller/kademlia waits for the slowest of α), a request slot frees as soon as its
reply or timeout arrives, so a dead peer holds one of the α slots until its own deadline while the others keep
going. Deadlines come from `RttEstimator` (RFC 6298 SRTT/RTTVAR) instead of a fixed 5 s.

With `paths = d > 1` the lookup runs d disjoint paths (S/Kademlia): seeds are dealt round-robin to the paths,
and a contact belongs to the first path that learns of it, so the paths share no node and a hostile node
can mislead only the path that reached it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from seattle.overlay.nodeid import Contact, NodeId


class RttEstimator:
    """TCP's retransmission-timeout estimator (RFC 6298), clamped to [min_timeout, max_timeout] seconds.

    The floor stops a run of fast loopback replies from producing timeouts shorter than scheduling jitter;
    the ceiling stops a few very slow peers from making every later lookup wait for them.
    """

    ALPHA = 1 / 8
    BETA = 1 / 4

    def __init__(
        self, initial_timeout: float = 1.0, min_timeout: float = 0.2, max_timeout: float = 5.0
    ) -> None:
        if not 0 < min_timeout <= initial_timeout <= max_timeout:
            raise ValueError(
                "RTT estimator needs 0 < min_timeout <= initial_timeout <= max_timeout, got "
                f"{min_timeout!r}, {initial_timeout!r}, {max_timeout!r}"
            )
        self.min_timeout = min_timeout
        self.max_timeout = max_timeout
        self._initial = initial_timeout
        self.srtt: float | None = None
        self.rttvar: float | None = None

    def sample(self, rtt: float) -> None:
        """Fold one measured round trip (seconds) into the smoothed estimate."""
        if not rtt >= 0:
            raise ValueError(f"a round-trip time is a number >= 0 seconds, got {rtt!r}")
        if self.srtt is None or self.rttvar is None:
            self.srtt, self.rttvar = rtt, rtt / 2
            return
        self.rttvar = (1 - self.BETA) * self.rttvar + self.BETA * abs(self.srtt - rtt)
        self.srtt = (1 - self.ALPHA) * self.srtt + self.ALPHA * rtt

    def timeout(self) -> float:
        """How long to wait for a reply before counting it missed: SRTT + 4·RTTVAR, clamped."""
        if self.srtt is None or self.rttvar is None:
            return self._initial
        return min(self.max_timeout, max(self.min_timeout, self.srtt + 4 * self.rttvar))


class _State(Enum):
    CANDIDATE = "candidate"
    IN_FLIGHT = "in flight"
    ANSWERED = "answered"
    FAILED = "failed"


@dataclass
class _Peer:
    contact: Contact
    path: int
    state: _State = _State.CANDIDATE
    sent_at: float = 0.0
    deadline: float = 0.0


class Lookup:
    """Find the k live nodes closest to `target`, starting from `seeds` (usually `RoutingTable.closest`)."""

    def __init__(
        self,
        target: NodeId,
        seeds: Iterable[Contact],
        alpha: int = 3,
        k: int = 20,
        paths: int = 1,
        rtt: RttEstimator | None = None,
        own_id: NodeId | None = None,
    ) -> None:
        for name, value in (("alpha", alpha), ("k", k), ("paths", paths)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"lookup {name} must be a positive int, got {value!r}")
        if not isinstance(target, NodeId):
            raise TypeError(f"lookup target must be a NodeId, got {type(target).__name__}")
        self.target = target
        self.alpha = alpha
        self.k = k
        self.paths = paths
        self.rtt = rtt if rtt is not None else RttEstimator()
        self.own_id = own_id
        self._peers: dict[NodeId, _Peer] = {}
        unique = set(_checked(seeds, "lookup seeds"))
        ordered = sorted(unique, key=lambda contact: target.distance(contact.node_id))
        for position, contact in enumerate(ordered):
            self._learn(contact, position % paths)

    def next_requests(self, now: float) -> list[Contact]:
        """Contacts to send find_node to now; each path keeps up to α requests outstanding."""
        chosen: list[Contact] = []
        for path in range(self.paths):
            # Requests to peers that have since dropped out of the shortlist still hold their slot.
            free = self.alpha - sum(
                1 for peer in self._peers.values() if peer.path == path and peer.state is _State.IN_FLIGHT
            )
            for peer in self._shortlist(path):
                if free <= 0:
                    break
                if peer.state is _State.CANDIDATE:
                    peer.state, peer.sent_at, peer.deadline = _State.IN_FLIGHT, now, now + self.rtt.timeout()
                    chosen.append(peer.contact)
                    free -= 1
        return chosen

    def on_reply(
        self, contact: Contact, contacts: Iterable[Contact], now: float, rtt: float | None = None
    ) -> None:
        """`contact` answered with `contacts`. `rtt` defaults to the time since the request was sent.

        A reply after its timeout still counts: the peer is alive after all, its contacts are still useful,
        and its slow RTT is exactly the sample the estimator needs to stop timing out such peers.
        """
        peer = self._peers.get(contact.node_id)
        if peer is None or peer.state is _State.CANDIDATE or peer.contact != contact:
            raise ValueError(f"lookup got a reply from {contact}, which it never asked")
        contacts = _checked(contacts, f"the find_node reply from {contact}")
        if peer.state is not _State.ANSWERED:
            self.rtt.sample(now - peer.sent_at if rtt is None else rtt)
        peer.state = _State.ANSWERED
        # Take at most k of the offered contacts, nearest first: a hostile peer cannot bloat the lookup.
        offered = sorted(set(contacts), key=lambda other: self.target.distance(other.node_id))[: self.k]
        for other in offered:
            self._learn(other, peer.path)

    def on_timeout(self, contact: Contact, now: float) -> None:
        """Give up on `contact` (deadline passed, or the transport saw it is unreachable): frees its slot."""
        del now
        peer = self._peers.get(contact.node_id)
        if peer is None or peer.state is not _State.IN_FLIGHT:
            raise ValueError(f"lookup has no request in flight to {contact}")
        peer.state = _State.FAILED

    def expire(self, now: float) -> list[Contact]:
        """Time out every request whose deadline has passed; returns those contacts for `record_failure`."""
        expired = [
            peer.contact
            for peer in self._peers.values()
            if peer.state is _State.IN_FLIGHT and peer.deadline <= now
        ]
        for contact in expired:
            self.on_timeout(contact, now)
        return expired

    def next_deadline(self) -> float | None:
        """When the driver must wake to call `expire()` if no reply comes first; None if none is in flight."""
        deadlines = [peer.deadline for peer in self._peers.values() if peer.state is _State.IN_FLIGHT]
        return min(deadlines, default=None)

    def in_flight(self) -> int:
        return sum(1 for peer in self._peers.values() if peer.state is _State.IN_FLIGHT)

    @property
    def done(self) -> bool:
        """True when, on every path, each of the k closest contacts not known dead has answered."""
        return all(
            all(peer.state is _State.ANSWERED for peer in self._shortlist(path)) for path in range(self.paths)
        )

    def result(self) -> list[Contact]:
        """The k closest contacts that answered, nearest first (over all paths)."""
        answered = [peer.contact for peer in self._peers.values() if peer.state is _State.ANSWERED]
        return sorted(answered, key=lambda contact: self.target.distance(contact.node_id))[: self.k]

    def _learn(self, contact: Contact, path: int) -> None:
        if contact.node_id == self.own_id or contact.node_id in self._peers:
            return
        self._peers[contact.node_id] = _Peer(contact, path)

    def _shortlist(self, path: int) -> list[_Peer]:
        """The path's k closest peers not known dead: the only ones worth asking, the ones `done` awaits."""
        alive = [
            peer for peer in self._peers.values() if peer.path == path and peer.state is not _State.FAILED
        ]
        alive.sort(key=lambda peer: self.target.distance(peer.contact.node_id))
        return alive[: self.k]


def _checked(contacts: Iterable[Contact], where: str) -> list[Contact]:
    """`contacts` as a list, or TypeError naming `where` if anything in it is not a Contact."""
    items = list(contacts)
    for item in items:
        if not isinstance(item, Contact):
            raise TypeError(f"{where} must list Contacts, got {type(item).__name__}")
    return items
