"""User-facing errors: every message a person sees from the `seattle` command is defined here.

Library code raises these with the facts; the CLI prints `str(error)` and exits with `exit_code`. Keeping the
wording in one module keeps it consistent and lets tests match on the class rather than on prose.
"""

from __future__ import annotations

from pathlib import Path


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


# Identities: keys, names, passphrases (seattle.keys).


class BadKeyName(SeattleError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name!r} cannot be used as a key name: {reason}")


class BadPublicKey(SeattleError):
    def __init__(self, text: str, reason: str) -> None:
        shown = text if len(text) <= 80 else text[:77] + "..."
        super().__init__(
            f"{shown!r} is not a public key: {reason} (expected ed25519: and 43 base64url characters)"
        )


class IdentityNotFound(SeattleError):
    def __init__(self, name: str, directory: Path, known: list[str]) -> None:
        have = f"the identities there are: {', '.join(known)}" if known else "it holds no identities yet"
        super().__init__(f"no identity named {name!r} in {directory} ({have})")


class IdentityExists(SeattleError):
    def __init__(self, name: str, path: Path) -> None:
        super().__init__(
            f"an identity named {name!r} already exists ({path}); choose another name, or move that file "
            "away first if you really mean to replace it (vessels owned by the old key stay owned by it)"
        )


class KeyFileTooOpen(SeattleError):
    def __init__(self, path: Path, mode: int) -> None:
        super().__init__(
            f"refusing to use private key file {path}: its mode {mode:04o} lets other users read it; "
            f"make it private with `chmod 600 {path}` (and consider the key exposed if others had access)"
        )


class CorruptKeyFile(SeattleError):
    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"key file {path} is damaged or not a seattle key file: {detail}; restore it from your backup"
        )


class PassphraseRequired(SeattleError):
    def __init__(self, name: str) -> None:
        super().__init__(f"the private key of identity {name!r} is protected by a passphrase; give it")


class PassphraseNotExpected(SeattleError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"the private key of identity {name!r} is not protected by a passphrase, but one was given; "
            "load it without a passphrase"
        )


class WrongPassphrase(SeattleError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"wrong passphrase for identity {name!r} (or its key file is damaged): the private key could "
            "not be decrypted"
        )


class BadPassphrase(SeattleError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"passphrase rejected: {reason}")


class UnknownName(SeattleError):
    def __init__(self, name: str, names_file: Path, known: list[str]) -> None:
        have = f"known names: {', '.join(known)}" if known else "no names are defined yet"
        super().__init__(
            f"no key is named {name!r} ({have}); add a line `{name} ed25519:...` to {names_file}, "
            "or give the public key itself"
        )


class NameTaken(SeattleError):
    def __init__(self, name: str, existing: str) -> None:
        super().__init__(
            f"the name {name!r} already stands for another key ({existing}); remove it first or choose "
            "another name"
        )


class BadNamesFile(SeattleError):
    def __init__(self, path: Path, line: int, detail: str) -> None:
        super().__init__(
            f"names file {path}, line {line}: {detail}; each line must read `name ed25519:<key>`"
        )
