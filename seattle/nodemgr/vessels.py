"""The node's vessels: the operations behind the node manager's calls, on durable state.

`NodeState` is what the daemon holds. Each mutating method is one SQLite transaction (`store.Store`), and
the files that go with it follow a rule that keeps the two consistent after a kill at any moment:

* The database is the truth, and file changes happen only after the commit. On `open`, the directories are
  made to match it: a missing vessel directory is created empty (a split or join killed before it made
  the new vessels' directories; new vessels start empty anyway), and a directory or log of a vessel that
  no longer exists is removed (the parent of a split or join that was killed before cleaning up).
* A reset journals itself: the commit that makes the vessel Fresh also sets `reset_pending`, the files are
  removed afterwards, and `open` finishes any reset still marked. So a reset is either not done at all or,
  once committed, completely done.
* Uploads are atomic by themselves (`vesselfiles.add_file`), and `open` removes their leftover temporary
  files.

Layout of a node directory:

    node.db, node.db-wal, node.db-shm   the state (store.py)
    node.lock                           held while a NodeState is open
    vessels/vN/                         vessel vN's files: what the program sees as its directory
    logs/vN.log.old, logs/vN.log.new    vessel vN's log (a CircularLog), outside the vessel's directory
                                        so that the program cannot write it

Vessels recorded as Started (or Stale) when the node manager died are not running any more: their
processes die with the daemon (the zygote exits when the daemon's socket closes, and each supervisor kills
its child when the zygote goes). `recover()`, which the daemon calls once right after `open`, marks them
Terminated, not Stopped, because nobody asked them to stop, and writes the reason into their logs. A
vessel that restarts must be started again by its user, as in the original.

The conserved quantity is `total()`: sum(vessels) + (#vessels − 1)·offcut. Split and join keep it equal,
port sets included, because vessels never share a port (checked when the node is laid out).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from seattle.nodemgr import vesselfiles
from seattle.nodemgr.database import (
    MAX_OWNERINFO,
    Store,
    Transaction,
    VesselRow,
    check_key,
    vessel_number,
)
from seattle.nodemgr.nodedir import NodeDir
from seattle.nodemgr.nodeerror import NodeError
from seattle.resources import (
    DEFAULT_OFFCUT,
    PORT_SETS,
    ResourceArithmeticError,
    ResourceParseError,
    Resources,
    join_resources,
    parse_resources,
    split_resources,
)
from seattle.vessel.host.logbuffer import CircularLog
from seattle.vessel.status import VesselStatus

#: States in which a vessel's process may be running: it must be stopped before a split, join or reset.
RUNNING = frozenset({VesselStatus.STARTED, VesselStatus.STALE})
#: Written to the log of a vessel that `recover()` finds recorded as running.
RECOVERY_NOTE = (b"\n[node manager] The node manager restarted; this vessel's process ended with it, "
                 b"so its status is now Terminated. Start it again to run it.\n")

#: (resources, owner key, user keys) of one vessel of the initial layout.
LayoutEntry = tuple[Resources, bytes, Sequence[bytes]]


class NodeState:
    """The vessels of one node and their files. Thread-safe: every method runs under one lock."""

    def __init__(self, node_dir: Path, store: Store) -> None:
        """Use `create` or `open`."""
        self.node_dir = node_dir
        self.paths = NodeDir(node_dir)
        self._store = store
        self._lock = threading.Lock()

    # -- opening ----------------------------------------------------------------------------------------

    @classmethod
    def create(cls, node_dir: Path, node_key: bytes, offcut: Resources = DEFAULT_OFFCUT) -> NodeState:
        """A new node with no vessels yet (see `create_initial_vessels`); NodeError if one exists there."""
        node_dir = Path(node_dir)
        store = Store.create(node_dir, node_key, offcut)
        NodeDir(node_dir).vessels_path.mkdir(mode=0o700, exist_ok=True)
        NodeDir(node_dir).logs_path.mkdir(mode=0o700, exist_ok=True)
        return cls(node_dir, store)

    @classmethod
    def open(cls, node_dir: Path) -> NodeState:
        """Open an existing node and make its files match its database (see the module docstring)."""
        node_dir = Path(node_dir)
        store = Store.open(node_dir)
        state = cls(node_dir, store)
        try:
            state._reconcile_files()
        except BaseException:
            store.close()
            raise
        return state

    def close(self) -> None:
        with self._lock:
            self._store.close()

    def __enter__(self) -> NodeState:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def recover(self) -> list[str]:
        """Mark vessels recorded as Started or Stale Terminated, note it in their logs, return their names.

        Call once after `open`, before starting any vessel: at that moment no vessel process of this node
        can exist, so such a record is out of date. The log line is written before the commit, so a kill in
        between repeats it rather than loses it.
        """
        with self._lock:
            running = [v.name for v in self._read().vessels() if v.status in RUNNING]
            for name in running:
                self._log(name).write(RECOVERY_NOTE)
            with self._store.transaction() as tx:
                for name in running:
                    tx.update_vessel(name, status=VesselStatus.TERMINATED)
            return running

    # -- reading ----------------------------------------------------------------------------------------

    @property
    def node_key(self) -> bytes:
        with self._lock:
            return self._read().node().node_key

    def offcut(self) -> Resources:
        """What one more vessel costs (GetOffcutResources sends `.to_text()`)."""
        with self._lock:
            return self._read().node().offcut

    def change_counter(self) -> int:
        """Grows at every change to any vessel; compare with a VesselRow's `last_change`."""
        with self._lock:
            return self._read().node().change_counter

    def get_vessels(self) -> list[VesselRow]:
        """Every vessel, in order of number."""
        with self._lock:
            return self._read().vessels()

    def get_vessel(self, name: str) -> VesselRow:
        """The vessel `name`, or NodeError("no_such_vessel")."""
        with self._lock:
            return self._read().vessel(name)

    def vessel_resources(self, name: str) -> Resources:
        """The allotment of `name` (GetVesselResources sends `.to_text()`, `call` lines included)."""
        return self.get_vessel(name).resources

    def total(self) -> Resources:
        """sum(vessels) + (#vessels − 1)·offcut, without call lines: what split and join conserve."""
        with self._lock:
            tx = self._read()
            vessels, offcut = tx.vessels(), tx.node().offcut
        if not vessels:
            raise NodeError("no_vessels", "The node has no vessels yet")
        total = vessels[0].resources
        for vessel in vessels[1:]:
            total = total + vessel.resources + offcut
        return total.replace(calls=())

    def vessel_dir(self, name: str) -> Path:
        """The directory a vessel's program runs in (the launcher's `VesselSpec.vessel_dir`)."""
        return self.paths.vessels_path / f"v{vessel_number(name)}"

    def log_path(self, name: str) -> Path:
        """The base path of a vessel's CircularLog (the launcher's `log_path`): `.old`/`.new` are added."""
        return self.paths.logs_path / f"v{vessel_number(name)}.log"

    def read_log(self, name: str) -> bytes:
        """The last 16 KiB of the vessel's log (ReadVesselLog)."""
        with self._lock:
            self._read().vessel(name)
            return self._log(name).read()

    # -- the layout -------------------------------------------------------------------------------------

    def create_initial_vessels(self, layout: Sequence[LayoutEntry]) -> list[str]:
        """Create the node's first vessels v1…vK from (resources, owner, users); all Fresh, advertised.

        Refused once the node has ever had a vessel, and refused if two vessels would share a port.
        """
        entries = _check_layout(layout)
        with self._lock:
            with self._store.transaction() as tx:
                if tx.node().next_vessel != 1:
                    raise NodeError("already_initialized", "The node's vessels were already created")
                names = [tx.new_vessel(owner, users, "", True, resources)
                         for resources, owner, users in entries]
            for name in names:
                vesselfiles.create_dir(self.vessel_dir(name))
            return names

    # -- owner calls ------------------------------------------------------------------------------------

    def change_owner(self, name: str, owner: bytes) -> None:
        """ChangeOwner: also clears the owner information and turns advertising on, as the original did."""
        check_key(owner, "owner key")
        with self._lock, self._store.transaction() as tx:
            tx.vessel(name)
            tx.update_vessel(name, owner=owner, ownerinfo="", advertise=True)

    def change_users(self, name: str, users: Sequence[bytes]) -> None:
        """ChangeUsers: replace the user keys with `users`, in that order (empty clears the list)."""
        keys = _check_users(users)
        with self._lock, self._store.transaction() as tx:
            tx.vessel(name)
            tx.set_users(name, keys)

    def change_ownerinfo(self, name: str, ownerinfo: str) -> None:
        """ChangeOwnerInformation: at most 256 characters, no newline."""
        if not isinstance(ownerinfo, str):
            raise NodeError("bad_ownerinfo",
                            f"Owner information must be a string, got {type(ownerinfo).__name__}")
        if len(ownerinfo) > MAX_OWNERINFO:
            raise NodeError("string_too_long",
                            f"String Too Long: owner information is {len(ownerinfo)} characters, the "
                            f"limit is {MAX_OWNERINFO}")
        if "\n" in ownerinfo:
            raise NodeError("newline_in_string", "String may not contain newline character")
        with self._lock, self._store.transaction() as tx:
            tx.vessel(name)
            tx.update_vessel(name, ownerinfo=ownerinfo)

    def change_advertise(self, name: str, advertise: bool) -> None:
        """ChangeAdvertise: `advertise` must be a real bool."""
        if not isinstance(advertise, bool):
            raise NodeError("bad_advertise",
                            f"Invalid advertisement setting {advertise!r}: give True or False")
        with self._lock, self._store.transaction() as tx:
            tx.vessel(name)
            tx.update_vessel(name, advertise=advertise)

    def split(self, name: str, requested: Resources | str) -> tuple[str, str]:
        """SplitVessel: replace `name` by (leftover, requested) = (parent − offcut − requested, requested).

        `requested` is a Resources value or resource-file text (cpu, memory and diskused mandatory). Both
        new vessels inherit owner, users, advertise, owner information and the parent's call lines, and start
        Fresh with no files; the parent's files and log are removed. Returns (leftover name, requested name).
        """
        wanted = _requested_resources(requested)
        with self._lock:
            with self._store.transaction() as tx:
                parent = tx.vessel(name)
                if parent.status in RUNNING:
                    raise NodeError("vessel_running", "Attempting to split a running vessel")
                offcut = tx.node().offcut
                if not offcut.fits_within(parent.resources):
                    code = "too_small_to_split"
                else:
                    code = "too_large"
                try:
                    leftover, piece = split_resources(parent.resources, wanted, offcut)
                except ResourceArithmeticError as exc:
                    raise NodeError(code, str(exc)) from None
                tx.delete_vessel(name)
                names = tuple(
                    tx.new_vessel(parent.owner, parent.users, parent.ownerinfo, parent.advertise, resources)
                    for resources in (leftover, piece)
                )
            self._replace_files([name], names)
            return names[0], names[1]

    def join(self, first: str, second: str) -> str:
        """JoinVessels: one vessel of first + second + offcut with `first`'s metadata; returns its name."""
        with self._lock:
            with self._store.transaction() as tx:
                a, b = tx.vessel(first), tx.vessel(second)
                if a.name == b.name:
                    raise NodeError("same_vessel", f"Cannot join vessel {a.name!r} with itself")
                if a.owner != b.owner:
                    raise NodeError("not_same_owner", "Vessels must have the same owner")
                if a.status in RUNNING or b.status in RUNNING:
                    raise NodeError("vessel_running", "Attempting to join a running vessel")
                try:
                    resources = join_resources(a.resources, b.resources, tx.node().offcut)
                except ResourceArithmeticError as exc:
                    raise NodeError("too_large", str(exc)) from None
                tx.delete_vessel(a.name)
                tx.delete_vessel(b.name)
                joined = tx.new_vessel(a.owner, a.users, a.ownerinfo, a.advertise, resources)
            self._replace_files([a.name, b.name], [joined])
            return joined

    # -- user calls -------------------------------------------------------------------------------------

    def set_status(self, name: str, status: VesselStatus | str) -> None:
        """Record the state the launcher reports (Started, Stopped, Terminated, ThreadErr, …)."""
        try:
            new = VesselStatus(status)
        except ValueError:
            known = ", ".join(s.value for s in VesselStatus)
            raise NodeError("bad_status",
                            f"Unknown vessel status {status!r}; the states are: {known}") from None
        with self._lock, self._store.transaction() as tx:
            tx.vessel(name)
            tx.update_vessel(name, status=new)

    def reset(self, name: str) -> None:
        """ResetVessel: remove every non-`private_` file and the log, and make the vessel Fresh.

        The daemon stops a running vessel first; here a running one is refused. Advertising is unchanged.
        """
        with self._lock:
            with self._store.transaction() as tx:
                if tx.vessel(name).status in RUNNING:
                    raise NodeError("vessel_running", "Attempting to reset a running vessel; stop it first")
                tx.update_vessel(name, status=VesselStatus.FRESH)
                tx.set_reset_pending(name, True)
            self._finish_reset(name)

    def wipe(self, name: str) -> None:
        """A pool lease ended: no user, no file (`private_` ones included), no log, Fresh. Idempotent, so the
        pool redoes it after a kill cut it short (the lease ledger remembers the vessel is ending)."""
        with self._lock:
            with self._store.transaction() as tx:
                if tx.vessel(name).status in RUNNING:
                    raise NodeError("vessel_running", "Attempting to reset a running vessel; stop it first")
                tx.set_users(name, [])
                tx.update_vessel(name, status=VesselStatus.FRESH)
            vesselfiles.remove_dir(self.vessel_dir(name))
            vesselfiles.create_dir(self.vessel_dir(name))
            self._log(name).clear()

    def add_file(self, name: str, filename: str, data: bytes) -> None:
        """AddFileToVessel: atomic, within the vessel's `diskused`; replaces a file of the same name."""
        with self._lock:
            disk_limit = self._read().vessel(name).resources.count("diskused")
            vesselfiles.add_file(self.vessel_dir(name), filename, data, disk_limit)

    def retrieve_file(self, name: str, filename: str) -> bytes:
        """RetrieveFileFromVessel."""
        with self._lock:
            self._read().vessel(name)
            return vesselfiles.retrieve_file(self.vessel_dir(name), filename)

    def list_files(self, name: str) -> list[str]:
        """ListFilesInVessel: sorted, `private_` files hidden."""
        with self._lock:
            self._read().vessel(name)
            return vesselfiles.list_files(self.vessel_dir(name))

    def delete_file(self, name: str, filename: str) -> None:
        """DeleteFileInVessel."""
        with self._lock:
            self._read().vessel(name)
            vesselfiles.delete_file(self.vessel_dir(name), filename)

    # -- internals --------------------------------------------------------------------------------------

    def _read(self) -> Transaction:
        return self._store.reader()

    def _log(self, name: str) -> CircularLog:
        return CircularLog(self.log_path(name))

    def _replace_files(self, gone: Sequence[str], new: Sequence[str]) -> None:
        """After a committed split or join: make the new vessels' directories, remove the old ones'."""
        for name in new:
            vesselfiles.create_dir(self.vessel_dir(name))
        for name in gone:
            vesselfiles.remove_dir(self.vessel_dir(name))
            self._log(name).clear()

    def _finish_reset(self, name: str) -> None:
        vesselfiles.reset_files(self.vessel_dir(name))
        self._log(name).clear()
        with self._store.transaction() as tx:
            tx.set_reset_pending(name, False)

    def _reconcile_files(self) -> None:
        """Make the directories match the committed state after whatever a kill interrupted."""
        vessels_dir, logs_dir = self.paths.vessels_path, self.paths.logs_path
        vessels_dir.mkdir(mode=0o700, exist_ok=True)
        logs_dir.mkdir(mode=0o700, exist_ok=True)
        tx = self._read()
        names = {vessel.name for vessel in tx.vessels()}
        stray = [entry for entry in vessels_dir.iterdir() if entry.name not in names]
        stray += [entry for entry in logs_dir.iterdir() if entry.name.split(".", 1)[0] not in names]
        for entry in stray:
            if entry.is_dir() and not entry.is_symlink():
                vesselfiles.remove_dir(entry)
            else:
                entry.unlink()
        for name in names:
            vesselfiles.create_dir(self.vessel_dir(name))
            vesselfiles.remove_partial_uploads(self.vessel_dir(name))
        for name in tx.pending_resets():
            self._finish_reset(name)


def _check_layout(layout: object) -> list[tuple[Resources, bytes, tuple[bytes, ...]]]:
    """Validate the installer's layout: non-empty, well-typed entries, no port given to two vessels."""
    if isinstance(layout, str | bytes) or not isinstance(layout, Sequence) or not layout:
        raise NodeError("bad_layout", "The layout must be a non-empty list of (resources, owner, users)")
    entries = []
    holders: dict[tuple[str, int], int] = {}
    for index, entry in enumerate(layout, start=1):
        if not isinstance(entry, tuple | list) or len(entry) != 3:
            raise NodeError("bad_layout",
                            f"Layout entry {index} is not (resources, owner, users): {entry!r:.80}")
        resources, owner, users = entry
        if not isinstance(resources, Resources):
            raise NodeError("bad_layout", f"Layout entry {index}: resources must be a Resources value, got "
                                          f"{type(resources).__name__}")
        for kind in sorted(PORT_SETS):
            for port in sorted(getattr(resources, kind)):
                if (kind, port) in holders:
                    raise NodeError("bad_layout",
                                    f"Layout entries {holders[kind, port]} and {index} both hold {kind} "
                                    f"port {port}; vessels may not share a port")
                holders[kind, port] = index
        owner = check_key(owner, f"owner key of layout entry {index}")
        entries.append((resources, owner, _check_users(users)))
    return entries


def _check_users(users: object) -> tuple[bytes, ...]:
    if isinstance(users, str | bytes) or not isinstance(users, Sequence):
        raise NodeError("bad_key",
                        f"Invalid Key String: the user keys must be a list, got {type(users).__name__}")
    keys = tuple(check_key(key, f"user key {position}") for position, key in enumerate(users, start=1))
    if len(set(keys)) != len(keys):
        repeated = next(key for key in keys if keys.count(key) > 1)
        raise NodeError("bad_key", f"Invalid Key String: user key {repeated.hex()} is listed twice")
    return keys


def _requested_resources(requested: object) -> Resources:
    if isinstance(requested, Resources):
        return requested
    if isinstance(requested, str):
        try:
            return parse_resources(requested, source="split request")
        except ResourceParseError as exc:
            raise NodeError("bad_resources", str(exc)) from None
    raise NodeError("bad_resources",
                    f"The split request must be resource text, got {type(requested).__name__}")
