"""The overlay's datagrams: one message per UDP packet, encoded and checked here and nowhere else.

Sans-IO: no sockets, no clock. Every request and answer is signed; the one other datagram is an `ack`, which
is not (below). Layout of a signed datagram (at most MAX_DATAGRAM bytes, so it is one UDP packet on any path
with a 1,500-byte MTU, IPv6 and tunnel headers included):

    signature (64) ‖ sender public key (32) ‖ payload (msgpack array [kind, txid, body] or, for a request
                                                     sent to a known node, [kind, txid, body, to, at];
                                                     a request may end with one more element, `pad`,
                                                     an answer with one, `cookie`)

`to` (the destination's 32-byte node id) and `at` (the sender's clock, seconds since the epoch) bind a request
to one receiver and one moment, under the signature. A receiver that finds its own id there and a fresh `at`
knows a full node made the request for it just now, so its answer carries a `cookie` (a MAC of the sender's
id and address), and it takes the sender into its routing table when an `ack` bringing that cookie back proves
the sender receives at that address (`protocol.OverlayNode._answer`); a stale or misdirected capture,
replayed from a forged source, gets no cookie. Bootstrap requests (whose sender does not know the receiver's
id yet) and answers without a cookie use the three-element form.

An ack is ACK_SIZE bytes, fewer than any signed datagram, and unsigned:

    ACK_TAG (23) ‖ sender's node id (32) ‖ cookie (8)

The cookie is a MAC, under a secret only the answerer holds, of the id and the address it sent the cookie to,
given only for a fresh request that id signed; so an ack that brings it back from that address proves what
admission needs, that the id's requester receives there, and a signature would prove nothing more about the
address. An ack is answered by nothing. What the signature it once carried still added, and why that is given
up (a third of a join's datagrams, each a signature and a verification): `protocol`'s module docstring.

Two fields may ride in a body beside its kind's own, and are lifted out of it into `Message` attributes: in
requests, `client` (true, or absent: the sender is a DHT client, so no receiver takes it into its routing
table), and in answers, `seen` (the requester's address as the answerer saw it: IP ‖ port, 6 or 18 bytes), from which a
node learns the address the internet sees it at (`seattle.overlay.reachability`).

A probe is PROBE_SIZE bytes, also unsigned, the one datagram sent from another port than the overlay's:

    PROBE_TAG (25) ‖ nonce (16)

It is a dial-back's test (`protocol`: a `dial_back` request names a nonce, the peer sends it in a probe from
a port of its own to the address it saw the request come from). Only the requester, who chose the nonce, can
match it; anybody else drops it.

`pad` (bytes, any content; zeros are sent) makes a request as large as the answer it asks for. A node answers
an address it has not yet seen answer a request of its own with no more bytes than the request carried, so a
spoofed source gains no amplification (`protocol`'s module docstring); a requester that wants a full answer
pays for it in its request (`encode(..., pad_to=...)`).

The signature is Ed25519 over CONTEXT ‖ sender key ‖ payload. CONTEXT is not sent (both ends know it) but it
differs from the node manager's and the advertisements' contexts, so no other signed object of the same key
can pass as an overlay message. The sender's node id is BLAKE2b-256 of the key it carries, so a message that
verifies proves its sender holds the key behind the id it claims.

Every message is signed, rather than only a challenge on first contact, because of what it costs and what it
saves: decoding and verifying a message takes about 70 µs here, encoding and signing about 30 µs, so even
1,000 messages a second use a tenth of one core, far beyond a DHT node's load. A challenge scheme would need
per-peer session state, an extra round trip before the first useful answer (and a lookup talks mostly to
peers it has never met), and would leave later unsigned replies open to forgery by anyone who can guess a
transaction id.

`decode` checks, in this order, and stops at the first failure (codes in `MessageRejected.code`):

    too_large       more than MAX_DATAGRAM bytes (costs nothing, so it comes first)
    malformed       too short, an ACK_SIZE datagram without ACK_TAG (a PROBE_SIZE one without PROBE_TAG),
                    not msgpack, or a kind, txid or body that is not as `BODIES` describes
    bad_signature   the signature does not verify under the key the message carries

All cheap checks run before the signature, so junk costs a node no cryptography, and an ack none at all.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

import msgpack
import nacl.bindings
import nacl.exceptions

from seattle.keys import PUBLIC_KEY_SIZE, Identity, PublicKey
from seattle.overlay.nodeid import ID_BYTES, Contact, NodeId, unpack_contact
from seattle.refusal import Refused

CONTEXT = b"seattle/overlay/message/v2\x00"
MAX_DATAGRAM = 1400
SIGNATURE_SIZE = nacl.bindings.crypto_sign_BYTES
TXID_SIZE = 8
TOKEN_SIZE = 16
COOKIE_SIZE = 8
#: What starts an ack (module docstring); ACK_SIZE is below any signed datagram's size, so the two never meet.
ACK_TAG = b"seattle/overlay/ack/v1\x00"
ACK_SIZE = len(ACK_TAG) + ID_BYTES + COOKIE_SIZE
#: What starts a probe (module docstring); its size is below any signed datagram's and differs from an ack's.
PROBE_TAG = b"seattle/overlay/probe/v1\x00"
NONCE_SIZE = 16
PROBE_SIZE = len(PROBE_TAG) + NONCE_SIZE
#: A vessel record is at most 1,024 bytes (`seattle.overlay.records.MAX_RECORD_SIZE`); a little slack here
#: lets a newer record format grow without a new message version, and the store enforces the real limit.
MAX_RECORD_BYTES = 1200
MAX_CODE_LENGTH = 64
MAX_TEXT_LENGTH = 512
_HEADER = SIGNATURE_SIZE + PUBLIC_KEY_SIZE

TOO_LARGE = "too_large"
MALFORMED = "malformed"
BAD_SIGNATURE = "bad_signature"
CHECK_ORDER = (TOO_LARGE, MALFORMED, BAD_SIGNATURE)


class Kind(StrEnum):
    """Signed message kinds: five requests, their five answers, and an error answer to any request. (An
    ack and a probe are no signed messages: `Ack`, `Probe`.)"""

    PING = "ping"
    PONG = "pong"
    FIND_NODE = "find_node"
    NODES = "nodes"
    GET_RECORDS = "get_records"
    RECORDS = "records"
    ADD_RECORD = "add_record"
    ADDED = "added"
    ERROR = "error"
    DIAL_BACK = "dial_back"
    DIALED = "dialed"


#: Kinds by their wire names and back: dict lookups, where `Kind(name)` and `kind.value` run the enum machinery
#: (Python 3.11 reads members and their values through descriptors) for every datagram.
_KINDS: dict[str, Kind] = {kind.value: kind for kind in Kind}
_WIRE_NAMES: dict[Kind, str] = {kind: kind.value for kind in Kind}

#: The answer each request expects (ERROR may answer any of them).
RESPONSE_TO = {
    Kind.PING: Kind.PONG,
    Kind.FIND_NODE: Kind.NODES,
    Kind.GET_RECORDS: Kind.RECORDS,
    Kind.ADD_RECORD: Kind.ADDED,
    Kind.DIAL_BACK: Kind.DIALED,
}


class MessageRejected(Refused):
    """A datagram `decode` refused, or a message `encode` cannot send: stable `code`, readable `message`."""


@dataclass(frozen=True, slots=True)
class Message:
    """A verified message. Body values are already parsed: "nodes" holds `Contact`s, ids are `NodeId`s."""

    kind: Kind
    txid: bytes
    sender: PublicKey
    body: dict[str, Any]
    #: For a bound request (module docstring): the receiver it was made for and when; else None.
    to: NodeId | None = None
    at: float | None = None
    #: For an answer to a requester not yet proven at its address: what its ack must bring back; else None.
    cookie: bytes | None = None
    #: For a request: true when the sender is a DHT client, which enters no routing table (`protocol`).
    client: bool = False
    #: In an answer: our address as its sender saw it (`reachability`); else None.
    seen: tuple[str, int] | None = None
    #: The id `sender`'s key stands for, derived when first asked (the engine asks several times a message).
    _sender_id: NodeId | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def sender_id(self) -> NodeId:
        sender_id = self._sender_id
        if sender_id is None:
            sender_id = NodeId.from_public_key(self.sender)
            object.__setattr__(self, "_sender_id", sender_id)
        return sender_id

    @property
    def is_request(self) -> bool:
        return self.kind in RESPONSE_TO


@dataclass(frozen=True, slots=True)
class Ack:
    """A well-formed ack (module docstring): who says it got `cookie`. Nothing in it is proven until the
    receiver finds `cookie` is the one it gave `sender_id` at the ack's source address."""

    sender_id: NodeId
    cookie: bytes


@dataclass(frozen=True, slots=True)
class Probe:
    """A well-formed probe (module docstring): the nonce of a dial-back; who sent it is not proven."""

    nonce: bytes


# --- body fields: each is (to wire form, from wire form raising ValueError) --------------------------------


def _node_id_field(value: Any) -> NodeId:
    if not isinstance(value, bytes):
        raise ValueError(f"must be {ID_BYTES} bytes, got {type(value).__name__}")
    return NodeId.from_bytes(value)


def _fixed_bytes(size: int) -> Callable[[Any], bytes]:
    def check(value: Any) -> bytes:
        if not isinstance(value, bytes) or len(value) != size:
            raise ValueError(f"must be {size} bytes, got {value!r:.40}")
        return value

    return check


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise ValueError(f"must be an int in 0..2**32-1, got {value!r:.40}")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r:.40}")
    return value


def _text(limit: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or len(value) > limit:
            raise ValueError(f"must be a string of at most {limit} characters, got {value!r:.40}")
        return value

    return check


def _record(value: Any) -> bytes:
    if not isinstance(value, bytes) or not 0 < len(value) <= MAX_RECORD_BYTES:
        raise ValueError(f"must be 1..{MAX_RECORD_BYTES} bytes, got {value!r:.40}")
    return value


def _records(value: Any) -> list[bytes]:
    if not isinstance(value, list):
        raise ValueError(f"must be a list of records, got {type(value).__name__}")
    return [_record(item) for item in value]




def _contacts(value: Any) -> list[Contact]:
    """A list of packed contacts (`Contact.packed`); each known one costs one cache lookup."""
    if value.__class__ is not list:  # its length is bounded by the datagram's
        raise ValueError(f"must be a list of contacts, got {type(value).__name__}")
    try:
        return [unpack_contact(item) for item in value]
    except TypeError:  # an unhashable item (a list, a map): not bytes, so not a contact
        raise ValueError("a contact is packed as bytes: id (32) + IP (4 or 16) + port (2)") from None


def _time(value: Any) -> float:
    if value.__class__ is float and 0 <= value < math.inf:  # the usual case, checked cheaply
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"a request's time is a finite number of seconds >= 0, got {value!r:.40}")
    return float(value)


def _address(value: Any) -> tuple[str, int]:
    """A packed address: IPv4 (4) or IPv6 (16) bytes, then the port (2, big-endian, 1..65535)."""
    if value.__class__ is not bytes or len(value) not in (6, 18):
        raise ValueError(f"an address is packed as 6 or 18 bytes, got {value!r:.40}")
    return _unpacked_address(value)


@lru_cache(maxsize=1 << 14)
def _unpacked_address(value: bytes) -> tuple[str, int]:
    """`_address` once its size is checked. Cached: every answer says where it saw its requester, and a
    node's requests go out from one address (bounded, so distinct junk costs at most the cache's size)."""
    port = int.from_bytes(value[-2:], "big")
    if not port:
        raise ValueError("an address's port is 1..65535, got 0")
    return str(ipaddress.ip_address(value[:-2])), port


@lru_cache(maxsize=1 << 14)
def _address_wire(value: tuple[str, int]) -> bytes:
    """Cached: every answer says where it saw its requester, twice (sized, then encoded), and peers are few."""
    host, port = value
    return ipaddress.ip_address(host).packed + int(port).to_bytes(2, "big")


def _optional_flag(value: Any) -> bool | None:
    return None if value is None else _flag(value)


def _node_id_wire(value: Any) -> bytes:
    if not isinstance(value, NodeId):
        raise ValueError(f"must be a NodeId, got {type(value).__name__}")
    return value.to_bytes()


def _contacts_wire(value: Any) -> list[bytes]:
    # 38 bytes per IPv4 contact, 50 per IPv6 one: 20 IPv6 contacts still fit one datagram.
    if isinstance(value, list | tuple):
        wire = [contact.packed for contact in value if contact.__class__ is Contact]
        if len(wire) == len(value):
            return wire
    raise ValueError(f"must be a list of Contacts, got {value!r:.60}")


_txid = _fixed_bytes(TXID_SIZE)
_cookie = _fixed_bytes(COOKIE_SIZE)
#: One packer for every message: `msgpack.packb` builds a new one, with a fresh 256 KiB buffer, per call. It
#: holds no state between calls (autoreset), and packing plain values runs entirely under the GIL.
_PACKER = msgpack.Packer(use_bin_type=True)

_Parse = Callable[[Any], Any]
#: Fields whose Python form differs from their wire form; every other field travels as it is.
_WIRE: dict[_Parse, Callable[[Any], Any]] = {_node_id_field: _node_id_wire, _contacts: _contacts_wire}

#: The fields of each kind's body and how each is parsed; bodies must have exactly these keys.
BODIES: dict[Kind, dict[str, _Parse]] = {
    Kind.PING: {},
    Kind.PONG: {},
    Kind.FIND_NODE: {"target": _node_id_field},
    Kind.NODES: {"nodes": _contacts},
    Kind.GET_RECORDS: {"key": _node_id_field, "skip": _count},
    Kind.RECORDS: {"records": _records, "more": _flag, "token": _fixed_bytes(TOKEN_SIZE)},
    Kind.ADD_RECORD: {"record": _record, "token": _fixed_bytes(TOKEN_SIZE)},
    Kind.ADDED: {},
    Kind.ERROR: {"code": _text(MAX_CODE_LENGTH), "message": _text(MAX_TEXT_LENGTH)},
    # tcp: whether the node manager's TCP port is to be dialled too; in the answer, whether it was reached
    # (None: not tried). No address: a dial-back goes only where the request came from (`protocol`).
    Kind.DIAL_BACK: {"nonce": _fixed_bytes(NONCE_SIZE), "tcp": _flag},
    Kind.DIALED: {"tcp": _optional_flag},
}
#: The kinds that answer a request: only they may carry a cookie.
ANSWERS = frozenset([*RESPONSE_TO.values(), Kind.ERROR])


#: The fields a body may carry beside its kind's own (module docstring): `client` a request's, `seen` an answer's.
_CLIENT, _SEEN = "client", "seen"


def _parse_body(kind: Kind, body: Any) -> tuple[dict[str, Any], bool, tuple[str, int] | None]:
    """(the kind's own fields parsed, the client flag, the seen address)."""
    fields = BODIES[kind]
    if not isinstance(body, dict):
        raise ValueError(f"a {kind} body is a map with exactly the keys {sorted(fields)}")
    client, seen = False, None
    if body.keys() != fields.keys():
        body = dict(body)
        if _CLIENT in body and kind in RESPONSE_TO:  # present, it is true: a full node leaves it out
            if body.pop(_CLIENT) is not True:
                raise ValueError(f"a body's {_CLIENT!r} is true or absent")
            client = True
        if _SEEN in body and kind in ANSWERS:
            seen = _address(body.pop(_SEEN))
        if body.keys() != fields.keys():
            raise ValueError(f"a {kind} body is a map with exactly the keys {sorted(fields)}")
    parsed = {}
    for name, parse in fields.items():
        try:
            parsed[name] = parse(body[name])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{kind} field {name!r} {error}") from None
    return parsed, client, seen


# --- encode / decode ---------------------------------------------------------------------------------------


def encode(
    identity: Identity,
    kind: Kind,
    txid: bytes,
    body: dict[str, Any],
    *,
    to: NodeId | None = None,
    at: float | None = None,
    pad_to: int = 0,
    cookie: bytes | None = None,
    client: bool = False,
    seen: tuple[str, int] | None = None,
    limit: int = MAX_DATAGRAM,
) -> bytes:
    """Sign and encode a message; MessageRejected (code malformed / too_large) if it cannot be sent as is.

    `to` and `at` (both or neither, requests only) bind a request to its receiver and time. `pad_to`
    (requests only, at most MAX_DATAGRAM) pads a shorter request to exactly that many bytes (one
    byte short stays so: no pad element is that small). `cookie` (answers only) is what the requester's ack
    must bring back. `client` (requests only) marks the sender a DHT client; `seen` (answers only) is the
    requester's address as we saw it. `limit` (at most MAX_DATAGRAM) is the most bytes it may take: a larger
    message is refused (too_large) before it is signed, so an answer that may not fit its room costs one
    encoding, not a size estimate and then the encoding.

    The body is checked by the same parsers `decode` uses, so a node never sends what its peers would drop.
    """
    if not isinstance(identity, Identity):
        raise TypeError(f"identity must be an Identity, not {type(identity).__name__}")
    payload = _payload(kind, txid, body, to, at, pad_to, cookie, client, seen)
    size = _HEADER + len(payload)
    if size > min(limit, MAX_DATAGRAM):
        raise MessageRejected(TOO_LARGE, f"a {kind} message of {size} bytes exceeds {min(limit, MAX_DATAGRAM)}")
    key, secret = identity.sodium_key_pair
    signature = nacl.bindings.crypto_sign(CONTEXT + key + payload, secret)[:SIGNATURE_SIZE]
    return signature + key + payload


def encode_ack(sender_id: NodeId, cookie: bytes) -> bytes:
    """The ack that brings `cookie` back from `sender_id` (module docstring); MessageRejected (malformed) if
    the cookie is not COOKIE_SIZE bytes."""
    if not isinstance(sender_id, NodeId):
        raise TypeError(f"an ack's sender is a NodeId, not {type(sender_id).__name__}")
    if cookie.__class__ is not bytes or len(cookie) != COOKIE_SIZE:
        raise MessageRejected(MALFORMED, f"an ack's cookie is {COOKIE_SIZE} bytes, got {cookie!r:.40}")
    return ACK_TAG + sender_id.raw + cookie


def encoded_size(kind: Kind, body: dict[str, Any], *, bound: bool = False, cookie: bool = False,
                 client: bool = False, seen: tuple[str, int] | None = None) -> int:
    """How many bytes `encode` makes of this message (bound: with `to` and `at`; cookie: with a cookie;
    client and seen as `encode`'s), without signing it. A node sizes its padding and its answers' room with
    this; MessageRejected as `encode`."""
    to, at = (NodeId(0), 0.0) if bound else (None, None)
    cookie_bytes = bytes(COOKIE_SIZE) if cookie else None
    return _HEADER + len(_payload(kind, bytes(TXID_SIZE), body, to, at, 0, cookie_bytes, client, seen))


def encode_probe(nonce: bytes) -> bytes:
    """The probe of a dial-back (module docstring); MessageRejected (malformed) if the nonce is not
    NONCE_SIZE bytes."""
    if nonce.__class__ is not bytes or len(nonce) != NONCE_SIZE:
        raise MessageRejected(MALFORMED, f"a probe's nonce is {NONCE_SIZE} bytes, got {nonce!r:.40}")
    return PROBE_TAG + nonce


def _payload(kind: Kind, txid: bytes, body: dict[str, Any], to: NodeId | None, at: float | None,
             pad_to: int, cookie: bytes | None, client: bool = False, seen: tuple[str, int] | None = None
             ) -> bytes:
    """The msgpack payload `encode` signs: checked as `decode` would check it, padded to `pad_to` in all."""
    try:
        if kind.__class__ is not Kind:
            kind = Kind(kind)
        _txid(txid)
        fields = BODIES[kind]
        if not isinstance(body, dict) or body.keys() != fields.keys():
            raise ValueError(f"a {kind} body is a map with exactly the keys {sorted(fields)}")
        wire = {}
        for name, parse in fields.items():
            try:
                to_wire = _WIRE.get(parse)
                # A field with a wire form is built from checked objects (`Contact`, `NodeId`), so its wire
                # form is valid by construction; every other field travels as given and is parsed here.
                wire[name] = parse(body[name]) if to_wire is None else to_wire(body[name])
            except ValueError as error:
                raise ValueError(f"{kind} field {name!r} {error}") from None
        if client:
            if kind not in RESPONSE_TO:
                raise ValueError(f"only requests say their sender is a client, not a {kind}")
            wire[_CLIENT] = True
        if seen is not None:
            if kind not in ANSWERS:
                raise ValueError(f"only answers say where they saw the requester, not a {kind}")
            wire[_SEEN] = _address_wire(seen)
        fields_list: list[Any] = [_WIRE_NAMES[kind], txid, wire]
        if (to is None) != (at is None):
            raise ValueError("`to` and `at` bind a request together: give both or neither")
        if to is not None:
            if kind not in RESPONSE_TO:
                raise ValueError(f"only requests are bound to a receiver, not a {kind}")
            fields_list += [_node_id_wire(to), _time(at)]
        if pad_to.__class__ is not int or not 0 <= pad_to <= MAX_DATAGRAM:
            raise ValueError(f"pad_to must be an int in 0..{MAX_DATAGRAM}, got {pad_to!r:.40}")
        if pad_to and kind not in RESPONSE_TO:
            raise ValueError(f"only requests are padded, not a {kind}")
        if cookie is not None:
            if kind not in ANSWERS:
                raise ValueError(f"only answers carry a cookie, not a {kind}")
            fields_list.append(_cookie(cookie))
    except (TypeError, ValueError) as error:
        raise MessageRejected(MALFORMED, f"cannot encode a {kind!s:.20} message: {error}") from None
    payload: bytes = _PACKER.pack(fields_list)
    short = pad_to - _HEADER - len(payload)
    if short < 2:  # no pad element is smaller than its 2-byte header: a request one byte short stays so
        return payload
    # Appended by hand, to hit `pad_to` exactly: the array gains one element (a fixarray: its count is in the
    # first byte), a bin 8 of up to 255 zero bytes or else a bin 16, header included in `short`.
    pad = b"\xc4" + bytes([short - 2]) if short - 2 <= 0xFF else b"\xc5" + (short - 3).to_bytes(2, "big")
    return bytes([payload[0] + 1]) + payload[1:] + pad + bytes(pad_to - _HEADER - len(payload) - len(pad))


@lru_cache(maxsize=1 << 14)
def _public_key(raw: bytes) -> PublicKey:
    """One shared `PublicKey` per sender: a node hears from the same few thousand peers again and again."""
    return PublicKey(raw)


def decode(data: bytes) -> Message | Ack | Probe:
    """Parse one datagram, and verify it if signed; MessageRejected with the first failing check (see the
    module doc). An `Ack` or a `Probe` is only parsed: its cookie or nonce is the receiver's to check."""
    if data.__class__ is not bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MessageRejected(MALFORMED, f"a datagram is bytes, not {type(data).__name__}")
        data = bytes(data)
    if len(data) > MAX_DATAGRAM:
        raise MessageRejected(
            TOO_LARGE, f"the datagram is {len(data)} bytes; at most {MAX_DATAGRAM} are read"
        )
    if len(data) == PROBE_SIZE:
        if not data.startswith(PROBE_TAG):
            raise MessageRejected(MALFORMED, f"a datagram of {PROBE_SIZE} bytes is a probe, and starts with its tag")
        return Probe(data[len(PROBE_TAG):])
    if len(data) == ACK_SIZE:
        if not data.startswith(ACK_TAG):
            raise MessageRejected(MALFORMED, f"a datagram of {ACK_SIZE} bytes is an ack, and starts with its tag")
        raw = data[len(ACK_TAG) : len(ACK_TAG) + ID_BYTES]
        return Ack(NodeId._trusted(int.from_bytes(raw, "big"), raw), data[-COOKIE_SIZE:])
    if len(data) <= _HEADER:
        raise MessageRejected(
            MALFORMED, "a datagram holds a signature, a key and a payload; this is too short"
        )
    signature, key, payload = data[:SIGNATURE_SIZE], data[SIGNATURE_SIZE:_HEADER], data[_HEADER:]
    try:
        decoded = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception:  # the C unpacker raises several unrelated types (and StackError) on hostile input
        raise MessageRejected(MALFORMED, "the payload is not valid msgpack") from None
    if not isinstance(decoded, list) or not 3 <= len(decoded) <= 6:
        raise MessageRejected(MALFORMED, "the payload must be the array [kind, txid, body(, to, at)(, pad)]")
    raw_kind, txid, body = decoded[:3]
    kind = _KINDS.get(raw_kind) if raw_kind.__class__ is str else None
    if kind is None:
        raise MessageRejected(MALFORMED, f"unknown message kind {raw_kind!r:.40}")
    if not isinstance(txid, bytes) or len(txid) != TXID_SIZE:
        raise MessageRejected(MALFORMED, f"the transaction id must be {TXID_SIZE} bytes, got {txid!r:.40}")
    try:
        parsed, client, seen = _parse_body(kind, body)
        to, at = None, None
        extra = decoded[3:]
        cookie = None
        if extra and kind in ANSWERS:
            if len(extra) != 1:
                raise ValueError(f"a {kind} carries at most a cookie after its body (only requests carry more)")
            cookie, extra = _cookie(extra[0]), []
        if extra and kind not in RESPONSE_TO:
            raise ValueError(f"a {kind} carries nothing after its body (a receiver, a time, padding: requests)")
        if len(extra) % 2:  # a trailing pad: [.., pad] or [.., to, at, pad]
            if extra[-1].__class__ is not bytes:
                raise ValueError(f"a request's padding is bytes, got {type(extra[-1]).__name__}")
            extra = extra[:-1]
        if extra:
            to, at = _node_id_field(extra[0]), _time(extra[1])
    except (TypeError, ValueError) as error:
        raise MessageRejected(MALFORMED, str(error)) from None
    try:
        nacl.bindings.crypto_sign_open(signature + CONTEXT + data[SIGNATURE_SIZE:], key)
    except (nacl.exceptions.CryptoError, ValueError):
        raise MessageRejected(
            BAD_SIGNATURE, f"the signature does not verify under the key it carries ({key.hex()[:16]}…)"
        ) from None
    return Message(kind, txid, _public_key(key), parsed, to, at, cookie, client, seen)
