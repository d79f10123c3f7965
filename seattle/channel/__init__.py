"""Encrypted, authenticated channels: Noise_XX_25519_ChaChaPoly_BLAKE2b on trio streams (issue 14).

A leaf below the node manager (and, later, the overlay's relays): it imports only the shared leaves (keys,
refusal), trio, PyNaCl, msgpack and hashlib. docs/channel.md describes the wire format byte by byte.

Modules:
    noise    the sans-IO Noise core: CipherState, SymmetricState, HandshakeState (XX), checked against the
             published test vectors
    binding  the identity binding: the handshake payload in which an Ed25519 identity signs its Noise static key
    stream   the trio driver: secure_client / secure_server run the handshake and return a SecureStream
    errors   ChannelError and its kinds (HandshakeFailed, ChannelBroken, KeyMismatch, VersionMismatch), their
             stable codes and messages
"""

from seattle.channel.errors import ChannelBroken, ChannelError, HandshakeFailed, KeyMismatch, VersionMismatch
from seattle.channel.stream import PROTOCOL_VERSION, SecureStream, secure_client, secure_server

__all__ = [
    "PROTOCOL_VERSION", "ChannelBroken", "ChannelError", "HandshakeFailed", "KeyMismatch", "SecureStream",
    "VersionMismatch", "secure_client", "secure_server",
]
