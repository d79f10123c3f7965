"""Installer profiles: what a planner signs, and every way a profile file is refused."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from seattle.envelope import seal
from seattle.errors import BadProfile
from seattle.keys import generate_identity
from seattle.planner.profile import (
    CONTEXT,
    MAX_PROFILE_BYTES,
    MAX_USERS,
    MAX_VESSELS,
    Profile,
    VesselPlan,
    make_profile,
    read_profile,
    write_profile,
)

PLANNER = generate_identity("planner")
ALICE = generate_identity("alice").public_key
BOB = generate_identity("bob").public_key
CAROL = generate_identity("carol").public_key


def test_round_trip_keeps_order_owners_users_bootstrap_and_signer(tmp_path: Path) -> None:
    plans = [VesselPlan(60, ALICE), VesselPlan(30, BOB, (CAROL, ALICE)), VesselPlan(10, CAROL)]
    written = write_profile(tmp_path / "p", plans, ["127.0.0.1:1224", "[::1]:2000"], PLANNER)
    read = read_profile(tmp_path / "p")
    assert read == written == Profile(tuple(plans), ("127.0.0.1:1224", "[::1]:2000"), PLANNER.public_key)


def test_empty_bootstrap_is_allowed(tmp_path: Path) -> None:
    assert write_profile(tmp_path / "p", [VesselPlan(100, ALICE)], [], PLANNER).bootstrap == ()


@pytest.mark.parametrize(("plans", "bootstrap", "words"), [
    ([], [], "no vessels"),
    ([VesselPlan(50, ALICE)], [], "total exactly 100, but 50 = 50"),
    ([VesselPlan(60, ALICE), VesselPlan(60, BOB)], [], "60 + 60 = 120"),
    ([VesselPlan(0, ALICE), VesselPlan(100, BOB)], [], "vessel 1: the percent must be a whole number"),
    ([VesselPlan(101, ALICE)], [], "from 1 to 100"),
    ([VesselPlan(50.0, ALICE), VesselPlan(50, BOB)], [], "vessel 1"),  # type: ignore[arg-type]
    ([VesselPlan(True, ALICE)], [], "vessel 1"),  # type: ignore[arg-type]
    ([VesselPlan(100, "alice")], [], "owner must be a public key"),  # type: ignore[arg-type]
    ([VesselPlan(100, ALICE, [BOB])], [], "users must be a tuple"),  # type: ignore[arg-type]
    ([VesselPlan(100, ALICE, (BOB, BOB))], [], "listed twice"),
    ([VesselPlan(100, ALICE, (BOB,) * (MAX_USERS + 1))], [], "limit"),
    ([VesselPlan(1, ALICE)] * (MAX_VESSELS + 1), [], "limit"),
    ([VesselPlan(100, ALICE)], ["example.org:1224"], "not an IP address"),
    ([VesselPlan(100, ALICE)], ["127.0.0.1"], "HOST:PORT"),
    ([VesselPlan(100, ALICE)], ["127.0.0.1:0"], "from 1 to 65535"),
    ([VesselPlan(100, ALICE)], ["127.0.0.1:1", "127.0.0.1:1"], "listed twice"),
    ([VesselPlan(100, ALICE)], [f"127.0.0.1:{p}" for p in range(1, 18)], "limit"),
])
def test_make_profile_refuses(plans: list[VesselPlan], bootstrap: list[str], words: str) -> None:
    with pytest.raises(BadProfile) as error:
        make_profile(plans, bootstrap, PLANNER)
    assert words in str(error.value)


def _raw(fields: dict[str, object], tmp_path: Path) -> Path:
    path = tmp_path / "hand-made"
    path.write_bytes(seal(PLANNER, CONTEXT, fields))
    return path


def test_a_hand_made_file_meets_the_same_checks(tmp_path: Path) -> None:
    vessels = [{"percent": 70, "owner": ALICE.raw, "users": []}]
    with pytest.raises(BadProfile, match="70 = 70"):
        read_profile(_raw({"vessels": vessels, "bootstrap": [], "pool": None}, tmp_path))
    with pytest.raises(BadProfile, match="a key must be 32 bytes"):
        read_profile(_raw({"vessels": [{"percent": 100, "owner": b"x" * 31, "users": []}], "bootstrap": [],
                           "pool": None}, tmp_path))
    with pytest.raises(BadProfile, match="map of percent, owner and users"):
        read_profile(_raw({"vessels": [{"percent": 100, "owner": ALICE.raw}], "bootstrap": [], "pool": None}, tmp_path))
    with pytest.raises(BadProfile, match="map of"):
        read_profile(_raw({"vessels": [], "bootstrap": [], "extra": 1}, tmp_path))
    with pytest.raises(BadProfile, match="HOST:PORT texts"):
        read_profile(_raw({"vessels": [{"percent": 100, "owner": ALICE.raw, "users": []}], "bootstrap": [1],
                           "pool": None}, tmp_path))


def test_a_changed_byte_breaks_the_signature(tmp_path: Path) -> None:
    path = tmp_path / "p"
    write_profile(path, [VesselPlan(60, ALICE), VesselPlan(40, BOB)], [], PLANNER)
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(BadProfile, match="signature does not match"):
        read_profile(path)


def test_a_signature_made_for_another_purpose_or_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p"
    path.write_bytes(seal(PLANNER, b"seattle/advertise/record/v1\0", {"vessels": [], "bootstrap": []}))
    with pytest.raises(BadProfile, match="signature does not match"):
        read_profile(path)
    path.write_bytes(seal(PLANNER, b"seattle/planner/profile/v2\0", {"vessels": [], "bootstrap": []}))
    with pytest.raises(BadProfile, match="not a seattle installer profile"):
        read_profile(path)


def test_oversized_garbage_and_missing_files_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"\0" * (MAX_PROFILE_BYTES + 1))
    with pytest.raises(BadProfile, match="larger than the limit"):
        read_profile(big)
    junk = tmp_path / "junk"
    junk.write_bytes(msgpack.packb({"vessels": []}))
    with pytest.raises(BadProfile, match="signed profile is bytes"):
        read_profile(junk)
    with pytest.raises(BadProfile, match="cannot be read"):
        read_profile(tmp_path / "absent")
