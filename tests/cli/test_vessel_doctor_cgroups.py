"""`seattle vessel doctor` says which layer holds a vessel's CPU share and memory here, and why."""

from __future__ import annotations

import pytest

from seattle.vessel.oslayer.cgroups import SWITCH_VARIABLE, detect_cgroups
from tests.cli_runner import seattle

pytestmark = pytest.mark.slow  # doctor probes the host in a forked child

WIDE = {"COLUMNS": "400"}  # one table row per line, so a reason is never split across lines


def test_doctor_reports_the_cgroup_layer_and_its_period() -> None:
    found = detect_cgroups()
    if not found.available:
        pytest.skip(f"no cgroup layer here: {found.reason}")
    result = seattle("vessel", "doctor", env=WIDE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert found.reason in result.stdout
    assert f"CPU and memory limits: cgroup {found.kind}" in result.stdout
    assert "5-ms period" in result.stdout


def test_doctor_reports_the_nanny_and_why_when_the_layer_is_off() -> None:
    result = seattle("vessel", "doctor", env={**WIDE, SWITCH_VARIABLE: "off"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"switched off by {SWITCH_VARIABLE}=off" in result.stdout
    assert "CPU and memory limits: the nanny" in result.stdout
