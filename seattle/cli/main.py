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

from seattle.cli.terminal import printable
from seattle.errors import SeattleError

#: Subcommand name → "module:attribute" of its click command, in the order `--help` lists them.
COMMANDS: dict[str, str] = {
    "demo": "seattle.cli.demo:demo",
    "vessel": "seattle.cli.vessel:vessel",
    "keygen": "seattle.cli.identity:keygen",
    "node": "seattle.cli.node:node",
    "call": "seattle.cli.call:call",
    "known-nodes": "seattle.cli.known_nodes:known_nodes",
    "installer": "seattle.cli.planner:installer",
    "browse": "seattle.cli.research_targets:browse",
    "contact": "seattle.cli.research_targets:contact",
    "list": "seattle.cli.research_vessels:list_",
    "update": "seattle.cli.research_vessels:update",
    "show": "seattle.cli.research_show:show",
    "set": "seattle.cli.research_show:set_",
    "upload": "seattle.cli.research_vessels:upload",
    "download": "seattle.cli.research_vessels:download",
    "cat": "seattle.cli.research_vessels:cat",
    "delete": "seattle.cli.research_vessels:delete",
    "run": "seattle.cli.research_vessels:run",
    "start": "seattle.cli.research_vessels:start",
    "stop": "seattle.cli.research_vessels:stop",
    "reset": "seattle.cli.research_vessels:reset",
    "split": "seattle.cli.research_vessels:split",
    "join": "seattle.cli.research_vessels:join",
    "on": "seattle.cli.research_targets:on",
    "as": "seattle.cli.research_targets:as_",
    "add": "seattle.cli.research_targets:add",
    "remove": "seattle.cli.research_targets:remove",
    "move": "seattle.cli.research_targets:move",
    "genkeys": "seattle.cli.research_targets:genkeys",
    "loadkeys": "seattle.cli.research_targets:loadkeys",
    "acquire": "seattle.cli.research_pool:acquire",
    "renew": "seattle.cli.research_pool:renew",
    "release": "seattle.cli.research_pool:release",
    "savestate": "seattle.cli.research_state:savestate",
    "loadstate": "seattle.cli.research_state:loadstate",
    "help": "seattle.cli.research_targets:help_",
    "shell": "seattle.cli.shell:shell",
}

#: One-line summaries for `--help`, so listing the commands imports none of them.
SUMMARIES: dict[str, str] = {
    "demo": "Try Seattle in a minute: a local testbed, an all-pairs ping experiment, a latency heat map.",
    "vessel": "Run a program in a vessel on this machine, or check what the sandbox can use.",
    "keygen": "Create an Ed25519 identity (a key pair) and store it in $SEATTLE_HOME/keys.",
    "node": "Donate this machine: create a node and run its node manager.",
    "call": "Make one signed node manager API call and print the answer.",
    "known-nodes": "List or forget the node keys pinned on first contact ($SEATTLE_HOME/known_nodes).",
    "installer": "Planners: sign a profile of vessels and build the installer donors run.",
    "browse": "Find your vessels through the overlay; they become %1..%N.",
    "contact": "Add the vessels of one node (HOST:PORT[:VESSEL]) without the overlay.",
    "list": "List the target vessels: owner, status, owner information.",
    "update": "Refresh what the session knows about the target vessels.",
    "show": "Show node answers (log, files, resources, ...) or the session (targets, groups, ...).",
    "set": "Change the target vessels' users, owner, ownerinfo, advertising; or a setting.",
    "upload": "Copy a local file into every target vessel.",
    "download": "Copy a file from every target vessel to local files.",
    "cat": "Print a file of every target vessel.",
    "delete": "Delete a file from every target vessel.",
    "run": "Upload a program to every target vessel and start it.",
    "start": "Start a program already in every target vessel.",
    "stop": "Stop every target vessel's program.",
    "reset": "Stop every target vessel and remove its files and log.",
    "split": "Split every target vessel in two (owner).",
    "join": "Join the target vessels on each node into one (owner).",
    "on": "Set the default target, or run one command on a target.",
    "as": "Set the default identity, or run one command as an identity.",
    "add": "Add vessels to a group.",
    "remove": "Remove vessels from a group, or a whole group.",
    "move": "Move vessels into a group, out of every other.",
    "genkeys": "Create an identity and act as it.",
    "loadkeys": "Import an identity's key file and act as it.",
    "acquire": "Lease N vessels from the pool (--where FILTER, --for DURATION); they become %N targets.",
    "renew": "Extend the leases of acquired vessels.",
    "release": "End the leases of acquired vessels; their nodes reset them.",
    "savestate": "Save the session and its identity, encrypted with a passphrase.",
    "loadstate": "Load a session saved with savestate.",
    "help": "Show the help of a command.",
    "shell": "Interactive shell for the researcher commands (prompt identity@target).",
}


class UserFacingError(click.ClickException):
    def __init__(self, error: SeattleError) -> None:
        super().__init__(printable(str(error), keep_layout=True))  # messages quote what nodes said
        # click types exit_code as a ClassVar, yet reads it from the instance (sys.exit(e.exit_code)).
        self.exit_code = error.exit_code  # type: ignore[misc]


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
