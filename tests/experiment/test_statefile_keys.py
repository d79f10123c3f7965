"""`loadstate` installs a key with the passphrase protection it had when it was saved (issue 13).

Before, savestate decrypted the identity (asking its passphrase) and stored its bare seed; loadstate then wrote
the private key file with `protection: none`, so a passphrase-protected key came back readable by anyone who
could read the key directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from seattle.errors import CorruptKeyFile, IdentityExists, PassphraseRequired
from seattle.experiment.session import Session
from seattle.experiment.statefile import install_identities, load_state, save_state
from seattle.keys import (
    PassphraseCost,
    export_private_key,
    generate_identity,
    is_protected,
    load_identity,
    save_identity,
)
from tests.cli_runner import ok

CHEAP = {"opslimit": 1, "memlimit": 8192}


def test_a_protected_key_is_loaded_still_protected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = generate_identity("alice")
    save_identity(alice, passphrase="key phrase", cost=PassphraseCost.minimum())
    session = Session()
    session.set_identity("alice")
    save_state(tmp_path / "state", "state phrase", session, ["alice"], **CHEAP)
    assert b"protection" not in (tmp_path / "state").read_bytes()  # encrypted as a whole, too

    monkeypatch.setenv("SEATTLE_HOME", str(tmp_path / "elsewhere"))
    state = load_state(tmp_path / "state", "state phrase")
    assert install_identities(state.keys) == ["alice"]
    assert is_protected("alice")
    with pytest.raises(PassphraseRequired):
        load_identity("alice")
    assert load_identity("alice", passphrase="key phrase").public_key == alice.public_key
    key_file = tmp_path / "elsewhere" / "keys" / "alice.privatekey"
    assert key_file.stat().st_mode & 0o077 == 0 and "protection: argon2id" in key_file.read_text()


def test_savestate_and_loadstate_keep_the_protection_through_the_cli(tmp_path: Path) -> None:
    save_identity(generate_identity("alice"), passphrase="key phrase", cost=PassphraseCost.minimum())
    ok("as", "alice")
    phrase = tmp_path / "phrase"
    phrase.write_text("state phrase\n")
    ok("savestate", str(tmp_path / "state"), "--passphrase-file", str(phrase))  # no key passphrase asked
    loaded = ok("loadstate", str(tmp_path / "state"), "--passphrase-file", str(phrase),
                env={"SEATTLE_HOME": str(tmp_path / "elsewhere")})
    assert "added identity alice (protected by its passphrase" in loaded
    assert "protection: argon2id" in (tmp_path / "elsewhere" / "keys" / "alice.privatekey").read_text()


def test_a_damaged_or_conflicting_key_installs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = generate_identity("alice"), generate_identity("bob")
    save_identity(alice)
    save_identity(bob)
    texts = {"bob": export_private_key("bob"), "alice": export_private_key("alice")}
    monkeypatch.setenv("SEATTLE_HOME", str(tmp_path / "elsewhere"))
    save_identity(generate_identity("alice"))  # another key under the same name
    with pytest.raises(IdentityExists):
        install_identities(texts)
    with pytest.raises(CorruptKeyFile):
        install_identities({"bob": texts["bob"].replace("public: ed25519:", "public: ed25519:A")})
    with pytest.raises(CorruptKeyFile):
        install_identities({"bob": texts["alice"].replace(str(alice.public_key), str(bob.public_key))})
    assert not (tmp_path / "elsewhere" / "keys" / "bob.privatekey").exists()
