"""`seattle demo` end to end, as a user runs it: a subprocess with no configuration, real node managers,
real vessels pinging each other over UDP on loopback; afterwards nothing of it may be left running or on disk.
The demo runs as a subprocess because its temporary directory (TMPDIR) and its processes are checked from outside
and Ctrl-C goes to it alone; a usage error, which starts nothing, is checked in process.

Each test points TMPDIR at a directory of its own, so the demo's temporary directory is created there and
the test can see that it is gone; processes are recognised by that path in their command line or
environment (the node managers and the sandbox processes they start inherit it).
"""

from __future__ import annotations

import io
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from rich.console import Console

from seattle.cli.demo import print_latency_table
from seattle.demo.matrix import LatencyMatrix, build_matrix, finished, parse_rtts
from tests.cli_runner import seattle

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DEMO_TIMEOUT = 90


def demo_env(tmp_path: Path) -> dict[str, str]:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    return {**os.environ, "TMPDIR": str(scratch)}


def processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.pid != os.getpid() and (text in " ".join(process.cmdline())
                                               or any(text in value for value in process.environ().values())):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def assert_nothing_left(tmp_path: Path) -> None:
    assert list((tmp_path / "tmp").iterdir()) == [], "the demo's temporary directory is removed"
    _, alive = psutil.wait_procs(processes_mentioning(str(tmp_path / "tmp")), timeout=10)
    assert alive == [], [p.cmdline() for p in alive]


@pytest.mark.slow
def test_the_demo_runs_end_to_end_and_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "latency.png"
    result = subprocess.run([sys.executable, "-m", "seattle.cli", "demo", "--out", str(out)],
                            capture_output=True, env=demo_env(tmp_path), timeout=DEMO_TIMEOUT, cwd=tmp_path)
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, stdout + stderr
    assert "the researcher's key finds its 8 vessels on 4 nodes" in stdout
    assert "All 8 vessels reported: 56 of 56 pairs measured" in stdout
    labels = [f"n{node}/v{vessel}" for node in range(4) for vessel in (1, 2)]
    table = [[cell.strip() for cell in line.split("│")[1:-1]] for line in stdout.splitlines()
             if line.startswith("│ n")]
    rows = {cells[0]: cells[1:] for cells in table}
    assert sorted(rows) == labels, stdout
    for row, cells in rows.items():
        for column, cell in zip(labels, cells, strict=True):
            if row == column:
                assert cell == "·"
            else:
                assert re.fullmatch(r"\d+\.\d{3}", cell) and float(cell) > 0, (row, column, cell)
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and 10_000 < len(data) < 2_000_000
    assert not (tmp_path / "seattle-demo.png").exists(), "--out is honoured"
    assert list(Path(os.environ["SEATTLE_HOME"]).rglob("*")) == [], "the user's SEATTLE_HOME is not touched"
    assert_nothing_left(tmp_path)


@pytest.mark.slow
def test_ctrl_c_during_the_demo_stops_everything(tmp_path: Path) -> None:
    demo = subprocess.Popen([sys.executable, "-m", "seattle.cli", "demo", "--out", str(tmp_path / "x.png")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=demo_env(tmp_path))
    assert demo.stdout is not None
    seen = b""
    deadline = time.monotonic() + DEMO_TIMEOUT
    try:
        while b"Started 4 node managers" not in seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0 and select.select([demo.stdout], [], [], remaining)[0], seen
            chunk = os.read(demo.stdout.fileno(), 4096)
            assert chunk, seen + (demo.stderr.read() if demo.stderr else b"")
            seen += chunk
        assert processes_mentioning(str(tmp_path / "tmp")), "the node managers are running"
        demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=DEMO_TIMEOUT)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert code == 1
    err = demo.stderr.read().decode() if demo.stderr else ""
    assert "Aborted!" in err and "Traceback" not in err, err
    assert not (tmp_path / "x.png").exists()
    assert_nothing_left(tmp_path)


def test_a_bad_output_path_is_refused_before_anything_starts(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "x.png"
    result = seattle("demo", "--out", str(out), env=demo_env(tmp_path))
    assert result.returncode == 2
    assert str(out) in result.stderr and "does not exist" in result.stderr
    assert_nothing_left(tmp_path)


def test_the_program_output_becomes_a_matrix() -> None:
    addresses = ["127.0.0.1:61001", "127.0.0.1:61002", "127.0.0.1:61003"]
    log = ("rtt 127.0.0.1:61001 127.0.0.1:61002 0.512 0.400 10 12\n"
           "rtt 127.0.0.1:61001 127.0.0.1:61003 - - 0 400\n"
           "rtt 127.0.0.1:61001 127.0.0.1:9 1.0 1.0 1 1\n"
           "garbage line\n")
    assert not finished(log) and finished(log + "done\n")
    rtts = parse_rtts(log, addresses)
    assert rtts == {(0, 1): 0.512}
    matrix = build_matrix(["a", "b", "c"], rtts)
    assert matrix.rtt_ms[0] == (None, 0.512, None)
    assert ("a", "c") in matrix.missing() and ("a", "b") not in matrix.missing()
    assert matrix.values() == [0.512]


def test_the_matrix_prints_every_latency_whole_on_a_narrow_output() -> None:
    labels = [f"n{node}/v{vessel}" for node in range(4) for vessel in (1, 2)]
    rtt = [[None if a == b else 100.125 + a for b in range(8)] for a in range(8)]
    output = io.StringIO()
    print_latency_table(LatencyMatrix(labels, rtt), Console(width=80, file=output))
    text = output.getvalue()
    assert "…" not in text
    assert text.count("107.125") == 7 and text.count("100.125") == 7
