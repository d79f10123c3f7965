"""A running node manager: node directory, identity, launcher and server, started and shut down together.

    init_node(node_dir, owner)                       # once: node key + the first vessels
    async with NodeManager(node_dir, "127.0.0.1", 0) as nm:
        nm.port                                      # the bound port (0 asks the OS for a free one)

The node's own key lives in the node directory as `node.privatekey` (mode 0600, written and checked by
`seattle.keys`, which refuses a key file others can read); requests must name its public key as their
destination. Opening runs `NodeState.recover()` before anything can start a vessel, so vessels that were
running when a previous daemon died are marked Terminated. Leaving the `async with` stops accepting, stops
every running vessel (recording it Stopped), ends the launcher's zygote and closes the database.

With `overlay=True` the node also joins the overlay (`seattle.overlay`): a full `OverlayNode` under the node's
own key, on UDP at the same host and port number as the TCP API, so one address serves both. It joins through
`bootstrap` and through the contacts saved in `routing.json` (so a restarted node rejoins without its
bootstrap node; none of either: it starts a new overlay), then looks up its own id, and runs the advertiser
(`seattle.advertise.advertiser`). The routing table is saved to `<node_dir>/routing.json` (mode 0600, atomic)
every SAVE_INTERVAL and when the node stops; a damaged file is logged and ignored.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType

import trio

from seattle.advertise.advertiser import AdvertiserState, run_advertiser, subjects_of
from seattle.keys import Identity, PublicKey, generate_identity
from seattle.nodemgr.api import NodeAPI
from seattle.nodemgr.nodedir import NodeDir
from seattle.nodemgr.server import NodeServer, ServerLimits, bound_addresses, open_listeners
from seattle.nodemgr.signing import RequestVerifier
from seattle.nodemgr.vessels import NodeState
from seattle.overlay.lookup import RttEstimator
from seattle.overlay.messages import Message
from seattle.overlay.nodeid import NodeId
from seattle.overlay.protocol import OverlayNode
from seattle.overlay.routing import RoutingTable
from seattle.overlay.store import RecordStore
from seattle.overlay.udp import UdpOverlay
from seattle.resources import DEFAULT_ALLOTMENT, DEFAULT_OFFCUT, Resources
from seattle.vessel.launcher import VesselLauncher

log = logging.getLogger(__name__)

#: A routing table is small (k contacts per bucket); anything bigger is not one of ours.
MAX_ROUTING_FILE = 1024 * 1024
SAVE_INTERVAL = 180.0
#: While the node knows no peer (its bootstrap nodes were down), it tries to join again this often.
REJOIN_INTERVAL = 30.0
#: How long one overlay request or lookup of the node may take.
OVERLAY_TIMEOUT = 5.0

#: (resources, owner, users) of one vessel of a node's first layout.
Layout = Sequence[tuple[Resources, PublicKey, Sequence[PublicKey]]]


def init_node(node_dir: Path, owner: PublicKey, layout: Layout | None = None,
              offcut: Resources = DEFAULT_OFFCUT) -> PublicKey:
    """Create a node in `node_dir`: a fresh node key and the first vessels; returns the node's public key.

    Without `layout` the node gets one vessel with `DEFAULT_ALLOTMENT` (ports included) owned by `owner`,
    with no users. Refused (NodeError "store_exists", or IdentityExists) if a node is already there.
    """
    if not isinstance(owner, PublicKey):
        raise TypeError(f"owner must be a PublicKey, not {type(owner).__name__}")
    node_dir = Path(node_dir)
    NodeDir(node_dir).create()
    entries = layout if layout is not None else [(DEFAULT_ALLOTMENT, owner, ())]
    raw_layout = [(resources, _raw(key, "owner"), [_raw(user, "user") for user in users])
                  for resources, key, users in entries]
    identity = generate_identity(NodeDir.IDENTITY)
    with NodeState.create(node_dir, identity.public_key.raw, offcut) as state:
        state.create_initial_vessels(raw_layout)
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
                 bootstrap: Sequence[tuple[str, int]] = ()) -> None:
        self.node_dir = Path(node_dir)
        self.host = host
        self.requested_port = port
        self.limits = limits or ServerLimits()
        self.local_ips = tuple(local_ips)
        self.allow_unconfined = allow_unconfined
        self.use_overlay = overlay
        self.bootstrap = tuple(bootstrap)
        #: The running overlay transport and the advertiser's record set (None without the overlay).
        self.overlay: UdpOverlay | None = None
        self.advertiser: AdvertiserState | None = None
        self._overlay_stack = AsyncExitStack()
        self._subjects: tuple[int, frozenset[PublicKey]] | None = None
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
            listeners = await open_listeners(self.host, self.requested_port)
        except BaseException:
            state.close()
            raise
        self.state = state
        self.addresses = bound_addresses(listeners)
        self._launcher = VesselLauncher(allow_unconfined=self.allow_unconfined)
        await self._launcher.__aenter__()
        self.api = NodeAPI(state, self._launcher, self.identity.public_key,
                           addresses=lambda: list(self.addresses), local_ips=self.local_ips)
        self.server = NodeServer(self.api, RequestVerifier(self.identity.public_key), self.limits)
        try:
            if self.use_overlay:
                # Entered before the nursery, left after it: trio nurseries nest, and the overlay's own
                # tasks must outlive the tasks that use it.
                self.overlay = await self._overlay_stack.enter_async_context(
                    UdpOverlay(self._overlay_node(), self.host, self.port))
                self.advertiser = AdvertiserState(self.identity)
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
        if self.overlay is not None:
            self._nursery.start_soon(self._run_overlay)
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
                self._server_scope.cancel()
                await self.api.stop_all()
        finally:
            self._nursery.cancel_scope.cancel()
            try:
                suppress = await self._nursery_manager.__aexit__(kind, value, traceback)
            finally:
                try:
                    if self.overlay is not None:
                        self._save_logged()
                    await self._overlay_stack.aclose()
                finally:
                    await self._launcher.__aexit__(None, None, None)
                    assert self.state is not None
                    self.state.close()
        return suppress

    # -- the overlay ------------------------------------------------------------------------------------

    @property
    def routing_path(self) -> Path:
        return NodeDir(self.node_dir).routing_path

    def advertised_addresses(self) -> list[str]:
        """Where researchers reach this node: the bound addresses, or the local IPs when bound to all."""
        if not ipaddress.ip_address(self.host).is_unspecified:
            return list(self.addresses)
        return [f"[{ip}]:{self.port}" if ":" in ip else f"{ip}:{self.port}" for ip in self.local_ips]

    def save_routing(self) -> None:
        """Write the routing table to routing.json (`NodeDir.write_routing`: mode 0600, atomic)."""
        assert self.overlay is not None
        NodeDir(self.node_dir).write_routing(json.dumps(self.overlay.node.table.to_dict()).encode())

    def _overlay_node(self) -> OverlayNode:
        assert self.identity is not None
        if ipaddress.ip_address(self.host).is_loopback:
            # Loopback overlays (tests, one-machine demos) put every node in one /24 and one source address:
            # keep the per-subnet cap from hiding all but two peers per bucket, let the store take every
            # neighbour's writes (they all come from this one address) and give replies a 1 s floor so a busy
            # machine's scheduling stall is not taken for a dead peer.
            fresh = RoutingTable(NodeId.from_public_key(self.identity.public_key))
            fresh.max_per_subnet = fresh.k
            store = RecordStore(max_writes_per_source=10_000)
            rtt = RttEstimator(initial_timeout=1.0, min_timeout=1.0)
        else:
            fresh, store, rtt = RoutingTable(NodeId.from_public_key(self.identity.public_key)), None, None
        table = self._load_routing(fresh)
        return OverlayNode(self.identity, table=table, store=store, rtt=rtt)

    def _load_routing(self, fresh: RoutingTable) -> RoutingTable:
        """The saved table if routing.json is there and sound, else `fresh`; a damaged file only logs."""
        try:
            with self.routing_path.open("rb") as file:
                data = file.read(MAX_ROUTING_FILE + 1)
        except FileNotFoundError:
            return fresh
        except OSError as exc:
            log.warning("%s cannot be read (%s); joining without it", self.routing_path, exc)
            return fresh
        try:
            if len(data) > MAX_ROUTING_FILE:
                raise ValueError(f"over {MAX_ROUTING_FILE} bytes")
            table = RoutingTable.from_dict(json.loads(data))
            if table.own_id != fresh.own_id:
                raise ValueError("it belongs to another node key")
        except (ValueError, TypeError, RecursionError) as exc:
            log.warning("%s is damaged (%s); ignoring it and joining through the bootstrap nodes",
                        self.routing_path, exc)
            return fresh
        log.info("loaded %d overlay contacts from %s", len(table), self.routing_path)
        return table

    async def _run_overlay(self) -> None:
        """Join, then advertise and save the routing table until the node stops."""
        assert self.overlay is not None and self.advertiser is not None
        if not self.advertised_addresses():
            log.warning("overlay: listening on every interface with no local IP given (--ip), so there is no "
                        "address to advertise; researchers will not find this node's vessels")
        await self._join()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._keep_joined)
            nursery.start_soon(self._save_periodically)
            nursery.start_soon(functools.partial(run_advertiser, self.advertiser, self.overlay,
                                                 self._read_for_advertiser, time.time,
                                                 keep_locally=self._keep_locally))

    async def _join(self) -> None:
        """Ask the bootstrap nodes for our neighbours, then look up our own id from their answers and any
        saved contacts."""
        overlay = self.overlay
        assert overlay is not None
        answers: list[Message] = []

        async def ask(host: str, port: int) -> None:
            try:
                answers.append(await overlay.bootstrap(host, port, OVERLAY_TIMEOUT))
            except (TimeoutError, OSError) as exc:
                log.warning("overlay bootstrap node %s:%s did not answer: %s", host, port, exc)

        async with trio.open_nursery() as nursery:
            for host, port in self.bootstrap:
                nursery.start_soon(ask, host, port)
        if len(overlay.node.table) == 0:
            log.info("overlay: udp %s:%d, no peers yet (%s)", *overlay.address,
                     "bootstrap nodes silent" if self.bootstrap else "started a new overlay")
            return
        try:
            await overlay.lookup(overlay.node.node_id, OVERLAY_TIMEOUT * 4, answers)
        except TimeoutError:
            log.warning("overlay: the join lookup did not finish in time")
        log.info("overlay: udp %s:%d, joined, %d contacts", *overlay.address, len(overlay.node.table))

    async def _keep_joined(self) -> None:
        """A node whose bootstrap nodes were down at start keeps trying, so it is not alone for ever."""
        assert self.overlay is not None
        while True:
            await trio.sleep(REJOIN_INTERVAL)
            if len(self.overlay.node.table) == 0 and self.bootstrap:
                await self._join()

    async def _save_periodically(self) -> None:
        while True:
            await trio.sleep(SAVE_INTERVAL)
            self._save_logged()

    def _save_logged(self) -> None:
        try:
            self.save_routing()
        except OSError as exc:
            log.warning("cannot save %s: %s", self.routing_path, exc)

    def _read_for_advertiser(self) -> tuple[int, frozenset[PublicKey], list[str]]:
        """(change counter, subjects, addresses); the vessels are read only when the counter moved."""
        assert self.state is not None and self.identity is not None
        counter = self.state.change_counter()
        if self._subjects is None or self._subjects[0] != counter:
            self._subjects = (counter, subjects_of(self.identity.public_key, self.state.get_vessels()))
        return counter, self._subjects[1], self.advertised_addresses()

    def _keep_locally(self, raw: bytes) -> None:
        assert self.overlay is not None
        self.overlay.node.store.put(raw, self.overlay.address[0], self.overlay.now())

def _raw(key: object, what: str) -> bytes:
    if not isinstance(key, PublicKey):
        raise TypeError(f"each {what} in the layout must be a PublicKey, not {type(key).__name__}")
    return key.raw
