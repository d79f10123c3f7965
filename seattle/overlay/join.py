"""Joining the overlay, written once for every driver: the node manager, `seattle browse`, the simulation and
the UDP bench all call `join`.

    joined = await join(transport, [("192.0.2.7", 1224)], timeout=5.0)

1. A bootstrap request (`OverlayTransport.bootstrap`: find_node of our own id, unbound, as we do not know the
   bootstrap node's id yet) goes to every bootstrap address at once, each retried up to `attempts` times: a
   lossy network may eat the request or its answer. An answer puts the bootstrap node in our table and names
   our would-be neighbours.
2. If our table now holds anyone (an answer, or contacts saved from an earlier run), we look up our own id,
   starting from those answers: the lookup meets our neighbours, who take us into their tables. A light
   client (`meet_neighbours=False`, e.g. browse) stops after step 1: it must stay out of other tables.

Nothing here raises for a silent bootstrap node or a slow lookup: the caller decides what a failed join means
(the node manager logs it and retries later, browse reports the overlay unreachable, a simulation counts it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import trio

from seattle.overlay.messages import Message
from seattle.overlay.nodeid import Contact
from seattle.overlay.protocol import Address
from seattle.overlay.transport import OverlayTransport


@dataclass(frozen=True)
class Joined:
    """What a join achieved: `answers` from the bootstrap nodes that answered (in the order they did),
    `silent` the (address, why) of those that did not, and `neighbours` the own-id lookup's result: None
    when no lookup ran (nobody known, or a light client) or it did not finish within its timeout
    (`lookup_timed_out`)."""

    answers: tuple[Message, ...]
    silent: tuple[tuple[Address, str], ...]
    neighbours: tuple[Contact, ...] | None
    lookup_timed_out: bool = False


async def join(
    transport: OverlayTransport,
    bootstrap_addresses: Sequence[Address],
    timeout: float,
    *,
    lookup_timeout: float | None = None,
    attempts: int = 1,
    meet_neighbours: bool = True,
) -> Joined:
    """Join through `bootstrap_addresses` (module docstring). `timeout` bounds each bootstrap request,
    `lookup_timeout` (default `timeout`) the own-id lookup."""
    if attempts < 1:
        raise ValueError(f"a join makes at least one attempt per bootstrap node, got attempts={attempts!r}")
    answers: list[Message] = []
    silent: list[tuple[Address, str]] = []

    async def ask(host: str, port: int) -> None:
        for attempt in range(attempts):
            try:
                answers.append(await transport.bootstrap(host, port, timeout))
                return
            except (TimeoutError, OSError) as exc:
                if attempt == attempts - 1:
                    silent.append(((host, port), str(exc)))

    async with trio.open_nursery() as nursery:
        for host, port in bootstrap_addresses:
            nursery.start_soon(ask, host, port)
    if not meet_neighbours or len(transport.node.table) == 0:
        return Joined(tuple(answers), tuple(silent), None)
    node_id = transport.node.node_id
    try:
        found = await transport.lookup(node_id, timeout if lookup_timeout is None else lookup_timeout, answers)
    except TimeoutError:
        return Joined(tuple(answers), tuple(silent), None, lookup_timed_out=True)
    return Joined(tuple(answers), tuple(silent), tuple(found))
