"""Relay vouchers (`seattle.vouchers`): what a reader accepts, and every way one can fail."""

from __future__ import annotations

import pytest

from seattle.keys import PublicKey, generate_identity
from seattle.vouchers import (
    BAD_SIGNATURE,
    EXPIRED,
    MALFORMED,
    MAX_LIFETIME,
    TOO_LONG_LIVED,
    VOUCHER_SIZE,
    VoucherRejected,
    check_voucher,
    sign_voucher,
)

NOW = 1_700_000_000.0
RELAY = generate_identity("relay")
NODE = generate_identity("node").public_key


def code_of(raw: object, node: PublicKey = NODE, now: float = NOW) -> str:
    with pytest.raises(VoucherRejected) as rejected:
        check_voucher(raw, node, now)
    return rejected.value.code


def test_a_voucher_is_104_bytes_and_names_its_relay_and_expiry() -> None:
    raw = sign_voucher(RELAY, NODE, int(NOW) + 3600)
    assert len(raw) == VOUCHER_SIZE == 104
    checked = check_voucher(raw, NODE, NOW)
    assert (checked.relay, checked.expires, checked.raw) == (RELAY.public_key, int(NOW) + 3600, raw)


def test_forged_other_nodes_expired_and_overlong_vouchers_are_refused() -> None:
    raw = sign_voucher(RELAY, NODE, int(NOW) + 3600)
    assert code_of(raw[:-1]) == MALFORMED
    assert code_of("text") == MALFORMED
    flipped = bytearray(raw)
    flipped[3] ^= 1
    assert code_of(bytes(flipped)) == BAD_SIGNATURE
    later = raw[:-8] + (int(NOW) + 7200).to_bytes(8, "big")  # a longer expiry than the relay signed
    assert code_of(later) == BAD_SIGNATURE
    impostor = generate_identity("impostor").public_key.raw
    assert code_of(raw[:64] + impostor + raw[96:]) == BAD_SIGNATURE  # another relay's key
    assert code_of(raw, node=generate_identity("other").public_key) == BAD_SIGNATURE  # another node's voucher
    assert code_of(raw, now=NOW + 3600 + 61) == EXPIRED
    assert check_voucher(raw, NODE, NOW + 3600 + 59).expires == int(NOW) + 3600  # within the clock skew
    far = sign_voucher(RELAY, NODE, int(NOW + MAX_LIFETIME) + 3600)
    assert code_of(far) == TOO_LONG_LIVED


def test_signing_checks_its_arguments() -> None:
    with pytest.raises(ValueError):
        sign_voucher(RELAY, NODE, -1)
    with pytest.raises(TypeError):
        sign_voucher(RELAY, NODE.raw, 5)  # type: ignore[arg-type]
