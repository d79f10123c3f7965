"""`seattle demo`: start a local overlay, run an all-pairs ping in every vessel, show the latency matrix."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from seattle.cli.terminal import printable
from seattle.demo.matrix import LatencyMatrix
from seattle.demo.run import (
    DEFAULT_NODES,
    DEFAULT_VESSELS_PER_NODE,
    POOL_MAX_PER_NODE,
    POOL_MAX_VESSELS,
    run_demo,
)
from seattle.testbed import sigterm_as_interrupt


@click.command()
@click.option("--nodes", type=click.IntRange(2, 16), default=DEFAULT_NODES, show_default=True,
              help="Node managers to start on 127.0.0.1.")
@click.option("--vessels-per-node", type=click.IntRange(1, 4), default=DEFAULT_VESSELS_PER_NODE,
              show_default=True, help="Vessels the demo's profile gives each node.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=Path("seattle-demo.png"),
              show_default=True, help="Where to write the latency heat map (PNG).")
@click.option("--keep", is_flag=True, help="Keep the temporary directory (nodes, logs, keys) and print where.")
@click.option("--pool", is_flag=True,
              help="Acquire the vessels from the nodes' pool (and release them after) instead of owning them.")
def demo(nodes: int, vessels_per_node: int, out: Path, keep: bool, pool: bool) -> None:
    """Run a whole experiment on this machine, with no setup: start node managers on loopback, create a
    researcher, find its vessels, ping between every pair of them, print the latency matrix and write it
    as a heat map; then stop everything and remove the temporary directory.

    With --pool the nodes share their vessels with the pool and the researcher acquires them (at most 10,
    2 per node), runs the same experiment, and releases them."""
    if pool and (vessels_per_node > POOL_MAX_PER_NODE or nodes * vessels_per_node > POOL_MAX_VESSELS):
        raise click.UsageError(f"with --pool one key leases at most {POOL_MAX_VESSELS} vessels, "
                               f"{POOL_MAX_PER_NODE} per node: lower --nodes or --vessels-per-node")
    with sigterm_as_interrupt():
        result = run_demo(nodes=nodes, vessels_per_node=vessels_per_node, out=out, keep=keep, pool=pool,
                          progress=lambda message: click.echo(printable(f"- {message}")))
    print_latency_table(result.matrix, Console())
    click.echo(f"Done in {result.seconds:.1f} s. Heat map: {result.heatmap}")
    if result.kept is not None:
        click.echo(f"Kept {result.kept} (node directories, their nodemanager.log, the researcher's keys)")


def print_latency_table(matrix: LatencyMatrix, console: Console) -> None:
    """Print the matrix whole. Rich would shorten a latency to "38.7…" to fit a narrow terminal or a pipe
    (80 columns); a line wider than the terminal only wraps, a shortened value is lost."""
    table = latency_table(matrix)
    needed = Console(width=10_000).measure(table).maximum  # the table's natural width, not capped by ours
    if console.width < needed:
        console = Console(width=needed, file=console.file)
    console.print(table)


def latency_table(matrix: LatencyMatrix) -> Table:
    """The matrix as a rich table: one row per pinging vessel, one column per answering vessel, in ms."""
    table = Table(title="Median UDP round-trip time (ms), from row to column")
    table.add_column("from", style="bold")
    labels = [Text(printable(label)) for label in matrix.labels]  # vessel names as nodes reported them
    for label in labels:
        table.add_column(label, justify="right")
    for a, (label, row) in enumerate(zip(labels, matrix.rtt_ms, strict=True)):
        cells = ["·" if a == b else ("no reply" if value is None else f"{value:.3f}") for b, value in enumerate(row)]
        table.add_row(label, *cells)
    return table
