"""`seattle call`: node manager calls written as shell words, sent, and their results shown.

    name, args = parse_call(["AddFileToVessel", "v1", "prog.py", "./prog.py"], stdin)
    response = make_call(parse_address("127.0.0.1:1224"), identity, name, args)
    text_or_bytes = render(response.result)          # or render_json(response)

Each parameter of `calltable.CALLS` has one way of being written on a command line (`_WORDS`): names and text as
they are; file data and resource text as a path to read (`-` = standard input); keys as an identity name or
`ed25519:` text (`keys.resolve`); true/false words for flags. The last parameter of StartVessel (the
program's arguments) and of ChangeUsers (the users) takes all remaining words, so `StartVessel v1 prog.py a
b` passes ["a", "b"]. Wrong words are refused here, with the call's usage, before anything is sent.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import trio

from seattle.atomicfile import write_atomic
from seattle.errors import (
    BadCallArguments,
    CallRefused,
    NodeUnreachable,
    OutputNotWritten,
    UnknownCall,
)
from seattle.keys import Identity, resolve
from seattle.nodemgr.calltable import CALLS, MAX_FILE_DATA, PUBLIC_CALLS
from seattle.nodemgr.client import DEFAULT_TIMEOUT, NodeClient, NodeClientError
from seattle.nodemgr.signing import ERROR, WARNING, Response

_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})


class _WordError(Exception):
    """One word could not become its parameter's value; the text says why (the caller adds the usage)."""


@dataclass(frozen=True)
class _Word:
    """How one parameter is written: `placeholder` for the usage line, `parse` from word(s) to value."""

    placeholder: str
    parse: Callable[[Any, BinaryIO], Any]
    #: Takes every remaining word (the parse function gets the list).
    rest: bool = False


def _as_is(word: str, stdin: BinaryIO) -> str:
    return word


def _read_source(word: str, stdin: BinaryIO) -> bytes:
    """A file's bytes, or standard input for `-`; never more than an upload may hold."""
    try:
        if word == "-":
            data = stdin.read(MAX_FILE_DATA + 1)
        else:
            with open(word, "rb") as source:
                data = source.read(MAX_FILE_DATA + 1)
    except OSError as exc:
        raise _WordError(f"cannot read {word!r}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_DATA:
        raise _WordError(f"{'standard input' if word == '-' else repr(word)} is larger than the "
                         f"{MAX_FILE_DATA} bytes a node accepts in one call")
    return data


def _read_text(word: str, stdin: BinaryIO) -> str:
    try:
        return _read_source(word, stdin).decode("utf-8")
    except UnicodeDecodeError:
        raise _WordError(f"{word!r} is not UTF-8 text") from None


def _key(word: str, stdin: BinaryIO) -> str:
    # resolve raises SeattleError subclasses (UnknownName, BadPublicKey) whose text already names the word.
    return resolve(word).to_text()


def _keys(words: list[str], stdin: BinaryIO) -> list[str]:
    return [_key(word, stdin) for word in words]


def _flag(word: str, stdin: BinaryIO) -> bool:
    if word.lower() in _TRUE_WORDS:
        return True
    if word.lower() in _FALSE_WORDS:
        return False
    raise _WordError(f"{word!r} is not true or false (also accepted: yes/no, on/off, 1/0)")


def _strings(words: list[str], stdin: BinaryIO) -> list[str]:
    return list(words)


def _integer(word: str, stdin: BinaryIO) -> int:
    try:
        return int(word)
    except ValueError:
        raise _WordError(f"{word!r} is not a whole number") from None


def _seconds(word: str, stdin: BinaryIO) -> float:
    try:
        return float(word)
    except ValueError:
        raise _WordError(f"{word!r} is not a number of seconds") from None


_WORDS: dict[str, _Word] = {
    "vessel": _Word("VESSEL", _as_is),
    "other": _Word("OTHER_VESSEL", _as_is),
    "program": _Word("PROGRAM", _as_is),
    "filename": _Word("FILENAME", _as_is),
    "ownerinfo": _Word("TEXT", _as_is),
    "data": _Word("LOCAL_FILE|-", _read_source),
    "resources": _Word("RESOURCE_FILE|-", _read_text),
    "owner": _Word("KEY", _key),
    "users": _Word("[KEY...]", _keys, rest=True),
    "advertise": _Word("true|false", _flag),
    "args": _Word("[ARG...]", _strings, rest=True),
    "slot": _Word("SLOT", _integer),
    "duration": _Word("SECONDS", _seconds),
}


def usage(name: str) -> str:
    """`NAME PLACEHOLDER...` for one call: what error messages and the docs show."""
    return " ".join([name, *(_WORDS[param].placeholder for param, _ in CALLS[name].params)])


def parse_call(words: Sequence[str], stdin: BinaryIO) -> tuple[str, dict[str, Any]]:
    """`CALL ARGS...` → (call name, arguments by name). UnknownCall, BadCallArguments or a key error."""
    if not words:
        raise UnknownCall("", sorted(CALLS))
    name, given = words[0], list(words[1:])
    call = CALLS.get(name)
    if call is None:
        raise UnknownCall(name, sorted(CALLS))
    params = [(param, _WORDS[param]) for param, _ in call.params]
    fixed = len(params) - (1 if params and params[-1][1].rest else 0)
    takes_rest = fixed < len(params)
    if len(given) < fixed or (len(given) > fixed and not takes_rest):
        expected = f"at least {fixed}" if takes_rest else str(fixed)
        raise BadCallArguments(name, usage(name), f"expected {expected} argument{'s' * (expected != '1')}, "
                                                  f"got {len(given)}")
    args: dict[str, Any] = {}
    for index, (param, word) in enumerate(params):
        value = given[index:] if word.rest else given[index]
        try:
            args[param] = word.parse(value, stdin)
        except _WordError as exc:
            raise BadCallArguments(name, usage(name), f"{param}: {exc}") from None
    return name, args


def needs_identity(name: str) -> bool:
    """Whether the node refuses `name` unsigned: the CLI says so before connecting."""
    return name not in PUBLIC_CALLS


def make_call(address: tuple[str, int], identity: Identity | None, name: str, args: dict[str, Any],
              *, timeout: float = DEFAULT_TIMEOUT) -> Response:
    """Connect, send one call (signed by `identity` if given) and return the whole response."""
    async def exchange() -> Response:
        async with await NodeClient.connect(*address, identity=identity, timeout=timeout) as node:
            return await node.request(name, **args)
    try:
        return trio.run(exchange)
    except NodeClientError as exc:
        raise NodeUnreachable(str(exc)) from None


def check_response(name: str, response: Response) -> str | None:
    """CallRefused for an error response; the warning text (for standard error) for a warning, else None."""
    if response.status == ERROR:
        raise CallRefused(name, response.code, response.message)
    if response.status == WARNING:
        return f"warning: {name}: {response.code}: {response.message}"
    return None


def render(result: Any) -> bytes:
    """A result for people: bytes as they are (files, logs), text as lines, maps as `key: value` lines."""
    if isinstance(result, bytes):
        return result
    if result is None:
        return b"ok\n"
    return (_render_text(result) + "\n").encode("utf-8")


def _render_text(result: Any) -> str:
    if isinstance(result, list) and not any(isinstance(item, dict | list) for item in result):
        return "\n".join(_render_scalar(item) for item in result)  # e.g. ListFilesInVessel: one per line
    return "\n".join(_lines(result, ""))


def _lines(value: Any, indent: str) -> list[str]:
    """Maps as `key: value` lines, nested maps indented, lists of maps as `- key=value ...` lines."""
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, dict) or (isinstance(item, list) and any(isinstance(i, dict) for i in item)):
                lines.append(f"{indent}{key}:")
                lines.extend(_lines(item, indent + "  "))
            else:
                lines.append(f"{indent}{key}: {_render_scalar(item)}")
        return lines
    if isinstance(value, list):
        return [f"{indent}- {_render_scalar(item)}" for item in value]
    return [indent + _render_scalar(value)]


def _render_scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " ".join(f"{key}={_render_scalar(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(_render_scalar(item) for item in value)
    return json.dumps(_jsonable(value))


def render_json(response: Response) -> str:
    """The whole response as one JSON object; bytes become {"base64": ...} so nothing is lost."""
    body: dict[str, Any] = {"status": response.status, "code": response.code, "message": response.message,
                            "result": _jsonable(response.result)}
    return json.dumps(body, indent=2)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return value


def write_output(data: bytes, out_path: Path | None, stdout: BinaryIO) -> None:
    """Result bytes to `out_path` (written atomically, `seattle.atomicfile`) or to standard output."""
    if out_path is None:
        stdout.write(data)
        stdout.flush()
        return
    try:
        write_atomic(out_path, data, mode=0o644)
    except OSError as exc:
        raise OutputNotWritten(out_path, exc.strerror or str(exc)) from None
