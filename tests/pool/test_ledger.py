"""The lease ledger with a fake clock: quota, slots, caps, budgets, renewals, expiry, evidence, crash recovery."""

from __future__ import annotations

import os

import pytest

from seattle.budgets import source_of
from seattle.keys import Identity, generate_identity
from seattle.nodemgr.signing import sign_request
from seattle.pool import refusals
from seattle.pool.formats import DONATION_MIN_UPTIME, Attestation, Lease
from seattle.pool.ledger import Ledger, LedgerLimits, OverlayView

NOW = 1_800_000_000.0
NODE = generate_identity("node")
OTHER = generate_identity("other")
ALICE = generate_identity("alice")


class Disk:
    """What `persist` wrote last: what a restarted node reads."""

    def __init__(self) -> None:
        self.saved: bytes | None = None

    def write(self, data: bytes) -> None:
        self.saved = data


def ledger(disk: Disk, vessels: int = 3, **limits: float) -> Ledger:
    return Ledger(NODE, [f"p{i}" for i in range(vessels)], disk.write, saved=disk.saved,
                  limits=LedgerLimits(**limits))  # type: ignore[arg-type]


def request(key: Identity, slot: int, node: Identity = NODE) -> bytes:
    return sign_request(key, node.public_key, "AcquireVessel", [slot, 3600.0], now=NOW, nonce=os.urandom(16))


def acquire(book: Ledger, key: Identity, slot: int, now: float = NOW, view: OverlayView | None = None) -> Lease:
    return book.acquire(key.public_key, slot, 4 * 3600.0, request(key, slot), view or OverlayView(), now)


def refused(code: str, call: object, *args: object) -> refusals.LeaseRefused:
    with pytest.raises(refusals.LeaseRefused) as caught:
        call(*args)  # type: ignore[operator]
    assert caught.value.code == code, caught.value.message
    return caught.value


def test_acquire_grants_a_signed_lease_and_persists_it_first() -> None:
    disk = Disk()
    book = ledger(disk)
    lease = acquire(book, ALICE, 0)
    assert Lease.verify(lease.raw, NODE.public_key, NOW).lessee == ALICE.public_key
    assert (lease.vessel, lease.expires, lease.max_expiry) == ("p0", NOW + 4 * 3600, NOW + 7 * 86400)
    assert [e.vessel for e in ledger(disk).leases()] == ["p0"]  # a restarted node knows it


def test_slot_beyond_quota_and_slot_held_elsewhere_are_refused_with_numbers() -> None:
    book = ledger(Disk())
    error = refused(refusals.QUOTA, acquire, book, ALICE, 10)
    assert "quota 0/10" in error.message and "slot 10" in error.message
    elsewhere = Lease.verify(Lease.sign(OTHER, vessel="v", lessee=ALICE.public_key, slot=3, issued=NOW,
                                        expires=NOW + 60, max_expiry=NOW + 60,
                                        request=request(ALICE, 3, OTHER)), OTHER.public_key, NOW)
    error = refused(refusals.SLOT_TAKEN, acquire, book, ALICE, 3, NOW, OverlayView({3: [elsewhere]}))
    assert f"quota 1/10 (slot 3 held at {OTHER.public_key.fingerprint()} until" in error.message
    acquire(book, ALICE, 3, NOW + 61, OverlayView({3: [elsewhere]}))  # once that lease has ended
    refused(refusals.SLOT_TAKEN, acquire, book, ALICE, 3, NOW + 62)  # and held here now


def test_attestations_of_donors_up_a_day_raise_the_quota() -> None:
    book = ledger(Disk())
    donor = generate_identity("donor")
    young = Attestation.verify(Attestation.sign(donor, beneficiary=ALICE.public_key,
                                                up_since=NOW - DONATION_MIN_UPTIME + 60, now=NOW), NOW)
    refused(refusals.QUOTA, acquire, book, ALICE, 15, NOW, OverlayView(attestations=[young]))
    old = Attestation.verify(Attestation.sign(donor, beneficiary=ALICE.public_key,
                                              up_since=NOW - DONATION_MIN_UPTIME, now=NOW), NOW)
    assert acquire(book, ALICE, 15, NOW, OverlayView(attestations=[old])).slot == 15


def test_per_key_cap_and_empty_pool() -> None:
    book = ledger(Disk(), vessels=3, per_key=2)
    acquire(book, ALICE, 0)
    acquire(book, ALICE, 1)
    assert "holds 2" in refused(refusals.KEY_CAP, acquire, book, ALICE, 2).message
    acquire(book, generate_identity("bob"), 0)
    assert "3 of 3" in refused(refusals.POOL_EMPTY, acquire, book, generate_identity("carol"), 0).message


def test_a_flood_from_one_network_is_held_back() -> None:
    book = ledger(Disk(), vessels=50)
    admitted = 0
    for host in range(40):
        try:
            book.admit(generate_identity("k").public_key, source_of(f"198.51.100.{host}"), NOW)
            admitted += 1
        except refusals.LeaseRefused as exc:
            assert exc.code == refusals.RATE_LIMITED and "198.51.100.0/24" in exc.message
    assert admitted == 4  # the network's burst; one more every 30 s
    book.admit(ALICE.public_key, source_of("203.0.113.7"), NOW)  # another network is not held back


def test_renew_up_to_max_age_then_refused() -> None:
    book = ledger(Disk(), lease=3600.0, max_age=3 * 3600.0)
    lease = acquire(book, ALICE, 0)
    now = NOW
    while True:
        now += 3000
        try:
            renewed = book.renew(ALICE.public_key, lease.vessel, 3600.0, [], now)
        except refusals.LeaseRefused as exc:
            assert exc.code == refusals.MAX_AGE
            break
        assert Lease.verify(renewed.raw, NODE.public_key, now).expires <= NOW + 3 * 3600
    assert now >= NOW + 2 * 3600 and book.entry(lease.vessel).expires == NOW + 3 * 3600  # type: ignore[union-attr]


def test_renew_over_quota_is_refused_when_the_donor_stops() -> None:
    book = ledger(Disk())
    donor = generate_identity("donor")
    credit = [Attestation.verify(Attestation.sign(donor, beneficiary=ALICE.public_key,
                                                  up_since=NOW - 2 * DONATION_MIN_UPTIME, now=NOW), NOW)]
    lease = book.acquire(ALICE.public_key, 12, 3600.0, request(ALICE, 12), OverlayView(attestations=credit), NOW)
    book.renew(ALICE.public_key, lease.vessel, 3600.0, credit, NOW + 60)
    refused(refusals.QUOTA, book.renew, ALICE.public_key, lease.vessel, 3600.0, [], NOW + 3000)  # lapsed


def test_only_the_lessee_renews_or_releases() -> None:
    book = ledger(Disk())
    lease = acquire(book, ALICE, 0)
    bob = generate_identity("bob").public_key
    refused(refusals.NOT_LESSEE, book.renew, bob, lease.vessel, 60.0, [], NOW)
    refused(refusals.NOT_LESSEE, book.release, bob, lease.vessel)
    refused(refusals.NOT_POOL_VESSEL, book.release, ALICE.public_key, "v1")


def test_expiry_on_time_then_reset_frees_the_vessel() -> None:
    disk = Disk()
    book = ledger(disk, vessels=1)
    lease = acquire(book, ALICE, 0)
    assert book.expire(lease.expires - 1) == []
    assert [e.vessel for e in book.expire(lease.expires)] == ["p0"]
    assert ledger(disk).ending() == ["p0"]  # a crash before the reset: redone on start
    refused(refusals.POOL_EMPTY, acquire, book, generate_identity("bob"), 0, lease.expires)
    book.finish("p0")
    assert acquire(book, generate_identity("bob"), 0, lease.expires).vessel == "p0"


def test_evidence_of_a_double_grant_bans_the_key() -> None:
    book = ledger(Disk())
    acquire(book, ALICE, 5)
    other = Lease.verify(Lease.sign(OTHER, vessel="v", lessee=ALICE.public_key, slot=5, issued=NOW,
                                    expires=NOW + 600, max_expiry=NOW + 600, request=request(ALICE, 5, OTHER)),
                         None, NOW)
    error = refused(refusals.KEY_BANNED, acquire, book, ALICE, 6, NOW + 1, OverlayView({5: [other]}))
    assert "banned until" in error.message
    refused(refusals.KEY_BANNED, book.admit, ALICE.public_key, None, NOW + 3600)


def test_donor_blocks_and_evicts_and_draining_refuses() -> None:
    book = ledger(Disk())
    lease = acquire(book, ALICE, 0)
    assert book.evict(lease.vessel).ending
    book.block(ALICE.public_key, NOW + 600)
    refused(refusals.KEY_BLOCKED, acquire, book, ALICE, 1)
    acquire(book, ALICE, 1, NOW + 601)
    book.draining = True
    refused(refusals.NODE_DRAINING, acquire, book, generate_identity("bob"), 0, NOW + 602)


def test_a_damaged_ledger_file_is_refused() -> None:
    disk = Disk()
    disk.saved = b"\x93\x01\x02"
    with pytest.raises(ValueError, match="pool ledger"):
        ledger(disk)
