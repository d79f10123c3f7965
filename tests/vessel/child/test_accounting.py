"""The in-vessel Accountant: rate buckets, item counts, port sets.

Most tests drive it with a fake time source (a clock and a sleep that advance a number), which makes the
rate rule checkable exactly. One test uses the real clock with real threads to show that concurrent
chargers are all served.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.resources import Resources
from seattle.vessel.child.accounting import METERED, SLACK, Accountant
from seattle.vessel.errors import InternalRepyError, ResourceExhaustedError, ResourceForbiddenError

ALLOTMENT = Resources(
    {"cpu": 0.1, "memory": 10**7, "diskused": 10**7, "events": 3, "filesopened": 2, "insockets": 1,
     "outsockets": 0, "netsend": 1000.0, "netrecv": 500.0, "loopsend": 10_000.0, "lograte": 100.0,
     "random": 0.0},
    messport=frozenset({63100, 63101}),
    connport=frozenset({63105}),
)


class FakeTime:
    """A clock that only moves when something sleeps or the test advances it; sleeps are recorded."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


def fake_accountant(allotment: Resources = ALLOTMENT) -> tuple[Accountant, FakeTime]:
    t = FakeTime()
    return Accountant(allotment, clock=t.clock, sleep=t.sleep), t


def assert_rate_bound(events: list[tuple[float, float]], rate: float) -> None:
    """For every run of consecutive calls i..j: sum ≤ rate·(t_j − t_i + SLACK) + the last call's amount."""
    prefix = [0.0, *itertools.accumulate(amount for _, amount in events)]
    for i, j in itertools.combinations_with_replacement(range(len(events)), 2):
        total = prefix[j + 1] - prefix[i]
        window = events[j][0] - events[i][0]
        assert total <= rate * (window + SLACK) + events[j][1] + 1e-6 * max(total, 1.0), (i, j, total, window)


# --- renewable resources ------------------------------------------------------------------------------------


calls = st.lists(
    st.tuples(st.integers(0, 5000), st.sampled_from([0.0, 0.0, 0.001, 0.5, 3.0])), min_size=1, max_size=80
)


@settings(max_examples=150, deadline=None)
@given(calls)
def test_charge_holds_the_rate_over_every_window(plan: list[tuple[int, float]]) -> None:
    acc, t = fake_accountant()
    events = []
    for amount, idle in plan:
        t.now += idle  # the program does other work between calls
        acc.charge("netsend", amount)
        events.append((t.now, float(amount)))
    assert_rate_bound(events, rate=1000.0)
    # Over the whole run the total never exceeds the rate times the elapsed time (and SLACK) plus one call.
    assert sum(a for _, a in events) <= 1000.0 * (events[-1][0] - events[0][0] + SLACK) + events[-1][1] + 1e-6


@settings(max_examples=100, deadline=None)
@given(calls)
def test_wait_for_then_record_holds_the_rate(plan: list[tuple[int, float]]) -> None:
    acc, t = fake_accountant()
    events = []
    for amount, idle in plan:
        t.now += idle
        acc.wait_for("netrecv")
        events.append((t.now, float(amount)))  # the receive happens now; its size is known afterwards
        acc.record("netrecv", amount)
    assert_rate_bound(events, rate=500.0)


def test_a_call_runs_first_and_waits_only_when_the_bucket_is_not_empty() -> None:
    acc, t = fake_accountant()
    acc.charge("netsend", 5000)  # an empty bucket lets even a large call through at once
    assert t.sleeps == []
    acc.charge("netsend", 1)  # 5000 bytes at 1000 B/s must drain first
    assert t.sleeps == [pytest.approx(5.0)]
    t.now += 0.0005  # half of the 1-byte call has drained
    assert acc.usage()["netsend"] == pytest.approx(0.5)
    t.now += 10
    acc.charge("netsend", 1)
    assert len(t.sleeps) == 1  # a bucket that drained while idle costs no wait


def test_resources_have_separate_buckets() -> None:
    acc, t = fake_accountant()
    acc.charge("netsend", 1000)
    acc.charge("loopsend", 1000)
    acc.charge("lograte", 50)
    assert t.sleeps == []
    assert acc.usage()["netsend"] == pytest.approx(1000) and acc.usage()["lograte"] == pytest.approx(50)


class SteppedTime:
    """A clock moved only by the test. `sleep` blocks the calling thread until the test next moves the
    clock, by any amount: like a sleep cut short, so the accountant must check the clock again itself."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleep_calls = 0
        self.cond = threading.Condition()

    def clock(self) -> float:
        with self.cond:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.cond:
            self.sleep_calls += 1
            asleep_at = self.now
            self.cond.notify_all()
            assert self.cond.wait_for(lambda: self.now > asleep_at, timeout=10), "the clock never moved"

    def advance(self, seconds: float) -> None:
        with self.cond:
            self.now += seconds
            self.cond.notify_all()

    def wait_for_sleepers(self, count: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.sleep_calls >= count, timeout=10)


@pytest.mark.parametrize("method", ["charge", "wait_for"])
def test_a_thread_over_the_rate_waits_until_the_bucket_drains(method: str) -> None:
    t = SteppedTime()
    acc = Accountant(ALLOTMENT, clock=t.clock, sleep=t.sleep)
    acc.charge("netsend", 2000)  # two seconds' worth at 1000 B/s
    args = ("netsend", 10) if method == "charge" else ("netsend",)
    worker = threading.Thread(target=getattr(acc, method), args=args)
    worker.start()
    t.wait_for_sleepers(1)
    t.advance(1.5)  # not drained yet: the worker wakes, sees 0.5 s left and sleeps again
    t.wait_for_sleepers(2)
    assert worker.is_alive()
    t.advance(0.5)
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert t.sleep_calls == 2
    expected = 10 if method == "charge" else 0
    assert acc.usage()["netsend"] == pytest.approx(expected)


def test_a_zero_allotment_refuses_any_use_and_names_the_resource() -> None:
    acc, _ = fake_accountant()
    for call in (lambda: acc.charge("random", 1024), lambda: acc.wait_for("random"),
                 lambda: acc.record("random", 1), lambda: acc.charge("looprecv", 0)):
        with pytest.raises(ResourceExhaustedError) as info:
            call()
        assert "allotment is 0" in str(info.value)
        assert str(info.value).startswith(("random:", "looprecv:"))
    acc.record("random", 0)  # using nothing is always fine
    assert acc.usage()["random"] == 0


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda acc: acc.charge("cpu", 1), "'cpu' is not a per-call renewable resource"),
        (lambda acc: acc.wait_for("netsnd"), "'netsnd' is not a per-call renewable resource"),
        (lambda acc: acc.record("events", 1), "'events' is not a per-call renewable resource"),
        (lambda acc: acc.charge("netsend", -1), "netsend: amount must be a finite number ≥ 0, got -1"),
        (lambda acc: acc.record("netsend", float("nan")), "got nan"),
        (lambda acc: acc.charge("netsend", "10"), "got '10'"),
        (lambda acc: acc.acquire("netsend", 1), "'netsend' is not an item resource"),
        (lambda acc: acc.release("thread", 1), "'thread' is not an item resource"),
        (lambda acc: acc.check_port("udp", 1), "'udp' is not a port set"),
    ],
)
def test_misuse_by_api_code_is_an_internal_error(call: Callable[[Accountant], object], fragment: str) -> None:
    acc, _ = fake_accountant()
    with pytest.raises(InternalRepyError) as info:
        call(acc)
    assert fragment in str(info.value)


# --- items and ports ----------------------------------------------------------------------------------------


def test_items_are_exhausted_exactly_at_the_allotment() -> None:
    acc, _ = fake_accountant()
    for handle in ("t1", "t2", "t3"):
        acc.acquire("events", handle)
    acc.acquire("events", "t2")  # holding a handle already is not a second use
    assert acc.usage()["events"] == 3
    with pytest.raises(ResourceExhaustedError, match=r"^events: all 3 allowed are in use$"):
        acc.acquire("events", "t4")
    acc.release("events", "t1")
    acc.release("events", "t1")  # idempotent
    acc.release("events", "never-held")
    assert acc.usage()["events"] == 2
    acc.acquire("events", "t4")
    with pytest.raises(ResourceExhaustedError):
        acc.acquire("events", "t5")


def test_items_are_counted_per_resource() -> None:
    acc, _ = fake_accountant()
    acc.acquire("filesopened", "a")
    acc.acquire("filesopened", "b")
    acc.acquire("insockets", "a")
    with pytest.raises(ResourceExhaustedError, match=r"^filesopened:"):
        acc.acquire("filesopened", "c")
    with pytest.raises(ResourceExhaustedError, match=r"^outsockets: this vessel's allotment is 0$"):
        acc.acquire("outsockets", "a")
    usage = acc.usage()
    assert (usage["filesopened"], usage["insockets"], usage["outsockets"], usage["events"]) == (2, 1, 0, 0)


def test_ports_outside_the_sets_are_forbidden() -> None:
    acc, _ = fake_accountant()
    acc.check_port("messport", 63100)
    acc.check_port("messport", 63101)
    acc.check_port("connport", 63105)
    with pytest.raises(ResourceForbiddenError) as info:
        acc.check_port("connport", 63100)  # a messport is not a connport
    assert str(info.value) == "connport: port 63100 is not in this vessel's allotment"
    with pytest.raises(ResourceForbiddenError, match=r"^messport: port 80 "):
        acc.check_port("messport", 80)


def test_usage_reports_every_metered_renewable_and_item() -> None:
    acc, _ = fake_accountant()
    assert set(acc.usage()) == METERED | {"events", "filesopened", "insockets", "outsockets"}
    assert all(value == 0 for value in acc.usage().values())


# --- real clock, real threads -------------------------------------------------------------------------------


def test_concurrent_chargers_are_all_served_with_the_real_clock() -> None:
    rate = 400_000.0
    acc = Accountant(Resources({"loopsend": rate, "events": 8}))
    threads, per_thread, amount = 8, 10, 1000
    done: list[int] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            acc.acquire("events", n)
            for _ in range(per_thread):
                acc.charge("loopsend", amount)
            acc.release("events", n)
            done.append(n)
        except BaseException as exc:  # surfaced below; a thread's exception would otherwise vanish
            errors.append(exc)

    start = time.monotonic()
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    elapsed = time.monotonic() - start
    assert errors == []
    assert sorted(done) == list(range(threads))
    assert acc.usage()["events"] == 0
    # The rate rule itself, not a speed goal: all but the last call had to drain before the last one ran.
    assert elapsed >= (threads * per_thread - 1) * amount / rate
