"""What a node's pool looks up in the overlay per call: the slot's key always; the key's credit only for a slot
at or beyond BASE_QUOTA, then from the cache for a while; a renewal's credit afresh, and only when it counts.
Evidence another node shows through the directory refuses the key. The directory here records what it is
asked and answers what a test sets (the `PoolDirectory` protocol is the pool's seam to the overlay); the node
state, ledger and signed objects are real."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from seattle.keys import Identity, PublicKey, generate_identity
from seattle.nodemgr.nodedir import NodeDir
from seattle.nodemgr.pool import Findings, NodePool
from seattle.nodemgr.signing import sign_request
from seattle.nodemgr.vessels import NodeState
from seattle.pool import refusals
from seattle.pool.formats import DONATION_MIN_UPTIME, Attestation, Evidence, Lease
from tests.nodemgr.test_pool_node import make_node


class Recorded:
    """A PoolDirectory that notes every lookup and finds what the test put in."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, PublicKey, int | None]] = []
        self.credit_found = Findings()
        self.slot_found = Findings()

    async def slot(self, lessee: PublicKey, slot: int) -> Findings:
        self.asked.append(("slot", lessee, slot))
        return self.slot_found

    async def credit(self, beneficiary: PublicKey) -> Findings:
        self.asked.append(("credit", beneficiary, None))
        return self.credit_found


def request(key: Identity, node: PublicKey, slot: int) -> bytes:
    return sign_request(key, node, "AcquireVessel", [slot, 600.0], now=time.time(), nonce=os.urandom(16))


def donor_credit(researcher: PublicKey) -> Attestation:
    now = time.time()
    return Attestation.verify(Attestation.sign(generate_identity("donor"), beneficiary=researcher,
                                               up_since=now - DONATION_MIN_UPTIME - 60, now=now), now)


async def test_credit_is_looked_up_only_beyond_the_base_quota_and_cached(tmp_path: Path) -> None:
    identity = make_node(tmp_path)
    directory = Recorded()
    researcher = generate_identity("researcher")
    me = researcher.public_key
    directory.credit_found = Findings(attestations=[donor_credit(me)])
    with NodeState.open(tmp_path) as state:
        pool = NodePool(identity, state, NodeDir(tmp_path), directory=directory)
        node = identity.public_key
        await pool.acquire(me, 3, 600.0, request(researcher, node, 3), None)
        assert directory.asked == [("slot", me, 3)]
        lease = await pool.acquire(me, 12, 600.0, request(researcher, node, 12), None)
        assert sorted(directory.asked[1:], key=str) == [("credit", me, None), ("slot", me, 12)]  # both at once
        directory.asked.clear()
        with pytest.raises(refusals.LeaseRefused) as refused:
            await pool.acquire(me, 14, 600.0, request(researcher, node, 14), None)
        assert refused.value.code == refusals.KEY_CAP  # past the quota check: slot 14 < 20, from the cache
        assert directory.asked == [("slot", me, 14)]
        directory.asked.clear()
        directory.credit_found = Findings()  # the donor stopped: a renewal looks afresh and sees it
        with pytest.raises(refusals.LeaseRefused) as refused:
            await pool.renew(me, lease.vessel, 600.0)
        assert refused.value.code == refusals.QUOTA
        assert directory.asked == [("credit", me, None)]


async def test_evidence_shown_through_the_directory_refuses_the_key_and_is_then_served(tmp_path: Path) -> None:
    identity = make_node(tmp_path)
    directory = Recorded()
    cheat = generate_identity("cheat")
    first, second = generate_identity("a"), generate_identity("b")
    now = time.time()
    leases = [Lease.verify_signed(Lease.sign(node, vessel="v9", lessee=cheat.public_key, slot=0, issued=now,
                                             expires=now + 600, max_expiry=now + 600,
                                             request=request(cheat, node.public_key, 0)), None)
              for node in (first, second)]
    evidence = Evidence.of(*leases)
    assert evidence is not None
    directory.slot_found = Findings(evidence=[evidence])
    with NodeState.open(tmp_path) as state:
        pool = NodePool(identity, state, NodeDir(tmp_path), directory=directory)
        version = pool.version
        with pytest.raises(refusals.LeaseRefused) as refused:
            await pool.acquire(cheat.public_key, 5, 600.0, request(cheat, identity.public_key, 5), None)
        assert refused.value.code == refusals.KEY_BANNED
        assert pool.version > version and pool.status(None)["evidence"] == [list(evidence.raw)]
        assert pool.ledger.filed_evidence(time.time()) == []  # learnt here, not found: served, not filed
        assert pool.ledger.refusal_for(cheat.public_key, time.time()) is not None
