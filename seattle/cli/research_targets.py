"""Choosing who and what: browse, contact, on, as, add, remove, move, genkeys, loadkeys, help.

`on TARGET [COMMAND...]` and `as IDENTITY [COMMAND...]` behave as in seash: with no command they set the
session's default, with one they run it once with --on / --as.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from seattle.addresses import parse_address
from seattle.cli.research_common import (
    Options,
    command_session,
    public_key_of,
    run_async,
    session_for_command,
    who_options,
)
from seattle.cli.terminal import printable
from seattle.errors import BadTarget, NoIdentityChosen
from seattle.experiment import operations
from seattle.experiment.session import Session
from seattle.experiment.targets import ALL, check_group_name
from seattle.keys import (
    PRIVATE_SUFFIX,
    Identity,
    PublicKey,
    is_protected,
    key_directory,
    list_identities,
    load_identity,
    resolve,
    save_identity,
)


@click.command()
@who_options
@click.option("--bootstrap", "bootstrap", multiple=True, metavar="HOST:PORT",
              help="An overlay node to join through (default: $SEATTLE_BOOTSTRAP, then $SEATTLE_HOME/bootstrap).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per vessel found.")
def browse(opts: Options, bootstrap: tuple[str, ...], as_json: bool) -> None:
    """Find the vessels your identity owns or uses through the overlay; they become %1..%N (group browsegood)."""
    from seattle.experiment.browse import bootstrap_nodes
    from seattle.experiment.browse import browse as find

    with command_session(opts) as session:
        key = public_key_of(session, opts)
        if key is None:
            raise NoIdentityChosen(list_identities())
        nodes = bootstrap_nodes(bootstrap)
        result = run_async(lambda: find(key, nodes, timeout=session.timeout))
        numbers, rejected = operations.add_found(session, result.vessels)
        session.targets.set_group("browsegood", numbers)
        rows = [_found_row(session, number, key) for number in numbers]
        if as_json:
            for row in rows:
                click.echo(json.dumps(row))
        else:
            _print_found(rows)
        click.echo(f"found {len(numbers)} vessels", err=as_json)
        problems = [f"unreachable: {address}: {why}" for address, why in result.unreachable]
        for problem in [*problems, *(f"left out: {why}" for why in rejected)]:
            click.echo(printable(problem), err=True)
        if problems or rejected:
            raise click.exceptions.Exit(1)


def _found_row(session: Session, number: int, key: PublicKey) -> dict[str, Any]:
    """What browse reports of one vessel: its target number, where it is, and how `key` relates to it."""
    known = session.targets.vessels[number]
    info = known.info
    role = "owner" if info.get("owner") == key.to_text() else "user"
    return {"target": f"%{number}", "node": f"{known.ref.host}:{known.ref.port}", "vessel": known.ref.vessel,
            "status": info.get("status"), "role": role, "advertise": info.get("advertise"),
            "ownerinfo": info.get("ownerinfo", ""), "node_key": known.node_key}


def _print_found(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for column in ("target", "node", "vessel", "status", "role", "ownerinfo"):
        table.add_column(column)
    for row in rows:  # Text, not str: a node's "[link=...]" must not be read as rich markup
        table.add_row(*(Text(printable(row[column])) for column in ("target", "node", "vessel", "status", "role",
                                                                   "ownerinfo")))
    Console(soft_wrap=True).print(table)


@click.command()
@who_options
@click.option("--node-key", "node_key", metavar="KEY",
              help="The node's key (ed25519:... or an identity name): the node must prove it. Without it the key "
                   "pinned for HOST:PORT in the known-nodes file is expected (a first contact pins it).")
@click.argument("address", metavar="HOST:PORT[:VESSEL]")
def contact(opts: Options, node_key: str | None, address: str) -> None:
    """Add the vessels of the node at HOST:PORT you own or use (or just VESSEL) without the overlay."""
    host_port, vessel = address, None
    if address.count(":") >= 2 and not address.endswith("]") and not address.rsplit(":", 1)[1].isdigit():
        host_port, vessel = address.rsplit(":", 1)
    host, port = parse_address(host_port)
    with command_session(opts) as session:
        key = public_key_of(session, opts)
        expected = resolve(node_key) if node_key is not None else None
        numbers = run_async(lambda: operations.contact(session, host, port, key, vessel, expected))
        session.targets.add_to_group("contactgood", numbers)
        for number in numbers:
            known = session.targets.vessels[number]
            click.echo(printable(f"%{number:<4} {known.ref}  {known.info.get('status')}"))
        click.echo(f"added {len(numbers)} vessels")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("target")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def on(ctx: click.Context, target: str, command: tuple[str, ...]) -> None:
    """Make TARGET the default target, or run COMMAND once on it: `seattle on browsegood list`."""
    if command:
        _run_with(ctx, command, "--on", target)
        return
    with session_for_command() as session:
        session.targets.resolve(target)  # refuse a target that does not exist
        session.target = target
    click.echo(f"target is now {target}")


@click.command("as", context_settings={"ignore_unknown_options": True})
@click.argument("name", metavar="IDENTITY")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def as_(ctx: click.Context, name: str, command: tuple[str, ...]) -> None:
    """Act as IDENTITY from now on, or run COMMAND once as it: `seattle as bob list`."""
    if command:
        _run_with(ctx, command, "--as", name)
        return
    with session_for_command() as session:
        require_identity(name)
        session.set_identity(name)
    click.echo(f"identity is now {name}")


def require_identity(name: str) -> None:
    """IdentityNotFound (listing the identities there are) unless NAME has a private key here."""
    if name not in list_identities():
        load_identity(name)


def _run_with(ctx: click.Context, command: tuple[str, ...], option: str, value: str) -> None:
    """Run the subcommand COMMAND with `option value` inserted after its last subcommand word."""
    root = ctx.find_root().command
    assert isinstance(root, click.Group)
    words = list(command)
    group: click.Command = root
    position = 0
    while isinstance(group, click.Group) and position < len(words):
        sub = group.get_command(ctx, words[position])
        if sub is None:
            break
        group, position = sub, position + 1
    if position == 0 or isinstance(group, click.Group):
        raise click.UsageError(f"{' '.join(words)!r} is not a command; see `seattle --help`")
    if not any(p.opts and option in p.opts for p in group.params):
        raise click.UsageError(f"{' '.join(words[:position])} does not take {option}")
    args = [*words[:position], option, value, *words[position:]]
    sub_ctx = root.make_context(ctx.find_root().info_name, args, parent=None)
    with sub_ctx:
        root.invoke(sub_ctx)


def _group_words(words: tuple[str, ...], joiner: str, session: Session) -> tuple[str, str]:
    """`[TARGET] to GROUP` → (target, group); the target defaults to the session's."""
    if len(words) >= 2 and words[-2] == joiner:
        target = " ".join(words[:-2]) or session.target
        return target, check_group_name(words[-1])
    raise click.UsageError(f"write it as [TARGET] {joiner} GROUP")


@click.command()
@click.argument("words", nargs=-1, required=True, metavar="[TARGET] to GROUP")
def add(words: tuple[str, ...]) -> None:
    """Add TARGET's vessels (default: the current target) to GROUP, creating it if needed."""
    with session_for_command() as session:
        target, group = _group_words(words, "to", session)
        session.targets.add_to_group(group, session.targets.resolve(target))
        click.echo(f"{group}: {_members(session, group)}")


@click.command()
@click.argument("words", nargs=-1, required=True, metavar="[TARGET] from GROUP | GROUP")
def remove(words: tuple[str, ...]) -> None:
    """Remove TARGET's vessels from GROUP; `remove GROUP` deletes the group (its vessels stay known)."""
    with session_for_command() as session:
        if len(words) == 1:
            session.targets.delete_group(check_group_name(words[0]))
            click.echo(f"removed group {words[0]}")
            return
        target, group = _group_words(words, "from", session)
        session.targets.remove_from_group(group, session.targets.resolve(target))
        click.echo(f"{group}: {_members(session, group)}")


@click.command()
@click.argument("words", nargs=-1, required=True, metavar="TARGET to GROUP")
def move(words: tuple[str, ...]) -> None:
    """Take TARGET's vessels out of every other group and put them in GROUP."""
    with session_for_command() as session:
        target, group = _group_words(words, "to", session)
        if target == ALL and len(words) == 2:
            raise BadTarget(ALL, "say which vessels to move: move TARGET to GROUP")
        session.targets.move_to_group(group, session.targets.resolve(target))
        click.echo(f"{group}: {_members(session, group)}")


def _members(session: Session, group: str) -> str:
    return " ".join(f"%{n}" for n in session.targets.groups.get(group, [])) or "(empty)"


@click.command()
@click.argument("name")
@click.option("--passphrase", is_flag=True, help="Protect the private key with a passphrase.")
def genkeys(name: str, passphrase: bool) -> None:
    """Create the identity NAME (like `seattle keygen`) and act as it from now on."""
    from seattle.cli.identity import keygen

    click.get_current_context().invoke(keygen, name=name, passphrase=passphrase)
    with session_for_command() as session:
        session.set_identity(name)


@click.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--as", "name", metavar="NAME", help="The name to keep it under (default: the file's name).")
def loadkeys(path: Path, name: str | None) -> None:
    """Import the identity in PATH(.privatekey) into $SEATTLE_HOME/keys and act as it from now on."""
    stem = path.name.removesuffix(PRIVATE_SUFFIX)
    passphrase = None
    if is_protected(stem, path.parent):
        passphrase = click.prompt(f"Passphrase for {path}", hide_input=True, err=True)
    loaded = load_identity(stem, path.parent, passphrase)
    target_name = name or stem
    if path.parent.resolve() != key_directory().resolve() or target_name != stem:
        save_identity(Identity(target_name, loaded.signing_key), passphrase=passphrase)
    with session_for_command() as session:
        session.set_identity(target_name)
    click.echo(f"identity is now {target_name} ({loaded.public_key.fingerprint()})")


@click.command("help")
@click.argument("words", nargs=-1)
@click.pass_context
def help_(ctx: click.Context, words: tuple[str, ...]) -> None:
    """Show the help of a command: `seattle help show log`."""
    root = ctx.find_root().command
    command: click.Command = root
    names: list[str] = []
    for word in words:
        sub = command.get_command(ctx, word) if isinstance(command, click.Group) else None
        if sub is None:
            raise click.UsageError(f"no command {' '.join([*names, word])!r}; see `seattle --help`")
        command, names = sub, [*names, word]
    info_name = " ".join(["seattle", *names])
    with click.Context(command, info_name=info_name, parent=None) as help_ctx:
        click.echo(command.get_help(help_ctx))

