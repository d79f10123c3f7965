"""A vessel's files as the node manager handles them: one flat directory per vessel.

The vessel program sees the same directory through the Repy file API, so the node manager applies the same
file-name rules (`seattle.vessel.filenames`) and disk arithmetic (`seattle.vessel.diskusage`).
What is added here is what the original node manager did on top:

* Names starting with `private_` belong to the program: users can neither upload, fetch, delete nor list
  them, and ResetVessel keeps them.
* An upload is written atomically (`seattle.atomicfile.write_atomic_in`: temporary file, fsync, rename,
  directory fsync), so a node manager killed at any moment leaves the old file or the new one, never a torn
  one. It works through a descriptor of the vessel directory (`dir_fd`), so a symlink planted in place of the
  directory or its path cannot send the write elsewhere.
  Temporary names start with `.`, which no Repy file name may, so the program can neither open nor list
  them; `remove_partial_uploads` clears any a kill left behind.
* The upload disk check charges the new file its size plus the nanny's 4096 bytes, and does not credit the
  size of a file being overwritten: until the rename both exist, and the nanny, polling every 0.5 s, may
  see both and kill the vessel for it.

Every file is reached through a descriptor of the vessel directory with O_NOFOLLOW, so a link planted in
the directory cannot make the node manager read or write outside it.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from seattle.atomicfile import write_atomic_in
from seattle.nodemgr.calltable import MAX_FILE_DATA
from seattle.nodemgr.nodeerror import NodeError
from seattle.vessel.diskusage import PER_FILE_OVERHEAD, disk_usage
from seattle.vessel.filenames import filename_problem, is_valid_filename

PRIVATE_PREFIX = "private_"
#: Temporary upload files; the leading '.' keeps them out of every Repy file name.
UPLOAD_PREFIX = ".upload-"

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def create_dir(vessel_dir: Path) -> None:
    """Make the (empty) directory of a new vessel; an existing one is kept."""
    Path(vessel_dir).mkdir(mode=0o700, parents=True, exist_ok=True)


def remove_dir(vessel_dir: Path) -> None:
    """Remove a vessel's directory and everything in it; a missing directory is not an error."""
    with suppress(FileNotFoundError):
        shutil.rmtree(vessel_dir)


def check_user_filename(filename: object) -> str:
    """`filename` if a user may name it in a call, else NodeError("bad_filename" / "private_filename")."""
    if not isinstance(filename, str):
        raise NodeError("bad_filename", f"Filename must be a string, got {type(filename).__name__}")
    if not filename:
        raise NodeError("bad_filename", "Filename is empty")
    if filename.startswith(PRIVATE_PREFIX):
        raise NodeError("private_filename",
                        f"User is not allowed to use file names starting with '{PRIVATE_PREFIX}'")
    problem = filename_problem(filename)
    if problem:
        raise NodeError("bad_filename", f"Bad filename: {problem}")
    return filename


def add_file(vessel_dir: Path, filename: str, data: bytes, disk_limit: int) -> None:
    """Write `data` as `filename` (replacing any file of that name) atomically, within `disk_limit` bytes.

    NodeError("disk_full") if the directory's use plus len(data) + 4096 would exceed `disk_limit`.
    """
    filename = check_user_filename(filename)
    if not isinstance(data, bytes | bytearray):
        raise NodeError("bad_data", f"File data must be bytes, got {type(data).__name__}")
    used = disk_usage(vessel_dir)
    needed = len(data) + PER_FILE_OVERHEAD
    if used + needed > disk_limit:
        raise NodeError("disk_full", f"Not enough free disk space: the vessel uses {used} of its "
                                     f"{disk_limit} bytes, and {filename!r} needs {needed} (its size "
                                     f"plus {PER_FILE_OVERHEAD})")
    with _directory(vessel_dir) as dir_fd:
        write_atomic_in(dir_fd, filename, bytes(data), mode=0o600,
                        temporary=UPLOAD_PREFIX + secrets.token_hex(8))


def retrieve_file(vessel_dir: Path, filename: str, limit: int = MAX_FILE_DATA) -> bytes:
    """The contents of `filename`; NodeError("file_not_found") if it is missing or not a regular file,
    NodeError("file_too_large") if it holds more than `limit` bytes: the size is checked before reading, and
    no more than `limit` + 1 bytes are ever read (the program may be growing the file meanwhile), so a vessel's
    large file never costs the node more memory than the largest answer it may send."""
    filename = check_user_filename(filename)
    with _directory(vessel_dir) as dir_fd:
        try:
            fd = os.open(filename, _READ_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ELOOP):
                raise _not_found(filename) from None
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise _not_found(filename)
            if info.st_size > limit:
                raise _too_large(filename, info.st_size, limit)
            chunks = []
            left = limit + 1
            while left and (chunk := os.read(fd, min(left, 1 << 20))):
                chunks.append(chunk)
                left -= len(chunk)
            if not left:
                raise _too_large(filename, limit + 1, limit)
            return b"".join(chunks)
        finally:
            os.close(fd)


def delete_file(vessel_dir: Path, filename: str) -> None:
    """Remove `filename`; NodeError("file_not_found") if there is no such file."""
    filename = check_user_filename(filename)
    with _directory(vessel_dir) as dir_fd:
        try:
            os.unlink(filename, dir_fd=dir_fd)
        except (FileNotFoundError, IsADirectoryError):
            raise _not_found(filename) from None


def list_files(vessel_dir: Path) -> list[str]:
    """The names a user may see: regular files with a Repy name not starting with `private_`, sorted."""
    with os.scandir(vessel_dir) as entries:
        return sorted(entry.name for entry in entries
                      if is_valid_filename(entry.name) and not entry.name.startswith(PRIVATE_PREFIX)
                      and entry.is_file(follow_symlinks=False))


def reset_files(vessel_dir: Path) -> None:
    """Remove everything in the directory but the program's `private_` regular files (ResetVessel).

    Idempotent, so that `NodeState.open` can finish a reset a kill interrupted.
    """
    with _directory(vessel_dir) as dir_fd:
        for name in os.listdir(dir_fd):
            if not _is_private_file(dir_fd, name):
                _remove_entry(dir_fd, name)


def remove_partial_uploads(vessel_dir: Path) -> None:
    """Delete the temporary files of uploads that a kill interrupted."""
    with _directory(vessel_dir) as dir_fd:
        for name in os.listdir(dir_fd):
            if name.startswith(UPLOAD_PREFIX):
                _remove_entry(dir_fd, name)


@contextmanager
def _directory(vessel_dir: Path) -> Iterator[int]:
    fd = os.open(vessel_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def _is_private_file(dir_fd: int, name: str) -> bool:
    if not (name.startswith(PRIVATE_PREFIX) and is_valid_filename(name)):
        return False
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _remove_entry(dir_fd: int, name: str) -> None:
    with suppress(FileNotFoundError):
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)


def _too_large(filename: str, size: int, limit: int) -> NodeError:
    return NodeError("file_too_large", f"File {filename!r} holds {size} bytes (or more); RetrieveFileFromVessel "
                                       f"sends files of at most {limit} bytes")


def _not_found(filename: str) -> NodeError:
    return NodeError("file_not_found", f"File not found: {filename!r}")
