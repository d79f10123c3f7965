"""The `seattle` command's entry point: one click group, one subcommand module per area."""

from __future__ import annotations

import click

from seattle.cli.vessel import vessel


@click.group()
@click.version_option(package_name="seattle")
def main() -> None:
    """Seattle: donate, plan and run experiments on sandboxed vessels, with no central server."""


main.add_command(vessel)
