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


class NodeNotFound(SeattleError):
    def __init__(self, node_dir: object, config_file: str) -> None:
        super().__init__(f"{node_dir} is not a node directory (it has no {config_file}); "
                         "create one with `seattle node init --dir DIR`")


class NodeExists(SeattleError):
    def __init__(self, node_dir: object, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(f"{node_dir} already holds a node{extra}; refusing to replace its key and vessels")


class BadNodeConfig(SeattleError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"node configuration rejected: {detail}")
        self.detail = detail


class NodeStartFailed(SeattleError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the node manager could not start: {reason}")


class NoOwnerGiven(SeattleError):
    def __init__(self, choices: list[str]) -> None:
        listed = ", ".join(choices) if choices else "none yet; create one with `seattle keygen NAME`"
        super().__init__(f"say who owns the node's first vessel with --owner IDENTITY (identities: {listed})")


class BadNodeAddress(SeattleError):
    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"node address {text!r} rejected: {reason}; write it as HOST:PORT, e.g. 127.0.0.1:1224")


class UnknownCall(SeattleError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown call {name!r}; the calls are: {', '.join(known)}")


class BadCallArguments(SeattleError):
    def __init__(self, call: str, usage: str, reason: str) -> None:
        super().__init__(f"{call}: {reason}; usage: {usage}")


class NodeUnreachable(SeattleError):
    exit_code = 1

    def __init__(self, reason: str) -> None:
        super().__init__(reason)


class CallRefused(SeattleError):
    """The node answered with an error: exit 1 (not 2) so scripts can tell it from a usage mistake."""

    exit_code = 1

    def __init__(self, call: str, code: str, message: str) -> None:
        super().__init__(f"{call} refused by the node: {code}: {message}")
        self.code = code


class OutputNotWritten(SeattleError):
    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"cannot write the result to {path}: {reason}")


class SignedCallNeedsIdentity(SeattleError):
    def __init__(self, call: str) -> None:
        super().__init__(f"{call} must be signed: pass --as IDENTITY (an identity made with `seattle keygen`)")
