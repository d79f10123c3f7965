"""What every researcher command shares: the session it works on, the identity it acts as, the common options
(--on, --as, --timeout, --json), the progress bar, and the per-vessel report with its exit code.

One-shot commands load `session.json`, act, and save it. The interactive shell installs one in-memory session
with `use_session` and runs the very same click commands, so both forms behave alike by construction.
Exit codes: 0 every vessel succeeded, 1 some failed, 2 a usage error (SeattleError's default).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import click

from seattle.cli.terminal import printable
from seattle.errors import NoIdentityChosen, NoTargets
from seattle.experiment.session import Session, load_session, save_session
from seattle.keys import Identity, PublicKey, is_protected, list_identities, load_identity, resolve

if TYPE_CHECKING:
    from seattle.experiment.fanout import Outcome, Progress

#: Vessels above which a long operation shows a progress bar (on a terminal only).
PROGRESS_THRESHOLD = 20
#: Vessels named per reason in the summary before "and N more".
SUMMARY_NAMES = 12

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


@dataclass
class _Shell:
    """State the interactive shell keeps across commands (None outside it)."""

    session: Session
    identities: dict[str, Identity]


_shell: _Shell | None = None


@contextmanager
def use_session(session: Session) -> Iterator[None]:
    """Make commands use `session` (kept in memory) instead of loading session.json each time (the shell)."""
    global _shell
    previous, _shell = _shell, _Shell(session, {})
    try:
        yield
    finally:
        _shell = previous


@contextmanager
def session_for_command() -> Iterator[Session]:
    """The session a command works on; saved afterwards, also when the command failed part-way (groups)."""
    session = _shell.session if _shell is not None else load_session()
    before = json.dumps(session.to_json())  # a snapshot: to_json shares the live groups and details
    try:
        yield session
    finally:
        if json.dumps(session.to_json()) != before:  # commands that only read leave the file (and the disk) alone
            save_session(session)


@dataclass(frozen=True)
class Options:
    on: str | None
    as_identity: str | None
    timeout: float | None
    as_json: bool


def common_options(function: F) -> F:
    """--on, --as, --timeout, --json, passed to the command as one `opts: Options`."""

    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object per vessel.")
    @click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                  help="Seconds to wait for each node (default: the session's, `seattle show timeout`).")
    @click.option("--as", "as_identity", metavar="IDENTITY", help="Act as this identity for this command.")
    @click.option("--on", "on", metavar="TARGET", help="Act on this target (%N, a group, HOST:PORT:VESSEL).")
    @functools.wraps(function)
    def wrapper(*args: Any, on: str | None, as_identity: str | None, timeout: float | None, as_json: bool,
                **kwargs: Any) -> Any:
        return function(*args, opts=Options(on, as_identity, timeout, as_json), **kwargs)

    return wrapper  # type: ignore[return-value]


def who_options(function: F) -> F:
    """--as and --timeout only, for commands that act on no target (browse, contact)."""

    @click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                  help="Seconds to wait for each node (default: the session's, `seattle show timeout`).")
    @click.option("--as", "as_identity", metavar="IDENTITY", help="Act as this identity for this command.")
    @functools.wraps(function)
    def wrapper(*args: Any, as_identity: str | None, timeout: float | None, **kwargs: Any) -> Any:
        return function(*args, opts=Options(None, as_identity, timeout, False), **kwargs)

    return wrapper  # type: ignore[return-value]


def public_key_of(session: Session, opts: Options) -> PublicKey | None:
    """The public key of --as or the session's identity (no passphrase needed: nothing is signed)."""
    name = opts.as_identity or session.identity
    return resolve(name) if name is not None else None


@contextmanager
def command_session(opts: Options) -> Iterator[Session]:
    """`session_for_command` with --timeout applied for this command only (restored before it is saved)."""
    with session_for_command() as session:
        saved_timeout = session.timeout
        if opts.timeout is not None:
            session.timeout = opts.timeout
        try:
            yield session
        finally:
            session.timeout = saved_timeout


@overload
def identity(session: Session, opts: Options, *, required: Literal[True] = True) -> Identity: ...
@overload
def identity(session: Session, opts: Options, *, required: bool) -> Identity | None: ...


def identity(session: Session, opts: Options, *, required: bool = True) -> Identity | None:
    """The identity to sign with: --as, else the session's; asks for a passphrase if the key has one."""
    name = opts.as_identity or session.identity
    if name is None:
        if required:
            raise NoIdentityChosen(list_identities())
        return None
    return load_named_identity(name)


def load_named_identity(name: str) -> Identity:
    if _shell is not None and name in _shell.identities:
        return _shell.identities[name]
    passphrase = click.prompt(f"Passphrase for {name}", hide_input=True, err=True) if is_protected(name) else None
    loaded = load_identity(name, passphrase=passphrase)
    if _shell is not None:
        _shell.identities[name] = loaded
    return loaded


def targets(session: Session, opts: Options) -> list[int]:
    """The vessel numbers of --on, else of the session's target; NoTargets if it holds none."""
    expression = opts.on or session.target
    numbers = session.targets.resolve(expression)
    if not numbers:
        raise NoTargets(expression)
    return numbers


def run_async(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """trio.run, imported only by commands that talk to nodes (commands that read the session start faster)."""
    import trio

    return trio.run(function, *args)


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Progress | None]:
    """A rich progress bar on standard error when it is a terminal and the operation is long; else nothing."""
    if total < PROGRESS_THRESHOLD or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress as Bar

    with Bar(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"{description}: {total} vessels", total=total)
        yield lambda done, _total: bar.update(task, completed=done)


def report(outcomes: Sequence[Outcome], opts: Options, render: Callable[[Outcome], str | None] | None = None) -> None:
    """Print each vessel's result (or one JSON object per vessel), then the summary; exit 1 if any failed."""
    if opts.as_json:
        for outcome in outcomes:
            click.echo(json.dumps(outcome.to_json()))
    elif render is not None:
        for outcome in outcomes:
            text = render(outcome) if outcome.ok else None
            if text is not None:  # renders escape single-line fields themselves; this catches the rest
                click.echo(printable(text, keep_layout=True))
    print_summary(outcomes, err=opts.as_json)
    if any(not outcome.ok for outcome in outcomes):
        raise click.exceptions.Exit(1)


def print_summary(outcomes: Sequence[Outcome], *, err: bool = False) -> None:
    from seattle.experiment.fanout import summarize

    total = len(outcomes)
    for reason, members in summarize(outcomes):
        names = ", ".join(f"%{o.number} ({o.ref})" for o in members[:SUMMARY_NAMES])
        more = f" and {len(members) - SUMMARY_NAMES} more" if len(members) > SUMMARY_NAMES else ""
        click.echo(printable(f"{len(members)} of {total} vessels {reason}: {names}{more}"), err=err)


def header(outcome: Outcome) -> str:
    return f"--- %{outcome.number} {printable(outcome.ref)} ---"


def block(outcome: Outcome) -> str:
    """A header line and the result as text (logs, files, resource files)."""
    result = outcome.result
    if isinstance(result, bytes):
        result = result.decode("utf-8", errors="replace")
    if isinstance(result, list):  # file names: each escaped whole, so a "\n" in one cannot forge a line
        result = " ".join(printable(item) for item in result)
    return f"{header(outcome)}\n{str(result).rstrip()}"
