"""Fuzz targets, one per decoder of hostile input: each takes bytes and either returns or raises the decoder's
documented refusal type. Anything else escaping is a finding.

Plain Python, no atheris: `fuzz/run.py` runs a target under atheris (coverage-guided), and tests/test_fuzz.py
replays every saved input in fuzz/regressions/<target>/ through the same function in the fast lane.

Decoders that check a signature before anything else would keep a byte-mutating fuzzer at the signature
forever, so their targets are structure-aware: when the first input byte is odd, the rest of the input is
signed with a fixed key under the decoder's context (in the decoder's layout), and what gets fuzzed is
everything after the signature check.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import nacl.bindings
import nacl.signing

from seattle.errors import BadNodeConfig, BadProfile
from seattle.keys import Identity
from seattle.nodemgr.config import NodeConfig
from seattle.nodemgr.frames import FrameDecoder, FrameError
from seattle.nodemgr.signing import CONTEXT as REQUEST_CONTEXT
from seattle.nodemgr.signing import RequestRejected, RequestVerifier, open_request
from seattle.overlay import messages, records
from seattle.overlay.messages import MessageRejected
from seattle.overlay.nodeid import NetworkParameters
from seattle.overlay.protocol import OverlayNode
from seattle.overlay.records import RecordRejected
from seattle.overlay.routing import RoutingTable
from seattle.planner.profile import CONTEXT as PROFILE_CONTEXT
from seattle.planner.profile import parse_profile
from seattle.resources import ResourceParseError, parse_resources

#: The fixed key structure-aware targets sign with, and the fixed "now" every check runs at.
SIGNER = Identity("fuzz", nacl.signing.SigningKey(bytes(range(32))))
NODE = Identity("fuzz-node", nacl.signing.SigningKey(bytes(range(32, 64))))
NOW = 1_800_000_000.0

Target = Callable[[bytes], None]


def _signed(context: bytes, data: bytes) -> bytes:
    """Odd first byte: the rest signed as an envelope (signature ‖ context ‖ key ‖ rest); else the rest."""
    if not data or not data[0] & 1:
        return data[1:]
    return bytes(SIGNER.signing_key.sign(context + SIGNER.public_key.raw + data[1:]))


def overlay_decode(data: bytes) -> None:
    """`messages.decode`: a Message, an Ack or MessageRejected. Odd first byte: the rest is a signed payload."""
    if data and data[0] & 1:
        key, secret = SIGNER.sodium_key_pair
        payload = data[1:]
        signature = nacl.bindings.crypto_sign(messages.CONTEXT + key + payload, secret)[: messages.SIGNATURE_SIZE]
        data = signature + key + payload
    try:
        messages.decode(data)
    except MessageRejected:
        pass


_ENGINE: list[OverlayNode] = []


def overlay_engine(data: bytes) -> None:
    """`OverlayNode.datagram_received` never raises, for any datagram from any source address.

    Input: 4 bytes of IPv4 source, 2 of source port (0 included: a datagram can carry it), then the datagram
    (signed with a fixed key as in `overlay_decode` when the first byte is odd). One engine takes every input
    in turn, so state built by earlier datagrams meets later ones; its counters must keep adding up.
    """
    if not _ENGINE:
        _ENGINE.append(OverlayNode(NODE, randomness=random.Random(13), network=NetworkParameters.testing()))
    engine = _ENGINE[0]
    if len(data) < 6:
        return
    host = ".".join(str(b) for b in data[:4])
    port = int.from_bytes(data[4:6], "big")
    datagram = data[6:]
    if datagram and datagram[0] & 1:
        key, secret = SIGNER.sodium_key_pair
        payload = datagram[1:]
        signature = nacl.bindings.crypto_sign(messages.CONTEXT + key + payload, secret)[: messages.SIGNATURE_SIZE]
        datagram = signature + key + payload
    before = sum(engine.dropped.values())
    engine.datagram_received(datagram, (host, port), NOW)
    assert sum(engine.dropped.values()) >= before, "a drop counter went down"


def record_verify(data: bytes) -> None:
    """`records.verify`: a VesselRecord or RecordRejected."""
    try:
        records.verify(_signed(records.CONTEXT, data), NOW)
    except RecordRejected:
        pass


def frame_decoder(data: bytes) -> None:
    """`FrameDecoder.feed` over the input cut in three pieces (as TCP may deliver it): messages or FrameError,
    and never more buffered than the frame limit allows."""
    decoder = FrameDecoder(max_frame=4096)
    third = len(data) // 3
    try:
        for piece in (data[:third], data[third:2 * third], data[2 * third:]):
            decoder.feed(piece)
            assert decoder.buffered <= decoder.max_frame + 4, "the decoder buffered past its limit"
        decoder.end_of_stream()
    except FrameError:
        pass


_VERIFIER = RequestVerifier(NODE.public_key)


def open_request_target(data: bytes) -> None:
    """`open_request` on a decoded frame: a request or RequestRejected. Even first byte: the rest is one
    msgpack frame body (a public request map, or any other object); odd: the rest is a signed request."""
    if data and data[0] & 1:
        message: object = _signed(REQUEST_CONTEXT, data)
    else:
        try:
            message = FrameDecoder().feed(len(data[1:]).to_bytes(4, "big") + data[1:])[0]
        except (FrameError, IndexError):
            return
    try:
        open_request(message, _VERIFIER, NOW)
    except RequestRejected:
        pass


def routing_from_dict(data: bytes) -> None:
    """routing.json → `RoutingTable.from_dict(json.loads(...))`: a table, or one of the errors the overlay
    service catches when it loads the file (ValueError, TypeError, RecursionError)."""
    try:
        RoutingTable.from_dict(json.loads(data))
    except (ValueError, TypeError, RecursionError):
        pass


def node_config(data: bytes) -> None:
    """node.json → `NodeConfig.from_json`: a config or BadNodeConfig (the text as `NodeDir` decodes it)."""
    try:
        NodeConfig.from_json(data.decode("utf-8", "replace"), Path("node.json"))
    except BadNodeConfig:
        pass


def profile(data: bytes) -> None:
    """`parse_profile`: a Profile or BadProfile. Odd first byte: the rest is a signed profile envelope."""
    try:
        parse_profile(_signed(PROFILE_CONTEXT, data))
    except BadProfile:
        pass


def resources(data: bytes) -> None:
    """`parse_resources`: Resources or ResourceParseError."""
    try:
        parse_resources(data.decode("utf-8", "replace"))
    except ResourceParseError:
        pass


TARGETS: dict[str, Target] = {
    "overlay_decode": overlay_decode,
    "overlay_engine": overlay_engine,
    "record_verify": record_verify,
    "frame_decoder": frame_decoder,
    "open_request": open_request_target,
    "routing_from_dict": routing_from_dict,
    "node_config": node_config,
    "profile": profile,
    "resources": resources,
}

REGRESSIONS = Path(__file__).resolve().parent / "regressions"


def regression_inputs(name: str) -> list[Path]:
    """The saved inputs of target `name`: crashes found before (kept so they stay fixed) and seeds."""
    folder = REGRESSIONS / name
    return sorted(folder.iterdir()) if folder.is_dir() else []

