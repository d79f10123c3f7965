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
from dataclasses import dataclass
from functools import cached_property

from seattle.keys import PublicKey

ID_BITS = 256
ID_BYTES = ID_BITS // 8
_ID_LIMIT = 1 << ID_BITS


@dataclass(frozen=True, order=True)
class NodeId:
    """A point in the 256-bit keyspace. Ordered by value so sets of ids print and sort reproducibly."""

    value: int

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise TypeError(f"a node id is an int, got {type(self.value).__name__}")
        if not 0 <= self.value < _ID_LIMIT:
            raise ValueError(f"a node id lies in [0, 2**{ID_BITS}), got {self.value}")

    @classmethod
    def from_public_key(cls, key: PublicKey) -> NodeId:
        """The id a node holding `key` must use; peers recompute it from the key the node proved it holds."""
        return cls.from_bytes(hashlib.blake2b(key.raw, digest_size=ID_BYTES).digest())

    @classmethod
    def from_bytes(cls, raw: bytes) -> NodeId:
        """Parse the 32-byte big-endian wire form."""
        if not isinstance(raw, bytes) or len(raw) != ID_BYTES:
            raise ValueError(f"a node id is {ID_BYTES} bytes, got {raw!r:.80}")
        return cls(int.from_bytes(raw, "big"))

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
        return self.value.to_bytes(ID_BYTES, "big")

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


@dataclass(frozen=True)
class Contact:
    """How to reach a peer: its id and the UDP address it proved its key from."""

    node_id: NodeId
    host: str
    port: int

    def __post_init__(self) -> None:
        if not isinstance(self.node_id, NodeId):
            raise TypeError(f"contact node_id must be a NodeId, got {type(self.node_id).__name__}")
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            raise ValueError(f"contact host must be an IP address literal, got {self.host!r:.80}") from None
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ValueError(f"contact port must be an int in 1..65535, got {self.port!r}")

    @cached_property
    def subnet(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """The address range one operator typically controls: /24 for IPv4, /64 for IPv6.

        Routing tables cap contacts per range so that one machine or cheap cloud block cannot fill a bucket
        with Sybil ids. Cached because every insert into a bucket compares it against up to k others.
        """
        address = ipaddress.ip_address(self.host)
        prefix = 24 if address.version == 4 else 64
        return ipaddress.ip_network(f"{address}/{prefix}", strict=False)
