"""CpuThrottle with synthetic processes: no clock, no signals, so the arithmetic can be checked exactly."""

from __future__ import annotations

import math

import pytest

from seattle.vessel.supervisor.cpu_throttle import CpuThrottle

TICK = 0.01


def simulate_busy(
    share: float, seconds: float, *, overrun: float = 0.0, oversleep: float = 0.0, burst: float = 0.05
) -> tuple[float, float, list[float]]:
    """A process that always wants the CPU, watched every TICK like the nanny does.

    `overrun` is CPU the process still gets after being told to stop (signal latency); `oversleep` is how
    much longer than asked the nanny keeps it stopped. Returns (cpu used, wall time, pauses).
    """
    throttle = CpuThrottle(share, burst)
    now = cpu = 0.0
    pauses: list[float] = []
    assert throttle.observe(cpu, now) == 0.0
    while now < seconds:
        now += TICK
        cpu += TICK
        pause = throttle.observe(cpu, now)
        if pause > 0:
            pauses.append(pause)
            cpu += overrun
            now += pause + oversleep
    return cpu, now, pauses


@pytest.mark.parametrize("share", [0.05, 0.1, 0.25, 0.5, 0.9])
def test_busy_process_converges_to_the_share(share: float) -> None:
    cpu, wall, pauses = simulate_busy(share, 200.0)
    assert pauses, "a process at 100 % must be stopped"
    assert math.isclose(cpu / wall, share, abs_tol=0.001)


@pytest.mark.parametrize("share", [0.05, 0.25])
def test_signal_latency_and_oversleeping_are_charged_not_lost(share: float) -> None:
    """Closed loop: CPU the process got after the stop request counts against the next allowance."""
    cpu, wall, _ = simulate_busy(share, 200.0, overrun=0.002, oversleep=0.001)
    assert math.isclose(cpu / wall, share, abs_tol=0.002)


def test_a_pause_lasts_exactly_until_the_allowance_catches_up() -> None:
    # Binary fractions throughout, so the arithmetic is exact.
    throttle = CpuThrottle(0.25, burst_seconds=0.0625)
    throttle.observe(0.0, 0.0)
    # 0.25 s at 100 %: had 0.0625, earned 0.0625, spent 0.25 -> 0.125 CPU-seconds of debt, 0.5 s to repay.
    assert throttle.observe(0.25, 0.25) == 0.5
    # After exactly that pause, with no CPU used meanwhile, the debt is paid and the process may run.
    assert throttle.observe(0.25, 0.75) == 0.0
    # 0.125 s more at 100 % earns 0.03125 and spends 0.125: 0.09375 of debt, 0.375 s.
    assert throttle.observe(0.375, 0.875) == 0.375


def test_an_idle_process_is_never_stopped() -> None:
    throttle = CpuThrottle(0.05)
    cpu = 3.0
    for step in range(10_000):
        cpu += 0.0001  # a sleeper that wakes briefly now and then: 1 % of a core
        assert throttle.observe(cpu, step * TICK) == 0.0


def test_a_process_exactly_at_its_share_is_never_stopped() -> None:
    throttle = CpuThrottle(0.5)
    for step in range(1000):
        assert throttle.observe(step * TICK * 0.5, step * TICK) == 0.0


@pytest.mark.slow
def test_idle_time_banks_at_most_one_burst() -> None:
    throttle = CpuThrottle(0.1, burst_seconds=0.05)
    throttle.observe(0.0, 0.0)
    for step in range(1, 360_001):  # an hour idle
        assert throttle.observe(0.0, step * TICK) == 0.0
    hour = 3600.0
    # Within the next tick it may use the burst plus what the tick itself earns, no more.
    assert throttle.observe(0.05, hour + TICK) == 0.0
    # 0.001 is left after that tick; the next one earns 0.001, so using 0.1 in it leaves 0.098 of debt.
    assert throttle.observe(0.15, hour + 2 * TICK) == pytest.approx((0.1 - 0.001 - 0.001) / 0.1)


def test_a_long_burst_after_idling_is_stopped_for_all_but_one_burst() -> None:
    throttle = CpuThrottle(0.1, burst_seconds=0.05)
    throttle.observe(0.0, 0.0)
    throttle.observe(0.0, 1000.0)
    # One observation 1 s later, during which the process ran flat out: 1.0 used, 0.05 banked, 0.1 earned.
    assert throttle.observe(1.0, 1001.0) == pytest.approx((1.0 - 0.05 - 0.1) / 0.1)


def test_cpu_used_before_the_first_observation_is_not_charged() -> None:
    throttle = CpuThrottle(0.1)
    assert throttle.observe(500.0, 10.0) == 0.0
    assert throttle.observe(500.0, 10.5) == 0.0


def test_a_zero_burst_stops_any_use_beyond_the_share() -> None:
    throttle = CpuThrottle(0.5, burst_seconds=0.0)
    throttle.observe(0.0, 0.0)
    assert throttle.observe(0.006, 0.01) == pytest.approx(0.001 / 0.5)


@pytest.mark.parametrize("share", [0, -0.1, math.nan, math.inf, True, "0.1", None])
def test_a_bad_share_is_refused_by_name(share: object) -> None:
    with pytest.raises(ValueError, match="cpu share"):
        CpuThrottle(share)  # type: ignore[arg-type]


@pytest.mark.parametrize("burst", [-0.01, math.nan, math.inf, "0.05"])
def test_a_bad_burst_is_refused_by_name(burst: object) -> None:
    with pytest.raises(ValueError, match="burst_seconds"):
        CpuThrottle(0.1, burst)  # type: ignore[arg-type]


def test_time_going_backwards_is_refused() -> None:
    throttle = CpuThrottle(0.1)
    throttle.observe(1.0, 5.0)
    with pytest.raises(ValueError, match="time went backwards"):
        throttle.observe(1.0, 4.0)


def test_cpu_time_going_backwards_is_refused() -> None:
    throttle = CpuThrottle(0.1)
    throttle.observe(1.0, 5.0)
    with pytest.raises(ValueError, match="cpu_seconds went backwards"):
        throttle.observe(0.5, 6.0)


@pytest.mark.parametrize(("cpu", "now"), [(math.nan, 1.0), (1.0, math.inf), ("1", 1.0)])
def test_non_numbers_are_refused(cpu: object, now: object) -> None:
    with pytest.raises(ValueError, match="finite numbers"):
        CpuThrottle(0.1).observe(cpu, now)  # type: ignore[arg-type]
