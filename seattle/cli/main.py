"""The `seattle` command's entry point: one click group, one subcommand module per area, imported lazily.

Library code raises `seattle.errors.SeattleError` with a message a person can act on; this group turns any of
them into a one-line "Error: ..." on standard error and the error's exit code, so no command repeats that.

Why lazy: `seattle --help` and every one-shot command pay for the imports of the command they run only
(trio, PyNaCl and the node manager cost ~200 ms together), so start-up stays well under 300 ms.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from seattle.errors import SeattleError

#: Subcommand name → "module:attribute" of its click command, in the order `--help` lists them.
COMMANDS: dict[str, str] = {
    "vessel": "seattle.cli.vessel:vessel",
    "keygen": "seattle.cli.identity:keygen",
    "node": "seattle.cli.node:node",
    "call": "seattle.cli.call:call",
}

#: One-line summaries for `--help`, so listing the commands imports none of them.
SUMMARIES: dict[str, str] = {
    "vessel": "Run a program in a vessel on this machine, or check what the sandbox can use.",
    "keygen": "Create an Ed25519 identity (a key pair) and store it in $SEATTLE_HOME/keys.",
    "node": "Donate this machine: create a node and run its node manager.",
    "call": "Make one signed node manager API call and print the answer.",
}


class UserFacingError(click.ClickException):
    def __init__(self, error: SeattleError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code


class SeattleGroup(click.Group):
    """Loads a subcommand's module only when that subcommand runs (module docstring)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS) + sorted(set(self.commands) - set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUMMARIES.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SeattleError as exc:
            raise UserFacingError(exc) from None


@click.group(cls=SeattleGroup)
@click.version_option(package_name="seattle")
def main() -> None:
    """Seattle: donate, plan and run experiments on sandboxed vessels, with no central server."""
