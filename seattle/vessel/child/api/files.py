"""The file API: openfile, listfiles, removefile, and the file objects programs read and write.

A vessel's files live directly in its directory; names are flat (no directories) and limited to
a-z 0-9 . _ - as in Repy. Every open goes through a descriptor of the vessel directory (`dir_fd`) with
O_NOFOLLOW, and the opened file must be a regular file with a single link, so a symbolic or hard link
planted in the directory cannot lead outside it even on a host without Landlock.

Charges (Repy's): disk I/O is counted in 4 KiB blocks, at least one per call, against fileread and
filewrite; creating a file costs a filewrite block; each open file holds one filesopened item.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from seattle.vessel import errors
from seattle.vessel.child.api.checks import (
    api_call,
    api_object,
    require_bool,
    require_int,
    require_int_or_none,
    require_str,
    require_str_or_bytes,
)
from seattle.vessel.filenames import MAX_FILENAME, filename_problem, is_valid_filename

if TYPE_CHECKING:
    from seattle.vessel.child.context import VesselContext

#: Disk use is charged in blocks of this many bytes.
BLOCK = 4096

_OPEN_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def exports(ctx: VesselContext) -> dict[str, object]:
    """openfile, listfiles and removefile, bound to `ctx`."""
    open_names: set[str] = set()
    registry = threading.Lock()  # guards open_names, so "already open" and "remove" cannot race

    def forget(name: str) -> None:
        with registry:
            open_names.discard(name)

    def openfile(filename: object, create: object) -> object:
        name = check_filename(filename)
        may_create = require_bool(create, "create")
        with registry:
            if name in open_names:
                raise errors.FileInUseError(f"{name!r} is already open; close it first")
            open_names.add(name)
        item = object()
        try:
            ctx.accountant.acquire("filesopened", item)
            try:
                fd = _open(ctx, name, may_create)
            except BaseException:
                ctx.accountant.release("filesopened", item)
                raise
        except BaseException:
            forget(name)
            raise
        return _file_object(ctx, name, fd, item, forget)

    def listfiles() -> list[str]:
        return list_files(ctx)

    def removefile(filename: object) -> None:
        name = check_filename(filename)
        ctx.accountant.charge("fileread", BLOCK)
        ctx.accountant.charge("filewrite", BLOCK)
        with registry:
            if name in open_names:
                raise errors.FileInUseError(f"{name!r} is open; close it before removing it")
            with _vessel_dir(ctx) as directory:
                try:
                    info = os.stat(name, dir_fd=directory, follow_symlinks=False)
                    if not stat.S_ISREG(info.st_mode):
                        raise errors.FileNotFoundError(f"{name!r} is not a regular file")
                    os.unlink(name, dir_fd=directory)
                except OSError as exc:
                    _raise_file_error(name, exc)

    return {
        "openfile": api_call(ctx, "openfile")(openfile),
        "listfiles": api_call(ctx, "listfiles")(listfiles),
        "removefile": api_call(ctx, "removefile")(removefile),
    }


def check_filename(value: object, name: str = "filename") -> str:
    """A valid vessel file name, or RepyArgumentError saying which rule it breaks."""
    filename = require_str(value, name, max_length=MAX_FILENAME, allow_empty=False)
    problem = filename_problem(filename, name)
    if problem:
        raise errors.RepyArgumentError(problem)
    return filename


def list_files(ctx: VesselContext) -> list[str]:
    """The regular files in the vessel directory that a program could open, sorted; charges one block."""
    ctx.accountant.charge("fileread", BLOCK)
    with _vessel_dir(ctx) as directory, os.scandir(directory) as entries:
        names = [entry.name for entry in entries
                 if is_valid_filename(entry.name) and entry.is_file(follow_symlinks=False)]
    return sorted(names)


def blocks(offset: int, length: int) -> int:
    """How many 4 KiB-aligned blocks the byte range [offset, offset + length) touches; at least 1."""
    if length <= 0:
        return 1
    return (offset + length - 1) // BLOCK - offset // BLOCK + 1


@contextmanager
def _vessel_dir(ctx: VesselContext) -> Iterator[int]:
    directory = os.open(ctx.vessel_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield directory
    finally:
        os.close(directory)


def _open(ctx: VesselContext, name: str, create: bool) -> int:
    """Open (or create) `name` in the vessel directory, charging Repy's open costs; returns the fd."""
    ctx.accountant.charge("fileread", BLOCK)
    if create:
        ctx.accountant.wait_for("filewrite")
    created = False
    with _vessel_dir(ctx) as directory:
        try:
            if create:
                try:
                    fd = os.open(name, _OPEN_FLAGS | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=directory)
                    created = True
                except FileExistsError:
                    fd = os.open(name, _OPEN_FLAGS, dir_fd=directory)
            else:
                fd = os.open(name, _OPEN_FLAGS, dir_fd=directory)
        except OSError as exc:
            _raise_file_error(name, exc)
    if created:
        ctx.accountant.record("filewrite", BLOCK)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        kind = "a regular file" if not stat.S_ISREG(info.st_mode) else "a file with a single link"
        raise errors.FileNotFoundError(f"{name!r} is not {kind}, so it cannot be opened")
    return fd


def _raise_file_error(name: str, exc: OSError) -> NoReturn:
    """Translate an OSError the program's request caused into the Repy exception for it."""
    code = exc.errno
    if code == errno.ENOENT:
        raise errors.FileNotFoundError(f"there is no file named {name!r}") from None
    if code == errno.ELOOP:
        raise errors.FileNotFoundError(f"{name!r} is a symbolic link, not a regular file") from None
    if code in (errno.EISDIR, errno.ENOTDIR):
        raise errors.FileNotFoundError(f"{name!r} is not a regular file") from None
    if code in (errno.EACCES, errno.EPERM):
        raise errors.FileError(f"{name!r} cannot be opened: permission denied") from None
    if code in (errno.EMFILE, errno.ENFILE):
        raise errors.ResourceExhaustedError("filesopened: the system's limit on open files is reached")
    if code in _DISK_FULL:
        raise errors.ResourceExhaustedError(f"diskused: no space left to write {name!r}") from None
    raise exc


def _file_object(
    ctx: VesselContext, name: str, fd: int, item: object, forget: Callable[[str], None]
) -> object:
    """The file object for an open `fd`: readat, writeat and close, sharing one lock.

    The lock keeps close() from freeing the descriptor while another thread reads or writes through it
    (the number could otherwise be reused by a later open). Rate waits happen outside it.
    """
    lock = threading.Lock()
    closed = False

    def check_open_at(offset: int) -> int:
        if closed:
            raise errors.FileClosedError(f"{name!r} is closed")
        size = os.fstat(fd).st_size
        if offset > size:
            raise errors.SeekPastEndOfFileError(f"offset {offset} is past the end of {name!r} ({size} bytes)")
        return size

    def readat(sizelimit: object, offset: object) -> bytes:
        limit = require_int_or_none(sizelimit, "sizelimit")
        start = require_int(offset, "offset")
        ctx.accountant.wait_for("fileread")
        with lock:
            size = check_open_at(start)
            count = size - start if limit is None else min(limit, size - start)
            data = _read_all(fd, count, start)
        ctx.accountant.record("fileread", BLOCK * blocks(start, len(data)))
        return data

    def writeat(data: object, offset: object) -> None:
        payload = require_str_or_bytes(data, "data")
        start = require_int(offset, "offset")
        ctx.accountant.wait_for("filewrite")
        with lock:
            check_open_at(start)
            try:
                _write_all(fd, payload, start)
            except OSError as exc:
                if exc.errno not in _DISK_FULL:
                    raise
                raise errors.ResourceExhaustedError(f"diskused: no space left to write {name!r}") from None
        ctx.accountant.record("filewrite", BLOCK * blocks(start, len(payload)))

    def close() -> None:
        nonlocal closed
        with lock:
            if closed:
                raise errors.FileClosedError(f"{name!r} is already closed")
            closed = True
            os.close(fd)
        ctx.accountant.release("filesopened", item)
        forget(name)

    methods: dict[str, Callable[..., Any]] = {
        "readat": api_call(ctx, "file.readat")(readat),
        "writeat": api_call(ctx, "file.writeat")(writeat),
        "close": api_call(ctx, "file.close")(close),
    }
    return api_object("file", methods)


def _read_all(fd: int, count: int, offset: int) -> bytes:
    """Up to `count` bytes at `offset`; pread may return less than asked, so loop until EOF or done."""
    pieces: list[bytes] = []
    while count > 0:
        piece = os.pread(fd, count, offset)
        if not piece:
            break
        pieces.append(piece)
        count -= len(piece)
        offset += len(piece)
    return b"".join(pieces)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
