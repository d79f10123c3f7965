"""The `seattle` command's entry point: one click group, one subcommand module per area.

Library code raises `seattle.errors.SeattleError` with a message a person can act on; this group turns any of
them into a one-line "Error: ..." on standard error and the error's exit code, so no command repeats that.
"""

from __future__ import annotations

from typing import Any

import click

from seattle.cli.call import call
from seattle.cli.identity import keygen
from seattle.cli.node import node
from seattle.cli.vessel import vessel
from seattle.errors import SeattleError


class UserFacingError(click.ClickException):
    def __init__(self, error: SeattleError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code


class SeattleGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SeattleError as exc:
            raise UserFacingError(exc) from None


@click.group(cls=SeattleGroup)
@click.version_option(package_name="seattle")
def main() -> None:
    """Seattle: donate, plan and run experiments on sandboxed vessels, with no central server."""


main.add_command(vessel)
main.add_command(keygen)
main.add_command(node)
main.add_command(call)
