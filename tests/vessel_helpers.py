"""Shared helpers for tests that run real vessels through the launcher."""

from __future__ import annotations

from pathlib import Path

import trio

from seattle.resources import DEFAULT_ALLOTMENT, Resources
from seattle.vessel.host.launcher import VesselHandle, VesselLauncher
from seattle.vessel.spec import VesselSpec

#: A vessel that has not ended after this long is a failed test, not a hang.
VESSEL_TIMEOUT = 60.0


async def start_vessel(launcher: VesselLauncher, vessel_dir: Path, source: str, *,
                       resources: Resources = DEFAULT_ALLOTMENT, args: tuple[str, ...] = (),
                       layers: frozenset[str] = frozenset(), name: str = "program.py",
                       local_ips: tuple[str, ...] = ("127.0.0.1",)) -> VesselHandle:
    vessel_dir.mkdir(parents=True, exist_ok=True)
    (vessel_dir / name).write_text(source)
    spec = VesselSpec(vessel_dir=vessel_dir, program=name, resources=resources, args=args, layers=layers,
                      local_ips=local_ips)
    return await launcher.start(spec)


async def run_vessel(launcher: VesselLauncher, vessel_dir: Path, source: str, *,
                     timeout: float = VESSEL_TIMEOUT, **kwargs: object) -> VesselHandle:
    """Run a program to its end; a program still running after `timeout` fails the test."""
    handle = await start_vessel(launcher, vessel_dir, source, **kwargs)  # type: ignore[arg-type]
    with trio.move_on_after(timeout) as scope:
        await handle.wait()
    if scope.cancelled_caught:
        await handle.stop()
        raise AssertionError(f"vessel still running after {timeout} s; log:\n{handle.log.read().decode()}")
    return handle


def log_text(handle: VesselHandle) -> str:
    return handle.log.read().decode(errors="replace")
