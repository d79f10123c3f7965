"""savestate / loadstate: the whole session, and the identity it uses, in one file encrypted with a passphrase.

Why encrypted: the file carries the private key of the session's identity (so a researcher can carry an
experiment to another machine, as seash's state files carried keys) and the list of vessels they control.

The key travels as its private key file's text (`seattle.keys.export_private_key`), exactly as stored: a key
protected by a passphrase stays encrypted under it inside the state file and is installed on load with the
same protection (the state file's passphrase is another layer, never a replacement). Saving therefore needs
no key passphrase, and loading never writes a protected key unprotected.

Layout: `MAGIC ‖ salt(16) ‖ opslimit(u32 BE) ‖ memlimit(u32 BE, KiB) ‖ SecretBox(nonce ‖ ciphertext)` of the
UTF-8 JSON `{"session": <session.json content>, "keys": {name: private key file text}}`. A file from before
(with "identities": decrypted seeds) is refused: it no longer says whether its keys had a passphrase.
The box's key is argon2id (nacl.pwhash) of the passphrase; the costs are stored so they can rise later, and a
file asking for more than the sensitive preset is refused before any work (a crafted file must not make us
burn minutes or gigabytes). The file is written 0600, atomically.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from seattle.atomicfile import write_atomic
from seattle.errors import BadStateFile, IdentityExists, StateFilePassphrase
from seattle.experiment.session import Session
from seattle.keys import (
    PUBLIC_SUFFIX,
    check_name,
    check_private_key,
    export_private_key,
    import_private_key,
    key_directory,
    list_identities,
    read_public_key,
)

MAGIC = b"seattle-state-v1\n"
_ARGON = nacl.pwhash.argon2id
_HEADER = struct.Struct(">II")
MAX_STATE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SavedState:
    """A decrypted state file: the session, and each identity's private key file text (as it was stored)."""

    session: Session
    keys: dict[str, str]


def save_state(path: Path, passphrase: str, session: Session, identities: list[str],
               *, opslimit: int = _ARGON.OPSLIMIT_INTERACTIVE, memlimit: int = _ARGON.MEMLIMIT_INTERACTIVE) -> None:
    """Encrypt the session and the key files of the named `identities` into `path` (mode 0600, atomic)."""
    if not passphrase:
        raise StateFilePassphrase(path, "an empty passphrase protects nothing; choose one")
    payload = {"session": session.to_json(), "keys": {name: export_private_key(name) for name in identities}}
    salt = nacl.utils.random(_ARGON.SALTBYTES)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
    sealed = box.encrypt(json.dumps(payload).encode("utf-8"))
    write_atomic(Path(path), MAGIC + salt + _HEADER.pack(opslimit, memlimit // 1024) + bytes(sealed))


def load_state(path: Path, passphrase: str) -> SavedState:
    """Decrypt `path`; StateFilePassphrase for a wrong passphrase, BadStateFile for anything else wrong."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_STATE_BYTES + 1)
    except OSError as exc:
        raise BadStateFile(path, exc.strerror or str(exc)) from None
    header = len(MAGIC) + _ARGON.SALTBYTES + _HEADER.size
    if not data.startswith(MAGIC) or len(data) < header or len(data) > MAX_STATE_BYTES:
        raise BadStateFile(path, "it is not a state file written by `seattle savestate`")
    salt = data[len(MAGIC):len(MAGIC) + _ARGON.SALTBYTES]
    opslimit, memlimit_kib = _HEADER.unpack_from(data, len(MAGIC) + _ARGON.SALTBYTES)
    memlimit = memlimit_kib * 1024
    if not (_ARGON.OPSLIMIT_MIN <= opslimit <= _ARGON.OPSLIMIT_SENSITIVE
            and _ARGON.MEMLIMIT_MIN <= memlimit <= _ARGON.MEMLIMIT_SENSITIVE):
        raise BadStateFile(path, "its key-derivation costs are out of range")
    box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
    try:
        plain = box.decrypt(data[header:])
    except nacl.exceptions.CryptoError:
        raise StateFilePassphrase(path, "wrong passphrase (or the file was changed): it could not be decrypted") \
            from None
    try:
        payload = json.loads(plain)
        if "keys" not in payload and "identities" in payload:
            raise BadStateFile(path, "it was written by an older seattle that stored keys without their passphrase "
                                     "protection; save the state again with this version")
        session = Session.from_json(payload["session"])
        keys = {check_name(name): text for name, text in payload["keys"].items()}
        if not all(isinstance(text, str) for text in keys.values()):
            raise TypeError("a key is not text")
    except BadStateFile:
        raise
    except Exception as exc:  # decrypted but malformed: written by something else, never a traceback
        raise BadStateFile(path, f"its content is malformed ({type(exc).__name__}: {exc})") from None
    return SavedState(session, keys)


def install_identities(keys: dict[str, str]) -> list[str]:
    """Install the state's key files that the key directory lacks, each with the protection it had; the names
    installed. An identity of the same name with another key is refused (IdentityExists): keys are never
    replaced. Every key is checked before the first is written."""
    have = set(list_identities())
    for name, text in keys.items():
        public_key = check_private_key(name, text)
        if name in have:
            path = key_directory() / (name + PUBLIC_SUFFIX)
            if read_public_key(path) != public_key:
                raise IdentityExists(name, path)
    installed = []
    for name, text in keys.items():
        if name not in have:
            import_private_key(name, text)
            installed.append(name)
    return installed


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return _ARGON.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase.encode("utf-8"), salt, opslimit=opslimit,
                      memlimit=memlimit)
