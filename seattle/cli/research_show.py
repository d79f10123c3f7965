"""`seattle show ...` (what the nodes and the session say) and `seattle set ...` (owner calls and settings).

show info/files/log/resources/offcut/owner/users/ownerinfo/advertise ask the nodes (a fan-out, with result
groups such as `loggood`); show ip/hostname/targets/groups/identities/timeout/uploadrate read the session.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from seattle.cli.research_common import (
    Options,
    block,
    command_session,
    common_options,
    header,
    report,
    session_for_command,
    targets,
)
from seattle.cli.terminal import printable
from seattle.keys import list_identities, read_names, resolve

if TYPE_CHECKING:
    from seattle.experiment.fanout import Outcome, VesselOp


@click.group()
def show() -> None:
    """Show what the target vessels' nodes say, or the session's state."""


def _key_name(text: object) -> str:
    """A key with its name from the names file when it has one."""
    names = {key.to_text(): name for name, key in read_names().items()}
    return f"{text} ({names[str(text)]})" if str(text) in names else str(text)


def _fan_out_show(command: str, make_op: Callable[[], VesselOp], render: Callable[[Outcome], str | None], *,
                  signed: bool) -> Callable[..., None]:
    @common_options
    def show_it(opts: Options) -> None:
        from seattle.cli.research_vessels import fan_out

        with command_session(opts) as session:
            report(fan_out(command, session, opts, make_op(), signed=signed), opts, render)

    return show_it


def _field(name: str) -> Callable[[Outcome], str]:
    def render(outcome: Outcome) -> str:
        value = outcome.result.get(name)
        if name == "owner":
            value = _key_name(value)
        elif name == "users":
            value = ", ".join(_key_name(user) for user in value) or "(no users)"
        return f"%{outcome.number:<4} {printable(outcome.ref):<32} {printable(value)}"

    return render


def _info(outcome: Outcome) -> str:
    info = outcome.result
    return printable(f"%{outcome.number:<4} {outcome.ref!s:<32} version {info.get('version')}  node key "
                     f"{info.get('node_key')}  fingerprint {info.get('fingerprint')}")


def _operation(name: str, *call: str) -> Callable[[], VesselOp]:
    """The operation, imported when the command runs (the node machinery costs start-up time)."""

    def make() -> VesselOp:
        from seattle.experiment import operations

        if call:
            return operations.call(*call)
        operation: VesselOp = getattr(operations, name)
        return operation

    return make


#: show subcommand → (result group name, operation, rendering, signed, help)
_SHOWN: dict[str, tuple[str, Callable[[], VesselOp], Callable[[Outcome], str | None], bool, str]] = {
    "info": ("info", _operation("node_info"), _info, False, "Each target's node: version, key and fingerprint."),
    "files": ("files", _operation("", "ListFilesInVessel"), block, True, "The files in each target vessel."),
    "log": ("log", _operation("", "ReadVesselLog"), block, True,
            "The last 16 KiB of each target vessel's program output."),
    "resources": ("resource", _operation("", "GetVesselResources"), block, False,
                  "Each target vessel's resource allotment."),
    "offcut": ("offcut", _operation("offcut"), block, False, "What one more vessel costs on each target's node."),
    "owner": ("owner", _operation("describe"), _field("owner"), False, "Each target vessel's owner key."),
    "users": ("users", _operation("describe"), _field("users"), False, "Each target vessel's user keys."),
    "ownerinfo": ("ownerinfo", _operation("describe"), _field("ownerinfo"), False,
                  "Each target vessel's owner information."),
    "advertise": ("advertise", _operation("describe"), _field("advertise"), False,
                  "Whether each target vessel is advertised in the overlay."),
}

for _name, (_command, _make, _render, _signed, _help) in _SHOWN.items():
    show.add_command(click.command(_name, help=_help)(_fan_out_show(_command, _make, _render, signed=_signed)))


@show.command("ip")
@click.option("--on", "on", metavar="TARGET", help="Another target than the current one.")
def show_ip(on: str | None) -> None:
    """The IP address of each target vessel's node, one per line (duplicates removed)."""
    with session_for_command() as session:
        numbers = targets(session, Options(on, None, None, False))
        hosts = dict.fromkeys(session.targets.vessels[n].ref.host for n in numbers)
        for host in hosts:
            click.echo(printable(host))


@show.command("hostname")
@click.option("--on", "on", metavar="TARGET", help="Another target than the current one.")
def show_hostname(on: str | None) -> None:
    """The host name (reverse DNS) of each target vessel's node."""
    with session_for_command() as session:
        numbers = targets(session, Options(on, None, None, False))
        for host in dict.fromkeys(session.targets.vessels[n].ref.host for n in numbers):
            try:
                name = socket.gethostbyaddr(host)[0]
            except OSError:
                name = "(no name)"
            click.echo(printable(f"{host} {name}"))  # a PTR record says whatever its zone's owner wants


@show.command("targets")
def show_targets() -> None:
    """Every known vessel with its number, and the current target."""
    with session_for_command() as session:
        for number, known in sorted(session.targets.vessels.items()):
            status = known.info.get("status", "?")
            click.echo(f"%{number:<4} {printable(known.ref):<32} {printable(status)}")
        click.echo(f"current target: {session.target} ({len(session.targets.vessels)} vessels known)")


@show.command("groups")
def show_groups() -> None:
    """Every group and its vessels."""
    with session_for_command() as session:
        for name in session.targets.group_names():
            members = session.targets.resolve(name)
            click.echo(f"{name}: {' '.join(f'%{n}' for n in members) or '(empty)'}")


@show.command("identities")
def show_identities() -> None:
    """The identities in $SEATTLE_HOME/keys; the current one is marked *."""
    with session_for_command() as session:
        for name in list_identities():
            mark = "*" if name == session.identity else " "
            click.echo(f"{mark} {name}  {resolve(name).to_text()}")


@show.command("timeout")
def show_timeout() -> None:
    """Seconds to wait for each node."""
    with session_for_command() as session:
        click.echo(f"{session.timeout:g}")


@show.command("uploadrate")
def show_uploadrate() -> None:
    """The upload rate (bytes per second) that lengthens the timeout of large uploads."""
    with session_for_command() as session:
        click.echo(str(session.upload_rate))


@click.group("set")
def set_() -> None:
    """Change the target vessels (owner calls) or the session's settings."""


def _set_call(command: str, call: str, argument: str, value: object, opts: Options) -> None:
    from seattle.cli.research_vessels import fan_out
    from seattle.experiment import operations

    with command_session(opts) as session:
        outcomes = fan_out(command, session, opts, operations.change(call, argument, value))
        report(outcomes, opts, lambda o: None if o.ok else header(o))


@set_.command("users")
@common_options
@click.argument("users", nargs=-1, metavar="[KEY_OR_NAME...]")
def set_users(opts: Options, users: tuple[str, ...]) -> None:
    """Replace each target vessel's users (no keys: no users). Keys as names or ed25519:... text."""
    _set_call("users", "ChangeUsers", "users", [resolve(user).to_text() for user in users], opts)


@set_.command("owner")
@common_options
@click.argument("owner", metavar="KEY_OR_NAME")
def set_owner(opts: Options, owner: str) -> None:
    """Give each target vessel to another owner (you lose control of it)."""
    _set_call("owner", "ChangeOwner", "owner", resolve(owner).to_text(), opts)


@set_.command("ownerinfo")
@common_options
@click.argument("text")
def set_ownerinfo(opts: Options, text: str) -> None:
    """Set each target vessel's owner information (at most 256 characters, one line)."""
    _set_call("ownerinfo", "ChangeOwnerInformation", "ownerinfo", text, opts)


@set_.command("advertise")
@common_options
@click.argument("value", type=click.Choice(["on", "off"]))
def set_advertise(opts: Options, value: str) -> None:
    """Advertise each target vessel in the overlay (on) or not (off)."""
    _set_call("advertise", "ChangeAdvertise", "advertise", value == "on", opts)


@set_.command("timeout")
@click.argument("seconds", type=float)
def set_timeout(seconds: float) -> None:
    """Seconds to wait for each node from now on (default 30)."""
    with session_for_command() as session:
        session.set_timeout(seconds)
        click.echo(f"timeout is now {session.timeout:g} s")


@set_.command("uploadrate")
@click.argument("rate", type=int)
def set_uploadrate(rate: int) -> None:
    """Bytes per second an upload is expected to reach; larger files get longer than the timeout."""
    with session_for_command() as session:
        session.set_upload_rate(rate)
        click.echo(f"upload rate is now {session.upload_rate} B/s")
