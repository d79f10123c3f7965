"""`seattle shell`: seash's interactive form of the same commands, with the prompt `identity@target !> `.

Each line is split like a shell would (shlex) and run through the very same click commands as the one-shot
form, in this process, with the session kept in memory (`use_session`) and saved after every command; an
identity's passphrase is asked once per shell. History lives in seattle_home()/shell_history; Tab completes
commands, subcommands, identities, groups, %N targets and local file names. `exit`, `quit` or Ctrl-D leave.
"""

from __future__ import annotations

import shlex
import traceback
from collections.abc import Iterable

import click
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory

from seattle.cli.research_common import use_session
from seattle.cli.terminal import printable
from seattle.experiment.session import Session, load_session
from seattle.home import seattle_home
from seattle.keys import list_identities

HISTORY_FILE = "shell_history"
LEAVE = ("exit", "quit")
#: Commands that make no sense inside the shell.
NOT_IN_SHELL = ("shell",)


def prompt_text(session: Session) -> str:
    return f"{session.identity or '(no identity)'}@{session.target} !> "


class ShellCompleter(Completer):
    """Completes the word under the cursor from what the shell knows at that moment."""

    def __init__(self, root: click.Group, session: Session) -> None:
        self.root = root
        self.session = session
        self.paths = PathCompleter(expanduser=True)

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        before = document.text_before_cursor
        words = before.split()
        current = "" if before.endswith(" ") or not words else words[-1]
        previous = words[:-1] if current else words
        for candidate in self._candidates(previous, current):
            if candidate.startswith(current):
                yield Completion(candidate, start_position=-len(current))
        if not current.startswith(("%", "-")) and previous and previous[0] not in ("on", "as"):
            yield from self.paths.get_completions(Document(current, len(current)), complete_event)

    def _candidates(self, previous: list[str], current: str) -> list[str]:
        ctx = click.Context(self.root)
        if not previous:
            return [*self.root.list_commands(ctx), *LEAVE]
        command = self.root.get_command(ctx, previous[0])
        if isinstance(command, click.Group) and len(previous) == 1:
            return command.list_commands(ctx)
        last = previous[-1]
        if last in ("--as", "as") or previous[0] in ("loadkeys",):
            return list_identities()
        targets = [*self.session.targets.group_names(), *(f"%{n}" for n in sorted(self.session.targets.vessels))]
        if last in ("--on", "on", "to", "from") or current.startswith("%"):
            return targets
        if command is not None and current.startswith("-"):
            return [opt for param in command.params for opt in getattr(param, "opts", [])]
        return []


def run_line(root: click.Group, line: str) -> int:
    """Run one shell line; its exit code (errors are printed, never raised)."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        click.echo(printable(f"Error: {exc}"), err=True)
        return 2
    if not words:
        return 0
    if words[0] in NOT_IN_SHELL:
        click.echo(f"Error: {words[0]!r} cannot be used inside the shell", err=True)
        return 2
    try:
        result = root.main(words, prog_name="seattle", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):  # Ctrl-C stops the command, not the shell
        click.echo("Interrupted", err=True)
        return 130
    except Exception:  # a bug in a command must not end the researcher's shell and lose its session
        traceback.print_exc()
        return 70
    return result if isinstance(result, int) else 0


def run_shell(root: click.Group) -> None:
    """The read-run loop; the session is saved after every command by the commands themselves."""
    session = load_session()
    prompt: PromptSession[str] = PromptSession(history=FileHistory(str(seattle_home() / HISTORY_FILE)),
                                               completer=ShellCompleter(root, session),
                                               complete_while_typing=False)
    with use_session(session):
        while True:
            try:
                line = prompt.prompt(prompt_text(session))
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            if line.strip() in LEAVE:
                break
            run_line(root, line)


@click.command()
def shell() -> None:
    """An interactive shell for every researcher command, with history and Tab completion."""
    from seattle.cli.main import main

    run_shell(main)
