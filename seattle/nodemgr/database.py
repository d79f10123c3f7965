"""The node manager's persistent state: one SQLite database in the node directory.

Why SQLite: a node manager can be killed at any moment (SIGKILL, power loss), and must come back with
every vessel, the offcut and the vessel counter exactly as the last completed call left them. Making each
mutating call one SQLite transaction gives that for free: either all of a call's rows changed or none did.
The original wrote a Python `repr` to `file.new` and renamed it, which is atomic too, but rewrote the whole
state on every call and could not hold anything larger than memory.

* WAL journal: a commit appends to the `-wal` file instead of rewriting pages, so a kill during a commit
  leaves the previous state readable, and readers never block the writer.
* synchronous=FULL: the WAL is fsynced at every commit. NORMAL would survive a killed process just as well,
  but after a power cut it may lose the last commits, and the daemon has already told the client "done".
  Mutating calls are rare (owner calls, splits, status changes), so the fsync per commit costs little.
* `node.lock` is held with flock(LOCK_EX) for as long as the store is open: two node managers on one
  directory would each believe they own the vessels. The kernel drops the lock when the process dies, so
  a killed daemon never leaves a stale lock behind.
* The schema version lives in `PRAGMA user_version`, set in the same transaction that creates the tables,
  so a kill during creation leaves version 0 ("not a node yet"), never a half-made schema.

This module knows rows and transactions; the rules (who may split what, which errors) live in
`seattle.nodemgr.vessels`. Every failure a caller can act on is a `NodeError` with a stable code.
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seattle.nodemgr.nodedir import NodeDir
from seattle.nodemgr.nodeerror import NodeError
from seattle.resources import ResourceParseError, Resources, parse_resources
from seattle.vessel.status import VesselStatus

SCHEMA_VERSION = 1
#: An Ed25519 public key: the only key form the store accepts for the node, owners and users.
KEY_BYTES = 32
#: The longest owner information string (the original's limit).
MAX_OWNERINFO = 256

_VESSEL_NAME = re.compile(r"v([1-9][0-9]{0,17})")
_STATUSES = ", ".join(f"'{status.value}'" for status in VesselStatus)

_SCHEMA = f"""
CREATE TABLE node (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    node_key BLOB NOT NULL CHECK (length(node_key) = {KEY_BYTES}),
    offcut TEXT NOT NULL,
    next_vessel INTEGER NOT NULL CHECK (next_vessel >= 1),
    change_counter INTEGER NOT NULL CHECK (change_counter >= 0)
);
CREATE TABLE vessel (
    number INTEGER PRIMARY KEY CHECK (number >= 1),
    owner_key BLOB NOT NULL CHECK (length(owner_key) = {KEY_BYTES}),
    ownerinfo TEXT NOT NULL CHECK (length(ownerinfo) <= {MAX_OWNERINFO}),
    advertise INTEGER NOT NULL CHECK (advertise IN (0, 1)),
    status TEXT NOT NULL CHECK (status IN ({_STATUSES})),
    resources TEXT NOT NULL,
    created REAL NOT NULL,
    last_change INTEGER NOT NULL,
    reset_pending INTEGER NOT NULL DEFAULT 0 CHECK (reset_pending IN (0, 1))
);
CREATE TABLE vessel_user (
    vessel INTEGER NOT NULL REFERENCES vessel (number) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    user_key BLOB NOT NULL CHECK (length(user_key) = {KEY_BYTES}),
    PRIMARY KEY (vessel, position),
    UNIQUE (vessel, user_key)
);
"""


@dataclass(frozen=True)
class VesselRow:
    """One vessel as stored. `last_change` is the node's change counter at this vessel's latest change."""

    name: str
    owner: bytes
    users: tuple[bytes, ...]
    ownerinfo: str
    advertise: bool
    status: VesselStatus
    resources: Resources
    created: float
    last_change: int


@dataclass(frozen=True)
class NodeRecord:
    """The node-wide row: its key, the offcut, the next vessel number and the change counter.

    `change_counter` grows by one at every change to any vessel, deletions included, so an advertiser
    that remembers the value knows whether anything changed at all.
    """

    node_key: bytes
    offcut: Resources
    next_vessel: int
    change_counter: int


def vessel_number(name: object) -> int:
    """The N of a vessel name `vN`; anything else is a NodeError("no_such_vessel")."""
    match = _VESSEL_NAME.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise NodeError("no_such_vessel", f"No such vessel {_short(name)}")
    return int(match.group(1))


def check_key(key: object, what: str) -> bytes:
    """`key` if it is a raw Ed25519 public key (exactly 32 bytes), else NodeError("bad_key")."""
    if not isinstance(key, bytes):
        raise NodeError("bad_key", f"Invalid Key: the {what} must be {KEY_BYTES} bytes, got "
                                   f"{type(key).__name__}")
    if len(key) != KEY_BYTES:
        raise NodeError("bad_key", f"Invalid Key: the {what} must be {KEY_BYTES} bytes, got {len(key)}")
    return key


def _short(value: object, limit: int = 60) -> str:
    """`repr(value)` cut short, so a megabyte of garbage in a request cannot flood an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class Transaction:
    """The reads and writes of one open transaction; obtained from `Store.transaction()` only."""

    def __init__(self, conn: sqlite3.Connection, source: str) -> None:
        self._conn = conn
        self._source = source

    # -- reads ----------------------------------------------------------------------------------------

    def node(self) -> NodeRecord:
        key, offcut, next_vessel, counter = self._conn.execute(
            "SELECT node_key, offcut, next_vessel, change_counter FROM node WHERE id = 1").fetchone()
        return NodeRecord(key, self._parse(offcut, "offcut"), next_vessel, counter)

    def vessel(self, name: str) -> VesselRow:
        """The vessel called `name`, or NodeError("no_such_vessel")."""
        number = vessel_number(name)
        row = self._conn.execute(f"{_SELECT_VESSEL} WHERE number = ?", (number,)).fetchone()
        if row is None:
            raise NodeError("no_such_vessel", f"No such vessel {name!r}")
        users = [key for (key,) in self._conn.execute(
            "SELECT user_key FROM vessel_user WHERE vessel = ? ORDER BY position", (number,))]
        return self._record(row, users)

    def vessels(self) -> list[VesselRow]:
        """Every vessel, in order of number."""
        users: dict[int, list[bytes]] = {}
        for number, key in self._conn.execute(
                "SELECT vessel, user_key FROM vessel_user ORDER BY vessel, position"):
            users.setdefault(number, []).append(key)
        rows = self._conn.execute(f"{_SELECT_VESSEL} ORDER BY number").fetchall()
        return [self._record(row, users.get(row[0], [])) for row in rows]

    def pending_resets(self) -> list[str]:
        """Vessels whose reset was committed but whose files may not all be gone yet."""
        rows = self._conn.execute("SELECT number FROM vessel WHERE reset_pending = 1 ORDER BY number")
        return [f"v{number}" for (number,) in rows]

    # -- writes ---------------------------------------------------------------------------------------

    def create_node(self, node_key: bytes, offcut: Resources) -> None:
        # One execute() per statement: executescript() would COMMIT the open transaction first.
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self._conn.execute(statement)
        self._conn.execute("INSERT INTO node VALUES (1, ?, ?, 1, 0)", (node_key, offcut.to_text()))
        self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def new_vessel(self, owner: bytes, users: Sequence[bytes], ownerinfo: str, advertise: bool,
                   resources: Resources) -> str:
        """Insert a Fresh vessel under the next unused number (never reused) and return its name."""
        (number,) = self._conn.execute("SELECT next_vessel FROM node WHERE id = 1").fetchone()
        self._conn.execute("UPDATE node SET next_vessel = ? WHERE id = 1", (number + 1,))
        self._conn.execute(
            "INSERT INTO vessel (number, owner_key, ownerinfo, advertise, status, resources, created, "
            "last_change) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (number, owner, ownerinfo, int(advertise), VesselStatus.FRESH.value, resources.to_text(),
             time.time(), self._bump()),
        )
        self._insert_users(number, users)
        return f"v{number}"

    def delete_vessel(self, name: str) -> None:
        self._bump()
        self._conn.execute("DELETE FROM vessel WHERE number = ?", (vessel_number(name),))

    def update_vessel(self, name: str, *, owner: bytes | None = None, ownerinfo: str | None = None,
                      advertise: bool | None = None, status: VesselStatus | None = None) -> None:
        """Change the given fields of an existing vessel and stamp it with a new change number."""
        changes: dict[str, object] = {"last_change": self._bump()}
        if owner is not None:
            changes["owner_key"] = owner
        if ownerinfo is not None:
            changes["ownerinfo"] = ownerinfo
        if advertise is not None:
            changes["advertise"] = int(advertise)
        if status is not None:
            changes["status"] = status.value
        assignments = ", ".join(f"{column} = ?" for column in changes)
        self._conn.execute(f"UPDATE vessel SET {assignments} WHERE number = ?",
                           (*changes.values(), vessel_number(name)))

    def set_users(self, name: str, users: Sequence[bytes]) -> None:
        number = vessel_number(name)
        self._conn.execute("DELETE FROM vessel_user WHERE vessel = ?", (number,))
        self._insert_users(number, users)
        self._conn.execute("UPDATE vessel SET last_change = ? WHERE number = ?", (self._bump(), number))

    def set_reset_pending(self, name: str, pending: bool) -> None:
        """Journal a reset's file removal (see `seattle.nodemgr.vessels`); not a change users can see."""
        self._conn.execute("UPDATE vessel SET reset_pending = ? WHERE number = ?",
                           (int(pending), vessel_number(name)))

    # -- helpers --------------------------------------------------------------------------------------

    def _bump(self) -> int:
        (counter,) = self._conn.execute(
            "UPDATE node SET change_counter = change_counter + 1 WHERE id = 1 RETURNING change_counter"
        ).fetchone()
        return int(counter)

    def _insert_users(self, number: int, users: Sequence[bytes]) -> None:
        self._conn.executemany("INSERT INTO vessel_user VALUES (?, ?, ?)",
                               [(number, position, key) for position, key in enumerate(users)])

    def _record(self, row: tuple[Any, ...], users: list[bytes]) -> VesselRow:
        number, owner, ownerinfo, advertise, status, resources, created, last_change = row
        name = f"v{number}"
        return VesselRow(
            name=name, owner=owner, users=tuple(users), ownerinfo=ownerinfo, advertise=bool(advertise),
            status=VesselStatus(status), resources=self._parse(resources, f"resources of {name}"),
            created=created, last_change=last_change,
        )

    def _parse(self, text: str, what: str) -> Resources:
        try:
            return _parse_stored(text)
        except ResourceParseError:
            try:  # parse again for the error message that names this store and field
                parse_resources(text, source=f"{self._source} ({what})")
            except ResourceParseError as exc:
                raise NodeError("bad_store", f"The stored {what} do not parse: {exc}") from None
            raise


@functools.lru_cache(maxsize=4096)
def _parse_stored(text: str) -> Resources:
    """Stored resource texts, parsed once: parsing (exact decimal arithmetic) costs a quarter millisecond, and
    every permission check reads a vessel's record. Resources are immutable, so sharing them is safe."""
    return parse_resources(text)


_SELECT_VESSEL = ("SELECT number, owner_key, ownerinfo, advertise, status, resources, created, last_change "
                  "FROM vessel")


class Store:
    """An open node database. Not thread-safe by itself: `seattle.nodemgr.vessels.NodeState` serializes.

    The connection is opened with check_same_thread=False so that the daemon may call in from worker
    threads (one at a time), e.g. through trio.to_thread.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, lock_fd: int) -> None:
        self.path = path
        self._conn = conn
        self._lock_fd = lock_fd

    @classmethod
    def create(cls, node_dir: Path, node_key: bytes, offcut: Resources) -> Store:
        """Make a new, empty node database in `node_dir` (created if missing).

        Refuses ("store_exists") if the directory already holds a node; a database left at version 0 by a
        creation that was killed half-way is simply created again.
        """
        check_key(node_key, "node key")
        if not isinstance(offcut, Resources):
            raise NodeError("bad_resources", f"The offcut must be a Resources value, got {_short(offcut)}")
        node_dir = Path(node_dir)
        NodeDir(node_dir).create()
        store = cls._connect(node_dir, create=True)
        try:
            version = store._user_version()
            if version != 0:
                raise NodeError("store_exists", f"{node_dir} already holds a node (schema version {version})")
            with store.transaction() as tx:
                tx.create_node(node_key, offcut)
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open(cls, node_dir: Path) -> Store:
        """Open the node database in `node_dir`; NodeError("no_store") if there is none."""
        node_dir = Path(node_dir)
        database = NodeDir(node_dir).database_path
        if not database.is_file():
            raise NodeError("no_store", f"{node_dir} holds no node state ({NodeDir.DATABASE} is missing)")
        store = cls._connect(node_dir, create=False)
        try:
            version = store._user_version()
            if version == 0:
                raise NodeError("no_store", f"{database} was never completely created")
            if version != SCHEMA_VERSION:
                raise NodeError("store_version",
                                f"{database} has schema version {version}; this seattle knows "
                                f"version {SCHEMA_VERSION} only")
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def _connect(cls, node_dir: Path, *, create: bool) -> Store:
        paths = NodeDir(node_dir)
        lock_fd = os.open(paths.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise NodeError("store_locked", f"Another node manager is using {node_dir}") from None
        path = paths.database_path
        mode = "rwc" if create else "rw"
        try:
            conn = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, isolation_level=None,
                                   check_same_thread=False)
            try:
                journal = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if journal != "wal":
                    raise NodeError("bad_store", f"{path}: SQLite refused WAL mode (got {journal!r})")
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA foreign_keys = ON")
            except BaseException:
                conn.close()
                raise
        except sqlite3.DatabaseError as exc:
            os.close(lock_fd)
            raise NodeError("bad_store", f"{path} is not a usable node database: {exc}") from None
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(path, conn, lock_fd)

    def _user_version(self) -> int:
        try:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise NodeError("bad_store", f"{self.path} is not a usable node database: {exc}") from None

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One write transaction (BEGIN IMMEDIATE): committed when the block ends, rolled back on raise."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield Transaction(self._conn, str(self.path))
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def reader(self) -> Transaction:
        """Reads outside BEGIN/COMMIT, each statement seeing committed state.

        Only for a caller that serializes its use of the store (as NodeState does with its lock): the flock
        on node.lock already keeps every other process out, so no writer can interleave between the reads.
        """
        return Transaction(self._conn, str(self.path))

    def integrity_problems(self) -> list[str]:
        """What SQLite's own integrity and foreign-key checks find wrong; empty when the file is sound."""
        problems = [row[0] for row in self._conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [f"vessel_user row {rowid} points at missing vessel {parent}"
                     for _table, rowid, parent, _fk in self._conn.execute("PRAGMA foreign_key_check")]
        return problems

    def close(self) -> None:
        """Close the database and release the lock; safe to call twice."""
        if self._lock_fd < 0:
            return
        self._conn.close()
        os.close(self._lock_fd)
        self._lock_fd = -1
