"""Running one program locally the way a vessel would (the successor of the original `repy.py`)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from seattle.errors import BadResourceFile, ProgramNotFound
from seattle.resources import DEFAULT_ALLOTMENT, ResourceParseError, Resources, load_resources
from seattle.vessel.host.launcher import OutputCallback, VesselHandle, run_until_done
from seattle.vessel.spec import PYTHON3, VesselSpec


def load_allotment(path: Path | None) -> Resources:
    """The allotment from a resource file, or the default one; parse errors become a user-facing error."""
    if path is None:
        return DEFAULT_ALLOTMENT
    try:
        return load_resources(path)
    except ResourceParseError as exc:
        raise BadResourceFile(str(exc)) from None
    except OSError as exc:
        raise BadResourceFile(f"{path}: {exc.strerror}") from None


@contextmanager
def vessel_directory(program: Path, directory: Path | None) -> Iterator[Path]:
    """The directory the program runs in, with the program copied into it.

    Without `directory`, a fresh temporary one that is removed afterwards, so a local run leaves nothing behind.
    """
    if not program.is_file():
        raise ProgramNotFound(str(program))
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        if (directory / program.name).resolve() != program.resolve():
            shutil.copyfile(program, directory / program.name)
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix="seattle-vessel-") as tmp:
        shutil.copyfile(program, Path(tmp) / program.name)
        yield Path(tmp)


def run_program_locally(
    program: Path,
    args: tuple[str, ...],
    *,
    resources: Resources,
    on_output: OutputCallback,
    directory: Path | None = None,
    layers: frozenset[str] = frozenset(),
    local_ips: tuple[str, ...] = (),
    allow_unconfined: bool = False,
    timeout: float = float("inf"),
    platform: str = PYTHON3,
) -> VesselHandle:
    """Run `program` (in the dialect `platform`) in a vessel until it ends (or `timeout` passes) and return its
    final handle."""
    with vessel_directory(program, directory) as vessel_dir:
        spec = VesselSpec(vessel_dir=vessel_dir, program=program.name, resources=resources, args=args,
                          layers=layers, local_ips=local_ips, platform=platform)
        return run_until_done({"allow_unconfined": allow_unconfined}, spec, on_output, timeout)
