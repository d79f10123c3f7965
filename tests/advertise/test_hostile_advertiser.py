"""The advertiser's scheduling: changes before renewals, fairness between owners, bounded work per window.

Issue 13: a node with many subjects queued its renewals ahead of a change, and published them in batches
paced 10 s apart before reading the next change, so one owner's many vessels (and users) delayed another's
announcement by minutes.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from seattle.advertise import advertiser
from seattle.advertise.advertiser import BATCH, PACING, REPUBLISH_INTERVAL, AdvertiserState, run_advertiser
from seattle.keys import PublicKey, generate_identity
from seattle.overlay.records import verify

T0 = 1_800_000_000.0
ADDRESSES = ("192.0.2.1:1224",)
NODE = generate_identity("node")
OWNER_A, OWNER_B = (generate_identity(name).public_key for name in ("owner-a", "owner-b"))
USERS_OF_A = [generate_identity(f"user-of-a{n}").public_key for n in range(40)]


def wanted_of(*owners: tuple[PublicKey, list[PublicKey]]) -> dict[PublicKey, PublicKey]:
    groups = {NODE.public_key: NODE.public_key}
    for owner, users in owners:
        groups[owner] = owner
        groups.update((user, owner) for user in users)
    return groups


def test_a_change_goes_before_due_renewals() -> None:
    state = AdvertiserState(NODE)
    state.update(wanted_of((OWNER_A, USERS_OF_A[:20])), ADDRESSES, T0)
    now = T0
    while published := state.next_batch(now):
        for publication in published:
            state.settle(publication, 3, now)
        now += PACING
    renew_at = now + REPUBLISH_INTERVAL  # every record is due again, and owner B arrives at that moment
    assert state.update(wanted_of((OWNER_A, USERS_OF_A[:20]), (OWNER_B, [])), ADDRESSES, renew_at) == [OWNER_B]
    first = state.next_batch(renew_at)
    assert len(first) == BATCH
    assert first[0].subject == OWNER_B and not verify(first[0].raw, renew_at).tombstone


def test_one_owners_many_users_cannot_delay_another_owners_change() -> None:
    state = AdvertiserState(NODE)
    state.update(wanted_of((OWNER_A, USERS_OF_A)), ADDRESSES, T0)  # 42 changes at once
    first = state.next_batch(T0)
    # Owner B shows up while owner A's backlog of 30-odd records is still waiting.
    state.update(wanted_of((OWNER_A, USERS_OF_A), (OWNER_B, [])), ADDRESSES, T0 + 1)
    assert state.next_batch(T0 + 1) == []  # the window's budget is spent
    second = state.next_batch(T0 + PACING)
    assert OWNER_B in [p.subject for p in second]
    assert OWNER_B not in [p.subject for p in first]


def test_work_per_window_is_bounded() -> None:
    state = AdvertiserState(NODE, batch=4, pacing=10.0)
    state.update(wanted_of((OWNER_A, USERS_OF_A)), ADDRESSES, T0)
    sent = []
    for tick in range(0, 300):  # a poll every half second for 150 s
        now = T0 + tick / 2
        batch = state.next_batch(now)
        for publication in batch:
            state.settle(publication, 3, now)
        sent += [(now, p) for p in batch]
    for index in range(len(sent) - 4):
        assert sent[index + 4][0] - sent[index][0] >= 10.0  # never more than 4 in any 10 s
    assert len({p.subject for _, p in sent}) == len(USERS_OF_A) + 2  # and everyone got a turn


def test_a_subject_withdrawn_before_it_was_ever_published_needs_no_tombstone() -> None:
    state = AdvertiserState(NODE, batch=1)
    state.update(wanted_of((OWNER_A, [])), ADDRESSES, T0)
    state.next_batch(T0)  # only one of the two goes out in this window
    state.update({NODE.public_key: NODE.public_key}, ADDRESSES, T0 + 1)
    later = [p for step in range(1, 5) for p in state.next_batch(T0 + step * PACING)]
    assert all(not p.tombstone for p in later if p.subject == NODE.public_key)
    assert state.advertised == {NODE.public_key}


@pytest.mark.slow
async def test_run_advertiser_announces_a_change_while_a_backlog_drains(
    mock_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    mock_clock.rate = 50.0  # a minute of virtual time in about a second (`read` runs in a real thread)
    published: list[tuple[float, PublicKey]] = []

    async def fake_publish(transport: Any, raw: bytes, *, timeout: float) -> int:
        await trio.sleep(1.0)  # storing takes a while
        published.append((trio.current_time(), verify(raw, T0 + trio.current_time()).subject))
        return 3

    monkeypatch.setattr(advertiser, "publish", fake_publish)
    wanted = wanted_of((OWNER_A, USERS_OF_A))
    counter = 1

    def read() -> tuple[int, dict[PublicKey, PublicKey], tuple[str, ...]]:
        return counter, wanted, ADDRESSES

    state = AdvertiserState(NODE)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_advertiser(state, None, read, lambda: T0 + trio.current_time()))  # type: ignore[arg-type]
        await trio.sleep(5.0)
        changed_at = trio.current_time()
        wanted, counter = wanted_of((OWNER_A, USERS_OF_A), (OWNER_B, [])), 2
        await trio.sleep(60.0)
        nursery.cancel_scope.cancel()
    (b_at,) = [at for at, subject in published if subject == OWNER_B]
    assert b_at - changed_at <= PACING + 2.0  # the next window, not after owner A's whole backlog
    assert max(at for at, _ in published) > b_at  # owner A's records were still going out
