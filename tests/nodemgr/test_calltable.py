"""seattle.nodemgr.calltable: the call table clients read without loading the sandbox."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_the_call_command_loads_no_sandbox_module_beyond_the_file_name_rules() -> None:
    probe = "import sys, seattle.cli.call; print(sorted(m for m in sys.modules if m.startswith('seattle.vessel')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['seattle.vessel', 'seattle.vessel.filenames']"
