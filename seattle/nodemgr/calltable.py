"""The node manager's call table: every call's name, permission class and argument checks, as data.

    call = CALLS["StartVessel"]                      # Call(name, permission, params, vessel_params, lifecycle)
    bound = bind_arguments(call, ["v1", "p.py", []])  # the checked arguments by name, or BadArguments

Both sides read it: the node (`api.NodeAPI`, which adds what each call does) and the client side (`seattle
call` parses shell words per parameter, the researcher library checks sizes before sending). It imports
nothing of the sandbox (`seattle.vessel`), so a client that only needs the table does not load it.

Permission classes are the original's: public (anyone, signed or not), owner-or-user, owner-only; and the pool's
(`seattle.pool`): signed (any key that signs, checked against its quota by the lease ledger) and lessee (the key
holding the vessel's lease).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from seattle.errors import SeattleError
from seattle.keys import PublicKey
from seattle.nodemgr.nodeerror import NodeError
from seattle.pool.formats import MAX_LEASE_AGE, MAX_SLOT
from seattle.vessel.filenames import MAX_FILENAME

#: The largest file AddFileToVessel accepts: the frame limit leaves 64 KiB for the envelope around it.
MAX_FILE_DATA = 4 * 1024 * 1024
#: StartVessel's program arguments: enough for any command line, small enough to show in an error.
MAX_PROGRAM_ARGS = 256
MAX_PROGRAM_ARGS_BYTES = 64 * 1024
#: Resource text of a split request; a full resource file with every port listed is far smaller.
MAX_RESOURCE_TEXT = 64 * 1024
MAX_USERS = 64
MAX_VESSEL_NAME = 24


class Permission(StrEnum):
    PUBLIC = "public"
    OWNER_OR_USER = "owner_or_user"
    OWNER = "owner"
    #: Any signed key: AcquireVessel, whose limits (quota, per-key cap, per-network budget) the ledger applies.
    SIGNED = "signed"
    #: The key that holds the named pool vessel's lease: RenewLease and ReleaseLease.
    LESSEE = "lessee"


class BadArguments(Exception):
    """An argument of the wrong type, size or form; the text names the argument."""


# --- argument checks: each returns the value to use, or raises BadArguments naming what is wrong --------


def _text(limit: int) -> Callable[[str, object], str]:
    def check(name: str, value: object) -> str:
        if not isinstance(value, str):
            raise BadArguments(f"'{name}' must be a string, got {type(value).__name__}")
        if len(value) > limit:
            raise BadArguments(f"'{name}' is {len(value)} characters long; the limit is {limit}")
        return value
    return check


def _data(name: str, value: object) -> bytes:
    if not isinstance(value, bytes):
        raise BadArguments(f"'{name}' must be binary data (msgpack bin), got {type(value).__name__}")
    if len(value) > MAX_FILE_DATA:
        raise BadArguments(f"'{name}' is {len(value)} bytes; files of at most {MAX_FILE_DATA} bytes "
                           "can be uploaded")
    return value


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise BadArguments(f"'{name}' must be true or false, got {value!r:.40}")
    return value


def _key(name: str, value: object) -> bytes:
    """A public key as its text form "ed25519:..." → its 32 raw bytes (what NodeState stores)."""
    if not isinstance(value, str):
        raise BadArguments(f"'{name}' must be a public key as text (ed25519:...), got {type(value).__name__}")
    try:
        return PublicKey.from_text(value).raw
    except SeattleError as exc:
        raise NodeError("bad_key", f"Invalid Key String in '{name}': {exc}") from None


def _keys(name: str, value: object) -> list[bytes]:
    if not isinstance(value, list):
        raise BadArguments(
            f"'{name}' must be a list of public keys (ed25519:...), got {type(value).__name__}")
    if len(value) > MAX_USERS:
        raise BadArguments(f"'{name}' lists {len(value)} keys; a vessel has at most {MAX_USERS} users")
    return [_key(f"{name}[{index}]", item) for index, item in enumerate(value)]


def _program_args(name: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadArguments(f"'{name}' must be a list of strings")
    if len(value) > MAX_PROGRAM_ARGS:
        raise BadArguments(f"'{name}' has {len(value)} items; the limit is {MAX_PROGRAM_ARGS}")
    size = sum(len(item.encode("utf-8", "surrogatepass")) for item in value)
    if size > MAX_PROGRAM_ARGS_BYTES:
        raise BadArguments(f"'{name}' totals {size} bytes; the limit is {MAX_PROGRAM_ARGS_BYTES}")
    return value


def _slot(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_SLOT:
        raise BadArguments(f"'{name}' must be a slot number in 0..{MAX_SLOT - 1}, got {value!r:.40}")
    return value


def _duration(name: str, value: object) -> float:
    """Seconds of a lease: a positive finite number, at most the maximum lease age (the node caps it lower)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_LEASE_AGE:
        raise BadArguments(f"'{name}' must be a number of seconds in (0, {MAX_LEASE_AGE:g}], got {value!r:.40}")
    return float(value)


_vessel = _text(MAX_VESSEL_NAME)
_filename = _text(MAX_FILENAME)

Check = Callable[[str, object], Any]


# --- the table -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    name: str
    permission: Permission
    params: tuple[tuple[str, Check], ...]
    #: Arguments naming vessels whose owner (or user) the caller must be.
    vessel_params: tuple[str, ...] = ()
    #: Takes the start/stop/split/join lock: the call changes whether or how a vessel runs.
    lifecycle: bool = False


CALLS: dict[str, Call] = {call.name: call for call in (
    Call("GetNodeInfo", Permission.PUBLIC, ()),
    Call("GetVessels", Permission.PUBLIC, ()),
    Call("GetVesselResources", Permission.PUBLIC, (("vessel", _vessel),)),
    Call("GetOffcutResources", Permission.PUBLIC, ()),
    Call("StartVessel", Permission.OWNER_OR_USER,
         (("vessel", _vessel), ("program", _filename), ("args", _program_args)), ("vessel",), True),
    Call("StopVessel", Permission.OWNER_OR_USER, (("vessel", _vessel),), ("vessel",), True),
    Call("ResetVessel", Permission.OWNER_OR_USER, (("vessel", _vessel),), ("vessel",), True),
    Call("AddFileToVessel", Permission.OWNER_OR_USER,
         (("vessel", _vessel), ("filename", _filename), ("data", _data)), ("vessel",)),
    Call("RetrieveFileFromVessel", Permission.OWNER_OR_USER,
         (("vessel", _vessel), ("filename", _filename)), ("vessel",)),
    Call("ListFilesInVessel", Permission.OWNER_OR_USER, (("vessel", _vessel),), ("vessel",)),
    Call("DeleteFileInVessel", Permission.OWNER_OR_USER,
         (("vessel", _vessel), ("filename", _filename)), ("vessel",)),
    Call("ReadVesselLog", Permission.OWNER_OR_USER, (("vessel", _vessel),), ("vessel",)),
    Call("ChangeUsers", Permission.OWNER, (("vessel", _vessel), ("users", _keys)), ("vessel",)),
    Call("ChangeOwner", Permission.OWNER, (("vessel", _vessel), ("owner", _key)), ("vessel",)),
    Call("ChangeOwnerInformation", Permission.OWNER,
         (("vessel", _vessel), ("ownerinfo", _text(4096))), ("vessel",)),
    Call("ChangeAdvertise", Permission.OWNER, (("vessel", _vessel), ("advertise", _flag)), ("vessel",)),
    Call("SplitVessel", Permission.OWNER,
         (("vessel", _vessel), ("resources", _text(MAX_RESOURCE_TEXT))), ("vessel",), True),
    Call("JoinVessels", Permission.OWNER,
         (("vessel", _vessel), ("other", _vessel)), ("vessel", "other"), True),
    # The pool (docs/pool.md): a free pool vessel leased to the signer, the lease renewed and released.
    # They take the lifecycle lock themselves, only to stop a vessel whose lease ends (`seattle.nodemgr.pool`).
    Call("AcquireVessel", Permission.SIGNED, (("slot", _slot), ("duration", _duration))),
    Call("RenewLease", Permission.LESSEE, (("vessel", _vessel), ("duration", _duration)), ("vessel",)),
    Call("ReleaseLease", Permission.LESSEE, (("vessel", _vessel),), ("vessel",)),
    Call("GetPoolStatus", Permission.PUBLIC, ()),
)}

PUBLIC_CALLS = frozenset(name for name, call in CALLS.items() if call.permission is Permission.PUBLIC)


def bind_arguments(call: Call, args: list[Any] | dict[str, Any]) -> dict[str, Any]:
    """Match `args` (positional list or map by name) to the call's parameters and check each one."""
    names = [name for name, _ in call.params]
    if isinstance(args, list):
        if len(args) != len(names):
            raise BadArguments(f"{call.name} takes {len(names)} argument{'s' if len(names) != 1 else ''} "
                               f"({', '.join(names) or 'none'}), got {len(args)}")
        given = dict(zip(names, args))
    else:
        unknown = sorted(set(args) - set(names))
        missing = [name for name in names if name not in args]
        if unknown or missing:
            parts = ([f"unknown {', '.join(map(repr, unknown))}"] if unknown else []) + (
                [f"missing {', '.join(map(repr, missing))}"] if missing else [])
            raise BadArguments(f"{call.name} takes the arguments ({', '.join(names) or 'none'}): "
                               f"{'; '.join(parts)}")
        given = args
    return {name: check(name, given[name]) for name, check in call.params}
