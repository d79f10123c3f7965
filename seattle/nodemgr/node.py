"""A running node manager: node directory, identity, launcher and server, started and shut down together.

    init_node(node_dir, owner)                       # once: node key + the first vessels
    async with NodeManager(node_dir, "127.0.0.1", 0) as nm:
        nm.port                                      # the bound port (0 asks the OS for a free one)

The node's own key lives in the node directory as `node.privatekey` (mode 0600, written and checked by
`seattle.keys`, which refuses a key file others can read); requests must name its public key as their
destination. Opening runs `NodeState.recover()` before anything can start a vessel, so vessels that were
running when a previous daemon died are marked Terminated. Leaving the `async with` stops accepting, stops
every running vessel (recording it Stopped), ends the launcher's zygote and closes the database.

With `overlay=True` the node also runs its overlay service (`seattle.nodemgr.overlay_service`): it joins the
overlay on UDP at the same host and port number as the TCP API, advertises the node's vessels and keeps its
routing table in `<node_dir>/routing.json`.
"""

from __future__ import annotations

import ipaddress
import logging
import random
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType

import trio

from seattle.keys import Identity, PublicKey
from seattle.nodemgr.api import NodeAPI
from seattle.nodemgr.nodedir import NodeDir
from seattle.nodemgr.overlay_service import OverlayService
from seattle.nodemgr.pool import NodePool
from seattle.nodemgr.pool_directory import OverlayDirectory
from seattle.nodemgr.punch import DEFAULT_PRIME_TTL, punch_from
from seattle.nodemgr.relay import COORDINATION, RelayCore, RelayLimits
from seattle.nodemgr.relay_client import Candidates, Incoming, RelayManager, RelayTimers
from seattle.nodemgr.relay_service import RelayService
from seattle.nodemgr.server import NodeServer, ServerLimits, bound_addresses, open_listeners
from seattle.nodemgr.signing import RequestVerifier
from seattle.nodemgr.vessels import NodeState
from seattle.overlay.nodeid import DEFAULT_NETWORK, NetworkParameters, solve_identity
from seattle.overlay.reachability import State
from seattle.overlay.udp import UdpOverlay
from seattle.resources import DEFAULT_ALLOTMENT, DEFAULT_OFFCUT, Resources
from seattle.vessel.host.launcher import VesselLauncher

log = logging.getLogger(__name__)

#: How long a stopping node spends at most withdrawing its pool offer from the overlay.
WITHDRAW_TIMEOUT = 2.0

#: (resources, owner, users) of one vessel of a node's first layout.
Layout = Sequence[tuple[Resources, PublicKey, Sequence[PublicKey]]]


def init_node(node_dir: Path, owner: PublicKey, layout: Layout | None = None,
              offcut: Resources = DEFAULT_OFFCUT, network: NetworkParameters = DEFAULT_NETWORK,
              pool: Sequence[Resources] = ()) -> PublicKey:
    """Create a node in `node_dir`: a fresh node key and the first vessels; returns the node's public key.

    Without `layout` the node gets one vessel with `DEFAULT_ALLOTMENT` (ports included) owned by `owner`,
    with no users. `pool` adds pool vessels of those sizes, owned by the node key (docs/pool.md). Refused
    (NodeError "store_exists", or IdentityExists) if a node is already there.
    The node key is drawn until its overlay id carries `network`'s work (`solve_identity`: about 0.2 s on the
    real network, once); the key is the whole solution, so the node directory stores nothing more.
    """
    if not isinstance(owner, PublicKey):
        raise TypeError(f"owner must be a PublicKey, not {type(owner).__name__}")
    node_dir = Path(node_dir)
    NodeDir(node_dir).create()
    entries = layout if layout is not None else [(DEFAULT_ALLOTMENT, owner, ())]
    raw_layout = [(resources, _raw(key, "owner"), [_raw(user, "user") for user in users])
                  for resources, key, users in entries]
    identity = solve_identity(NodeDir.IDENTITY, network)
    # Pool vessels come last, owned by the node's own key, with no users and not advertised (docs/pool.md).
    raw_layout += [(resources, identity.public_key.raw, []) for resources in pool]
    with NodeState.create(node_dir, identity.public_key.raw, offcut) as state:
        names = state.create_initial_vessels(raw_layout)
        for name in names[len(names) - len(pool):]:
            state.change_advertise(name, False)
    # The key is written last: a node directory with a key is a complete one.
    NodeDir(node_dir).save_identity(identity)
    return identity.public_key


def load_node_identity(node_dir: Path) -> Identity:
    """The node's key pair from `node_dir` (refused if the file is readable by others)."""
    return NodeDir(node_dir).load_identity()


class NodeManager:
    """See the module docstring. `local_ips` are the addresses vessels may bind (empty: the broker's)."""

    def __init__(self, node_dir: Path, host: str, port: int, *, limits: ServerLimits | None = None,
                 local_ips: Sequence[str] = (), allow_unconfined: bool = False, overlay: bool = False,
                 bootstrap: Sequence[tuple[str, int]] = (), relay_limits: RelayLimits | None = None,
                 needs_relay: bool = False, relay_candidates: Candidates | None = None,
                 relay_timers: RelayTimers | None = None, prime_ttl: int | None = DEFAULT_PRIME_TTL,
                 plaintext_benchmark_only: bool = False, beneficiary: PublicKey | None = None,
                 country: str = "") -> None:
        """`relay_limits`: this node's relay service (on by default; `RelayLimits(enabled=False)` turns it
        off). `needs_relay`: this node cannot be dialled (behind a NAT or a firewall), so it holds
        reservations on relays among `relay_candidates` (default: its overlay contacts) and advertises them
        instead of its own addresses; `prime_ttl` is the TTL of its hole punches' priming SYNs (None: no
        priming, for loopback tests). `plaintext_benchmark_only`: see `NodeServer` (bench/bench_nodemgr.py
        only). `beneficiary`, `country`: the pool's attestations and offer (node.json)."""
        self.node_dir = Path(node_dir)
        self.host = host
        self.requested_port = port
        self.limits = limits or ServerLimits()
        self.local_ips = tuple(local_ips)
        self.allow_unconfined = allow_unconfined
        self.use_overlay = overlay
        self.bootstrap = tuple(bootstrap)
        self.plaintext_benchmark_only = plaintext_benchmark_only
        self.relay_limits = relay_limits or RelayLimits()
        self.needs_relay = needs_relay
        self.relay_candidates = relay_candidates
        self.relay_timers = relay_timers or RelayTimers()
        #: The node's reservations when it needs a relay (None otherwise).
        self.relays: RelayManager | None = None
        #: Bumped whenever the relays held change: the advertiser republishes.
        self.relay_changes = 0
        #: Hole punches this node answered, by outcome (`seattle.nodemgr.punch`).
        self.punches: Counter[str] = Counter()
        self.prime_ttl = prime_ttl
        #: Whom this donor's node earns pool credit for, and the country its offer names (node.json).
        self.beneficiary = beneficiary
        self.country = country
        #: The overlay service and its running UDP transport (None without the overlay).
        self.overlay_service: OverlayService | None = None
        self.overlay: UdpOverlay | None = None
        self._overlay_stack = AsyncExitStack()
        self.identity: Identity | None = None
        self.state: NodeState | None = None
        self.api: NodeAPI | None = None
        self.server: NodeServer | None = None
        self.addresses: list[str] = []
        self._launcher: VesselLauncher | None = None
        self._nursery_manager = trio.open_nursery()
        self._nursery: trio.Nursery | None = None
        self._server_scope = trio.CancelScope()

    @property
    def node_key(self) -> PublicKey:
        assert self.identity is not None, "use `async with NodeManager(...)`"
        return self.identity.public_key

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self.addresses[0].rsplit(":", 1)[1])

    async def __aenter__(self) -> NodeManager:
        self.identity = load_node_identity(self.node_dir)
        state = NodeState.open(self.node_dir)
        try:
            if state.node_key != self.identity.public_key.raw:
                raise ValueError(f"{self.node_dir}: the node key file does not belong to this node's state")
            state.recover()
            pool = NodePool(self.identity, state, NodeDir(self.node_dir), beneficiary=self.beneficiary,
                            country=self.country, addresses=self.advertised_addresses,
                            reachability=self.offered_reachability)
            listeners = await open_listeners(self.host, self.requested_port)
        except BaseException:
            state.close()
            raise
        self.state = state
        self.addresses = bound_addresses(listeners)
        self._launcher = VesselLauncher(allow_unconfined=self.allow_unconfined)
        await self._launcher.__aenter__()
        self.api = NodeAPI(state, self._launcher, self.identity.public_key,
                           addresses=lambda: list(self.addresses), local_ips=self.local_ips, pool=pool)
        self.server = NodeServer(self.api, RequestVerifier(self.identity.public_key), self.limits,
                                 identity=self.identity, relay=RelayService(RelayCore(self.identity,
                                                                                      self.relay_limits)),
                                 plaintext_benchmark_only=self.plaintext_benchmark_only)
        try:
            if self.use_overlay:
                # Entered before the nursery, left after it: trio nurseries nest, and the overlay's own
                # tasks must outlive the tasks that use it.
                self.overlay_service = await self._overlay_stack.enter_async_context(OverlayService(
                    self.identity, self.host, self.port, NodeDir(self.node_dir), self.bootstrap, state,
                    self.advertised_addresses, pool, relays=self.relay_entries))
                self.overlay = self.overlay_service.transport
                pool.directory = OverlayDirectory(self.overlay, self.identity)
            self._nursery = await self._nursery_manager.__aenter__()
        except BaseException:
            await self._overlay_stack.aclose()
            for listener in listeners:
                await listener.aclose()
            await self._launcher.__aexit__(None, None, None)
            state.close()
            raise
        await self._nursery.start(self.api.run)
        await self._nursery.start(self._serve, listeners)
        if self.overlay_service is not None:
            self._nursery.start_soon(self.overlay_service.run)
        if self.needs_relay or self.overlay_service is not None:
            self.relays = RelayManager(self.identity, self._serve_circuit,
                                       self.relay_candidates or self._overlay_candidates,
                                       on_change=self._relays_changed, timers=self.relay_timers,
                                       needed=self.relay_needed)
            self._nursery.start_soon(self.relays.run)
        return self

    async def _serve(self, listeners: list[trio.SocketListener],
                     *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert self.server is not None
        with self._server_scope:
            await self.server.serve(listeners, task_status=task_status)

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> bool | None:
        assert self._nursery is not None and self.api is not None and self._launcher is not None
        try:
            with trio.CancelScope(shield=True):
                # No new calls; then stop the vessels while their followers still run to record the end.
                if self.api.pool is not None:
                    self.api.pool.drain()
                self._server_scope.cancel()
                await self.api.stop_all()
        finally:
            self._nursery.cancel_scope.cancel()
            try:
                suppress = await self._nursery_manager.__aexit__(kind, value, traceback)
            finally:
                try:
                    await self._withdraw_pool()
                    await self._overlay_stack.aclose()  # saves the routing table
                finally:
                    await self._launcher.__aexit__(None, None, None)
                    assert self.state is not None
                    self.state.close()
        return suppress

    # -- the overlay ------------------------------------------------------------------------------------

    async def _withdraw_pool(self) -> None:
        """On stop, once the advertiser has stopped: take the pool's offer (and credit) back now rather than
        let researchers find them for hours (`NodePool.withdrawn`), within a bound the stop can afford."""
        if self.overlay_service is None or self.api is None or self.api.pool is None:
            return
        with trio.CancelScope(shield=True):
            await self.overlay_service.withdraw(self.api.pool.withdrawn(), WITHDRAW_TIMEOUT)

    def advertised_addresses(self) -> list[str]:
        """Where researchers reach this node directly: the bound addresses, or the local IPs when bound to
        all; none when it needs a relay (its addresses are not reachable from outside)."""
        if self.relay_needed():
            return []
        if not ipaddress.ip_address(self.host).is_unspecified:
            return list(self.addresses)
        return [f"[{ip}]:{self.port}" if ":" in ip else f"{ip}:{self.port}" for ip in self.local_ips]

    def reachability_state(self) -> str:
        """The overlay's measure of this node's reachability (`seattle.overlay.reachability.State` values);
        "unknown" without an overlay or before it has measured."""
        if self.overlay_service is None:
            return State.UNKNOWN.value
        try:
            return self.overlay_service.reachability.state.value
        except RuntimeError:  # the overlay is not running (yet, or any more)
            return State.UNKNOWN.value

    def offered_reachability(self) -> str:
        """What the node's pool offer says: the overlay's measure, but "nat" for a node told it needs a relay
        (`needs_relay`) that the overlay has not found behind a NAT or a firewall (yet): it cannot be dialled
        whatever the measure says, so researchers asking for `reachability=nat` must find it."""
        state = self.reachability_state()
        if self.needs_relay and state not in (State.NAT.value, State.FIREWALLED.value):
            return State.NAT.value
        return state

    def relay_needed(self) -> bool:
        """Whether this node cannot be dialled: `needs_relay`, or the overlay measured it behind a NAT or a
        firewall (`seattle.overlay.reachability`)."""
        return self.needs_relay or self.reachability_state() in (State.NAT.value, State.FIREWALLED.value)

    def relay_entries(self) -> list[tuple[str, bytes]]:
        """(relay "IP:PORT", voucher) of each reservation this node holds (none while it needs no relay)."""
        return self.relays.entries() if self.relays is not None and self.relay_needed() else []

    async def _serve_circuit(self, stream: trio.abc.Stream, incoming: Incoming) -> None:
        """A circuit a relay spliced to this node: node manager calls are served as if accepted here; a
        coordination circuit punches a direct path (`seattle.nodemgr.punch`), served the same way if it works."""
        assert self.server is not None and self.identity is not None
        if incoming.kind == COORDINATION:
            outcome, direct, peer = await punch_from(stream, self.identity, incoming.peer,
                                                     incoming.grant.observed, prime_ttl=self.prime_ttl)
            self.punches[outcome] += 1
            if direct is not None:
                await self.server.serve_stream(direct, peer)
        else:
            await self.server.serve_stream(stream, incoming.peer)

    def _relays_changed(self) -> None:
        self.relay_changes += 1
        log.info("relays: %s", ", ".join(text for text, _ in self.relay_entries()) or "none")

    async def _overlay_candidates(self) -> list[tuple[str, int]]:
        """Relay candidates: the overlay's contacts (a node manager's UDP and TCP ports are the same), shuffled:
        in the table's order (its buckets by id) every NATed node would probe, and choose, the same few public
        nodes first (measured in the simulation: p99 14 reservations per relay, max 32, for a mean of 3)."""
        if self.overlay is None:
            return []
        contacts = [(contact.host, contact.port) for contact in self.overlay.node.table]
        random.shuffle(contacts)
        return contacts


def _raw(key: object, what: str) -> bytes:
    if not isinstance(key, PublicKey):
        raise TypeError(f"each {what} in the layout must be a PublicKey, not {type(key).__name__}")
    return key.raw
