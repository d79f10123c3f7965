"""`seattle keygen`: create an identity (an Ed25519 key pair) in `$SEATTLE_HOME/keys`."""

from __future__ import annotations

import click

from seattle.keys import generate_identity, key_directory, save_identity


@click.command()
@click.argument("name")
@click.option("--passphrase", is_flag=True,
              help="Protect the private key with a passphrase (asked for twice on the terminal).")
def keygen(name: str, passphrase: bool) -> None:
    """Create the identity NAME: NAME.privatekey (mode 0600) and NAME.publickey in $SEATTLE_HOME/keys."""
    secret = click.prompt("Passphrase", hide_input=True, confirmation_prompt=True) if passphrase else None
    identity = generate_identity(name)
    path = save_identity(identity, passphrase=secret)
    click.echo(f"created identity {name!r} in {key_directory()}")
    click.echo(f"  private key: {path}")
    click.echo(f"  public key:  {identity.public_key.to_text()}")
    click.echo(f"  fingerprint: {identity.public_key.fingerprint()}")
