"""Noise_XX_25519_ChaChaPoly_BLAKE2b, sans-IO, on PyNaCl's primitives (libsodium) and hashlib's BLAKE2b.

Exactly one protocol of the Noise framework (revision 34 of the specification): the XX pattern,

    -> e
    <- e, ee, s, es
    -> s, se

with X25519, ChaCha20-Poly1305 (IETF, 96-bit nonce: 4 zero bytes + the 64-bit little-endian counter) and
BLAKE2b (HASHLEN 64, BLOCKLEN 128, HKDF from HMAC-BLAKE2b). No PSK modes, no rekey, no other pattern: one
protocol is less code to audit, and it is checked byte for byte against the published test vectors
(tests/channel/vectors/).

Sans-IO: `HandshakeState.write_message` / `read_message` turn payloads into messages and back; moving the
bytes (framing, deadlines, the identity payloads) is `seattle.channel.stream`'s job. Every length is checked
before any crypto: a message over 65,535 bytes, or too short for its step, is refused without touching it.
Errors are `ChannelError`s with the codes of `seattle.channel.errors`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions

from seattle.channel.errors import (
    BAD_KEY,
    BAD_MESSAGE,
    DECRYPT_FAILED,
    MESSAGE_TOO_LARGE,
    NONCE_EXHAUSTED,
    ChannelError,
)

PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_BLAKE2b"
DHLEN = 32
HASHLEN = 64
BLOCKLEN = 128
KEYLEN = 32
TAGLEN = 16
#: The largest Noise message (handshake or transport), ciphertext and tag included.
MAX_MESSAGE = 65535
#: The largest plaintext one transport message carries.
MAX_PLAINTEXT = MAX_MESSAGE - TAGLEN
#: Nonce 2**64 - 1 is reserved by the specification; a CipherState refuses to reach it.
MAX_NONCE = 2**64 - 1

_NONCE_PREFIX = bytes(4)
_aead_encrypt = nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt
_aead_decrypt = nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt


def _hash(data: bytes) -> bytes:
    return hashlib.blake2b(data).digest()


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "blake2b")


def hkdf(chaining_key: bytes, input_key_material: bytes, outputs: int) -> tuple[bytes, ...]:
    """Noise's HKDF: 2 or 3 outputs of HASHLEN bytes, each an HMAC-BLAKE2b under the extracted key."""
    temp_key = _hmac(chaining_key, input_key_material)
    out: list[bytes] = []
    previous = b""
    for index in range(1, outputs + 1):
        previous = _hmac(temp_key, previous + bytes((index,)))
        out.append(previous)
    return tuple(out)


@dataclass(frozen=True)
class KeyPair:
    """An X25519 key pair. `from_private` takes a given secret (the test vectors inject theirs)."""

    private: bytes
    public: bytes

    @classmethod
    def from_private(cls, private: bytes) -> KeyPair:
        if not isinstance(private, bytes) or len(private) != DHLEN:
            raise ValueError(f"an X25519 private key is {DHLEN} bytes")
        return cls(private, nacl.bindings.crypto_scalarmult_base(private))

    @classmethod
    def generate(cls) -> KeyPair:
        public, private = nacl.bindings.crypto_box_keypair()
        return cls(private, public)

    def __repr__(self) -> str:  # never print the secret, even in a traceback
        return f"KeyPair(public={self.public.hex()})"


def dh(key_pair: KeyPair, public: bytes) -> bytes:
    """X25519; BAD_KEY for a low-order point, which libsodium refuses (its shared secret would be all zeros)."""
    try:
        return nacl.bindings.crypto_scalarmult(key_pair.private, public)
    except nacl.exceptions.CryptoError:
        raise ChannelError(BAD_KEY, "the peer's X25519 key is a low-order point") from None


class CipherState:
    """A key and a 64-bit message counter; with no key (early in a handshake) it passes data through."""

    __slots__ = ("key", "nonce")

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key
        self.nonce = 0

    def _next_nonce(self) -> bytes:
        if self.nonce >= MAX_NONCE:
            raise ChannelError(NONCE_EXHAUSTED, "2**64 - 1 messages were sent under one key; reconnect")
        nonce = _NONCE_PREFIX + self.nonce.to_bytes(8, "little")
        self.nonce += 1
        return nonce

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self.key is None:
            return plaintext
        if len(plaintext) > MAX_PLAINTEXT:
            raise ChannelError(MESSAGE_TOO_LARGE, f"a Noise message carries at most {MAX_PLAINTEXT} bytes")
        return _aead_encrypt(plaintext, ad, self._next_nonce(), self.key)

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        """The plaintext; DECRYPT_FAILED (and the counter unchanged) if the tag does not verify."""
        if self.key is None:
            return ciphertext
        if len(ciphertext) > MAX_MESSAGE:
            raise ChannelError(MESSAGE_TOO_LARGE, f"a Noise message is at most {MAX_MESSAGE} bytes")
        if len(ciphertext) < TAGLEN:
            raise ChannelError(BAD_MESSAGE, f"a ciphertext is at least its {TAGLEN}-byte tag")
        if self.nonce >= MAX_NONCE:
            raise ChannelError(NONCE_EXHAUSTED, "2**64 - 1 messages were received under one key; reconnect")
        nonce = _NONCE_PREFIX + self.nonce.to_bytes(8, "little")
        try:
            plaintext = _aead_decrypt(ciphertext, ad, nonce, self.key)
        except nacl.exceptions.CryptoError:
            raise ChannelError(DECRYPT_FAILED, "a message failed authentication (tampered, replayed, reordered "
                                               "or from another session)") from None
        self.nonce += 1
        return plaintext


class SymmetricState:
    """The chaining key, the handshake hash and the CipherState they key (Noise section 5.2)."""

    __slots__ = ("chaining_key", "cipher", "handshake_hash")

    def __init__(self, protocol_name: bytes = PROTOCOL_NAME) -> None:
        if len(protocol_name) <= HASHLEN:
            self.handshake_hash = protocol_name.ljust(HASHLEN, b"\x00")
        else:
            self.handshake_hash = _hash(protocol_name)
        self.chaining_key = self.handshake_hash
        self.cipher = CipherState()

    def mix_key(self, input_key_material: bytes) -> None:
        self.chaining_key, temp_key = hkdf(self.chaining_key, input_key_material, 2)
        self.cipher = CipherState(temp_key[:KEYLEN])

    def mix_hash(self, data: bytes) -> None:
        self.handshake_hash = _hash(self.handshake_hash + data)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.handshake_hash, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.handshake_hash, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        first, second = hkdf(self.chaining_key, b"", 2)
        return CipherState(first[:KEYLEN]), CipherState(second[:KEYLEN])


class HandshakeState:
    """One side of an XX handshake. Write and read the three messages in turn (the initiator writes the first
    and the third); after the third, `split()` gives this side's (send, receive) CipherStates.

    `static` is this side's long-term X25519 key; `ephemeral` is drawn fresh unless given (only the test
    vectors give one). `remote_static` is the peer's static key once its message carrying it was read.
    """

    def __init__(self, *, initiator: bool, static: KeyPair, prologue: bytes = b"",
                 ephemeral: KeyPair | None = None) -> None:
        self.initiator = initiator
        self.static = static
        self.ephemeral = ephemeral
        self.remote_ephemeral: bytes | None = None
        self.remote_static: bytes | None = None
        self.step = 0  # messages written or read so far: 0..3
        self.symmetric = SymmetricState()
        self.symmetric.mix_hash(prologue)

    @property
    def complete(self) -> bool:
        return self.step == 3

    @property
    def handshake_hash(self) -> bytes:
        """h: identifies the session; both sides hold the same value once the handshake is complete."""
        return self.symmetric.handshake_hash

    def _turn(self, writing: bool) -> None:
        ours = (self.step % 2 == 0) == self.initiator
        if self.complete or ours != writing:
            raise RuntimeError(f"XX message {self.step + 1} is not this side's to {'write' if writing else 'read'}")

    def write_message(self, payload: bytes = b"") -> bytes:
        self._turn(writing=True)
        s = self.symmetric
        out: list[bytes] = []
        if self.step == 0:  # -> e
            out.append(self._ephemeral_public())
        elif self.step == 1:  # <- e, ee, s, es
            out.append(self._ephemeral_public())
            assert self.ephemeral is not None and self.remote_ephemeral is not None
            s.mix_key(dh(self.ephemeral, self.remote_ephemeral))
            out.append(s.encrypt_and_hash(self.static.public))
            s.mix_key(dh(self.static, self.remote_ephemeral))
        else:  # -> s, se
            assert self.remote_ephemeral is not None
            out.append(s.encrypt_and_hash(self.static.public))
            s.mix_key(dh(self.static, self.remote_ephemeral))
        out.append(s.encrypt_and_hash(payload))
        message = b"".join(out)
        if len(message) > MAX_MESSAGE:
            raise ChannelError(MESSAGE_TOO_LARGE, f"a Noise message is at most {MAX_MESSAGE} bytes")
        self.step += 1
        return message

    def read_message(self, message: bytes) -> bytes:
        """The payload of the peer's next message; ChannelError (and this state unusable) if it is refused."""
        self._turn(writing=False)
        if len(message) > MAX_MESSAGE:
            raise ChannelError(MESSAGE_TOO_LARGE, f"a Noise message is at most {MAX_MESSAGE} bytes")
        s = self.symmetric
        fixed = (DHLEN, DHLEN + DHLEN + TAGLEN + TAGLEN, DHLEN + TAGLEN + TAGLEN)[self.step]
        if len(message) < fixed:
            raise ChannelError(BAD_MESSAGE, f"XX message {self.step + 1} is at least {fixed} bytes, "
                                            f"got {len(message)}")
        if self.step == 0:  # -> e
            self.remote_ephemeral = message[:DHLEN]
            s.mix_hash(self.remote_ephemeral)
            rest = message[DHLEN:]
        elif self.step == 1:  # <- e, ee, s, es
            assert self.ephemeral is not None
            self.remote_ephemeral = message[:DHLEN]
            s.mix_hash(self.remote_ephemeral)
            s.mix_key(dh(self.ephemeral, self.remote_ephemeral))
            self.remote_static = s.decrypt_and_hash(message[DHLEN:DHLEN + DHLEN + TAGLEN])
            s.mix_key(dh(self.ephemeral, self.remote_static))
            rest = message[DHLEN + DHLEN + TAGLEN:]
        else:  # -> s, se
            assert self.ephemeral is not None
            self.remote_static = s.decrypt_and_hash(message[:DHLEN + TAGLEN])
            s.mix_key(dh(self.ephemeral, self.remote_static))
            rest = message[DHLEN + TAGLEN:]
        payload = s.decrypt_and_hash(rest)
        self.step += 1
        return payload

    def split(self) -> tuple[CipherState, CipherState]:
        """(send, receive) for this side: the initiator sends with the first key, the responder with the second."""
        if not self.complete:
            raise RuntimeError("the handshake is not complete")
        first, second = self.symmetric.split()
        return (first, second) if self.initiator else (second, first)

    def _ephemeral_public(self) -> bytes:
        if self.ephemeral is None:
            self.ephemeral = KeyPair.generate()
        self.symmetric.mix_hash(self.ephemeral.public)
        return self.ephemeral.public
