"""Reachability, measured: where the internet sees this node, and whether a stranger can reach it unasked.

Sans-IO (no sockets, no clock): the engine (`seattle.overlay.protocol.OverlayNode`) feeds a `Tracker` what
its peers say and do, and asks it when to check and whom; the drivers only send the dial-backs.

**Observed address.** Every answer says where its sender saw the request come from (`Message.seen`). The
tracker keeps the latest observation per observer *prefix* (an IPv4 /24 or IPv6 /48 on the internet; the whole
address on a private or loopback network, where every peer shares one /24 by construction and one operator owns
them all), at most MAX_OBSERVERS of them, each for OBSERVATION_LIFETIME. An address is trusted once observers
in AGREE distinct prefixes report it, so one liar, or any number of them inside one /24, cannot move it.
Behind a symmetric NAT every peer sees another port, so no (IP, port) is ever trusted; the IP alone still is
(`Reachability.observed_ip`).

**Dial-back** (AutoNAT style). A check asks ASK peers of the routing table, in distinct prefixes, to dial us
back (`dial_back`, with a fresh random nonce each). A peer sends the nonce in a probe from another port of its
own to the address it saw the request come from, and for a node manager (`tcp`) also opens a TCP connection to
that IP and port (the node manager's TCP port is the UDP port's number); its `dialed` answer says whether TCP
got through. A NAT or a firewall lets in only what answers a flow we opened, and Linux's conntrack matches the
exact 5-tuple, so the probe from a fresh port gets through only if strangers can reach us. A check ends at
CHECK_TIMEOUT, or GRACE after every asked peer has answered or timed out (a probe and its answer travel
separately), or as soon as every probe came.

States (`State`): `public` when probes from QUORUM distinct prefixes arrived (and, checking TCP, QUORUM peers
reached it); otherwise, once QUORUM peers answered, `nat` when the observed IP is not the address we send
from toward them (something translates on the way) and `firewalled` when it is; `unknown` until a check
concludes. A check that ends with fewer answers concludes nothing: it is retried after RETRY_INTERVAL; one
that finds fewer than QUORUM peers to ask waits PEER_WAIT for more (sending nothing). A concluded one is
repeated after RECHECK_INTERVAL, and at once (at most every MIN_RECHECK) when the trusted address changes.

A node that is not `public` is a DHT client (`Tracker.client`, applied by the engine), with one exception: a
node still `unknown` that has never known QUORUM peers in distinct prefixes (`measurable`) acts as a full
node. A new overlay's first nodes have nobody to ask until they are in each other's tables, so if they waited
to be measured before entering tables, none ever would. A node joining an overlay of any size knows enough
peers from its bootstrap node's first answer, before its first bound request, so it enters no table before
it is found `public` (the engine then looks up its own id, as a join does, to meet its neighbours).
"""

from __future__ import annotations

import math
import random
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from seattle.budgets import source_of
from seattle.overlay import addresses
from seattle.overlay.nodeid import Contact

Address = tuple[str, int]

#: Observers remembered (by prefix), and how long one observation counts.
MAX_OBSERVERS = 32
OBSERVATION_LIFETIME = 1800.0
#: Distinct observer prefixes that must report an address before it is trusted.
AGREE = 3
#: Peers asked per check, and how many (in distinct prefixes) must get through, or answer, to conclude.
ASK = 3
QUORUM = 2
#: A check's longest wait; the wait for late probes once every asked peer has answered.
CHECK_TIMEOUT = 5.0
GRACE = 1.0
#: When to check again: after a conclusion, after a check that concluded nothing, at the soonest after a check.
RECHECK_INTERVAL = 3600.0
RETRY_INTERVAL = 30.0
PEER_WAIT = 2.0
MIN_RECHECK = 10.0


class State(StrEnum):
    UNKNOWN = "unknown"
    PUBLIC = "public"
    NAT = "nat"
    FIREWALLED = "firewalled"


@dataclass(frozen=True)
class Reachability:
    """What is known of this node's reachability (module docstring): one immutable value, for the status
    command, the log and the relay service."""

    state: State = State.UNKNOWN
    #: The trusted observed addresses, (IP, port): one, or none yet (or behind a symmetric NAT).
    observed: tuple[Address, ...] = ()
    #: The trusted observed IP (also behind a symmetric NAT, whose ports differ per peer); None until trusted.
    observed_ip: str | None = None
    #: When the last check ended (concluded or not), and when the next is due; None before either.
    checked_at: float | None = None
    next_check: float | None = None
    #: The last concluded check's results: whether a probe got through over UDP, and TCP (None: not checked).
    udp: bool | None = None
    tcp: bool | None = None

    @property
    def client(self) -> bool:
        """Whether this node acts as a DHT client: measured unreachable by strangers."""
        return self.state in (State.NAT, State.FIREWALLED)


def prefix(ip: str) -> str:
    """The observer prefix `ip` counts for (module docstring): its /24 or /48 on the internet, else itself."""
    source = source_of(ip)
    return source.network if addresses.scope_of(ip) is addresses.Scope.GLOBAL else source.address


@dataclass
class _Asked:
    contact: Contact
    answered: bool = False
    settled: bool = False
    probed: bool = False
    tcp: bool | None = None


@dataclass
class _Check:
    started: float
    deadline: float
    asked: dict[bytes, _Asked] = field(default_factory=dict)  # by nonce
    last_settled: float = -math.inf


class Tracker:
    """One node's reachability state machine (module docstring). `tcp`: also check the node manager's TCP
    port (a node manager's overlay; a simulation's nodes have none)."""

    def __init__(self, tcp: bool = False) -> None:
        self.tcp = tcp
        self.value = Reachability()
        #: prefix -> (the address that observer saw, when); least recently updated first.
        self._observations: OrderedDict[str, tuple[Address, float]] = OrderedDict()
        self._check: _Check | None = None
        self._next_check = -math.inf
        self._last_check = -math.inf
        #: Whether this node has known QUORUM peers in distinct prefixes (module docstring): sticky.
        self.measurable = False
        #: How many checks ran, concluded and not: for stats and tests.
        self.checks = 0

    @property
    def client(self) -> bool:
        """Whether the node acts as a DHT client now (module docstring)."""
        state = self.value.state
        return state is not State.PUBLIC and (state is not State.UNKNOWN or self.measurable)

    def note_peers(self, peers: Sequence[Contact]) -> None:
        """Peers the node knows (its table, a nodes answer): enough of them make it `measurable`."""
        self.measurable = self.measurable or len({prefix(peer.host) for peer in peers}) >= QUORUM

    # --- observations -------------------------------------------------------------------------------------

    def observe(self, observer_ip: str, seen: Address, now: float) -> None:
        """An answer from `observer_ip` (matched to our request: it is who we asked) saw us at `seen`."""
        key = prefix(observer_ip)
        self._observations.pop(key, None)
        self._observations[key] = (seen, now)
        while len(self._observations) > MAX_OBSERVERS:
            self._observations.popitem(last=False)
        self._trust(now)

    def _trust(self, now: float) -> None:
        """Recompute the trusted address and IP; a change schedules a check."""
        fresh = [seen for seen, at in self._observations.values() if now - at < OBSERVATION_LIFETIME]
        by_address = Counter(fresh)
        by_ip = Counter(host for host, _ in fresh)
        value = self.value
        observed = tuple(sorted(address for address, count in by_address.items() if count >= AGREE))
        ips = [ip for ip, count in by_ip.most_common() if count >= AGREE]
        observed_ip = value.observed_ip if value.observed_ip in ips else (ips[0] if ips else None)
        if (observed, observed_ip) == (value.observed, value.observed_ip):
            return
        self.value = replace(value, observed=observed, observed_ip=observed_ip)
        self._schedule(min(self._next_check, max(now, self._last_check + MIN_RECHECK)))

    # --- checks ---------------------------------------------------------------------------------------------

    def due(self, now: float) -> bool:
        """Whether a check should start now."""
        return self._check is None and now >= self._next_check

    def start(self, peers: Sequence[Contact], now: float, randomness: random.Random) -> list[tuple[Contact, bytes]]:
        """Begin a check with up to ASK of `peers` in distinct prefixes: (peer, nonce) for each dial-back
        request to send. Fewer than QUORUM such peers: no check, tried again after PEER_WAIT."""
        by_prefix: dict[str, Contact] = {}
        for contact in randomness.sample(list(peers), len(peers)):
            by_prefix.setdefault(prefix(contact.host), contact)
        chosen = list(by_prefix.values())[:ASK]
        self.measurable = self.measurable or len(chosen) >= QUORUM
        if len(chosen) < QUORUM:
            self._schedule(now + PEER_WAIT)
            return []
        check = _Check(now, now + CHECK_TIMEOUT)
        for contact in chosen:
            check.asked[randomness.randbytes(16)] = _Asked(contact)
        self._check = check
        return [(asked.contact, nonce) for nonce, asked in check.asked.items()]

    def answered(self, nonce: bytes, tcp: bool | None, now: float) -> None:
        """The peer asked with `nonce` answered: it dialled back (and says whether TCP got through)."""
        asked = self._asked(nonce)
        if asked is not None and not asked.settled:
            asked.answered, asked.settled, asked.tcp = True, True, tcp
            self._check_settled(now)

    def failed(self, nonce: bytes, now: float) -> None:
        """The peer asked with `nonce` refused or did not answer."""
        asked = self._asked(nonce)
        if asked is not None and not asked.settled:
            asked.settled = True
            self._check_settled(now)

    def probed(self, nonce: bytes) -> bool:
        """A probe with `nonce` arrived; False if it is no nonce of the running check (dropped)."""
        asked = self._asked(nonce)
        if asked is None:
            return False
        asked.probed = True
        return True

    def _asked(self, nonce: bytes) -> _Asked | None:
        return self._check.asked.get(nonce) if self._check is not None else None

    def _check_settled(self, now: float) -> None:
        assert self._check is not None
        self._check.last_settled = now

    def next_deadline(self) -> float:
        """When `poll` must next run: the running check's end, or the next check."""
        check = self._check
        if check is None:
            return self._next_check
        if all(asked.settled for asked in check.asked.values()):
            return min(check.deadline, check.last_settled + GRACE)
        return check.deadline

    def poll(self, now: float, local_ip: Callable[[str], str | None]) -> bool:
        """End the running check if its time has come (or every probe and answer is in); True if the value
        changed. `local_ip(peer_ip)`: the address this host sends from toward `peer_ip` (None: unknown)."""
        check = self._check
        if check is None:
            return False
        asked = list(check.asked.values())
        complete = all(a.probed and (a.settled or not self.tcp) for a in asked)
        if not complete and now < self.next_deadline():
            return False
        self._check = None
        self._last_check = now
        self.checks += 1
        before = self.value
        state = self._conclude(asked, local_ip)
        if state is None:
            self._schedule(now + RETRY_INTERVAL)
            self.value = replace(self.value, checked_at=now)
        else:
            self._schedule(now + RECHECK_INTERVAL)
            udp = len({prefix(a.contact.host) for a in asked if a.probed}) >= QUORUM
            tcp = len({prefix(a.contact.host) for a in asked if a.tcp}) >= QUORUM if self.tcp else None
            self.value = replace(self.value, state=state, checked_at=now, udp=udp, tcp=tcp)
        return self.value.state is not before.state

    def _conclude(self, asked: list[_Asked], local_ip: Callable[[str], str | None]) -> State | None:
        udp = len({prefix(a.contact.host) for a in asked if a.probed}) >= QUORUM
        tcp = not self.tcp or len({prefix(a.contact.host) for a in asked if a.tcp}) >= QUORUM
        if udp and tcp:
            return State.PUBLIC
        answered = [a for a in asked if a.answered]
        if len({prefix(a.contact.host) for a in answered}) < QUORUM:
            return None
        observed = self.value.observed_ip or self._likeliest_ip()
        if observed is None:
            return None
        ours = {local_ip(a.contact.host) for a in answered}
        return State.FIREWALLED if observed in ours else State.NAT

    def _likeliest_ip(self) -> str | None:
        """Before AGREE observers agree (a small overlay), the IP most of them saw."""
        counts = Counter(seen[0] for seen, _ in self._observations.values())
        return counts.most_common(1)[0][0] if counts else None

    def _schedule(self, at: float) -> None:
        self._next_check = at
        self.value = replace(self.value, next_check=at if math.isfinite(at) else None)
