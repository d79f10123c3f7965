"""The pool's directory over the overlay: who holds a key's slot, who donates for a key.

    directory = OverlayDirectory(transport, identity)
    leases = await directory.slot_leases(researcher, 3)     # verified leases of slot 3 at other nodes
    credit = await directory.attestations(researcher)      # verified attestations naming the researcher

Records in the overlay only say where to ask: a node files an ordinary signed vessel record under
`slot_key(R, s)` while it leases slot s of R, and under `credit_key(B)` while it donates for B (the advertiser
does it, `NodePool.subjects`). This module looks those records up, asks each node they name for its pool status
(a public call), and keeps only what verifies: a lease signed by that node for that key and slot, embedding a
request the key signed, or an attestation signed by that node for that key. A node that does not answer, or
answers with anything else, counts for nothing (a claim nobody can show is no claim), and is counted in
`dropped`. At most MAX_NODES nodes are asked per lookup, all at once, each within `timeout`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import trio

from seattle.addresses import split_ip_port
from seattle.advertise.dht import find_records
from seattle.keys import Identity, PublicKey
from seattle.nodemgr.client import NodeClient, NodeClientError
from seattle.overlay.records import VesselRecord
from seattle.overlay.transport import OverlayTransport
from seattle.pool.formats import Attestation, Lease, PoolRejected, credit_key, slot_key

log = logging.getLogger(__name__)

#: Nodes asked per lookup: a slot has one honest holder; credit counts distinct donors, and past this many the
#: quota is generous anyway (10 + 10 x 32).
MAX_NODES = 32
#: Items of a status answer looked at: a node leases at most a few hundred vessels.
MAX_ITEMS = 1024
DEFAULT_TIMEOUT = 5.0


class OverlayDirectory:
    """A `PoolDirectory` (seattle.nodemgr.pool) backed by the overlay and the nodes' GetPoolStatus."""

    def __init__(self, transport: OverlayTransport, identity: Identity, *,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.transport = transport
        self.identity = identity
        self.timeout = timeout
        #: What was looked up and refused, by reason: for stats and tests.
        self.dropped: Counter[str] = Counter()

    async def slot_leases(self, lessee: PublicKey, slot: int) -> list[Lease]:
        found = []
        now = time.time()
        for record, status in await self._statuses(slot_key(lessee, slot)):
            slots = status.get("slots")
            for raw in slots[:MAX_ITEMS] if isinstance(slots, list) else ():
                try:
                    lease = Lease.verify(raw, record.node, now)
                except PoolRejected as exc:
                    self.dropped[f"lease_{exc.code}"] += 1
                    continue
                if lease.lessee == lessee and lease.slot == slot:
                    found.append(lease)
        return found

    async def attestations(self, beneficiary: PublicKey) -> list[Attestation]:
        found = []
        now = time.time()
        for record, status in await self._statuses(credit_key(beneficiary)):
            try:
                attestation = Attestation.verify(status.get("attestation"), now)
            except PoolRejected as exc:
                self.dropped[f"attestation_{exc.code}"] += 1
                continue
            if attestation.node == record.node and attestation.beneficiary == beneficiary:
                found.append(attestation)
        return found

    async def _statuses(self, subject: PublicKey) -> list[tuple[VesselRecord, dict[str, Any]]]:
        """The pool status of every other node with a record under `subject` that answers in time."""
        records = await find_records(self.transport, subject, timeout=self.timeout, dropped=self.dropped)
        others = [r for r in records if r.node != self.identity.public_key][:MAX_NODES]
        answers: list[tuple[VesselRecord, dict[str, Any]]] = []

        async def ask(record: VesselRecord) -> None:
            status = await self._status(record)
            if status is not None:
                answers.append((record, status))

        async with trio.open_nursery() as nursery:
            for record in others:
                nursery.start_soon(ask, record)
        return answers

    async def _status(self, record: VesselRecord) -> dict[str, Any] | None:
        with trio.move_on_after(self.timeout):
            for address in record.addresses:
                try:
                    host, port = split_ip_port(address)
                    async with await NodeClient.connect(host, port, node_key=record.node,
                                                        timeout=self.timeout) as node:
                        status = await node.call("GetPoolStatus")
                except (ValueError, NodeClientError, OSError) as exc:
                    self.dropped["unreachable"] += 1
                    log.debug("pool status of %s at %s: %s", record.node.fingerprint(), address, exc)
                    continue
                if isinstance(status, dict):
                    return status
                self.dropped["bad_status"] += 1
        return None
