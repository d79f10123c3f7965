"""User-facing errors: every message a person sees from the `seattle` command is defined here.

Library code raises these with the facts; the CLI prints `str(error)` and exits with `exit_code`. Keeping the
wording in one module keeps it consistent and lets tests match on the class rather than on prose.
"""

from __future__ import annotations


class SeattleError(Exception):
    """A problem the user can act on. `str()` is the whole message."""

    exit_code = 2


class ProgramNotFound(SeattleError):
    def __init__(self, path: str) -> None:
        super().__init__(f"program file {path!r} does not exist or is not a file")


class BadResourceFile(SeattleError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"resource file rejected: {detail}")


class ConfinementUnavailable(SeattleError):
    def __init__(self, details: str) -> None:
        super().__init__(
            "this host offers neither seccomp nor Landlock, so untrusted code cannot be confined "
            f"({details}); run `seattle vessel doctor` for details, or pass --allow-unconfined to run anyway"
        )


class UnknownLayer(SeattleError):
    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown sandbox layer {name!r}; the layers are: {', '.join(known)}")


class VesselStartFailed(SeattleError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the vessel could not be started: {reason}")
