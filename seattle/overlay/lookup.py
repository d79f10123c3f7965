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

import bisect
from collections.abc import Iterable
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


class _Peer:
    """One contact the lookup knows of. `distance` to the target is computed once, as peers are kept sorted by
    it; `depth` is the number of requests on the chain that led to it (a seed is 1: one request reaches it)."""

    __slots__ = ("contact", "deadline", "depth", "distance", "path", "sent_at", "state")

    def __init__(self, contact: Contact, path: int, distance: int, depth: int) -> None:
        self.contact = contact
        self.path = path
        self.distance = distance
        self.depth = depth
        self.state = _State.CANDIDATE
        self.sent_at = 0.0
        self.deadline = 0.0

    def __lt__(self, other: _Peer) -> bool:
        return self.distance < other.distance


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
        #: Every peer, nearest the target first (distances are unique: one id per distance).
        self._by_distance: list[_Peer] = []
        self._in_flight = [0] * paths
        self._waiting: dict[NodeId, _Peer] = {}  # the peers in flight, so timeouts need not scan them all
        unique = set(_checked(seeds, "lookup seeds"))
        ordered = sorted(unique, key=lambda contact: target.distance(contact.node_id))
        for position, contact in enumerate(ordered):
            self._learn(contact, position % paths, 1)

    def next_requests(self, now: float) -> list[Contact]:
        """Contacts to send find_node to now; each path keeps up to α requests outstanding."""
        chosen: list[Contact] = []
        for path in range(self.paths):
            # Requests to peers that have since dropped out of the shortlist still hold their slot.
            free = self.alpha - self._in_flight[path]
            if free <= 0:
                continue
            for peer in self._shortlist(path):
                if free <= 0:
                    break
                if peer.state is _State.CANDIDATE:
                    peer.state, peer.sent_at, peer.deadline = _State.IN_FLIGHT, now, now + self.rtt.timeout()
                    self._in_flight[path] += 1
                    self._waiting[peer.contact.node_id] = peer
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
        if peer.state is _State.IN_FLIGHT:
            self._in_flight[peer.path] -= 1
            del self._waiting[contact.node_id]
        peer.state = _State.ANSWERED
        # Take at most k of the offered contacts, nearest first: a hostile peer cannot bloat the lookup.
        target = self.target.value
        unique = {other.node_id: other for other in contacts}.values()  # ids hash faster than contacts
        offered = sorted(unique, key=lambda other: other.node_id.value ^ target)[: self.k]
        for other in offered:
            self._learn(other, peer.path, peer.depth + 1)

    def on_timeout(self, contact: Contact, now: float) -> None:
        """Give up on `contact` (deadline passed, or the transport saw it is unreachable): frees its slot."""
        del now
        peer = self._peers.get(contact.node_id)
        if peer is None or peer.state is not _State.IN_FLIGHT:
            raise ValueError(f"lookup has no request in flight to {contact}")
        peer.state = _State.FAILED
        self._in_flight[peer.path] -= 1
        del self._waiting[contact.node_id]

    def expire(self, now: float) -> list[Contact]:
        """Time out every request whose deadline has passed; returns those contacts for `record_failure`."""
        expired = [peer.contact for peer in self._waiting.values() if peer.deadline <= now]
        for contact in expired:
            self.on_timeout(contact, now)
        return expired

    def next_deadline(self) -> float | None:
        """When the driver must wake to call `expire()` if no reply comes first; None if none is in flight."""
        return min((peer.deadline for peer in self._waiting.values()), default=None)

    def in_flight(self) -> int:
        return sum(self._in_flight)

    @property
    def done(self) -> bool:
        """True when, on every path, each of the k closest contacts not known dead has answered."""
        counts = [0] * self.paths  # the path's shortlist so far; stop at the first peer not yet answered
        for peer in self._by_distance:
            if peer.state is _State.FAILED or counts[peer.path] == self.k:
                continue
            if peer.state is not _State.ANSWERED:
                return False
            counts[peer.path] += 1
        return True

    def result(self) -> list[Contact]:
        """The k closest contacts that answered, nearest first (over all paths)."""
        return [peer.contact for peer in self._by_distance if peer.state is _State.ANSWERED][: self.k]

    @property
    def asked(self) -> int:
        """How many peers were sent a find_node (each is one request datagram)."""
        return sum(1 for peer in self._by_distance if peer.state is not _State.CANDIDATE)

    @property
    def answered(self) -> int:
        """How many of the peers asked answered (each answer is one datagram)."""
        return sum(1 for peer in self._by_distance if peer.state is _State.ANSWERED)

    def hops(self) -> int:
        """Requests on the chain that found the closest contact that answered: 1 if it was a seed (asked
        straight from our own table), d + 1 if a peer found after d requests named it; 0 with no answer."""
        for peer in self._by_distance:
            if peer.state is _State.ANSWERED:
                return peer.depth
        return 0

    def _learn(self, contact: Contact, path: int, depth: int) -> None:
        node_id = contact.node_id
        if node_id == self.own_id or node_id in self._peers:
            return
        peer = _Peer(contact, path, self.target.value ^ node_id.value, depth)
        self._peers[node_id] = peer
        bisect.insort(self._by_distance, peer)

    def _shortlist(self, path: int) -> list[_Peer]:
        """The path's k closest peers not known dead: the only ones worth asking, the ones `done` awaits."""
        shortlist = []
        for peer in self._by_distance:
            if peer.path == path and peer.state is not _State.FAILED:
                shortlist.append(peer)
                if len(shortlist) == self.k:
                    break
        return shortlist


def _checked(contacts: Iterable[Contact], where: str) -> list[Contact]:
    """`contacts` as a list, or TypeError naming `where` if anything in it is not a Contact."""
    items = list(contacts)
    for item in items:
        if not isinstance(item, Contact):
            raise TypeError(f"{where} must list Contacts, got {type(item).__name__}")
    return items
