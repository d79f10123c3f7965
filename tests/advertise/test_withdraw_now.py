"""A stopping node's last words: `withdraw_now` signs tombstones at once, past the pacing, for what holders may
still list, and for nothing they cannot."""

from __future__ import annotations

from seattle.advertise.advertiser import AdvertiserState
from seattle.keys import generate_identity
from seattle.overlay.records import verify

T0 = 1_800_000_000.0
ADDRESSES = ("127.0.0.1:1224",)
NODE = generate_identity("node")
OFFER, CREDIT, SLOT, NEVER = (generate_identity(name).public_key for name in ("offer", "credit", "slot", "never"))


def test_withdraw_now_signs_tombstones_past_the_pacing_for_what_was_published() -> None:
    state = AdvertiserState(NODE, batch=2)
    state.update({OFFER: OFFER, CREDIT: CREDIT, SLOT: SLOT}, ADDRESSES, T0)
    sent = state.next_batch(T0)
    assert len(sent) == 2 and state.next_batch(T0) == []  # the pacing holds the third back
    for publication in sent:
        state.settle(publication, 3, T0)
    published = {p.subject for p in sent}
    [unpublished] = {OFFER, CREDIT, SLOT} - published

    last = state.withdraw_now([OFFER, CREDIT, SLOT, NEVER], T0 + 1)
    assert {p.subject for p in last} == published  # never published: nothing to take back
    for publication in last:
        record = verify(publication.raw, T0 + 1)
        assert publication.tombstone and record.tombstone and record.subject == publication.subject
        assert publication.sequence > next(p.sequence for p in sent if p.subject == publication.subject)
    assert unpublished not in state.advertised and not state.advertised & published

    for publication in last:
        state.settle(publication, 1, T0 + 1)
    assert state.withdraw_now([OFFER, CREDIT, SLOT], T0 + 2) == []  # delivered: nothing more to say


def test_a_tombstone_not_yet_delivered_is_sent_again() -> None:
    state = AdvertiserState(NODE)
    state.update({OFFER: OFFER}, ADDRESSES, T0)
    for publication in state.next_batch(T0):
        state.settle(publication, 3, T0)
    state.update({}, ADDRESSES, T0 + 1)  # drained: the advertiser's own tombstone, then it stopped unsettled
    [queued] = state.next_batch(T0 + 1)
    [again] = state.withdraw_now([OFFER], T0 + 2)
    assert queued.tombstone and again.tombstone and again.sequence > queued.sequence
