"""The one place a researcher's connection to a node manager picks its route: directly, else through a relay,
and then, over the relay, an attempt to upgrade to a direct path by hole punching.

    client = await connect_node(host, port, identity, node_key=key, relays=relays, upgrades=nursery)

A node that can be dialled is advertised with its addresses, and is dialled. A node behind a NAT or a firewall
is advertised with relays only (`seattle.overlay.records`), and is given a name of its own that no socket can
reach, `<node key in base32>.relayed` and port 0 (`relayed_name`), so that a researcher's targets, groups and
saved sessions can name it like any other node; connecting to such a name goes through its relays, in the
order given, and the node's own channel runs end to end inside the relay's circuit. With `upgrades` (a
nursery) a relayed client also tries hole punching (`seattle.nodemgr.punch`) in the background and, if a
direct connection comes up, moves its calls to it between two calls (`NodeClient.upgrade`); when punching
fails (a symmetric NAT) the relayed path simply stays.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence

import trio

from seattle.keys import Identity, PublicKey
from seattle.nodemgr.client import DEFAULT_TIMEOUT, NodeClient, NodeClientError
from seattle.nodemgr.known_nodes import KnownNodes
from seattle.nodemgr.punch import DEFAULT_PRIME_TTL, PunchFailed, punch_to
from seattle.nodemgr.relay_client import RelayAddress, RelayError, open_circuit

log = logging.getLogger(__name__)

RELAYED_SUFFIX = ".relayed"
#: The port of a relayed name: no socket listens there.
RELAYED_PORT = 0


def relayed_name(node: PublicKey) -> str:
    """The host name a node reached only through relays goes by (its whole key: names must not collide)."""
    return base64.b32encode(node.raw).decode("ascii").rstrip("=").lower() + RELAYED_SUFFIX


def is_relayed_name(host: str) -> bool:
    return host.endswith(RELAYED_SUFFIX)


async def connect_node(host: str, port: int, identity: Identity | None, *, node_key: PublicKey | None = None,
                       relays: Sequence[RelayAddress] = (), known_nodes: KnownNodes | None = None,
                       timeout: float = DEFAULT_TIMEOUT, upgrades: trio.Nursery | None = None,
                       prime_ttl: int | None = DEFAULT_PRIME_TTL) -> NodeClient:
    """A client of the node at `host`:`port` (see the module docstring for the route). A relayed name needs
    `node_key` (the channel inside the circuit must prove it); NodeClientError if no route works, naming
    the last failure of each kind tried."""
    problems: list[str] = []
    if not is_relayed_name(host):
        try:
            return await NodeClient.connect(host, port, identity, node_key=node_key, known_nodes=known_nodes,
                                            timeout=timeout)
        except NodeClientError as exc:
            if not relays:
                raise
            problems.append(str(exc))
    if node_key is None:
        raise NodeClientError(f"{host} is reached through relays, which needs the node's key (browse finds it)")
    for relay in relays:
        try:
            stream = await open_circuit(relay, node_key, timeout=timeout)
            client = await NodeClient.over(stream, identity, address=f"{host} (through {relay.text})",
                                           expected=node_key, timeout=timeout)
        except (RelayError, NodeClientError) as exc:
            problems.append(str(exc))
            continue
        client.path = f"relay {relay.text}"
        if upgrades is not None:
            upgrades.start_soon(_upgrade, client, relay, node_key, timeout, prime_ttl)
        return client
    if not relays:
        problems.append("no relay is known for it")
    raise NodeClientError(f"cannot reach the node {node_key.fingerprint()}: " + "; ".join(problems))


async def _upgrade(client: NodeClient, relay: RelayAddress, node_key: PublicKey, timeout: float,
                   prime_ttl: int | None) -> None:
    """Punch a direct path to the node and move `client` onto it; on failure the relayed path stays."""
    try:
        stream, peer = await punch_to(relay, node_key, timeout=timeout, prime_ttl=prime_ttl)
    except PunchFailed as exc:
        client.punch_result = exc.outcome
        log.info("no direct path to %s: %s", node_key.fingerprint(), exc)
        return
    try:
        direct = await NodeClient.over(stream, client.identity, address=peer, expected=node_key, timeout=timeout)
    except NodeClientError as exc:  # (`over` closes the stream on every failure, cancellation included)
        client.punch_result = "failed"
        log.info("direct path to %s failed its handshake: %s", node_key.fingerprint(), exc)
        return
    await client.upgrade(direct, f"direct {peer}")
    client.punch_result = "success"
