"""Overlay identities: 256-bit node ids bound to Ed25519 keys, XOR distance, and the peer `Contact`.

A node id is BLAKE2b-256 of the node's raw Ed25519 public key, so an id cannot be chosen freely: to sit
next to a target a node must find a key whose hash lands there, and the transport makes a new contact prove
it holds that key before the routing table sees it. BLAKE2b rather than SHA-256 because `seattle.keys`
already uses BLAKE2b for fingerprints (one hash family to audit) and a 256-bit BLAKE2b output has the same
collision and preimage margins; SHA-256 would only matter for interoperating with libp2p ids, not a goal.

Keys are free to mint (about 40,000 a second on one core), so hashing alone would let anyone grind a key whose
id lands next to a chosen target. An id is therefore *bound* only if it also carries work, S/Kademlia's static
puzzle: the id's work hash, a second BLAKE2b of the id under its own personalisation, must start with
`NetworkParameters.puzzle_bits` zero bits (`id_is_bound`). Each candidate key costs a key generation, so an id
that passes costs 2**puzzle_bits of them on average, and the attacker who wants an id near a target pays that
for every candidate, while a donor pays it once at `node init` (`solve_identity`). The check needs the id only, so a
contact learnt from a `nodes` answer (id ‖ IP ‖ port) can be judged before anyone talks to it, and the
solution is the key itself: nothing else is stored or sent. docs/security/node-ids.md has the numbers, why
the work is one geometric puzzle and not several small ones, and why ids are not bound to addresses.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Callable
from dataclasses import FrozenInstanceError, dataclass, field
from functools import lru_cache

import nacl.bindings
import nacl.signing

from seattle.keys import Identity, PublicKey

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
            return self.value == other.value
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


@dataclass(frozen=True, slots=True, eq=False)
class Contact:
    """How to reach a peer: its id and the UDP address it proved its key from.

    Messages carry a contact as its `packed` form, id (32 bytes) ‖ IP (4 or 16) ‖ port (2, big-endian).
    `Contact.at` and `unpack_contact` hand out one shared object per contact: every `nodes` answer names
    20 of the same few thousand peers, so sharing saves the parsing, and the memory of a process that runs
    many nodes (the simulator, the benchmarks), whose tables then hold one object per peer, not one each.
    """

    node_id: NodeId
    host: str
    port: int
    #: id ‖ IP ‖ port, 38 or 50 bytes: how messages carry a contact. Every answer sends 20, so it is kept.
    packed: bytes = field(init=False, repr=False)
    #: The address's /24 (IPv4) or /48 (IPv6) prefix, packed (3 or 6 bytes, so the two never collide): the
    #: range one operator typically controls (an IPv6 /64 is one host's; a /48 holds 65,536 of them). Routing
    #: tables cap contacts per range so that one machine or cheap cloud block cannot fill a bucket with Sybil
    #: ids, and count them under this key (it hashes in C).
    subnet_key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.node_id, NodeId):
            raise TypeError(f"contact node_id must be a NodeId, got {type(self.node_id).__name__}")
        if self.host.__class__ is not str or not _is_ip_literal(self.host):
            raise ValueError(f"contact host must be an IP address literal, got {self.host!r:.80}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ValueError(f"contact port must be an int in 1..65535, got {self.port!r}")
        ip = _packed_ip(self.host)
        object.__setattr__(self, "packed", self.node_id.raw + ip + self.port.to_bytes(2, "big"))
        object.__setattr__(self, "subnet_key", ip[: 3 if len(ip) == 4 else 6])

    @classmethod
    def at(cls, node_id: NodeId, host: str, port: int) -> Contact:
        """The shared contact for `node_id` at (host, port); ValueError/TypeError as the constructor's."""
        return unpack_contact(cls.pack(node_id, host, port))

    @staticmethod
    def pack(node_id: NodeId, host: str, port: int) -> bytes:
        """The `packed` form of `node_id` at (host, port), without making (or caching) the contact: for a
        check that must come first, such as an ack's cookie. ValueError/TypeError as the constructor's."""
        if not isinstance(node_id, NodeId):
            raise TypeError(f"contact node_id must be a NodeId, got {type(node_id).__name__}")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"contact port must be an int in 1..65535, got {port!r}")
        try:
            if host.__class__ is not str:  # ip_address would take packed bytes too; the constructor does not
                raise ValueError(host)
            ip = _packed_ip(host)
        except (TypeError, ValueError):
            raise ValueError(f"contact host must be an IP address literal, got {host!r:.80}") from None
        return node_id.raw + ip + port.to_bytes(2, "big")

    def __eq__(self, other: object) -> bool:
        if self is other:  # the usual case: contacts are shared
            return True
        if other.__class__ is not Contact:
            return NotImplemented
        return (self.node_id, self.host, self.port) == (other.node_id, other.host, other.port)

    def __hash__(self) -> int:
        return hash((self.node_id.value, self.host, self.port))

    @property
    def subnet(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """The network `subnet_key` stands for, for people and logs."""
        address = ipaddress.ip_address(self.host)
        return ipaddress.ip_network(f"{address}/{24 if address.version == 4 else 48}", strict=False)


#: Parse caches. Contacts are rebuilt from every datagram, so the same few thousand hosts are parsed again and
#: again; the caches are bounded so that a flood of distinct addresses costs at most a few MB.
_CACHE_SIZE = 1 << 16


@lru_cache(maxsize=_CACHE_SIZE)
def _id_of_key(raw: bytes) -> NodeId:
    digest = hashlib.blake2b(raw, digest_size=ID_BYTES).digest()
    return NodeId._trusted(int.from_bytes(digest, "big"), digest)


#: Sizes of a packed contact: id, IPv4 or IPv6 address, port.
PACKED_SIZES = (ID_BYTES + 4 + 2, ID_BYTES + 16 + 2)


@lru_cache(maxsize=_CACHE_SIZE)
def unpack_contact(packed: bytes) -> Contact:
    """The shared contact a `Contact.packed` form names; ValueError saying what is wrong (TypeError if
    `packed` is unhashable, so certainly not bytes). Cached: most contacts in answers were seen before."""
    if packed.__class__ is not bytes or len(packed) not in PACKED_SIZES:
        raise ValueError(f"a packed contact is {' or '.join(map(str, PACKED_SIZES))} bytes, got {packed!r:.60}")
    raw = packed[:ID_BYTES]
    port = int.from_bytes(packed[-2:], "big")
    if port == 0:
        raise ValueError(f"a contact's port is 1..65535, got 0 in {packed!r:.60}")
    return Contact(NodeId._trusted(int.from_bytes(raw, "big"), raw), _ip_text(packed[ID_BYTES:-2]), port)


@lru_cache(maxsize=_CACHE_SIZE)
def _ip_text(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


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


# --- ids bound to work ----------------------------------------------------------------------------------

#: BLAKE2b personalisation of the work hash: the hash of an id under it serves this puzzle and nothing else,
#: so no other use of BLAKE2b over 32 bytes (fingerprints, record keys) can hand out solutions.
_WORK_PERSON = b"seattle/id-work1"
#: The most work a network may ask: 32 bits is 4 billion keys per id, far past any donor's patience, and the
#: check reads only the work hash's first 4 bytes.
MAX_PUZZLE_BITS = 32
#: The real network's puzzle: 2**13 = 8,192 keys per id on average, about 0.2 s at the 40,000-48,000 keys/s
#: of the development machine's core, so the geometric tail keeps `node init` under 2 s at the p99 (ln 100 ×
#: mean ≈ 0.8 s) with room for a slower or busy computer (bench/bench_idgrind.py measures it). Fixed:
#: nodes that ask different values refuse each other's ids.
DEFAULT_PUZZLE_BITS = 13


@dataclass(frozen=True, slots=True)
class NetworkParameters:
    """What every node of one overlay must agree on to accept each other's ids.

    `puzzle_bits` is the work an id must carry (`id_is_bound`). The default network's value is fixed
    (`DEFAULT_NETWORK`); simulations and tests lower it (`NetworkParameters.testing()`: no work) so that
    10,000 seeded nodes build in seconds, since every node of a network pays 2**puzzle_bits key generations.
    """

    puzzle_bits: int = DEFAULT_PUZZLE_BITS

    def __post_init__(self) -> None:
        bits = self.puzzle_bits
        if bits.__class__ is not int or not 0 <= bits <= MAX_PUZZLE_BITS:
            raise ValueError(f"puzzle_bits must be an int in 0..{MAX_PUZZLE_BITS}, got {bits!r}")

    @classmethod
    def testing(cls) -> NetworkParameters:
        """No work at all: for simulations and tests, never for a network of strangers."""
        return cls(puzzle_bits=0)

    @property
    def expected_keys(self) -> int:
        """Key generations a solver needs on average (geometric: 2**puzzle_bits, p99 at 4.6× that)."""
        return 1 << self.puzzle_bits


DEFAULT_NETWORK = NetworkParameters()


def id_work(node_id: NodeId) -> int:
    """The work `node_id` carries: leading zero bits of its work hash, 0..MAX_PUZZLE_BITS.

    One BLAKE2b of 32 bytes, about a microsecond; cached all the same (as the contact parse caches, and
    under the same bound), because a node checks every contact of every `nodes` answer: 20 per answer, of
    the same few thousand peers, which made the check about 5 % of a joining node's CPU time.
    """
    return _known_work(node_id.raw)


def id_is_bound(node_id: NodeId, network: NetworkParameters = DEFAULT_NETWORK) -> bool:
    """True if `node_id` carries the work `network` asks of every id (module docstring).

    Judges the id alone: that the sender holds a key hashing to it is the message signature's business
    (`seattle.overlay.messages`), so an id learnt from a `nodes` answer can be checked before any round trip.
    """
    return _known_work(node_id.raw) >= network.puzzle_bits


def _work_of_raw(raw: bytes) -> int:
    digest = hashlib.blake2b(raw, digest_size=32, person=_WORK_PERSON).digest()
    return MAX_PUZZLE_BITS - int.from_bytes(digest[:4], "big").bit_length()


#: `_work_of_raw` for the ids of peers (`id_work`); the solver's thousands of candidates bypass it.
_known_work = lru_cache(maxsize=_CACHE_SIZE)(_work_of_raw)


def solve_identity(
    name: str,
    network: NetworkParameters = DEFAULT_NETWORK,
    *,
    seeds: Callable[[], bytes] = lambda: os.urandom(32),
) -> Identity:
    """A new key pair named `name` whose id is bound under `network`: keys are drawn until one passes.

    Expected cost 2**puzzle_bits key generations (about 0.2 s on the real network); the default draws seeds
    from the OS's random source, tests pass `seeds` that derive them from a name, so ids repeat run to run.
    The ids tried do not go through the shared id cache, which keeps the peers a node really hears from.
    """
    bits = network.puzzle_bits
    while True:
        seed = seeds()
        key, _secret = nacl.bindings.crypto_sign_seed_keypair(seed)
        if bits == 0 or _work_of_raw(hashlib.blake2b(key, digest_size=ID_BYTES).digest()) >= bits:
            return Identity(name, nacl.signing.SigningKey(seed))
