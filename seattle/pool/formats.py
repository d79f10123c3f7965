"""The pool's signed formats: offers, leases, attestations, double-grant evidence, and where each is filed.

Every object is one byte string in the `seattle.envelope` layout, the exact bytes the signature covers, so a
reader verifies what it received and never re-encodes anything:

    signature (64) ‖ CONTEXT ‖ node public key (32) ‖ envelope (msgpack map with exactly the fields below)

    Offer        "size" {resource: number} (one pool vessel), "free", "total", "reach" (e.g. "public", "nat"),
                 "uptime" s, "country" (ISO 3166 alpha-2 or ""), "addrs" ["host:port"] (0 to 8: a node behind
                 a NAT or a firewall names none, it is reached through the relays in its records), "iat", "exp"
    Lease        "vessel", "lessee" (32-byte key), "slot", "iat", "exp", "max_exp", "request" (the lessee's
                 signed AcquireVessel request, verbatim)
    Attestation  "beneficiary" (32-byte key), "up_since", "iat", "exp"

Each kind has its own context, so no signature passes as another kind (nor as a node manager request or a
vessel record, whose contexts differ too). Sizes are bounded before anything is decoded (MAX_SIZE, then
`boundedmsgpack` limits), so a stranger's bytes cost at most one signature check and a bounded scan.

Where they are filed: `offer_key(shard)`, `slot_key(lessee, slot)` and `credit_key(beneficiary)` are 32-byte
*subjects* derived by hashing, in the same space as public keys, so `seattle.overlay.records.dht_key` maps them
to overlay ids and the DHT files a node's announcement there like any vessel record. A node publishes its
offer under `offer_key(offer_shard(node key))`, and a node that found evidence against a key files itself under
`evidence_subjects(key)`: the keys any node asked for that key's slots looks up anyway.

Fair shares. A key R may hold `quota(...)` leases at once: 10, plus 10 per distinct donor node whose live
attestation names R and whose node has been up for at least 24 h. Each lease occupies one of R's slots
0..Q-1; a node refuses a slot another node holds live, and two live, overlapping leases of one slot from two
nodes, each embedding a request R signed, are `Evidence` that R asked twice: nodes that see it refuse R.

`verify` functions check, in this order, and raise PoolRejected with the first failure's code:

    too_large       more than MAX_SIZE bytes
    malformed       not a signed envelope of this kind, or fields of the wrong type or range
    bad_signature   the signature does not verify with the key the object names
    wrong_signer    (Lease.verify) signed by another node than the one asked about
    bad_request     (leases) the embedded request is not the lessee's signed AcquireVessel for this node and slot
    expired         exp + clock_skew is in the reader's past
    not_yet_valid   iat - clock_skew is in the reader's future
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from seattle.boundedmsgpack import Limits
from seattle.envelope import BAD_SIGNATURE, MALFORMED, EnvelopeRejected, finite, seal, unseal
from seattle.keys import PUBLIC_KEY_SIZE, Identity, PublicKey
from seattle.refusal import Refused

OFFER_CONTEXT = b"seattle/pool/offer/v1\x00"
LEASE_CONTEXT = b"seattle/pool/lease/v1\x00"
ATTESTATION_CONTEXT = b"seattle/pool/attestation/v1\x00"
#: The node manager request context (`seattle.nodemgr.signing.CONTEXT`): a lease embeds such a request, and
#: this layer sits below the node manager, so the value is repeated here (a test keeps the two equal).
REQUEST_CONTEXT = b"seattle/nodemgr/request/v1\x00"
ACQUIRE_CALL = "AcquireVessel"

#: Every pool object fits one DHT value (BEP 44's bound, as vessel records).
MAX_SIZE = 1024
#: An embedded acquire request: its envelope holds a call name, two numbers, a key and a nonce.
MAX_REQUEST_SIZE = 400
SHARDS = 16
BASE_QUOTA = 10
QUOTA_PER_DONATION = 10
#: A donation counts toward its beneficiary's quota once its node has been up this long.
DONATION_MIN_UPTIME = 24 * 3600.0
#: The original clearinghouse's lease: 4 h, renewable up to 7 days after the first grant.
DEFAULT_LEASE = 4 * 3600.0
MAX_LEASE_AGE = 7 * 24 * 3600.0
#: How long nodes refuse a key once they hold evidence that it took one slot twice.
BAN_DURATION = 24 * 3600.0
#: Offers and attestations are republished well within this; a withdrawn one cannot linger longer.
MAX_OFFER_LIFETIME = 3 * 3600.0
MAX_ATTESTATION_LIFETIME = 3 * 3600.0
#: Slots are numbered below this (quota 10 + 10 per donation: room for ~100,000 donated nodes per key).
MAX_SLOT = 2**20
MAX_ADDRESSES = 8
MAX_ADDRESS_LENGTH = 262
MAX_SIZE_ENTRIES = 16
MAX_VESSEL_NAME = 24
DEFAULT_CLOCK_SKEW = 60.0

_LIMITS = Limits(max_objects=96, max_depth=3, max_str=MAX_SIZE, max_bin=MAX_SIZE, max_array=MAX_ADDRESSES,
                 max_map=MAX_SIZE_ENTRIES)
_REQUEST_LIMITS = Limits(max_objects=24, max_depth=3, max_str=64, max_bin=64, max_array=4, max_map=8)

_OFFER_FIELDS = frozenset({"size", "free", "total", "reach", "uptime", "country", "addrs", "iat", "exp"})
_LEASE_FIELDS = frozenset({"vessel", "lessee", "slot", "iat", "exp", "max_exp", "request"})
_ATTESTATION_FIELDS = frozenset({"beneficiary", "up_since", "iat", "exp"})
_REQUEST_FIELDS = frozenset({"call", "args", "dest", "ts", "exp", "nonce"})
_WORD = re.compile(r"[a-z][a-z0-9_]{0,31}")
_COUNTRY = re.compile(r"(?:[A-Z]{2})?")

# Stable machine-readable codes, in the order `verify` checks them.
TOO_LARGE = "too_large"
WRONG_SIGNER = "wrong_signer"
BAD_REQUEST = "bad_request"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
CHECK_ORDER = (TOO_LARGE, MALFORMED, BAD_SIGNATURE, WRONG_SIGNER, BAD_REQUEST, EXPIRED, NOT_YET_VALID)


class PoolRejected(Refused):
    """A pool object refused by a reader: `code` is one of CHECK_ORDER, `message` says what is wrong."""


# --- where things are filed ----------------------------------------------------------------------------


def _subject(label: bytes) -> PublicKey:
    return PublicKey(hashlib.blake2b(label, digest_size=PUBLIC_KEY_SIZE, person=b"seattle-pool").digest())


def offer_key(shard: int) -> PublicKey:
    """The subject under which the nodes of `shard` (0..SHARDS-1) file their offers."""
    if isinstance(shard, bool) or not isinstance(shard, int) or not 0 <= shard < SHARDS:
        raise ValueError(f"shard must be an integer in 0..{SHARDS - 1}, got {shard!r:.40}")
    return _subject(b"offer\x00" + shard.to_bytes(2, "big"))


def offer_shard(node: PublicKey) -> int:
    """The shard a node publishes its offer under: spread evenly, fixed for the node's key."""
    return int.from_bytes(hashlib.blake2b(node.raw, digest_size=8).digest(), "big") % SHARDS


def slot_key(lessee: PublicKey, slot: int) -> PublicKey:
    """The subject under which the node holding slot `slot` of `lessee` files that lease."""
    _check_slot(slot)
    return _subject(b"slot\x00" + lessee.raw + slot.to_bytes(4, "big"))


def credit_key(beneficiary: PublicKey) -> PublicKey:
    """The subject under which donor nodes file their attestations for `beneficiary`."""
    return _subject(b"credit\x00" + beneficiary.raw)


def evidence_subjects(lessee: PublicKey) -> list[PublicKey]:
    """Where a node holding evidence against `lessee` files itself: the subjects every node asked for one of
    `lessee`'s slots looks up anyway, so the evidence costs no lookup of its own. A slot below BASE_QUOTA is
    looked up under its slot key (and only there: such a slot is within quota whatever the credit); a slot at
    or beyond it needs the credit lookup, under `credit_key`."""
    return [*(slot_key(lessee, slot) for slot in range(BASE_QUOTA)), credit_key(lessee)]


# --- offers --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """A node's verified pool offer. `raw` is the signed bytes, to pass on unchanged."""

    node: PublicKey
    size: Mapping[str, float]
    free: int
    total: int
    reachability: str
    uptime: float
    country: str
    addresses: tuple[str, ...]
    issued: float
    expires: float
    raw: bytes

    @staticmethod
    def sign(identity: Identity, *, size: Mapping[str, float], free: int, total: int, reachability: str,
             uptime: float, country: str, addresses: Sequence[str], now: float,
             lifetime: float = MAX_OFFER_LIFETIME) -> bytes:
        """The signed offer bytes; ValueError naming the argument that is out of range."""
        fields = {"size": dict(size), "free": free, "total": total, "reach": reachability, "uptime": uptime,
                  "country": country, "addrs": list(addresses), "iat": now, "exp": now + lifetime}
        _check_offer(fields)
        if not 0 < lifetime <= MAX_OFFER_LIFETIME:
            raise ValueError(f"lifetime must be in (0, {MAX_OFFER_LIFETIME:g}] seconds, got {lifetime:g}")
        return _seal(identity, OFFER_CONTEXT, fields, "offer")

    @classmethod
    def verify(cls, raw: object, now: float, clock_skew: float = DEFAULT_CLOCK_SKEW) -> Offer:
        """The offer in `raw` once its size, form, signature and times pass (module docstring)."""
        node, fields = _open(raw, OFFER_CONTEXT, _OFFER_FIELDS, "offer", "pool offer")
        try:
            _check_offer(fields)
        except (TypeError, ValueError) as exc:
            raise PoolRejected(MALFORMED, f"offer: {exc}") from None
        _check_times("offer", fields["iat"], fields["exp"], now, clock_skew, MAX_OFFER_LIFETIME)
        return cls(node=PublicKey(node), size=dict(fields["size"]), free=fields["free"], total=fields["total"],
                   reachability=fields["reach"], uptime=float(fields["uptime"]), country=fields["country"],
                   addresses=tuple(fields["addrs"]), issued=float(fields["iat"]), expires=float(fields["exp"]),
                   raw=raw)  # type: ignore[arg-type]  # _open checked it is bytes


def _check_offer(fields: dict[str, Any]) -> None:
    size = fields["size"]
    if not isinstance(size, dict) or not 1 <= len(size) <= MAX_SIZE_ENTRIES:
        raise ValueError(f"'size' maps 1 to {MAX_SIZE_ENTRIES} resource names to amounts")
    for name, amount in size.items():
        if not isinstance(name, str) or not _WORD.fullmatch(name):
            raise ValueError(f"'size' has a resource name {name!r:.40} that is not a short lowercase word")
        if finite(f"size[{name}]", amount) < 0:
            raise ValueError(f"'size' gives {name} a negative amount")
    free, total = fields["free"], fields["total"]
    for name, value in (("free", free), ("total", total)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            raise ValueError(f"'{name}' must be an integer in 0..65535, got {value!r:.40}")
    if free > total:
        raise ValueError(f"'free' ({free}) exceeds 'total' ({total})")
    if not isinstance(fields["reach"], str) or not _WORD.fullmatch(fields["reach"]):
        raise ValueError(f"'reach' must be a short lowercase word, got {fields['reach']!r:.40}")
    if finite("uptime", fields["uptime"]) < 0:
        raise ValueError("'uptime' must not be negative")
    if not isinstance(fields["country"], str) or not _COUNTRY.fullmatch(fields["country"]):
        raise ValueError(f"'country' must be an ISO 3166 code (two capitals) or '', got {fields['country']!r:.10}")
    addresses = fields["addrs"]
    if not isinstance(addresses, list) or len(addresses) > MAX_ADDRESSES:
        raise ValueError(f"'addrs' lists at most {MAX_ADDRESSES} 'host:port' addresses")
    for address in addresses:
        if not isinstance(address, str) or not 0 < len(address) <= MAX_ADDRESS_LENGTH or ":" not in address:
            raise ValueError(f"address {address!r:.60} is not a 'host:port' of at most {MAX_ADDRESS_LENGTH} "
                             "characters")
    _check_span(fields)


# --- leases --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    """A verified lease: `node` granted `vessel` to `lessee` in its slot `slot` until `expires`."""

    node: PublicKey
    vessel: str
    lessee: PublicKey
    slot: int
    issued: float
    expires: float
    max_expiry: float
    request: bytes
    raw: bytes

    @staticmethod
    def sign(identity: Identity, *, vessel: str, lessee: PublicKey, slot: int, issued: float, expires: float,
             max_expiry: float, request: bytes) -> bytes:
        """The signed lease bytes. `request` is the lessee's signed AcquireVessel request, as received."""
        fields = {"vessel": vessel, "lessee": lessee.raw, "slot": slot, "iat": issued, "exp": expires,
                  "max_exp": max_expiry, "request": request}
        _check_lease(fields)
        return _seal(identity, LEASE_CONTEXT, fields, "lease")

    @classmethod
    def verify(cls, raw: object, node_key: PublicKey | None, now: float,
               clock_skew: float = DEFAULT_CLOCK_SKEW) -> Lease:
        """The lease in `raw`, signed by `node_key` (any node if None), whose embedded request the lessee
        signed for that node and slot, and live at `now`; PoolRejected with the first failing check."""
        return cls._parse(raw, node_key, now, clock_skew, live=True)

    @classmethod
    def verify_signed(cls, raw: object, node_key: PublicKey | None) -> Lease:
        """As `verify` but whatever the time: a lease as a record of what a node granted (evidence, ledger)."""
        return cls._parse(raw, node_key, 0.0, 0.0, live=False)

    @classmethod
    def _parse(cls, raw: object, node_key: PublicKey | None, now: float, clock_skew: float, *,
               live: bool) -> Lease:
        node, fields = _open(raw, LEASE_CONTEXT, _LEASE_FIELDS, "lease", "pool lease")
        try:
            _check_lease(fields)
        except (TypeError, ValueError) as exc:
            raise PoolRejected(MALFORMED, f"lease: {exc}") from None
        if node_key is not None and node != node_key.raw:
            raise PoolRejected(WRONG_SIGNER, f"the lease is signed by node {PublicKey(node).fingerprint()}, "
                                             f"not by {node_key.fingerprint()}")
        lessee = PublicKey(fields["lessee"])
        _check_acquire_request(fields["request"], lessee, PublicKey(node), fields["slot"])
        if live:
            _check_times("lease", fields["iat"], fields["exp"], now, clock_skew, MAX_LEASE_AGE)
        return cls(node=PublicKey(node), vessel=fields["vessel"], lessee=lessee, slot=fields["slot"],
                   issued=float(fields["iat"]), expires=float(fields["exp"]),
                   max_expiry=float(fields["max_exp"]), request=fields["request"],
                   raw=raw)  # type: ignore[arg-type]  # _open checked it is bytes


def _check_lease(fields: dict[str, Any]) -> None:
    vessel = fields["vessel"]
    if not isinstance(vessel, str) or not 0 < len(vessel) <= MAX_VESSEL_NAME:
        raise ValueError(f"'vessel' must be a vessel name of 1 to {MAX_VESSEL_NAME} characters")
    _check_key("lessee", fields["lessee"])
    _check_slot(fields["slot"])
    _check_span(fields)
    max_expiry = finite("max_exp", fields["max_exp"])
    if not fields["exp"] <= max_expiry <= fields["iat"] + MAX_LEASE_AGE:
        raise ValueError(f"'max_exp' must lie between 'exp' and 'iat' + {MAX_LEASE_AGE:g} s")
    request = fields["request"]
    if not isinstance(request, bytes) or len(request) > MAX_REQUEST_SIZE:
        raise ValueError(f"'request' must be the signed acquire request, at most {MAX_REQUEST_SIZE} bytes")


def _check_acquire_request(request: bytes, lessee: PublicKey, node: PublicKey, slot: int) -> None:
    """PoolRejected(bad_request) unless `request` is `lessee`'s signed AcquireVessel to `node` for `slot`."""
    try:
        signer, fields = unseal(request, REQUEST_CONTEXT, _REQUEST_FIELDS, "request", "node manager request",
                                limits=_REQUEST_LIMITS)
    except EnvelopeRejected as exc:
        raise PoolRejected(BAD_REQUEST, f"the lease's embedded request: {exc.message}") from None
    args = fields["args"]
    requested = args.get("slot") if isinstance(args, dict) else args[0] if isinstance(args, list) and args else None
    if signer != lessee.raw:
        raise PoolRejected(BAD_REQUEST, "the lease's embedded request is not signed by its lessee")
    if fields["call"] != ACQUIRE_CALL or fields["dest"] != node.raw or type(requested) is not int \
            or requested != slot:
        raise PoolRejected(BAD_REQUEST, f"the lease's embedded request is not an {ACQUIRE_CALL} of slot {slot} "
                                        "addressed to the node that signed the lease")


# --- attestations --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attestation:
    """A verified attestation: donor node `node`, up since `up_since`, donates for `beneficiary`."""

    node: PublicKey
    beneficiary: PublicKey
    up_since: float
    issued: float
    expires: float
    raw: bytes

    @staticmethod
    def sign(identity: Identity, *, beneficiary: PublicKey, up_since: float, now: float,
             lifetime: float = MAX_ATTESTATION_LIFETIME) -> bytes:
        fields = {"beneficiary": beneficiary.raw, "up_since": up_since, "iat": now, "exp": now + lifetime}
        _check_attestation(fields)
        if not 0 < lifetime <= MAX_ATTESTATION_LIFETIME:
            raise ValueError(f"lifetime must be in (0, {MAX_ATTESTATION_LIFETIME:g}] seconds, got {lifetime:g}")
        return _seal(identity, ATTESTATION_CONTEXT, fields, "attestation")

    @classmethod
    def verify(cls, raw: object, now: float, clock_skew: float = DEFAULT_CLOCK_SKEW) -> Attestation:
        node, fields = _open(raw, ATTESTATION_CONTEXT, _ATTESTATION_FIELDS, "attestation", "pool attestation")
        try:
            _check_attestation(fields)
        except (TypeError, ValueError) as exc:
            raise PoolRejected(MALFORMED, f"attestation: {exc}") from None
        _check_times("attestation", fields["iat"], fields["exp"], now, clock_skew, MAX_ATTESTATION_LIFETIME)
        return cls(node=PublicKey(node), beneficiary=PublicKey(fields["beneficiary"]),
                   up_since=float(fields["up_since"]), issued=float(fields["iat"]),
                   expires=float(fields["exp"]), raw=raw)  # type: ignore[arg-type]  # _open checked it


def _check_attestation(fields: dict[str, Any]) -> None:
    _check_key("beneficiary", fields["beneficiary"])
    up_since = finite("up_since", fields["up_since"])
    _check_span(fields)
    if up_since > fields["iat"]:
        raise ValueError("'up_since' is after the attestation was issued")


def quota(beneficiary: PublicKey, attestations: Iterable[Attestation], now: float) -> int:
    """Q(R) = 10 + 10 × distinct donor nodes with a live attestation naming R, up for at least 24 h."""
    donors = {a.node.raw for a in attestations
              if a.beneficiary == beneficiary and a.issued <= now <= a.expires
              and now - a.up_since >= DONATION_MIN_UPTIME}
    return BASE_QUOTA + QUOTA_PER_DONATION * len(donors)


# --- evidence ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """Two leases of one slot of one key by two nodes, overlapping in time, each embedding a request the key
    signed: proof the key asked twice. Nodes refuse the key until `until`."""

    first: Lease
    second: Lease

    @property
    def lessee(self) -> PublicKey:
        return self.first.lessee

    @property
    def until(self) -> float:
        return max(self.first.expires, self.second.expires) + BAN_DURATION

    @property
    def raw(self) -> tuple[bytes, bytes]:
        """The two signed leases, as received: what a node serves and a reader passes to `verify`."""
        return self.first.raw, self.second.raw

    @classmethod
    def of(cls, first: Lease, second: Lease) -> Evidence | None:
        """The evidence the two (verified) leases make, or None if they do not conflict."""
        if (first.lessee != second.lessee or first.slot != second.slot or first.node == second.node
                or first.issued >= second.expires or second.issued >= first.expires):
            return None
        return cls(first, second) if first.node.raw < second.node.raw else cls(second, first)

    @classmethod
    def find(cls, leases: Iterable[Lease]) -> Evidence | None:
        """The first conflict among `leases` (verified leases of one or more slots), or None."""
        seen: dict[tuple[bytes, int], list[Lease]] = {}
        for lease in leases:
            held = seen.setdefault((lease.lessee.raw, lease.slot), [])
            for other in held:
                evidence = cls.of(other, lease)
                if evidence is not None:
                    return evidence
            held.append(lease)
        return None

    @classmethod
    def verify(cls, first_raw: object, second_raw: object) -> Evidence:
        """Evidence from two signed leases as received; PoolRejected if either fails or they do not conflict."""
        evidence = cls.of(Lease.verify_signed(first_raw, None), Lease.verify_signed(second_raw, None))
        if evidence is None:
            raise PoolRejected(MALFORMED, "the two leases are not of one slot of one key, by two nodes, "
                                          "at overlapping times")
        return evidence


# --- shared checks -------------------------------------------------------------------------------------


def _seal(identity: Identity, context: bytes, fields: dict[str, Any], what: str) -> bytes:
    raw = seal(identity, context, fields)
    if len(raw) > MAX_SIZE:
        raise ValueError(f"the signed {what} is {len(raw)} bytes, over the {MAX_SIZE}-byte limit")
    return raw


def _open(raw: object, context: bytes, field_names: frozenset[str], what: str,
          purpose: str) -> tuple[bytes, dict[str, Any]]:
    if isinstance(raw, bytes) and len(raw) > MAX_SIZE:
        raise PoolRejected(TOO_LARGE, f"the {what} is {len(raw)} bytes; at most {MAX_SIZE} are accepted")
    try:
        return unseal(raw, context, field_names, what, purpose, limits=_LIMITS)
    except EnvelopeRejected as exc:
        raise PoolRejected(exc.code, exc.message) from None


def _check_key(name: str, value: object) -> None:
    if not isinstance(value, bytes) or len(value) != PUBLIC_KEY_SIZE:
        raise ValueError(f"'{name}' must be a {PUBLIC_KEY_SIZE}-byte public key")


def _check_slot(slot: object) -> None:
    if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < MAX_SLOT:
        raise ValueError(f"a slot is an integer in 0..{MAX_SLOT - 1}, got {slot!r:.40}")


def _check_span(fields: dict[str, Any]) -> None:
    fields["iat"] = finite("iat", fields["iat"])
    fields["exp"] = finite("exp", fields["exp"])
    if fields["exp"] < fields["iat"]:
        raise ValueError("it expires before it was issued ('exp' < 'iat')")


def _check_times(what: str, issued: float, expires: float, now: float, clock_skew: float,
                 max_lifetime: float) -> None:
    now = finite("now", now)
    if now > expires + clock_skew:
        raise PoolRejected(EXPIRED, f"the {what} expired {now - expires:.1f} s ago (allowed skew {clock_skew:g} s)")
    if issued > now + clock_skew:
        raise PoolRejected(NOT_YET_VALID, f"the {what} is dated {issued - now:.1f} s in the future (allowed skew "
                                          f"{clock_skew:g} s); the signer's clock is wrong")
    if expires - issued > max_lifetime or math.isinf(expires):
        raise PoolRejected(MALFORMED, f"the {what} claims {expires - issued:.0f} s of life; at most "
                                      f"{max_lifetime:g} s are accepted")
