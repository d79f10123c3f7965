"""`seattle node init --profile` accepts a profile only from the planner the donor pins or confirms (issue 13).

Before, any validly signed profile was accepted whoever signed it: a forged installer (or a profile swapped on the
way) handed the donation's vessels to the forger's keys without the donor ever seeing who signed it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seattle.donor.donation import fallback_machine, init_node_from_profile
from seattle.errors import BadPlannerPin, UntrustedPlanner
from seattle.keys import PublicKey, add_name, generate_identity, save_identity
from seattle.planner.profile import VesselPlan, check_planner, planner_key, read_profile, write_profile
from tests.cli_runner import seattle


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    planner = generate_identity("planner")
    save_identity(planner)
    path = tmp_path / "site.profile"
    write_profile(path, [VesselPlan(100, planner.public_key)], [], planner)
    return path


def _init(tmp_path: Path, profile: Path, *extra: str, stdin: str | None = None) -> tuple[int, str, str]:
    done = seattle("node", "init", "--dir", str(tmp_path / "node"), "--profile", str(profile), "--port", "0",
                   "--ports", "47300-47309", *extra, stdin=stdin)
    return done.returncode, done.stdout, done.stderr


def test_without_a_pin_and_without_a_terminal_the_profile_is_refused(tmp_path: Path, profile: Path) -> None:
    fingerprint = read_profile(profile).planner.fingerprint()
    code, out, err = _init(tmp_path, profile)
    assert code == 2 and f"signed by planner {fingerprint}" in out
    assert f"pin it with --planner {fingerprint}" in err
    assert not (tmp_path / "node").exists()


def test_a_profile_from_another_planner_is_refused(tmp_path: Path, profile: Path) -> None:
    other = generate_identity("other").public_key
    for pin in (other.fingerprint(), other.to_text()):
        code, _, err = _init(tmp_path, profile, "--planner", pin)
        assert code == 2 and "not by the planner you pinned" in err and pin in err
    assert not (tmp_path / "node").exists()


@pytest.mark.parametrize("form", ["fingerprint", "upper", "key", "name"])
def test_the_pinned_planner_is_accepted_by_fingerprint_key_or_name(tmp_path: Path, profile: Path,
                                                                  form: str) -> None:
    key = read_profile(profile).planner
    pin = {"fingerprint": key.fingerprint(), "upper": key.fingerprint().upper(), "key": key.to_text(),
           "name": "planner"}[form]
    code, out, err = _init(tmp_path, profile, "--planner", pin)
    assert code == 0, err
    assert f"the profile is signed by planner {key.fingerprint()}" in out and "created node" in out


def test_a_donor_at_a_terminal_confirms_the_fingerprint(tmp_path: Path, profile: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("seattle.cli.donor.stdin_is_terminal", lambda: True)
    code, out, _ = _init(tmp_path, profile, stdin="n\n")
    assert code == 2 and "the fingerprint your planner gave you?" in out
    assert not (tmp_path / "node").exists()
    code, out, err = _init(tmp_path, profile, stdin="y\n")
    assert code == 0 and "created node" in out, err


def test_a_pin_that_names_nothing_is_refused(tmp_path: Path, profile: Path) -> None:
    code, _, err = _init(tmp_path, profile, "--planner", "no such planner")
    assert code == 2 and "is neither a 16-character key fingerprint" in err
    with pytest.raises(BadPlannerPin):
        planner_key("nobody")


def test_the_library_refuses_a_profile_signed_by_another_key(tmp_path: Path, profile: Path) -> None:
    loaded = read_profile(profile)
    stranger = generate_identity("stranger").public_key
    with pytest.raises(UntrustedPlanner):
        init_node_from_profile(tmp_path / "node", loaded, planner=stranger, machine=fallback_machine())
    assert not (tmp_path / "node").exists()
    add_name("friend", stranger)
    with pytest.raises(UntrustedPlanner):
        check_planner(loaded, "friend")


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_a_fingerprint_pin_matches_exactly_its_key(first: bytes, second: bytes) -> None:
    key, other = PublicKey(first), PublicKey(second)
    assert planner_key(key.fingerprint()) == key.fingerprint()
    assert planner_key(key.to_text()) == key
    assert (planner_key(other.fingerprint()) == key.fingerprint()) == (key.fingerprint() == other.fingerprint())
