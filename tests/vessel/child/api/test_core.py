"""The core vessel API (seattle.vessel.child.api.core), the argument checks and wrapper (api.checks) and the
log tracebacks (seattle.vessel.child.tracebacks), called in-process around a real VesselContext.

The context is real: the real Accountant (with a settable clock, so bucket levels are exact), a real
BrokerClient/BrokerServer pair over a SOCK_SEQPACKET socketpair with the server on a thread, and a
temporary vessel directory. `ctx.exit` records the code and raises `VesselExit` (a SystemExit, which
threads end on quietly), so a test can see that the vessel would have ended and with which code.

The harness (`vessel`, `harness`, `run_user_code`) is imported by the other API test modules.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from seattle.resources import RESOURCE_NAMES
from seattle.vessel import errors, status
from seattle.vessel.child.api import checks, core
from seattle.vessel.child.tracebacks import format_internal_fault, format_user_exception
from tests.api_harness import (
    PACKAGE_DIR,
    PATIENCE,
    Harness,
    VesselExit,
    run_user_code,
    vessel,
    wait_until,
)


def traceback_functions(exc: BaseException) -> list[str]:
    names = []
    tb = exc.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return names


# ---------------------------------------------------------------------------------------------------------
# checks: argument helpers


def test_require_str_accepts_exact_str_and_names_the_argument() -> None:
    assert checks.require_str("abc", "name") == "abc"
    with pytest.raises(errors.RepyArgumentError, match="name must be a str, not int"):
        checks.require_str(5, "name")
    with pytest.raises(errors.RepyArgumentError, match="name is 4 characters long; the limit is 3"):
        checks.require_str("abcd", "name", max_length=3)
    with pytest.raises(errors.RepyArgumentError, match="name must not be empty"):
        checks.require_str("", "name", allow_empty=False)


def test_require_str_or_bytes_encodes_and_copies() -> None:
    assert checks.require_str_or_bytes("héllo", "data") == "héllo".encode()
    assert checks.require_str_or_bytes(b"\x00\xff", "data") == b"\x00\xff"
    source = bytearray(b"abc")
    copied = checks.require_str_or_bytes(source, "data")
    source[0] = ord("z")
    assert copied == b"abc" and type(copied) is bytes
    with pytest.raises(errors.RepyArgumentError, match="data must be bytes or a str, not list"):
        checks.require_str_or_bytes([1], "data")
    with pytest.raises(errors.RepyArgumentError, match="lone surrogate at index 1"):
        checks.require_str_or_bytes("a\ud800", "data")
    with pytest.raises(errors.RepyArgumentError, match="data is 4 bytes long; the limit is 3"):
        checks.require_str_or_bytes("a€", "data", max_length=3)  # 2 characters, 4 bytes


def test_require_int_bounds_and_refuses_bool_and_floats() -> None:
    assert checks.require_int(0, "offset") == 0
    assert checks.require_int(-5, "delta", minimum=None) == -5
    with pytest.raises(errors.RepyArgumentError, match="offset must be at least 0, got -1"):
        checks.require_int(-1, "offset")
    with pytest.raises(errors.RepyArgumentError, match="port must be at most 65535"):
        checks.require_int(65536, "port", maximum=65535)
    with pytest.raises(errors.RepyArgumentError, match="offset must be at most"):
        checks.require_int(2**64, "offset")
    for bad in (True, 1.0, "1", None):
        with pytest.raises(errors.RepyArgumentError, match="offset must be an int"):
            checks.require_int(bad, "offset")
    assert checks.require_int_or_none(None, "sizelimit") is None
    assert checks.require_int_or_none(7, "sizelimit") == 7
    with pytest.raises(errors.RepyArgumentError, match="sizelimit must be an int or None, not str"):
        checks.require_int_or_none("7", "sizelimit")


def test_require_float_accepts_ints_and_floats_only_finite() -> None:
    assert checks.require_float(2, "seconds") == 2.0
    assert checks.require_float(0.5, "seconds") == 0.5
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(errors.RepyArgumentError, match="seconds must be a finite number"):
            checks.require_float(bad, "seconds")
    with pytest.raises(errors.RepyArgumentError, match=r"seconds must be at least 0\.0, got -0\.5"):
        checks.require_float(-0.5, "seconds")
    with pytest.raises(errors.RepyArgumentError, match="seconds is too large"):
        checks.require_float(10**400, "seconds")
    for bad in (True, "1", None, [1]):
        with pytest.raises(errors.RepyArgumentError, match="seconds must be a number"):
            checks.require_float(bad, "seconds")


def test_require_bool_callable_and_sequences() -> None:
    assert checks.require_bool(False, "create") is False
    with pytest.raises(errors.RepyArgumentError, match="create must be True or False, not int"):
        checks.require_bool(1, "create")
    assert checks.require_callable(len, "function") is len
    with pytest.raises(errors.RepyArgumentError, match="function must be callable, not str"):
        checks.require_callable("len", "function")
    args = [1, 2]
    copied = checks.require_list_or_tuple(args, "args")
    args.append(3)
    assert copied == (1, 2)
    with pytest.raises(errors.RepyArgumentError, match="args must be a list or tuple, not dict"):
        checks.require_list_or_tuple({}, "args")


def test_subclasses_of_builtin_types_are_refused_without_running_their_methods() -> None:
    calls: list[str] = []

    class SneakyStr(str):
        def __eq__(self, other: object) -> bool:
            calls.append("eq")
            return True

        def __hash__(self) -> int:
            calls.append("hash")
            return 0

        def __len__(self) -> int:
            calls.append("len")
            return 1

        def encode(self, *args: Any) -> bytes:  # type: ignore[override]
            calls.append("encode")
            return b""

    class SneakyInt(int):
        def __index__(self) -> int:
            calls.append("index")
            return 0

        def __float__(self) -> float:
            calls.append("float")
            return 0.0

    with pytest.raises(errors.RepyArgumentError, match="name must be a str, not SneakyStr"):
        checks.require_str(SneakyStr("x"), "name", max_length=10)
    with pytest.raises(errors.RepyArgumentError, match="not SneakyStr"):
        checks.require_str_or_bytes(SneakyStr("x"), "data")
    with pytest.raises(errors.RepyArgumentError, match="not SneakyInt"):
        checks.require_int(SneakyInt(3), "offset")
    with pytest.raises(errors.RepyArgumentError, match="not SneakyInt"):
        checks.require_float(SneakyInt(3), "seconds")
    assert calls == []


def test_type_name_ignores_a_metaclass_name_hook() -> None:
    class Meta(type):
        def __getattribute__(cls, name: str) -> Any:
            raise AssertionError("the metaclass hook ran")

    class Odd(metaclass=Meta):
        pass

    assert checks.type_name(Odd()) == "Odd"


# ---------------------------------------------------------------------------------------------------------
# checks: the api_call wrapper and api objects


def test_repy_errors_leave_the_wrapper_fresh_and_without_context(harness: Harness) -> None:
    def failing() -> None:
        try:
            raise OSError(2, "No such file", "/host/secret/path")
        except OSError:
            raise errors.FileNotFoundError("there is no file named 'x'") from None

    wrapped = checks.api_call(harness.ctx, "failing")(failing)
    with pytest.raises(errors.FileNotFoundError) as caught:
        wrapped()
    exc = caught.value
    assert type(exc) is errors.FileNotFoundError
    assert exc.args == ("there is no file named 'x'",)
    assert exc.__context__ is None and exc.__cause__ is None
    # The traceback reaches the wrapper's frame and stops: no frame of the implementation is in it.
    assert "failing" not in traceback_functions(exc)
    assert exc.__traceback__ is not None
    deepest = exc.__traceback__
    while deepest.tb_next is not None:
        deepest = deepest.tb_next
    assert deepest.tb_frame.f_code.co_filename == checks.__file__
    assert harness.exits == []


def test_argument_errors_are_prefixed_with_the_call_name(harness: Harness) -> None:
    def takes_int(value: object) -> int:
        return checks.require_int(value, "value")

    wrapped = checks.api_call(harness.ctx, "takes_int")(takes_int)
    assert wrapped(3) == 3
    with pytest.raises(errors.RepyArgumentError, match=r"^takes_int: value must be an int, not str$"):
        wrapped("3")


def test_wrong_argument_count_is_an_argument_error_not_a_fault(harness: Harness) -> None:
    api = harness.api(core)
    with pytest.raises(errors.RepyArgumentError,
                       match=r"sleep\(\) missing 1 required positional argument: 'seconds'"):
        api["sleep"]()
    with pytest.raises(errors.RepyArgumentError, match=r"getruntime\(\) takes 0 positional arguments"):
        api["getruntime"](1)
    with pytest.raises(errors.RepyArgumentError, match=r"unexpected keyword argument 'bogus'"):
        api["createlock"](bogus=1)
    assert harness.exits == []


def test_an_unexpected_exception_is_an_internal_fault(harness: Harness) -> None:
    def broken() -> None:
        {}["missing"]  # a bug of the runtime, on purpose

    wrapped = checks.api_call(harness.ctx, "broken")(broken)
    with pytest.raises(VesselExit):
        wrapped()
    assert harness.exits == [status.EXIT_INTERNAL]
    text = harness.log()
    assert "Internal error in the vessel runtime during broken()" in text
    assert "KeyError: 'missing'" in text
    # Runtime frames are kept for whoever debugs it, but only with paths relative to the package.
    assert 'File "seattle/vessel/child/api/checks.py"' in text and "in broken\n" in text
    assert PACKAGE_DIR not in text and str(harness.ctx.vessel_dir) not in text


def test_a_type_error_inside_the_implementation_is_a_fault_not_an_argument_error(harness: Harness) -> None:
    def broken(value: object) -> int:
        return len(value)  # type: ignore[arg-type]

    wrapped = checks.api_call(harness.ctx, "broken")(broken)
    with pytest.raises(VesselExit):
        wrapped(5)
    assert harness.exits == [status.EXIT_INTERNAL]
    assert "TypeError: object of type 'int' has no len()" in harness.log()


def test_an_unexported_repy_exception_class_is_a_fault(harness: Harness) -> None:
    class Private(errors.RepyException):
        pass

    def raises_private() -> None:
        raise Private("x")

    with pytest.raises(VesselExit):
        checks.api_call(harness.ctx, "raises_private")(raises_private)()
    assert harness.exits == [status.EXIT_INTERNAL]


def test_memory_and_recursion_errors_pass_as_the_programs_own(harness: Harness) -> None:
    def out_of_memory() -> None:
        raise MemoryError("no room")

    def too_deep() -> None:
        raise RecursionError("maximum recursion depth exceeded")

    with pytest.raises(MemoryError, match="out_of_memory: no room") as caught:
        checks.api_call(harness.ctx, "out_of_memory")(out_of_memory)()
    assert caught.value.__context__ is None
    with pytest.raises(RecursionError, match="too_deep: maximum recursion"):
        checks.api_call(harness.ctx, "too_deep")(too_deep)()
    assert harness.exits == []


def test_internal_fault_message_leaves_out_os_error_paths(harness: Harness) -> None:
    exc = OSError(13, "Permission denied", "/srv/donor/home/secret")
    text = format_internal_fault(exc, "openfile")
    assert "PermissionError: [Errno 13] Permission denied" in text
    assert "/srv/donor" not in text


def test_api_objects_expose_only_their_methods(harness: Harness) -> None:
    lock = harness.api(core)["createlock"]()
    assert repr(lock) == "<lock>"
    assert [name for name in dir(lock) if not name.startswith("_")] == ["acquire", "release"]
    with pytest.raises(errors.RepyArgumentError, match="lock objects are read-only"):
        lock.acquire = print
    with pytest.raises(errors.RepyArgumentError, match="read-only"):
        del lock.release
    with pytest.raises(errors.RepyArgumentError, match="lock objects cannot be subclassed"):
        type("Mine", (type(lock),), {})
    empty = type(lock)()  # reachable through type(): an empty object, no methods, no state
    with pytest.raises(AttributeError):
        empty.acquire  # noqa: B018
    assert not hasattr(lock, "__dict__")


# ---------------------------------------------------------------------------------------------------------
# tracebacks


def test_user_traceback_shows_only_user_frames_and_the_chain() -> None:
    source = """
        def inner():
            raise ValueError("boom")
        def outer():
            try:
                inner()
            except ValueError as exc:
                raise KeyError("k") from exc
        outer()
    """
    with pytest.raises(KeyError) as caught:
        run_user_code(source, {})
    text = format_user_exception(caught.value)
    assert text == (
        "Traceback (most recent call last):\n"
        '  File "prog.r2py", line 6, in outer\n'
        '  File "prog.r2py", line 3, in inner\n'
        "ValueError: boom\n"
        "\nThe above exception was the direct cause of the following exception:\n\n"
        "Traceback (most recent call last):\n"
        '  File "prog.r2py", line 9, in <module>\n'
        '  File "prog.r2py", line 8, in outer\n'
        "KeyError: 'k'\n"
    )


def test_user_traceback_folds_deep_recursion_and_survives_a_broken_str() -> None:
    source = """
        class Odd(Exception):
            def __str__(self):
                raise ValueError("no text")
        def down(n):
            if n == 0:
                raise Odd()
            down(n - 1)
        down(50)
    """
    with pytest.raises(Exception) as caught:
        run_user_code(source, {})
    text = format_user_exception(caught.value)
    assert "[Previous line repeated 47 more times]" in text
    assert text.endswith("Odd: <exception str() failed>\n")
    assert len(text.splitlines()) < 12


def test_host_frames_are_hidden_unless_they_are_the_named_program() -> None:
    def host_function() -> None:
        raise ValueError("\ud800 lone surrogate")

    with pytest.raises(ValueError) as caught:
        host_function()
    hidden = format_user_exception(caught.value)
    assert hidden == "ValueError: \\ud800 lone surrogate\n"
    hidden.encode("utf-8")  # always loggable
    shown = format_user_exception(caught.value, __file__)
    assert f'File "{__file__}"' in shown and "in host_function" in shown


# ---------------------------------------------------------------------------------------------------------
# sleep, getruntime, randombytes


def test_sleep_never_returns_early_and_checks_its_argument(harness: Harness) -> None:
    sleep = harness.api(core)["sleep"]
    start = time.monotonic()
    assert sleep(0.05) is None
    assert time.monotonic() - start >= 0.05
    sleep(0)
    for bad, reason in ((-1, "at least 0"), ("1", "must be a number"), (True, "must be a number"),
                        (float("nan"), "finite"), (float("inf"), "finite")):
        with pytest.raises(errors.RepyArgumentError, match=f"^sleep: seconds .*{reason}"):
            sleep(bad)


def test_pause_waits_out_the_whole_time_even_if_a_piece_returns_early() -> None:
    start = time.monotonic()
    core.pause(0.02)
    assert time.monotonic() - start >= 0.02


def test_getruntime_is_monotonic_seconds_since_start(harness: Harness) -> None:
    getruntime = harness.api(core)["getruntime"]
    first = getruntime()
    second = getruntime()
    assert type(first) is float and 0 <= first <= second
    harness.ctx.start_time -= 100
    assert getruntime() >= 100


def test_randombytes_gives_1024_fresh_bytes_and_charges_random(harness: Harness) -> None:
    randombytes = harness.api(core)["randombytes"]
    first = randombytes()
    assert type(first) is bytes and len(first) == 1024
    assert harness.usage("random") == 1024
    assert randombytes() != first
    assert harness.usage("random") == 1024  # the second call waited for the bucket to drain first


def test_randombytes_with_no_random_allotment_is_exhausted(tmp_path: Path) -> None:
    with vessel(tmp_path, random=0) as h, pytest.raises(errors.ResourceExhaustedError, match="random"):
        h.api(core)["randombytes"]()


# ---------------------------------------------------------------------------------------------------------
# log and print


def test_log_joins_str_of_each_argument_without_a_newline_and_charges_lograte(harness: Harness) -> None:
    log = harness.api(core)["log"]
    log("hello", 1, None, b"x")
    assert harness.log() == "hello 1 None b'x'"
    assert harness.usage("lograte") == len("hello 1 None b'x'")
    log()
    log("é")
    assert harness.written.endswith("é".encode())


def test_log_runs_str_outside_the_api_so_its_errors_are_the_programs(harness: Harness) -> None:
    log = harness.api(core)["log"]

    class Broken:
        def __str__(self) -> str:
            raise ValueError("my own bug")

    class Fancy(str):
        pass

    class ReturnsSubclass:
        def __str__(self) -> str:
            return Fancy("fancy")

    with pytest.raises(ValueError, match="my own bug"):
        log("a", Broken())
    with pytest.raises(errors.RepyArgumentError, match="log: takes no keyword arguments"):
        log("a", sep="-")
    log(ReturnsSubclass(), "\ud800")
    assert harness.log() == "fancy \\ud800"
    assert harness.exits == []


def test_print_writes_lines_to_the_log(harness: Harness) -> None:
    print_ = core.make_print(harness.ctx)
    print_("a", 2)
    print_("b", "c", sep="-", end="!")
    print_("d", sep=None, end=None)
    print_()
    assert harness.log() == "a 2\nb-c!d\n\n"
    assert harness.usage("lograte") == 1  # the last call was charged after the bucket drained
    with pytest.raises(errors.RepyArgumentError, match="print: sep must be a str, not int"):
        print_("x", sep=1)
    with pytest.raises(errors.RepyArgumentError, match="print: end must be a str, not bytes"):
        print_("x", end=b"\n")
    with pytest.raises(TypeError, match="unexpected keyword argument 'file'"):
        print_("x", file=None)


def test_log_with_no_lograte_is_exhausted(tmp_path: Path) -> None:
    with vessel(tmp_path, lograte=0) as h:
        with pytest.raises(errors.ResourceExhaustedError, match="lograte"):
            h.api(core)["log"]("x")
        assert h.written == b""


# ---------------------------------------------------------------------------------------------------------
# threads, names, locks


def test_getthreadname_is_stable_per_thread_and_unique(harness: Harness) -> None:
    getthreadname = harness.api(core)["getthreadname"]
    mine = getthreadname()
    assert mine == getthreadname()
    names: list[str] = []
    threads = [threading.Thread(target=lambda: names.append(getthreadname())) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set([*names, mine])) == 6
    assert all(type(name) is str for name in names)


def test_lock_acquire_release_and_double_release(harness: Harness) -> None:
    lock = harness.api(core)["createlock"]()
    assert lock.acquire(True) is True
    assert lock.acquire(False) is False
    lock.release()
    assert lock.acquire(False) is True
    lock.release()
    with pytest.raises(errors.LockDoubleReleaseError, match="not held"):
        lock.release()
    with pytest.raises(errors.RepyArgumentError, match=r"lock\.acquire: blocking must be True or False"):
        lock.acquire(1)
    assert lock.acquire() is True  # blocking defaults to True


def test_a_lock_blocks_another_thread_until_released(harness: Harness) -> None:
    lock = harness.api(core)["createlock"]()
    lock.acquire(True)
    got = threading.Event()

    def other() -> None:
        lock.acquire(True)
        got.set()
        lock.release()

    thread = threading.Thread(target=other)
    thread.start()
    assert not got.wait(0.05)
    lock.release()  # any thread may release a Repy lock, and the waiter then gets it
    assert got.wait(PATIENCE)
    thread.join()


def test_createthread_runs_the_function_and_holds_an_event_while_it_runs(harness: Harness) -> None:
    createthread = harness.api(core)["createthread"]
    running, finish, done = threading.Event(), threading.Event(), threading.Event()

    def work() -> None:
        running.set()
        finish.wait(PATIENCE)
        done.set()

    assert createthread(work) is None
    assert running.wait(PATIENCE)
    assert harness.usage("events") == 1
    finish.set()
    assert done.wait(PATIENCE)
    wait_until(lambda: harness.usage("events") == 0)
    assert harness.exits == []


def test_createthread_is_limited_by_events(tmp_path: Path) -> None:
    with vessel(tmp_path, events=2) as h:
        createthread = h.api(core)["createthread"]
        release = threading.Event()
        createthread(lambda: release.wait(PATIENCE))
        createthread(lambda: release.wait(PATIENCE))
        with pytest.raises(errors.ResourceExhaustedError, match="events: all 2 allowed are in use"):
            createthread(lambda: None)
        release.set()
        wait_until(lambda: h.usage("events") == 0)
        createthread(lambda: None)  # freed items can be used again
        wait_until(lambda: h.usage("events") == 0)


def test_createthread_refuses_non_callables(harness: Harness) -> None:
    with pytest.raises(errors.RepyArgumentError, match="createthread: function must be callable, not int"):
        harness.api(core)["createthread"](42)
    assert harness.usage("events") == 0


def test_uncaught_exception_in_a_thread_ends_the_vessel_with_its_traceback(harness: Harness) -> None:
    api = harness.api(core)
    source = """
        def fail():
            raise ValueError("thread broke")
        createthread(fail)
    """
    run_user_code(source, {"createthread": api["createthread"]})
    wait_until(lambda: harness.exits)
    assert harness.exits == [status.EXIT_UNCAUGHT]
    text = harness.log()
    assert text.startswith("Uncaught exception in thread Thread:")
    assert 'File "prog.r2py", line 3, in fail\n' in text
    assert text.endswith("ValueError: thread broke\n")
    assert PACKAGE_DIR not in text and "threading.py" not in text
    wait_until(lambda: harness.usage("events") == 0)


@pytest.mark.slow
def test_a_thread_the_os_refuses_ends_the_vessel_with_thread_err(tmp_path: Path) -> None:
    """A real child process whose address-space limit leaves no room for a thread stack."""
    program = textwrap.dedent(f"""
        import os, resource, threading
        from pathlib import Path
        from seattle.resources import DEFAULT_ALLOTMENT
        from seattle.vessel.child.accounting import Accountant
        from seattle.vessel.child.api import core
        from seattle.vessel.child.context import VesselContext

        ctx = VesselContext(DEFAULT_ALLOTMENT, Accountant(DEFAULT_ALLOTMENT), Path({str(tmp_path)!r}),
                            broker=None, write_log=lambda data: os.write(1, data), exit=os._exit)
        createthread = core.exports(ctx)["createthread"]
        size = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
                    if line.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, (size + 2 * 1024 * 1024, resource.RLIM_INFINITY))
        createthread(lambda: None)
        os.write(1, b"still running")
    """)
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=60, check=False)
    assert result.returncode == status.EXIT_THREAD_ERR, result.stderr.decode()
    assert b"The system refused to start a thread" in result.stdout
    assert b"still running" not in result.stdout


# ---------------------------------------------------------------------------------------------------------
# exitall, getlasterror, getresources


def test_exitall_ends_the_vessel_normally(harness: Harness) -> None:
    with pytest.raises(VesselExit):
        harness.api(core)["exitall"]()
    assert harness.exits == [status.EXIT_NORMAL]


def test_exitall_from_a_thread_is_not_an_uncaught_exception(harness: Harness) -> None:
    api = harness.api(core)
    api["createthread"](api["exitall"])
    wait_until(lambda: harness.exits)
    assert harness.exits == [status.EXIT_NORMAL]
    assert "Uncaught" not in harness.log()


def test_getlasterror_is_the_exception_being_handled_in_this_thread(harness: Harness) -> None:
    api = harness.api(core)
    assert api["getlasterror"]() is None
    source = """
        def fail():
            raise KeyError("lost")
        try:
            fail()
        except KeyError:
            seen.append(getlasterror())
        seen.append(getlasterror())
    """
    seen: list[Any] = []
    run_user_code(source, {"getlasterror": api["getlasterror"], "seen": seen})
    assert seen[0] == (
        "Traceback (most recent call last):\n"
        '  File "prog.r2py", line 5, in <module>\n'
        '  File "prog.r2py", line 3, in fail\n'
        "KeyError: 'lost'\n"
    )
    assert seen[1] is None

    other: list[Any] = []
    try:
        raise ValueError("here")
    except ValueError:
        thread = threading.Thread(target=lambda: other.append(api["getlasterror"]()))
        thread.start()
        thread.join()
        assert "ValueError: here" in api["getlasterror"]()
    assert other == [None]  # per thread


def test_getresources_reports_limits_usage_and_stoptimes(harness: Harness) -> None:
    api = harness.api(core)
    api["randombytes"]()
    lock_release = threading.Event()
    api["createthread"](lambda: lock_release.wait(PATIENCE))
    limits, usage, stoptimes = api["getresources"]()
    lock_release.set()

    resources = harness.ctx.resources
    assert set(limits) == set(RESOURCE_NAMES)
    assert limits["messport"] == set(resources.messport) and type(limits["messport"]) is set
    assert limits["cpu"] == resources["cpu"] and limits["events"] == resources["events"]
    assert usage["cpu"] == 0.125 and usage["memory"] == 7_000_000 and usage["diskused"] == 8192
    assert usage["random"] == pytest.approx(1024) and usage["events"] == 1 and usage["filesopened"] == 0
    assert type(usage["threadcpu"]) is float and usage["threadcpu"] >= 0
    assert stoptimes == [(10.0, 0.5), (11.0, 0.25)]

    limits["messport"].add(1)  # a copy: changing it changes nothing for the next call
    assert 1 not in api["getresources"]()[0]["messport"]


def test_getresources_keeps_the_last_100_stoptimes(harness: Harness) -> None:
    harness.supervisor_usage["stoptimes"] = [[float(i), 0.01] for i in range(150)]
    stoptimes = harness.api(core)["getresources"]()[2]
    assert len(stoptimes) == 100
    assert stoptimes[0] == (50.0, 0.01) and stoptimes[-1] == (149.0, 0.01)


def test_getresources_when_the_supervisor_is_gone_is_an_internal_fault(harness: Harness) -> None:
    harness.ctx.broker.close()
    with pytest.raises(VesselExit):
        harness.api(core)["getresources"]()
    assert harness.exits == [status.EXIT_INTERNAL]
    assert "InternalRepyError: the network broker is gone" in harness.log()


def test_exports_are_the_documented_names(harness: Harness) -> None:
    assert set(harness.api(core)) == {
        "sleep", "getruntime", "randombytes", "log", "getthreadname", "createlock", "createthread",
        "exitall", "getlasterror", "getresources",
    }


def test_api_functions_carry_no_host_module_state(harness: Harness) -> None:
    for name, function in harness.api(core).items():
        assert not hasattr(function, "__wrapped__"), name
        assert function.__name__ == name
