"""seattle.nodemgr.calltable: the call table clients read without loading the sandbox."""

from __future__ import annotations

import subprocess
import sys

from seattle.vessel.api.files import MAX_FILENAME as VESSEL_MAX_FILENAME

from seattle.nodemgr.calltable import MAX_FILENAME


def test_the_file_name_bound_is_the_vessels() -> None:
    assert MAX_FILENAME == VESSEL_MAX_FILENAME


def test_the_call_command_does_not_import_the_sandbox() -> None:
    probe = "import sys, seattle.cli.call; print(sorted(m for m in sys.modules if m.startswith('seattle.vessel')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
