"""`seattle vessel run` and `seattle vessel doctor` through the command line (in process; the vessels are real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seattle.vessel.status import EXIT_CODE_UNSAFE, EXIT_UNCAUGHT
from tests.cli_runner import seattle

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.slow
def test_run_prints_the_log_and_exits_zero() -> None:
    result = seattle("vessel", "run", str(EXAMPLES / "hello.py"), "one", "two")
    assert result.returncode == 0, result.stderr
    assert "hello from a vessel; arguments: ['one', 'two']" in result.stdout


@pytest.mark.slow
def test_run_reports_an_uncaught_exception(tmp_path: Path) -> None:
    program = tmp_path / "boom.py"
    program.write_text("x = {}\nx['missing']\n")
    result = seattle("vessel", "run", str(program))
    assert result.returncode == EXIT_UNCAUGHT
    assert "KeyError" in result.stdout
    assert "uncaught exception" in result.stderr


@pytest.mark.slow
def test_run_reports_unsafe_code(tmp_path: Path) -> None:
    program = tmp_path / "unsafe.py"
    program.write_text("print(().__class__)\n")
    result = seattle("vessel", "run", str(program))
    assert result.returncode == EXIT_CODE_UNSAFE
    assert "CodeUnsafeError" in result.stdout and "line 1" in result.stdout


@pytest.mark.slow
def test_run_with_a_resource_file(tmp_path: Path) -> None:
    resources = tmp_path / "small.resources"
    resources.write_text("resource cpu 0.25\nresource memory 100000000\nresource diskused 1000000\n"
                         "resource events 4\nresource filesopened 2\nresource lograte 10000\n")
    program = tmp_path / "limits.py"
    program.write_text("limits, usage, stops = getresources()\nprint(limits['cpu'], limits['events'])\n")
    result = seattle("vessel", "run", "--resources", str(resources), str(program))
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip() == "0.25 4"


def test_bad_resource_file_is_named_with_its_line(tmp_path: Path) -> None:
    resources = tmp_path / "bad.resources"
    resources.write_text("resource cpu 0.25\nresource memry 100\n")
    result = seattle("vessel", "run", "--resources", str(resources), str(EXAMPLES / "hello.py"))
    assert result.returncode != 0
    assert "bad.resources:2" in result.stderr and "memry" in result.stderr


def test_missing_program_is_a_clear_error(tmp_path: Path) -> None:
    result = seattle("vessel", "run", str(tmp_path / "nope.py"))
    assert result.returncode != 0
    assert "nope.py" in result.stderr and "does not exist" in result.stderr


@pytest.mark.slow
def test_doctor_reports_every_layer() -> None:
    result = seattle("vessel", "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    for layer in ("language", "rlimits", "namespaces", "landlock", "seccomp"):
        assert layer in result.stdout
