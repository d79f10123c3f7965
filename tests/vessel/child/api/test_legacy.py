"""The Repy V1 names (seattle.vessel.child.api.legacy): timers, getlock, randomfloat, listdir."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from seattle.vessel import errors, status
from seattle.vessel.child.api import files, legacy
from tests.api_harness import PATIENCE, Harness, run_user_code, vessel, wait_until


@pytest.fixture
def api(harness: Harness) -> dict[str, Any]:
    return harness.api(legacy)


def test_settimer_calls_the_function_with_its_args(api: dict[str, Any], harness: Harness) -> None:
    got: list[Any] = []
    fired = threading.Event()

    def callback(a: Any, b: Any) -> None:
        got.append((a, b))
        fired.set()

    args = [1, "two"]
    handle = api["settimer"](0.01, callback, args)
    args.append("changed later")  # the timer took a copy
    assert fired.wait(PATIENCE)
    assert got == [(1, "two")]
    assert repr(handle) == "<timer>"
    wait_until(lambda: harness.usage("events") == 0)
    assert api["canceltimer"](handle) is False  # it already ran


def test_canceltimer_stops_a_pending_timer(api: dict[str, Any], harness: Harness) -> None:
    ran = threading.Event()
    before = set(threading.enumerate())
    handle = api["settimer"](3600, ran.set, ())
    assert api["canceltimer"](handle) is True
    assert api["canceltimer"](handle) is False  # nothing left to stop
    wait_until(lambda: set(threading.enumerate()) <= before)  # the timer's thread woke up and ended
    assert not ran.is_set()
    assert harness.exits == []


def test_canceltimer_after_the_function_started_is_false(api: dict[str, Any]) -> None:
    started, finish = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        finish.wait(PATIENCE)

    handle = api["settimer"](0, slow, [])
    assert started.wait(PATIENCE)
    assert api["canceltimer"](handle) is False
    finish.set()


def test_canceltimer_refuses_anything_but_a_timer_handle(api: dict[str, Any]) -> None:
    calls: list[str] = []

    class Impostor:
        def __hash__(self) -> int:
            calls.append("hash")
            return 0

        def __eq__(self, other: object) -> bool:
            calls.append("eq")
            return True

    for bad in ("timer", Impostor(), None, api["getlock"]()):
        with pytest.raises(errors.RepyArgumentError, match="canceltimer: timerhandle must be a handle"):
            api["canceltimer"](bad)
    assert calls == []


def test_settimer_argument_errors(api: dict[str, Any]) -> None:
    cases = [
        ((-1, print, []), "settimer: waittime must be at least 0"),
        (("1", print, []), "settimer: waittime must be a number"),
        ((1, "print", []), "settimer: function must be callable"),
        ((1, print, "args"), "settimer: args must be a list or tuple, not str"),
        ((1, print, None), "settimer: args must be a list or tuple, not NoneType"),
    ]
    for arguments, message in cases:
        with pytest.raises(errors.RepyArgumentError, match=message):
            api["settimer"](*arguments)
    with pytest.raises(errors.RepyArgumentError, match=r"settimer\(\) missing 1 required positional"):
        api["settimer"](1, print)


def test_a_timer_counts_as_an_event_only_while_it_runs(tmp_path: Path) -> None:
    with vessel(tmp_path, events=1) as h:
        api = h.api(legacy)
        release = threading.Event()
        running = threading.Event()

        def hold() -> None:
            running.set()
            release.wait(PATIENCE)

        pending = [api["settimer"](3600, print, []) for _ in range(3)]  # more than events allows: fine
        assert h.usage("events") == 0
        api["settimer"](0, hold, [])
        assert running.wait(PATIENCE)
        assert h.usage("events") == 1
        release.set()
        wait_until(lambda: h.usage("events") == 0)
        for handle in pending:
            assert api["canceltimer"](handle) is True
        assert h.exits == []


def test_a_timer_that_finds_no_free_event_ends_the_vessel(tmp_path: Path) -> None:
    with vessel(tmp_path, events=1) as h:
        api = h.api(legacy)
        release = threading.Event()
        api["settimer"](0, release.wait, [PATIENCE])
        wait_until(lambda: h.usage("events") == 1)
        api["settimer"](0, print, [])
        wait_until(lambda: h.exits)
        release.set()
        assert h.exits == [status.EXIT_UNCAUGHT]
        assert "ResourceExhaustedError: events: all 1 allowed are in use" in h.log()


def test_an_exception_in_a_timer_function_ends_the_vessel(api: dict[str, Any], harness: Harness) -> None:
    source = """
        def tick(n):
            raise ValueError("tick " + str(n))
        settimer(0, tick, [7])
    """
    run_user_code(source, {"settimer": api["settimer"]})
    wait_until(lambda: harness.exits)
    assert harness.exits == [status.EXIT_UNCAUGHT]
    text = harness.log()
    assert 'File "prog.r2py", line 3, in tick' in text and text.endswith("ValueError: tick 7\n")


def test_getlock_is_a_repy_lock(api: dict[str, Any]) -> None:
    lock = api["getlock"]()
    assert lock.acquire(True) is True
    assert lock.acquire(False) is False
    lock.release()
    with pytest.raises(errors.LockDoubleReleaseError):
        lock.release()


def test_randomfloat_is_in_0_1_and_charges_random(api: dict[str, Any], harness: Harness) -> None:
    values = [api["randomfloat"]() for _ in range(50)]
    assert all(type(v) is float and 0.0 <= v < 1.0 for v in values)
    assert len(set(values)) == 50
    assert harness.usage("random") == legacy.RANDOMFLOAT_BYTES


def test_randomfloat_with_no_random_allotment(tmp_path: Path) -> None:
    with vessel(tmp_path, random=0) as h, pytest.raises(errors.ResourceExhaustedError, match="random"):
        h.api(legacy)["randomfloat"]()


def test_listdir_is_listfiles(api: dict[str, Any], harness: Harness) -> None:
    file_api = harness.api(files)
    for name in ("b", "a", "c.txt"):
        file_api["openfile"](name, True).close()
    assert api["listdir"]() == file_api["listfiles"]() == ["a", "b", "c.txt"]


def test_exports_are_the_documented_names(api: dict[str, Any]) -> None:
    assert set(api) == {"settimer", "canceltimer", "getlock", "randomfloat", "listdir"}
