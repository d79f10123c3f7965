"""Run the `seattle` command inside the test process, with click's `CliRunner`.

Why: starting `python -m seattle.cli` costs a fresh interpreter and its imports (~0.3 s) per command, and the CLI
tests run hundreds of commands. In process, a command sees the same SEATTLE_HOME (the autouse fixture sets it in
`os.environ`), gets its own stdin, stdout and stderr, and its exit code is reported as a subprocess's would be,
so a test reads the same whether the command ran here or in a child. Commands that must be separate processes
(a daemon in the foreground, anything that must outlive the test) still use `subprocess`; so does the one smoke
test per entry point in `tests/cli/test_entry_points.py`.

Commands that call `trio.run` work from a sync test; an async (pytest-trio) test must call `seattle` through
`trio.to_thread.run_sync`, since trio refuses to start a loop inside a running one.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from seattle.cli.main import main


@dataclass(frozen=True)
class CliResult:
    """What a finished command left behind, named as `subprocess.CompletedProcess` names it."""

    returncode: int
    stdout: str
    stderr: str
    stdout_bytes: bytes
    stderr_bytes: bytes


def seattle(*args: str, stdin: bytes | str | None = None, env: Mapping[str, str] | None = None,
            cwd: Path | None = None) -> CliResult:
    """`seattle ARGS...` in process; `env` entries are set on top of the test's environment while it runs.

    An exception the command did not turn into an exit code becomes exit code 1 with its traceback on stderr,
    which is what the interpreter would have done in a subprocess.
    """
    runner = CliRunner()
    with contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext():
        result = runner.invoke(main, list(args), input=stdin, env=dict(env) if env is not None else None,
                               prog_name="seattle")
    stderr_bytes = result.stderr_bytes
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert result.exc_info is not None
        stderr_bytes += "".join(traceback.format_exception(*result.exc_info)).encode()
    return CliResult(result.exit_code, result.stdout_bytes.decode(errors="replace"),
                     stderr_bytes.decode(errors="replace"), result.stdout_bytes, stderr_bytes)


def ok(*args: str, stdin: bytes | str | None = None, env: Mapping[str, str] | None = None,
       cwd: Path | None = None) -> str:
    """`seattle ARGS...` in process, asserting exit code 0 (the failure shows stdout and stderr); its stdout."""
    result = seattle(*args, stdin=stdin, env=env, cwd=cwd)
    assert result.returncode == 0, f"seattle {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout
