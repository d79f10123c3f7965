"""`seattle node init` and `seattle node run`: set up a node directory and run its node manager."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from seattle.errors import NoOwnerGiven
from seattle.keys import PublicKey, list_identities, resolve
from seattle.nodemgr.daemon import CONFIG_FILE, DEFAULT_HOST, DEFAULT_PORT, NodeConfig, create_node, run_daemon


@click.group()
def node() -> None:
    """Donate this machine: create a node and run its node manager."""


@node.command()
@click.option("--dir", "node_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="The node directory to create (keys, vessel state, configuration, log).")
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="The IP address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int,
              help="The TCP port to listen on (0: any free port, chosen at each start).")
@click.option("--ip", "local_ips", multiple=True,
              help="A local IP vessels may use (repeatable; default: the sandbox broker's choice).")
@click.option("--owner", help="Identity name or ed25519: key owning the first vessel "
                              "(default: the only identity in $SEATTLE_HOME/keys).")
def init(node_dir: Path, host: str, port: int, local_ips: tuple[str, ...], owner: str | None) -> None:
    """Create a node in DIR: a node key and one vessel with the default allotment owned by OWNER."""
    config = NodeConfig(host, port, local_ips)
    owner_key = _owner_key(owner)
    node_key = create_node(node_dir, owner_key, config)
    click.echo(f"created node in {node_dir}")
    click.echo(f"  node key:    {node_key.to_text()}")
    click.echo(f"  fingerprint: {node_key.fingerprint()}")
    click.echo(f"  owner:       {owner_key.to_text()}")
    click.echo(f"  listens on:  {host}:{port} (change it in {node_dir / CONFIG_FILE})")
    click.echo(f"start it with: seattle node run --dir {node_dir}")


def _owner_key(owner: str | None) -> PublicKey:
    if owner is not None:
        return resolve(owner)
    identities = list_identities()
    if len(identities) != 1:
        raise NoOwnerGiven(identities)
    return resolve(identities[0])


@node.command()
@click.option("--dir", "node_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="The node directory made by `seattle node init`.")
@click.option("--allow-unconfined", is_flag=True,
              help="Start vessels even if the host offers neither seccomp nor Landlock.")
def run(node_dir: Path, allow_unconfined: bool) -> None:
    """Run the node manager in the foreground until SIGTERM or Ctrl-C; logs go to DIR/nodemanager.log."""
    sys.exit(run_daemon(node_dir, allow_unconfined=allow_unconfined))
