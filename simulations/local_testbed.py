"""Start N real node managers on loopback, joined into one overlay, and keep them running until told to stop.

    python simulations/local_testbed.py --nodes 5 --dir /tmp/tb [--vessels-per-node 2] [--owner alice]

Each node is a `seattle node run` process with its directory in DIR (node0, node1, ...); node 0 starts the
overlay and the others join through it. The script prints one line per node,

    node 0 127.0.0.1:40471 /tmp/tb/node0

then waits. Ctrl-C or SIGTERM stops every node (SIGTERM, then SIGKILL after a bounded wait) and the script
exits 0; if a node exits by itself, the script stops the others and exits 1. Without --owner the vessels
belong to a new identity `owner` saved in DIR/home/keys: use it with `SEATTLE_HOME=DIR/home seattle call
--as owner ...`. The library behind it is `seattle.testbed`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from seattle.errors import SeattleError
from seattle.keys import PublicKey, generate_identity, resolve, save_identity
from seattle.testbed import LocalTestbed, owned_vessels, sigterm_as_interrupt

OWNER = "owner"
#: How often the script checks that every node still runs.
CHECK_INTERVAL = 0.5


@click.command()
@click.option("--nodes", type=click.IntRange(1, 64), default=3, show_default=True, help="Node managers to start.")
@click.option("--dir", "directory", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Directory for the node directories (created; must not hold an earlier testbed).")
@click.option("--vessels-per-node", type=click.IntRange(1, 8), default=1, show_default=True,
              help="Vessels each node gets, sharing its ports.")
@click.option("--owner", help="Identity name or ed25519: key owning the vessels (default: a new identity "
                              "saved in DIR/home/keys).")
def main(nodes: int, directory: Path, vessels_per_node: int, owner: str | None) -> None:
    """Run a local testbed of NODES node managers until Ctrl-C or SIGTERM."""
    try:
        code = run(nodes, directory.absolute(), vessels_per_node, owner)
    except SeattleError as exc:
        click.echo(f"Error: {exc}", err=True)
        code = exc.exit_code
    sys.exit(code)


def run(nodes: int, directory: Path, vessels_per_node: int, owner: str | None) -> int:
    """Start the testbed, print its nodes, wait; returns the exit status (module docstring)."""
    owner_key = resolve(owner) if owner is not None else _new_owner(directory / "home")
    testbed = LocalTestbed(directory, nodes, owned_vessels(owner_key, vessels_per_node))
    with sigterm_as_interrupt():
        try:
            testbed.start()
            for node in testbed.nodes:
                click.echo(f"node {node.index} {node.address} {node.directory}")
            click.echo(f"vessels owned by {owner_key.to_text()}")
            click.echo(f"{nodes} node(s) running; Ctrl-C or SIGTERM stops them", err=True)
            exited = _wait_for_an_exit(testbed)
        except KeyboardInterrupt:
            exited = []
        finally:
            codes = testbed.stop()
    for line in exited:
        click.echo(f"Error: {line}", err=True)
    click.echo("stopped: " + ", ".join(f"node {index} exit {code}" for index, code in sorted(codes.items())),
               err=True)
    return 1 if exited else 0


def _new_owner(home: Path) -> PublicKey:
    keys = home / "keys"
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    identity = generate_identity(OWNER)
    save_identity(identity, keys)
    click.echo(f"owner identity saved in {keys} (SEATTLE_HOME={home} seattle call --as {OWNER} ...)", err=True)
    return identity.public_key


def _wait_for_an_exit(testbed: LocalTestbed) -> list[str]:
    """Block until some node exits by itself (returns what it said) or Ctrl-C / SIGTERM."""
    while True:
        exited = testbed.exited()
        if exited:
            return exited
        time.sleep(CHECK_INTERVAL)


if __name__ == "__main__":
    main()
