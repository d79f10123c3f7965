"""`seattle known-nodes`: the node keys pinned on first contact (`seattle.nodemgr.known_nodes`, docs/known-nodes.md)."""

from __future__ import annotations

import click

from seattle.cli.terminal import printable
from seattle.nodemgr.known_nodes import KnownNodes


@click.group("known-nodes")
def known_nodes() -> None:
    """The node keys pinned on first contact ($SEATTLE_HOME/known_nodes), like SSH's known_hosts."""


@known_nodes.command("list")
def list_() -> None:
    """Each pinned node: address, key fingerprint, full key and its line in the file."""
    known = KnownNodes.default()
    entries = known.entries()
    for address, pin in entries.items():
        click.echo(printable(f"{address}  {pin.key.fingerprint()}  {pin.key.to_text()}  (line {pin.line})"))
    click.echo(f"{len(entries)} pinned in {known.path}")


@known_nodes.command()
@click.argument("address", metavar="HOST:PORT")
def forget(address: str) -> None:
    """Forget the key pinned for HOST:PORT: the next contact pins whatever key answers there."""
    known = KnownNodes.default()
    pin = known.forget(address)
    click.echo(printable(f"forgot {address} (key {pin.key.fingerprint()}) from {known.path}"))
