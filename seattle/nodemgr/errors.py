"""User-facing errors of identities (keys, names) and the node manager, in the style of seattle/errors.py.

Library code raises these with the facts; the CLI prints `str(error)` and exits with `exit_code`. Every
message names what was wrong and, where there is one, the fix, so tests can match on the class and people
can act on the text.
"""

from __future__ import annotations

from pathlib import Path

from seattle.errors import SeattleError


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
