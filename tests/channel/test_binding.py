"""The identity binding: the 96-byte payload in which an Ed25519 identity signs its Noise static key."""

from __future__ import annotations

import pytest

from seattle.channel.binding import PAYLOAD_SIZE, STATEMENT_PREFIX, local_static, verify_payload
from seattle.channel.errors import ChannelError
from seattle.channel.noise import KeyPair
from seattle.keys import generate_identity

ALICE = generate_identity("alice")
BOB = generate_identity("bob")


def test_a_genuine_payload_proves_its_identity() -> None:
    alice = local_static(ALICE)
    assert len(alice.payload) == PAYLOAD_SIZE == 96
    assert alice.payload[:32] == ALICE.public_key.raw
    assert verify_payload(alice.payload, alice.key_pair.public, required=True) == ALICE.public_key


def test_the_static_key_is_stable_per_identity_and_distinct_between_identities() -> None:
    assert local_static(ALICE) is local_static(ALICE)
    assert local_static(ALICE).key_pair.public != local_static(BOB).key_pair.public
    again = generate_identity("alice-again")
    assert local_static(again).key_pair.public != local_static(ALICE).key_pair.public


def test_the_signature_is_domain_separated() -> None:
    """A signature over the bare static key (or any other statement) proves nothing."""
    static = local_static(ALICE).key_pair.public
    bare = ALICE.signing_key.sign(static).signature
    assert STATEMENT_PREFIX == b"seattle-noise-static-key:"
    with pytest.raises(ChannelError) as caught:
        verify_payload(ALICE.public_key.raw + bare, static, required=True)
    assert caught.value.code == "bad_identity"


@pytest.mark.parametrize("forgery", ["wrong_signature", "wrong_key", "swapped_static", "short", "long", "zero_key"])
def test_a_forged_payload_is_refused(forgery: str) -> None:
    alice = local_static(ALICE)
    genuine = alice.payload
    payload, static = {
        "wrong_signature": (genuine[:-1] + bytes([genuine[-1] ^ 1]), alice.key_pair.public),
        "wrong_key": (BOB.public_key.raw + genuine[32:], alice.key_pair.public),
        "swapped_static": (genuine, local_static(BOB).key_pair.public),
        "short": (genuine[:-1], alice.key_pair.public),
        "long": (genuine + b"\x00", alice.key_pair.public),
        "zero_key": (bytes(32) + genuine[32:], alice.key_pair.public),
    }[forgery]
    with pytest.raises(ChannelError) as caught:
        verify_payload(payload, static, required=False)
    assert caught.value.code == "bad_identity"


def test_an_empty_payload_is_anonymous_unless_an_identity_is_required() -> None:
    static = KeyPair.generate().public
    assert verify_payload(b"", static, required=False) is None
    with pytest.raises(ChannelError) as caught:
        verify_payload(b"", static, required=True)
    assert caught.value.code == "bad_identity"
