"""The node manager's calls: who may make each one, what its arguments must be, and what it does.

`NodeAPI.handle` is the whole contract between the server and the node: the server has already checked
the request's signature, destination, freshness and uniqueness (`signing.RequestVerifier`), and passes the
caller's key (None for an unsigned request) with the call name and arguments. The answer is always a
response map, never an exception: a refused call carries a stable code (`no_such_call`,
`insufficient_permissions`, `bad_arguments`, the `NodeError` codes of `vessels.py`, `internal_error`) and a
message a person can act on, and nothing of a traceback reaches the client.

The checks run in this order, so the error a caller sees is the most basic thing wrong:

    no_such_call             the call name is not in the table
    insufficient_permissions an unsigned request for a call that is not public
    bad_arguments            wrong argument names, count, types or sizes
    no_such_vessel           a vessel named in the call does not exist
    insufficient_permissions the signer is neither the vessel's owner nor (where allowed) one of its users
    <the call's own codes>   e.g. vessel_running, disk_full, file_not_found

Permission classes are the original's: public (anyone, signed or not), owner-or-user, owner-only. Blocking
work (SQLite commits, file I/O) runs in worker threads so one slow call does not hold up other connections;
public calls, which anyone may send, get only PUBLIC_THREADS of them, so strangers cannot take the threads the
owners' calls need. `authorize` runs the same checks as `handle` up to the permission one, for the verifier
to call before it keeps anything of a signed request; `has_rights` tells the server whose large frames to take.
Calls that change whether or how a vessel runs (start, stop, reset, split, join) are serialised by one lock,
so two clients cannot start the same vessel twice or split it while it starts.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio

import seattle
from seattle.budgets import Source
from seattle.errors import SeattleError
from seattle.keys import PublicKey
from seattle.nodemgr import vesselfiles
from seattle.nodemgr.calltable import CALLS, PUBLIC_CALLS, BadArguments, Call, Permission, bind_arguments
from seattle.nodemgr.database import VesselRow
from seattle.nodemgr.nodeerror import NodeError
from seattle.nodemgr.pool import NodePool
from seattle.nodemgr.signing import RequestRejected, error, ok, warning
from seattle.nodemgr.vessels import RUNNING, NodeState
from seattle.pool.formats import Lease
from seattle.pool.refusals import LeaseRefused
from seattle.vessel.host.launcher import ALL_LAYERS, VesselHandle, VesselLauncher
from seattle.vessel.spec import VesselSpec
from seattle.vessel.status import VesselStatus

log = logging.getLogger(__name__)

NO_SUCH_CALL = "no_such_call"
INSUFFICIENT_PERMISSIONS = "insufficient_permissions"
BAD_ARGUMENTS = "bad_arguments"
INTERNAL_ERROR = "internal_error"
DID_NOT_STOP = "did_not_stop"
NO_POOL = "no_pool"
POOL_VESSEL = "pool_vessel"


#: Worker threads public calls may use at once (the owners' calls have trio's default pool of 40).
PUBLIC_THREADS = 2

#: A running vessel whose supervisor has not reported for this long is shown as Stale (the original's 15 s).
STALE_AFTER = 15.0


# --- the node's side -------------------------------------------------------------------------------------


@dataclass
class _Running:
    """A vessel the launcher is running: its handle and the event set once its end state is recorded."""

    handle: VesselHandle
    recorded: trio.Event


Handler = Callable[..., Awaitable[dict[str, Any]]]


class NodeAPI:
    """Serves calls on one node's state and launcher. Needs `run` in a nursery to follow running vessels."""

    def __init__(self, state: NodeState, launcher: VesselLauncher, node_key: PublicKey, *,
                 addresses: Callable[[], list[str]] = list, local_ips: Sequence[str] = (),
                 stale_after: float = STALE_AFTER, pool: NodePool | None = None) -> None:
        self.state = state
        #: The node's pool vessels and their leases; None: the node shares nothing with the pool.
        self.pool = pool
        self.stale_after = stale_after
        self.launcher = launcher
        self.node_key = node_key
        self.addresses = addresses
        self.local_ips = tuple(local_ips)
        self._running: dict[str, _Running] = {}
        self._lifecycle = trio.Lock()
        self._public_threads = trio.CapacityLimiter(PUBLIC_THREADS)
        self._nursery: trio.Nursery | None = None
        self._handlers: dict[str, Handler] = {
            "GetNodeInfo": self._get_node_info, "GetVessels": self._get_vessels,
            "GetVesselResources": self._get_vessel_resources, "GetOffcutResources": self._get_offcut,
            "StartVessel": self._start, "StopVessel": self._stop, "ResetVessel": self._reset,
            "AddFileToVessel": self._add_file, "RetrieveFileFromVessel": self._retrieve_file,
            "ListFilesInVessel": self._list_files, "DeleteFileInVessel": self._delete_file,
            "ReadVesselLog": self._read_log, "ChangeUsers": self._change_users,
            "ChangeOwner": self._change_owner, "ChangeOwnerInformation": self._change_ownerinfo,
            "ChangeAdvertise": self._change_advertise, "SplitVessel": self._split, "JoinVessels": self._join,
        }
        self._pool_handlers: dict[str, Handler] = {
            "AcquireVessel": self._acquire, "RenewLease": self._renew, "ReleaseLease": self._release,
            "GetPoolStatus": self._pool_status,
        }

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the nursery in which running vessels are followed; returns when cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.pool is not None:
                nursery.start_soon(self.pool.run, self.stop_for_pool)
            task_status.started()
            await trio.sleep_forever()

    def running_handle(self, vessel: str) -> VesselHandle | None:
        """The launcher's handle of a running vessel (pids, live usage), or None if it is not running."""
        running = self._running.get(vessel)
        return running.handle if running is not None else None

    async def stop_all(self) -> None:
        """Stop every running vessel and wait until its end state is recorded (clean shutdown)."""
        async with self._lifecycle:
            for name in list(self._running):
                await self._stop_running(name)

    def has_rights(self, key: bytes) -> bool:
        """Whether `key` (raw) owns or uses a vessel here: only such a signer may send frames over the small
        limit. On the event loop: a read of the cached vessel records."""
        return any(key == record.owner or key in record.users for record in self.state.get_vessels())

    def authorize(self, caller: PublicKey, name: str, args: list[Any] | dict[str, Any]) -> bool:
        """RequestRejected unless `caller` may make this call with these arguments (the checks of `handle`
        up to the permission check); True if the call needs replay protection, False for a public call."""
        call = CALLS.get(name)
        if call is None:
            raise RequestRejected(NO_SUCH_CALL, f"Unknown Call {name!r}; the calls are: {', '.join(sorted(CALLS))}")
        if call.permission is Permission.PUBLIC:
            return False
        try:
            bound = bind_arguments(call, args)
            for param in call.vessel_params:
                _check_permission(call, caller, self.state.get_vessel(bound[param]))
        except BadArguments as exc:
            raise RequestRejected(BAD_ARGUMENTS, str(exc)) from None
        except NodeError as exc:
            raise RequestRejected(exc.code, exc.message) from None
        except PermissionRefused as exc:
            raise RequestRejected(INSUFFICIENT_PERMISSIONS, str(exc)) from None
        return True

    async def handle(self, caller: PublicKey | None, name: str, args: list[Any] | dict[str, Any],
                     origin: Origin | None = None) -> dict[str, Any]:
        """One call → its response map (see the module docstring for the order of the checks). `origin` is
        where a signed call came from: the pool's calls need it."""
        call = CALLS.get(name)
        if call is None:
            return error(NO_SUCH_CALL, f"Unknown Call {name!r}; the calls are: {', '.join(sorted(CALLS))}")
        if caller is None and call.permission is not Permission.PUBLIC:
            return error(INSUFFICIENT_PERMISSIONS,
                         f"{name} must be signed by the vessel's {_who(call.permission)}; only "
                         f"{', '.join(sorted(PUBLIC_CALLS))} may be sent unsigned")
        try:
            bound = bind_arguments(call, args)
            for param in call.vessel_params:
                # On the event loop: a cached record read takes ~20 µs, a hop to a worker thread ~110 µs.
                _check_permission(call, caller, self.state.get_vessel(bound[param]))
                if call.permission is Permission.OWNER and self.pool and self.pool.is_pool_vessel(bound[param]):
                    raise NodeError(POOL_VESSEL, f"Vessel {bound[param]} belongs to the pool: its owner is the "
                                                 "node itself, and its owner, users and size cannot be changed")
            if name in self._pool_handlers:
                return await self._pool_handlers[name](caller, origin, **bound)
            if call.lifecycle:
                async with self._lifecycle:
                    return await self._handlers[name](**bound)
            return await self._handlers[name](**bound)
        except BadArguments as exc:
            return error(BAD_ARGUMENTS, str(exc))
        except NodeError as exc:
            return error(exc.code, exc.message)
        except PermissionRefused as exc:
            return error(INSUFFICIENT_PERMISSIONS, str(exc))
        except LeaseRefused as exc:
            return error(exc.code, exc.message)
        except Exception:
            log.exception("internal error in %s", name)
            return error(INTERNAL_ERROR, f"Internal Error: the node failed while handling {name}; the "
                                         "node's operator can find the details in its log")

    # -- public calls -----------------------------------------------------------------------------------

    async def _get_node_info(self) -> dict[str, Any]:
        support = self.launcher.support
        available = self.launcher.default_layers()
        return ok({
            "version": seattle.__version__,
            "node_key": self.node_key.to_text(),
            "fingerprint": self.node_key.fingerprint(),
            "addresses": self.addresses(),
            "layers": {layer: {"available": layer in available, "detail": support.details.get(layer, "")}
                       for layer in ALL_LAYERS},
        })

    async def _get_vessels(self) -> dict[str, Any]:
        records = await trio.to_thread.run_sync(self.state.get_vessels, limiter=self._public_threads)
        return ok({
            "version": seattle.__version__,
            "node_key": self.node_key.to_text(),
            "vessels": [_describe(record) for record in records],
        })

    async def _get_vessel_resources(self, vessel: str) -> dict[str, Any]:
        resources = await trio.to_thread.run_sync(self.state.vessel_resources, vessel,
                                                  limiter=self._public_threads)
        return ok(resources.to_text())

    async def _get_offcut(self) -> dict[str, Any]:
        return ok((await trio.to_thread.run_sync(self.state.offcut, limiter=self._public_threads)).to_text())

    # -- owner-or-user calls ----------------------------------------------------------------------------

    async def _start(self, vessel: str, program: str, args: list[str]) -> dict[str, Any]:
        record = await trio.to_thread.run_sync(self.state.get_vessel, vessel)
        if record.status in RUNNING or vessel in self._running:
            raise NodeError("already_started", f"Vessel {vessel} has already been started; stop it first")
        vesselfiles.check_user_filename(program)
        if program not in await trio.to_thread.run_sync(self.state.list_files, vessel):
            raise NodeError("file_not_found",
                            f"No program file {program!r} in vessel {vessel}; upload it with AddFileToVessel")
        spec = VesselSpec(vessel_dir=self.state.vessel_dir(vessel), program=program,
                          resources=record.resources, args=tuple(args), local_ips=self.local_ips)
        try:
            handle = await self.launcher.start(spec, log_path=self.state.log_path(vessel))
        except SeattleError as exc:
            raise NodeError("start_failed", str(exc)) from None
        running = _Running(handle, trio.Event())
        self._running[vessel] = running
        await trio.to_thread.run_sync(self.state.set_status, vessel, VesselStatus.STARTED)
        assert self._nursery is not None, "NodeAPI.run must be running"
        self._nursery.start_soon(self._follow, vessel, running)
        return ok(VesselStatus.STARTED.value)

    async def _follow(self, vessel: str, running: _Running) -> None:
        """Record the vessel's state while it runs (Started, or Stale while its supervisor is silent) and its
        end state once its process ends; the only writer of a running vessel's status."""
        try:
            recorded = VesselStatus.STARTED
            while running.handle.running:
                with trio.move_on_after(min(1.0, self.stale_after / 2)):
                    await running.handle.wait()
                    break
                now = (VesselStatus.STALE if running.handle.silent_for() > self.stale_after
                       else VesselStatus.STARTED)
                if now is not recorded:
                    await trio.to_thread.run_sync(self.state.set_status, vessel, now)
                    recorded = now
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.state.set_status, vessel, running.handle.status)
        finally:
            self._running.pop(vessel, None)
            running.recorded.set()

    async def _stop_running(self, vessel: str) -> bool:
        """Stop a running vessel and wait for its end state to be recorded; False if it would not stop."""
        running = self._running[vessel]
        await running.handle.stop()
        if running.handle.running:
            return False
        await running.recorded.wait()
        return True

    async def _stop(self, vessel: str) -> dict[str, Any]:
        if vessel not in self._running:
            status = (await trio.to_thread.run_sync(self.state.get_vessel, vessel)).status
            raise NodeError("not_running", f"Cannot stop vessel {vessel} with status '{status}'")
        if not await self._stop_running(vessel):
            return warning(DID_NOT_STOP, f"Vessel {vessel} may not have stopped in a timely manner; "
                                         "check its status with GetVessels", VesselStatus.STARTED.value)
        return ok((await trio.to_thread.run_sync(self.state.get_vessel, vessel)).status.value)

    async def _reset(self, vessel: str) -> dict[str, Any]:
        if vessel in self._running and not await self._stop_running(vessel):
            raise NodeError(DID_NOT_STOP, f"Vessel {vessel} did not stop, so it was not reset; try again")
        await trio.to_thread.run_sync(self.state.reset, vessel)
        return ok(None)

    async def _add_file(self, vessel: str, filename: str, data: bytes) -> dict[str, Any]:
        await trio.to_thread.run_sync(self.state.add_file, vessel, filename, data)
        return ok(None)

    async def _retrieve_file(self, vessel: str, filename: str) -> dict[str, Any]:
        return ok(await trio.to_thread.run_sync(self.state.retrieve_file, vessel, filename))

    async def _list_files(self, vessel: str) -> dict[str, Any]:
        return ok(self.state.list_files(vessel))  # a directory listing: cheaper than a thread hop

    async def _delete_file(self, vessel: str, filename: str) -> dict[str, Any]:
        await trio.to_thread.run_sync(self.state.delete_file, vessel, filename)
        return ok(None)

    async def _read_log(self, vessel: str) -> dict[str, Any]:
        return ok(await trio.to_thread.run_sync(self.state.read_log, vessel))

    # -- owner calls ------------------------------------------------------------------------------------

    async def _change_users(self, vessel: str, users: list[bytes]) -> dict[str, Any]:
        await trio.to_thread.run_sync(self.state.change_users, vessel, users)
        return ok(None)

    async def _change_owner(self, vessel: str, owner: bytes) -> dict[str, Any]:
        await trio.to_thread.run_sync(self.state.change_owner, vessel, owner)
        return ok(None)

    async def _change_ownerinfo(self, vessel: str, ownerinfo: str) -> dict[str, Any]:
        await trio.to_thread.run_sync(self.state.change_ownerinfo, vessel, ownerinfo)
        return ok(None)

    async def _change_advertise(self, vessel: str, advertise: bool) -> dict[str, Any]:
        await trio.to_thread.run_sync(self.state.change_advertise, vessel, advertise)
        return ok(None)

    async def _split(self, vessel: str, resources: str) -> dict[str, Any]:
        leftover, requested = await trio.to_thread.run_sync(self.state.split, vessel, resources)
        return ok([leftover, requested])

    async def _join(self, vessel: str, other: str) -> dict[str, Any]:
        return ok(await trio.to_thread.run_sync(self.state.join, vessel, other))


    # -- the pool (seattle.nodemgr.pool) ---------------------------------------------------------------

    def _pool(self) -> NodePool:
        if self.pool is None:
            raise NodeError(NO_POOL, "This node shares no vessels with the pool")
        return self.pool

    async def stop_for_pool(self, vessel: str) -> bool:
        """Stop `vessel` if it runs, under the lifecycle lock: its lease ended. False if it would not stop."""
        async with self._lifecycle:
            return vessel not in self._running or await self._stop_running(vessel)

    async def _acquire(self, caller: PublicKey | None, origin: Origin | None, slot: int, duration: float
                       ) -> dict[str, Any]:
        assert caller is not None  # a signed call
        if origin is None:
            raise NodeError(NO_POOL, "AcquireVessel must arrive as a signed request over the network")
        return ok(_lease_result(await self._pool().acquire(caller, slot, duration, origin.request,
                                                           origin.source)))

    async def _renew(self, caller: PublicKey | None, origin: Origin | None, vessel: str, duration: float
                     ) -> dict[str, Any]:
        assert caller is not None
        return ok(_lease_result(await self._pool().renew(caller, vessel, duration)))

    async def _release(self, caller: PublicKey | None, origin: Origin | None, vessel: str) -> dict[str, Any]:
        assert caller is not None
        await self._pool().release(caller, vessel, self.stop_for_pool)
        return ok(None)

    async def _pool_status(self, caller: PublicKey | None, origin: Origin | None) -> dict[str, Any]:
        if self.pool is None:
            return ok({"node_key": self.node_key.to_text(), "free": 0, "total": 0, "draining": False,
                       "leases": []})
        return ok(self.pool.status(caller))


@dataclass(frozen=True)
class Origin:
    """Where a signed call came from: its bytes as signed (a lease embeds the acquire request) and its
    source network and address (the pool's acquire budget); None for a caller with no IP address."""

    request: bytes
    source: Source | None


def _lease_result(lease: Lease) -> dict[str, Any]:
    return {"vessel": lease.vessel, "slot": lease.slot, "expires": lease.expires, "max_expiry": lease.max_expiry,
            "lease": lease.raw}


class PermissionRefused(Exception):
    """The signer may not make this call on this vessel."""


def _check_permission(call: Call, caller: PublicKey | None, record: VesselRow) -> None:
    if call.permission is Permission.PUBLIC:
        return
    assert caller is not None  # unsigned requests for such calls were refused before
    if caller.raw == record.owner:
        return
    if call.permission in (Permission.OWNER_OR_USER, Permission.LESSEE) and caller.raw in record.users:
        return
    raise PermissionRefused(
        f"Insufficient Permissions: {call.name} on vessel {record.name} needs the signature of its "
        f"{_who(call.permission)}, and key {caller.fingerprint()} is not "
        f"{'its owner or one of its users' if call.permission is Permission.OWNER_OR_USER else 'its owner'}")


def _who(permission: Permission) -> str:
    return "owner" if permission is Permission.OWNER else "owner or one of its users"


def _describe(record: VesselRow) -> dict[str, Any]:
    return {
        "name": record.name,
        "status": record.status.value,
        "advertise": record.advertise,
        "owner": PublicKey(record.owner).to_text(),
        "ownerinfo": record.ownerinfo,
        "users": [PublicKey(key).to_text() for key in record.users],
    }
