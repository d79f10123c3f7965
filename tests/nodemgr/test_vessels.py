"""The node's vessels: every operation and every error of NodeState, files included, on a real store."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from seattle.nodemgr import vesselfiles
from seattle.nodemgr.database import Store
from seattle.nodemgr.nodeerror import NodeError
from seattle.nodemgr.vessels import RECOVERY_NOTE, NodeState
from seattle.resources import (
    DEFAULT_OFFCUT,
    PORT_SETS,
    QUANTITY_NAMES,
    RENEWABLE,
    RENEWABLE_RESOLUTION,
    Resources,
    split_resources,
)
from seattle.vessel.host.logbuffer import LOG_CAPACITY, CircularLog
from seattle.vessel.status import VesselStatus

NODE_KEY = b"N" * 32
OWNER = b"O" * 32
OTHER = b"X" * 32
USER_A = b"A" * 32
USER_B = b"B" * 32
MIB = 1024 * 1024


def allotment(first_port: int, *, calls: tuple[str, ...] = ()) -> Resources:
    """A roomy vessel with ten ports of each kind, as the installer hands out per 10% slice."""
    ports = frozenset(range(first_port, first_port + 10))
    return Resources(
        {"cpu": 0.3, "memory": 200 * MIB, "diskused": 50 * MIB, "events": 60, "filesopened": 30,
         "insockets": 10, "outsockets": 10, "netsend": 100_000.0, "netrecv": 100_000.0,
         "loopsend": 1_000_000.0, "looprecv": 1_000_000.0, "filewrite": 100_000.0, "fileread": 100_000.0,
         "lograte": 30_000.0, "random": 1000.0},
        messport=ports, connport=ports, calls=calls,
    )


LAYOUT = [
    (allotment(63100, calls=("call open allow",)), OWNER, [USER_A, USER_B]),
    (allotment(63110), OTHER, []),
    (allotment(63120), OWNER, [USER_B]),
]
PIECE = ("resource cpu 0.1\nresource memory 10000000\nresource diskused 1000000\nresource events 5\n"
         "resource messport 63101\nresource connport 63102\nresource connport 63103\n")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[NodeState]:
    node = NodeState.create(tmp_path / "node", NODE_KEY)
    node.create_initial_vessels(LAYOUT)
    yield node
    node.close()


class _Raises:
    """`with _Raises("code"):` — a NodeError with that code must be raised; its message is kept."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.message = ""

    def __enter__(self) -> _Raises:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, _tb: object) -> bool:
        assert isinstance(value, NodeError), f"expected NodeError({self.code!r}), got {value!r}"
        assert value.code == self.code, f"expected code {self.code!r}, got {value.code!r}: {value.message}"
        self.message = value.message
        return True


def names(node: NodeState) -> list[str]:
    return [vessel.name for vessel in node.get_vessels()]


# -- layout and reading ---------------------------------------------------------------------------------


def test_initial_vessels(state: NodeState) -> None:
    vessels = state.get_vessels()
    assert [v.name for v in vessels] == ["v1", "v2", "v3"]
    assert [(v.owner, v.users) for v in vessels] == [
        (OWNER, (USER_A, USER_B)), (OTHER, ()), (OWNER, (USER_B,))]
    assert all(v.status is VesselStatus.FRESH and v.advertise and v.ownerinfo == "" for v in vessels)
    assert [v.resources for v in vessels] == [entry[0] for entry in LAYOUT]
    assert state.vessel_resources("v1").calls == ("call open allow",)
    assert state.offcut() == DEFAULT_OFFCUT
    assert state.node_key == NODE_KEY
    assert all(state.vessel_dir(v.name).is_dir() for v in vessels)
    assert state.vessel_dir("v2") == state.node_dir / "vessels" / "v2"
    assert state.log_path("v2") == state.node_dir / "logs" / "v2.log"


def test_total_is_the_sum_plus_one_offcut_per_extra_vessel(state: NodeState) -> None:
    expected = LAYOUT[0][0] + LAYOUT[1][0] + LAYOUT[2][0] + DEFAULT_OFFCUT + DEFAULT_OFFCUT
    assert state.total() == expected.replace(calls=())


def test_total_needs_a_vessel(tmp_path: Path) -> None:
    with NodeState.create(tmp_path, NODE_KEY) as node, _Raises("no_vessels"):
        node.total()


def test_the_layout_is_made_once(state: NodeState) -> None:
    with _Raises("already_initialized"):
        state.create_initial_vessels(LAYOUT)


def test_the_layout_is_made_once_even_after_every_vessel_was_joined_away(tmp_path: Path) -> None:
    with NodeState.create(tmp_path, NODE_KEY) as node:
        node.create_initial_vessels([(allotment(63100), OWNER, [])])
        left, right = node.split("v1", PIECE)
        node.join(left, right)
        with _Raises("already_initialized"):
            node.create_initial_vessels([(allotment(63200), OWNER, [])])


@pytest.mark.parametrize(("layout", "code", "words"), [
    ([], "bad_layout", "non-empty"),
    ("v1", "bad_layout", "non-empty"),
    ([(allotment(63100), OWNER)], "bad_layout", "entry 1"),
    ([(allotment(63100), OWNER, []), "junk"], "bad_layout", "entry 2"),
    ([(PIECE, OWNER, [])], "bad_layout", "Resources"),
    ([(allotment(63100), OWNER, []), (allotment(63105), OTHER, [])], "bad_layout", "port 63105"),
    ([(allotment(63100), b"short", [])], "bad_key", "owner key of layout entry 1"),
    ([(allotment(63100), OWNER, USER_A)], "bad_key", "must be a list"),
    ([(allotment(63100), OWNER, [USER_A, b"?"])], "bad_key", "user key 2"),
    ([(allotment(63100), OWNER, [USER_A, USER_A])], "bad_key", "listed twice"),
])
def test_bad_layouts(tmp_path: Path, layout: object, code: str, words: str) -> None:
    with NodeState.create(tmp_path, NODE_KEY) as node:
        with _Raises(code) as raised:
            node.create_initial_vessels(layout)  # type: ignore[arg-type]
        assert words in raised.message
        assert node.get_vessels() == []
        node.create_initial_vessels(LAYOUT)  # nothing was half-made


@pytest.mark.parametrize("name", ["v9", "v0", "bogus", "", None, 3])
def test_unknown_vessels_everywhere(state: NodeState, name: object) -> None:
    calls = [
        lambda: state.get_vessel(name), lambda: state.vessel_resources(name),
        lambda: state.change_owner(name, OTHER), lambda: state.change_users(name, []),
        lambda: state.change_ownerinfo(name, "x"), lambda: state.change_advertise(name, False),
        lambda: state.split(name, PIECE), lambda: state.join(name, "v1"), lambda: state.join("v1", name),
        lambda: state.set_status(name, "Started"), lambda: state.reset(name),
        lambda: state.add_file(name, "a.py", b""), lambda: state.retrieve_file(name, "a.py"),
        lambda: state.list_files(name), lambda: state.delete_file(name, "a.py"), lambda: state.read_log(name),
    ]
    for call in calls:
        with _Raises("no_such_vessel") as raised:
            call()
        assert raised.message.startswith("No such vessel")


# -- owner calls ------------------------------------------------------------------------------------------


def test_change_owner_resets_ownerinfo_and_turns_advertising_on(state: NodeState) -> None:
    state.change_ownerinfo("v1", "lab 3")
    state.change_advertise("v1", False)
    state.change_owner("v1", OTHER)
    vessel = state.get_vessel("v1")
    assert (vessel.owner, vessel.ownerinfo, vessel.advertise, vessel.users) == (
        OTHER, "", True, (USER_A, USER_B))
    with _Raises("bad_key"):
        state.change_owner("v1", "O" * 32)  # type: ignore[arg-type]
    with _Raises("bad_key"):
        state.change_owner("v1", b"O" * 31)
    assert state.get_vessel("v1").owner == OTHER


def test_change_users(state: NodeState) -> None:
    state.change_users("v2", [USER_B, USER_A])
    assert state.get_vessel("v2").users == (USER_B, USER_A)
    state.change_users("v2", [])
    assert state.get_vessel("v2").users == ()
    for bad, words in (([USER_A, USER_A], "listed twice"), ([USER_A, "A" * 32], "user key 2"),
                       (USER_A, "must be a list"), (None, "must be a list")):
        with _Raises("bad_key") as raised:
            state.change_users("v1", bad)  # type: ignore[arg-type]
        assert raised.message.startswith("Invalid Key") and words in raised.message
    assert state.get_vessel("v1").users == (USER_A, USER_B)


def test_change_ownerinfo(state: NodeState) -> None:
    state.change_ownerinfo("v1", "x" * 256)
    assert state.get_vessel("v1").ownerinfo == "x" * 256
    state.change_ownerinfo("v1", "Ünïcode ✓ and 'quotes' \\ \t")
    assert state.get_vessel("v1").ownerinfo == "Ünïcode ✓ and 'quotes' \\ \t"
    with _Raises("string_too_long") as raised:
        state.change_ownerinfo("v1", "x" * 257)
    assert raised.message.startswith("String Too Long")
    with _Raises("newline_in_string") as raised:
        state.change_ownerinfo("v1", "two\nlines")
    assert raised.message == "String may not contain newline character"
    with _Raises("bad_ownerinfo"):
        state.change_ownerinfo("v1", b"bytes")  # type: ignore[arg-type]
    assert state.get_vessel("v1").ownerinfo == "Ünïcode ✓ and 'quotes' \\ \t"


def test_change_advertise(state: NodeState) -> None:
    state.change_advertise("v1", False)
    assert state.get_vessel("v1").advertise is False
    state.change_advertise("v1", True)
    assert state.get_vessel("v1").advertise is True
    for bad in ("True", 1, None):
        with _Raises("bad_advertise") as raised:
            state.change_advertise("v1", bad)  # type: ignore[arg-type]
        assert raised.message.startswith("Invalid advertisement setting")


def test_every_change_advances_the_counter(state: NodeState) -> None:
    before = state.change_counter()
    state.change_ownerinfo("v2", "x")
    assert state.change_counter() == before + 1
    assert state.get_vessel("v2").last_change == before + 1
    state.set_status("v3", VesselStatus.STOPPED)
    assert state.get_vessel("v3").last_change == before + 2
    assert state.get_vessel("v2").last_change == before + 1


# -- split and join ---------------------------------------------------------------------------------------


def test_split(state: NodeState) -> None:
    total = state.total()
    state.change_ownerinfo("v1", "lab 3")
    state.change_advertise("v1", False)
    state.add_file("v1", "program.py", b"log('hi')\n")
    CircularLog(state.log_path("v1")).write(b"old output\n")
    parent = state.get_vessel("v1")
    left, piece = state.split("v1", PIECE)
    assert (left, piece) == ("v4", "v5")
    assert names(state) == ["v2", "v3", "v4", "v5"]
    requested = Resources({"cpu": 0.1, "memory": 10_000_000, "diskused": 1_000_000, "events": 5},
                          messport=frozenset({63101}), connport=frozenset({63102, 63103}))
    assert state.vessel_resources(piece) == requested.replace(calls=parent.resources.calls)
    assert state.vessel_resources(left) == parent.resources - DEFAULT_OFFCUT - requested
    assert 63101 not in state.vessel_resources(left).messport
    for child in (left, piece):
        vessel = state.get_vessel(child)
        assert (vessel.owner, vessel.users, vessel.ownerinfo, vessel.advertise, vessel.status) == (
            OWNER, (USER_A, USER_B), "lab 3", False, VesselStatus.FRESH)
        assert vessel.resources.calls == ("call open allow",)
        assert state.list_files(child) == []
        assert state.read_log(child) == b""
    assert not state.vessel_dir("v1").exists()
    assert list((state.node_dir / "logs").glob("v1.*")) == []
    assert state.total() == total


def test_split_accepts_a_resources_value(state: NodeState) -> None:
    requested = Resources({"cpu": 0.05, "memory": 1000, "diskused": 1000})
    _, piece = state.split("v2", requested)
    assert state.vessel_resources(piece) == requested


def test_split_refuses_a_running_vessel(state: NodeState) -> None:
    for status in (VesselStatus.STARTED, VesselStatus.STALE):
        state.set_status("v1", status)
        with _Raises("vessel_running") as raised:
            state.split("v1", PIECE)
        assert raised.message == "Attempting to split a running vessel"
    small = "resource cpu 0.01\nresource memory 1000\nresource diskused 1000\n"
    stopped = (VesselStatus.STOPPED, VesselStatus.TERMINATED, VesselStatus.THREAD_ERR, VesselStatus.FRESH)
    for name, status in zip(["v1", "v2", "v3", "v4"], stopped):
        state.set_status(name, status)
        state.split(name, small)
    assert names(state) == ["v5", "v6", "v7", "v8", "v9", "v10", "v11"]


def test_split_errors(state: NodeState) -> None:
    before = (state.get_vessels(), state.total(), state.change_counter())
    with _Raises("too_large") as raised:
        state.split("v1", "resource cpu 0.299\nresource memory 1\nresource diskused 1\n")
    assert raised.message.startswith("Proposed vessel is too large.") and "cpu" in raised.message
    with _Raises("too_large") as raised:
        state.split("v1", "resource cpu 0.1\nresource memory 1\nresource diskused 1\n"
                          "resource messport 63110\n")
    assert "messport: port 63110 not held" in raised.message
    with _Raises("bad_resources") as raised:
        state.split("v1", "resource cpu 0.1\nresource memory 1\n")
    assert "diskused" in raised.message
    with _Raises("bad_resources") as raised:
        state.split("v1", "resource cpu lots\nresource memory 1\nresource diskused 1\n")
    assert "split request:1" in raised.message
    with _Raises("bad_resources"):
        state.split("v1", {"cpu": 0.1})  # type: ignore[arg-type]
    assert (state.get_vessels(), state.total(), state.change_counter()) == before


def test_split_a_vessel_too_small_to_pay_the_offcut(tmp_path: Path) -> None:
    tiny = Resources({"cpu": 0.001, "memory": 1000, "diskused": 1000})
    with NodeState.create(tmp_path, NODE_KEY) as node:
        node.create_initial_vessels([(tiny, OWNER, [])])
        with _Raises("too_small_to_split") as raised:
            node.split("v1", "resource cpu 0\nresource memory 0\nresource diskused 0\n")
        assert raised.message.startswith("Existing resources are so small they cannot be split.")
        assert names(node) == ["v1"]


def test_join(state: NodeState) -> None:
    total = state.total()
    state.change_ownerinfo("v1", "first")
    state.change_advertise("v1", False)
    state.change_ownerinfo("v3", "second")
    state.add_file("v3", "data.txt", b"x")
    joined = state.join("v1", "v3")
    assert joined == "v4"
    vessel = state.get_vessel(joined)
    assert (vessel.owner, vessel.users, vessel.ownerinfo, vessel.advertise, vessel.status) == (
        OWNER, (USER_A, USER_B), "first", False, VesselStatus.FRESH)
    assert vessel.resources == LAYOUT[0][0] + LAYOUT[2][0] + DEFAULT_OFFCUT
    assert vessel.resources.connport == frozenset(range(63100, 63110)) | frozenset(range(63120, 63130))
    assert vessel.resources.calls == ("call open allow",)
    assert names(state) == ["v2", "v4"]
    assert state.list_files(joined) == []
    assert not state.vessel_dir("v1").exists() and not state.vessel_dir("v3").exists()
    assert state.total() == total


def test_join_errors(state: NodeState) -> None:
    before = (state.get_vessels(), state.change_counter())
    with _Raises("not_same_owner") as raised:
        state.join("v1", "v2")
    assert raised.message == "Vessels must have the same owner"
    with _Raises("same_vessel"):
        state.join("v1", "v1")
    state.set_status("v3", VesselStatus.STARTED)
    before = (state.get_vessels(), state.change_counter())
    for pair in (("v1", "v3"), ("v3", "v1")):
        with _Raises("vessel_running") as raised:
            state.join(*pair)
        assert raised.message == "Attempting to join a running vessel"
    assert (state.get_vessels(), state.change_counter()) == before


def test_join_beyond_the_largest_value(tmp_path: Path) -> None:
    huge = Resources({"cpu": 0.5, "memory": 2**62, "diskused": 1})
    with NodeState.create(tmp_path, NODE_KEY) as node:
        node.create_initial_vessels([(huge, OWNER, []), (huge, OWNER, [])])
        with _Raises("too_large") as raised:
            node.join("v1", "v2")
        assert "memory" in raised.message
        assert names(node) == ["v1", "v2"]


def test_names_are_never_reused_even_across_reopen(tmp_path: Path) -> None:
    with NodeState.create(tmp_path, NODE_KEY) as node:
        node.create_initial_vessels([(allotment(63100), OWNER, [])])
        first = node.split("v1", PIECE)
        joined = node.join(*first)
    with NodeState.open(tmp_path) as node:
        again = node.split(joined, PIECE)
    assert [*first, joined, *again] == ["v2", "v3", "v4", "v5", "v6"]


# -- status, reset, recovery ------------------------------------------------------------------------------


def test_set_status(state: NodeState) -> None:
    for status in VesselStatus:
        state.set_status("v2", status)
        assert state.get_vessel("v2").status is status
    state.set_status("v2", "Stopped")
    assert state.get_vessel("v2").status is VesselStatus.STOPPED
    with _Raises("bad_status") as raised:
        state.set_status("v2", "Running")
    assert "'Running'" in raised.message and "ThreadErr" in raised.message


def test_reset(state: NodeState) -> None:
    state.add_file("v1", "program.py", b"x" * 100)
    state.add_file("v1", "data.bin", b"y" * 100)
    (state.vessel_dir("v1") / "private_keep").write_bytes(b"the program's own")
    (state.vessel_dir("v1") / "stray-dir").mkdir()  # no program can make one, but a reset still clears it
    (state.vessel_dir("v1") / "stray-dir" / "inside").write_bytes(b"")
    os.symlink("/etc/passwd", state.vessel_dir("v1") / "private_link")
    CircularLog(state.log_path("v1")).write(b"output" * 5000)
    state.change_advertise("v1", False)
    state.set_status("v1", VesselStatus.TERMINATED)
    state.reset("v1")
    vessel = state.get_vessel("v1")
    assert vessel.status is VesselStatus.FRESH
    assert vessel.advertise is False
    assert os.listdir(state.vessel_dir("v1")) == ["private_keep"]
    assert state.read_log("v1") == b""
    assert list((state.node_dir / "logs").glob("v1.*")) == []


def test_reset_refuses_a_running_vessel(state: NodeState) -> None:
    state.add_file("v1", "program.py", b"x")
    state.set_status("v1", VesselStatus.STARTED)
    with _Raises("vessel_running"):
        state.reset("v1")
    assert state.list_files("v1") == ["program.py"]
    assert state.get_vessel("v1").status is VesselStatus.STARTED


def test_read_log_gives_the_last_16_kib(state: NodeState) -> None:
    log = CircularLog(state.log_path("v2"))
    log.write(b"a" * LOG_CAPACITY)
    log.write(b"the end")
    text = state.read_log("v2")
    assert len(text) == LOG_CAPACITY and text.endswith(b"the end")


def test_recover_terminates_vessels_recorded_as_running(tmp_path: Path) -> None:
    with NodeState.create(tmp_path, NODE_KEY) as node:
        node.create_initial_vessels(LAYOUT)
        node.set_status("v1", VesselStatus.STARTED)
        node.set_status("v2", VesselStatus.STALE)
        node.set_status("v3", VesselStatus.STOPPED)
        CircularLog(node.log_path("v1")).write(b"program output\n")
    with NodeState.open(tmp_path) as node:
        assert node.get_vessel("v1").status is VesselStatus.STARTED, "open alone changes no status"
        assert node.recover() == ["v1", "v2"]
        statuses = [v.status for v in node.get_vessels()]
        assert statuses == [VesselStatus.TERMINATED, VesselStatus.TERMINATED, VesselStatus.STOPPED]
        assert node.read_log("v1") == b"program output\n" + RECOVERY_NOTE
        assert node.read_log("v2") == RECOVERY_NOTE
        assert node.read_log("v3") == b""
        assert node.recover() == []


# -- files ------------------------------------------------------------------------------------------------


def test_add_list_retrieve_delete(state: NodeState) -> None:
    state.add_file("v1", "program.py", b"print('hi')\n")
    state.add_file("v1", "a-data_1.txt", b"")
    state.add_file("v1", "program.py", bytearray(b"replaced"))
    assert state.list_files("v1") == ["a-data_1.txt", "program.py"]
    assert state.retrieve_file("v1", "program.py") == b"replaced"
    assert state.retrieve_file("v1", "a-data_1.txt") == b""
    assert state.list_files("v3") == []
    state.delete_file("v1", "program.py")
    assert state.list_files("v1") == ["a-data_1.txt"]
    with _Raises("file_not_found") as raised:
        state.delete_file("v1", "program.py")
    assert raised.message.startswith("File not found")
    with _Raises("file_not_found"):
        state.retrieve_file("v1", "program.py")


def test_a_large_file_round_trips(state: NodeState) -> None:
    data = os.urandom(3 * MIB + 17)
    state.add_file("v1", "big.bin", data)
    assert state.retrieve_file("v1", "big.bin") == data


def test_private_files_are_the_programs_own(state: NodeState) -> None:
    (state.vessel_dir("v1") / "private_state").write_bytes(b"secret")
    (state.vessel_dir("v1") / "visible").write_bytes(b"")
    assert state.list_files("v1") == ["visible"]
    message = "User is not allowed to use file names starting with 'private_'"
    for call in (lambda: state.add_file("v1", "private_state", b"overwritten"),
                 lambda: state.retrieve_file("v1", "private_state"),
                 lambda: state.delete_file("v1", "private_state")):
        with _Raises("private_filename") as raised:
            call()
        assert raised.message == message
    assert (state.vessel_dir("v1") / "private_state").read_bytes() == b"secret"


@pytest.mark.parametrize(("filename", "words"), [
    ("", "Filename is empty"),
    ("..", "must not start with '.'"),
    (".hidden", "must not start with '.'"),
    ("../v2/program.py", "may only hold"),
    ("/etc/passwd", "may only hold"),
    ("Program.py", "may only hold"),
    ("a b", "may only hold"),
    ("x" * 121, "the limit is 120"),
    (b"program.py", "must be a string"),
    (None, "must be a string"),
])
def test_bad_filenames(state: NodeState, filename: object, words: str) -> None:
    for call in (lambda: state.add_file("v1", filename, b"x"), lambda: state.retrieve_file("v1", filename),
                 lambda: state.delete_file("v1", filename)):
        with _Raises("bad_filename") as raised:
            call()  # type: ignore[arg-type]
        assert words in raised.message
    assert os.listdir(state.vessel_dir("v1")) == []
    assert os.listdir(state.vessel_dir("v2")) == []


def test_file_data_must_be_bytes(state: NodeState) -> None:
    with _Raises("bad_data") as raised:
        state.add_file("v1", "program.py", "text")  # type: ignore[arg-type]
    assert "str" in raised.message


def test_the_upload_disk_check(tmp_path: Path) -> None:
    limit = 3 * 4096 + 1000
    small = Resources({"cpu": 0.1, "memory": MIB, "diskused": limit})
    with NodeState.create(tmp_path, NODE_KEY) as node:
        node.create_initial_vessels([(small, OWNER, [])])
        node.add_file("v1", "one", b"x" * 1000)           # 1000 + 4096
        node.add_file("v1", "two", b"")                   # 4096: 9192 used, 4096 left
        with _Raises("disk_full") as raised:
            node.add_file("v1", "three", b"x")            # needs 4097
        assert raised.message.startswith("Not enough free disk space")
        assert str(limit) in raised.message
        with _Raises("disk_full"):
            node.add_file("v1", "one", b"x" * 1000)       # an overwritten file is not credited back
        node.delete_file("v1", "two")
        node.add_file("v1", "three", b"x" * 4096)         # 8192: exactly the limit
        assert node.list_files("v1") == ["one", "three"]
        assert vesselfiles.disk_usage(node.vessel_dir("v1")) == limit


def test_links_in_a_vessel_directory_are_not_followed(state: NodeState, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"host secret")
    os.symlink(outside, state.vessel_dir("v1") / "link")
    os.mkdir(state.vessel_dir("v1") / "subdir")
    assert state.list_files("v1") == []
    for name in ("link", "subdir"):
        with _Raises("file_not_found"):
            state.retrieve_file("v1", name)
    with _Raises("file_not_found"):
        state.delete_file("v1", "subdir")
    state.add_file("v1", "link", b"replaces the link")
    assert outside.read_bytes() == b"host secret"
    assert state.retrieve_file("v1", "link") == b"replaces the link"
    state.delete_file("v1", "link")
    assert outside.exists()


def test_a_failed_upload_leaves_no_temporary_file(state: NodeState) -> None:
    os.mkdir(state.vessel_dir("v1") / "taken")  # a directory where the upload wants its file
    with pytest.raises(IsADirectoryError):
        state.add_file("v1", "taken", b"data")
    assert sorted(os.listdir(state.vessel_dir("v1"))) == ["taken"]


# -- reopening after a crash ------------------------------------------------------------------------------


def test_open_cleans_up_after_an_interrupted_call(tmp_path: Path) -> None:
    with NodeState.create(tmp_path, NODE_KEY) as node:
        node.create_initial_vessels(LAYOUT)
        node.add_file("v1", "program.py", b"x")
        node.add_file("v2", "program.py", b"x")
        (node.vessel_dir("v2") / "private_keep").write_bytes(b"")
        CircularLog(node.log_path("v2")).write(b"log")
        vessel_dir = node.vessel_dir("v1")
        # a split whose parent directory was never removed, an upload cut short, a missing directory
        (tmp_path / "vessels" / "v9").mkdir()
        (tmp_path / "vessels" / "v9" / "program.py").write_bytes(b"")
        CircularLog(tmp_path / "logs" / "v9.log").write(b"log of a vessel that is gone")
        (vessel_dir / f"{vesselfiles.UPLOAD_PREFIX}1234").write_bytes(b"half an upl")
        vesselfiles.remove_dir(node.vessel_dir("v3"))
    # a reset that committed but was killed before it removed the files
    store = Store.open(tmp_path)
    with store.transaction() as tx:
        tx.update_vessel("v2", status=VesselStatus.FRESH)
        tx.set_reset_pending("v2", True)
    store.close()
    with NodeState.open(tmp_path) as node:
        assert sorted(os.listdir(tmp_path / "vessels")) == ["v1", "v2", "v3"]
        assert not any(p.name.startswith("v9") for p in (tmp_path / "logs").iterdir())
        assert os.listdir(node.vessel_dir("v1")) == ["program.py"]
        assert os.listdir(node.vessel_dir("v2")) == ["private_keep"]
        assert node.read_log("v2") == b""
        assert node.list_files("v3") == []
    store = Store.open(tmp_path)
    assert store.reader().pending_resets() == []
    store.close()


def test_a_node_is_opened_by_one_manager_at_a_time(state: NodeState) -> None:
    with _Raises("store_locked"):
        NodeState.open(state.node_dir)


def test_state_is_usable_from_several_threads(state: NodeState) -> None:
    """The daemon may call in from worker threads; the lock keeps each call whole."""
    import threading

    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for round_number in range(10):
                state.change_ownerinfo("v2", f"thread {index} round {round_number}")
                state.add_file("v3", f"file{index}", b"x" * round_number)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert state.list_files("v3") == ["file0", "file1", "file2", "file3"]


# -- conservation, as a property ------------------------------------------------------------------------


def _units(name: str, value: float | int) -> int:
    return round(value / float(RENEWABLE_RESOLUTION)) if name in RENEWABLE else int(value)


@st.composite
def split_requests(draw: st.DrawFn, parent: Resources) -> Resources:
    """Mostly requests that fit what the parent has after the offcut; now and then one that does not."""
    available = parent - DEFAULT_OFFCUT if DEFAULT_OFFCUT.fits_within(parent) else parent
    quantities: dict[str, float | int] = {}
    overdraw = draw(st.sampled_from([None, None, None, *QUANTITY_NAMES]))
    for name in QUANTITY_NAMES:
        most = _units(name, available.quantities[name])
        units = draw(st.integers(0, most)) + (draw(st.integers(1, 10**6)) if name == overdraw else 0)
        quantities[name] = units * float(RENEWABLE_RESOLUTION) if name in RENEWABLE else units
    ports = {}
    for kind in sorted(PORT_SETS):
        held = sorted(getattr(parent, kind))
        chosen = draw(st.sets(st.sampled_from(held))) if held else set()
        if draw(st.integers(0, 9)) == 0:
            chosen.add(draw(st.integers(1, 65535)))  # most likely not held
        ports[kind] = frozenset(chosen)
    return Resources(quantities, **ports)


def _check_invariants(node: NodeState, total: Resources, seen: set[int]) -> None:
    vessels = node.get_vessels()
    assert node.total() == total
    for kind in PORT_SETS:
        held = [port for vessel in vessels for port in getattr(vessel.resources, kind)]
        assert len(held) == len(set(held)), f"two vessels share a {kind} port"
    assert sorted(os.listdir(node.node_dir / "vessels")) == sorted(v.name for v in vessels)
    numbers = {int(vessel.name[1:]) for vessel in vessels}
    fresh = numbers - seen
    assert all(number > max(seen) for number in fresh), "a vessel name was reused"
    seen |= numbers


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_split_and_join_conserve_the_total(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        node_dir = Path(tmp)
        node = NodeState.create(node_dir, NODE_KEY)
        try:
            node.create_initial_vessels(LAYOUT)
            total = node.total()
            seen = {1, 2, 3}
            for _ in range(data.draw(st.integers(1, 15), label="steps")):
                vessels = node.get_vessels()
                action = data.draw(st.sampled_from(["split", "split", "join", "join", "status", "reopen"]))
                if action == "reopen":
                    node.close()
                    node = NodeState.open(node_dir)
                elif action == "status":
                    vessel = data.draw(st.sampled_from(vessels))
                    node.set_status(vessel.name, data.draw(st.sampled_from(list(VesselStatus))))
                elif action == "split" or len(vessels) < 2:
                    parent = data.draw(st.sampled_from(vessels))
                    requested = data.draw(split_requests(parent.resources))
                    _split_and_check(node, parent.name, requested)
                else:
                    first, second = data.draw(st.lists(st.sampled_from(vessels), min_size=2, max_size=2,
                                                       unique_by=lambda v: v.name))
                    _join_and_check(node, first.name, second.name)
                _check_invariants(node, total, seen)
        finally:
            node.close()


def _split_and_check(node: NodeState, name: str, requested: Resources) -> None:
    parent = node.get_vessel(name)
    try:
        expected = split_resources(parent.resources, requested, DEFAULT_OFFCUT)
    except ValueError:
        expected = None
    before = node.get_vessels()
    try:
        left, piece = node.split(name, requested)
    except NodeError as exc:
        event(f"split refused: {exc.code}")
        assert exc.code in {"vessel_running", "too_small_to_split", "too_large"}, exc.message
        assert (expected is None) or exc.code == "vessel_running"
        assert node.get_vessels() == before
        return
    event("split done")
    assert expected is not None and parent.status not in {VesselStatus.STARTED, VesselStatus.STALE}
    assert (node.vessel_resources(left), node.vessel_resources(piece)) == expected


def _join_and_check(node: NodeState, first: str, second: str) -> None:
    a, b = node.get_vessel(first), node.get_vessel(second)
    before = node.get_vessels()
    try:
        joined = node.join(first, second)
    except NodeError as exc:
        event(f"join refused: {exc.code}")
        assert exc.code in {"vessel_running", "not_same_owner"}, exc.message
        assert node.get_vessels() == before
        return
    event("join done")
    assert a.owner == b.owner
    assert node.vessel_resources(joined) == a.resources + b.resources + DEFAULT_OFFCUT
