"""Signed envelopes: `signature(64) ‖ context ‖ signer key(32) ‖ msgpack map`, one format for every signed thing
that travels as bytes (node manager requests, vessel advertisements).

The signature is Ed25519 in libsodium's combined mode over everything after it, so the receiver checks the bytes
exactly as received with one `crypto_sign_open` and re-encodes nothing. The context names the purpose and its
version, so a signature made for one purpose can never pass as another. `unseal` checks in a fixed order —
shape, signature, context, envelope — and callers turn its `EnvelopeRejected` into their own error type, whose
later checks (times, destinations, replays) are theirs.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import nacl.bindings
import nacl.exceptions

from seattle.boundedmsgpack import Limits, unpack
from seattle.keys import PUBLIC_KEY_SIZE, Identity, PublicKey
from seattle.refusal import Refused

SIGNATURE_SIZE = nacl.bindings.crypto_sign_BYTES
MALFORMED = "malformed"
BAD_SIGNATURE = "bad_signature"


class EnvelopeRejected(Refused):
    """An envelope `unseal` refused: `code` is MALFORMED or BAD_SIGNATURE, `message` says why."""


def header_size(context: bytes) -> int:
    """Bytes before the msgpack envelope."""
    return SIGNATURE_SIZE + len(context) + PUBLIC_KEY_SIZE


def seal(identity: Identity, context: bytes, fields: dict[str, Any]) -> bytes:
    """The signed bytes of `fields` under `context`, signed by `identity`."""
    envelope = msgpack.packb(fields, use_bin_type=True)
    return bytes(identity.signing_key.sign(context + identity.public_key.raw + envelope))


def unseal(raw: object, context: bytes, field_names: frozenset[str], what: str, purpose: str,
           *, limits: Limits | None = None, optional: frozenset[str] = frozenset()) -> tuple[bytes, dict[str, Any]]:
    """The signer's raw key and the envelope's fields, once `raw` is shown to be signed by that key under
    `context` and to hold exactly `field_names` (and any of `optional`, fields a later version added).
    Messages call it a `what` ("request"), and a `purpose`
    ("node manager request") when the context is wrong. With `limits` the envelope is decoded within them
    (`boundedmsgpack`): keys are free to mint, so a valid signature says nothing about the envelope's size."""
    start = SIGNATURE_SIZE + len(context)
    if not isinstance(raw, bytes) or len(raw) <= start + PUBLIC_KEY_SIZE:
        raise EnvelopeRejected(MALFORMED, f"a signed {what} is bytes: signature, context, key, envelope")
    signer = raw[start:start + PUBLIC_KEY_SIZE]
    try:
        nacl.bindings.crypto_sign_open(raw, signer)
    except nacl.exceptions.BadSignatureError:
        raise EnvelopeRejected(
            BAD_SIGNATURE,
            f"the signature does not match the {what} and the key it names ({PublicKey(signer).to_text()})",
        ) from None
    if raw[SIGNATURE_SIZE:start] != context:
        raise EnvelopeRejected(MALFORMED, f"not a {purpose} of a version this program understands")
    try:
        body = memoryview(raw)[start + PUBLIC_KEY_SIZE:]
        fields = msgpack.unpackb(body, raw=False) if limits is None else unpack(body, limits)
    except (ValueError, TypeError, msgpack.UnpackException):
        raise EnvelopeRejected(MALFORMED, "the signed envelope is not valid msgpack") from None
    if not isinstance(fields, dict) or not field_names <= set(fields) <= field_names | optional:
        extra = f" (and optionally {sorted(optional)})" if optional else ""
        raise EnvelopeRejected(MALFORMED, f"the signed envelope must be a map of {sorted(field_names)}{extra}")
    return signer, fields


def finite(what: str, value: object) -> float:
    """`value` as a float if it is a finite int or float (not a bool); ValueError naming `what` otherwise."""
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range
            number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number of seconds, got {value!r:.60}")
    return number
