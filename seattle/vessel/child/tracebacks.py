"""Exception text for the vessel log, without host details.

The vessel log goes to whoever controls the vessel, not to the donor, so it must not show how the host is
laid out (paths of the runtime, the interpreter or the user's home) and it should not bury the program's
own frames under ours. A user's traceback therefore keeps only frames of user code: frames that run
under the scrubbed builtins every checked program and virtual namespace gets, plus frames of the program
file named by the caller (which matters when the language layer is switched off for testing and user
code runs with the real builtins). Each exception is shown as its bare type name and message, with the
chain of causes as Python shows it.

Exception attributes are read through the `BaseException` descriptors, not by attribute lookup, so a
user exception class cannot intercept them; only `str(exc)`, which Python's own traceback printing runs
as well, may run user code, and a failure there is reported instead of propagated.
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from types import FrameType, TracebackType

import seattle

#: Longest message shown for one exception; a program can make its messages arbitrarily large.
MAX_MESSAGE = 4096
#: How many chained exceptions (causes and contexts) are shown at most.
MAX_CHAIN = 8
#: Identical consecutive frames beyond this many are folded into one "repeated" line, as Python does.
REPEAT_LIMIT = 3

_HOST_BUILTINS = builtins.__dict__
#: The directory holding the `seattle` package; runtime frames are shown relative to it.
_PACKAGE_PARENT = str(Path(seattle.__file__).resolve().parents[1]) + os.sep

_TYPE_NAME = type.__dict__["__name__"]
_CAUSE = BaseException.__dict__["__cause__"]
_CONTEXT = BaseException.__dict__["__context__"]
_SUPPRESS_CONTEXT = BaseException.__dict__["__suppress_context__"]
_TRACEBACK = BaseException.__dict__["__traceback__"]

_CAUSE_LINK = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT_LINK = "\nDuring handling of the above exception, another exception occurred:\n\n"


def format_user_exception(exc: BaseException, filename: str | None = None) -> str:
    """The log text for `exc`, raised by user code: user frames, type names and messages, ending in \\n.

    `filename` is the program file's name as it was compiled; its frames count as user frames even when
    it runs with the real builtins. The result is safe to encode as UTF-8 (lone surrogates are escaped).
    """
    parts: list[str] = []
    for link, error in _chain(exc):
        parts.append(link)
        frames = [frame for frame in _frames(_TRACEBACK.__get__(error)) if _is_user_frame(frame[0], filename)]
        if frames:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(_frame_lines([(frame.f_code.co_filename, line, frame.f_code.co_name)
                                       for frame, line in frames]))
        parts.append(describe(error) + "\n")
    return _loggable("".join(parts))


def format_internal_fault(exc: BaseException, where: str) -> str:
    """The log text for a fault of the runtime inside the API call `where`.

    Runtime frames are what a developer needs to find the bug, so they are kept, but their paths are cut
    to the part inside the package (`seattle/vessel/child/api/files.py`) or to the bare file name for the
    standard library. OSError messages leave out the file names they carry.
    """
    parts = [f"Internal error in the vessel runtime during {where}(); the vessel ends.\n"]
    frames = _frames(_TRACEBACK.__get__(exc))
    if frames:
        parts.append("Traceback (most recent call last):\n")
        parts.extend(_frame_lines([(_host_relative(frame.f_code.co_filename), line, frame.f_code.co_name)
                                   for frame, line in frames]))
    if isinstance(exc, OSError) and exc.errno is not None:
        parts.append(f"{_type_name(exc)}: [Errno {exc.errno}] {exc.strerror}\n")
    else:
        parts.append(describe(exc).replace(_PACKAGE_PARENT, "") + "\n")
    return _loggable("".join(parts))


def describe(exc: BaseException) -> str:
    """`TypeName: message`, or just `TypeName` for an empty message; never raises."""
    name = _type_name(exc)
    try:
        message = str(exc)
    except SystemExit:  # ctx.exit called from inside the program's __str__, ending the vessel
        raise
    except BaseException:  # the program's own __str__ failed; Python's traceback printing does the same
        message = "<exception str() failed>"
    if type(message) is not str:  # a str subclass from a user __str__: copy it to a plain str
        message = "".join([message])
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + f"... ({len(message) - MAX_MESSAGE} more characters)"
    return f"{name}: {message}" if message else name


def _type_name(exc: BaseException) -> str:
    name: str = _TYPE_NAME.__get__(type(exc))
    return name


def _chain(exc: BaseException) -> list[tuple[str, BaseException]]:
    """(link text, exception) pairs, oldest first as Python prints them; cycles and long chains are cut.

    The link text of an exception describes how it relates to the older one printed just before it.
    """
    chain: list[tuple[str, BaseException]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None:
        seen.add(id(current))
        cause = _CAUSE.__get__(current)
        context = _CONTEXT.__get__(current)
        older: BaseException | None = None
        link = ""
        if cause is not None:
            older, link = cause, _CAUSE_LINK
        elif context is not None and not _SUPPRESS_CONTEXT.__get__(current):
            older, link = context, _CONTEXT_LINK
        if older is not None and (id(older) in seen or len(chain) + 1 >= MAX_CHAIN):
            older, link = None, ""
        chain.append((link, current))
        current = older
    chain.reverse()
    return chain


def _frames(tb: TracebackType | None) -> list[tuple[FrameType, int]]:
    frames: list[tuple[FrameType, int]] = []
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def _is_user_frame(frame: FrameType, filename: str | None) -> bool:
    return frame.f_builtins is not _HOST_BUILTINS or frame.f_code.co_filename == filename


def _frame_lines(frames: list[tuple[str, int, str]]) -> list[str]:
    """`File "...", line N, in f` lines, folding runs of identical frames (deep recursion)."""
    lines: list[str] = []
    previous: tuple[str, int, str] | None = None
    repeats = 0
    for frame in frames:
        if frame == previous:
            repeats += 1
            if repeats >= REPEAT_LIMIT:
                continue
        else:
            lines.extend(_repeat_note(repeats))
            previous, repeats = frame, 0
        filename, line, function = frame
        lines.append(f'  File "{filename}", line {line}, in {function}\n')
    lines.extend(_repeat_note(repeats))
    return lines


def _repeat_note(repeats: int) -> list[str]:
    hidden = repeats - (REPEAT_LIMIT - 1)
    if hidden <= 0:
        return []
    return [f"  [Previous line repeated {hidden} more time{'s' if hidden > 1 else ''}]\n"]


def _host_relative(filename: str) -> str:
    if filename.startswith(_PACKAGE_PARENT):
        return filename[len(_PACKAGE_PARENT):]
    if os.path.isabs(filename):
        return os.path.basename(filename)
    return filename


def _loggable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
