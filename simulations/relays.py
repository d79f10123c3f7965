"""Relays in the overlay simulation: every public node runs the real relay rules (`RelayCore`, default
`RelayLimits`), every node that measured itself behind NAT or a firewall keeps reservations on two of them as
`RelayManager` does, in virtual time, over a finished run's timeline (`seattle.overlay.simulation.Timeline`)
and on past it to `hours` of virtual time.

    model = RelayModel(result.timeline)
    figures = model.run(hours=1.0)          # RelayFigures: load per relay, bytes, losses, replacement times

The model is an event queue, not trio tasks: 6,000 NATed nodes pinging every 25 s for an hour would be millions
of task switches; only what decides (probes, grants, renewals, the detection of a dead relay, the relay's
release of a dead node's reservation) is an event, pings are counted. What it takes from `RelayManager`
(docs/simulations.md lists it): candidates are the node's routing-table contacts, shuffled (seeded), the
first `MAX_PROBES` not held and not avoided are probed at once, the round lasts until the slowest probe ends
(a dead or non-relay candidate: the timeout), the fastest `missing` are reserved on; a relay that refused is
avoided for `backoff`, one that failed for `retry_interval`; an ended reservation wakes the manager at once,
otherwise it looks again every `retry_interval`; renewal `renew_margin` before expiry; a dead relay is noticed
when the next ping goes unanswered for `timeout`. Its TCP is modelled by round trips (`SimNetwork.round_trip`):
a probe is TCP's and the handshake's (2 RTT), a reservation those and the request's (3 RTT).

Bytes are the real messages' sizes on the channel (TCP payload, no IP or TCP headers): the handshake's (docs/
channel.md: 42 + 202 + 66 bytes for an anonymous probe, 42 + 202 + 162 when the node proves its key), and each
frame (`encode_frame` of the actual request or answer) in one transport message, 2 bytes of length and a 16-byte
tag more. A relay's control bytes are those of the connections it serves; a NATed node's, those it opens.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import statistics
from collections import Counter
from dataclasses import dataclass, field

from seattle.budgets import Source, source_of
from seattle.keys import PublicKey
from seattle.nodemgr.frames import encode_frame
from seattle.nodemgr.relay import RelayCore, RelayLimits, RelayRefused, Reservation
from seattle.nodemgr.relay_client import MAX_PROBES, RelayTimers
from seattle.nodemgr.relay_service import PING, RESERVE
from seattle.nodemgr.signing import error, ok, public_request
from seattle.overlay.protocol import OverlayNode
from seattle.overlay.reachability import State
from seattle.overlay.simulation import Timeline

#: docs/channel.md: the client's preamble and message 1, the node's preamble and message 2, the client's
#: message 3 without and with the identity proof.
PROBE_HANDSHAKE = 42 + 202 + 66
PROVEN_HANDSHAKE = 42 + 202 + 162
#: A transport message's length field and Poly1305 tag.
MESSAGE_OVERHEAD = 2 + 16
HOUR = 3600.0


def _message(frame: object) -> int:
    return len(encode_frame(frame)) + MESSAGE_OVERHEAD


RESERVE_REQUEST = _message(public_request(RESERVE, {}))
PING_EXCHANGE = _message(public_request(PING, {})) + _message(ok(None))


@dataclass
class _Client:
    """A NATed node's `RelayManager`: `holding` maps a relay to its reservation (None while being asked)."""

    node: OverlayNode
    key: PublicKey
    source: Source
    observed: str
    since: float
    holding: dict[OverlayNode, Reservation | None] = field(default_factory=dict)
    #: When each held reservation's ping cadence started (its grant or last renewal).
    cadence: dict[OverlayNode, float] = field(default_factory=dict)
    avoid: dict[OverlayNode, float] = field(default_factory=dict)
    #: Departures of relays it held, not yet replaced (their times).
    lost: list[float] = field(default_factory=list)
    busy_until: float = 0.0
    wake_generation: int = 0
    left: float | None = None
    bytes: int = 0


@dataclass(frozen=True)
class RelayFigures:
    """What `RelayModel.run` reports (docs/simulations.md defines each)."""

    hours: float
    relays: int
    nated: int
    reservations_mean: float
    reservations_p50: float
    reservations_p99: float
    reservations_max: int
    reservations_peak: int
    refusals: dict[str, int]
    nated_bytes_per_hour: float
    relay_bytes_per_hour: float
    relay_bytes_per_hour_p99: float
    lost: int
    replaced: int
    replace_median: float
    replace_p95: float
    unreplaced: int
    reachable: float
    both_held: float


class RelayModel:
    """The relays and their clients over a timeline (module docstring)."""

    def __init__(self, timeline: Timeline, limits: RelayLimits | None = None,
                 timers: RelayTimers | None = None, seed: int = 0) -> None:
        self.timeline = timeline
        #: Candidates are shuffled, as `NodeManager._overlay_candidates` does; seeded, so runs repeat.
        self.random = random.Random(seed)
        self.sim = timeline.sim
        self.limits = limits or RelayLimits()
        self.timers = timers or RelayTimers()
        self.cores: dict[OverlayNode, RelayCore] = {}
        self.relay_since: dict[OverlayNode, float] = {}
        self.relay_left: dict[OverlayNode, float] = {}
        self.relay_bytes: Counter[OverlayNode] = Counter()
        self.clients: dict[OverlayNode, _Client] = {}
        self.by_key: dict[PublicKey, _Client] = {}
        self.by_address = {self.sim.address(node): node for node in timeline.kind}
        self.refusals: Counter[str] = Counter()
        self.replacements: list[float] = []
        self.lost = 0
        self.gone: set[OverlayNode] = set()
        self.peak = 0
        self._queue: list[tuple[float, int, str, tuple[object, ...]]] = []
        self._order = itertools.count()

    # -- the timeline ------------------------------------------------------------------------------------

    def run(self, hours: float = 1.0) -> RelayFigures:
        """Replay the timeline, then run on to `hours` of virtual time from the phase's start."""
        end = max(hours * HOUR, self.timeline.end)
        joined = {node: at for at, node in self.timeline.joined}
        for node in self.timeline.start:
            self._push(0.0, "arrive", node)
        for at, node in self.timeline.joined:
            self._push(at, "arrive", node)
        for at, node in self.timeline.left:
            self._push(at, "leave", node)
        for node, kind in self.timeline.kind.items():
            value = node.reachability.value if node.reachability is not None else None
            if kind is None or value is None or value.checked_at is None:
                continue
            if value.state in (State.NAT, State.FIREWALLED):
                self._push(max(value.checked_at - self.timeline.origin, joined.get(node, 0.0)), "measured", node)
        while self._queue and self._queue[0][0] <= end:
            at, _, what, args = heapq.heappop(self._queue)
            getattr(self, "_on_" + what)(at, *args)
        return self._figures(end)

    def _push(self, at: float, what: str, *args: object) -> None:
        heapq.heappush(self._queue, (at, next(self._order), what, args))

    def _is_relay(self, node: OverlayNode, now: float) -> bool:
        return node in self.cores and node not in self.relay_left and self.relay_since[node] <= now

    def _on_arrive(self, now: float, node: OverlayNode) -> None:
        if self.timeline.kind[node] is None:
            self.cores[node] = RelayCore(node.identity, self.limits)
            self.relay_since[node] = now

    def _on_measured(self, now: float, node: OverlayNode) -> None:
        if node not in self.gone:
            router = self.sim.router(node)
            host = router.address if router is not None and router.address is not None else self.sim.address(node)[0]
            client = _Client(node, node.identity.public_key, source_of(host), f"{host}:{self.sim.address(node)[1]}",
                             now)
            self.clients[node] = client
            self.by_key[client.key] = client
            self._wake(client, now)

    def _on_leave(self, now: float, node: OverlayNode) -> None:
        self.gone.add(node)
        core = self.cores.get(node)
        if core is not None:
            self.relay_left[node] = now
            for reservation in list(core.reservations.values()):
                holder = self.by_key[reservation.node]
                if holder.left is None and holder.holding.get(node) is reservation:
                    # Noticed when the next ping goes unanswered for `timeout`.
                    start = holder.cadence[node]
                    ping = start + self.timers.ping_interval * math.ceil((now - start) / self.timers.ping_interval)
                    self.lost += 1
                    holder.lost.append(now)
                    self._push(ping + self.timers.timeout, "lost", holder, node, reservation)
        client = self.clients.get(node)
        if client is not None:
            client.left = now
            for relay, held in client.holding.items():
                if held is not None:
                    last = self._count_pings(client, relay, now)
                    # The relay drops it when the control connection has been idle for `control_idle`.
                    self._push(last + self.limits.control_idle, "release", relay, held)

    def _on_release(self, now: float, relay: OverlayNode, reservation: Reservation) -> None:
        self.cores[relay].release(reservation)

    # -- a NATed node's manager --------------------------------------------------------------------------

    def _wake(self, client: _Client, now: float) -> None:
        """Wake the manager's loop: at once, or when its probing round ends if one runs."""
        client.wake_generation += 1
        self._push(max(now, client.busy_until), "round", client, client.wake_generation)

    def _on_round(self, now: float, client: _Client, generation: int) -> None:
        if client.left is not None or generation != client.wake_generation:
            return
        timers = self.timers
        missing = timers.wanted - len(client.holding)
        ended = now
        if missing > 0:
            for relay, until in list(client.avoid.items()):
                if until <= now:
                    del client.avoid[relay]
            offered = [self.by_address.get((contact.host, contact.port)) for contact in client.node.table]
            self.random.shuffle(offered)
            fresh = [node for node in dict.fromkeys(offered)
                     if node is not None and node not in client.holding and node not in client.avoid][:MAX_PROBES]
            timed: list[tuple[float, int, OverlayNode]] = []
            for number, candidate in enumerate(fresh):
                if self._is_relay(candidate, now):
                    rtt = self.sim.round_trip(client.node, candidate)
                    timed.append((2 * rtt, number, candidate))
                    self._charge(client, candidate, PROBE_HANDSHAKE)
                    ended = max(ended, now + 2 * rtt)
                else:  # dead, or not listening: the probe times out
                    client.avoid[candidate] = now + timers.timeout + timers.retry_interval
                    ended = now + timers.timeout
            for _, _, relay in sorted(timed)[:missing]:
                client.holding[relay] = None
                self._push(ended + 3 * self.sim.round_trip(client.node, relay), "grant", client, relay)
        client.busy_until = ended
        if len(client.holding) < timers.wanted:
            # The manager looks again after `retry_interval`; with every reservation held or asked for, its
            # loop does nothing until one ends, which wakes it (`_end_hold`), so that round is not queued.
            client.wake_generation += 1
            self._push(ended + timers.retry_interval, "round", client, client.wake_generation)

    def _on_grant(self, now: float, client: _Client, relay: OverlayNode) -> None:
        if client.left is not None:
            return
        if not self._is_relay(relay, now):
            self._end_hold(client, relay, now, self.timers.retry_interval)
            return
        core = self.cores[relay]
        self._charge(client, relay, PROVEN_HANDSHAKE + RESERVE_REQUEST)
        try:
            reservation, voucher = core.reserve(client.key, client.source, now)
        except RelayRefused as refusal:
            self.refusals[refusal.code] += 1
            self._charge(client, relay, _message(error(refusal.code, refusal.message)))
            self._end_hold(client, relay, now, self.timers.backoff)
            return
        self._granted(client, relay, reservation, voucher, now)
        if client.lost:
            self.replacements.append(now - client.lost.pop(0))

    def _granted(self, client: _Client, relay: OverlayNode, reservation: Reservation, voucher: bytes,
                 now: float) -> None:
        grant = {"voucher": voucher, "expires": int(reservation.expires), "observed": client.observed}
        self._charge(client, relay, _message(ok(grant)))
        client.holding[relay] = reservation
        client.cadence[relay] = now
        self.peak = max(self.peak, len(self.cores[relay].reservations))
        self._push(reservation.expires - self.timers.renew_margin, "renew", client, relay, reservation)

    def _on_renew(self, now: float, client: _Client, relay: OverlayNode, reservation: Reservation) -> None:
        if client.left is not None or client.holding.get(relay) is not reservation or not self._is_relay(relay, now):
            return  # gone, replaced, or its relay's departure is being noticed
        self._count_pings(client, relay, now)
        self._charge(client, relay, RESERVE_REQUEST)
        try:
            renewed, voucher = self.cores[relay].reserve(client.key, client.source, now)
        except RelayRefused as refusal:
            self.refusals[refusal.code] += 1
            self._charge(client, relay, _message(error(refusal.code, refusal.message)))
            self._end_hold(client, relay, now, self.timers.backoff)
            return
        self._granted(client, relay, renewed, voucher, now)

    def _on_lost(self, now: float, client: _Client, relay: OverlayNode, reservation: Reservation) -> None:
        if client.left is None and client.holding.get(relay) is reservation:
            self._count_pings(client, relay, now)
            self._end_hold(client, relay, now, self.timers.retry_interval)

    def _end_hold(self, client: _Client, relay: OverlayNode, now: float, avoid: float) -> None:
        del client.holding[relay]
        client.cadence.pop(relay, None)
        client.avoid[relay] = now + avoid
        self._wake(client, now)

    def _count_pings(self, client: _Client, relay: OverlayNode, now: float) -> float:
        """Charge the pings of a hold since its cadence started, up to `now`; the time of the last one."""
        start = client.cadence[relay]
        pings = int((now - start) // self.timers.ping_interval)
        self._charge(client, relay, pings * PING_EXCHANGE)
        client.cadence[relay] = start + pings * self.timers.ping_interval
        return client.cadence[relay]

    def _charge(self, client: _Client, relay: OverlayNode, size: int) -> None:
        client.bytes += size
        self.relay_bytes[relay] += size

    # -- figures -----------------------------------------------------------------------------------------

    def _figures(self, end: float) -> RelayFigures:
        live_clients = [c for c in self.clients.values() if c.left is None]
        for client in live_clients:
            for relay, reservation in client.holding.items():
                if reservation is not None:
                    self._count_pings(client, relay, end)
        relays = [node for node in self.cores if node not in self.relay_left]
        loads = sorted(sum(1 for r in self.cores[node].reservations.values() if r.expires > end)
                       for node in relays) or [0]
        client_hours = sum(((c.left if c.left is not None else end) - c.since) / HOUR for c in self.clients.values())
        per_relay = sorted(self.relay_bytes[node] / max(1e-9, (self.relay_left.get(node, end) - since) / HOUR)
                           for node, since in self.relay_since.items() if node not in self.relay_left and end > since)
        relay_hours = sum((self.relay_left.get(node, end) - since) / HOUR for node, since in self.relay_since.items())
        held = [sum(1 for relay, r in c.holding.items() if r is not None and self._is_relay(relay, end)
                    and self.cores[relay].holds(r, end)) for c in live_clients]
        times = self.replacements or [0.0]
        return RelayFigures(
            hours=end / HOUR,
            relays=len(relays),
            nated=len(live_clients),
            reservations_mean=statistics.fmean(loads),
            reservations_p50=float(statistics.median(loads)),
            reservations_p99=_percentile(loads, 0.99),
            reservations_max=loads[-1],
            reservations_peak=self.peak,
            refusals=dict(self.refusals),
            nated_bytes_per_hour=sum(c.bytes for c in self.clients.values()) / max(1e-9, client_hours),
            relay_bytes_per_hour=sum(self.relay_bytes.values()) / max(1e-9, relay_hours),
            relay_bytes_per_hour_p99=_percentile(per_relay or [0.0], 0.99),
            lost=self.lost,
            replaced=len(self.replacements),
            replace_median=statistics.median(times),
            replace_p95=_percentile(times, 0.95),
            unreplaced=sum(len(c.lost) for c in live_clients),
            reachable=sum(1 for count in held if count >= 1) / max(1, len(held)),
            both_held=sum(1 for count in held if count >= self.timers.wanted) / max(1, len(held)),
        )


def _percentile(values: list[float] | list[int], fraction: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))])
