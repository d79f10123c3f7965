"""Hypothesis over interleavings of acquire, renew, release, expire, reset and crash-restart: a vessel is never
leased twice, a granted lease is never lost, and recovery leaves no stray user."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from seattle.keys import generate_identity
from seattle.nodemgr.signing import sign_request
from seattle.pool import refusals
from seattle.pool.ledger import Ledger, LedgerLimits, OverlayView

NODE = generate_identity("node")
KEYS = [generate_identity(f"k{i}") for i in range(3)]
VESSELS = ["p0", "p1", "p2", "p3"]
START = 1_800_000_000.0


class LedgerMachine(RuleBasedStateMachine):
    """The ledger and a model of the node's side effects (each vessel's user), crashing at any step."""

    def __init__(self) -> None:
        super().__init__()
        self.saved: bytes | None = None
        self.now = START
        self.book = self._open()
        #: What the node answered and has not seen end: vessel → (key, slot). Never lost, never doubled.
        self.granted: dict[str, tuple[bytes, int]] = {}
        #: The node's vessels' users, as the node manager would hold them.
        self.users: dict[str, bytes] = {}

    def _open(self) -> Ledger:
        return Ledger(NODE, VESSELS, self._write, saved=self.saved, limits=LedgerLimits(lease=600.0,
                                                                                       max_age=1800.0))

    def _write(self, data: bytes) -> None:
        self.saved = data

    def _reset(self, vessel: str) -> None:
        self.users.pop(vessel, None)
        self.book.finish(vessel)

    @rule(key=st.integers(0, 2), slot=st.integers(0, 11), apply=st.booleans())
    def acquire(self, key: int, slot: int, apply: bool) -> None:
        identity = KEYS[key]
        request = sign_request(identity, NODE.public_key, "AcquireVessel", [slot, 600.0], now=self.now,
                               nonce=os.urandom(16))
        try:
            lease = self.book.acquire(identity.public_key, slot, 600.0, request, OverlayView(), self.now)
        except refusals.LeaseRefused:
            return
        assert lease.vessel not in self.granted, "a vessel leased twice"
        assert (identity.public_key.raw, slot) not in self.granted.values(), "a slot granted twice"
        self.granted[lease.vessel] = (identity.public_key.raw, slot)
        if apply:  # else: the node crashed between the ledger's write and making the key the user
            self.users[lease.vessel] = identity.public_key.raw

    @rule(vessel=st.sampled_from(VESSELS), key=st.integers(0, 2))
    def renew(self, vessel: str, key: int) -> None:
        try:
            lease = self.book.renew(KEYS[key].public_key, vessel, 600.0, [], self.now)
        except refusals.LeaseRefused:
            return
        assert self.granted[vessel] == (KEYS[key].public_key.raw, lease.slot)
        assert lease.expires <= lease.max_expiry

    @rule(vessel=st.sampled_from(VESSELS), key=st.integers(0, 2), reset=st.booleans())
    def release(self, vessel: str, key: int, reset: bool) -> None:
        try:
            self.book.release(KEYS[key].public_key, vessel)
        except refusals.LeaseRefused:
            return
        self.granted.pop(vessel)
        if reset:  # else: the node crashed before the reset finished
            self._reset(vessel)

    @rule(seconds=st.sampled_from([1.0, 300.0, 700.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        for entry in self.book.expire(self.now):
            assert self.granted.pop(entry.vessel) == (entry.lessee.raw, entry.slot)
            self._reset(entry.vessel)

    @rule()
    def crash_and_restart(self) -> None:
        self.book = self._open()
        # What the node does on start: finish every reset cut short, give each leased vessel its lessee only.
        for vessel in self.book.ending():
            self._reset(vessel)
        self.users = {e.vessel: e.lessee.raw for e in self.book.leases()}

    @invariant()
    def no_lease_lost_or_doubled(self) -> None:
        held = {e.vessel: (e.lessee.raw, e.slot) for e in self.book.leases()}
        assert held == self.granted
        assert set(self.book.free()).isdisjoint(held) and not set(self.book.free()) & set(self.book.ending())

    @invariant()
    def no_stray_user(self) -> None:
        for vessel, user in self.users.items():
            assert self.granted.get(vessel, (user,))[0] == user


TestLedgerInterleavings = pytest.mark.slow(LedgerMachine.TestCase)
TestLedgerInterleavings.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
