"""Signed vessel advertisements: "node manager N (at these addresses) hosts a vessel for key S".

Sans-IO: callers pass the time in. A record is one byte string, the exact bytes the signature covers and that
travel through the DHT, so storing nodes and readers verify what they received and never re-encode anything:

    signature (64) ‖ CONTEXT ‖ node public key (32) ‖ envelope (msgpack map)
    envelope = {"subject": subject public key (32 bytes), "addrs": ["host:port", ...], "seq": int,
                "iat": seconds since the epoch (issued at), "exp": seconds since the epoch, "tomb": bool,
                "relays": [["host:port", voucher (104 bytes)], ...]}

`addrs` are the node's direct addresses (none when it cannot be dialled); `relays` are the relays that hold a
reservation for it, each with the relay's voucher (`seattle.vouchers`: relay key, expiry, the relay's
signature over them and this record's node key). A record names at least one of either, at most
MAX_ADDRESSES direct addresses and MAX_RELAYS relays. Records written before relays existed lack the field;
readers take them as having none. A reader checks each voucher against the record's node key and its own
clock and keeps only the relays whose voucher holds (`VesselRecord.relays`); the others are dropped and
counted (`bad_vouchers`), never believed: a record is the node's word, a voucher the relay's.

The layout follows `seattle.nodemgr.signing`: Ed25519 in libsodium's combined mode over everything after the
signature, so one `crypto_sign_open` checks the received bytes as they are. CONTEXT differs from the request
context, so a signed request can never pass as an advertisement, nor the other way round.

The subject is the key the record is filed under in the DHT (`dht_key`): the owner's or a user's key, so a
researcher who knows only their own key finds every node hosting their vessels. The node signs; nothing here
proves the subject asked for the advertisement, which is harmless because a record only says where to ask,
and every command sent there is itself signed end to end.

A higher `seq` from the same node for the same subject replaces a lower one; a tombstone (`tomb` true) with a
higher `seq` withdraws the advertisement. A tombstone should live `MAX_LIFETIME` (the default of
`sign_tombstone`): every record the node issued before it expires by then, so no holder can be made to bring
a withdrawn record back after it forgot the tombstone.

`verify` checks, in this order, and stops at the first failure:

    too_large       more than MAX_RECORD_SIZE bytes (checked first: it costs nothing)
    malformed       too short to hold a signature and a key
    bad_signature   the signature does not verify with the node key the record names
    malformed       wrong context, or an envelope that is not the map above
    expired         exp + clock_skew is in the reader's past
    not_yet_valid   iat - clock_skew is in the reader's future
    too_long_lived  exp is more than MAX_LIFETIME + clock_skew in the reader's future
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from seattle.envelope import BAD_SIGNATURE, MALFORMED, EnvelopeRejected, finite, seal, unseal
from seattle.keys import PUBLIC_KEY_SIZE, Identity, PublicKey
from seattle.overlay.nodeid import NodeId
from seattle.refusal import Refused
from seattle.vouchers import VOUCHER_SIZE, VoucherRejected, check_voucher

CONTEXT = b"seattle/advertise/record/v1\x00"
#: BEP 44's bound on a DHT value: small enough that a holder's per-key cap bounds its memory.
MAX_RECORD_SIZE = 1024
MAX_ADDRESSES = 8
#: Relays a record names: the node holds two reservations, and a few more ride out a change of relays.
MAX_RELAYS = 4
MAX_ADDRESS_LENGTH = 262  # a 253-character host name, ':' and a 5-digit port, with room for IPv6 brackets
#: Vessels are short-lived and readers want fresh addresses: records are republished well before 2 h pass.
DEFAULT_LIFETIME = 2 * 3600.0
MAX_LIFETIME = 3 * 3600.0
DEFAULT_CLOCK_SKEW = 60.0
MAX_SEQUENCE = 2**63 - 1  # msgpack's signed 64-bit range, so every implementation can compare sequences

_ENVELOPE_FIELDS = frozenset({"subject", "addrs", "seq", "iat", "exp", "tomb"})
_OPTIONAL_FIELDS = frozenset({"relays"})
_HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*")

# Stable machine-readable codes of rejected records, in the order `verify` checks them.
TOO_LARGE = "too_large"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
TOO_LONG_LIVED = "too_long_lived"
CHECK_ORDER = (TOO_LARGE, MALFORMED, BAD_SIGNATURE, EXPIRED, NOT_YET_VALID, TOO_LONG_LIVED)


class RecordRejected(Refused):
    """A record refused by a storing node or a reader: `code` is stable, `message` says what to fix."""


@dataclass(frozen=True, order=True)
class RelayRoute:
    """A relay a record names, with a voucher that held when the record was read."""

    address: str
    relay: PublicKey
    expires: int


@dataclass(frozen=True)
class VesselRecord:
    """A verified advertisement. `raw` is the signed bytes it came from, to pass on unchanged."""

    subject: PublicKey
    node: PublicKey
    addresses: tuple[str, ...]
    sequence: int
    issued: float
    expires: float
    tombstone: bool
    raw: bytes
    #: The relays whose vouchers held for this node when the record was read.
    relays: tuple[RelayRoute, ...] = ()
    #: Relays named with a voucher that did not hold (forged, expired, another node's): ignored.
    bad_vouchers: int = 0

    @property
    def slot(self) -> tuple[bytes, bytes]:
        """What a newer record replaces: one advertisement per (subject, node)."""
        return (self.subject.raw, self.node.raw)


def dht_key(subject: PublicKey) -> NodeId:
    """Where records about `subject` are filed: the same id a node holding that key would have."""
    if not isinstance(subject, PublicKey):
        raise TypeError(f"subject must be a PublicKey, not {type(subject).__name__}")
    return NodeId.from_public_key(subject)


# --- signing ----------------------------------------------------------------------------------------------


def sign(
    node_identity: Identity,
    subject: PublicKey,
    addresses: Sequence[str],
    *,
    sequence: int,
    now: float,
    lifetime: float = DEFAULT_LIFETIME,
    relays: Sequence[tuple[str, bytes]] = (),
) -> bytes:
    """The signed bytes advertising that the node `node_identity` hosts a vessel for `subject`, reached at
    `addresses` directly or through `relays` ((relay "host:port", the relay's voucher) each).

    `sequence` must grow with every record the node signs for this subject (a millisecond timestamp does);
    holders refuse a sequence they have already seen or passed. Raises ValueError/TypeError naming the bad
    argument, including a record that would exceed MAX_RECORD_SIZE.
    """
    return _sign(node_identity, subject, addresses, sequence, now, lifetime, tombstone=False, relays=relays)


def sign_tombstone(
    node_identity: Identity, subject: PublicKey, *, sequence: int, now: float, lifetime: float = MAX_LIFETIME
) -> bytes:
    """A signed withdrawal of the node's advertisement for `subject`; `sequence` must exceed the record's."""
    return _sign(node_identity, subject, (), sequence, now, lifetime, tombstone=True)


def _sign(
    identity: Identity,
    subject: PublicKey,
    addresses: Sequence[str],
    sequence: int,
    now: float,
    lifetime: float,
    *,
    tombstone: bool,
    relays: Sequence[tuple[str, bytes]] = (),
) -> bytes:
    if not isinstance(identity, Identity):
        raise TypeError(f"node_identity must be an Identity, not {type(identity).__name__}")
    if not isinstance(subject, PublicKey):
        raise TypeError(f"subject must be a PublicKey, not {type(subject).__name__}")
    if isinstance(addresses, str | bytes):
        raise TypeError("addresses must be a list of 'host:port' strings, not a single string")
    addrs = [_check_address(address) for address in addresses]
    relay_list = [[_check_address(address), voucher] for address, voucher in relays]
    _check_relays(relay_list)
    _check_addresses(addrs, tombstone, relay_list)
    _check_sequence(sequence)
    now = finite("now", now)
    lifetime = finite("lifetime", lifetime)
    if not 0 < lifetime <= MAX_LIFETIME:
        raise ValueError(f"lifetime must be in (0, {MAX_LIFETIME:g}] seconds, got {lifetime:g}")
    fields = {"subject": subject.raw, "addrs": addrs, "seq": sequence, "iat": now, "exp": now + lifetime}
    raw = seal(identity, CONTEXT, {**fields, "tomb": tombstone, "relays": relay_list})
    if len(raw) > MAX_RECORD_SIZE:
        raise ValueError(
            f"the signed record is {len(raw)} bytes, over the {MAX_RECORD_SIZE}-byte limit; "
            "advertise fewer or shorter addresses"
        )
    return raw


# --- verifying --------------------------------------------------------------------------------------------


def verify(
    raw: bytes, now: float, clock_skew: float = DEFAULT_CLOCK_SKEW, *, max_lifetime: float = MAX_LIFETIME
) -> VesselRecord:
    """Check `raw` at the verifier's time `now`; RecordRejected with the first failing check (module doc).

    Storing nodes call this before storing and readers call it again on what holders return: a holder is
    just another peer, and nothing it hands back is believed before its signature is.
    """
    now = finite("now", now)
    clock_skew = finite("clock_skew", clock_skew)
    max_lifetime = finite("max_lifetime", max_lifetime)
    if clock_skew < 0 or max_lifetime <= 0:
        raise ValueError(
            f"clock_skew must be >= 0 and max_lifetime > 0, got {clock_skew:g} and {max_lifetime:g}"
        )
    if not isinstance(raw, bytes):
        raise RecordRejected(MALFORMED, f"a signed record is bytes, not {type(raw).__name__}")
    if len(raw) > MAX_RECORD_SIZE:
        raise RecordRejected(TOO_LARGE, f"the record is {len(raw)} bytes; at most {MAX_RECORD_SIZE} are kept")
    try:
        node, fields = unseal(raw, CONTEXT, _ENVELOPE_FIELDS, "record", "vessel advertisement",
                              optional=_OPTIONAL_FIELDS)
    except EnvelopeRejected as exc:
        raise RecordRejected(exc.code, exc.message) from None
    fields = _check_envelope(fields)
    issued, expires = fields["iat"], fields["exp"]
    if now > expires + clock_skew:
        raise RecordRejected(
            EXPIRED, f"the record expired {now - expires:.1f} s ago (allowed skew {clock_skew:g} s)"
        )
    if issued > now + clock_skew:
        raise RecordRejected(
            NOT_YET_VALID,
            f"the record is dated {issued - now:.1f} s in the future (allowed skew {clock_skew:g} s); "
            "the signer's clock is wrong",
        )
    if expires > now + max_lifetime + clock_skew:
        raise RecordRejected(
            TOO_LONG_LIVED,
            f"the record claims to be valid for {expires - now:.0f} s more; at most {max_lifetime:g} s are "
            "accepted, so that a withdrawn record cannot linger",
        )
    node_key = PublicKey(node)
    relays = []
    for address, voucher in fields["relays"]:
        try:
            checked = check_voucher(voucher, node_key, now, clock_skew)
        except VoucherRejected:
            continue
        relays.append(RelayRoute(address, checked.relay, checked.expires))
    return VesselRecord(
        subject=PublicKey(fields["subject"]),
        node=node_key,
        addresses=tuple(fields["addrs"]),
        sequence=fields["seq"],
        issued=issued,
        expires=expires,
        tombstone=fields["tomb"],
        raw=raw,
        relays=tuple(relays),
        bad_vouchers=len(fields["relays"]) - len(relays),
    )


def merge(records: Iterable[VesselRecord]) -> list[VesselRecord]:
    """What a reader believes after asking several holders: per (subject, node) the highest sequence,
    with tombstones then dropped, in a stable order (by node key).

    Tombstones take part in the merge before being dropped, which is why holders return them: a holder
    that missed a withdrawal still returns the old record, and only the tombstone from another holder
    tells the reader to ignore it.
    """
    best: dict[tuple[bytes, bytes], VesselRecord] = {}
    for record in records:
        held = best.get(record.slot)
        if held is None or record.sequence > held.sequence:
            best[record.slot] = record
    return sorted((r for r in best.values() if not r.tombstone), key=lambda r: (r.node.raw, r.subject.raw))


def _check_envelope(fields: dict[str, Any]) -> dict[str, Any]:
    try:
        if not isinstance(fields["subject"], bytes) or len(fields["subject"]) != PUBLIC_KEY_SIZE:
            raise ValueError(f"'subject' must be a {PUBLIC_KEY_SIZE}-byte public key")
        if not isinstance(fields["addrs"], list):
            raise ValueError("'addrs' must be a list of 'host:port' strings")
        for address in fields["addrs"]:
            _check_address(address)
        fields.setdefault("relays", [])
        _check_relays(fields["relays"])
        _check_addresses(fields["addrs"], fields["tomb"], fields["relays"])
        _check_sequence(fields["seq"])
        fields["iat"] = finite("iat", fields["iat"])
        fields["exp"] = finite("exp", fields["exp"])
    except (TypeError, ValueError) as exc:
        raise RecordRejected(MALFORMED, str(exc)) from None
    if fields["exp"] < fields["iat"]:
        raise RecordRejected(MALFORMED, "the record expires before it was issued ('exp' < 'iat')")
    return fields


# --- small checks -----------------------------------------------------------------------------------------


def _check_address(address: object) -> str:
    """`host:port` with an IP literal (IPv6 in brackets) or a DNS name: what a reader can connect to."""
    if not isinstance(address, str) or not 0 < len(address) <= MAX_ADDRESS_LENGTH:
        raise ValueError(
            f"an address is a 'host:port' of at most {MAX_ADDRESS_LENGTH} characters, got {address!r:.80}"
        )
    host, colon, port = address.rpartition(":")
    if not colon or not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"address {address!r:.80} must end in ':port' with a port in 1..65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"address {address!r:.80} has no valid IPv6 address in brackets") from None
    elif not _HOST_NAME.fullmatch(host) or not host.isascii():
        raise ValueError(f"address {address!r:.80}: the host must be an IPv4 address, [IPv6] or a DNS name")
    return address


def _check_relays(relays: object) -> None:
    """`relays` is a list of at most MAX_RELAYS ["host:port", voucher bytes] pairs (the vouchers themselves
    are checked by the reader, who drops the ones that do not hold)."""
    if not isinstance(relays, list) or len(relays) > MAX_RELAYS:
        raise ValueError(f"'relays' must be a list of at most {MAX_RELAYS} [address, voucher] pairs")
    for entry in relays:
        if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[1], bytes):
            raise ValueError("each relay is a pair [\"host:port\", voucher bytes]")
        if len(entry[1]) != VOUCHER_SIZE:
            raise ValueError(f"a relay's voucher is {VOUCHER_SIZE} bytes, got {len(entry[1])}")
        _check_address(entry[0])


def _check_addresses(addresses: list[Any], tombstone: object, relays: list[Any]) -> None:
    if not isinstance(tombstone, bool):
        raise TypeError(f"'tomb' must be true or false, got {tombstone!r:.40}")
    if tombstone and (addresses or relays):
        raise ValueError("a tombstone withdraws an advertisement and carries no addresses")
    if len(addresses) > MAX_ADDRESSES:
        raise ValueError(f"a record carries at most {MAX_ADDRESSES} addresses, got {len(addresses)}")
    if not tombstone and not addresses and not relays:
        raise ValueError("a record carries at least one address or relay")


def _check_sequence(sequence: object) -> None:
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence must be an integer in 0..2**63-1, got {sequence!r:.40}")


def _text(raw: bytes) -> str:
    return PublicKey(raw).to_text()
