"""The one table format every benchmark prints: figure | goal | measured | verdict."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Row:
    figure: str
    goal: str
    measured: str
    met: bool | None  # None: informational, no goal


def print_table(title: str, rows: list[Row]) -> None:
    table = Table(title=title)
    for column in ("figure", "goal", "measured", "verdict"):
        table.add_column(column)
    for row in rows:
        verdict = "-" if row.met is None else ("PASS" if row.met else "MISS")
        table.add_row(row.figure, row.goal, row.measured, verdict)
    Console(width=160).print(table)
