"""Identities: key generation, printable forms, key files (modes, atomicity, passphrases), names."""

from __future__ import annotations

import base64
import os
import re
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import nacl.signing
import pytest

from seattle import keys
from seattle.errors import (
    BadKeyName,
    BadNamesFile,
    BadPassphrase,
    BadPublicKey,
    CorruptKeyFile,
    IdentityExists,
    IdentityNotFound,
    KeyFileTooOpen,
    NameTaken,
    PassphraseNotExpected,
    PassphraseRequired,
    UnknownName,
    WrongPassphrase,
)
from seattle.keys import (
    Identity,
    PassphraseCost,
    PublicKey,
    add_name,
    generate_identity,
    is_protected,
    list_identities,
    load_identity,
    read_names,
    read_public_key,
    remove_name,
    resolve,
    save_identity,
)

FAST = PassphraseCost.minimum()


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- keys and their printable forms -----------------------------------------------------------------------


def test_fingerprint_is_16_base32_characters_and_differs_between_keys() -> None:
    first, second = generate_identity("a").public_key, generate_identity("b").public_key
    assert re.fullmatch(r"[a-z2-7]{16}", first.fingerprint())
    assert first.fingerprint() == PublicKey(first.raw).fingerprint()
    assert first.fingerprint() != second.fingerprint()


def test_text_form_round_trips_and_is_prefixed() -> None:
    key = generate_identity("a").public_key
    text = key.to_text()
    assert text.startswith("ed25519:") and len(text) == len("ed25519:") + 43
    assert PublicKey.from_text(text) == key
    assert PublicKey.from_text(f"  {text}\n") == key
    assert str(key) == text and key.fingerprint() in repr(key)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("rsa:AAAA", "does not start with 'ed25519:'"),
        ("ed25519:abc$def", "base64url"),
        ("ed25519:" + "A" * 42, "exactly 32 bytes"),
        ("ed25519:" + "A" * 41, "exactly 32 bytes"),
        ("ed25519:", "exactly 32 bytes"),
    ],
)
def test_bad_key_text_names_the_problem(text: str, complaint: str) -> None:
    with pytest.raises(BadPublicKey, match=re.escape(complaint)):
        PublicKey.from_text(text)


def test_public_key_rejects_wrong_length_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        PublicKey(b"\x00" * 31)


def test_identity_signs_what_its_public_key_verifies() -> None:
    identity = generate_identity("alice")
    signed = identity.signing_key.sign(b"hello")
    assert nacl.signing.VerifyKey(identity.public_key.raw).verify(signed) == b"hello"
    assert identity.verify_key == nacl.signing.VerifyKey(identity.public_key.raw)
    assert bytes(identity.signing_key).hex() not in repr(identity)


@pytest.mark.parametrize("name", ["", "../evil", ".hidden", "has space", "ed25519:x", "a/b", "x" * 65, "é"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(BadKeyName, match="cannot be used as a key name"):
        generate_identity(name)


# --- key files --------------------------------------------------------------------------------------------


def test_save_and_load_round_trip_with_modes(tmp_path: Path) -> None:
    identity = generate_identity("alice")
    private_path = save_identity(identity, tmp_path)
    assert private_path == tmp_path / "alice.privatekey"
    assert mode_of(private_path) == 0o600
    assert mode_of(tmp_path / "alice.publickey") == 0o644
    assert read_public_key(tmp_path / "alice.publickey") == identity.public_key
    loaded = load_identity("alice", tmp_path)
    assert loaded.name == "alice"
    assert bytes(loaded.signing_key) == bytes(identity.signing_key)
    assert not is_protected("alice", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice.privatekey", "alice.publickey", "names"]


def test_default_directory_is_under_seattle_home_with_mode_0700() -> None:
    identity = generate_identity("bob")
    path = save_identity(identity)
    directory = Path(os.environ["SEATTLE_HOME"]) / "keys"
    assert path.parent == directory
    assert mode_of(directory) == 0o700
    assert load_identity("bob").public_key == identity.public_key
    assert resolve("bob") == identity.public_key
    assert list_identities() == ["bob"]


def test_modes_hold_even_under_a_permissive_or_strict_umask(tmp_path: Path) -> None:
    for umask, name in ((0o000, "open"), (0o077, "strict")):
        previous = os.umask(umask)
        try:
            save_identity(generate_identity(name), tmp_path)
        finally:
            os.umask(previous)
        assert mode_of(tmp_path / f"{name}.privatekey") == 0o600
        assert mode_of(tmp_path / f"{name}.publickey") == 0o644


def test_existing_identity_is_never_overwritten(tmp_path: Path) -> None:
    first = generate_identity("alice")
    save_identity(first, tmp_path)
    before = (tmp_path / "alice.privatekey").read_bytes()
    with pytest.raises(IdentityExists, match="already exists"):
        save_identity(generate_identity("alice"), tmp_path)
    assert (tmp_path / "alice.privatekey").read_bytes() == before
    assert load_identity("alice", tmp_path).public_key == first.public_key
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_concurrent_saves_of_one_name_create_exactly_one_identity(tmp_path: Path) -> None:
    """link() makes creation atomic: of eight racing writers, one wins and the others are told."""
    outcomes: list[str] = []
    candidates = [generate_identity("race") for _ in range(8)]
    barrier = threading.Barrier(len(candidates))

    def attempt(identity: Identity) -> None:
        barrier.wait()
        try:
            save_identity(identity, tmp_path)
            outcomes.append("saved")
        except (IdentityExists, NameTaken):
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(identity,)) for identity in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["saved"]
    loaded = load_identity("race", tmp_path)
    assert loaded.public_key in {identity.public_key for identity in candidates}
    assert resolve("race", tmp_path) == loaded.public_key


def test_missing_identity_lists_the_known_ones(tmp_path: Path) -> None:
    save_identity(generate_identity("alice"), tmp_path)
    with pytest.raises(IdentityNotFound, match=r"no identity named 'carol'.*alice"):
        load_identity("carol", tmp_path)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o666])
def test_private_key_readable_by_others_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    path = save_identity(generate_identity("alice"), tmp_path)
    path.chmod(mode)
    with pytest.raises(KeyFileTooOpen, match=re.escape(f"chmod 600 {path}")) as caught:
        load_identity("alice", tmp_path)
    assert f"{mode:04o}" in str(caught.value)
    path.chmod(0o600)
    assert load_identity("alice", tmp_path).name == "alice"


@pytest.mark.parametrize("make", [lambda path: path.mkdir(mode=0o700), lambda path: os.mkfifo(path, 0o600)])
def test_private_key_that_is_not_a_regular_file_is_refused(
    tmp_path: Path, make: Callable[[Path], None]
) -> None:
    """A directory or a FIFO under the key's name is reported, and opening the FIFO does not hang."""
    make(tmp_path / "alice.privatekey")
    with pytest.raises(CorruptKeyFile, match="not a regular file"):
        load_identity("alice", tmp_path)


def _rewrite(path: Path, change: Callable[[str], str]) -> None:
    path.write_text(change(path.read_text()))


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda text: "", "format is None"),
        (lambda text: "\x00\xff garbage", "not ASCII"),
        (lambda text: text.replace("seattle-identity-v1", "seattle-identity-v9"), "seattle-identity-v9"),
        (lambda text: text.replace("protection: none", "protection: rot13"), "unknown protection 'rot13'"),
        (lambda text: text + "extra: 1\n", "unexpected fields ['extra']"),
        (lambda text: re.sub(r"secret: .*\n", "", text), "missing fields ['secret']"),
        (lambda text: text + "format: again\n", "'format' appears twice"),
        (lambda text: text + "no separator here\n", "not a `field: value` line"),
        (lambda text: re.sub(r"secret: (.*)", r"secret: !!\1", text), "'secret' is not base64url"),
        (lambda text: re.sub(r"secret: (.*)", r"secret: \1AAAA", text), "secret must be 32 bytes"),
        (lambda text: re.sub(r"public: .*", "public: ed25519:" + "A" * 43, text), "does not belong"),
        (lambda text: re.sub(r"public: .*", "public: nonsense", text), "public key line is wrong"),
    ],
)
def test_damaged_key_files_are_reported(
    tmp_path: Path, change: Callable[[str], str], complaint: str
) -> None:
    path = save_identity(generate_identity("alice"), tmp_path)
    _rewrite(path, change)
    with pytest.raises(CorruptKeyFile, match=re.escape(complaint)):
        load_identity("alice", tmp_path)


def test_oversized_key_file_is_reported(tmp_path: Path) -> None:
    path = save_identity(generate_identity("alice"), tmp_path)
    path.write_bytes(b"#" * (70 * 1024))
    with pytest.raises(CorruptKeyFile, match="far larger"):
        load_identity("alice", tmp_path)


# --- passphrases ------------------------------------------------------------------------------------------


def test_passphrase_round_trip_and_the_secret_is_not_in_the_file(tmp_path: Path) -> None:
    identity = generate_identity("alice")
    path = save_identity(identity, tmp_path, "correct horse", cost=FAST)
    text = path.read_text()
    seed = bytes(identity.signing_key)
    assert base64.urlsafe_b64encode(seed).rstrip(b"=").decode() not in text
    assert "protection: argon2id" in text and f"opslimit: {FAST.opslimit}" in text
    assert is_protected("alice", tmp_path)
    assert bytes(load_identity("alice", tmp_path, "correct horse").signing_key) == seed
    assert bytes(load_identity("alice", tmp_path, b"correct horse").signing_key) == seed


def test_wrong_missing_and_unexpected_passphrases(tmp_path: Path) -> None:
    save_identity(generate_identity("locked"), tmp_path, "secret", cost=FAST)
    save_identity(generate_identity("open"), tmp_path)
    with pytest.raises(WrongPassphrase, match="wrong passphrase for identity 'locked'"):
        load_identity("locked", tmp_path, "guess")
    with pytest.raises(PassphraseRequired, match="protected by a passphrase"):
        load_identity("locked", tmp_path)
    with pytest.raises(PassphraseNotExpected, match="not protected"):
        load_identity("open", tmp_path, "secret")
    with pytest.raises(BadPassphrase, match="empty"):
        load_identity("locked", tmp_path, "")


def test_empty_passphrase_is_refused_when_saving(tmp_path: Path) -> None:
    with pytest.raises(BadPassphrase, match="empty"):
        save_identity(generate_identity("alice"), tmp_path, "", cost=FAST)
    assert not (tmp_path / "alice.privatekey").exists()


def test_passphrase_cost_is_read_from_the_file(tmp_path: Path) -> None:
    """A key saved with one cost still loads after the default changes, because the file records it."""
    cost = PassphraseCost(2, FAST.memlimit * 2)
    path = save_identity(generate_identity("alice"), tmp_path, "pw", cost=cost)
    assert f"memlimit: {cost.memlimit}" in path.read_text()
    assert load_identity("alice", tmp_path, "pw").name == "alice"


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("memlimit", str(2**35), "memlimit must be an integer"),
        ("opslimit", "0", "opslimit must be an integer"),
        ("opslimit", "-3", "'opslimit' is not a whole number"),
        ("salt", "AAAA", "salt must be 16 bytes"),
    ],
)
def test_damaged_passphrase_parameters_are_reported(
    tmp_path: Path, field: str, value: str, complaint: str
) -> None:
    path = save_identity(generate_identity("alice"), tmp_path, "pw", cost=FAST)
    _rewrite(path, lambda text: re.sub(rf"{field}: .*", f"{field}: {value}", text))
    with pytest.raises(CorruptKeyFile, match=re.escape(complaint)):
        load_identity("alice", tmp_path, "pw")


def test_passphrase_cost_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="opslimit"):
        PassphraseCost(0, FAST.memlimit)
    with pytest.raises(ValueError, match="memlimit"):
        PassphraseCost(1, 2**50)
    assert PassphraseCost().opslimit >= 3  # the default is meant for real keys, not tests


# --- names ------------------------------------------------------------------------------------------------


def test_saving_an_identity_names_it(tmp_path: Path) -> None:
    identity = generate_identity("alice")
    save_identity(identity, tmp_path)
    assert read_names(tmp_path) == {"alice": identity.public_key}
    assert resolve("alice", tmp_path) == identity.public_key


def test_resolve_accepts_key_text_and_names(tmp_path: Path) -> None:
    key = generate_identity("x").public_key
    add_name("bob", key, tmp_path)
    assert resolve("bob", tmp_path) == key
    assert resolve(key.to_text(), tmp_path) == key
    assert (tmp_path / "names").read_text() == f"bob {key.to_text()}\n"


def test_unknown_name_says_which_names_exist_and_how_to_add_one(tmp_path: Path) -> None:
    add_name("bob", generate_identity("x").public_key, tmp_path)
    with pytest.raises(UnknownName, match=r"no key is named 'carol' \(known names: bob\)") as caught:
        resolve("carol", tmp_path)
    assert str(tmp_path / "names") in str(caught.value)
    with pytest.raises(UnknownName, match="no names are defined yet"):
        resolve("carol", tmp_path / "elsewhere")


def test_resolve_rejects_bad_key_text_and_bad_names(tmp_path: Path) -> None:
    with pytest.raises(BadPublicKey):
        resolve("ed25519:short", tmp_path)
    with pytest.raises(BadKeyName):
        resolve("not a name", tmp_path)


def test_a_name_is_not_silently_rebound(tmp_path: Path) -> None:
    first, second = generate_identity("x").public_key, generate_identity("y").public_key
    add_name("bob", first, tmp_path)
    add_name("bob", first, tmp_path)  # the same binding again is fine
    with pytest.raises(NameTaken, match="already stands for another key"):
        add_name("bob", second, tmp_path)
    assert resolve("bob", tmp_path) == first
    add_name("bob", second, tmp_path, replace=True)
    assert resolve("bob", tmp_path) == second
    assert len(read_names(tmp_path)) == 1


def test_saving_an_identity_under_a_name_taken_by_another_key_fails_before_writing(tmp_path: Path) -> None:
    add_name("alice", generate_identity("x").public_key, tmp_path)
    with pytest.raises(NameTaken):
        save_identity(generate_identity("alice"), tmp_path)
    assert not (tmp_path / "alice.privatekey").exists()


def test_remove_name_keeps_comments_and_other_lines(tmp_path: Path) -> None:
    bob, carol = generate_identity("b").public_key, generate_identity("c").public_key
    (tmp_path / "names").write_text(f"# my collaborators\nbob {bob.to_text()}\n\ncarol {carol.to_text()}\n")
    remove_name("bob", tmp_path)
    assert (tmp_path / "names").read_text() == f"# my collaborators\n\ncarol {carol.to_text()}\n"
    with pytest.raises(UnknownName):
        remove_name("bob", tmp_path)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("bob\n", "line 1: expected two words, found 1"),
        ("# ok\nbob ed25519:xyz\n", "line 2: 'ed25519:xyz' is not a public key"),
        ("../bob ed25519:" + "A" * 43 + "\n", "line 1: '../bob' cannot be used as a key name"),
        ("bob ed25519:{k}\nbob ed25519:{k}\n", "line 2: the name 'bob' is defined twice"),
        ("bob ed25519:{k} extra\n", "line 1: expected two words, found 3"),
    ],
)
def test_damaged_names_file_reports_the_line(tmp_path: Path, content: str, complaint: str) -> None:
    (tmp_path / "names").write_text(content.replace("{k}", "A" * 43))
    with pytest.raises(BadNamesFile, match=re.escape(complaint)):
        read_names(tmp_path)


def test_concurrent_name_additions_are_all_kept(tmp_path: Path) -> None:
    """The directory lock serialises read-modify-write of `names`, so no addition is lost."""
    wanted = {f"user{index}": generate_identity("x").public_key for index in range(16)}
    threads = [
        threading.Thread(target=add_name, args=(name, key, tmp_path)) for name, key in wanted.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert read_names(tmp_path) == wanted


def test_read_public_key_reports_missing_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(BadPublicKey, match="no such file"):
        read_public_key(tmp_path / "nobody.publickey")
    (tmp_path / "bad.publickey").write_bytes(b"\xff\xfe")
    with pytest.raises(BadPublicKey, match="cannot be read as a key file"):
        read_public_key(tmp_path / "bad.publickey")


def test_key_directory_is_created_private() -> None:
    directory = keys.key_directory()
    assert directory.is_dir() and mode_of(directory) == 0o700
