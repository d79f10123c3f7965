"""The fan-out commands on vessels: list, update, upload, download, cat, delete, run, start, stop, reset,
split and join. Each is one function calling `seattle.experiment.operations`; research_common prints and exits.
"""

from __future__ import annotations

from pathlib import Path

import click

from seattle.atomicfile import write_atomic
from seattle.cli.research_common import (
    Options,
    block,
    command_session,
    common_options,
    identity,
    progress_bar,
    public_key_of,
    report,
    run_async,
    targets,
)
from seattle.cli.terminal import printable
from seattle.errors import LocalFileError
from seattle.experiment import operations
from seattle.experiment.fanout import Node, Outcome, VesselOp
from seattle.experiment.session import Session
from seattle.experiment.targets import VesselRef
from seattle.vessel.spec import PLATFORMS, PYTHON3

#: The largest file one AddFileToVessel carries (the node's limit).
MAX_UPLOAD = 4 * 1024 * 1024


def fan_out(command: str, session: Session, opts: Options, op: VesselOp, *, signed: bool = True,
            op_timeout: float | None = None) -> list[Outcome]:
    """Run `op` on the command's targets with a progress bar; records `<command>good`/`<command>fail`."""
    numbers = targets(session, opts)
    signer = identity(session, opts) if signed else None  # public calls go unsigned: no passphrase to ask
    with progress_bar(command, len(numbers)) as progress:
        return run_async(lambda: operations.execute(session, command, numbers, op, signer, op_timeout=op_timeout,
                                                    progress=progress))


def read_local(path: Path) -> bytes:
    """A local file to send, at most one frame's worth; LocalFileError saying why not."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_UPLOAD + 1)
    except OSError as exc:
        raise LocalFileError(path, exc.strerror or str(exc)) from None
    if len(data) > MAX_UPLOAD:
        raise LocalFileError(path, f"it is larger than {MAX_UPLOAD} bytes, the most one upload carries")
    return data


@click.command("list")
@common_options
def list_(opts: Options) -> None:
    """Ask each target's node for its vessels: ID, owner (*), vessel, status, owner information.

    Also makes the groups list<Status> (e.g. listStarted)."""
    with command_session(opts) as session:
        outcomes = fan_out("list", session, opts, operations.describe, signed=False)
        mine = public_key_of(session, opts)
        by_status: dict[str, list[int]] = {}
        for outcome in outcomes:
            if outcome.ok:
                by_status.setdefault(str(outcome.result.get("status")), []).append(outcome.number)
        for status, members in by_status.items():
            if status.isalnum():
                session.targets.set_group(f"list{status}", members)

        def row(outcome: Outcome) -> str:
            entry = outcome.result
            own = "*" if operations.owned_by(entry, mine) else " "
            return (f"%{outcome.number:<4} {own} {printable(outcome.ref):<32} {printable(entry['status']):<10} "
                    f"{printable(entry['ownerinfo'])}")

        if not opts.as_json:
            click.echo(f"{'ID':<5} {'O'} {'vessel':<32} {'status':<10} ownerinfo")
        report(outcomes, opts, row)


@click.command()
@common_options
def update(opts: Options) -> None:
    """Refresh what the session knows about each target vessel (status, owner, users, ...)."""
    with command_session(opts) as session:
        report(fan_out("update", session, opts, operations.describe, signed=False), opts)


@click.command()
@common_options
@click.argument("local", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("remote", required=False)
def upload(opts: Options, local: Path, remote: str | None) -> None:
    """Copy the local file LOCAL into every target vessel (as REMOTE, default its base name)."""
    data = read_local(local)
    with command_session(opts) as session:
        op = operations.upload(remote or local.name, data)
        report(fan_out("upload", session, opts, op, op_timeout=session.upload_timeout(len(data))), opts)


@click.command()
@common_options
@click.argument("remote")
@click.argument("local", type=click.Path(path_type=Path, dir_okay=False), required=False)
def download(opts: Options, remote: str, local: Path | None) -> None:
    """Copy REMOTE from every target vessel to LOCAL.HOST_PORT_VESSEL (LOCAL defaults to REMOTE)."""
    base = local or Path(remote)

    async def fetch(node: Node, ref: VesselRef) -> str:
        data = await node.client.call("RetrieveFileFromVessel", vessel=ref.vessel, filename=remote)
        path = base.with_name(f"{base.name}.{ref.host.replace(':', '_')}_{ref.port}_{ref.vessel}")
        write_local(path, data)
        return str(path)

    with command_session(opts) as session:
        report(fan_out("download", session, opts, fetch), opts,
               lambda o: printable(f"%{o.number} {o.ref} -> {o.result}"))


def write_local(path: Path, data: bytes) -> None:
    """Written atomically (`seattle.atomicfile`), so PATH is never half written."""
    try:
        write_atomic(path, data, mode=0o644)
    except OSError as exc:
        raise LocalFileError(path, exc.strerror or str(exc)) from None


@click.command()
@common_options
@click.argument("remote")
def cat(opts: Options, remote: str) -> None:
    """Print the file REMOTE of every target vessel."""
    with command_session(opts) as session:
        op = operations.call("RetrieveFileFromVessel", filename=remote)
        report(fan_out("cat", session, opts, op), opts, block)


@click.command()
@common_options
@click.argument("remote")
def delete(opts: Options, remote: str) -> None:
    """Delete the file REMOTE from every target vessel."""
    with command_session(opts) as session:
        report(fan_out("delete", session, opts, operations.call("DeleteFileInVessel", filename=remote)), opts)


#: --dialect: the language the program is written in (StartVesselEx's platform).
dialect_option = click.option(
    "--dialect", type=click.Choice(PLATFORMS), default=PYTHON3, show_default=True,
    help="The program's language: python3, or the original Repy's Python 2 with the V2 or V1 API.")


@click.command(context_settings={"ignore_unknown_options": True})
@common_options
@dialect_option
@click.argument("program", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(opts: Options, dialect: str, program: Path, args: tuple[str, ...]) -> None:
    """Upload the local PROGRAM to every target vessel and start it with ARGS (upload + start)."""
    data = read_local(program)
    with command_session(opts) as session:
        op = operations.run(program.name, data, args, dialect)
        timeout = session.upload_timeout(len(data)) + session.timeout
        report(fan_out("run", session, opts, op, op_timeout=timeout), opts)


@click.command(context_settings={"ignore_unknown_options": True})
@common_options
@dialect_option
@click.argument("program")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def start(opts: Options, dialect: str, program: str, args: tuple[str, ...]) -> None:
    """Start PROGRAM, a file already in every target vessel, with ARGS."""
    with command_session(opts) as session:
        report(fan_out("start", session, opts, operations.start(program, args, dialect)), opts)


@click.command()
@common_options
def stop(opts: Options) -> None:
    """Stop the program of every target vessel."""
    with command_session(opts) as session:
        report(fan_out("stop", session, opts, operations.call("StopVessel")), opts)


@click.command()
@common_options
def reset(opts: Options) -> None:
    """Stop every target vessel and remove its files and log (files named private_* stay)."""
    with command_session(opts) as session:
        report(fan_out("reset", session, opts, operations.call("ResetVessel")), opts)


@click.command()
@common_options
@click.argument("resources", type=click.Path(path_type=Path, dir_okay=False))
def split(opts: Options, resources: Path) -> None:
    """Split every target vessel in two: a piece with the RESOURCES file's allotment, and the rest.

    The pieces replace the vessel in the session: groups split1 (the rest), split2 (the new pieces)."""
    text = read_local(resources).decode("utf-8", errors="replace")
    with command_session(opts) as session:
        numbers = targets(session, opts)
        signer = identity(session, opts)
        outcomes = run_async(lambda: operations.split(session, numbers, text, signer))
        report(outcomes, opts, lambda o: printable(f"%{o.number} {o.ref} -> {', '.join(map(str, o.result))}"))


@click.command()
@common_options
def join(opts: Options) -> None:
    """Join the target vessels that share a node into one vessel per node (group joingood)."""
    with command_session(opts) as session:
        numbers = targets(session, opts)
        signer = identity(session, opts)
        outcomes = run_async(lambda: operations.join(session, numbers, signer))
        report(outcomes, opts, lambda o: printable(f"%{o.number} {o.ref} -> {o.result}"))

