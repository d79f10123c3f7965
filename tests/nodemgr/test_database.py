"""The node manager's SQLite store: creation, versioning, locking, transactions and the row mapping."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from seattle.nodemgr.database import (
    KEY_BYTES,
    SCHEMA_VERSION,
    Store,
    check_key,
    vessel_number,
)
from seattle.nodemgr.nodedir import NodeDir
from seattle.nodemgr.nodeerror import NodeError
from seattle.resources import DEFAULT_OFFCUT, Resources
from seattle.vessel.status import VesselStatus

NODE_KEY = bytes(range(32))
OWNER = b"O" * 32
USER_A = b"A" * 32
USER_B = b"B" * 32
SMALL = Resources({"cpu": 0.1, "memory": 10_000_000, "diskused": 1_000_000}, messport=frozenset({63100}))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.create(tmp_path / "node", NODE_KEY, DEFAULT_OFFCUT)
    yield store
    store.close()


def raw(path: Path) -> sqlite3.Connection:
    """A second, independent connection: what is really on disk, not what the store believes."""
    return sqlite3.connect(NodeDir(path).database_path, isolation_level=None)


def test_create_writes_the_node_row_schema_version_and_wal_mode(tmp_path: Path) -> None:
    node_dir = tmp_path / "fresh" / "node"
    store = Store.create(node_dir, NODE_KEY, DEFAULT_OFFCUT)
    try:
        node = store.reader().node()
        assert (node.node_key, node.offcut, node.next_vessel, node.change_counter) == (
            NODE_KEY, DEFAULT_OFFCUT, 1, 0)
        # synchronous is per connection, so only the store's own connection can show it: 2 is FULL.
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        store.close()
    conn = raw(node_dir)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert (node_dir.stat().st_mode & 0o777) == 0o700


def test_reopen_sees_what_was_committed(tmp_path: Path) -> None:
    store = Store.create(tmp_path, NODE_KEY, DEFAULT_OFFCUT)
    with store.transaction() as tx:
        name = tx.new_vessel(OWNER, [USER_A, USER_B], "info", False, SMALL)
    store.close()
    store = Store.open(tmp_path)
    try:
        vessel = store.reader().vessel(name)
        assert (vessel.name, vessel.owner, vessel.users, vessel.ownerinfo, vessel.advertise) == (
            "v1", OWNER, (USER_A, USER_B), "info", False)
        assert vessel.status is VesselStatus.FRESH
        assert vessel.resources == SMALL
        assert store.reader().node().next_vessel == 2
    finally:
        store.close()


def test_create_refuses_an_existing_node(store: Store, tmp_path: Path) -> None:
    store.close()
    with pytest.raises(NodeError) as info:
        Store.create(tmp_path / "node", NODE_KEY, DEFAULT_OFFCUT)
    assert info.value.code == "store_exists"
    assert "already holds a node" in info.value.message


def test_create_completes_a_creation_that_was_killed_before_its_commit(tmp_path: Path) -> None:
    sqlite3.connect(NodeDir(tmp_path).database_path).close()  # an empty database at version 0
    store = Store.create(tmp_path, NODE_KEY, DEFAULT_OFFCUT)
    assert store.reader().node().node_key == NODE_KEY
    store.close()


def test_create_checks_its_arguments(tmp_path: Path) -> None:
    with pytest.raises(NodeError) as info:
        Store.create(tmp_path, b"short", DEFAULT_OFFCUT)
    assert info.value.code == "bad_key"
    with pytest.raises(NodeError) as info:
        Store.create(tmp_path, NODE_KEY, "resource cpu 1")  # type: ignore[arg-type]
    assert info.value.code == "bad_resources"


def test_open_without_a_node(tmp_path: Path) -> None:
    with pytest.raises(NodeError) as info:
        Store.open(tmp_path)
    assert info.value.code == "no_store"
    assert NodeDir.DATABASE in info.value.message
    assert not NodeDir(tmp_path).database_path.exists()


def test_open_a_database_whose_creation_never_committed(tmp_path: Path) -> None:
    sqlite3.connect(NodeDir(tmp_path).database_path).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(NodeError) as info:
        Store.open(tmp_path)
    assert info.value.code == "no_store"
    assert "never completely created" in info.value.message


def test_open_refuses_a_newer_schema(store: Store, tmp_path: Path) -> None:
    store.close()
    conn = raw(tmp_path / "node")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(NodeError) as info:
        Store.open(tmp_path / "node")
    assert info.value.code == "store_version"
    assert f"schema version {SCHEMA_VERSION + 1}" in info.value.message


def test_open_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    NodeDir(tmp_path).database_path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(NodeError) as info:
        Store.open(tmp_path)
    assert info.value.code == "bad_store"
    # the lock is released again, so a repaired directory can be opened at once
    NodeDir(tmp_path).database_path.unlink()
    Store.create(tmp_path, NODE_KEY, DEFAULT_OFFCUT).close()


def test_only_one_store_may_be_open_per_directory(store: Store, tmp_path: Path) -> None:
    with pytest.raises(NodeError) as info:
        Store.open(tmp_path / "node")
    assert info.value.code == "store_locked"
    store.close()
    Store.open(tmp_path / "node").close()


def test_close_twice_is_harmless(store: Store) -> None:
    store.close()
    store.close()


def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.new_vessel(OWNER, [USER_A], "", True, SMALL)
        raise RuntimeError("the call failed half-way")
    assert store.reader().vessels() == []
    assert store.reader().node().next_vessel == 1
    assert store.reader().node().change_counter == 0


def test_every_change_gets_a_new_change_number(store: Store) -> None:
    with store.transaction() as tx:
        first = tx.new_vessel(OWNER, [], "", True, SMALL)
        second = tx.new_vessel(OWNER, [], "", True, SMALL)
    reader = store.reader()
    assert [reader.vessel(first).last_change, reader.vessel(second).last_change] == [1, 2]
    with store.transaction() as tx:
        tx.update_vessel(first, status=VesselStatus.STARTED)
    assert reader.vessel(first).last_change == 3
    with store.transaction() as tx:
        tx.set_users(second, [USER_B])
    assert reader.vessel(second).last_change == 4
    with store.transaction() as tx:
        tx.delete_vessel(first)
    assert reader.node().change_counter == 5
    with store.transaction() as tx:
        tx.set_reset_pending(second, True)
    assert reader.node().change_counter == 5, "the reset journal is not a visible change"


def test_update_changes_only_the_given_fields(store: Store) -> None:
    with store.transaction() as tx:
        name = tx.new_vessel(OWNER, [USER_A], "info", True, SMALL)
        tx.update_vessel(name, owner=USER_B, ownerinfo="", advertise=False, status=VesselStatus.STOPPED)
    vessel = store.reader().vessel(name)
    assert (vessel.owner, vessel.ownerinfo, vessel.advertise, vessel.status, vessel.users) == (
        USER_B, "", False, VesselStatus.STOPPED, (USER_A,))
    with store.transaction() as tx:
        tx.update_vessel(name, advertise=True)
    assert store.reader().vessel(name).ownerinfo == ""
    assert store.reader().vessel(name).owner == USER_B


def test_users_keep_their_order_and_go_with_their_vessel(store: Store, tmp_path: Path) -> None:
    with store.transaction() as tx:
        name = tx.new_vessel(OWNER, [USER_B, USER_A], "", True, SMALL)
    assert store.reader().vessel(name).users == (USER_B, USER_A)
    with store.transaction() as tx:
        tx.set_users(name, [USER_A])
    assert store.reader().vessel(name).users == (USER_A,)
    with store.transaction() as tx:
        tx.delete_vessel(name)
    conn = raw(tmp_path / "node")
    assert conn.execute("SELECT count(*) FROM vessel_user").fetchone()[0] == 0
    conn.close()
    assert store.integrity_problems() == []


def test_vessel_numbers_are_never_reused(store: Store) -> None:
    with store.transaction() as tx:
        names = [tx.new_vessel(OWNER, [], "", True, SMALL) for _ in range(3)]
        for name in names:
            tx.delete_vessel(name)
        later = tx.new_vessel(OWNER, [], "", True, SMALL)
    assert names == ["v1", "v2", "v3"]
    assert later == "v4"


def test_pending_resets_are_listed(store: Store) -> None:
    with store.transaction() as tx:
        names = [tx.new_vessel(OWNER, [], "", True, SMALL) for _ in range(3)]
        tx.set_reset_pending(names[2], True)
        tx.set_reset_pending(names[0], True)
    assert store.reader().pending_resets() == ["v1", "v3"]


def test_the_schema_refuses_malformed_rows(store: Store) -> None:
    """Defence in depth: even a bug above the store cannot write a short key or a bad status."""
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as tx:
        tx.new_vessel(b"short", [], "", True, SMALL)
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as tx:
        tx.new_vessel(OWNER, [USER_A, USER_A], "", True, SMALL)
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as tx:
        tx.new_vessel(OWNER, [], "x" * 257, True, SMALL)
    assert store.reader().vessels() == []


def test_unknown_vessels(store: Store) -> None:
    for name in ("v1", "v0", "v01", "x1", "", "v1 ", None, 1, "v" + "9" * 30):
        with pytest.raises(NodeError) as info:
            store.reader().vessel(name)  # type: ignore[arg-type]
        assert info.value.code == "no_such_vessel"
        assert info.value.message.startswith("No such vessel")


def test_stored_resources_that_do_not_parse_are_reported(store: Store, tmp_path: Path) -> None:
    with store.transaction() as tx:
        name = tx.new_vessel(OWNER, [], "", True, SMALL)
    conn = raw(tmp_path / "node")
    conn.execute("UPDATE vessel SET resources = 'resource cpu lots'")
    conn.close()
    with pytest.raises(NodeError) as info:
        store.reader().vessel(name)
    assert info.value.code == "bad_store"
    assert "resources of v1" in info.value.message


def test_vessel_number_and_check_key() -> None:
    assert vessel_number("v1") == 1
    assert vessel_number("v12345") == 12345
    assert check_key(OWNER, "owner key") is OWNER
    for bad in (b"", b"x" * 31, b"x" * 33, "O" * 32, bytearray(32), None):
        with pytest.raises(NodeError) as info:
            check_key(bad, "owner key")
        assert info.value.code == "bad_key"
        assert "owner key" in info.value.message
        assert str(KEY_BYTES) in info.value.message
