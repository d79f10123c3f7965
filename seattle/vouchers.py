"""Relay vouchers: a relay's signed word that a node holds a reservation with it until a given time.

A NATed node cannot be dialled, so its vessel records name relays instead of (or beside) direct addresses. A
reader must not be sent through just any machine the node (or someone forging its records' contents) names:
the voucher proves that the relay itself agreed to relay for this node, and until when. A leaf module (keys,
refusal) because both the relay (which signs) and the overlay's record format (which checks) use it.

On the wire a voucher is 104 bytes:

    signature (64) ‖ relay public key (32) ‖ expiry (8, unsigned big-endian seconds since the epoch)

The signature is Ed25519 by the relay's node key over CONTEXT ‖ relay key ‖ node key ‖ expiry. The node key is
not sent: a voucher always travels inside a record that the node signs, and the reader checks the voucher
against that record's node key, so a voucher copied into another node's record fails. `check` refuses, in
order: a wrong size (`malformed`), a bad signature or another node's voucher (`bad_signature`, one code:
the two cannot be told apart), `expired`, and an expiry further ahead than MAX_LIFETIME (`too_long_lived`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions

from seattle.keys import PUBLIC_KEY_SIZE, Identity, PublicKey
from seattle.refusal import Refused

CONTEXT = b"seattle/relay/voucher/v1\x00"
SIGNATURE_SIZE = 64
_EXPIRY = struct.Struct(">Q")
VOUCHER_SIZE = SIGNATURE_SIZE + PUBLIC_KEY_SIZE + _EXPIRY.size
#: A reservation lasts about an hour and is renewed; a voucher valid for much longer than that is refused, so
#: a relay that was dropped (or turned relaying off) stops being named within hours.
MAX_LIFETIME = 3 * 3600.0

MALFORMED = "malformed"
BAD_SIGNATURE = "bad_signature"
EXPIRED = "expired"
TOO_LONG_LIVED = "too_long_lived"


class VoucherRejected(Refused):
    """A voucher that does not vouch: `code` is one of the module's codes, `message` says why."""


@dataclass(frozen=True)
class Voucher:
    """A checked voucher: `relay` relays for the node the voucher was checked against until `expires`."""

    relay: PublicKey
    expires: int
    raw: bytes


def sign_voucher(relay: Identity, node: PublicKey, expires: int) -> bytes:
    """The relay's voucher for `node` until `expires` (whole seconds since the epoch)."""
    if not isinstance(node, PublicKey):
        raise TypeError(f"node must be a PublicKey, not {type(node).__name__}")
    if isinstance(expires, bool) or not isinstance(expires, int) or not 0 <= expires < 2**64:
        raise ValueError(f"expires must be whole seconds since the epoch, got {expires!r:.40}")
    tail = relay.public_key.raw + _EXPIRY.pack(expires)
    signature = relay.signing_key.sign(CONTEXT + relay.public_key.raw + node.raw + _EXPIRY.pack(expires)).signature
    return bytes(signature) + tail


def check_voucher(raw: object, node: PublicKey, now: float, clock_skew: float = 60.0) -> Voucher:
    """`raw` as a voucher for `node` at time `now`; VoucherRejected with the first failing check."""
    if not isinstance(raw, bytes) or len(raw) != VOUCHER_SIZE:
        raise VoucherRejected(MALFORMED, f"a voucher is {VOUCHER_SIZE} bytes")
    signature, relay = raw[:SIGNATURE_SIZE], raw[SIGNATURE_SIZE:SIGNATURE_SIZE + PUBLIC_KEY_SIZE]
    expiry_bytes = raw[SIGNATURE_SIZE + PUBLIC_KEY_SIZE:]
    try:
        nacl.bindings.crypto_sign_open(signature + CONTEXT + relay + node.raw + expiry_bytes, relay)
    except (nacl.exceptions.BadSignatureError, ValueError):
        raise VoucherRejected(BAD_SIGNATURE, "the voucher is not the named relay's signature for this node") from None
    (expires,) = _EXPIRY.unpack(expiry_bytes)
    if expires + clock_skew < now:
        raise VoucherRejected(EXPIRED, f"the voucher expired {now - expires:.0f} s ago")
    if expires > now + MAX_LIFETIME + clock_skew:
        raise VoucherRejected(TOO_LONG_LIVED, f"the voucher claims {expires - now:.0f} s more; at most "
                                              f"{MAX_LIFETIME:g} s are accepted")
    return Voucher(PublicKey(relay), expires, raw)
