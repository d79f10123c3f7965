"""Finding a researcher's vessels with no central server: ask the overlay, then ask each node found.

    result = await browse(my_key, bootstrap_nodes())
    for found in result.vessels: print(found.address, found.vessel, found.status)

Steps, and why each:

1. Join the overlay as a light client: a fresh throwaway identity on an ephemeral UDP port, `serve=False`, so
   it answers nothing, never enters anyone's routing table and stores nothing. Any one bootstrap node that
   answers is enough.
2. `find_records(key)`: the records of every node manager that advertises a vessel owned or used by `key`,
   merged across all holders (`seattle.advertise.dht`).
3. GetVessels on every node found, in parallel (at most `concurrency` at once). A record is trusted only
   for where to connect: what the vessels are, who owns and uses them, comes from the node's own answer over
   the node manager protocol, and a node whose key differs from the record's is reported, not used.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from seattle.addresses import split_ip_port
from seattle.advertise.dht import find_records
from seattle.errors import BadBootstrapNode, NoBootstrapNode, OverlayUnreachable
from seattle.experiment.fanout import exception_chain
from seattle.home import seattle_home
from seattle.keys import PublicKey, generate_identity
from seattle.nodemgr.client import NodeClient, NodeClientError
from seattle.nodemgr.relay_client import RelayAddress
from seattle.nodemgr.routes import RELAYED_PORT, connect_node, relayed_name
from seattle.overlay.join import join
from seattle.overlay.nodeid import NodeId
from seattle.overlay.protocol import OverlayNode
from seattle.overlay.records import VesselRecord
from seattle.overlay.routing import RoutingTable
from seattle.overlay.udp import UdpOverlay

BOOTSTRAP_ENV = "SEATTLE_BOOTSTRAP"
BOOTSTRAP_FILE = "bootstrap"
#: A bootstrap file is a short list of addresses; anything bigger is not one.
MAX_BOOTSTRAP_FILE = 64 * 1024


@dataclass(frozen=True)
class FoundVessel:
    """One vessel `browse` found, as its node manager described it over a signed connection."""

    node_key: PublicKey
    host: str
    port: int
    vessel: str
    owner: PublicKey
    users: tuple[PublicKey, ...]
    status: str
    advertise: bool
    ownerinfo: str
    #: The relays its node is reached through (a node behind a NAT: `host` is then its relayed name).
    relays: tuple[RelayAddress, ...] = ()

    @property
    def address(self) -> str:
        """The node manager's address as HOST:PORT ([v6]:PORT for IPv6), as `seattle call` takes it."""
        return _address(self.host, self.port)


@dataclass(frozen=True)
class BrowseResult:
    vessels: list[FoundVessel]  # sorted by (address, vessel)
    unreachable: list[tuple[str, str]]  # ("HOST:PORT", why: "refused", "timed out", or the error text)


async def browse(key: PublicKey, bootstrap: Sequence[tuple[str, int]], *, timeout: float = 10.0,
                 concurrency: int = 50) -> BrowseResult:
    """The vessels whose owner or one of whose users is `key`, on every node that advertises them.

    OverlayUnreachable if no bootstrap node answers. Nodes that advertise but cannot be reached are listed in
    `unreachable`, never silently dropped.
    """
    if not isinstance(key, PublicKey):
        raise TypeError(f"key must be a PublicKey, not {type(key).__name__}")
    if not bootstrap:
        raise NoBootstrapNode(seattle_home() / BOOTSTRAP_FILE)
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency!r}")
    async with light_client(bootstrap, timeout) as overlay:
        records = await find_records(overlay, key, timeout=timeout)
    return await _ask_nodes(key, records, timeout, concurrency)


@asynccontextmanager
async def light_client(bootstrap: Sequence[tuple[str, int]], timeout: float) -> AsyncIterator[UdpOverlay]:
    """The overlay joined as a light client (steps 1 of the module docstring), for lookups only: browse's,
    and the pool's offers (`seattle.experiment.pool`). OverlayUnreachable if no bootstrap node answers."""
    if not bootstrap:
        raise NoBootstrapNode(seattle_home() / BOOTSTRAP_FILE)
    family = _version(bootstrap[0][0])
    starts = [(host, port) for host, port in bootstrap if _version(host) == family]
    async with UdpOverlay(_light_client(starts), _bind_host(starts, family), 0) as overlay:
        await _join(overlay, starts, timeout)
        yield overlay


def bootstrap_nodes(explicit: Sequence[str] = ()) -> list[tuple[str, int]]:
    """Where to join the overlay: `explicit` (--bootstrap texts), else $SEATTLE_BOOTSTRAP (comma-separated),
    else the file seattle_home()/bootstrap (one HOST:PORT per line, # comments). NoBootstrapNode if none of
    them gives one, BadBootstrapNode naming the first malformed entry and where it came from."""
    path = seattle_home() / BOOTSTRAP_FILE
    if explicit:
        return [_parse(text, "--bootstrap") for text in explicit]
    environment = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if environment:
        return [_parse(text.strip(), f"${BOOTSTRAP_ENV}") for text in environment.split(",") if text.strip()]
    if path.is_file():
        try:
            with path.open("rb") as file:
                data = file.read(MAX_BOOTSTRAP_FILE + 1)
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadBootstrapNode(str(path), str(path), f"the file cannot be read: {exc}") from None
        if len(data) > MAX_BOOTSTRAP_FILE:
            raise BadBootstrapNode(str(path), str(path), f"the file is over {MAX_BOOTSTRAP_FILE} bytes")
        nodes = []
        for number, line in enumerate(text.splitlines(), 1):
            entry = line.split("#", 1)[0].strip()
            if entry:
                nodes.append(_parse(entry, f"{path}, line {number}"))
        if nodes:
            return nodes
    raise NoBootstrapNode(path)


# --- the overlay part -------------------------------------------------------------------------------------


def _light_client(starts: Sequence[tuple[str, int]]) -> OverlayNode:
    identity = generate_identity("browse")
    table = None
    if all(ipaddress.ip_address(host).is_loopback for host, _ in starts):
        # Every node of a loopback overlay (tests, a demo on one machine) shares one /24; the default cap of
        # two contacts per subnet and bucket would hide all but two of them.
        table = RoutingTable(NodeId.from_public_key(identity.public_key))
        table.max_per_subnet = table.k
    return OverlayNode(identity, randomness=random.SystemRandom(), table=table, serve=False)


def _bind_host(starts: Sequence[tuple[str, int]], family: int) -> str:
    """Loopback when every bootstrap node is on loopback (nothing else is needed), else every interface."""
    if all(ipaddress.ip_address(host).is_loopback for host, _ in starts):
        return "::1" if family == 6 else "127.0.0.1"
    return "::" if family == 6 else "0.0.0.0"


async def _join(overlay: UdpOverlay, starts: Sequence[tuple[str, int]], timeout: float) -> None:
    """Send a bootstrap request to every bootstrap node at once; one answer is enough. A light client meets
    no neighbours (`join(meet_neighbours=False)`): `find_records` does the lookups it needs."""
    joined = None
    with trio.move_on_after(timeout):
        joined = await join(overlay, starts, timeout, meet_neighbours=False)
    if joined is None or not joined.answers:
        tried = [_address(host, port) for host, port in starts]
        errors = [f"{_address(host, port)}: {why}" for (host, port), why in joined.silent] if joined else []
        raise OverlayUnreachable(tried, "; ".join(errors) or f"no answer within {timeout:g} s")


# --- the node manager part --------------------------------------------------------------------------------


async def _ask_nodes(key: PublicKey, records: list[VesselRecord], timeout: float,
                     concurrency: int) -> BrowseResult:
    vessels: list[FoundVessel] = []
    unreachable: list[tuple[str, str]] = []
    limit = trio.CapacityLimiter(concurrency)

    async def ask(record: VesselRecord) -> None:
        async with limit:
            found, problem = await _vessels_of(record, key, timeout)
        vessels.extend(found)
        if problem is not None:
            unreachable.append(problem)

    async with trio.open_nursery() as nursery:
        for record in records:
            nursery.start_soon(ask, record)
    vessels.sort(key=lambda v: (v.address, _vessel_order(v.vessel)))
    unreachable.sort()
    return BrowseResult(vessels, unreachable)


async def _vessels_of(record: VesselRecord, key: PublicKey,
                      timeout: float) -> tuple[list[FoundVessel], tuple[str, str] | None]:
    """GetVessels at the first of the record's addresses that answers, else through its relays; the vessels
    `key` owns or uses."""
    problem: tuple[str, str] | None = None
    if record.relays and not record.addresses:
        return await _relayed_vessels_of(record, key, timeout)
    for text in record.addresses:
        try:
            host, port = split_ip_port(text)
        except ValueError:
            problem = problem or (text, "not an IP address and port")
            continue
        try:
            with trio.fail_after(timeout):
                # The record's node key must answer: the handshake proves it before GetVessels is sent.
                async with await NodeClient.connect(host, port, node_key=record.node, timeout=timeout) as client:
                    answer = await client.call("GetVessels")
        except trio.TooSlowError:
            problem = problem or (text, "timed out")
            continue
        except NodeClientError as exc:
            refused = any(isinstance(cause, ConnectionRefusedError) for cause in exception_chain(exc))
            problem = problem or (text, "refused" if refused else _why(exc))
            continue
        try:
            return _matching(answer, record, key, host, port), None
        except _Mismatch as exc:
            return [], (text, str(exc))
    return [], problem or ("", "the record carries no address")


async def _relayed_vessels_of(record: VesselRecord, key: PublicKey,
                              timeout: float) -> tuple[list[FoundVessel], tuple[str, str] | None]:
    """GetVessels through the record's relays (`seattle.nodemgr.routes`); the node goes by its relayed name."""
    relays = record_relays(record)
    name = relayed_name(record.node)
    try:
        with trio.fail_after(timeout):
            async with await connect_node(name, RELAYED_PORT, None, node_key=record.node, relays=relays,
                                          timeout=timeout) as client:
                answer = await client.call("GetVessels")
    except trio.TooSlowError:
        return [], (name, "timed out")
    except NodeClientError as exc:
        return [], (name, _why(exc))
    try:
        found = _matching(answer, record, key, name, RELAYED_PORT)
    except _Mismatch as exc:
        return [], (name, str(exc))
    return [dataclasses.replace(vessel, relays=relays) for vessel in found], None


def record_relays(record: VesselRecord) -> tuple[RelayAddress, ...]:
    """The relays a record names whose voucher held (`VesselRecord.relays`), as routes dial them; one whose
    address is not IP:PORT is left out (it would never be dialled)."""
    relays = []
    for route in record.relays:
        try:
            relays.append(RelayAddress(*split_ip_port(route.address), route.relay))
        except ValueError:
            continue
    return tuple(relays)


class _Mismatch(Exception):
    """The node's answer cannot be used: a different key than advertised, or not a GetVessels answer."""


def _matching(answer: Any, record: VesselRecord, key: PublicKey, host: str, port: int) -> list[FoundVessel]:
    try:
        node_key = PublicKey.from_text(answer["node_key"])
        entries = list(answer["vessels"])
    except (TypeError, KeyError, ValueError) as exc:
        raise _Mismatch(f"the node sent an unusable GetVessels answer ({exc})") from None
    if node_key != record.node:
        raise _Mismatch(f"the node there has key {node_key.fingerprint()}, not the advertised "
                        f"{record.node.fingerprint()}; ignored")
    found = []
    for entry in entries:
        try:
            owner = PublicKey.from_text(entry["owner"])
            users = tuple(PublicKey.from_text(user) for user in entry["users"])
            vessel = FoundVessel(node_key, host, port, str(entry["name"]), owner, users, str(entry["status"]),
                                 bool(entry["advertise"]), str(entry["ownerinfo"]))
        except (TypeError, KeyError, ValueError) as exc:
            raise _Mismatch(f"the node described a vessel unusably ({exc})") from None
        if key == owner or key in users:
            found.append(vessel)
    return found


# --- small helpers ----------------------------------------------------------------------------------------


def _parse(text: str, where: str) -> tuple[str, int]:
    try:
        return split_ip_port(text)
    except ValueError as exc:
        raise BadBootstrapNode(text, where, str(exc)) from None


def _version(host: str) -> int:
    return ipaddress.ip_address(host).version


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _vessel_order(name: str) -> tuple[int, str]:
    """v2 before v10."""
    digits = name[1:]
    return (int(digits), name) if name[:1] == "v" and digits.isdigit() else (2**63, name)


def _why(error: BaseException) -> str:
    text = str(error)
    return "timed out" if "timed out" in text else text
