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
from collections.abc import Callable, Iterable
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
        self, initial_timeout: float = 1.0, min_timeout: float = 0.05, max_timeout: float = 5.0
    ) -> None:
        if not 0 < min_timeout <= initial_timeout <= max_timeout:
            raise ValueError(
                "RTT estimator needs 0 < min_timeout <= initial_timeout <= max_timeout, got "
                f"{min_timeout!r}, {initial_timeout!r}, {max_timeout!r}"
            )
        self.min_timeout = min_timeout
        self.max_timeout = max_timeout
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self._timeout = initial_timeout  # kept current by `sample`: every request asks for it

    def sample(self, rtt: float) -> None:
        """Fold one measured round trip (seconds) into the smoothed estimate."""
        if not rtt >= 0:
            raise ValueError(f"a round-trip time is a number >= 0 seconds, got {rtt!r}")
        if self.srtt is None or self.rttvar is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = (1 - self.BETA) * self.rttvar + self.BETA * abs(self.srtt - rtt)
            self.srtt = (1 - self.ALPHA) * self.srtt + self.ALPHA * rtt
        self._timeout = min(self.max_timeout, max(self.min_timeout, self.srtt + 4 * self.rttvar))

    def timeout(self) -> float:
        """How long to wait for a reply before counting it missed: SRTT + 4·RTTVAR, clamped (the initial
        timeout until the first sample)."""
        return self._timeout


class _State(Enum):
    CANDIDATE = "candidate"
    IN_FLIGHT = "in flight"
    ANSWERED = "answered"
    FAILED = "failed"


# Module-level names for the states: Python 3.11 reads an enum member through a descriptor (about 100 ns),
# and the loops below test a state for every peer they pass.
_CANDIDATE, _IN_FLIGHT, _ANSWERED, _FAILED = _State.CANDIDATE, _State.IN_FLIGHT, _State.ANSWERED, _State.FAILED


class _Peer:
    """One contact the lookup knows of. `distance` to the target is computed once, as peers are kept sorted by
    it; `depth` is the number of requests on the chain that led to it (a seed is 1: one request reaches it)."""

    __slots__ = ("contact", "deadline", "depth", "distance", "path", "sent_at", "state")

    def __init__(self, contact: Contact, path: int, distance: int, depth: int) -> None:
        self.contact = contact
        self.path = path
        self.distance = distance
        self.depth = depth
        self.state = _CANDIDATE
        self.sent_at = 0.0
        self.deadline = 0.0


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
        self._target = target.value
        #: Peers keyed by their distance to the target: one id per distance, and ints hash in C (ids do not).
        self._peers: dict[int, _Peer] = {}
        #: Every peer, nearest the target first, and their distances in step (bisect searches those).
        self._by_distance: list[_Peer] = []
        self._distances: list[int] = []
        self._own_distance = None if own_id is None else own_id.value ^ self._target
        self._in_flight = [0] * paths
        self._waiting: dict[int, _Peer] = {}  # the peers in flight, so timeouts need not scan them all
        unique = {contact.node_id.value ^ self._target: contact for contact in _checked(seeds, "lookup seeds")}
        for position, distance in enumerate(sorted(unique)):
            self._learn(unique[distance], distance, position % paths, 1)

    def next_requests(self, now: float) -> list[Contact]:
        """Contacts to send find_node to now; each path keeps up to α requests outstanding to candidates among
        its k closest peers not known dead (requests to peers that have since dropped out of that shortlist
        still hold their slot)."""
        free = [self.alpha - in_flight for in_flight in self._in_flight]
        open_paths = sum(1 for slots in free if slots > 0)
        if not open_paths:
            return []
        listed = [0] * self.paths  # each path's shortlist so far
        chosen: list[Contact] = []
        for peer in self._by_distance:
            path = peer.path
            if peer.state is _FAILED or free[path] <= 0:
                continue
            if peer.state is _CANDIDATE:
                peer.state, peer.sent_at, peer.deadline = _IN_FLIGHT, now, now + self.rtt.timeout()
                self._in_flight[path] += 1
                self._waiting[peer.distance] = peer
                chosen.append(peer.contact)
                free[path] -= 1
            listed[path] += 1
            if free[path] <= 0 or listed[path] == self.k:
                free[path] = 0  # this path is served
                open_paths -= 1
                if not open_paths:
                    break
        return chosen

    def on_reply(
        self, contact: Contact, contacts: Iterable[Contact], now: float, rtt: float | None = None,
        admit: Callable[[Contact], bool] | None = None,
    ) -> None:
        """`contact` answered with `contacts`. `rtt` defaults to the time since the request was sent. `admit`
        (default: all) judges each contact the lookup does not know yet; those it refuses are not learned.

        A reply after its timeout still counts: the peer is alive after all, its contacts are still useful,
        and its slow RTT is exactly the sample the estimator needs to stop timing out such peers.
        """
        peer = self._peers.get(contact.node_id.value ^ self._target)
        if peer is None or peer.state is _CANDIDATE or peer.contact != contact:
            raise ValueError(f"lookup got a reply from {contact}, which it never asked")
        contacts = _checked(contacts, "the find_node reply from", contact)
        if peer.state is not _ANSWERED:
            self.rtt.sample(now - peer.sent_at if rtt is None else rtt)
        if peer.state is _IN_FLIGHT:
            self._in_flight[peer.path] -= 1
            del self._waiting[peer.distance]
        peer.state = _ANSWERED
        self._learn_offered(contacts, peer.path, peer.depth + 1, admit)

    def learn_answer(self, contacts: Iterable[Contact], admit: Callable[[Contact], bool] | None = None) -> None:
        """Learn the contacts a find_node answer named before the lookup began (a joining node's bootstrap
        request), as if the lookup had asked for them: they are 2 requests away. Their sender is not marked
        answered: it is asked again only if it is among the k closest, which then learn of us from a bound
        request (the bootstrap request was not bound, so it told its receiver nothing). `admit` as in
        `on_reply`."""
        self._learn_offered(_checked(contacts, "an earlier find_node answer"), 0, 2, admit)

    def _learn_offered(
        self, contacts: list[Contact], path: int, depth: int, admit: Callable[[Contact], bool] | None
    ) -> None:
        """Take at most k of the contacts an answer offered, nearest first: a hostile peer cannot bloat it.
        Only contacts not known yet go to `admit`: an answer mostly names peers earlier answers named."""
        target, known, own = self._target, self._peers, self._own_distance
        if len(contacts) > self.k:  # never from an honest peer, whose answers hold at most k
            if admit is not None:  # judged first, so the k kept are the nearest admitted ones
                contacts = [other for other in contacts if other.node_id.value ^ target in known or admit(other)]
                admit = None
            offered = {other.node_id.value ^ target: other for other in contacts}
            contacts = [offered[distance] for distance in sorted(offered)[: self.k]]
        for other in contacts:
            distance = other.node_id.value ^ target
            if distance not in known and distance != own and (admit is None or admit(other)):
                self._learn(other, distance, path, depth)

    def on_timeout(self, contact: Contact, now: float) -> None:
        """Give up on `contact` (deadline passed, or the transport saw it is unreachable): frees its slot."""
        del now
        peer = self._peers.get(contact.node_id.value ^ self._target)
        if peer is None or peer.state is not _IN_FLIGHT:
            raise ValueError(f"lookup has no request in flight to {contact}")
        peer.state = _FAILED
        self._in_flight[peer.path] -= 1
        del self._waiting[peer.distance]

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
            if peer.state is _FAILED or counts[peer.path] == self.k:
                continue
            if peer.state is not _ANSWERED:
                return False
            counts[peer.path] += 1
        return True

    def result(self) -> list[Contact]:
        """The k closest contacts that answered, nearest first (over all paths)."""
        return [peer.contact for peer in self._by_distance if peer.state is _ANSWERED][: self.k]

    @property
    def asked(self) -> int:
        """How many peers were sent a find_node (each is one request datagram)."""
        return sum(1 for peer in self._by_distance if peer.state is not _CANDIDATE)

    @property
    def answered(self) -> int:
        """How many of the peers asked answered (each answer is one datagram)."""
        return sum(1 for peer in self._by_distance if peer.state is _ANSWERED)

    def hops(self) -> int:
        """Requests on the chain that found the closest contact that answered: 1 if it was a seed (asked
        straight from our own table), d + 1 if a peer found after d requests named it; 0 with no answer."""
        for peer in self._by_distance:
            if peer.state is _ANSWERED:
                return peer.depth
        return 0

    def _learn(self, contact: Contact, distance: int, path: int, depth: int) -> None:
        if distance == self._own_distance or distance in self._peers:  # a repeat within one answer, or a seed
            return
        peer = _Peer(contact, path, distance, depth)
        self._peers[distance] = peer
        position = bisect.bisect_left(self._distances, distance)
        self._distances.insert(position, distance)
        self._by_distance.insert(position, peer)


def _checked(contacts: Iterable[Contact], where: str, sender: Contact | None = None) -> list[Contact]:
    """`contacts` as a list, or TypeError naming `where` (and `sender`: formatted only for the error, as
    every answer passes through here) if anything in it is not a Contact."""
    items = list(contacts)
    for item in items:
        if not isinstance(item, Contact):
            source = where if sender is None else f"{where} {sender}"
            raise TypeError(f"{source} must list Contacts, got {type(item).__name__}")
    return items
