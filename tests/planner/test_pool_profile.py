"""A profile's pool share: signed with the vessels, counted toward the 100 %, checked on both sides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seattle.envelope import seal
from seattle.errors import BadProfile
from seattle.keys import generate_identity
from seattle.planner.profile import CONTEXT, PoolShare, VesselPlan, read_profile, write_profile

PLANNER = generate_identity("planner")
ALICE = generate_identity("alice").public_key


def test_a_pool_share_round_trips(tmp_path: Path) -> None:
    written = write_profile(tmp_path / "p", [VesselPlan(70, ALICE)], [], PLANNER, PoolShare(30))
    assert read_profile(tmp_path / "p") == written
    assert written.pool == PoolShare(30, 2) and written.pool.count == 15


@pytest.mark.parametrize(("vessels", "pool", "words"), [
    ([VesselPlan(80, ALICE)], PoolShare(30), "80 + 30 (pool) = 110"),
    ([VesselPlan(90, ALICE)], PoolShare(10, 20), "does not fit"),
    ([VesselPlan(100, ALICE)], PoolShare(0), "from 1 to 99"),
    ([VesselPlan(1, ALICE)], PoolShare(99, 0), "from 1 to 99"),
])
def test_bad_pool_shares_are_refused(tmp_path: Path, vessels: list[VesselPlan], pool: PoolShare, words: str
                                     ) -> None:
    with pytest.raises(BadProfile, match=re.escape(words)):
        write_profile(tmp_path / "p", vessels, [], PLANNER, pool)


def test_a_hand_made_pool_meets_the_same_checks(tmp_path: Path) -> None:
    path = tmp_path / "p"
    vessels = [{"percent": 90, "owner": ALICE.raw, "users": []}]
    path.write_bytes(seal(PLANNER, CONTEXT, {"vessels": vessels, "bootstrap": [], "pool": {"percent": 10}}))
    with pytest.raises(BadProfile, match="map of percent and vessel_percent"):
        read_profile(path)
    path.write_bytes(seal(PLANNER, CONTEXT, {"vessels": vessels, "bootstrap": [],
                                             "pool": {"percent": 10, "vessel_percent": 11}}))
    with pytest.raises(BadProfile, match="does not fit"):
        read_profile(path)
