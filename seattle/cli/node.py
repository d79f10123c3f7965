"""`seattle node init` and `seattle node run`: set up a node directory and run its node manager."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from seattle.cli.donor import COMMANDS as DONOR_COMMANDS
from seattle.cli.donor import init_from_profile
from seattle.donor.manifest import record_install
from seattle.errors import NoOwnerGiven
from seattle.keys import PublicKey, list_identities, resolve
from seattle.nodemgr.config import DEFAULT_HOST, DEFAULT_PORT, DONOR_HOST, NodeConfig
from seattle.nodemgr.daemon import create_node, run_daemon
from seattle.nodemgr.nodedir import NodeDir


@click.group()
def node() -> None:
    """Donate this machine: create a node and run its node manager."""


@node.command()
@click.option("--dir", "node_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="The node directory to create (keys, vessel state, configuration, log).")
@click.option("--host", default=None,
              help=f"The IP address to listen on (0.0.0.0: every interface). Default: {DEFAULT_HOST}, or "
                   f"{DONOR_HOST} with --profile (a donation is meant to be reached).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int,
              help="The TCP port to listen on (0: any free port, chosen at each start).")
@click.option("--ip", "local_ips", multiple=True,
              help="A local IP vessels may use (repeatable; default: the sandbox broker's choice).")
@click.option("--owner", help="Identity name or ed25519: key owning the first vessel "
                              "(default: the only identity in $SEATTLE_HOME/keys).")
@click.option("--bootstrap", "bootstrap", multiple=True, metavar="HOST:PORT",
              help="A running node to join the overlay through (repeatable; none: start a new overlay).")
@click.option("--profile", "profile", type=click.Path(path_type=Path, dir_okay=False),
              help="A planner's signed installer profile: donate --percent of this machine, divided into its "
                   "vessels (then --owner is not used).")
@click.option("--planner", metavar="FINGERPRINT|KEY|NAME",
              help="With --profile: the planner you trust (its key fingerprint, ed25519: key or name); the "
                   "profile must be signed by it. Without it you are asked on a terminal, and refused elsewhere.")
@click.option("--percent", default=10, show_default=True, type=int,
              help="With --profile: the percent of this machine to donate.")
@click.option("--ports", help="With --profile: the vessels' port pool, LOW-HIGH (default 63100-63199).")
def init(node_dir: Path, host: str, port: int, local_ips: tuple[str, ...], owner: str | None,
         bootstrap: tuple[str, ...], profile: Path | None, planner: str | None, percent: int,
         ports: str | None) -> None:
    """Create a node in DIR: a node key and one vessel with the default allotment owned by OWNER, or the
    vessels of a planner's --profile."""
    if profile is not None:
        init_from_profile(node_dir, profile, planner, percent, host or DONOR_HOST, port, ports, bootstrap,
                          local_ips)
        return
    host = host or DEFAULT_HOST
    config = NodeConfig(host, port, local_ips, bootstrap)
    owner_key = _owner_key(owner)
    created_dir = not node_dir.exists()
    node_key = create_node(node_dir, owner_key, config)
    record_install(node_dir, created_dir)
    click.echo(f"created node in {node_dir}")
    click.echo(f"  node key:    {node_key.to_text()}")
    click.echo(f"  fingerprint: {node_key.fingerprint()}")
    click.echo(f"  owner:       {owner_key.to_text()}")
    click.echo(f"  listens on:  {host}:{port} (change it in {NodeDir(node_dir).config_path})")
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
@click.option("--bootstrap", "bootstrap", multiple=True, metavar="HOST:PORT",
              help="A running node to join the overlay through (repeatable; overrides node.json's list).")
def run(node_dir: Path, allow_unconfined: bool, bootstrap: tuple[str, ...]) -> None:
    """Run the node manager in the foreground until SIGTERM or Ctrl-C; logs go to DIR/nodemanager.log."""
    sys.exit(run_daemon(node_dir, allow_unconfined=allow_unconfined, bootstrap=bootstrap))


for _command in DONOR_COMMANDS:
    node.add_command(_command)
