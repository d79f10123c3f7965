"""savestate / loadstate: the whole session, and the identity it uses, in one file encrypted with a passphrase.

Why encrypted: the file carries the private key of the session's identity (so a researcher can carry an
experiment to another machine, as seash's state files carried keys) and the list of vessels they control.

Layout: `MAGIC ‖ salt(16) ‖ opslimit(u32 BE) ‖ memlimit(u32 BE, KiB) ‖ SecretBox(nonce ‖ ciphertext)` of the
UTF-8 JSON `{"session": <session.json content>, "identities": {name: base64 seed}}`. The key is argon2id
(nacl.pwhash) of the passphrase; the costs are stored so they can rise later, and a file asking for more than
the sensitive preset is refused before any work (a crafted file must not make us burn minutes or gigabytes).
The file is written 0600, atomically.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from seattle.atomicfile import write_atomic
from seattle.errors import BadStateFile, IdentityExists, StateFilePassphrase
from seattle.experiment.session import Session
from seattle.keys import (
    PUBLIC_SUFFIX,
    Identity,
    check_name,
    key_directory,
    list_identities,
    read_public_key,
    save_identity,
)

MAGIC = b"seattle-state-v1\n"
_ARGON = nacl.pwhash.argon2id
_HEADER = struct.Struct(">II")
MAX_STATE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SavedState:
    session: Session
    identities: dict[str, Identity]


def save_state(path: Path, passphrase: str, session: Session, identities: list[Identity],
               *, opslimit: int = _ARGON.OPSLIMIT_INTERACTIVE, memlimit: int = _ARGON.MEMLIMIT_INTERACTIVE) -> None:
    """Encrypt the session and `identities` into `path` (mode 0600, atomic)."""
    if not passphrase:
        raise StateFilePassphrase(path, "an empty passphrase protects nothing; choose one")
    payload = {"session": session.to_json(),
               "identities": {identity.name: base64.b64encode(bytes(identity.signing_key)).decode("ascii")
                              for identity in identities}}
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
        session = Session.from_json(payload["session"])
        identities = {check_name(name): Identity(name, nacl.signing.SigningKey(base64.b64decode(seed)))
                      for name, seed in payload["identities"].items()}
    except Exception as exc:  # decrypted but malformed: written by something else, never a traceback
        raise BadStateFile(path, f"its content is malformed ({type(exc).__name__}: {exc})") from None
    return SavedState(session, identities)


def install_identities(identities: dict[str, Identity]) -> list[str]:
    """Save the state's identities that the key directory lacks; the names installed. An identity of the
    same name with another key is refused (IdentityExists): keys are never replaced."""
    installed = []
    have = set(list_identities())
    for name, identity in identities.items():
        if name in have:
            path = key_directory() / (name + PUBLIC_SUFFIX)
            if read_public_key(path) != identity.public_key:
                raise IdentityExists(name, path)
            continue
        save_identity(identity)
        installed.append(name)
    return installed


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return _ARGON.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase.encode("utf-8"), salt, opslimit=opslimit,
                      memlimit=memlimit)
