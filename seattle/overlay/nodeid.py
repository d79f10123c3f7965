"""Overlay identities: 256-bit node ids bound to Ed25519 keys, XOR distance, and the peer `Contact`.

A node id is BLAKE2b-256 of the node's raw Ed25519 public key, so an id cannot be chosen freely: to sit
next to a target a node must find a key whose hash lands there, and the transport makes a new contact prove
it holds that key before the routing table sees it. BLAKE2b rather than SHA-256 because `seattle.keys`
already uses BLAKE2b for fingerprints (one hash family to audit) and a 256-bit BLAKE2b output has the same
collision and preimage margins; SHA-256 would only matter for interoperating with libp2p ids, not a goal.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import FrozenInstanceError, dataclass, field
from functools import lru_cache

from seattle.keys import PublicKey

ID_BITS = 256
ID_BYTES = ID_BITS // 8
_ID_LIMIT = 1 << ID_BITS


class NodeId:
    """A point in the 256-bit keyspace. Ordered by value so sets of ids print and sort reproducibly.

    Immutable and hashable. A hand-written class with `__slots__` rather than a frozen dataclass, because the
    overlay creates and compares ids in every datagram (20 per `nodes` answer): this is several times faster.
    The 32-byte wire form is kept beside the int: every `nodes` answer sends 20 ids, and ids are few and
    shared (the parse caches hand out one object per id), so keeping it costs far less than rebuilding it.
    """

    __slots__ = ("raw", "value")
    value: int
    raw: bytes

    def __init__(self, value: int) -> None:
        if value.__class__ is not int and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"a node id is an int, got {type(value).__name__}")
        if not 0 <= value < _ID_LIMIT:
            raise ValueError(f"a node id lies in [0, 2**{ID_BITS}), got {value}")
        object.__setattr__(self, "value", int(value))
        object.__setattr__(self, "raw", self.value.to_bytes(ID_BYTES, "big"))

    @classmethod
    def _trusted(cls, value: int, raw: bytes) -> NodeId:
        """An id from its 32 wire bytes and their int, already known to agree, skipping the checks."""
        node_id = object.__new__(cls)
        object.__setattr__(node_id, "value", value)
        object.__setattr__(node_id, "raw", raw)
        return node_id

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[type[NodeId], tuple[int]]:
        return NodeId, (self.value,)

    def __repr__(self) -> str:
        return f"NodeId(value={self.value})"

    def __hash__(self) -> int:
        return hash(self.value)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is NodeId:
            return self.value == other.value  # type: ignore[attr-defined]
        return NotImplemented

    def __lt__(self, other: NodeId) -> bool:
        if other.__class__ is NodeId:
            return self.value < other.value
        return NotImplemented

    def __le__(self, other: NodeId) -> bool:
        if other.__class__ is NodeId:
            return self.value <= other.value
        return NotImplemented

    def __gt__(self, other: NodeId) -> bool:
        if other.__class__ is NodeId:
            return self.value > other.value
        return NotImplemented

    def __ge__(self, other: NodeId) -> bool:
        if other.__class__ is NodeId:
            return self.value >= other.value
        return NotImplemented

    @classmethod
    def from_public_key(cls, key: PublicKey) -> NodeId:
        """The id a node holding `key` must use; peers recompute it from the key the node proved it holds."""
        return _id_of_key(key.raw)

    @classmethod
    def from_bytes(cls, raw: bytes) -> NodeId:
        """Parse the 32-byte big-endian wire form."""
        if not isinstance(raw, bytes) or len(raw) != ID_BYTES:
            raise ValueError(f"a node id is {ID_BYTES} bytes, got {raw!r:.80}")
        return cls._trusted(int.from_bytes(raw, "big"), raw if raw.__class__ is bytes else bytes(raw))

    @classmethod
    def from_hex(cls, text: str) -> NodeId:
        """Parse `hex()` output (persisted routing tables store ids this way)."""
        if not isinstance(text, str) or len(text) != 2 * ID_BYTES:
            raise ValueError(f"a node id in hex is {2 * ID_BYTES} characters, got {text!r:.80}")
        try:
            return cls.from_bytes(bytes.fromhex(text))
        except ValueError:
            raise ValueError(f"a node id in hex uses only 0-9 a-f, got {text!r:.80}") from None

    def to_bytes(self) -> bytes:
        return self.raw

    def hex(self) -> str:
        return self.to_bytes().hex()

    def distance(self, other: NodeId) -> int:
        """Kademlia's XOR metric: symmetric, and from a fixed id each distance leads to exactly one id."""
        return self.value ^ other.value

    def bucket_index(self, other: NodeId) -> int:
        """Index of the highest bit in which `other` differs from us: 0 (nearest) .. 255 (other half).

        Contacts with the same index share a distance range [2**i, 2**(i+1)), which is what a flat
        256-bucket view of the table (e.g. for refresh statistics) is keyed by.
        """
        if other == self:
            raise ValueError("a node id has no bucket index relative to itself")
        return self.distance(other).bit_length() - 1

    def __str__(self) -> str:
        return self.hex()[:16]


@dataclass(frozen=True, slots=True)
class Contact:
    """How to reach a peer: its id and the UDP address it proved its key from."""

    node_id: NodeId
    host: str
    port: int
    # `subnet`, once asked: one object per contact, shared by every table that holds this contact object.
    _subnet: ipaddress.IPv4Network | ipaddress.IPv6Network | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.node_id, NodeId):
            raise TypeError(f"contact node_id must be a NodeId, got {type(self.node_id).__name__}")
        if self.host.__class__ is not str or not _is_ip_literal(self.host):
            raise ValueError(f"contact host must be an IP address literal, got {self.host!r:.80}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ValueError(f"contact port must be an int in 1..65535, got {self.port!r}")

    @property
    def subnet(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """The address range one operator typically controls: /24 for IPv4, /64 for IPv6.

        Routing tables cap contacts per range so that one machine or cheap cloud block cannot fill a bucket
        with Sybil ids. Cached, because every insert into a bucket looks it up: on the contact, and per host
        for the contacts rebuilt from every datagram.
        """
        subnet = self._subnet
        if subnet is None:
            subnet = _subnet(self.host)
            object.__setattr__(self, "_subnet", subnet)
        return subnet

    @property
    def wire(self) -> tuple[bytes, bytes, int]:
        """(id, packed IP, port): how messages carry a contact (4 or 16 address bytes, not text). Not cached
        on the contact: 150 bytes for each of a node's contacts would cost more memory than it saves time."""
        return (self.node_id.raw, _packed_ip(self.host), self.port)


#: Parse caches. Contacts are rebuilt from every datagram, so the same few thousand hosts are parsed again and
#: again; the caches are bounded so that a flood of distinct addresses costs at most a few MB.
_CACHE_SIZE = 1 << 16


@lru_cache(maxsize=_CACHE_SIZE)
def _id_of_key(raw: bytes) -> NodeId:
    digest = hashlib.blake2b(raw, digest_size=ID_BYTES).digest()
    return NodeId._trusted(int.from_bytes(digest, "big"), digest)


@lru_cache(maxsize=_CACHE_SIZE)
def _packed_ip(host: str) -> bytes:
    return ipaddress.ip_address(host).packed


@lru_cache(maxsize=_CACHE_SIZE)
def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _Subnet4(ipaddress.IPv4Network):
    """An IPv4Network that computes its hash once: routing tables count contacts per subnet in a Counter, and
    the stock hash (two int conversions of address objects, every time) dominated building large tables."""

    def __init__(self, address: str) -> None:
        super().__init__(address, strict=False)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


class _Subnet6(ipaddress.IPv6Network):
    """`_Subnet4` for IPv6."""

    def __init__(self, address: str) -> None:
        super().__init__(address, strict=False)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


@lru_cache(maxsize=_CACHE_SIZE)
def _subnet(host: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    address = ipaddress.ip_address(host)
    if address.version == 4:
        return _Subnet4(f"{address}/24")
    return _Subnet6(f"{address}/64")
