"""`seattle call`: make any node manager call from the shell (the words are parsed by call_arguments)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from seattle.addresses import parse_address
from seattle.cli.call_arguments import (
    check_response,
    make_call,
    needs_identity,
    parse_call,
    render,
    render_json,
    usage,
    write_output,
)
from seattle.cli.terminal import printable
from seattle.errors import SignedCallNeedsIdentity
from seattle.keys import Identity, is_protected, load_identity, resolve
from seattle.nodemgr.calltable import CALLS

_EPILOG = "\b\nThe calls (see docs/researchers-guide.md):\n" + "\n".join(
    f"  {usage(name)}" for name in sorted(CALLS))


@click.command(context_settings={"ignore_unknown_options": True}, epilog=_EPILOG)
@click.option("--as", "as_identity", metavar="IDENTITY",
              help="Sign the request as this identity (needed for every call but the public ones).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole response as JSON (bytes as base64).")
@click.option("--out", "out_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the result to this file instead of standard output (e.g. a retrieved file).")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for the node.")
@click.option("--node-key", "node_key", metavar="KEY",
              help="The node's key (ed25519:... or an identity name): the node must prove it, else the call is "
                   "refused. Without it the key pinned for HOST:PORT in the known-nodes file is expected (a first "
                   "contact pins the key it finds).")
@click.argument("address", metavar="HOST:PORT")
@click.argument("words", nargs=-1, required=True, metavar="CALL [ARGS...]", type=click.UNPROCESSED)
def call(as_identity: str | None, as_json: bool, out_path: Path | None, timeout: float, node_key: str | None,
         address: str, words: tuple[str, ...]) -> None:
    """Make CALL on the node manager at HOST:PORT; file data is read from a path or `-` (stdin).

    Exits 0 on success, 1 if the node refused the call (the error code is shown) or cannot be reached,
    2 for a mistake on the command line.
    """
    host_port = parse_address(address)
    name, args = parse_call(words, sys.stdin.buffer)
    if as_identity is None and needs_identity(name):
        raise SignedCallNeedsIdentity(name)
    identity = _identity(as_identity) if as_identity is not None else None
    expected = resolve(node_key) if node_key is not None else None
    response = make_call(host_port, identity, name, args, timeout=timeout, node_key=expected)
    if as_json:
        write_output((render_json(response) + "\n").encode("utf-8"), out_path, sys.stdout.buffer)
        check_response(name, response)
        return
    warning = check_response(name, response)
    if warning is not None:
        click.echo(printable(warning), err=True)
    data = render(response.result)
    # Text the node sent is escaped; file bytes stay exact unless they would land on a terminal.
    if out_path is None and (not isinstance(response.result, bytes) or stdout_is_terminal()):
        data = printable(data.decode("utf-8", "replace"), keep_layout=True).encode("utf-8")
    write_output(data, out_path, sys.stdout.buffer)


def stdout_is_terminal() -> bool:
    """Whether output goes to a terminal (where escape sequences act) rather than a file or a pipe."""
    return sys.stdout.isatty()


def _identity(name: str) -> Identity:
    passphrase = click.prompt(f"Passphrase for {name}", hide_input=True) if is_protected(name) else None
    return load_identity(name, passphrase=passphrase)
