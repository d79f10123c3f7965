"""The one shape of a refusal by a protocol check: a stable machine-readable `code` and a `message` for a person.

Signed envelopes, node manager requests, overlay datagrams and vessel records each refuse bad input with their
own subclass (so callers catch exactly the refusals of the layer they call); the shape is defined once here.
"""

from __future__ import annotations


class Refused(Exception):
    """Input a check refused: `code` is stable (tests and peers match on it), `message` says what to fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
