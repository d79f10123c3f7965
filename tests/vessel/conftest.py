"""Fixtures shared by the vessel tests."""

from __future__ import annotations

import pytest

from seattle.vessel.oslayer.cgroups import CgroupSupport, detect_cgroups


@pytest.fixture
def support() -> CgroupSupport:
    """The host's cgroup layer; the test is skipped, with the reason, where the host offers none."""
    found = detect_cgroups()
    if not found.available:
        pytest.skip(f"no cgroup layer here: {found.reason}")
    return found
