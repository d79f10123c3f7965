"""The node manager's overlay service: everything a node does on the overlay, in one place.

    async with OverlayService(identity, host, port, node_dir, bootstrap, state, addresses) as service:
        nursery.start_soon(service.run)   # join, rejoin when alone, save the table, advertise

A full `OverlayNode` under the node's own key, on UDP at the same host and port number as the TCP API, so one
address serves both. It joins (`seattle.overlay.join`) through the bootstrap nodes and through the contacts
saved in the node directory's routing file (so a restarted node rejoins without its bootstrap node; none of
either: it starts a new overlay), and keeps trying every REJOIN_INTERVAL while it knows no peer. It runs the advertiser
(`seattle.advertise.advertiser`) over the node's vessels. The routing table is saved (mode 0600, atomic)
every SAVE_INTERVAL and when the service stops; a damaged file is logged and ignored.

The engine measures the node's reachability (`seattle.overlay.reachability`, TCP included: the node manager's
port is checked too); the service logs every change of state or observed address and offers the current
value (`reachability`, and `reachability_status()` for the control socket's status).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType

import trio

from seattle.addresses import split_ip_port
from seattle.advertise.advertiser import AdvertiserState, run_advertiser, subjects_of
from seattle.advertise.dht import publish
from seattle.keys import Identity, PublicKey
from seattle.nodemgr.nodedir import NodeDir
from seattle.nodemgr.pool import NodePool
from seattle.nodemgr.vessels import NodeState
from seattle.overlay.addresses import bound_scope
from seattle.overlay.join import join
from seattle.overlay.lookup import RttEstimator
from seattle.overlay.nodeid import NodeId
from seattle.overlay.protocol import Address, OverlayNode
from seattle.overlay.reachability import Reachability, Tracker
from seattle.overlay.records import RecordRejected
from seattle.overlay.routing import RoutingTable
from seattle.overlay.store import RecordStore
from seattle.overlay.udp import UdpOverlay

log = logging.getLogger(__name__)

SAVE_INTERVAL = 180.0
#: While the node knows no peer (its bootstrap nodes were down), it tries to join again this often.
REJOIN_INTERVAL = 30.0
#: How long one overlay request or lookup of the node may take.
OVERLAY_TIMEOUT = 5.0
#: How often the service looks for a change of reachability to log.
REACHABILITY_WATCH = 1.0


class OverlayService:
    """See the module docstring. `addresses()` gives where researchers reach the node (what it advertises)."""

    def __init__(self, identity: Identity, host: str, port: int, node_dir: NodeDir,
                 bootstrap: Sequence[Address], state: NodeState, addresses: Callable[[], list[str]],
                 pool: NodePool | None = None,
                 relays: Callable[[], list[tuple[str, bytes]]] | None = None) -> None:
        self.identity = identity
        self.host = host
        self.port = port
        self.node_dir = node_dir
        self.routing_path = node_dir.routing_path
        self.bootstrap = tuple(bootstrap)
        self.state = state
        self.addresses = addresses
        #: The node's relays with their vouchers, advertised with its records (None: it needs no relay).
        self.relays = relays
        #: The node's pool: its subjects (offer, slots, credit) are advertised beside the vessels' keys.
        self.pool = pool
        #: The advertiser's record set.
        self.advertiser = AdvertiserState(identity)
        self._transport: UdpOverlay | None = None
        self._stack = AsyncExitStack()
        self._subjects: tuple[int, dict[PublicKey, PublicKey]] | None = None

    @property
    def reachability(self) -> Reachability:
        """What the overlay has measured of this node's reachability (`seattle.overlay.reachability`)."""
        tracker = self.transport.node.reachability
        assert tracker is not None, "the service's engine always measures"
        return tracker.value

    def reachability_status(self) -> dict[str, object]:
        """The reachability as the control socket's status shows it (JSON types; times in epoch seconds)."""
        value = self.reachability
        return {"state": value.state.value, "observed": [f"{host}:{port}" for host, port in value.observed],
                "observed_ip": value.observed_ip, "udp": value.udp, "tcp": value.tcp,
                "checked_at": value.checked_at, "next_check": value.next_check}

    @property
    def transport(self) -> UdpOverlay:
        """The running UDP overlay; RuntimeError outside the `async with`."""
        if self._transport is None:
            raise RuntimeError("the overlay service is not running (use `async with OverlayService(...)`)")
        return self._transport

    async def __aenter__(self) -> OverlayService:
        self._transport = await self._stack.enter_async_context(UdpOverlay(self._overlay_node(), self.host,
                                                                           self.port))
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        try:
            self._save_logged()
        finally:
            await self._stack.aclose()
            self._transport = None

    async def run(self) -> None:
        """Join, then advertise and save the routing table until cancelled."""
        transport = self.transport
        if not self.addresses():
            log.warning("overlay: no direct address to advertise (listening on every interface with no local IP "
                        "given, --ip, or behind a NAT); researchers find this node's vessels only through relays")
        # Bound to a wildcard, the engine's scope starts public: the addresses it is reached at (--ip) say
        # which networks it is on, so a private testbed reaches its peers even with no bootstrap node given.
        for address in self.addresses():
            transport.node.widen_scope(bound_scope(split_ip_port(address)[0]))
        await self._join()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._keep_joined)
            nursery.start_soon(self._save_periodically)
            nursery.start_soon(self._log_reachability)
            nursery.start_soon(functools.partial(run_advertiser, self.advertiser, transport,
                                                 self._read_for_advertiser, time.time,
                                                 keep_locally=self._keep_locally, relays=self.relays or tuple))

    async def withdraw(self, subjects: Sequence[PublicKey], timeout: float) -> int:
        """Publish tombstones for `subjects` now, within `timeout` in all (a stopping node: best effort, never
        holding the stop up for long); returns how many were stored by at least one holder. Call it once the
        advertiser has stopped, so it cannot file them again."""
        publications = self.advertiser.withdraw_now(subjects, time.time())
        delivered = 0

        async def one(raw: bytes) -> None:
            nonlocal delivered
            try:
                delivered += await publish(self.transport, raw, timeout=timeout) > 0
            except RecordRejected as exc:  # only if the clock jumped between signing and sending
                log.warning("tombstone not published: %s", exc)

        with trio.move_on_after(timeout):
            async with trio.open_nursery() as nursery:
                for publication in publications:
                    self._keep_locally(publication.raw)
                    nursery.start_soon(one, publication.raw)
        if publications:
            log.info("withdrew %d of %d pool record(s) on stop", delivered, len(publications))
        return delivered

    def save_routing(self) -> None:
        """Write the routing table to the node directory (`NodeDir.write_routing`: mode 0600, atomic)."""
        self.node_dir.write_routing(json.dumps(self.transport.node.table.to_dict()).encode())

    def _overlay_node(self) -> OverlayNode:
        own_id = NodeId.from_public_key(self.identity.public_key)
        store: RecordStore | None = None
        rtt: RttEstimator | None = None
        fresh = RoutingTable(own_id)
        if ipaddress.ip_address(self.host).is_loopback:
            # Loopback overlays (tests, one-machine demos) put every node in one /24 and one source address:
            # keep the per-subnet cap from hiding all but two peers per bucket, let the store take every
            # neighbour's writes (they all come from this one address) and give replies a 1 s floor so a busy
            # machine's scheduling stall is not taken for a dead peer.
            fresh.max_per_subnet = fresh.k
            store = RecordStore(max_writes_per_source=10_000)
            rtt = RttEstimator(initial_timeout=1.0, min_timeout=1.0)
        table = self._load_routing(fresh)
        # A CSPRNG: transaction ids, write-token secrets and dial-back nonces must be unguessable to peers.
        return OverlayNode(self.identity, randomness=random.SystemRandom(), table=table, store=store, rtt=rtt,
                           reachability=Tracker(tcp=True))

    def _load_routing(self, fresh: RoutingTable) -> RoutingTable:
        """The saved table if the routing file is there and sound, else `fresh`; a damaged file only logs."""
        try:
            data = self.node_dir.read_routing()
        except OSError as exc:
            log.warning("%s cannot be read (%s); joining without it", self.routing_path, exc)
            return fresh
        if data is None:
            return fresh
        try:
            table = RoutingTable.from_dict(json.loads(data))
            if table.own_id != fresh.own_id:
                raise ValueError("it belongs to another node key")
        except (ValueError, TypeError, RecursionError) as exc:
            log.warning("%s is damaged (%s); ignoring it and joining through the bootstrap nodes",
                        self.routing_path, exc)
            return fresh
        log.info("loaded %d overlay contacts from %s", len(table), self.routing_path)
        return table

    async def _join(self) -> None:
        """Ask the bootstrap nodes for our neighbours, then look up our own id from their answers and any
        saved contacts (`seattle.overlay.join`)."""
        transport = self.transport
        joined = await join(transport, self.bootstrap, OVERLAY_TIMEOUT, lookup_timeout=OVERLAY_TIMEOUT * 4)
        for (host, port), why in joined.silent:
            log.warning("overlay bootstrap node %s:%s did not answer: %s", host, port, why)
        if len(transport.node.table) == 0:
            log.info("overlay: udp %s:%d, no peers yet (%s)", *transport.address,
                     "bootstrap nodes silent" if self.bootstrap else "started a new overlay")
            return
        if joined.lookup_timed_out:
            log.warning("overlay: the join lookup did not finish in time")
        log.info("overlay: udp %s:%d, joined, %d contacts", *transport.address, len(transport.node.table))

    async def _keep_joined(self) -> None:
        """A node whose bootstrap nodes were down at start keeps trying, so it is not alone for ever."""
        while True:
            await trio.sleep(REJOIN_INTERVAL)
            if len(self.transport.node.table) == 0 and self.bootstrap:
                await self._join()

    async def _log_reachability(self) -> None:
        """Log each change of state or observed address, so a donor's log shows what the status shows."""
        shown = (self.reachability.state, self.reachability.observed, self.reachability.observed_ip)
        while True:
            await trio.sleep(REACHABILITY_WATCH)
            value = self.reachability
            now = (value.state, value.observed, value.observed_ip)
            if now != shown:
                seen = ", ".join(f"{host}:{port}" for host, port in value.observed) or value.observed_ip or "unknown"
                log.info("overlay: reachability %s -> %s (seen at %s; udp %s, tcp %s)", shown[0].value,
                         value.state.value, seen, _outcome(value.udp), _outcome(value.tcp))
                shown = now

    async def _save_periodically(self) -> None:
        while True:
            await trio.sleep(SAVE_INTERVAL)
            self._save_logged()

    def _save_logged(self) -> None:
        try:
            self.save_routing()
        except OSError as exc:
            log.warning("cannot save %s: %s", self.routing_path, exc)

    def _read_for_advertiser(self) -> tuple[int, dict[PublicKey, PublicKey], list[str]]:
        """(change counter, subjects, addresses); the vessels are read only when the counter moved. The pool's
        version is added in: both only grow, so the sum moves whenever either does."""
        counter = self.state.change_counter() + (self.pool.version if self.pool is not None else 0)
        if self._subjects is None or self._subjects[0] != counter:
            subjects = subjects_of(self.identity.public_key, self.state.get_vessels())
            if self.pool is not None:
                subjects |= self.pool.subjects()
            self._subjects = (counter, subjects)
        return counter, self._subjects[1], self.addresses()

    def _keep_locally(self, raw: bytes) -> None:
        transport = self.transport
        transport.node.store.put(raw, transport.address[0], transport.now())


def _outcome(reached: bool | None) -> str:
    return "not checked" if reached is None else "reached" if reached else "not reached"
