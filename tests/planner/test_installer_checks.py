"""The installer carries its payload's digests and its planner's fingerprint, and checks both first (issue 13).

`seattle installer build` writes `<installer>.sha256` for the planner to publish; the installer refuses to run
when a member does not match the digests it carries, and installs nothing unless the donor pins (--planner) or
confirms the planner that signed its profile. Before, an altered installer ran as it was, for any signer.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seattle.keys import PublicKey, generate_identity
from seattle.planner.installer import (
    MAIN_MEMBER,
    PAYLOAD_MEMBER,
    PROFILE_MEMBER,
    build_installer,
    digest_path,
    fingerprint,
    pin_matches,
    profile_signer,
)
from seattle.planner.profile import VesselPlan, make_profile, write_profile


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PublicKey]:
    where = tmp_path_factory.mktemp("installer")
    planner = generate_identity("planner")
    write_profile(where / "site.profile", [VesselPlan(100, planner.public_key)], [], planner)
    return build_installer(where / "installer.pyz", where / "site.profile"), planner.public_key


def test_build_writes_the_installers_sha256_beside_it(built: tuple[Path, PublicKey]) -> None:
    installer, _ = built
    digest = hashlib.sha256(installer.read_bytes()).hexdigest()
    assert digest_path(installer).read_text() == f"{digest}  installer.pyz\n"  # `sha256sum -c` reads this
    with zipfile.ZipFile(installer) as archive:
        listed = archive.read(PAYLOAD_MEMBER).decode().splitlines()
        members = {name: archive.read(name) for name in archive.namelist() if name != PAYLOAD_MEMBER}
    assert sorted(listed) == sorted(f"{hashlib.sha256(data).hexdigest()}  {name}" for name, data in members.items())
    assert {MAIN_MEMBER, PROFILE_MEMBER} < set(members)


def _run(installer: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(installer), "--dir", str(installer.parent / "donor"), *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_an_unpinned_or_wrongly_pinned_planner_installs_nothing(built: tuple[Path, PublicKey]) -> None:
    installer, planner = built
    unpinned = _run(installer)
    assert unpinned.returncode == 2
    assert f"run this installer again with --planner {planner.fingerprint()}" in unpinned.stderr
    assert hashlib.sha256(installer.read_bytes()).hexdigest() in unpinned.stdout
    wrong = _run(installer, "--planner", generate_identity("other").public_key.fingerprint())
    assert wrong.returncode == 2 and "not by the planner you pinned" in wrong.stderr
    assert not (installer.parent / "donor").exists()


@pytest.mark.slow
@pytest.mark.parametrize("member", [PROFILE_MEMBER, MAIN_MEMBER, "extra.py", PAYLOAD_MEMBER])
def test_an_altered_installer_runs_nothing(built: tuple[Path, PublicKey], tmp_path: Path, member: str) -> None:
    installer, planner = built
    altered = tmp_path / "installer.pyz"
    with zipfile.ZipFile(installer) as source, zipfile.ZipFile(altered, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == member:
                data = data + b"\n# changed\n" if name == MAIN_MEMBER else data[:-1] + bytes([data[-1] ^ 1])
            target.writestr(name, data)
        if member == "extra.py":
            target.writestr(member, b"print('planted')")
    done = _run(altered, "--planner", planner.fingerprint())
    assert done.returncode == 2 and "damaged or was altered" in done.stderr, done.stdout + done.stderr
    assert not (tmp_path / "donor").exists()


@given(st.binary(min_size=32, max_size=32))
def test_the_installers_fingerprint_is_seattles(raw: bytes) -> None:
    key = PublicKey(raw)
    assert fingerprint(raw) == key.fingerprint()
    assert pin_matches(raw, key.fingerprint()) and pin_matches(raw, key.to_text())
    assert pin_matches(raw, key.fingerprint().upper())
    assert not pin_matches(raw, "ed25519:" + "A" * 43) or raw == bytes(32)


def test_the_installer_reads_the_profiles_signer() -> None:
    planner = generate_identity("planner")
    profile = make_profile([VesselPlan(100, planner.public_key)], [], planner)
    assert profile_signer(profile) == planner.public_key.raw
    with pytest.raises(ValueError):
        profile_signer(b"\0" * 200)
