"""`seattle savestate FILE` / `seattle loadstate FILE`: the session and its identity, encrypted with a passphrase.

The passphrase is asked on the terminal (twice when saving), or read from the first line of --passphrase-file
for scripts.
"""

from __future__ import annotations

from pathlib import Path

import click

from seattle.cli.research_common import session_for_command
from seattle.errors import LocalFileError
from seattle.experiment.statefile import install_identities, load_state, save_state
from seattle.keys import is_protected

_PASSPHRASE_FILE = click.option("--passphrase-file", type=click.Path(path_type=Path, dir_okay=False),
                                help="Read the passphrase from the first line of this file instead of asking.")


def _passphrase(path: Path | None, confirm: bool) -> str:
    if path is None:
        return str(click.prompt("State file passphrase", hide_input=True, confirmation_prompt=confirm, err=True))
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline(4096).rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise LocalFileError(path, str(exc)) from None


@click.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@_PASSPHRASE_FILE
def savestate(path: Path, passphrase_file: Path | None) -> None:
    """Save the session (targets, groups, settings) and its identity's key file, encrypted, to PATH (mode 0600).

    A key protected by a passphrase stays protected by it inside the file, and after loadstate."""
    with session_for_command() as session:
        name = session.identity
        # The key file goes in as stored (encrypted if it has a passphrase): no key passphrase is asked.
        save_state(path, _passphrase(passphrase_file, True), session, [name] if name is not None else [])
    click.echo(f"saved the session to {path}")


@click.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@_PASSPHRASE_FILE
def loadstate(path: Path, passphrase_file: Path | None) -> None:
    """Replace the session with the one saved in PATH; its identity is added to your keys if missing."""
    state = load_state(path, _passphrase(passphrase_file, False))
    installed = install_identities(state.keys)
    with session_for_command() as session:
        session.identity = state.session.identity
        session.target = state.session.target
        session.timeout = state.session.timeout
        session.upload_rate = state.session.upload_rate
        session.targets = state.session.targets
    for name in installed:
        protected = " (protected by its passphrase, as it was when saved)" if is_protected(name) else ""
        click.echo(f"added identity {name}{protected}")
    click.echo(f"loaded {len(state.session.targets.vessels)} vessels, {len(state.session.targets.groups)} groups "
               f"from {path}")
