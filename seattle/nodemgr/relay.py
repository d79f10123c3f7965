"""The relay's rules, sans-IO: who may hold a reservation, who may open a circuit to whom, and how much.

A node manager behind a NAT cannot be dialled. It keeps a reservation on a public node manager (the relay),
and a researcher who wants to reach it asks the relay for a circuit to its key; the relay splices the
researcher's connection to a fresh connection the NATed node opens for the purpose (docs/relay.md). This
module decides; `seattle.nodemgr.relay_service` moves the bytes. Callers pass the time in.

The relay is never an open proxy: a circuit goes only to a node that holds a reservation here, and it ends at
that node's own node manager server (the NATed node serves the circuit like any accepted connection), so no
other address, port or vessel is ever reached through it. Everything is capped, by count and by source
(`seattle.budgets.source_of`: an IPv4 address or IPv6 /64 within its /24 or /48), and every refusal carries a
stable code and the numbers behind it:

    relay_off                    this node does not relay (its donor turned relaying off)
    relay_identity_required      a reservation needs a node key proven in the channel's handshake
    relay_reservations_full      the relay holds its maximum number of reservations
    relay_reservations_per_address / relay_reservations_per_network   too many from one source
    relay_no_reservation         no reservation for the key asked for: the relay relays for no one else
    relay_circuits_full          the relay carries its maximum number of circuits
    relay_circuits_per_node / relay_circuits_per_address / relay_circuits_per_network   caps per end
    relay_unknown_circuit        an accept for a circuit that is not waiting (or not for this node)
    relay_bad_request            a relay request whose arguments are not the documented ones

Circuits come in two classes, as in libp2p's "limited relay": `coordination` (small, for the hole punch and
the handshakes) and `call` (node manager calls, larger; when one runs out the client opens another circuit,
which is admitted by the same caps: that is the renewal).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field

from seattle.budgets import Source
from seattle.keys import Identity, PublicKey
from seattle.refusal import Refused
from seattle.vouchers import sign_voucher

RELAY_OFF = "relay_off"
IDENTITY_REQUIRED = "relay_identity_required"
RESERVATIONS_FULL = "relay_reservations_full"
RESERVATIONS_PER_ADDRESS = "relay_reservations_per_address"
RESERVATIONS_PER_NETWORK = "relay_reservations_per_network"
NO_RESERVATION = "relay_no_reservation"
CIRCUITS_FULL = "relay_circuits_full"
CIRCUITS_PER_NODE = "relay_circuits_per_node"
CIRCUITS_PER_ADDRESS = "relay_circuits_per_address"
CIRCUITS_PER_NETWORK = "relay_circuits_per_network"
UNKNOWN_CIRCUIT = "relay_unknown_circuit"
BAD_REQUEST = "relay_bad_request"

#: The circuit classes (`RelayConnect`'s "kind").
COORDINATION = "coordination"
CALL = "call"
KINDS = (COORDINATION, CALL)
CIRCUIT_ID_SIZE = 16


class RelayRefused(Refused):
    """A relay request refused: `code` is one of the module's codes, `message` says why, with numbers."""


@dataclass(frozen=True)
class CircuitBudget:
    """What one circuit may carry: bytes in each direction and seconds in all."""

    bytes_each_way: int
    seconds: float


@dataclass(frozen=True)
class RelayLimits:
    """A relay's caps (docs/donors-guide.md explains each; go-libp2p's circuit v2 defaults, and Seattle's
    forwarders' rule that only node manager traffic is relayed, are where the numbers come from)."""

    enabled: bool = True
    #: How long a reservation (and its voucher) lasts; the node renews it before then.
    reservation_ttl: float = 3600.0
    max_reservations: int = 128
    reservations_per_address: int = 8
    reservations_per_network: int = 32
    max_circuits: int = 256
    circuits_per_node: int = 16
    circuits_per_address: int = 8
    circuits_per_network: int = 32
    coordination: CircuitBudget = CircuitBudget(128 * 1024, 120.0)
    call: CircuitBudget = CircuitBudget(16 * 1024 * 1024, 600.0)
    #: Bytes per second through all circuits together (None: no cap beyond the per-circuit budgets).
    rate: int | None = None
    #: Seconds the NATed node has to open its side of a circuit after being told of it.
    accept_timeout: float = 10.0
    #: Seconds without a frame on a reservation's control connection before the relay drops it (the node
    #: pings more often than that).
    control_idle: float = 90.0

    def __post_init__(self) -> None:
        for name in ("max_reservations", "reservations_per_address", "reservations_per_network", "max_circuits",
                     "circuits_per_node", "circuits_per_address", "circuits_per_network"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"RelayLimits.{name} must be a positive integer, got {value!r}")
        for name in ("reservation_ttl", "accept_timeout", "control_idle"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0 or math.isnan(value):
                raise ValueError(f"RelayLimits.{name} must be a positive number, got {value!r}")
        if self.rate is not None and (type(self.rate) is not int or self.rate < 1):
            raise ValueError(f"RelayLimits.rate must be a positive integer (bytes/s) or None, got {self.rate!r}")

    def budget(self, kind: str) -> CircuitBudget:
        return self.coordination if kind == COORDINATION else self.call


@dataclass(eq=False)
class Reservation:
    """A node's reservation: `token` tells this reservation from a later one of the same node."""

    node: PublicKey
    source: Source
    expires: float
    token: int


@dataclass(eq=False)
class Circuit:
    """A circuit asked for (`accepted` False) or spliced."""

    id: bytes
    node: PublicKey
    source: Source
    kind: str
    budget: CircuitBudget
    accepted: bool = False


@dataclass
class _Counts:
    by_address: Counter[str] = field(default_factory=Counter)
    by_network: Counter[str] = field(default_factory=Counter)

    def add(self, source: Source, step: int) -> None:
        for table, key in ((self.by_address, source.address), (self.by_network, source.network)):
            table[key] += step
            if table[key] <= 0:
                del table[key]


class RelayCore:
    """The reservations and circuits of one relay; every decision of the module docstring."""

    def __init__(self, identity: Identity, limits: RelayLimits | None = None) -> None:
        self.identity = identity
        self.limits = limits or RelayLimits()
        self.reservations: dict[PublicKey, Reservation] = {}
        self.circuits: dict[bytes, Circuit] = {}
        self._reserved = _Counts()
        self._circuit_counts = _Counts()
        self._per_node: Counter[PublicKey] = Counter()
        self._tokens = 0

    # -- reservations -----------------------------------------------------------------------------------

    def reserve(self, node: PublicKey | None, source: Source, now: float) -> tuple[Reservation, bytes]:
        """A new (or renewed: it replaces the node's earlier one) reservation and its voucher."""
        limits = self.limits
        if not limits.enabled:
            raise RelayRefused(RELAY_OFF, "this node does not relay (its donor turned relaying off)")
        if node is None:
            raise RelayRefused(IDENTITY_REQUIRED, "a reservation needs the node's key proven in the handshake")
        self._expire(now)
        held = self.reservations.get(node)
        if held is not None:
            self._drop_reservation(held)
        try:
            self._check_room(source)
        except RelayRefused:
            if held is not None:  # a renewal from a source over its cap keeps what it had
                self._add_reservation(held)
            raise
        self._tokens += 1
        expires = math.floor(now + limits.reservation_ttl)
        reservation = Reservation(node, source, float(expires), self._tokens)
        self._add_reservation(reservation)
        return reservation, sign_voucher(self.identity, node, expires)

    def _check_room(self, source: Source) -> None:
        limits = self.limits
        if len(self.reservations) >= limits.max_reservations:
            raise RelayRefused(RESERVATIONS_FULL, f"this relay holds its maximum of {limits.max_reservations} "
                                                  "reservations; try another relay")
        if self._reserved.by_address[source.address] >= limits.reservations_per_address:
            raise RelayRefused(RESERVATIONS_PER_ADDRESS, f"{source.address} already holds "
                               f"{limits.reservations_per_address} reservations here, the most one address may")
        if self._reserved.by_network[source.network] >= limits.reservations_per_network:
            raise RelayRefused(RESERVATIONS_PER_NETWORK, f"the network {source.network} already holds "
                               f"{limits.reservations_per_network} reservations here, the most one network may")

    def _add_reservation(self, reservation: Reservation) -> None:
        self.reservations[reservation.node] = reservation
        self._reserved.add(reservation.source, 1)

    def _drop_reservation(self, reservation: Reservation) -> None:
        del self.reservations[reservation.node]
        self._reserved.add(reservation.source, -1)

    def release(self, reservation: Reservation) -> None:
        """The reservation ended (its control connection closed); a newer one of the node stays."""
        if self.reservations.get(reservation.node) is reservation:
            self._drop_reservation(reservation)

    def holds(self, reservation: Reservation, now: float) -> bool:
        """Whether `reservation` is still the node's current one."""
        self._expire(now)
        return self.reservations.get(reservation.node) is reservation

    def _expire(self, now: float) -> None:
        for reservation in [r for r in self.reservations.values() if r.expires <= now]:
            self._drop_reservation(reservation)

    # -- circuits ---------------------------------------------------------------------------------------

    def open_circuit(self, node: PublicKey, source: Source, kind: str, now: float) -> tuple[Circuit, Reservation]:
        """A circuit from `source` to `node`, waiting for the node to accept it; with the reservation whose
        control connection must tell the node."""
        limits = self.limits
        if not limits.enabled:
            raise RelayRefused(RELAY_OFF, "this node does not relay (its donor turned relaying off)")
        if kind not in KINDS:
            raise RelayRefused(BAD_REQUEST, f"a circuit's kind is one of {', '.join(KINDS)}")
        self._expire(now)
        reservation = self.reservations.get(node)
        if reservation is None:
            raise RelayRefused(NO_RESERVATION, f"the node {node.fingerprint()} holds no reservation with this "
                                               "relay, and a relay relays only for nodes that do")
        if len(self.circuits) >= limits.max_circuits:
            raise RelayRefused(CIRCUITS_FULL, f"this relay carries its maximum of {limits.max_circuits} circuits; "
                                              "retry in a moment")
        if self._per_node[node] >= limits.circuits_per_node:
            raise RelayRefused(CIRCUITS_PER_NODE, f"the node {node.fingerprint()} already has "
                               f"{limits.circuits_per_node} circuits through this relay, the most one node may")
        if self._circuit_counts.by_address[source.address] >= limits.circuits_per_address:
            raise RelayRefused(CIRCUITS_PER_ADDRESS, f"{source.address} already has {limits.circuits_per_address} "
                                                     "circuits through this relay, the most one address may")
        if self._circuit_counts.by_network[source.network] >= limits.circuits_per_network:
            raise RelayRefused(CIRCUITS_PER_NETWORK, f"the network {source.network} already has "
                               f"{limits.circuits_per_network} circuits through this relay, the most one network may")
        circuit = Circuit(os.urandom(CIRCUIT_ID_SIZE), node, source, kind, limits.budget(kind))
        self.circuits[circuit.id] = circuit
        self._per_node[node] += 1
        self._circuit_counts.add(source, 1)
        return circuit, reservation

    def accept_circuit(self, circuit_id: object, node: PublicKey | None) -> Circuit:
        """The node's side of a waiting circuit: only the node it was asked for, only once."""
        circuit = self.circuits.get(circuit_id) if isinstance(circuit_id, bytes) else None
        if circuit is None or circuit.accepted or node != circuit.node:
            raise RelayRefused(UNKNOWN_CIRCUIT, "no circuit with that id is waiting for this node")
        circuit.accepted = True
        return circuit

    def close_circuit(self, circuit: Circuit) -> None:
        if self.circuits.pop(circuit.id, None) is circuit:
            self._per_node[circuit.node] -= 1
            if self._per_node[circuit.node] <= 0:
                del self._per_node[circuit.node]
            self._circuit_counts.add(circuit.source, -1)
