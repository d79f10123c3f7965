"""The advertiser's sans-IO record set: which subjects, rising sequences, tombstones, republish and retry timing.

No network and no clock: time is passed in, and every record returned is checked with `records.verify`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from seattle.advertise.advertiser import (
    REPUBLISH_INTERVAL,
    RETRY_INTERVAL,
    AdvertiserState,
    Publication,
    subjects_of,
)
from seattle.keys import PublicKey, generate_identity
from seattle.overlay.records import DEFAULT_LIFETIME, MAX_ADDRESSES, verify

T0 = 1_800_000_000.0
ADDRESSES = ("127.0.0.1:1224",)
NODE = generate_identity("node")
OWNER, USER, OTHER = (generate_identity(name).public_key for name in ("owner", "user", "other"))


@dataclass
class Vessel:
    owner: bytes
    users: tuple[bytes, ...]
    advertise: bool


def by_subject(publications: list[Publication]) -> dict[PublicKey, Publication]:
    return {p.subject: p for p in publications}


def changes(state: AdvertiserState, subjects: set[PublicKey], addresses: tuple[str, ...] | list[str],
            now: float) -> list[Publication]:
    """Update the wanted set (each subject its own group) and take what is to be published at once."""
    state.update({subject: subject for subject in subjects}, addresses, now)
    return state.next_batch(now)


def settle_all(state: AdvertiserState, publications: list[Publication], now: float, stored: int = 3) -> None:
    for publication in publications:
        state.settle(publication, stored, now)


def test_subjects_are_the_node_key_and_owners_and_users_of_advertised_vessels_only() -> None:
    vessels = [Vessel(OWNER.raw, (USER.raw,), True), Vessel(OTHER.raw, (), False)]
    assert subjects_of(NODE.public_key, vessels) == {NODE.public_key: NODE.public_key, OWNER: OWNER, USER: OWNER}
    assert subjects_of(NODE.public_key, []) == {NODE.public_key: NODE.public_key}


def test_first_update_signs_one_valid_record_per_subject() -> None:
    state = AdvertiserState(NODE)
    out = by_subject(changes(state, {NODE.public_key, OWNER, USER}, ADDRESSES, T0))
    assert set(out) == {NODE.public_key, OWNER, USER}
    for subject, publication in out.items():
        record = verify(publication.raw, T0)
        assert record.subject == subject and record.node == NODE.public_key
        assert record.addresses == ADDRESSES and not record.tombstone and not publication.tombstone
        assert record.expires == pytest.approx(T0 + DEFAULT_LIFETIME)
        assert record.sequence == publication.sequence >= int(T0 * 1000)
    assert state.advertised == {NODE.public_key, OWNER, USER}


def test_an_unchanged_set_publishes_nothing_and_a_changed_one_only_the_difference() -> None:
    state = AdvertiserState(NODE)
    first = by_subject(changes(state, {NODE.public_key, OWNER}, ADDRESSES, T0))
    settle_all(state, list(first.values()), T0)
    assert changes(state, {NODE.public_key, OWNER}, ADDRESSES, T0 + 1) == []
    # ChangeOwner: OWNER -> OTHER. OTHER gets a record, OWNER a tombstone with a higher sequence.
    changed = by_subject(changes(state, {NODE.public_key, OTHER}, ADDRESSES, T0 + 2))
    assert set(changed) == {OTHER, OWNER}
    assert not changed[OTHER].tombstone
    tombstone = verify(changed[OWNER].raw, T0 + 2)
    assert tombstone.tombstone and tombstone.addresses == () and changed[OWNER].tombstone
    assert tombstone.sequence > first[OWNER].sequence
    assert state.advertised == {NODE.public_key, OTHER}


def test_sequences_always_rise_even_within_one_millisecond_and_when_the_clock_steps_back() -> None:
    state = AdvertiserState(NODE)
    sequences = []
    for step, now in enumerate([T0, T0, T0 + 0.0001, T0 - 50]):
        wanted = {OWNER} if step % 2 == 0 else set()
        (publication,) = changes(state, wanted, ADDRESSES, now)
        sequences.append(publication.sequence)
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)


def test_a_new_address_reissues_every_advertised_record() -> None:
    state = AdvertiserState(NODE)
    settle_all(state, changes(state, {NODE.public_key, OWNER}, ADDRESSES, T0), T0)
    moved = changes(state, {NODE.public_key, OWNER}, ("127.0.0.1:2000",), T0 + 5)
    assert {p.subject for p in moved} == {NODE.public_key, OWNER}
    assert all(verify(p.raw, T0 + 5).addresses == ("127.0.0.1:2000",) for p in moved)


def test_republish_comes_well_before_expiry_and_only_for_our_own_subjects() -> None:
    state = AdvertiserState(NODE)
    first = changes(state, {NODE.public_key, OWNER}, ADDRESSES, T0)
    settle_all(state, first, T0)
    assert state.next_batch(T0 + REPUBLISH_INTERVAL - 1) == []
    assert state.next_deadline() == pytest.approx(T0 + REPUBLISH_INTERVAL)
    again = by_subject(state.next_batch(T0 + REPUBLISH_INTERVAL))
    assert set(again) == {NODE.public_key, OWNER}
    for publication in first:
        renewed = verify(again[publication.subject].raw, T0 + REPUBLISH_INTERVAL)
        assert renewed.sequence > publication.sequence
        assert renewed.expires == pytest.approx(T0 + REPUBLISH_INTERVAL + DEFAULT_LIFETIME)
    assert REPUBLISH_INTERVAL * 3 < DEFAULT_LIFETIME  # three rounds may be lost before a record lapses


def test_an_unstored_record_is_retried_soon_and_a_stored_tombstone_is_not_republished() -> None:
    state = AdvertiserState(NODE)
    (record,) = changes(state, {OWNER}, ADDRESSES, T0)
    state.settle(record, 0, T0)
    assert state.next_batch(T0 + RETRY_INTERVAL - 1) == []
    (retry,) = state.next_batch(T0 + RETRY_INTERVAL)
    assert retry.subject == OWNER and retry.sequence > record.sequence and not retry.tombstone
    state.settle(retry, 5, T0 + RETRY_INTERVAL)
    (tombstone,) = changes(state, set(), ADDRESSES, T0 + 100)
    assert tombstone.tombstone
    state.settle(tombstone, 5, T0 + 100)
    assert state.next_batch(T0 + 10 * REPUBLISH_INTERVAL) == []
    assert state.next_deadline() is None


def test_a_late_settle_for_a_superseded_publication_is_ignored() -> None:
    state = AdvertiserState(NODE)
    (old,) = changes(state, {OWNER}, ADDRESSES, T0)
    (tombstone,) = changes(state, set(), ADDRESSES, T0 + 1)
    state.settle(old, 0, T0 + 2)  # the old record's publish finished after the withdrawal was signed
    state.settle(tombstone, 4, T0 + 2)
    assert state.next_deadline() is None


def test_a_withdrawn_subject_can_come_back_with_a_higher_sequence() -> None:
    state = AdvertiserState(NODE)
    (first,) = changes(state, {OWNER}, ADDRESSES, T0)
    (tombstone,) = changes(state, set(), ADDRESSES, T0)
    (back,) = changes(state, {OWNER}, ADDRESSES, T0)
    assert first.sequence < tombstone.sequence < back.sequence and not back.tombstone


def test_bad_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match="republish_interval"):
        AdvertiserState(NODE, republish_interval=DEFAULT_LIFETIME)
    with pytest.raises(ValueError, match="retry_interval"):
        AdvertiserState(NODE, retry_interval=0)


def test_with_no_address_everything_is_withdrawn_and_extra_addresses_are_dropped() -> None:
    state = AdvertiserState(NODE)
    settle_all(state, changes(state, {NODE.public_key, OWNER}, ADDRESSES, T0), T0)
    withdrawn = changes(state, {NODE.public_key, OWNER}, (), T0 + 1)
    assert {p.subject for p in withdrawn} == {NODE.public_key, OWNER} and all(p.tombstone for p in withdrawn)
    many = [f"10.0.0.{n}:1224" for n in range(1, 20)]
    (back,) = changes(state, {OWNER}, many, T0 + 2)
    assert verify(back.raw, T0 + 2).addresses == tuple(many[:MAX_ADDRESSES])
