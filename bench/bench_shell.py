"""The researcher's command at scale: fan-out to 200 vessels on 20 node managers, browse, and start-up time.

    python bench/bench_shell.py

Twenty node managers run on 127.0.0.1 in this process (one trio loop on a background thread, overlay on, each
joining through the first), each with ten vessels (the layout a node gets when its first vessel is split into
ten), all owned by one identity. Every `seattle` command runs as a subprocess with its own SEATTLE_HOME, as a
researcher would run it, so its time includes interpreter start-up.

* fan-out: `seattle run` of a 10 KB program on all 200 vessels (upload + start, each vessel sandboxed), wall
  time of the command, and the rate per vessel. The vessels are stopped afterwards (`seattle stop`, timed too).
* browse: `seattle browse` (join the overlay as a light client, find the records, GetVessels on 20 nodes),
  median of 3 runs once the nodes have advertised.
* start-up: `seattle --help` and `seattle show targets`, median of 7 runs.
The exit status is 1 if a goal is missed.
"""

from __future__ import annotations

import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import AsyncExitStack
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.table import Row, print_table  # noqa: E402
from seattle.keys import generate_identity, save_identity  # noqa: E402
from seattle.nodemgr.node import NodeManager, init_node  # noqa: E402
from seattle.resources import DEFAULT_ALLOTMENT  # noqa: E402

NODES = 20
VESSELS_PER_NODE = 10
PROGRAM = (b"# padding to 10 KB\n" + b"#" * 79 + b"\n") * 100 + b'log("up\\n")\nwhile True:\n  sleep(1)\n'
GOAL_FANOUT_S = 10.0
GOAL_BROWSE_S = 3.0
GOAL_STARTUP_MS = 300.0


def seattle(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "seattle.cli", *args], capture_output=True, text=True,
                            timeout=600)
    return time.perf_counter() - started, result


def checked(*args: str) -> float:
    elapsed, result = seattle(*args)
    if result.returncode != 0:
        raise SystemExit(f"seattle {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return elapsed


def start_nodes(directories: list[Path]) -> tuple[list[int], threading.Event]:
    """The node managers on a background thread; their ports, and the event that stops them."""
    ready: queue.Queue[object] = queue.Queue()
    stop = threading.Event()

    async def main() -> None:
        async with AsyncExitStack() as stack:
            ports: list[int] = []
            for directory in directories:
                bootstrap = [("127.0.0.1", ports[0])] if ports else []
                nm = await stack.enter_async_context(
                    NodeManager(directory, "127.0.0.1", 0, overlay=True, bootstrap=bootstrap))
                ports.append(nm.port)
            ready.put(ports)
            while not stop.is_set():
                await trio.sleep(0.2)

    thread = threading.Thread(target=lambda: trio.run(main), daemon=True)
    thread.start()
    ports = ready.get(timeout=300)
    assert isinstance(ports, list)
    return ports, stop


def make_nodes(base: Path) -> list[Path]:
    owner = generate_identity("researcher")
    save_identity(owner)
    directories = []
    for index in range(NODES):
        layout = [(DEFAULT_ALLOTMENT.replace(cpu=0.02, memory=32 << 20, diskused=2 << 20,
                                             messport=frozenset({63100 + i}), connport=frozenset({63100 + i})),
                   owner.public_key, ()) for i in range(VESSELS_PER_NODE)]
        init_node(base / f"node{index}", owner.public_key, layout)
        directories.append(base / f"node{index}")
    return directories


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        os.environ["SEATTLE_HOME"] = str(base / "home")
        ports, stop = start_nodes(make_nodes(base))
        try:
            checked("as", "researcher")
            bootstrap = f"127.0.0.1:{ports[0]}"
            deadline = time.monotonic() + 120
            while True:  # the nodes advertise shortly after they start
                _, result = seattle("browse", "--bootstrap", bootstrap, "--timeout", "5")
                if f"found {NODES * VESSELS_PER_NODE} vessels" in result.stdout:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"browse never found every vessel:\n{result.stdout[-500:]}{result.stderr}")
                time.sleep(1)
            browse_s = statistics.median(checked("browse", "--bootstrap", bootstrap) for _ in range(3))

            program = base / "ten_kb.r2py"
            program.write_bytes(PROGRAM)
            fanout_s = checked("run", "--on", "browsegood", str(program))
            stop_s = checked("stop", "--on", "rungood")
            help_ms = 1000 * statistics.median(checked("--help") for _ in range(7))
            show_ms = 1000 * statistics.median(checked("show", "targets") for _ in range(7))
        finally:
            stop.set()
            time.sleep(2)
    vessels = NODES * VESSELS_PER_NODE
    rows = [
        Row(f"upload 10 KB + start on {vessels} vessels ({NODES} nodes), wall", f"< {GOAL_FANOUT_S:g} s",
            f"{fanout_s:.2f} s", fanout_s < GOAL_FANOUT_S),
        Row("  per-vessel rate", "-", f"{vessels / fanout_s:.0f} vessels/s", None),
        Row(f"stop {vessels} vessels, wall", "-", f"{stop_s:.2f} s", None),
        Row(f"browse: {NODES} nodes, {vessels} vessels (median of 3)", f"< {GOAL_BROWSE_S:g} s",
            f"{browse_s:.2f} s", browse_s < GOAL_BROWSE_S),
        Row("`seattle --help` start-up (median of 7)", f"< {GOAL_STARTUP_MS:g} ms", f"{help_ms:.0f} ms",
            help_ms < GOAL_STARTUP_MS),
        Row("`seattle show targets` start-up (median of 7)", f"< {GOAL_STARTUP_MS:g} ms", f"{show_ms:.0f} ms",
            show_ms < GOAL_STARTUP_MS),
    ]
    print_table("The researcher's command on 127.0.0.1", rows)
    missed = [row.figure for row in rows if row.met is False]
    print("verdict: " + ("every goal met" if not missed else f"missed: {'; '.join(missed)}"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
