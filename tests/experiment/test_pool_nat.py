"""Pool offers from donors behind NATs, without a network: an offer may name no address; a record naming only
relays makes the node reachable by its relayed name through them; the asks and the session carry the relays so
later commands reach the vessel the same way."""

from __future__ import annotations

import os
import random
import time

import pytest

from seattle.envelope import seal
from seattle.experiment import pool
from seattle.experiment.operations import node_relays
from seattle.experiment.session import Session
from seattle.keys import Identity, generate_identity
from seattle.nodemgr.relay_client import RelayAddress
from seattle.nodemgr.routes import RELAYED_PORT, relayed_name
from seattle.nodemgr.signing import sign_request
from seattle.overlay import records
from seattle.pool.formats import OFFER_CONTEXT, Lease, Offer, PoolRejected, offer_key
from seattle.vouchers import sign_voucher

NOW = time.time()
RELAY = generate_identity("relay")
RESEARCHER = generate_identity("researcher")


def offer(node: Identity, reachability: str = "nat", addresses: tuple[str, ...] = ()) -> Offer:
    raw = Offer.sign(node, size={"cpu": 0.02}, free=2, total=2, reachability=reachability, uptime=60.0,
                     country="", addresses=addresses, now=NOW)
    return Offer.verify(raw, NOW)


def relayed(node: Identity) -> pool.Reachable:
    return pool.Reachable(offer(node), relayed_name(node.public_key), RELAYED_PORT,
                          (RelayAddress("198.18.0.10", 1224, RELAY.public_key),))


def test_an_offer_with_no_address_signs_and_verifies_and_nine_are_refused() -> None:
    node = generate_identity("node")
    assert offer(node).addresses == ()
    fields = {"size": {"cpu": 0.02}, "free": 1, "total": 1, "reach": "nat", "uptime": 1.0, "country": "",
              "addrs": [f"192.0.2.{i}:1224" for i in range(9)], "iat": NOW, "exp": NOW + 60}
    with pytest.raises(PoolRejected) as refused:
        Offer.verify(seal(node, OFFER_CONTEXT, fields), NOW)
    assert refused.value.code == "malformed"


def test_a_record_with_only_relays_routes_by_relayed_name_and_one_with_an_address_directly() -> None:
    node = generate_identity("node")
    voucher = sign_voucher(RELAY, node.public_key, int(NOW) + 3600)
    only_relays = records.verify(records.sign(node, offer_key(0), [], sequence=1, now=NOW,
                                              relays=[("198.18.0.10:1224", voucher)]), NOW)
    route = pool._route(only_relays)
    assert route == ((relayed_name(node.public_key), RELAYED_PORT),
                     (RelayAddress("198.18.0.10", 1224, RELAY.public_key),))
    direct = records.verify(records.sign(node, offer_key(0), ["192.0.2.7:1224"], sequence=2, now=NOW), NOW)
    assert pool._route(direct) == (("192.0.2.7", 1224), ())


def test_public_offers_rank_first_and_nat_ones_are_asked_through_their_relays() -> None:
    natted = [generate_identity(f"nat{i}") for i in range(2)]
    public = generate_identity("public")
    candidates = [relayed(node) for node in natted]
    candidates += pool.reachable_directly([offer(public, "public", ("192.0.2.9:1224",))])
    assert pool.reachable_directly([offer(natted[0])]) == []  # no address of its own: only relays reach it
    ranked = pool.rank(candidates, random.Random(3))
    assert ranked[0].offer.node == public.public_key
    plan = pool.Plan(ranked, range(10), 2)  # asks n + 1 = 3: each node once
    asks = plan.next_round()
    assert [ask.offer.node for ask in asks] == [each.offer.node for each in ranked]
    assert pool._relays(asks) == {(each.host, RELAYED_PORT): each.relays for each in candidates[:2]}
    assert pool._keys(asks)[(relayed_name(natted[1].public_key), RELAYED_PORT)] == natted[1].public_key
    # Asked for NATed nodes only, the filter leaves the public one out.
    wanted = pool.parse_filter("reachability=nat")
    assert {each.offer.node for each in candidates if wanted.matches(each.offer)} == {n.public_key for n in natted}


def test_a_vessel_leased_from_a_natted_node_is_remembered_with_its_relays() -> None:
    node = generate_identity("node")
    to = relayed(node)
    request = sign_request(RESEARCHER, node.public_key, "AcquireVessel", {"slot": 0, "duration": 600.0}, now=NOW,
                           nonce=os.urandom(16))
    lease = Lease.verify(Lease.sign(node, vessel="v3", lessee=RESEARCHER.public_key, slot=0, issued=NOW,
                                    expires=NOW + 600, max_expiry=NOW + 86400, request=request),
                         node.public_key, NOW)
    session, result = Session(), pool.AcquireResult(1)
    attempt = pool.Attempt(node.public_key, f"{to.host}:0", 0, "ok", vessel="v3", expires=lease.expires)
    number = pool._remember(session, attempt, lease, pool.Ask(to, 0), result)
    known = session.targets.vessels[number]
    assert (known.ref.host, known.ref.port, known.ref.vessel) == (to.host, RELAYED_PORT, "v3")
    assert known.relays == (("198.18.0.10:1224", RELAY.public_key.to_text()),)
    # What run/renew/release dial: the relayed name through that relay.
    assert node_relays(session, [number]) == {(to.host, RELAYED_PORT): list(to.relays)}
    assert pool.stored_lease(session, number) == pool.StoredLease.of(lease)
