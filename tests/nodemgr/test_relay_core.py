"""The relay's rules without sockets (`seattle.nodemgr.relay.RelayCore`): caps, refusal codes and their
numbers, renewals, expiry, and who may accept which circuit."""

from __future__ import annotations

import pytest

from seattle.budgets import source_of
from seattle.keys import PublicKey, generate_identity
from seattle.nodemgr.relay import (
    BAD_REQUEST,
    CALL,
    CIRCUITS_FULL,
    CIRCUITS_PER_ADDRESS,
    CIRCUITS_PER_NETWORK,
    COORDINATION,
    IDENTITY_REQUIRED,
    NO_RESERVATION,
    RELAY_OFF,
    RESERVATIONS_FULL,
    RESERVATIONS_PER_ADDRESS,
    RESERVATIONS_PER_NETWORK,
    UNKNOWN_CIRCUIT,
    RelayCore,
    RelayLimits,
    RelayRefused,
)
from seattle.vouchers import check_voucher

NOW = 1_700_000_000.0
RELAY = generate_identity("relay")


def key(n: int) -> PublicKey:
    return PublicKey(bytes([n]) * 32)


def refused(code: str) -> pytest.RaisesExc[RelayRefused]:
    return pytest.raises(RelayRefused, match=f"^{code}: ")


def test_a_reservation_comes_with_a_voucher_for_that_node_until_its_expiry() -> None:
    core = RelayCore(RELAY, RelayLimits(reservation_ttl=3600))
    reservation, voucher = core.reserve(key(1), source_of("203.0.113.5"), NOW)
    checked = check_voucher(voucher, key(1), NOW)
    assert checked.relay == RELAY.public_key and checked.expires == reservation.expires == NOW + 3600


def test_anonymous_peers_and_a_relay_turned_off_are_refused() -> None:
    with refused(IDENTITY_REQUIRED):
        RelayCore(RELAY).reserve(None, source_of("203.0.113.5"), NOW)
    off = RelayCore(RELAY, RelayLimits(enabled=False))
    with refused(RELAY_OFF):
        off.reserve(key(1), source_of("203.0.113.5"), NOW)
    with refused(RELAY_OFF):
        off.open_circuit(key(1), source_of("198.51.100.1"), CALL, NOW)


def test_reservation_caps_per_address_per_network_and_in_all_say_their_numbers() -> None:
    core = RelayCore(RELAY, RelayLimits(max_reservations=5, reservations_per_address=2, reservations_per_network=3))
    core.reserve(key(1), source_of("203.0.113.5"), NOW)
    core.reserve(key(2), source_of("203.0.113.5"), NOW)
    with pytest.raises(RelayRefused) as per_address:
        core.reserve(key(3), source_of("203.0.113.5"), NOW)
    assert per_address.value.code == RESERVATIONS_PER_ADDRESS and "2 reservations" in per_address.value.message
    core.reserve(key(3), source_of("203.0.113.6"), NOW)
    with pytest.raises(RelayRefused) as per_network:
        core.reserve(key(4), source_of("203.0.113.7"), NOW)
    assert per_network.value.code == RESERVATIONS_PER_NETWORK and "203.0.113.0/24" in per_network.value.message
    core.reserve(key(4), source_of("198.51.100.1"), NOW)
    core.reserve(key(5), source_of("192.0.2.1"), NOW)
    with pytest.raises(RelayRefused) as full:
        core.reserve(key(6), source_of("192.0.2.200"), NOW)
    assert full.value.code == RESERVATIONS_FULL and "5 reservations" in full.value.message


def test_a_renewal_replaces_the_reservation_and_expired_ones_free_their_place() -> None:
    core = RelayCore(RELAY, RelayLimits(max_reservations=1, reservation_ttl=100))
    first, _ = core.reserve(key(1), source_of("203.0.113.5"), NOW)
    second, _ = core.reserve(key(1), source_of("203.0.113.5"), NOW + 50)
    assert not core.holds(first, NOW + 50) and core.holds(second, NOW + 50)
    core.release(first)  # the old connection ending does not drop the renewal
    assert core.holds(second, NOW + 60)
    with refused(RESERVATIONS_FULL):
        core.reserve(key(2), source_of("198.51.100.1"), NOW + 60)
    core.reserve(key(2), source_of("198.51.100.1"), NOW + 151)  # the first expired at NOW + 150
    with refused(NO_RESERVATION):
        core.open_circuit(key(1), source_of("192.0.2.1"), CALL, NOW + 151)


def test_circuits_only_to_reserved_nodes_and_within_their_caps() -> None:
    core = RelayCore(RELAY, RelayLimits(max_circuits=4, circuits_per_address=2, circuits_per_network=3))
    core.reserve(key(1), source_of("203.0.113.5"), NOW)
    with refused(NO_RESERVATION):
        core.open_circuit(key(2), source_of("198.51.100.1"), CALL, NOW)
    with refused(BAD_REQUEST):
        core.open_circuit(key(1), source_of("198.51.100.1"), "vessel", NOW)
    circuit, _ = core.open_circuit(key(1), source_of("198.51.100.1"), COORDINATION, NOW)
    assert circuit.budget == core.limits.coordination
    core.open_circuit(key(1), source_of("198.51.100.1"), CALL, NOW)
    with refused(CIRCUITS_PER_ADDRESS):
        core.open_circuit(key(1), source_of("198.51.100.1"), CALL, NOW)
    core.open_circuit(key(1), source_of("198.51.100.2"), CALL, NOW)
    with refused(CIRCUITS_PER_NETWORK):
        core.open_circuit(key(1), source_of("198.51.100.3"), CALL, NOW)
    core.open_circuit(key(1), source_of("192.0.2.1"), CALL, NOW)
    with refused(CIRCUITS_FULL):
        core.open_circuit(key(1), source_of("192.0.2.2"), CALL, NOW)
    core.close_circuit(circuit)
    core.open_circuit(key(1), source_of("192.0.2.2"), CALL, NOW)


def test_only_the_node_asked_for_accepts_a_circuit_and_only_once() -> None:
    core = RelayCore(RELAY)
    core.reserve(key(1), source_of("203.0.113.5"), NOW)
    circuit, _ = core.open_circuit(key(1), source_of("198.51.100.1"), CALL, NOW)
    for wrong_id, node in ((circuit.id, key(2)), (circuit.id, None), (b"x" * 16, key(1)), ("text", key(1))):
        with refused(UNKNOWN_CIRCUIT):
            core.accept_circuit(wrong_id, node)
    assert core.accept_circuit(circuit.id, key(1)) is circuit
    with refused(UNKNOWN_CIRCUIT):
        core.accept_circuit(circuit.id, key(1))


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_reservations"):
        RelayLimits(max_reservations=0)
    with pytest.raises(ValueError, match="rate"):
        RelayLimits(rate=0)
