"""The identity binding: a handshake payload that ties a Noise static key to an Ed25519 identity.

Noise authenticates X25519 static keys; seattle's identities are Ed25519 keys (the ones in vessel records,
fingerprints and names files). Each side that proves an identity sends, inside its encrypted handshake
payload, exactly

    ed25519 public key (32) ‖ Ed25519 signature (64) over  b"seattle-noise-static-key:" ‖ x25519 static key (32)

(96 bytes), as libp2p's Noise handshake does. A peer that completes the handshake holds the static key's
secret (Noise proves that) and the identity signed that static key (the signature proves that), so the
identity is the one at the other end of this session. The prefix separates this statement from every other
thing an identity signs (requests, vessel records, profiles). An empty payload claims no identity: allowed for
the initiator (an anonymous client), never for the responder (a node always proves its key).

A local identity's static key is derived from its Ed25519 seed (keyed BLAKE2b) and signed once per process:
a handshake costs no signature, only the peer's verification.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from seattle.channel.errors import BAD_IDENTITY, ChannelError
from seattle.channel.noise import DHLEN, KeyPair
from seattle.keys import PUBLIC_KEY_SIZE, Identity, PublicKey

STATEMENT_PREFIX = b"seattle-noise-static-key:"
SIGNATURE_SIZE = 64
PAYLOAD_SIZE = PUBLIC_KEY_SIZE + SIGNATURE_SIZE

_DERIVATION_KEY_PERSON = b"seattle-noise-s"  # BLAKE2b personalisation: at most 16 bytes


@dataclass(frozen=True)
class LocalStatic:
    """A local identity's Noise static key pair and the payload that proves the identity owns it."""

    key_pair: KeyPair
    payload: bytes


def statement(static_public: bytes) -> bytes:
    """What an identity signs to claim a static key."""
    return STATEMENT_PREFIX + static_public


def local_static(identity: Identity) -> LocalStatic:
    """The static key and signed payload of `identity`, computed once per identity and process."""
    return _local_static(bytes(identity.signing_key))


@functools.lru_cache(maxsize=64)
def _local_static(seed: bytes) -> LocalStatic:
    signing_key = nacl.signing.SigningKey(seed)
    private = hashlib.blake2b(b"", key=seed, digest_size=DHLEN, person=_DERIVATION_KEY_PERSON).digest()
    key_pair = KeyPair.from_private(private)
    signature = signing_key.sign(statement(key_pair.public)).signature
    return LocalStatic(key_pair, bytes(signing_key.verify_key) + signature)


def anonymous_static() -> KeyPair:
    """A fresh static key for a client that proves no identity: nothing links two of its connections."""
    return KeyPair.generate()


def verify_payload(payload: bytes, static_public: bytes, *, required: bool) -> PublicKey | None:
    """The Ed25519 identity `payload` proves for the peer's `static_public`; None for an empty payload when
    not `required`; BAD_IDENTITY (ChannelError) for anything else."""
    if not payload:
        if required:
            raise ChannelError(BAD_IDENTITY, "the node proved no identity in its handshake")
        return None
    if len(payload) != PAYLOAD_SIZE:
        raise ChannelError(BAD_IDENTITY, f"an identity payload is {PAYLOAD_SIZE} bytes, got {len(payload)}")
    key, signature = payload[:PUBLIC_KEY_SIZE], payload[PUBLIC_KEY_SIZE:]
    try:
        nacl.signing.VerifyKey(key).verify(statement(static_public), signature)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise ChannelError(BAD_IDENTITY, "the peer's identity signature does not match its handshake key") from None
    return PublicKey(key)
