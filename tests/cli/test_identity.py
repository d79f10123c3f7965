"""`seattle keygen` through the command line (in process), in the SEATTLE_HOME each test gets."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from seattle.keys import load_identity
from tests.cli_runner import seattle


def test_keygen_writes_a_private_key_only_its_owner_can_read() -> None:
    result = seattle("keygen", "alice")
    assert result.returncode == 0, result.stderr
    keys = Path(os.environ["SEATTLE_HOME"]) / "keys"
    private = keys / "alice.privatekey"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    identity = load_identity("alice")
    assert identity.public_key.to_text() in result.stdout
    assert identity.public_key.fingerprint() in result.stdout


def test_keygen_refuses_to_replace_an_identity() -> None:
    assert seattle("keygen", "bob").returncode == 0
    before = load_identity("bob").public_key
    result = seattle("keygen", "bob")
    assert result.returncode != 0
    assert "already exists" in result.stderr
    assert load_identity("bob").public_key == before


def test_keygen_refuses_a_bad_name() -> None:
    result = seattle("keygen", "../evil")
    assert result.returncode != 0
    assert "../evil" in result.stderr
    assert not list((Path(os.environ["SEATTLE_HOME"]) / "keys").glob("*.privatekey"))
