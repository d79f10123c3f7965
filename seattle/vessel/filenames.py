"""The rules a vessel file name follows: one home for the vessel's file API and the node manager's file calls.

A leaf that imports nothing, because both sides of the trust boundary apply the same rules: the vessel child
(`child.api.files`, where a program opens a file) and the host (`seattle.nodemgr.vesselfiles` and the call
table, where a researcher uploads, reads or deletes one). The host must not load the sandbox to check a name.
"""

from __future__ import annotations

#: The longest file name Repy allows.
MAX_FILENAME = 120
FILENAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")


def filename_problem(filename: str, name: str = "filename") -> str | None:
    """The rule `filename` breaks, as a sentence that starts with `name`; None if it follows every rule."""
    if not filename:
        return f"{name} must not be empty"
    if len(filename) > MAX_FILENAME:
        return f"{name} is {len(filename)} characters long; the limit is {MAX_FILENAME}"
    bad = sorted(set(filename) - FILENAME_CHARACTERS)
    if bad:
        return f"{name} {filename!r} may only hold a-z, 0-9, '.', '_' and '-'; it has {''.join(bad)!r}"
    if filename.startswith("."):
        return f"{name} {filename!r} must not start with '.'"
    return None


def is_valid_filename(filename: str) -> bool:
    return filename_problem(filename) is None
