"""The vessel log: the last 16 KiB of a program's output, kept in memory and optionally in two files.

The original kept `<name>.old` and `<name>.new`: writes append to `.new`, and once `.new` holds 16 KiB it
replaces `.old`. Reading concatenates both and keeps the tail. We keep that layout so a node manager that
restarts still has its vessels' logs, and a write is at most one append plus, now and then, one rename
(a crash leaves either the old or the new pair, never a torn file).
"""

from __future__ import annotations

import os
from pathlib import Path

LOG_CAPACITY = 16 * 1024


class CircularLog:
    """At most `capacity` bytes of the most recent output; file-backed when `path` is given."""

    def __init__(self, path: Path | None = None, capacity: int = LOG_CAPACITY) -> None:
        self._capacity = capacity
        self._path = path
        self._old = b""
        self._new = b""
        if path is not None:
            self._old = _read_or_empty(self._old_path())
            self._new = _read_or_empty(self._new_path())

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._new += data
        if self._path is not None:
            with open(self._new_path(), "ab") as f:
                f.write(data)
        if len(self._new) >= self._capacity:
            self._old, self._new = self._new[-self._capacity:], b""
            if self._path is not None:
                os.replace(self._new_path(), self._old_path())

    def read(self) -> bytes:
        """The last `capacity` bytes written."""
        return (self._old + self._new)[-self._capacity:]

    def clear(self) -> None:
        """Forget everything (ResetVessel); removes the files too."""
        self._old = self._new = b""
        if self._path is not None:
            for p in (self._old_path(), self._new_path()):
                p.unlink(missing_ok=True)

    def _old_path(self) -> Path:
        assert self._path is not None
        return self._path.with_name(self._path.name + ".old")

    def _new_path(self) -> Path:
        assert self._path is not None
        return self._path.with_name(self._path.name + ".new")


def _read_or_empty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
