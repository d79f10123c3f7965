"""One subprocess smoke test per entry point: the `seattle` console script and `python -m seattle.cli`.

Every other CLI test runs the command in process (tests/cli_runner.py), which skips the parts only a real
process exercises: the entry point's wiring, the lazy imports from a cold interpreter, the exit code the shell
sees. These two tests cover exactly that, with `--help` (every subcommand listed) and one real command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from seattle.cli.main import COMMANDS
from seattle.keys import load_identity

pytestmark = pytest.mark.slow

CONSOLE_SCRIPT = Path(sys.executable).parent / "seattle"


def _smoke(command: list[str]) -> None:
    """`--help` lists every subcommand, `keygen` writes an identity to SEATTLE_HOME, a usage error exits 2."""
    shown = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert all(name in shown.stdout for name in COMMANDS)
    made = subprocess.run([*command, "keygen", "smoke"], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert load_identity("smoke").public_key.fingerprint() in made.stdout
    assert (Path(os.environ["SEATTLE_HOME"]) / "keys" / "smoke.privatekey").exists()
    wrong = subprocess.run([*command, "no-such-command"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "No such command" in wrong.stderr


def test_the_seattle_console_script_runs_as_a_process() -> None:
    assert CONSOLE_SCRIPT.exists(), f"{CONSOLE_SCRIPT} is missing: install the package (pip install -e .)"
    _smoke([str(CONSOLE_SCRIPT)])


def test_python_m_seattle_cli_runs_as_a_process() -> None:
    _smoke([sys.executable, "-m", "seattle.cli"])
