"""`seattle vessel ...`: run a program locally in a vessel, and report what the host's sandbox offers."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from seattle.vessel.host.launcher import ALL_LAYERS
from seattle.vessel.host.local import load_allotment, run_program_locally
from seattle.vessel.oslayer import detect
from seattle.vessel.oslayer.cgroups import MIN_QUOTA_US, PERIOD_US, CgroupSupport, detect_cgroups
from seattle.vessel.spec import PLATFORMS, PYTHON3
from seattle.vessel.status import EXIT_NORMAL


@click.group()
def vessel() -> None:
    """Run programs in vessels on this machine."""


def _write_output(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


@vessel.command(context_settings={"ignore_unknown_options": True})
@click.option("--resources", "resource_file", type=click.Path(path_type=Path),
              help="Resource file (`resource NAME VALUE` lines); default: a modest local allotment.")
@click.option("--dir", "directory", type=click.Path(path_type=Path, file_okay=False),
              help="Run in this directory (kept afterwards) instead of a temporary one.")
@click.option("--ip", "local_ips", multiple=True, help="Local IP the program may use (repeatable); first = getmyip().")
@click.option("--without", "without", multiple=True, type=click.Choice(ALL_LAYERS),
              help="Switch a sandbox layer off (for testing the others).")
@click.option("--allow-unconfined", is_flag=True,
              help="Run even if the host offers neither seccomp nor Landlock.")
@click.option("--timeout", type=float, default=None, help="Stop the program after this many seconds.")
@click.option("--dialect", type=click.Choice(PLATFORMS), default=PYTHON3, show_default=True,
              help="The program's language: python3, or the original Repy's Python 2 with the V2 or V1 API.")
@click.argument("program", type=click.Path(path_type=Path))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(resource_file: Path | None, directory: Path | None, local_ips: tuple[str, ...], without: tuple[str, ...],
        allow_unconfined: bool, timeout: float | None, dialect: str, program: Path, args: tuple[str, ...]) -> None:
    """Run PROGRAM in a local vessel, printing its log as it runs.

    Exits 0 when the program ends normally; otherwise prints why and exits with the vessel's exit code.
    """
    layers = _host_layers() - frozenset(without) if without else frozenset()
    handle = run_program_locally(
        program, args, resources=load_allotment(resource_file), on_output=_write_output,
        directory=directory, layers=layers, local_ips=local_ips,
        allow_unconfined=allow_unconfined, timeout=timeout if timeout is not None else float("inf"),
        platform=dialect,
    )
    if handle.exit_code != EXIT_NORMAL:
        click.echo(f"seattle: vessel {handle.status}: {handle.reason} (exit code {handle.exit_code})", err=True)
        sys.exit(handle.exit_code or 1)


def _cpu_limit_line(cgroups: CgroupSupport) -> str:
    """Which layer holds a vessel's CPU share and memory here, and how often it acts."""
    if cgroups.available:
        return (f"CPU and memory limits: cgroup {cgroups.kind}, the kernel's CPU quota per {PERIOD_US / 1000:g}-ms "
                f"period (longer below cpu {MIN_QUOTA_US / PERIOD_US:g}: 1 ms is the kernel's smallest quota), "
                "memory limit = the allotment.")
    return ("CPU and memory limits: the nanny (SIGSTOP/SIGCONT; it looks every 10 ms, down to every 1 ms when a "
            "vessel nears its share; memory by polling), because no cgroup layer is usable: see the cgroup row.")


def _host_layers() -> frozenset[str]:
    return frozenset({ALL_LAYERS[0]}) | detect().available()


@vessel.command()
def doctor() -> None:
    """Report which sandbox layers this host offers; exit 1 if untrusted code cannot be confined here."""
    support = detect()
    table = Table(title="Vessel sandbox layers on this host")
    table.add_column("layer")
    table.add_column("available")
    table.add_column("details", overflow="fold")
    table.add_row("language", "yes", "static checker + scrubbed builtins (always on)")
    for name in ("rlimits", "namespaces", "landlock", "seccomp"):
        available = name in support.available()
        table.add_row(name, "yes" if available else "no", support.details.get(name, ""))
    cgroups = detect_cgroups()
    table.add_row("cgroup", "yes" if cgroups.available else "no", cgroups.reason)
    console = Console()
    console.print(table)
    console.print(_cpu_limit_line(cgroups))
    if support.can_confine_untrusted():
        console.print("Untrusted programs can be confined on this host.")
    else:
        console.print("[bold red]Neither seccomp nor Landlock is available: vessels refuse to start "
                      "unless run with --allow-unconfined.[/]")
        sys.exit(1)
