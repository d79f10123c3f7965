"""The Noise core's own rules: lengths refused before any crypto, the nonce limit, turn order, bad keys."""

from __future__ import annotations

import pytest

from seattle.channel.errors import ChannelError
from seattle.channel.noise import MAX_MESSAGE, MAX_NONCE, MAX_PLAINTEXT, CipherState, HandshakeState, KeyPair


def _pair() -> tuple[HandshakeState, HandshakeState]:
    return (HandshakeState(initiator=True, static=KeyPair.generate()),
            HandshakeState(initiator=False, static=KeyPair.generate()))


def _complete() -> tuple[HandshakeState, HandshakeState]:
    initiator, responder = _pair()
    responder.read_message(initiator.write_message())
    initiator.read_message(responder.write_message())
    responder.read_message(initiator.write_message())
    return initiator, responder


def test_the_nonce_is_four_zero_bytes_and_a_little_endian_counter() -> None:
    """Counter 1 under a key equals libsodium's encryption with nonce 00000000 01000000 00000000."""
    import nacl.bindings

    key = bytes(range(32))
    cipher = CipherState(key)
    cipher.encrypt_with_ad(b"", b"zero")
    expected = nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(b"one", b"ad", bytes(4) + bytes([1]) + bytes(7),
                                                                       key)
    assert cipher.encrypt_with_ad(b"ad", b"one") == expected


def test_the_last_nonce_is_refused_both_ways() -> None:
    sender, receiver = CipherState(bytes(32)), CipherState(bytes(32))
    sender.nonce = receiver.nonce = MAX_NONCE - 1
    assert receiver.decrypt_with_ad(b"", sender.encrypt_with_ad(b"", b"last")) == b"last"
    with pytest.raises(ChannelError) as caught:
        sender.encrypt_with_ad(b"", b"one too many")
    assert caught.value.code == "nonce_exhausted"
    with pytest.raises(ChannelError) as caught:
        receiver.decrypt_with_ad(b"", bytes(32))
    assert caught.value.code == "nonce_exhausted"


def test_sizes_are_refused_before_any_crypto() -> None:
    cipher = CipherState(bytes(32))
    with pytest.raises(ChannelError) as caught:
        cipher.encrypt_with_ad(b"", bytes(MAX_PLAINTEXT + 1))
    assert caught.value.code == "message_too_large"
    with pytest.raises(ChannelError) as caught:
        cipher.decrypt_with_ad(b"", bytes(MAX_MESSAGE + 1))
    assert caught.value.code == "message_too_large"
    assert cipher.nonce == 0
    _, responder = _pair()
    with pytest.raises(ChannelError) as caught:
        responder.read_message(bytes(MAX_MESSAGE + 1))
    assert caught.value.code == "message_too_large"


@pytest.mark.parametrize("step", [0, 1, 2])
def test_a_short_handshake_message_is_refused(step: int) -> None:
    initiator, responder = _pair()
    if step >= 1:
        responder.read_message(initiator.write_message())
    if step == 2:
        initiator.read_message(responder.write_message())
    reader = responder if step % 2 == 0 else initiator
    with pytest.raises(ChannelError) as caught:
        reader.read_message(bytes((32, 96, 64)[step] - 1))
    assert caught.value.code == "bad_message"


def test_a_failed_decrypt_leaves_the_counter_alone() -> None:
    initiator, responder = _complete()
    send, _ = initiator.split()
    _, receive = responder.split()
    good = send.encrypt_with_ad(b"", b"hello")
    with pytest.raises(ChannelError):
        receive.decrypt_with_ad(b"", good[:-1] + bytes([good[-1] ^ 1]))
    assert receive.decrypt_with_ad(b"", good) == b"hello"


def test_a_low_order_ephemeral_is_refused() -> None:
    _, responder = _pair()
    responder.read_message(bytes(32))  # the all-zero point: every DH with it is zero
    with pytest.raises(ChannelError) as caught:
        responder.write_message()
    assert caught.value.code == "bad_key"


def test_messages_must_come_in_turn() -> None:
    initiator, responder = _pair()
    with pytest.raises(RuntimeError):
        responder.write_message()
    with pytest.raises(RuntimeError):
        initiator.read_message(bytes(32))
    with pytest.raises(RuntimeError):
        initiator.split()
    initiator, _ = _complete()
    with pytest.raises(RuntimeError):
        initiator.write_message()


def test_private_keys_do_not_appear_in_repr() -> None:
    pair = KeyPair.generate()
    assert pair.private.hex() not in repr(pair)
