"""The reachability tracker alone (sans-IO): observations, trust, check outcomes and timers."""

from __future__ import annotations

import random

from seattle.overlay.nodeid import Contact, NodeId
from seattle.overlay.reachability import (
    AGREE,
    CHECK_TIMEOUT,
    GRACE,
    MAX_OBSERVERS,
    MIN_RECHECK,
    PEER_WAIT,
    RECHECK_INTERVAL,
    RETRY_INTERVAL,
    State,
    Tracker,
    prefix,
)

T0 = 1_800_000_000.0
ME = ("203.0.113.50", 4000)  # how honest peers see us (a NAT's address in most tests)
INSIDE = "192.168.1.2"


def peer(number: int, host: str | None = None) -> Contact:
    """A peer in a /24 of its own on the internet."""
    return Contact(NodeId(number + 1), host or f"8.{number}.0.1", 4000)


def check(tracker: Tracker, peers: list[Contact], now: float = T0) -> list[bytes]:
    asked = tracker.start(peers, now, random.Random(1))
    return [nonce for _, nonce in asked]


def observed_by(tracker: Tracker, count: int, seen: tuple[str, int] = ME, now: float = T0, first: int = 0) -> None:
    for number in range(first, first + count):
        tracker.observe(peer(number).host, seen, now)


def test_a_prefix_counts_once_on_the_internet_and_an_address_counts_on_a_private_network() -> None:
    assert prefix("8.1.0.1") == prefix("8.1.0.200") == "8.1.0.0/24"
    assert prefix("2001:4860:1::1") == prefix("2001:4860:1:2::1") == "2001:4860:1::/48"
    assert prefix("10.0.0.1") != prefix("10.0.0.2")  # a LAN or a lab: one /24 by construction
    assert prefix("198.18.0.10") != prefix("198.18.0.11")


def test_observers_in_one_prefix_do_not_move_the_address_three_prefixes_do() -> None:
    tracker = Tracker()
    for host in ("8.1.0.1", "8.1.0.2", "8.1.0.3", "8.1.0.4"):  # one /24, however many addresses
        tracker.observe(host, ("6.6.6.6", 1), T0)
    assert tracker.value.observed == () and tracker.value.observed_ip is None
    observed_by(tracker, AGREE - 1)
    assert tracker.value.observed == ()
    observed_by(tracker, 1, first=AGREE - 1)
    assert tracker.value.observed == (ME,) and tracker.value.observed_ip == ME[0]
    # A lone liar (or a whole /24 of them) cannot move it now.
    for host in ("9.9.9.1", "9.9.9.2", "9.9.9.3"):
        tracker.observe(host, ("6.6.6.6", 1), T0 + 1)
    assert tracker.value.observed == (ME,)


def test_a_symmetric_nat_shows_a_trusted_ip_but_no_trusted_port() -> None:
    tracker = Tracker()
    for number in range(4):
        tracker.observe(peer(number).host, (ME[0], 20000 + number), T0)
    assert tracker.value.observed == () and tracker.value.observed_ip == ME[0]


def test_the_observation_table_is_bounded_and_observations_expire() -> None:
    tracker = Tracker()
    for number in range(MAX_OBSERVERS * 3):
        tracker.observe(peer(number).host, (ME[0], number + 1), T0)
    assert len(tracker._observations) == MAX_OBSERVERS
    old = Tracker()
    observed_by(old, AGREE, now=T0)
    observed_by(old, 1, seen=("1.1.1.1", 9), now=T0 + 3600, first=10)  # the old ones no longer count
    assert old.value.observed == ()


def test_probes_from_a_quorum_make_public() -> None:
    tracker = Tracker()
    peers = [peer(number) for number in range(5)]
    nonces = check(tracker, peers)
    assert len(nonces) == 3 and tracker.client  # measurable, still unknown: a client until found public
    for nonce in nonces[:2]:
        assert tracker.probed(nonce)
    assert not tracker.probed(bytes(16))  # nobody's nonce
    for nonce in nonces:
        tracker.answered(nonce, None, T0 + 0.1)
    assert tracker.poll(T0 + 0.1 + GRACE, lambda _peer: INSIDE)
    value = tracker.value
    assert (value.state, value.udp, value.tcp) == (State.PUBLIC, True, None) and not tracker.client
    assert value.checked_at == T0 + 0.1 + GRACE and value.next_check == value.checked_at + RECHECK_INTERVAL


def test_no_probe_and_a_translated_address_make_nat_an_untranslated_one_firewalled() -> None:
    for local, state in ((INSIDE, State.NAT), (ME[0], State.FIREWALLED)):
        tracker = Tracker()
        observed_by(tracker, 3)
        nonces = check(tracker, [peer(number) for number in range(3)])
        for nonce in nonces:
            tracker.answered(nonce, None, T0 + 0.2)
        assert not tracker.poll(T0 + 0.2, {}.get)  # within the grace: probes may be late
        assert tracker.poll(T0 + 0.2 + GRACE, {peer(number).host: local for number in range(3)}.get)
        assert tracker.value.state is state and tracker.value.udp is False and tracker.client


def test_tcp_must_be_reached_too_for_a_node_manager_to_be_public() -> None:
    tracker = Tracker(tcp=True)
    observed_by(tracker, 3)
    nonces = check(tracker, [peer(number) for number in range(3)])
    for nonce in nonces:
        tracker.probed(nonce)
        tracker.answered(nonce, False, T0 + 0.5)  # UDP got through, TCP did not: a firewall for TCP only
    tracker.poll(T0 + 0.5, lambda _peer: ME[0])  # every probe and answer in: no need to wait
    assert (tracker.value.state, tracker.value.udp, tracker.value.tcp) == (State.FIREWALLED, True, False)


def test_too_few_answers_or_peers_conclude_nothing_and_retry_soon() -> None:
    tracker = Tracker()
    assert tracker.due(T0) and check(tracker, [peer(1)]) == []  # one peer: nobody to compare it with
    assert not tracker.due(T0 + 1) and tracker.value.next_check == T0 + PEER_WAIT
    assert not tracker.client  # never knew enough peers: a full node (a new overlay's first nodes)
    nonces = check(tracker, [peer(number) for number in range(3)], now=T0 + PEER_WAIT)
    tracker.answered(nonces[0], None, T0 + PEER_WAIT + 0.1)  # one answer; the others time out
    assert not tracker.poll(T0 + PEER_WAIT + 1, lambda _peer: INSIDE)
    assert tracker.poll(T0 + PEER_WAIT + CHECK_TIMEOUT, lambda _peer: INSIDE) is False
    assert tracker.value.state is State.UNKNOWN and tracker.checks == 1
    assert tracker.value.next_check == T0 + PEER_WAIT + CHECK_TIMEOUT + RETRY_INTERVAL


def test_a_new_trusted_address_brings_the_next_check_forward() -> None:
    tracker = Tracker()
    observed_by(tracker, 3)
    nonces = check(tracker, [peer(number) for number in range(3)])
    for nonce in nonces:
        tracker.probed(nonce)
    tracker.poll(T0 + 0.1, lambda _peer: INSIDE)
    assert tracker.value.state is State.PUBLIC and not tracker.due(T0 + 60)
    moved = ("198.51.100.7", 4000)
    observed_by(tracker, 2, seen=moved, now=T0 + 1, first=10)
    assert tracker.value.observed == (ME,) and not tracker.due(T0 + 60)
    observed_by(tracker, 1, seen=moved, now=T0 + 2, first=20)  # a third prefix: trusted, so checked again
    assert moved in tracker.value.observed
    assert tracker.due(T0 + 0.1 + MIN_RECHECK) and tracker.value.next_check == T0 + 0.1 + MIN_RECHECK
