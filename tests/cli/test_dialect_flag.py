"""`--dialect` on `seattle vessel run`, `seattle run` and `seattle start` (real vessels and node managers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_research import NodesInThread, alice, ok, two_nodes, wait_for_logs
from tests.cli_runner import seattle

__all__ = ["alice", "two_nodes"]  # fixtures, used by name

ORIGINAL = "print 'original', callargs, 7 / 2\n"


@pytest.mark.slow
def test_vessel_run_takes_a_dialect(tmp_path: Path) -> None:
    program = tmp_path / "prog.r2py"
    program.write_text(ORIGINAL)
    result = seattle("vessel", "run", "--dialect", "repyV2", str(program), "a")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "original ['a'] 3\n"
    hinted = seattle("vessel", "run", str(program))
    assert hinted.returncode != 0 and "run it with --dialect repyV2" in hinted.stdout


def test_an_unknown_dialect_is_a_usage_error(tmp_path: Path) -> None:
    program = tmp_path / "prog.r2py"
    program.write_text(ORIGINAL)
    for command in (("vessel", "run"), ("run",), ("start",)):
        result = seattle(*command, "--dialect", "repyV9", str(program))
        assert result.returncode == 2 and "repyV9" in result.stderr


@pytest.mark.slow
def test_run_and_start_on_node_managers_take_a_dialect(two_nodes: NodesInThread, tmp_path: Path) -> None:
    for address in two_nodes.addresses:
        ok("contact", address)
    program = tmp_path / "prog.r2py"
    program.write_text(ORIGINAL)
    assert "3 of 3 vessels ok" in ok("run", "--dialect", "repyV2", str(program), "x")
    assert wait_for_logs("original ['x'] 3", 3).count("--- %") == 3
    ok("reset")
    ok("upload", str(program))
    assert "3 of 3 vessels ok" in ok("start", "--dialect", "repyV1", "prog.r2py", "y")
    wait_for_logs("original ['y'] 3", 3)
