"""Node ids bound to work (issue 13): the static puzzle's check, its solver, and the grinding it stops."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable

import nacl.signing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seattle.keys import Identity, PublicKey
from seattle.overlay.nodeid import (
    DEFAULT_NETWORK,
    DEFAULT_PUZZLE_BITS,
    ID_BYTES,
    MAX_PUZZLE_BITS,
    NetworkParameters,
    NodeId,
    id_is_bound,
    id_work,
    solve_identity,
)
from seattle.overlay.simulation import Config, _new_node
from seattle.testing.overlay import seeded_identity

ids = st.binary(min_size=ID_BYTES, max_size=ID_BYTES).map(NodeId.from_bytes)


def _seeds(label: str) -> Callable[[], bytes]:
    """Reproducible seeds: BLAKE2b of label/0, label/1, ..."""
    numbers = itertools.count()
    return lambda: hashlib.blake2b(f"{label}/{next(numbers)}".encode(), digest_size=32).digest()


def _id(identity: Identity) -> NodeId:
    return NodeId.from_public_key(identity.public_key)


def _id_of_seed(seed: bytes) -> NodeId:
    return NodeId.from_public_key(PublicKey(bytes(nacl.signing.SigningKey(seed).verify_key)))


# --- the check ---------------------------------------------------------------------------------------------


@given(ids, st.integers(0, MAX_PUZZLE_BITS))
def test_bound_means_enough_leading_zero_bits_of_the_work_hash(node_id: NodeId, bits: int) -> None:
    work = id_work(node_id)
    assert 0 <= work <= MAX_PUZZLE_BITS
    digest = hashlib.blake2b(node_id.raw, digest_size=32, person=b"seattle/id-work1").digest()
    assert work == min(MAX_PUZZLE_BITS, 256 - int.from_bytes(digest, "big").bit_length())
    assert id_is_bound(node_id, NetworkParameters(puzzle_bits=bits)) == (work >= bits)


@given(ids)
def test_a_network_without_work_accepts_every_id(node_id: NodeId) -> None:
    assert id_is_bound(node_id, NetworkParameters.testing())


@given(ids, st.integers(0, MAX_PUZZLE_BITS - 1))
def test_more_work_never_accepts_an_id_less_work_refuses(node_id: NodeId, bits: int) -> None:
    if id_is_bound(node_id, NetworkParameters(puzzle_bits=bits + 1)):
        assert id_is_bound(node_id, NetworkParameters(puzzle_bits=bits))


@pytest.mark.parametrize("bits", [-1, MAX_PUZZLE_BITS + 1, True, 13.0, "13", None])
def test_network_parameters_refuse_a_puzzle_out_of_range(bits: object) -> None:
    with pytest.raises(ValueError, match="puzzle_bits"):
        NetworkParameters(puzzle_bits=bits)  # type: ignore[arg-type]


def test_the_default_network_asks_the_fixed_puzzle() -> None:
    assert DEFAULT_NETWORK == NetworkParameters() == NetworkParameters(puzzle_bits=DEFAULT_PUZZLE_BITS)
    assert DEFAULT_PUZZLE_BITS == 13  # changing it splits the real network: say so in the commit
    assert DEFAULT_NETWORK.expected_keys == 8192


# --- the attack it stops ------------------------------------------------------------------------------------


def test_ids_ground_next_to_a_target_without_work_are_refused() -> None:
    """Issue 13: keys cost ~40,000/s, so before this check ~500 of them placed an id among the 20 closest to
    any key of a 10,000-node overlay. Grind that way (fresh keys, keep those that land close) and every id
    found is refused: an id costs 2**13 keys, not one."""
    target = NodeId.from_bytes(hashlib.blake2b(b"victim", digest_size=32).digest())
    honest = sorted(
        target.distance(NodeId.from_bytes(hashlib.blake2b(b"h%d" % n, digest_size=32).digest()))
        for n in range(10_000)
    )
    kth = honest[19]
    seeds = _seeds("grinder")
    placed = []
    for _ in range(3_000):
        node_id = _id_of_seed(seeds())
        if target.distance(node_id) < kth:
            placed.append(node_id)
    assert len(placed) >= 3  # the grinding works: ~6 of 3,000 keys land among the 20 closest
    assert not any(id_is_bound(node_id) for node_id in placed)


def test_grinding_keys_yields_bound_ids_at_the_puzzles_rate() -> None:
    """Of many fresh keys, about one in 2**bits has a bound id: the work is not skippable by picking keys."""
    network = NetworkParameters(puzzle_bits=6)
    seeds = _seeds("rate")
    count = 20_000
    bound = sum(id_is_bound(_id_of_seed(seeds()), network) for _ in range(count))
    expected = count / network.expected_keys  # 312.5, standard deviation ~17.5
    assert 0.75 * expected < bound < 1.25 * expected


# --- the solver ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [0, 1, 8])
def test_solve_identity_returns_a_key_whose_id_is_bound(bits: int) -> None:
    network = NetworkParameters(puzzle_bits=bits)
    identity = solve_identity("node", network, seeds=_seeds(f"solve{bits}"))
    assert identity.name == "node"
    assert id_is_bound(_id(identity), network)
    assert id_work(_id(identity)) >= bits


def test_solve_identity_stops_at_the_first_bound_key() -> None:
    network = NetworkParameters(puzzle_bits=5)
    tried = []
    source = _seeds("first")

    def seeds() -> bytes:
        tried.append(source())
        return tried[-1]

    identity = solve_identity("node", network, seeds=seeds)
    assert bytes(identity.signing_key) == tried[-1]
    works = [id_work(_id_of_seed(seed)) for seed in tried]
    assert works[-1] >= 5 and all(work < 5 for work in works[:-1])


def test_solve_identity_draws_fresh_keys_by_default() -> None:
    network = NetworkParameters(puzzle_bits=2)
    first, second = solve_identity("a", network), solve_identity("a", network)
    assert first.public_key != second.public_key


# --- seeded identities for tests and simulations -------------------------------------------------------------


def test_seeded_identities_without_work_keep_their_old_keys() -> None:
    """Seeded tests keep their node ids (and so every routing decision) when no work is asked."""
    expected = nacl.signing.SigningKey(hashlib.blake2b(b"sim7", digest_size=32).digest())
    assert bytes(seeded_identity("sim7").signing_key) == bytes(expected)


def test_seeded_identities_with_work_are_bound_and_repeat() -> None:
    network = NetworkParameters(puzzle_bits=7)
    first, again = seeded_identity("sim7", network), seeded_identity("sim7", network)
    assert first.public_key == again.public_key
    assert id_is_bound(_id(first), network)


# --- simulations ---------------------------------------------------------------------------------------------


def test_simulated_nodes_carry_the_configured_work_and_repeat() -> None:
    config = Config(nodes=10, puzzle_bits=5)
    first, again = _new_node(config, "node3"), _new_node(config, "node3")
    assert first.node_id == again.node_id
    assert id_work(first.node_id) >= 5


def test_simulations_without_work_keep_their_node_ids() -> None:
    """The default (no work) derives each key from the seed and name exactly as before, so runs repeat."""
    seed = hashlib.blake2b(b"1/node3", digest_size=32).digest()
    assert _new_node(Config(), "node3").identity.public_key == PublicKey(
        bytes(nacl.signing.SigningKey(seed).verify_key)
    )


@pytest.mark.parametrize("bits", [-1, MAX_PUZZLE_BITS + 1])
def test_a_simulation_refuses_a_puzzle_out_of_range(bits: int) -> None:
    with pytest.raises(ValueError, match="puzzle_bits"):
        Config(puzzle_bits=bits)
