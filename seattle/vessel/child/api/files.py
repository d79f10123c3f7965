"""The file API: openfile, listfiles, removefile, and the file objects programs read and write.

A vessel's files live directly in its directory; names are flat (no directories) and limited to
a-z 0-9 . _ - as in Repy. Every open goes through a descriptor of the vessel directory (`dir_fd`) with
O_NOFOLLOW, and the opened file must be a regular file with a single link, so a symbolic or hard link
planted in the directory cannot lead outside it even on a host without Landlock.

Charges (Repy's): disk I/O is counted in 4 KiB blocks, at least one per call, against fileread and
filewrite; creating a file costs a filewrite block; each open file holds one filesopened item.

A file object the program drops without closing is closed, as Repy's were: its descriptor, its filesopened
item and its name are released. The finalizer that notices the drop may run in the middle of any code
(the collector runs wherever an allocation happens, possibly inside this module holding one of its locks),
so it only queues the close; the next openfile, removefile or listfiles performs it before it looks at what
is open.
"""

from __future__ import annotations

import errno
import os
import queue
import stat
import threading
import weakref
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
    # Closes of dropped file objects, queued by their finalizers; SimpleQueue.put is safe to call from
    # a finalizer that interrupts any code, including a get() of the same queue.
    dropped: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()

    def forget(name: str) -> None:
        with registry:
            open_names.discard(name)

    def close_dropped() -> None:
        while True:
            try:
                dropped.get_nowait()()
            except queue.Empty:
                return

    def openfile(filename: object, create: object) -> object:
        name = check_filename(filename)
        may_create = require_bool(create, "create")
        close_dropped()
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
        return _file_object(ctx, name, fd, item, forget, dropped)

    def listfiles() -> list[str]:
        close_dropped()
        return list_files(ctx)

    def removefile(filename: object) -> None:
        name = check_filename(filename)
        close_dropped()
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
    ctx: VesselContext, name: str, fd: int, item: object, forget: Callable[[str], None],
    dropped: queue.SimpleQueue[Callable[[], object]],
) -> object:
    """The file object for an open `fd`: readat, writeat and close, sharing one lock.

    A read or write that has begun (it passed the closed check) finishes even if close() is called while it
    waits for its rate bucket: close() waits until no call is in flight, so a racing close never tears or
    loses a write, and the descriptor is never freed under a call (the number could otherwise be reused by
    a later open). Rate waits happen outside the lock.
    """
    state = threading.Condition(threading.Lock())
    closed = False
    in_flight = 0

    def begin() -> None:
        nonlocal in_flight
        with state:
            if closed:
                raise errors.FileClosedError(f"{name!r} is closed")
            in_flight += 1

    def end() -> None:
        nonlocal in_flight
        with state:
            in_flight -= 1
            if not in_flight:
                state.notify_all()

    def check_offset(offset: int) -> int:
        size = os.fstat(fd).st_size
        if offset > size:
            raise errors.SeekPastEndOfFileError(f"offset {offset} is past the end of {name!r} ({size} bytes)")
        return size

    def readat(sizelimit: object, offset: object) -> bytes:
        limit = require_int_or_none(sizelimit, "sizelimit")
        start = require_int(offset, "offset")
        begin()
        try:
            ctx.accountant.wait_for("fileread")
            with state:  # one call at a time: the size seen is the size read
                size = check_offset(start)
                count = size - start if limit is None else min(limit, size - start)
                data = _read_all(fd, count, start)
        finally:
            end()
        ctx.accountant.record("fileread", BLOCK * blocks(start, len(data)))
        return data

    def writeat(data: object, offset: object) -> None:
        payload = require_str_or_bytes(data, "data")
        start = require_int(offset, "offset")
        begin()
        try:
            ctx.accountant.wait_for("filewrite")
            with state:
                check_offset(start)
                try:
                    _write_all(fd, payload, start)
                except OSError as exc:
                    if exc.errno not in _DISK_FULL:
                        raise
                    raise errors.ResourceExhaustedError(f"diskused: no space left to write {name!r}") from None
        finally:
            end()
        ctx.accountant.record("filewrite", BLOCK * blocks(start, len(payload)))

    def release() -> bool:
        """Close once: wait for calls in flight, free the descriptor, the item and the name."""
        nonlocal closed
        with state:
            if closed:
                return False
            closed = True
            state.wait_for(lambda: not in_flight)
            os.close(fd)
        ctx.accountant.release("filesopened", item)
        forget(name)
        return True

    def close() -> None:
        if not release():
            raise errors.FileClosedError(f"{name!r} is already closed")

    methods: dict[str, Callable[..., Any]] = {
        "readat": api_call(ctx, "file.readat")(readat),
        "writeat": api_call(ctx, "file.writeat")(writeat),
        "close": api_call(ctx, "file.close")(close),
    }
    obj = api_object("file", methods)
    # The methods stay usable while the program holds one of them without the object; once the object
    # is dropped, a held method finds the file closed.
    finalizer = weakref.finalize(obj, dropped.put, release)
    finalizer.atexit = False  # a vessel ends with os._exit; nothing is left to close then
    return obj


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
