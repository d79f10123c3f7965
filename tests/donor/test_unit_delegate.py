"""The node's systemd unit asks for its cgroup subtree, so vessels get the kernel's CPU and memory limits."""

from __future__ import annotations

import configparser
from pathlib import Path

from seattle.donor.service import unit_text


def test_the_service_section_delegates_the_cgroup_subtree(tmp_path: Path) -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read_string(unit_text(tmp_path, python="/usr/bin/python3"))
    assert unit["Service"]["Delegate"] == "yes"
