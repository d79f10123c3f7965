"""The published Noise test vectors for Noise_XX_25519_ChaChaPoly_BLAKE2b, replayed byte for byte.

Each vector fixes both sides' static and ephemeral keys and the prologue; every handshake and transport message
must come out exactly as published, and each side must read the other's message back to its payload.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from seattle.channel.errors import ChannelError
from seattle.channel.noise import PROTOCOL_NAME, CipherState, HandshakeState, KeyPair

VECTOR_DIR = Path(__file__).parent / "vectors"


def _vectors() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(VECTOR_DIR.glob("*.json")):
        for vector in json.loads(path.read_text())["vectors"]:
            found.append((f"{path.stem}", vector))
    return found


VECTORS = _vectors()


def test_both_published_files_are_present() -> None:
    assert [name for name, _ in VECTORS] == ["cacophony_xx", "snow_xx"]
    assert all(vector["protocol_name"] == PROTOCOL_NAME.decode() for _, vector in VECTORS)


def _side(vector: dict[str, Any], prefix: str, initiator: bool) -> HandshakeState:
    return HandshakeState(
        initiator=initiator,
        static=KeyPair.from_private(bytes.fromhex(vector[f"{prefix}_static"])),
        ephemeral=KeyPair.from_private(bytes.fromhex(vector[f"{prefix}_ephemeral"])),
        prologue=bytes.fromhex(vector[f"{prefix}_prologue"]),
    )


@pytest.mark.parametrize(("name", "vector"), VECTORS, ids=[name for name, _ in VECTORS])
def test_vector_replays_byte_for_byte(name: str, vector: dict[str, Any]) -> None:
    initiator, responder = _side(vector, "init", True), _side(vector, "resp", False)
    transport: dict[bool, tuple[CipherState, CipherState]] = {}
    for index, message in enumerate(vector["messages"]):
        payload, expected = bytes.fromhex(message["payload"]), bytes.fromhex(message["ciphertext"])
        writer, reader = (initiator, responder) if index % 2 == 0 else (responder, initiator)
        if index < 3:
            assert writer.write_message(payload) == expected, f"{name}: handshake message {index + 1}"
            assert reader.read_message(expected) == payload
        else:
            if not transport:
                transport = {True: initiator.split(), False: responder.split()}
            send, _ = transport[writer.initiator]
            _, receive = transport[reader.initiator]
            assert send.encrypt_with_ad(b"", payload) == expected, f"{name}: transport message {index + 1}"
            assert receive.decrypt_with_ad(b"", expected) == payload
    assert initiator.complete and responder.complete
    assert initiator.handshake_hash == responder.handshake_hash
    assert initiator.remote_static == KeyPair.from_private(bytes.fromhex(vector["resp_static"])).public
    assert responder.remote_static == KeyPair.from_private(bytes.fromhex(vector["init_static"])).public


def test_a_changed_prologue_fails_the_second_message() -> None:
    _, vector = VECTORS[0]
    initiator = _side(vector, "init", True)
    responder = _side({**vector, "resp_prologue": "00" + vector["resp_prologue"]}, "resp", False)
    responder.read_message(initiator.write_message(b""))
    with pytest.raises(ChannelError) as caught:
        initiator.read_message(responder.write_message(b""))
    assert caught.value.code == "decrypt_failed"
