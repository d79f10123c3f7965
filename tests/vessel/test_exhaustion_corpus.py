"""The resource-exhaustion corpus, run in real vessels: each program is contained and the host is unaffected.

Each program in tests/vessel/exhaustion_corpus/ exhausts one resource and says in its header what must happen:

    # attack: <what it exhausts>
    # expect: killed-memory | killed-disk | error:<ExceptionName> | throttled | rate:<resource>
    # allotment: <name=value overrides of DEFAULT_ALLOTMENT, comma separated; ports as first-last>
    # message: <text the final error line must contain>             (optional, for error:)

* killed-memory / killed-disk: the nanny killed it, or for memory the kernel at the vessel's cgroup limit
  (EXIT_RESOURCE_KILL, the reason names the resource and who killed it).
* error:<Name>: the program died of that uncaught exception (EXIT_UNCAUGHT), the last line of its log.
* throttled: a CPU hog that never ends by itself. It runs for THROTTLE_WINDOW seconds, its CPU seconds over
  that wall time must stay below twice its share plus 0.1, then it is stopped (state Stopped).
* rate:<resource>: the program floods for about 2 s and ends with a line `FLOOD bytes=B seconds=S call=C`
  (C: the most one call charges). B must be more than 0 and at most rate × S + C plus RATE_MARGIN.

Whatever the program, the host must be unaffected: the vessel ends in time, its process is gone afterwards,
this (pytest) process has not grown by more than HOST_RSS_GROWTH, and the same launcher still runs a
trivial vessel right after it.

The whole corpus runs once per session, MAX_CONCURRENT vessels at a time (they mostly wait on their
allotments, so running them side by side keeps the file fast), in a module-scoped fixture; each program's
test then checks its own outcome. When only some programs' tests are selected (`-k name`), only those run.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio

from seattle.resources import DEFAULT_ALLOTMENT, ITEMS, PORT_SETS, RENEWABLE, Resources
from seattle.vessel import errors
from seattle.vessel.host.launcher import VesselHandle, VesselLauncher
from seattle.vessel.host.logbuffer import LOG_CAPACITY
from seattle.vessel.status import EXIT_NORMAL, EXIT_RESOURCE_KILL, EXIT_STOPPED, EXIT_UNCAUGHT, VesselStatus
from tests.vessel_helpers import log_text, start_vessel

CORPUS = Path(__file__).resolve().parent / "exhaustion_corpus"
#: A vessel that has not ended this long after its start fails its test.
VESSEL_DEADLINE = 20.0
#: How long a throttled CPU hog runs before it is stopped.
THROTTLE_WINDOW = 2.2
#: How much the pytest process may grow while the corpus runs.
HOST_RSS_GROWTH = 50 * 2**20
#: Slack on a rate bound, as a fraction of rate × seconds (the bound itself is exact; this absorbs rounding).
RATE_MARGIN = 0.02
#: How long a supervisor may take to vanish after it has reported the vessel's exit.
SUPERVISOR_EXIT_TIMEOUT = 5.0
MAX_CONCURRENT = 8
KINDS = ("killed-memory", "killed-disk", "error", "throttled", "rate")
_FLOOD_LINE = re.compile(r"FLOOD bytes=(\d+) seconds=([\d.]+) call=(\d+)")


class CorpusHeaderError(ValueError):
    """A corpus program's header is missing a line or says something the runner cannot act on."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path.name}: {reason}")


@dataclass(frozen=True)
class Program:
    """One corpus program and what its header promises."""

    path: Path
    attack: str
    kind: str  # one of KINDS
    detail: str  # the exception name for "error", the resource for "rate", else ""
    resources: Resources
    message: str = ""

    @property
    def name(self) -> str:
        return self.path.stem

    @classmethod
    def load(cls, path: Path) -> Program:
        header: dict[str, str] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            match = re.match(r"# (attack|expect|allotment|message): (.*)", line)
            if match:
                header[match[1]] = match[2].strip()
        for required in ("attack", "expect"):
            if not header.get(required):
                raise CorpusHeaderError(path, f"the header has no '# {required}:' line")
        kind, _, detail = header["expect"].partition(":")
        if kind not in KINDS:
            raise CorpusHeaderError(path, f"expect {header['expect']!r}: the kind must be one of "
                                          f"{', '.join(KINDS)}")
        if kind == "error" and not (detail in errors.EXPORTED or detail.endswith("Error")):
            raise CorpusHeaderError(path, f"expect {header['expect']!r} does not name an exception")
        if kind == "rate" and detail not in RENEWABLE - {"cpu"}:
            raise CorpusHeaderError(path, f"expect {header['expect']!r} does not name a metered rate")
        if kind not in ("error", "rate") and detail:
            raise CorpusHeaderError(path, f"expect {header['expect']!r}: {kind} takes no ':' part")
        resources = parse_allotment(path, header.get("allotment", ""))
        if kind == "throttled" and resources["cpu"] >= 0.5:
            raise CorpusHeaderError(path, "a throttled program needs a small cpu allotment (cpu=0.1, say)")
        return cls(path, header["attack"], kind, detail, resources, header.get("message", ""))


def parse_allotment(path: Path, text: str) -> Resources:
    """DEFAULT_ALLOTMENT with the header's `name=value` overrides (port sets as `first-last`)."""
    changes: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = (piece.strip() for piece in item.partition("="))
        if not sep or not value:
            raise CorpusHeaderError(path, f"allotment item {item!r} is not name=value")
        try:
            if name in PORT_SETS:
                first, _, last = value.partition("-")
                changes[name] = frozenset(range(int(first), int(last or first) + 1))
            elif name in RENEWABLE:
                changes[name] = float(value)
            else:
                changes[name] = int(value)
        except ValueError:
            raise CorpusHeaderError(path, f"allotment {name}={value!r} is not a number") from None
    try:
        return DEFAULT_ALLOTMENT.replace(**changes)
    except ValueError as exc:
        raise CorpusHeaderError(path, f"allotment {text!r}: {exc}") from None


PROGRAMS = [Program.load(path) for path in sorted(CORPUS.glob("*.py"))]


@dataclass
class Outcome:
    """What happened to one program's vessel, and to the host around it."""

    handle: VesselHandle
    elapsed: float
    timed_out: bool = False
    ran_until_stopped: bool = False  # throttled programs: still running when the runner stopped them
    cpu_share: float | None = None  # throttled programs: CPU seconds over wall time, from the last report
    pid_gone: bool = False
    supervisor_gone: bool = False
    followup: VesselHandle | None = None
    host_rss_growth: int = 0


async def watch_cpu_share(handle: VesselHandle, started: float) -> float:
    """Let a CPU hog run THROTTLE_WINDOW seconds; returns its CPU seconds over wall time at the latest
    usage report (reports come once a second)."""
    share = 0.0
    seen: dict[str, Any] = {}
    deadline = started + THROTTLE_WINDOW
    while time.monotonic() < deadline and handle.running:
        if handle.usage and handle.usage is not seen:
            seen = handle.usage
            share = float(seen["cpu_seconds"]) / (time.monotonic() - started)
        await trio.sleep(0.02)
    return share


async def gone_within(pid: int, timeout: float) -> bool:
    """Whether `pid` vanishes within `timeout`: a supervisor reports the exit just before it exits itself."""
    with trio.move_on_after(timeout):
        while psutil.pid_exists(pid):
            await trio.sleep(0.02)
        return True
    return False


async def run_program(launcher: VesselLauncher, program: Program, vessel_dir: Path, host_rss: int) -> Outcome:
    """Run one program to its end (or, if it is a CPU hog, for THROTTLE_WINDOW), then probe the host: the
    processes are gone, a trivial vessel still runs on the same launcher, and how much this process grew
    since `host_rss` was measured."""
    started = time.monotonic()
    handle = await start_vessel(launcher, vessel_dir, program.path.read_text(encoding="utf-8"),
                                resources=program.resources)
    outcome = Outcome(handle, elapsed=0.0)
    if program.kind == "throttled":
        outcome.cpu_share = await watch_cpu_share(handle, started)
        outcome.ran_until_stopped = handle.running
        await handle.stop()
    else:
        with trio.move_on_after(VESSEL_DEADLINE) as scope:
            await handle.wait()
        if scope.cancelled_caught:
            outcome.timed_out = True
            await handle.stop()
    outcome.elapsed = time.monotonic() - started
    assert handle.pid is not None and handle.supervisor_pid is not None
    outcome.pid_gone = not psutil.pid_exists(handle.pid)
    outcome.supervisor_gone = await gone_within(handle.supervisor_pid, SUPERVISOR_EXIT_TIMEOUT)
    followup = await start_vessel(launcher, vessel_dir.parent / "followup", "log('alive')\n")
    with trio.move_on_after(VESSEL_DEADLINE):
        await followup.wait()
    await followup.stop()
    outcome.followup = followup
    assert followup.supervisor_pid is not None
    outcome.supervisor_gone &= await gone_within(followup.supervisor_pid, SUPERVISOR_EXIT_TIMEOUT)
    outcome.host_rss_growth = psutil.Process().memory_info().rss - host_rss
    return outcome


async def settled_descendants(host: psutil.Process, expected: int) -> list[int]:
    """The pids below `host` once at most `expected` remain, or after SUPERVISOR_EXIT_TIMEOUT: processes
    that have reported their end may still take a moment to exit."""
    with trio.move_on_after(SUPERVISOR_EXIT_TIMEOUT):
        while len(host.children(recursive=True)) > expected:
            await trio.sleep(0.02)
    return [process.pid for process in host.children(recursive=True)]


@dataclass
class CorpusRun:
    """Every outcome of one corpus run, and the host's state after all of them."""

    outcomes: dict[str, Outcome]
    host_rss_growth: int
    #: Processes below this one while the launcher was still open (the zygote) and after it closed.
    descendants_open: list[int]
    descendants_closed: list[int]


async def run_corpus(programs: list[Program], workdir: Path) -> CorpusRun:
    """Run `programs` on one launcher, MAX_CONCURRENT at a time, the long-running kinds first."""
    host = psutil.Process()
    host_rss = host.memory_info().rss
    outcomes: dict[str, Outcome] = {}
    limiter = trio.CapacityLimiter(MAX_CONCURRENT)
    order = sorted(programs, key=lambda p: p.kind not in ("throttled", "rate"))

    async def one(launcher: VesselLauncher, program: Program) -> None:
        async with limiter:
            outcomes[program.name] = await run_program(launcher, program, workdir / program.name / "vessel",
                                                       host_rss)

    async with VesselLauncher() as launcher:
        async with trio.open_nursery() as nursery:
            for program in order:
                nursery.start_soon(one, launcher, program)
        descendants_open = await settled_descendants(host, 1)
    return CorpusRun(outcomes, host.memory_info().rss - host_rss, descendants_open,
                     await settled_descendants(host, 0))


def selected_programs(request: pytest.FixtureRequest) -> list[Program]:
    """The corpus programs this session's selected tests need: all of them unless only per-program tests
    are selected."""
    items = [item for item in request.session.items
             if item.path == request.path and "corpus" in getattr(item, "fixturenames", ())]
    names = {item.callspec.params["program"].name for item in items if hasattr(item, "callspec")}
    if len(names) < len(items):  # a test about the whole corpus is selected too
        return PROGRAMS
    return [program for program in PROGRAMS if program.name in names]


@pytest.fixture(scope="module")
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    return trio.run(run_corpus, selected_programs(request), tmp_path_factory.mktemp("exhaustion"))


def last_line(handle: VesselHandle) -> str:
    lines = [line for line in log_text(handle).splitlines() if line.strip()]
    return lines[-1] if lines else ""


def check_expectation(program: Program, outcome: Outcome) -> None:
    handle = outcome.handle
    tail = log_text(handle)[-1500:]
    context = f"{program.name}: exit {handle.exit_code} ({handle.reason}), log tail:\n{tail}"
    if program.kind == "throttled":
        share, limit = outcome.cpu_share, 2 * program.resources["cpu"] + 0.1
        assert outcome.ran_until_stopped, f"the CPU hog ended by itself; {context}"
        assert handle.exit_code == EXIT_STOPPED and handle.status == VesselStatus.STOPPED, context
        assert share is not None and 0 < share < limit, f"CPU share {share} not in (0, {limit}); {context}"
    elif program.kind in ("killed-memory", "killed-disk"):
        resource = program.kind.removeprefix("killed-")
        assert handle.exit_code == EXIT_RESOURCE_KILL, context
        assert handle.status == VesselStatus.TERMINATED, context
        killers = ("nanny killed", "kernel's memory limit killed") if resource == "memory" else ("nanny killed",)
        assert resource in handle.reason and any(killer in handle.reason for killer in killers), context
        assert last_line(handle).startswith("Killed: "), context
    elif program.kind == "error":
        line = last_line(handle)
        assert handle.exit_code == EXIT_UNCAUGHT, context
        assert line == program.detail or line.startswith(program.detail + ": "), (
            f"the last line is not {program.detail}; {context}")
        assert program.message in line, f"{program.message!r} is not in {line!r}"
    else:
        assert handle.exit_code == EXIT_NORMAL, context
        match = _FLOOD_LINE.search(last_line(handle))
        assert match, f"no FLOOD line at the end; {context}"
        amount, seconds, call = int(match[1]), float(match[2]), int(match[3])
        rate = float(program.resources[program.detail])
        bound = rate * seconds * (1 + RATE_MARGIN) + call
        assert 0 < amount <= bound, f"{amount} bytes in {seconds:.2f} s > {bound:.0f} allowed; {context}"


def check_host(program: Program, outcome: Outcome) -> None:
    handle = outcome.handle
    assert not outcome.timed_out, f"{program.name} still ran after {VESSEL_DEADLINE} s:\n{log_text(handle)}"
    assert outcome.elapsed < VESSEL_DEADLINE
    assert outcome.pid_gone, f"the vessel process {handle.pid} of {program.name} outlived its vessel"
    assert outcome.supervisor_gone, f"the supervisor {handle.supervisor_pid} of {program.name} did not exit"
    assert outcome.host_rss_growth < HOST_RSS_GROWTH, (
        f"the host grew by {outcome.host_rss_growth:,} bytes while {program.name} ran")
    assert len(handle.log.read()) <= LOG_CAPACITY
    followup = outcome.followup
    assert followup is not None
    assert followup.exit_code == EXIT_NORMAL and log_text(followup) == "alive", (
        f"the launcher could not run a trivial vessel after {program.name}: exit {followup.exit_code}, "
        f"{followup.reason}, log {log_text(followup)!r}")


@pytest.mark.slow
@pytest.mark.parametrize("program", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_program_is_contained_and_the_host_unaffected(program: Program, corpus: CorpusRun) -> None:
    outcome = corpus.outcomes[program.name]
    check_expectation(program, outcome)
    check_host(program, outcome)


@pytest.mark.slow
def test_the_host_is_clean_after_the_whole_corpus(corpus: CorpusRun) -> None:
    assert corpus.host_rss_growth < HOST_RSS_GROWTH, f"the host grew by {corpus.host_rss_growth:,} bytes"
    # The zygote, and its spare: a supervisor and a vessel process forked ahead of the next request.
    assert len(corpus.descendants_open) == 3, (
        f"processes left while the launcher was open (only the zygote and its spare pair should be): "
        f"{corpus.descendants_open}")
    assert corpus.descendants_closed == [], (
        f"processes left after the launcher closed: {corpus.descendants_closed}")


@pytest.mark.slow
def test_a_log_flood_overflows_the_circular_log_but_the_host_keeps_only_its_tail(corpus: CorpusRun) -> None:
    outcome = corpus.outcomes["flood_log_past_buffer"]
    match = _FLOOD_LINE.search(log_text(outcome.handle))
    assert match and int(match[1]) > 10 * LOG_CAPACITY
    assert len(outcome.handle.log.read()) == LOG_CAPACITY


def test_the_corpus_covers_every_kind_of_exhaustion() -> None:
    assert len(PROGRAMS) >= 25
    prefixes = {p.name.split("_", 1)[0] for p in PROGRAMS}
    categories = {"cpu", "memory", "hugeint", "recursion", "threads", "files", "disk", "sockets", "flood"}
    assert categories <= prefixes, f"no program in {sorted(categories - prefixes)}"
    assert {p.kind for p in PROGRAMS} == set(KINDS)
    exhausted_items = {p.message.split(":", 1)[0] for p in PROGRAMS
                       if p.detail == "ResourceExhaustedError"}
    assert exhausted_items >= ITEMS, f"no program runs out of {sorted(ITEMS - exhausted_items)}"
    assert {"loopsend", "filewrite", "random", "lograte"} <= {p.detail for p in PROGRAMS if p.kind == "rate"}


def test_a_bad_header_is_refused_with_the_file_and_the_reason(tmp_path: Path) -> None:
    cases = {
        "# attack: x\n": "no '# expect:' line",
        "# attack: x\n# expect: exploded\n": "the kind must be one of",
        "# attack: x\n# expect: rate:cpu\n": "does not name a metered rate",
        "# attack: x\n# expect: error:ResourceExhaustedError\n# allotment: events\n": "is not name=value",
        "# attack: x\n# expect: error:MemoryError\n# allotment: events=many\n": "is not a number",
        "# attack: x\n# expect: error:MemoryError\n# allotment: evnts=4\n": "evnts",
        "# attack: x\n# expect: throttled\n": "small cpu allotment",
    }
    for number, (text, reason) in enumerate(cases.items()):
        path = tmp_path / f"bad{number}.py"
        path.write_text(text)
        with pytest.raises(CorpusHeaderError, match=re.escape(reason)) as caught:
            Program.load(path)
        assert path.name in str(caught.value)


def test_a_port_range_in_the_allotment_becomes_the_port_set(tmp_path: Path) -> None:
    resources = parse_allotment(tmp_path / "p.py",
                                "insockets=3, messport=61400-61402, connport=61405, cpu=0.1")
    assert resources.messport == frozenset({61400, 61401, 61402})
    assert resources.connport == frozenset({61405})
    assert resources["insockets"] == 3 and resources["cpu"] == 0.1
