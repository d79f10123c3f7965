"""One way to write a file so that readers see the old contents or the new, never a torn or foreign file.

    write_atomic(path, data, mode=0o644)              # replaces `path`; survives a crash at any moment
    write_atomic(path, data, overwrite=False)         # FileExistsError if `path` is there already
    write_atomic_in(dir_fd, name, data)               # the same inside a directory held open by descriptor

Every file seattle writes whole (keys, configuration, node directory records, sessions, profiles,
installers, downloads, unit files) goes through here, so each gets the same guarantees:

* the data goes to a new temporary file `.<name>.<random>.tmp` in the target's directory, opened with
  O_CREAT | O_EXCL | O_NOFOLLOW, so a file or symlink planted under that name is never written through;
* the temporary is created 0600 and only then given `mode` (fchmod, so the umask cannot clear bits the
  caller asked for, and nobody can read a half-written private file);
* it is fsynced, renamed over the target (or hard-linked to it when `overwrite` is false, which fails if
  the target exists: two writers cannot both believe they created it), and the directory is fsynced so the
  rename itself survives a power cut;
* on any failure the temporary is removed and the target is untouched.

Temporary names start with "." and end in ".tmp", a pattern the node directory's uninstall recognises as
seattle's own. `write_atomic_in` works through a directory descriptor, for a caller that opened the directory
once and must not resolve its path again (`seattle.nodemgr.vesselfiles`: a vessel directory that a symlink
could replace), and lets it name the temporary so its own clean-up recognises it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def temporary_name(target: str) -> str:
    """The name of a fresh temporary file beside `target` (a file name, not a path)."""
    return f".{target}.{secrets.token_hex(6)}.tmp"


def write_atomic(path: Path | str, data: bytes, *, mode: int = 0o600, overwrite: bool = True) -> None:
    """Write `data` to `path` atomically with permission bits `mode` (module docstring).

    `overwrite=False` raises FileExistsError, writing nothing, if `path` exists.
    """
    path = Path(path)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        write_atomic_in(dir_fd, path.name, data, mode=mode, overwrite=overwrite)
    finally:
        os.close(dir_fd)


def write_atomic_in(dir_fd: int, name: str, data: bytes, *, mode: int = 0o600, overwrite: bool = True,
                    temporary: str | None = None) -> None:
    """`write_atomic` of the file `name` in the directory open as `dir_fd`; `temporary` names the temporary
    file (default: `temporary_name(name)`)."""
    temporary = temporary or temporary_name(name)
    fd = os.open(temporary, _CREATE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        else:
            os.link(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=dir_fd)
    os.fsync(dir_fd)
