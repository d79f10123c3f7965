"""A simulated network for `OverlayNode`s: virtual time, per-link latency, loss, partitions and churn.

The engine is sans-IO, so the simulator runs exactly the protocol code the UDP transport runs; only the
delivery of datagrams is fake. Everything happens over one heap of timed events (datagram deliveries and node
wake-ups), handled by one synchronous core, and one of two drivers moves time forward:

- `async with sim.running():` — ONE trio task, not a task per node. Under
  `trio.testing.MockClock(autojump_threshold=0)` the clock jumps straight to the next event, so thousands of
  nodes run in seconds of wall time and the cost is the protocol's own work (signing and checking every
  datagram). Nodes act through their transports; the simulations, benchmarks and async tests use this.
- `sim.start_stepping()` — the caller drives, with no trio and no event loop: `step()` handles the next event,
  `settle()` runs until nothing is in flight and no node waits for a deadline, `advance(seconds)` moves the
  manual clock. The caller calls an engine's methods directly, then `flush(node)` sends what it queued, and
  `inject(source, destination, data)` puts forged or replayed bytes on the wire. Why: a protocol test can
  assert on the engines between any two datagrams, or run inside a hypothesis example. With a fixed latency
  (low == high) datagrams arrive in the order they were sent.

Determinism: with the same seed, the same nodes (same keys, engines built with seeded `randomness`) attached
in the same order and the same calls, a run sends the same datagrams, byte for byte, at the same virtual
times. Link latencies derive from (seed, link), loss draws come from one seeded generator in event order, and
ties in the heap break by insertion order. An `observer` sees every datagram sent, e.g. to hash the trace.

A node acts through `sim.transport(node)`, a `SimTransport`: the same `OverlayTransport` interface as
`UdpOverlay`, so the join, publishing and reading run here unchanged.

Addresses are fake but well formed: node i gets 127.a.b.1 (one /24 per node, so the routing table's
per-subnet cap never hides a simulated node) and nothing ever touches a socket.

Home routers (`add_router`, then `attach(node, behind=router)`): a NAT (cone or symmetric) gets a public
address of its own and its nodes private ones (172.16.0.0/12, then 192.168.0.0/16), seen outside as the
router's address and the port of a mapping the router made when they sent; a firewall's nodes keep public
addresses. Either way a node behind a router gets only the datagrams its router lets in
(`seattle.overlay.simnat`: mappings, filters, timeouts), and a private address is reachable only from its own
LAN. Private addresses are unique across the whole simulation (real homes all reuse 192.168.1.x): a datagram
to one from outside its LAN is unreachable, as it would be. Without routers nothing of this runs, and a run is
the same as before they existed.

Dial-back probes (`OverlayNode.take_probes`) leave a node from its port + PROBE_PORT_OFFSET, a flow of its
own through any router, as they leave a real node from a socket of their own.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import math
import random
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio
import trio.testing

from seattle.natkind import NatKind
from seattle.overlay.lookup import Lookup
from seattle.overlay.messages import Message
from seattle.overlay.nodeid import ID_BITS, Contact, NodeId
from seattle.overlay.protocol import Address, Datagram, OverlayNode
from seattle.overlay.simnat import DEFAULT_TIMEOUT as NAT_TIMEOUT
from seattle.overlay.simnat import Router
from seattle.overlay.transport import EngineTransport

#: Records carry wall-clock times, so virtual time starts at a plausible wall-clock moment.
EPOCH = 1_800_000_000.0
PORT = 4000
#: A node's dial-back probes leave from this many ports above its own (`OverlayNode.take_probes`).
PROBE_PORT_OFFSET = 1
#: How long a helper waits for an answer or a lookup before giving up (virtual seconds).
DEFAULT_TIMEOUT = 60.0
#: Each node gets a /24 of its own (the routing table caps contacts per /24): 127.a.b.1, then 10.a.b.1.
_FIRST_OCTETS = (127, 10)
_PER_OCTET = 254 * 256
_MAX_NODES = len(_FIRST_OCTETS) * _PER_OCTET
#: Nodes behind a NAT get private addresses, 254 per /24: 172.16.0.0/12's 4,096 /24s, then 192.168.0.0/16's.
_PRIVATE_BLOCKS = ((172, 16, 4096), (192, 168, 256))
_MAX_PRIVATE = sum(blocks for _, _, blocks in _PRIVATE_BLOCKS) * 254

_DELIVER = 0
_WAKE = 1


@dataclass
class Traffic:
    """What happened to every datagram sent: `sent` = `delivered` + `lost` + `partitioned` + `unreachable` +
    `filtered` once nothing is in flight. `lost` is random loss; `unreachable` is a dead or unknown
    destination (or a private address from outside its LAN); `filtered` is dropped by a home router (no live
    mapping, or a sender the router does not let in; or, going out, no free external port)."""

    sent: int = 0
    delivered: int = 0
    lost: int = 0
    partitioned: int = 0
    unreachable: int = 0
    filtered: int = 0


#: Called with (send time, source, destination, bytes) for every datagram sent, before loss is drawn. The
#: source is the one on the wire: a NATed sender's router address and mapped port.
DatagramObserver = Callable[[float, Address, Address, bytes], None]


class SimNetwork:
    """Attach nodes, then either run the network inside `async with sim.running():` and act for a node
    through its transport (`sim.transport(node)`), or `start_stepping()` and drive it by hand."""

    def __init__(
        self,
        seed: int,
        latency: tuple[float, float] = (0.01, 0.05),
        loss: float = 0.0,
        observer: DatagramObserver | None = None,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"simulation seed must be an int, got {type(seed).__name__}")
        if not (
            isinstance(latency, tuple)
            and len(latency) == 2
            and all(isinstance(x, int | float) and math.isfinite(x) for x in latency)
            and 0 <= latency[0] <= latency[1]
        ):
            raise ValueError(
                f"latency must be a (low, high) pair of seconds with 0 <= low <= high, got {latency!r}"
            )
        if not isinstance(loss, int | float) or not 0 <= loss < 1:
            raise ValueError(f"loss must be a probability in [0, 1), got {loss!r}")
        self.seed = seed
        self.latency = (float(latency[0]), float(latency[1]))
        self.loss = float(loss)
        self.traffic = Traffic()
        #: Sees every datagram sent (e.g. to hash a run's byte trace); None when nobody watches.
        self.observer = observer
        self._random = random.Random(seed)
        self._nodes: dict[Address, OverlayNode] = {}
        self._addresses: dict[OverlayNode, Address] = {}
        self._dead: set[Address] = set()
        self._cuts: list[tuple[frozenset[Address], frozenset[Address]]] = []
        # (time, sequence, what, payload): sequence breaks ties in insertion order, for determinism.
        self._heap: list[tuple[float, int, int, Any]] = []
        self._sequence = 0
        self._wake_at: dict[Address, float] = {}
        # Per address, the helpers waiting for a condition on that node: checked here after the node handled
        # something, so a waiter is woken once, when its condition holds, not after every datagram.
        self._watchers: dict[Address, list[tuple[Callable[[], bool], trio.Event]]] = {}
        self._changed = trio.Event()
        #: Under `running()`: virtual wall-clock time minus trio's clock. None otherwise.
        self._offset: float | None = None
        #: After `start_stepping()`: the manual clock, moved only by the stepping methods. None otherwise.
        self._clock: float | None = None
        #: How many simulated addresses `attach` has handed out (a test may place a node at its own address).
        self._numbered = 0
        #: Home routers: the NATs by public IP, and the router each node behind one sits behind.
        self._nat_ips: dict[str, Router] = {}
        self._behind: dict[Address, Router] = {}
        self._routers: set[Router] = set()
        self._private_numbered = 0

    # --- topology ---------------------------------------------------------------------------------------

    def attach(self, node: OverlayNode, address: Address | None = None, behind: Router | None = None) -> Address:
        """Put `node` on the network at the next free simulated address, or at `address` (for a test of how
        addresses are spelled, e.g. IPv6); returns the address. `behind` a router from `add_router`, the
        node sits on that router's LAN: behind a NAT at the next private address, behind a firewall at a
        public one."""
        if not isinstance(node, OverlayNode):
            raise TypeError(f"only an OverlayNode can be attached, not {type(node).__name__}")
        if node in self._addresses:
            raise ValueError(f"node {node.node_id} is already attached at {self._addresses[node]}")
        if behind is not None and (not isinstance(behind, Router) or behind not in self._routers):
            raise ValueError(f"{behind!r} is not a router of this network (make one with `add_router`)")
        if address is None:
            address = self._next_private_address() if behind is not None and behind.kind.translates else (
                self._next_address())
        if address in self._nodes:
            raise ValueError(f"address {address} is already taken by node {self._nodes[address].node_id}")
        if address[0] in self._nat_ips:
            raise ValueError(f"address {address[0]} is a router's")
        self._nodes[address] = node
        self._addresses[node] = address
        # A simulated host has one interface: it sends from its own address toward everyone.
        own: str = address[0]
        node.local_ip = lambda _peer: own
        if behind is not None:
            self._behind[address] = behind
        self._reschedule(address)  # a node with work from the start (a reachability check) gets its wake-up
        return address

    def add_router(self, kind: NatKind, timeout: float = NAT_TIMEOUT) -> Router:
        """A home router of `kind` (`seattle.natkind.NatKind`; behaviours in `seattle.overlay.simnat`) whose
        mappings and permissions last `timeout` seconds after the last datagram out; a NAT gets the next
        public address. Put nodes behind it with `attach(node, behind=router)`."""
        router = Router(kind, None, timeout, random.Random(f"{self.seed}/router{len(self._routers)}"))
        if kind.translates:
            address = self._next_address()
            while address in self._nodes:
                address = self._next_address()
            router.address = address[0]
            self._nat_ips[router.address] = router
        self._routers.add(router)
        return router

    def router(self, node: OverlayNode) -> Router | None:
        """The router `node` sits behind, or None when it is on the internet itself."""
        return self._behind.get(self._address_of(node))

    def _next_private_address(self) -> Address:
        number = self._private_numbered
        if number >= _MAX_PRIVATE:
            raise ValueError(f"the simulator has private addresses for at most {_MAX_PRIVATE} nodes behind NATs")
        self._private_numbered += 1
        block, host = divmod(number, 254)
        for first, second, blocks in _PRIVATE_BLOCKS:
            if block < blocks:
                return (f"{first}.{second + block // 256}.{block % 256}.{host + 1}", PORT)
            block -= blocks
        raise AssertionError("unreachable: number < _MAX_PRIVATE")

    def _next_address(self) -> Address:
        number = self._numbered
        if number >= _MAX_NODES:
            raise ValueError(f"the simulator has addresses for at most {_MAX_NODES} nodes")
        self._numbered += 1
        first, number = _FIRST_OCTETS[number // _PER_OCTET], number % _PER_OCTET
        return (f"{first}.{1 + number // 256}.{number % 256}.1", PORT)

    @property
    def nodes(self) -> list[OverlayNode]:
        return list(self._nodes.values())

    def address(self, node: OverlayNode) -> Address:
        return self._address_of(node)

    def contact(self, node: OverlayNode) -> Contact:
        return Contact(node.node_id, *self._address_of(node))

    def transport(self, node: OverlayNode) -> SimTransport:
        """The attached `node`'s `OverlayTransport`: how it sends requests and lookups on this network."""
        return SimTransport(self, node)

    def alive(self, node: OverlayNode) -> bool:
        return self._address_of(node) not in self._dead

    def kill(self, node: OverlayNode) -> None:
        """Churn: the node stops receiving and its timers stop; its state is kept for `revive`."""
        self._dead.add(self._address_of(node))

    def revive(self, node: OverlayNode) -> None:
        """Bring a killed node back at the same address; its overdue requests time out on its next wake."""
        address = self._address_of(node)
        self._dead.discard(address)
        if self._offset is not None or self._clock is not None:
            self._flush(address)

    def partition(self, group_a: Iterable[OverlayNode], group_b: Iterable[OverlayNode]) -> None:
        """Drop every datagram between a node of `group_a` and one of `group_b`, both ways, until `heal`."""
        side_a = frozenset(self._address_of(node) for node in group_a)
        side_b = frozenset(self._address_of(node) for node in group_b)
        if side_a & side_b:
            raise ValueError("a node cannot be on both sides of a partition")
        self._cuts.append((side_a, side_b))

    def heal(self) -> None:
        """Remove every partition."""
        self._cuts.clear()

    def seed_tables(self, neighbours: int = 16, sampled: int = 48, now: float = EPOCH) -> None:
        """Fill every attached node's routing table as if the overlay had been up for a while, sending
        nothing: its `neighbours` nearest ids on each side in id order, plus about `sampled` others spread
        evenly over the distance ranges of its buckets (a few from each range that holds any node).

        Nodes behind a router get tables too, but enter nobody's: no one could reach them unsolicited.

        Why: a real join costs dozens of signed datagrams, so building a 2,000-node overlay by joins would
        spend the whole test budget before any lookup or churn. The simulator knows every node's true id and
        address, so nothing is trusted here that a join's proof-of-key exchange would have checked. Why
        spread by distance: a Kademlia table knows some node in every non-empty range [2**i, 2**(i+1)) of
        distances from itself, and lookups rely on it; uniform random picks leave the middle ranges empty (at
        10,000 nodes a range holding 40 nodes gets one of 48 uniform picks one time in five), and a lookup
        whose every hop lacks the range the target lies in stalls short of it.
        """
        ranked = sorted(self._nodes.items(), key=lambda item: item[1].node_id)
        listed = [(address, node) for address, node in ranked if address not in self._behind]
        contacts = [Contact(node.node_id, *address) for address, node in listed]
        values = [contact.node_id.value for contact in contacts]
        for address, node in ranked:
            own = node.node_id.value
            position = bisect.bisect_left(values, own)
            near = contacts[max(0, position - neighbours) : position + neighbours + 1]
            spread = self._spread(values, own, 0 if address in self._behind else 1, sampled)
            for contact in near + [contacts[index] for index in spread]:
                if contact.node_id != node.node_id:
                    node.table.observe(contact, now)

    def _spread(self, values: list[int], own: int, listed: int, sampled: int) -> list[int]:
        """Indexes into the sorted `values` of about `sampled` ids spread over the distance ranges from
        `own` (`listed`: 1 when `own` is among `values`, else 0): the ids differing from it first at bit i
        form one contiguous run of `values`."""
        ranges = []
        for bit in range(ID_BITS - 1, -1, -1):
            low = ((own >> bit) ^ 1) << bit
            start = bisect.bisect_left(values, low)
            end = bisect.bisect_left(values, low + (1 << bit))
            if end > start:
                ranges.append((start, end))
            own_low = (own >> bit) << bit
            if bisect.bisect_left(values, own_low + (1 << bit)) - bisect.bisect_left(values, own_low) <= listed:
                break  # only this node is left in its own half: every nearer range is empty
        if not ranges:
            return []
        each = max(1, -(-sampled // len(ranges)))
        picked = []
        for start, end in ranges:
            picked += self._random.sample(range(start, end), min(each, end - start))
        return picked

    # --- running under trio ------------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[SimNetwork]:
        """Run the network's single task for the duration of the block."""
        if self._offset is not None:
            raise RuntimeError("this simulated network is already running")
        if self._clock is not None:
            raise RuntimeError("this simulated network is driven by hand (`start_stepping`), not by a trio task")
        self._offset = offset = EPOCH - trio.current_time()
        async with trio.open_nursery() as nursery:
            # The offset is passed, not read back: a block that ends before the task first runs resets it.
            nursery.start_soon(self._run, offset)
            try:
                yield self
            finally:
                nursery.cancel_scope.cancel()
                self._offset = None

    def now(self) -> float:
        """The engines' clock: virtual wall-clock seconds (EPOCH when the network started)."""
        if self._offset is not None:
            return trio.current_time() + self._offset
        if self._clock is not None:
            return self._clock
        raise RuntimeError(
            "the simulated network is not running (use `async with sim.running():` or `sim.start_stepping()`)"
        )

    async def _run(self, offset: float) -> None:
        """Handle each event when its moment comes.

        Under a MockClock that autojumps at once, waiting for the next event does this: once every task is
        blocked, the clock jumps to the earliest deadline, ours. That round trip through trio's scheduler
        costs more than handling a datagram, so when every other task is blocked (`wait_all_tasks_blocked`
        said so, and we have woken no one since) and no other deadline comes first, the loop makes the same
        jump itself. The order of events, and so the run, is the same either way.
        """
        clock = trio.lowlevel.current_clock()
        autojump_clock = clock if isinstance(clock, trio.testing.MockClock) and clock.autojump_threshold == 0 else None
        alone = False  # True while every other task is known to be blocked
        while True:
            now = trio.current_time() + offset
            while self._heap and self._heap[0][0] <= now:
                _, _, what, payload = heapq.heappop(self._heap)
                self._handle(what, payload, now)
            if autojump_clock is not None and self._heap:
                if not alone:
                    await trio.testing.wait_all_tasks_blocked()
                    alone = True
                    continue  # the others may have queued something due now
                statistics = trio.lowlevel.current_statistics()
                gap = self._heap[0][0] - offset - trio.current_time()
                if statistics.tasks_runnable == 0 and 0 < gap < statistics.seconds_to_next_deadline:
                    autojump_clock.jump(gap)
                    continue
            with trio.move_on_at(self._heap[0][0] - offset if self._heap else math.inf):
                await self._changed.wait()
            self._changed = trio.Event()
            alone = False

    # --- driving it by hand ------------------------------------------------------------------------------

    def start_stepping(self, at: float = EPOCH) -> None:
        """From now on the caller drives the network (`step`, `settle`, `advance`) on a manual clock that
        starts at `at` and moves only when they move it: no trio, no event loop."""
        if self._offset is not None:
            raise RuntimeError("this simulated network is running under trio; it cannot be stepped by hand")
        if self._clock is not None:
            raise RuntimeError("this simulated network is already driven by hand")
        self._clock = at

    def step(self) -> bool:
        """Handle the next event (a delivery or a wake-up), moving the clock to its moment; False when
        nothing is queued."""
        clock = self._manual_clock()
        if not self._heap:
            return False
        at, _, what, payload = heapq.heappop(self._heap)
        self._clock = now = max(clock, at)
        self._handle(what, payload, now)
        return True

    def settle(self, max_steps: int = 100_000) -> None:
        """Step until nothing is in flight and no live node waits for a deadline. Bounded, so a protocol
        that never goes quiet fails (RuntimeError) instead of hanging."""
        for _ in range(max_steps):
            if not self.step():
                return
        raise RuntimeError(f"the simulated network did not settle within {max_steps} steps")

    def advance(self, seconds: float) -> None:
        """Move the clock `seconds` ahead, handling in order every event due by then."""
        if not seconds >= 0:
            raise ValueError(f"the clock only moves forward, not by {seconds!r} s")
        until = self._manual_clock() + seconds
        while self._heap and self._heap[0][0] <= until:
            self.step()
        self._clock = until

    def flush(self, node: OverlayNode) -> None:
        """Send what `node` queued outside a delivery (after a test called one of its methods directly, e.g.
        `node.ping`) and schedule its next wake-up."""
        self._flush(self._address_of(node))

    def inject(self, source: Address, destination: Address, data: bytes) -> None:
        """Put raw bytes on the wire as if `source` (any address: a forger's, a replayer's) sent them; the
        observer sees them and they meet latency, loss, partitions and routers like any datagram (from a
        node's address behind a router, they go out through it)."""
        self._send(source, [(data, destination)], self.now())

    def _manual_clock(self) -> float:
        if self._clock is None:
            raise RuntimeError("the simulated network is not driven by hand (call `sim.start_stepping()` first)")
        return self._clock

    # --- the synchronous core: what one event does -------------------------------------------------------

    def _handle(self, what: int, payload: Any, now: float) -> None:
        if what == _DELIVER:
            origin, source, destination, data = payload
            self._deliver(origin, source, destination, data, now)
        else:
            self._wake(payload, now)

    def _deliver(self, origin: Address, source: Address, destination: Address, data: bytes, now: float) -> None:
        """`origin` sent `data` to `destination`; `source` is where it comes from on the wire (a NAT's
        mapping when `origin` is behind one)."""
        if self._routers:
            inside = self._inward(origin, source, destination, now)
            if inside is None:
                return
            destination = inside
        if destination in self._dead or destination not in self._nodes:
            self.traffic.unreachable += 1
            return
        if self._blocked(origin, destination):
            self.traffic.partitioned += 1
            return
        self.traffic.delivered += 1
        replies = self._nodes[destination].datagram_received(data, source, now)
        self._send(destination, replies, now)
        self._send_probes(destination)
        self._reschedule(destination)

    def _wake(self, address: Address, now: float) -> None:
        if self._wake_at.get(address, math.inf) > now:
            return  # a stale entry: this node's wake-up moved
        del self._wake_at[address]
        if address in self._dead:
            return  # a dead node's timers stop; `revive` reschedules them
        self._send(address, self._nodes[address].poll(now), now)
        self._send_probes(address)
        self._reschedule(address)

    def _inward(self, origin: Address, source: Address, destination: Address, now: float) -> Address | None:
        """Where a datagram to `destination` ends up past the routers: a NAT's public address leads to the
        mapping's node, if the NAT lets `source` in; a firewalled node is reached if its firewall lets
        `source` in; a private address only from its own LAN. None (counted) when it gets nowhere."""
        nat = self._nat_ips.get(destination[0])
        if nat is not None:
            inside = nat.inbound(destination, source, now)
            if inside is None:
                self.traffic.filtered += 1
            return inside
        router = self._behind.get(destination)
        if router is None or self._behind.get(origin) is router:
            return destination
        if router.kind.translates:
            self.traffic.unreachable += 1
            return None
        if router.inbound(destination, source, now) is None:
            self.traffic.filtered += 1
            return None
        return destination

    def _send_probes(self, address: Address) -> None:
        """Send a node's dial-back probes from its other port, PROBE_PORT_OFFSET above its own: a socket of
        its own, so a router sees a flow it has not seen."""
        probes = self._nodes[address].take_probes()
        if probes:
            self._send(address, probes, self.now(), port=address[1] + PROBE_PORT_OFFSET)

    def _send(self, source: Address, datagrams: list[Datagram], now: float, port: int | None = None) -> None:
        """Send `datagrams` from the node at `source`, from its `port` when given (else its own)."""
        observer = self.observer
        router = self._behind.get(source) if self._behind else None
        endpoint = source if port is None else (source[0], port)
        for data, destination in datagrams:
            self.traffic.sent += 1
            wire = endpoint
            if router is not None and self._behind.get(destination) is not router:  # leaving its LAN
                mapped = router.outbound(endpoint, destination, now)
                if mapped is None:
                    self.traffic.filtered += 1
                    continue
                wire = mapped
            if observer is not None:
                observer(now, wire, destination, data)
            if self.loss and self._random.random() < self.loss:
                self.traffic.lost += 1
                continue
            self._push(now + self._link_latency(source, destination), _DELIVER, (source, wire, destination, data))

    def _reschedule(self, address: Address) -> None:
        """Queue the node's next wake-up if it is earlier than the one queued; wake waiters whose condition
        now holds."""
        deadline = self._nodes[address].next_deadline()
        if deadline is not None and deadline < self._wake_at.get(address, math.inf):
            self._wake_at[address] = deadline
            self._push(deadline, _WAKE, address)
        watchers = self._watchers.get(address)
        if watchers:
            for watcher in [watcher for watcher in watchers if watcher[0]()]:
                watchers.remove(watcher)
                watcher[1].set()

    def _push(self, at: float, what: int, payload: Any) -> None:
        self._sequence += 1
        heapq.heappush(self._heap, (at, self._sequence, what, payload))
        self._changed.set()

    def _flush(self, address: Address) -> None:
        """Send what a node queued outside a delivery (a helper's request), then schedule its wake-up."""
        self._send(address, self._nodes[address].poll(self.now()), self.now())
        self._send_probes(address)
        self._reschedule(address)

    def _link_latency(self, source: Address, destination: Address) -> float:
        """The link's fixed one-way latency, a hash of (seed, source, destination) spread over `latency`:
        the same every time without a table of links (which at 100,000 nodes would hold millions), and
        cheaper than seeding a random generator per link."""
        digest = hashlib.blake2b(f"{self.seed}|{source}|{destination}".encode(), digest_size=8).digest()
        low, high = self.latency
        return low + (high - low) * (int.from_bytes(digest, "big") / 2**64)

    def round_trip(self, a: OverlayNode, b: OverlayNode) -> float:
        """The round trip between two nodes' addresses (both links' latencies): what models of other traffic
        between them (the relays' TCP in `simulations/relays.py`) take as their RTT."""
        one, other = self.address(a), self.address(b)
        return self._link_latency(one, other) + self._link_latency(other, one)

    def _blocked(self, source: Address, destination: Address) -> bool:
        return any(
            (source in a and destination in b) or (source in b and destination in a) for a, b in self._cuts
        )

    def _address_of(self, node: OverlayNode) -> Address:
        address = self._addresses.get(node)
        if address is None:
            raise ValueError(f"node {getattr(node, 'node_id', node)} is not attached to this network")
        return address

    async def _until(self, address: Address, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Sleep until `ready()`, rechecking whenever the node handled something; TimeoutError after
        `timeout` virtual seconds."""
        with trio.move_on_after(timeout):
            if ready():
                return
            watcher = (ready, trio.Event())
            watchers = self._watchers.setdefault(address, [])
            watchers.append(watcher)
            try:
                await watcher[1].wait()
            finally:
                if watcher in watchers:
                    watchers.remove(watcher)
            return
        raise TimeoutError(f"{what} did not finish within {timeout} s")


class SimTransport(EngineTransport):
    """One attached node's view of the simulated network: the `OverlayTransport` its users await on, the
    same interface (and helpers) as `UdpOverlay`'s. Get it from `SimNetwork.transport(node)`."""

    default_timeout = DEFAULT_TIMEOUT

    def __init__(self, network: SimNetwork, node: OverlayNode) -> None:
        super().__init__(node)
        self.network = network
        self._address = network.address(node)

    @property
    def address(self) -> Address:
        return self._address

    def now(self) -> float:
        return self.network.now()

    def _check_running(self) -> None:
        if not self.network.alive(self._node):
            raise RuntimeError(f"node {self._node.node_id} at {self._address} is killed; revive it first")

    async def _queued(self) -> None:
        self.network._flush(self._address)

    async def _until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        await self.network._until(self._address, ready, timeout, what)

    async def traced_lookup(
        self, target: NodeId, timeout: float | None = None, answers: Sequence[Message] = ()
    ) -> Lookup:
        """`lookup`, returning the finished `Lookup` itself, whose requests and hops simulations measure."""
        self._check_running()
        lookup_id = self._node.start_lookup(target, self.now(), answers)
        lookup = self._node.running_lookup(lookup_id)
        await self._finish_lookup(lookup_id, timeout)
        self._node.forget_lookup(lookup_id)
        return lookup
