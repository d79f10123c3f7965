"""Evidence that spreads, sans IO: the ledger bans on evidence another node shows, keeps it across a restart,
serves a bounded amount and files only what it found itself; a status answer's evidence is verified in full
and whatever does not verify is dropped and counted."""

from __future__ import annotations

import os
from collections import Counter

from seattle.keys import Identity, generate_identity
from seattle.nodemgr.pool_directory import evidence_in
from seattle.nodemgr.signing import sign_request
from seattle.pool import refusals
from seattle.pool.formats import BAN_DURATION, BASE_QUOTA, Evidence, Lease, credit_key, evidence_subjects, slot_key
from seattle.pool.ledger import MAX_KEPT_EVIDENCE, MAX_SERVED_EVIDENCE, OverlayView
from tests.pool.test_ledger import ALICE, NOW, Disk, acquire, ledger, refused

NODE_A = generate_identity("a")
NODE_B = generate_identity("b")


def granted(node: Identity, key: Identity, slot: int, issued: float = NOW, expires: float = NOW + 600) -> Lease:
    request = sign_request(key, node.public_key, "AcquireVessel", [slot, 600.0], now=issued, nonce=os.urandom(16))
    return Lease.verify_signed(Lease.sign(node, vessel="v1", lessee=key.public_key, slot=slot, issued=issued,
                                          expires=expires, max_expiry=expires, request=request), node.public_key)


def evidence_against(key: Identity, slot: int = 0, expires: float = NOW + 600) -> Evidence:
    evidence = Evidence.of(granted(NODE_A, key, slot, expires - 600, expires),
                           granted(NODE_B, key, slot, expires - 600, expires))
    assert evidence is not None
    return evidence


def test_evidence_is_filed_under_every_subject_an_acquire_looks_up() -> None:
    subjects = evidence_subjects(ALICE.public_key)
    assert subjects == [*(slot_key(ALICE.public_key, s) for s in range(BASE_QUOTA)), credit_key(ALICE.public_key)]


def test_evidence_another_node_shows_bans_the_key_which_a_restart_remembers() -> None:
    disk = Disk()
    book = ledger(disk)
    shown = evidence_against(ALICE, slot=4)
    error = refused(refusals.KEY_BANNED, acquire, book, ALICE, 7, NOW, OverlayView(evidence=[shown]))
    assert shown.until == NOW + 600 + BAN_DURATION and "banned until" in error.message
    assert book.served_evidence(NOW) == [shown] and book.filed_evidence(NOW) == []  # learnt, not found here
    restarted = ledger(disk)
    assert restarted.served_evidence(NOW) == [shown]
    refused(refusals.KEY_BANNED, restarted.admit, ALICE.public_key, None, NOW + 3600)
    assert restarted.refusal_for(ALICE.public_key, shown.until) is None  # the ban ends with the evidence
    assert restarted.served_evidence(shown.until) == []


def test_evidence_against_another_key_or_ended_is_not_held_against_the_caller() -> None:
    book = ledger(Disk())
    bob = generate_identity("bob")
    ended = evidence_against(ALICE, expires=NOW - BAN_DURATION - 1)
    lease = acquire(book, ALICE, 0, NOW, OverlayView(evidence=[evidence_against(bob), ended]))
    assert lease.lessee == ALICE.public_key and book.served_evidence(NOW) == []


def test_evidence_found_here_is_filed_and_served_within_bounds() -> None:
    book = ledger(Disk(), vessels=1)
    acquire(book, ALICE, 5)
    other = granted(NODE_B, ALICE, 5)
    refused(refusals.KEY_BANNED, acquire, book, ALICE, 6, NOW + 1, OverlayView({5: [other]}))
    [found] = book.filed_evidence(NOW + 1)
    assert found.lessee == ALICE.public_key and other in (found.first, found.second)
    # Shown the same evidence later by another node, it stays one this node found (and files).
    book.note_evidence(found, NOW + 2, found_here=False)
    assert book.filed_evidence(NOW + 2) == [found]

    keys = [generate_identity(f"k{i}") for i in range(MAX_SERVED_EVIDENCE + 4)]
    for offset, key in enumerate(keys):
        book.note_evidence(evidence_against(key, expires=NOW + 5 * 3600 + offset), NOW + 2,
                           found_here=False)
    served = book.served_evidence(NOW + 2)
    assert len(served) == MAX_SERVED_EVIDENCE
    assert [e.lessee for e in served] == [k.public_key for k in reversed(keys)][:MAX_SERVED_EVIDENCE]
    assert book.filed_evidence(NOW + 2) == []  # pushed out of what is served: no longer filed either


def test_the_evidence_kept_and_the_bans_are_bounded() -> None:
    disk = Disk()
    book = ledger(disk)
    first, last = generate_identity("first"), generate_identity("last")
    book.note_evidence(evidence_against(first, expires=NOW + 100), NOW, found_here=True)
    for index in range(MAX_KEPT_EVIDENCE - 1):
        book.note_evidence(evidence_against(generate_identity(f"k{index}"), expires=NOW + 200), NOW,
                           found_here=False)
    refused(refusals.KEY_BANNED, book.admit, first.public_key, None, NOW)
    book.note_evidence(evidence_against(last, expires=NOW + 300), NOW, found_here=False)
    restarted = ledger(disk)
    assert restarted.refusal_for(first.public_key, NOW) is None  # the earliest-ending went, ban and all
    refused(refusals.KEY_BANNED, restarted.admit, last.public_key, None, NOW)
    assert len(restarted.served_evidence(NOW)) == MAX_SERVED_EVIDENCE


def test_a_status_answers_evidence_is_verified_and_bad_items_are_dropped_and_counted() -> None:
    good = evidence_against(ALICE, slot=2)
    bob = generate_identity("bob")
    forged = bytearray(good.second.raw)
    forged[5] ^= 1  # inside the signature
    not_a_conflict = [granted(NODE_A, ALICE, 1).raw, granted(NODE_B, ALICE, 2).raw]  # two slots
    same_node = [granted(NODE_A, ALICE, 3).raw, granted(NODE_A, ALICE, 3, issued=NOW + 1).raw]
    ended = evidence_against(ALICE, expires=NOW - BAN_DURATION - 10)
    status = {"evidence": [list(good.raw), [good.first.raw, bytes(forged)], not_a_conflict, same_node,
                           list(ended.raw), list(evidence_against(bob).raw), ["x"], "junk", [b"a", b"b", b"c"]]}
    dropped: Counter[str] = Counter()
    assert evidence_in(status, ALICE.public_key, NOW, dropped) == [good]
    assert dropped == Counter({"evidence_malformed": 5, "evidence_bad_signature": 1, "evidence_ended": 1})
    assert evidence_in({"evidence": "junk"}, ALICE.public_key, NOW, dropped) == []
    assert evidence_in({}, ALICE.public_key, NOW, Counter()) == []
    flood = {"evidence": [["x"]] * 10_000 + [list(good.raw)]}
    counted: Counter[str] = Counter()
    assert evidence_in(flood, ALICE.public_key, NOW, counted) == []  # only the first MAX_SERVED_EVIDENCE looked at
    assert counted["evidence_malformed"] == MAX_SERVED_EVIDENCE
