"""The researcher's pool library without a network: filters, durations, ranking, slots and stored leases."""

from __future__ import annotations

import json
import os
import random
import time

import pytest

from seattle.errors import BadDuration, BadFilter, NoFreeSlots, NoOffers
from seattle.experiment import pool
from seattle.experiment.session import Session
from seattle.experiment.targets import VesselRef
from seattle.keys import Identity, generate_identity
from seattle.nodemgr.signing import sign_request
from seattle.pool.formats import Lease, Offer

NOW = time.time()
NODE = generate_identity("node")
RESEARCHER = generate_identity("researcher")


def offer(node: Identity = NODE, **overrides: object) -> Offer:
    fields: dict[str, object] = dict(size={"cpu": 0.02, "memory": 2_000_000}, free=3, total=5,
                                     reachability="public", uptime=7200.0, country="DE",
                                     addresses=["127.0.0.1:1224"], now=NOW)
    fields.update(overrides)
    return Offer.verify(Offer.sign(node, **fields), NOW)  # type: ignore[arg-type]


def lease(slot: int, expires: float, node: Identity = NODE) -> Lease:
    issued = expires - 3600
    request = sign_request(RESEARCHER, node.public_key, "AcquireVessel", {"slot": slot, "duration": 3600.0},
                           now=issued, nonce=os.urandom(16))
    raw = Lease.sign(node, vessel=f"p{slot}", lessee=RESEARCHER.public_key, slot=slot, issued=issued,
                     expires=expires, max_expiry=issued + 86400, request=request)
    return Lease.verify_signed(raw, node.public_key)


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("90m", 5400), ("4h", 14400),
                                               ("1.5d", 129600), (" 7d ", 604800)])
def test_durations(text: str, seconds: float) -> None:
    assert pool.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "8d", "4 hours", "-1h", "h"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(BadDuration, match="90m, 4h, 7d"):
        pool.parse_duration(text)


def test_filter_clauses_match_what_the_offer_says() -> None:
    de, fr_nat = offer(), offer(country="FR", reachability="nat", free=1, uptime=60.0)
    cases = {
        "": (True, True),
        "country=DE": (True, False),
        "country=de|fr": (True, True),
        "country!=DE": (False, True),
        "reachability=public": (True, False),
        "reach=nat": (False, True),
        "free>=2": (True, False),
        "uptime>=1h": (True, False),
        "uptime<90": (False, True),
        "size.cpu>=0.02, size.memory>1000000": (True, True),
        "size.disk>=1": (False, False),  # a resource the offer does not name never matches
        "country=DE,free>=3": (True, False),
    }
    for text, expected in cases.items():
        where = pool.parse_filter(text)
        assert (where.matches(de), where.matches(fr_nat)) == expected, text


@pytest.mark.parametrize(("text", "says"), [
    ("colour=red", "unknown field 'colour'"),
    ("country>DE", "compared with = or != only"),
    ("country=Germany", "two-letter country code"),
    ("free>=lots", "is not one"),
    ("free>=", "has no value"),
    ("free", "is not FIELD OP VALUE"),
    ("uptime>=1y", "is not one"),
    ("size.cpu>=nan", "not a finite number"),
])
def test_bad_filters_say_which_clause_and_how_to_write_one(text: str, says: str) -> None:
    with pytest.raises(BadFilter, match=says) as caught:
        pool.parse_filter(text)
    assert "country=DE|FR" in str(caught.value)  # the grammar's example


def test_rank_puts_public_roomy_long_lived_nodes_first_and_drops_full_ones() -> None:
    nodes = [generate_identity(f"n{i}") for i in range(4)]
    offers = [offer(nodes[0], reachability="nat"), offer(nodes[1], free=0), offer(nodes[2], free=1),
              offer(nodes[3])]
    ranked = pool.rank(pool.reachable_directly(offers), random.Random(1))
    assert [each.offer.node for each in ranked] == [nodes[3].public_key, nodes[2].public_key, nodes[0].public_key]


def test_acquire_refuses_at_once_when_no_offer_matches_or_no_slot_is_free() -> None:
    import trio

    session = Session()
    one, full = pool.reachable_directly([offer()]), pool.reachable_directly([offer(free=0)])
    with pytest.raises(NoOffers, match="no pool offer matches 'country=JP': 1 offers"):
        trio.run(lambda: pool.acquire(session, RESEARCHER, one, 1, where=pool.parse_filter("country=JP")))
    with pytest.raises(NoOffers, match="pool empty"):
        trio.run(lambda: pool.acquire(session, RESEARCHER, full, 1))
    with pytest.raises(NoFreeSlots, match="quota 3/3"):
        trio.run(lambda: pool.acquire(session, RESEARCHER, one, 1, quota=3, held_elsewhere=[0, 1, 2]))


def test_stored_leases_survive_the_session_file_and_ended_ones_are_forgotten() -> None:
    session = Session()
    live, ended = lease(4, NOW + 3600), lease(7, NOW - 3600)
    for index, each in enumerate((live, ended)):
        number = session.targets.add_vessel(VesselRef("127.0.0.1", 1224, f"p{index}"))
        session.targets.vessels[number].lease = pool.StoredLease.of(each).to_json()
    session.targets.set_group("acquiregood", [1, 2])
    again = Session.from_json(json.loads(json.dumps(session.to_json())))
    assert pool.stored_lease(again, 1) == pool.StoredLease.of(live)
    assert pool.held_slots(again, NOW) == {4: 1}
    assert pool.forget_ended(again, NOW) == [2]
    assert again.targets.resolve("acquiregood") == [1]
    again.targets.vessels[1].lease = {"slot": "x"}  # a damaged entry holds no lease
    assert pool.stored_lease(again, 1) is None
