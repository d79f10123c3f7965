"""The pool's directory over the overlay: who holds a key's slot, who donates for a key.

    directory = OverlayDirectory(transport, identity)
    found = await directory.slot(researcher, 3)      # .leases: verified leases of slot 3 at other nodes
    credit = await directory.credit(researcher)      # .attestations: verified attestations naming the researcher
    found.evidence, credit.evidence                  # verified evidence against the researcher, from either

Records in the overlay only say where to ask: a node files an ordinary signed vessel record under
`slot_key(R, s)` while it leases slot s of R, under `credit_key(B)` while it donates for B, and under
`evidence_subjects(R)` while it holds evidence it found against R (the advertiser does it, `NodePool.subjects`).
This module looks those records up, asks each node they name for its pool status (a public call), and keeps
only what verifies: a lease signed by that node for that key and slot, embedding a request the key signed; an
attestation signed by that node for that key; evidence against that key (two leases of one of its slots, each
signed by its node and embedding the key's signed request for that slot, by two nodes, overlapping in time),
whoever signed the leases, still live. A node that does not answer, or answers with anything else, counts for
nothing (a claim nobody can show is no claim), and what was refused is counted in `dropped`. At most MAX_NODES
nodes are asked per lookup, all at once, each within `timeout`, and at most MAX_SERVED_EVIDENCE evidence items
of each answer are looked at: items not about the key are skipped before any signature is checked.
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
from seattle.nodemgr.pool import Findings
from seattle.overlay.records import VesselRecord
from seattle.overlay.transport import OverlayTransport
from seattle.pool.formats import Attestation, Evidence, Lease, PoolRejected, credit_key, slot_key
from seattle.pool.ledger import MAX_SERVED_EVIDENCE

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

    async def slot(self, lessee: PublicKey, slot: int) -> Findings:
        found = Findings()
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
                    found.leases.append(lease)
            found.evidence += evidence_in(status, lessee, now, self.dropped)
        return found

    async def credit(self, beneficiary: PublicKey) -> Findings:
        found = Findings()
        now = time.time()
        for record, status in await self._statuses(credit_key(beneficiary)):
            found.evidence += evidence_in(status, beneficiary, now, self.dropped)
            try:
                attestation = Attestation.verify(status.get("attestation"), now)
            except PoolRejected as exc:
                self.dropped[f"attestation_{exc.code}"] += 1
                continue
            if attestation.node == record.node and attestation.beneficiary == beneficiary:
                found.attestations.append(attestation)
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


def evidence_in(status: dict[str, Any], lessee: PublicKey, now: float, dropped: Counter[str]) -> list[Evidence]:
    """The live evidence against `lessee` in a node's status answer, verified in full (module docstring);
    what does not verify is counted into `dropped`, never raised."""
    served = status.get("evidence")
    if served is None:
        return []
    if not isinstance(served, list):
        dropped["evidence_malformed"] += 1
        return []
    found = []
    for item in served[:MAX_SERVED_EVIDENCE]:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(raw, bytes) for raw in item)):
            dropped["evidence_malformed"] += 1
            continue
        if not all(lessee.raw in raw for raw in item):
            continue  # about another key: not this lookup's business, and not worth four signature checks
        try:
            evidence = Evidence.verify(*item)
        except PoolRejected as exc:
            dropped[f"evidence_{exc.code}"] += 1
            continue
        if evidence.lessee != lessee:
            continue
        if evidence.until <= now:
            dropped["evidence_ended"] += 1
            continue
        found.append(evidence)
    return found
