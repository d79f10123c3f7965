"""NodeError: a call the node refuses, with a stable code; its own leaf so that the call table (read by
clients) and the node's state (the node's side) can both raise it without either importing the other."""

from __future__ import annotations


class NodeError(Exception):
    """A call the node state refuses. `code` is stable and machine-readable; `message` is for a person.

    Messages keep the original node manager's wording where it had one ("No such vessel", "String Too
    Long", ...), followed by the particulars.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
