"""Fixtures shared by the test suite."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from seattle.vessel.launcher import VesselLauncher


@pytest.fixture(autouse=True)
def isolated_seattle_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own SEATTLE_HOME, so no test reads or writes the developer's keys."""
    monkeypatch.setenv("SEATTLE_HOME", os.fspath(tmp_path_factory.mktemp("seattle-home")))


@pytest.fixture
async def launcher() -> AsyncIterator[VesselLauncher]:
    async with VesselLauncher() as vessel_launcher:
        yield vessel_launcher
