"""The fuzz targets of fuzz/: saved inputs replayed in the fast lane, each target fuzzed briefly under atheris.

Each atheris run is a subprocess (`atheris.Setup`/`Fuzz` take the process over and exit it) bounded by
FUZZ_SECONDS; the nine take under a minute together. A crash fails the test with libFuzzer's report, which
holds the input (also written to the test's temporary directory as crash-<sha1>): save it in
fuzz/regressions/<target>/ so it stays fixed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.targets import TARGETS, regression_inputs

ROOT = Path(__file__).resolve().parent.parent
FUZZ_SECONDS = 4


def _cases() -> list[object]:
    return [pytest.param(name, path, id=f"{name}/{path.name}") for name in TARGETS for path in regression_inputs(name)]


@pytest.mark.parametrize(("name", "path"), _cases())
def test_saved_input_is_handled(name: str, path: Path) -> None:
    TARGETS[name](path.read_bytes())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_target_finds_no_crash(name: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "run.py"), name, f"-max_total_time={FUZZ_SECONDS}",
         f"-artifact_prefix={tmp_path}/", "-rss_limit_mb=1024"],
        capture_output=True, text=True, timeout=FUZZ_SECONDS * 6, cwd=tmp_path)
    assert result.returncode == 0, f"fuzz target {name} crashed:\n{result.stderr[-6000:]}"
