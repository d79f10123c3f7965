"""Fixtures shared by the test suite."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from seattle.vessel.host.launcher import VesselLauncher
from tests.api_harness import Harness, vessel


@pytest.fixture(autouse=True)
def isolated_seattle_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own SEATTLE_HOME, so no test reads or writes the developer's keys."""
    monkeypatch.setenv("SEATTLE_HOME", os.fspath(tmp_path_factory.mktemp("seattle-home")))


@pytest.fixture
async def launcher() -> AsyncIterator[VesselLauncher]:
    async with VesselLauncher() as vessel_launcher:
        yield vessel_launcher


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    """A VesselContext over a fresh vessel directory, for calling API modules in-process."""
    with vessel(tmp_path / "vessel") as h:
        yield h
