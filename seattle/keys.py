"""Identities: Ed25519 keys, their files, fingerprints and the names people give them.

An *identity* is a named Ed25519 key pair. Researchers sign node manager requests with it, and donors' node
managers have one too (the request's destination). Everything that touches key material lives here, so there
is one place to audit.

Files, all in `key_directory()` (`$SEATTLE_HOME/keys`, mode 0700):

    <name>.privatekey   mode 0600, written atomically; refused when group or others can read it
    <name>.publickey    mode 0644, one line `ed25519:<base64url>`; safe to hand out
    names               lines `name ed25519:<base64url>`; `#` starts a comment

A private key file is a few `field: value` lines (text, so it survives being printed or mailed to oneself as a
backup). Its secret is the 32-byte Ed25519 seed, either in the clear (`protection: none`) or sealed with
SecretBox under a key derived from a passphrase by argon2id (`protection: argon2id`), whose cost is recorded
in the file so a key stays readable when the default cost changes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import functools
import hashlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from seattle.atomicfile import write_atomic
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
from seattle.home import seattle_home

KEY_TEXT_PREFIX = "ed25519:"
PUBLIC_KEY_SIZE = 32
SEED_SIZE = nacl.bindings.crypto_sign_SEEDBYTES
FINGERPRINT_LENGTH = 16
NAMES_FILE = "names"
PRIVATE_SUFFIX = ".privatekey"
PUBLIC_SUFFIX = ".publickey"
FILE_FORMAT = "seattle-identity-v1"

# Names become file names and the first word of a names-file line, so: no path separators, no spaces, no
# leading dot, and no colon (which keeps a name from ever looking like key text).
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ARGON = nacl.pwhash.argon2id


def key_directory() -> Path:
    """`$SEATTLE_HOME/keys`, created with mode 0700 so only its owner can list the identities in it."""
    directory = seattle_home() / "keys"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def check_name(name: str) -> str:
    """Return `name` if it can name an identity or a names-file entry; raise `BadKeyName` saying why not."""
    if not isinstance(name, str) or not name:
        raise BadKeyName(str(name), "a name must be a non-empty string")
    if not _NAME_PATTERN.fullmatch(name):
        raise BadKeyName(
            name, "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (no ':')"
        )
    return name


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key: 32 raw bytes, with the two printable forms people see."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != PUBLIC_KEY_SIZE:
            raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes, got {self.raw!r:.60}")

    def fingerprint(self) -> str:
        """16 lowercase base32 characters (80 bits of BLAKE2b) for people to compare keys by eye.

        Short enough to read out over the phone; not a substitute for the full key when granting access,
        because 80 bits can be matched by brute force with enough money.
        """
        digest = hashlib.blake2b(self.raw, digest_size=FINGERPRINT_LENGTH * 5 // 8).digest()
        return base64.b32encode(digest).decode("ascii").lower()

    def to_text(self) -> str:
        """The full printable form, `ed25519:` + unpadded base64url: what names files and requests show."""
        return KEY_TEXT_PREFIX + base64.urlsafe_b64encode(self.raw).rstrip(b"=").decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> PublicKey:
        """Parse `to_text()` output, raising `BadPublicKey` that says which part is wrong."""
        if not isinstance(text, str):
            raise BadPublicKey(repr(text), "not a string")
        stripped = text.strip()
        if not stripped.startswith(KEY_TEXT_PREFIX):
            raise BadPublicKey(text, f"it does not start with {KEY_TEXT_PREFIX!r}")
        encoded = stripped[len(KEY_TEXT_PREFIX) :]
        if not re.fullmatch(r"[A-Za-z0-9_-]*", encoded):
            raise BadPublicKey(text, "after 'ed25519:' only base64url (A-Z a-z 0-9 - _) may follow")
        raw = _b64decode(encoded)
        if raw is None or len(raw) != PUBLIC_KEY_SIZE:
            raise BadPublicKey(text, f"it does not encode exactly {PUBLIC_KEY_SIZE} bytes")
        return cls(raw)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"PublicKey({self.fingerprint()})"


@dataclass(frozen=True)
class Identity:
    """A named key pair. `signing_key` never leaves this process except through `save_identity`."""

    name: str
    signing_key: nacl.signing.SigningKey

    @property
    def verify_key(self) -> nacl.signing.VerifyKey:
        return self.signing_key.verify_key

    @functools.cached_property
    def sodium_key_pair(self) -> tuple[bytes, bytes]:
        """(public key, libsodium's 64-byte secret key), derived once per identity: code that signs many small
        messages (the overlay's datagrams) calls the raw binding with it and skips PyNaCl's per-call wrappers."""
        return nacl.bindings.crypto_sign_seed_keypair(bytes(self.signing_key))

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(bytes(self.signing_key.verify_key))

    def __repr__(self) -> str:  # never print the secret, even in a traceback
        return f"Identity({self.name!r}, {self.public_key.fingerprint()})"


@dataclass(frozen=True)
class PassphraseCost:
    """How hard argon2id works to turn a passphrase into a key: passes over `memlimit` bytes of memory.

    The default is libsodium's "moderate" setting (about half a second and 256 MiB); tests pass
    `PassphraseCost.minimum()` so they stay fast. Both limits are bounded above so that a damaged file cannot
    make loading a key eat all memory.
    """

    opslimit: int = _ARGON.OPSLIMIT_MODERATE
    memlimit: int = _ARGON.MEMLIMIT_MODERATE

    MAX_OPSLIMIT = 64
    MAX_MEMLIMIT = _ARGON.MEMLIMIT_SENSITIVE

    def __post_init__(self) -> None:
        if type(self.opslimit) is not int or not _ARGON.OPSLIMIT_MIN <= self.opslimit <= self.MAX_OPSLIMIT:
            raise ValueError(
                f"argon2id opslimit must be an integer in {_ARGON.OPSLIMIT_MIN}..{self.MAX_OPSLIMIT}, "
                f"got {self.opslimit!r}"
            )
        if type(self.memlimit) is not int or not _ARGON.MEMLIMIT_MIN <= self.memlimit <= self.MAX_MEMLIMIT:
            raise ValueError(
                f"argon2id memlimit must be an integer in {_ARGON.MEMLIMIT_MIN}..{self.MAX_MEMLIMIT} bytes, "
                f"got {self.memlimit!r}"
            )

    @classmethod
    def minimum(cls) -> PassphraseCost:
        """The cheapest setting libsodium allows: for tests, never for real keys."""
        return cls(_ARGON.OPSLIMIT_MIN, _ARGON.MEMLIMIT_MIN)

    def derive(self, passphrase: bytes, salt: bytes) -> bytes:
        return _ARGON.kdf(
            nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=self.opslimit, memlimit=self.memlimit
        )


def generate_identity(name: str) -> Identity:
    """A fresh key pair from the OS's random source."""
    return Identity(check_name(name), nacl.signing.SigningKey.generate())


def save_identity(
    identity: Identity,
    directory: Path | None = None,
    passphrase: str | bytes | None = None,
    *,
    cost: PassphraseCost | None = None,
) -> Path:
    """Write `<name>.privatekey` (0600), `<name>.publickey` (0644) and the name's line in `names`.

    Refuses to replace an existing identity (`IdentityExists`) or to rebind a name that stands for another key
    (`NameTaken`): a lost private key cannot be recovered, and vessels stay owned by it. Each file is written
    under a temporary name created with O_EXCL and mode 0600, so the secret is never readable by others, not
    even for a moment, and a crash leaves either no file or a complete one. Returns the private key's path.
    """
    name = check_name(identity.name)
    text = _private_key_text(identity, passphrase, cost or PassphraseCost())  # slow with a passphrase
    return _install(name, identity.public_key, text, _directory(directory))


def export_private_key(name: str, directory: Path | None = None) -> str:
    """The text of `name`'s private key file exactly as stored: still encrypted if it has a passphrase, so it can
    travel (`seattle savestate`) without the key ever being decrypted, and arrive with the same protection."""
    path, _ = _read_private_file(check_name(name), _directory(directory))
    return path.read_text(encoding="ascii")


def check_private_key(name: str, text: str) -> PublicKey:
    """The public key of the private key file text `text` for identity `name`, after the checks `load_identity`
    makes of a file (fields, format; an unprotected secret must belong to its public key): CorruptKeyFile."""
    source = Path(f"<{check_name(name)} in a state file>")
    data = text.encode("ascii", "replace")
    if len(data) > _MAX_KEY_FILE:
        raise CorruptKeyFile(source, "it is far larger than any key file")
    fields = _parse_private_text(source, data)
    try:
        public_key = PublicKey.from_text(fields["public"])
    except BadPublicKey as exc:
        raise CorruptKeyFile(source, f"its public key line is wrong: {exc}") from None
    if fields["protection"] == "none":
        seed = _field_bytes(source, fields, "secret")
        if len(seed) != SEED_SIZE or PublicKey(bytes(nacl.signing.SigningKey(seed).verify_key)) != public_key:
            raise CorruptKeyFile(source, "the secret does not belong to the public key recorded next to it")
    return public_key


def import_private_key(name: str, text: str, directory: Path | None = None) -> PublicKey:
    """Install the text of a private key file (`export_private_key`) as identity `name`, as it is: a protected
    key stays protected by the passphrase it had. Checked first (`check_private_key`); `save_identity`'s
    refusals (IdentityExists, NameTaken) apply. Returns the identity's public key."""
    public_key = check_private_key(name, text)
    _install(check_name(name), public_key, text, _directory(directory))
    return public_key


def _install(name: str, public_key: PublicKey, private_text: str, directory: Path) -> Path:
    """Write an identity's three files (private 0600, public 0644, its names line) under the directory lock."""
    with _locked(directory) as directory:
        private_path = directory / (name + PRIVATE_SUFFIX)
        if private_path.exists():
            raise IdentityExists(name, private_path)
        names_path = directory / NAMES_FILE
        lines = _read_lines(names_path)
        bound = dict(_parse_names(names_path, lines)).get(name)
        if bound is not None and bound != public_key:
            raise NameTaken(name, bound.to_text())
        _write_atomically(private_path, private_text.encode("ascii"), 0o600, replace=False)
        public_text = public_key.to_text() + "\n"
        _write_atomically(directory / (name + PUBLIC_SUFFIX), public_text.encode("ascii"), 0o644)
        if bound is None:
            _write_atomically(names_path, _join_lines([*lines, f"{name} {public_text.strip()}"]), 0o644)
    return private_path


def load_identity(
    name: str, directory: Path | None = None, passphrase: str | bytes | None = None
) -> Identity:
    """Read an identity saved by `save_identity`, checking the file before trusting it.

    Raises `IdentityNotFound`, `KeyFileTooOpen` (the file is readable by group or others: a key others could
    copy must not be used silently), `CorruptKeyFile`, `PassphraseRequired`, `PassphraseNotExpected` or
    `WrongPassphrase`.
    """
    directory = _directory(directory)
    path, fields = _read_private_file(check_name(name), directory)
    protection = fields["protection"]
    if protection == "none":
        if passphrase is not None:
            raise PassphraseNotExpected(name)
        seed = _field_bytes(path, fields, "secret")
    else:
        if passphrase is None:
            raise PassphraseRequired(name)
        try:
            cost = PassphraseCost(_field_int(path, fields, "opslimit"), _field_int(path, fields, "memlimit"))
        except ValueError as exc:
            raise CorruptKeyFile(path, str(exc)) from None
        salt = _field_bytes(path, fields, "salt")
        if len(salt) != _ARGON.SALTBYTES:
            raise CorruptKeyFile(path, f"the salt must be {_ARGON.SALTBYTES} bytes, not {len(salt)}")
        box = nacl.secret.SecretBox(cost.derive(_passphrase_bytes(passphrase), salt))
        try:
            seed = box.decrypt(_field_bytes(path, fields, "secret"))
        except nacl.exceptions.CryptoError:
            raise WrongPassphrase(name) from None
    if len(seed) != SEED_SIZE:
        raise CorruptKeyFile(path, f"the secret must be {SEED_SIZE} bytes, not {len(seed)}")
    identity = Identity(name, nacl.signing.SigningKey(seed))
    try:
        recorded = PublicKey.from_text(fields["public"])
    except BadPublicKey as exc:
        raise CorruptKeyFile(path, f"its public key line is wrong: {exc}") from None
    if recorded != identity.public_key:
        raise CorruptKeyFile(path, "the secret does not belong to the public key recorded next to it")
    return identity


def is_protected(name: str, directory: Path | None = None) -> bool:
    """Whether loading `name` needs a passphrase: lets a command ask for one only when it must."""
    _, fields = _read_private_file(check_name(name), _directory(directory))
    return fields["protection"] != "none"


def list_identities(directory: Path | None = None) -> list[str]:
    """The names of the identities (private keys) in the key directory, sorted."""
    directory = _directory(directory)
    return sorted(path.name[: -len(PRIVATE_SUFFIX)] for path in directory.glob("*" + PRIVATE_SUFFIX))


def read_public_key(path: Path) -> PublicKey:
    """Read a `.publickey` file someone handed over (one line of key text)."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except FileNotFoundError:
        raise BadPublicKey(str(path), "no such file") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise BadPublicKey(str(path), f"the file cannot be read as a key file ({exc})") from None
    return PublicKey.from_text(text)


def read_names(directory: Path | None = None) -> dict[str, PublicKey]:
    """The names file as a mapping; an absent file is an empty mapping. Raises `BadNamesFile`."""
    path = _directory(directory) / NAMES_FILE
    return dict(_parse_names(path, _read_lines(path)))


def add_name(name: str, key: PublicKey, directory: Path | None = None, *, replace: bool = False) -> None:
    """Let `name` stand for `key`. Binding a name to the key it already has is a no-op.

    A name bound to another key raises `NameTaken` unless `replace`, because silently re-pointing `alice`
    would hand her vessels' access to whoever the new key belongs to.
    """
    check_name(name)
    with _locked(_directory(directory)) as directory:
        path = directory / NAMES_FILE
        lines = _read_lines(path)
        entries = dict(_parse_names(path, lines))
        if entries.get(name) == key:
            return
        if name in entries and not replace:
            raise NameTaken(name, entries[name].to_text())
        kept = [line for line in lines if _line_name(line) != name]
        _write_atomically(path, _join_lines([*kept, f"{name} {key.to_text()}"]), 0o644)


def remove_name(name: str, directory: Path | None = None) -> None:
    """Forget `name`; raises `UnknownName` if it was never defined (a typo should not pass silently)."""
    check_name(name)
    with _locked(_directory(directory)) as directory:
        path = directory / NAMES_FILE
        lines = _read_lines(path)
        entries = dict(_parse_names(path, lines))
        if name not in entries:
            raise UnknownName(name, path, sorted(entries))
        _write_atomically(path, _join_lines([line for line in lines if _line_name(line) != name]), 0o644)


def resolve(name_or_key: str, directory: Path | None = None) -> PublicKey:
    """`ed25519:...` key text as itself, or a name from the names file; `UnknownName` otherwise."""
    if isinstance(name_or_key, str) and name_or_key.strip().startswith(KEY_TEXT_PREFIX):
        return PublicKey.from_text(name_or_key)
    name = check_name(name_or_key)
    path = _directory(directory) / NAMES_FILE
    entries = dict(_parse_names(path, _read_lines(path)))
    if name not in entries:
        raise UnknownName(name, path, sorted(entries))
    return entries[name]


# --- private key file format ------------------------------------------------------------------------------

_MAX_KEY_FILE = 64 * 1024  # a real one is under 400 bytes
_REQUIRED_FIELDS = {
    "none": {"format", "public", "protection", "secret"},
    "argon2id": {"format", "public", "protection", "opslimit", "memlimit", "salt", "secret"},
}


def _private_key_text(identity: Identity, passphrase: str | bytes | None, cost: PassphraseCost) -> str:
    seed = bytes(identity.signing_key)
    header = [
        f"# seattle identity {identity.name!r}: private key. Keep it secret and keep a backup.",
        f"format: {FILE_FORMAT}",
        f"public: {identity.public_key.to_text()}",
    ]
    if passphrase is None:
        return _join_text([*header, "protection: none", f"secret: {_b64encode(seed)}"])
    salt = nacl.utils.random(_ARGON.SALTBYTES)
    sealed = nacl.secret.SecretBox(cost.derive(_passphrase_bytes(passphrase), salt)).encrypt(seed)
    return _join_text([
        *header,
        "protection: argon2id",
        f"opslimit: {cost.opslimit}",
        f"memlimit: {cost.memlimit}",
        f"salt: {_b64encode(salt)}",
        f"secret: {_b64encode(bytes(sealed))}",
    ])


def _read_private_file(name: str, directory: Path) -> tuple[Path, dict[str, str]]:
    """Open, check ownership-independent safety (regular file, mode) and parse a private key file."""
    path = directory / (name + PRIVATE_SUFFIX)
    try:  # O_NONBLOCK: opening a FIFO planted under the key's name must not hang
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise IdentityNotFound(name, directory, list_identities(directory)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CorruptKeyFile(path, "it is not a regular file")
        if info.st_mode & 0o077:
            raise KeyFileTooOpen(path, stat.S_IMODE(info.st_mode))
        data = b""
        while len(data) <= _MAX_KEY_FILE and (chunk := os.read(fd, _MAX_KEY_FILE + 1 - len(data))):
            data += chunk
    finally:
        os.close(fd)
    if len(data) > _MAX_KEY_FILE:
        raise CorruptKeyFile(path, "it is far larger than any key file")
    return path, _parse_private_text(path, data)


def _parse_private_text(path: Path, data: bytes) -> dict[str, str]:
    """The fields of a private key file's bytes, checked for format and completeness (CorruptKeyFile)."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise CorruptKeyFile(path, "it contains bytes that are not ASCII text") from None
    fields: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        key, separator, value = line.partition(":")
        key = key.strip()
        if not separator or not key:
            raise CorruptKeyFile(path, f"line {number} is not a `field: value` line")
        if key in fields:
            raise CorruptKeyFile(path, f"field {key!r} appears twice")
        fields[key] = value.strip()
    if fields.get("format") != FILE_FORMAT:
        raise CorruptKeyFile(path, f"its format is {fields.get('format')!r}, not {FILE_FORMAT!r}")
    required = _REQUIRED_FIELDS.get(fields.get("protection", ""))
    if required is None:
        raise CorruptKeyFile(path, f"unknown protection {fields.get('protection')!r} (known: none, argon2id)")
    if set(fields) != required:
        missing, extra = sorted(required - set(fields)), sorted(set(fields) - required)
        raise CorruptKeyFile(path, f"missing fields {missing}, unexpected fields {extra}")
    return fields


def _field_bytes(path: Path, fields: dict[str, str], field: str) -> bytes:
    value = _b64decode(fields[field]) if re.fullmatch(r"[A-Za-z0-9_-]+", fields[field]) else None
    if value is None:
        raise CorruptKeyFile(path, f"field {field!r} is not base64url")
    return value


def _field_int(path: Path, fields: dict[str, str], field: str) -> int:
    if not re.fullmatch(r"[0-9]{1,12}", fields[field]):
        raise CorruptKeyFile(path, f"field {field!r} is not a whole number")
    return int(fields[field])


def _passphrase_bytes(passphrase: str | bytes) -> bytes:
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    if not isinstance(passphrase, bytes):
        raise BadPassphrase(f"it must be text, not {type(passphrase).__name__}")
    if not passphrase:
        raise BadPassphrase("it is empty; give a non-empty passphrase, or none to store the key unprotected")
    return passphrase


# --- names file -------------------------------------------------------------------------------------------


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except UnicodeDecodeError:
        raise BadNamesFile(path, 1, "the file is not UTF-8 text") from None


def _line_name(line: str) -> str | None:
    """The name a names-file line defines, or None for blank and comment lines."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    return stripped.split()[0]


def _parse_names(path: Path, lines: list[str]) -> Iterator[tuple[str, PublicKey]]:
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        name = _line_name(line)
        if name is None:
            continue
        words = line.split()
        if len(words) != 2:
            raise BadNamesFile(path, number, f"expected two words, found {len(words)}")
        try:
            check_name(name)
            key = PublicKey.from_text(words[1])
        except (BadKeyName, BadPublicKey) as exc:
            raise BadNamesFile(path, number, str(exc)) from None
        if name in seen:
            raise BadNamesFile(path, number, f"the name {name!r} is defined twice")
        seen.add(name)
        yield name, key


# --- small file helpers -----------------------------------------------------------------------------------


def _directory(directory: Path | None) -> Path:
    return key_directory() if directory is None else Path(directory)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[Path]:
    """Hold an exclusive flock on the key directory, so concurrent edits of `names` do not lose lines."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield directory
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes, mode: int, *, replace: bool = True) -> None:
    """`write_atomic`, with `replace=False` (the target must not exist) refused as IdentityExists, so two
    writers cannot both think they created the same identity."""
    try:
        write_atomic(path, data, mode=mode, overwrite=replace)
    except FileExistsError:
        if replace:
            raise
        raise IdentityExists(path.name.rsplit(".", 1)[0], path) from None


def _join_lines(lines: list[str]) -> bytes:
    return _join_text(lines).encode("utf-8")


def _join_text(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Decode unpadded base64url (the caller has checked the alphabet); None if the length is impossible."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
