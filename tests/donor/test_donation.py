"""Donations: measuring the machine, dividing a percent of it into a profile's vessels, creating the node."""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seattle.donor.donation import (
    DEFAULT_PORTS,
    DONATED_EVENTS,
    Donation,
    divide,
    fallback_machine,
    init_node_from_profile,
    measure_machine,
)
from seattle.errors import BadDonationPercent, BadPortPool, DonationTooSmall, NodeExists
from seattle.keys import PublicKey, generate_identity
from seattle.nodemgr.nodedir import NodeDir
from seattle.nodemgr.vessels import NodeState
from seattle.planner.profile import Profile, VesselPlan
from seattle.resources import DEFAULT_OFFCUT, NODE_RESERVE, QUANTITY_NAMES, RENEWABLE, RENEWABLE_RESOLUTION, Resources

KEYS = [generate_identity(f"k{i}").public_key for i in range(4)]


@st.composite
def percents(draw: st.DrawFn) -> list[int]:
    """Whole percents totalling exactly 100, 1 to 20 of them."""
    count = draw(st.integers(1, 20))
    cuts = sorted(draw(st.sets(st.integers(1, 99), min_size=count - 1, max_size=count - 1)))
    edges = [0, *cuts, 100]
    return [high - low for low, high in itertools.pairwise(edges)]


machines = st.builds(
    fallback_machine,
    cores=st.integers(1, 256), memory=st.integers(10**8, 2**42), disk_free=st.integers(10**8, 2**50),
    threads=st.integers(1, 10**6), files=st.integers(1, 10**6), sockets=st.integers(1, 10**6),
    disk_read=st.floats(1e3, 1e10), disk_write=st.floats(1e3, 1e10), net_send=st.floats(1e3, 1e10),
    net_recv=st.floats(1e3, 1e10), random=st.floats(1e3, 1e9),
)


def _plans(shares: list[int]) -> list[VesselPlan]:
    return [VesselPlan(p, KEYS[i % 4], (KEYS[(i + 1) % 4],)) for i, p in enumerate(shares)]


def _check(donation: Donation, pool: tuple[int, ...]) -> None:
    count = len(donation.vessels)
    total = donation.offcuts
    for resources, _, _ in donation.vessels:
        assert resources.fits_within(donation.donated)
        assert resources.messport == resources.connport and resources.connport
        run = sorted(resources.connport, key=pool.index)
        assert [pool.index(p) for p in run] == list(range(pool.index(run[0]), pool.index(run[0]) + len(run)))
        total = total + resources
    # Conservation, exactly: the vessels plus one offcut each plus the node's reserve are the donation, ports
    # included.
    assert total.quantities == donation.donated.quantities
    assert total.connport == frozenset(pool) == donation.donated.connport
    assert sum(len(r.connport) for r, _, _ in donation.vessels) == len(pool)  # disjoint
    assert donation.offcuts.quantities == (_times(DEFAULT_OFFCUT, count) + NODE_RESERVE).quantities


def _times(resources: Resources, count: int) -> Resources:
    total = Resources({})
    for _ in range(count):
        total = total + resources
    return total


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(machine=machines, shares=percents(), percent=st.integers(1, 100),
       pool_start=st.integers(1024, 60000), pool_size=st.integers(1, 300))
def test_division_conserves_the_donation_and_keeps_ports_disjoint(
        machine, shares: list[int], percent: int, pool_start: int, pool_size: int) -> None:
    pool = tuple(range(pool_start, pool_start + pool_size))
    try:
        donation = divide(machine, _plans(shares), percent, pool)
    except DonationTooSmall:
        return
    except BadPortPool:
        assert pool_size < len(shares)
        return
    _check(donation, pool)
    capacity = machine.capacity()
    for name in QUANTITY_NAMES:
        if name != "events":
            # Renewables are floats on a 0.0001 grid: exact up to float representation.
            slack = RENEWABLE_RESOLUTION / 2 if name in RENEWABLE else 0
            assert Fraction(donation.donated[name]) <= Fraction(capacity[name]) * percent / 100 + slack
    assert donation.donated["events"] == min(DONATED_EVENTS, capacity["events"])


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(shares=percents())
def test_shares_follow_the_percents(shares: list[int]) -> None:
    machine = fallback_machine(cores=64, memory=2**40, disk_free=2**45)
    donation = divide(machine, _plans(shares), 100)
    available = donation.donated - donation.offcuts
    for (resources, owner, users), plan in zip(donation.vessels, donation.plans, strict=True):
        assert (owner, users) == (plan.owner, plan.users)
        assert len(resources.connport) >= 1
        assert abs(len(resources.connport) - plan.percent) <= len(shares)  # default pool: 1 port per percent
        expected = available["memory"] * plan.percent // 100
        assert expected <= resources["memory"] <= expected + len(shares)


def test_the_original_layout_ten_vessels_of_ten_ports() -> None:
    # Ten vessels cost ten offcuts of real memory, more than 10 % of the original's 510 MB default machine.
    donation = divide(fallback_machine(memory=4_000_000_000), _plans([10] * 10))
    runs = [sorted(r.connport) for r, _, _ in donation.vessels]
    assert runs == [list(range(63100 + 10 * i, 63110 + 10 * i)) for i in range(10)]
    assert donation.donated.connport == frozenset(DEFAULT_PORTS)


def test_bad_percent_pool_and_tiny_donations_are_refused() -> None:
    plans = _plans([50, 50])
    for bad in (0, 101, 10.5, True, "10"):
        with pytest.raises(BadDonationPercent):
            divide(fallback_machine(), plans, bad)  # type: ignore[arg-type]
    with pytest.raises(BadPortPool, match="1 ports cannot give each of 2"):
        divide(fallback_machine(), plans, 10, [5000])
    with pytest.raises(BadPortPool, match="listed twice"):
        divide(fallback_machine(), plans, 10, [5000, 5000])
    with pytest.raises(BadPortPool, match="not a port number"):
        divide(fallback_machine(), plans, 10, [0, 1])
    with pytest.raises(DonationTooSmall, match=r"offcuts and the node.s reserve need more than is donated.*memory"):
        divide(fallback_machine(memory=10_000_000), _plans([1] * 100), 1)
    with pytest.raises(DonationTooSmall, match=r"vessel v1 .* no events"):
        divide(fallback_machine(threads=5), _plans([1, 99]), 100)


def test_measure_machine_measures_what_it_can(tmp_path: Path) -> None:
    machine = measure_machine(tmp_path / "not-yet" / "node")
    for name in ("cores", "memory", "disk_free", "disk_read", "disk_write", "random"):
        measured = getattr(machine, name)
        assert measured.measured and measured.value > 0, name
    assert not machine.loop.measured and not machine.lograte.measured
    assert list(tmp_path.iterdir()) == []  # the disk probe cleaned up after itself
    capacity = machine.capacity()
    assert capacity["cpu"] == machine.cores.value and capacity["memory"] == machine.memory.value


def test_summary_tells_the_donor_what_is_given_and_what_was_guessed() -> None:
    donation = divide(fallback_machine(cores=4, memory=8 * 10**9), _plans([60, 40]), 25)
    text = donation.summary()
    assert "gives away 25% of this machine" in text
    assert "1 core of 4 cores" in text and "2 GB of 8 GB" in text
    assert "network out" in text and "the original's default assumed" in text
    assert "v1: 60%" in text and "v2: 40%" in text and "63100-63159" in text and "63160-63199" in text


def test_init_node_from_profile_creates_the_divided_node(tmp_path: Path) -> None:
    profile = Profile((VesselPlan(70, KEYS[0]), VesselPlan(30, KEYS[1], (KEYS[2],))), ("127.0.0.1:9999",),
                      KEYS[3])
    node_dir = tmp_path / "node"
    donation = init_node_from_profile(node_dir, profile, planner=KEYS[3], percent=20, port=0, ports=range(40000, 40010),
                                      machine=fallback_machine(cores=2))
    config = NodeDir(node_dir).read_config()
    assert (config.host, config.port, config.bootstrap) == ("127.0.0.1", 0, ("127.0.0.1:9999",))
    with NodeState.open(node_dir) as state:
        vessels = state.get_vessels()
    assert [v.name for v in vessels] == ["v1", "v2"]
    assert [v.resources for v in vessels] == [r for r, _, _ in donation.vessels]
    assert [(PublicKey(v.owner), tuple(map(PublicKey, v.users))) for v in vessels] == [
        (KEYS[0], ()), (KEYS[1], (KEYS[2],))]
    assert sorted(vessels[0].resources.connport) == list(range(40000, 40007))
    record = NodeDir(node_dir).read_donation()
    assert record is not None and record["percent"] == 20 and record["donated"] == donation.donated
    assert json.loads(NodeDir(node_dir).donation_path.read_text())["vessels"][1]["percent"] == 30
    assert NodeDir(node_dir).read_manifest()["created_dir"] is True
    with pytest.raises(NodeExists):
        init_node_from_profile(node_dir, profile, planner=KEYS[3], machine=fallback_machine())


def test_a_refused_division_leaves_no_node_behind(tmp_path: Path) -> None:
    profile = Profile((VesselPlan(50, KEYS[0]), VesselPlan(50, KEYS[1])), (), KEYS[3])
    with pytest.raises(BadPortPool):
        init_node_from_profile(tmp_path / "node", profile, planner=KEYS[3], ports=[1], machine=fallback_machine())
    assert not (tmp_path / "node").exists()
