"""The file API (seattle.vessel.child.api.files) on a real vessel directory, with real accounting."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from seattle.vessel import errors
from seattle.vessel.child.api import files
from tests.api_harness import Harness, vessel


@pytest.fixture
def api(harness: Harness) -> dict[str, Any]:
    return harness.api(files)


def test_create_write_read_round_trip(api: dict[str, Any], harness: Harness) -> None:
    f = api["openfile"]("notes.txt", True)
    assert f.writeat(b"hello ", 0) is None
    f.writeat("wörld", 6)  # str is written as UTF-8
    assert f.readat(None, 0) == "hello wörld".encode()
    assert f.readat(5, 0) == b"hello"
    assert f.readat(3, 6) == b"w\xc3\xb6"
    assert f.readat(100, 9) == b"rld"  # a size limit beyond the end reads what is there
    assert f.readat(0, 2) == b""
    f.close()
    assert (harness.ctx.vessel_dir / "notes.txt").read_bytes() == "hello wörld".encode()


def test_reading_at_the_end_gives_nothing_and_past_it_is_an_error(api: dict[str, Any]) -> None:
    f = api["openfile"]("data", True)
    f.writeat(b"12345", 0)
    assert f.readat(None, 5) == b""
    assert f.readat(10, 5) == b""
    with pytest.raises(errors.SeekPastEndOfFileError, match=r"offset 6 is past the end of .data. \(5"):
        f.readat(None, 6)
    with pytest.raises(errors.SeekPastEndOfFileError):
        f.writeat(b"x", 6)
    f.writeat(b"6", 5)  # exactly at the end appends
    assert f.readat(None, 0) == b"123456"
    f.writeat(b"AB", 1)  # inside the file overwrites
    assert f.readat(None, 0) == b"1AB456"


def test_file_argument_errors(api: dict[str, Any]) -> None:
    f = api["openfile"]("args", True)
    cases = [
        (lambda: f.readat(-1, 0), "file.readat: sizelimit must be at least 0"),
        (lambda: f.readat(None, -1), "file.readat: offset must be at least 0"),
        (lambda: f.readat("1", 0), "file.readat: sizelimit must be an int or None, not str"),
        (lambda: f.readat(None, 1.0), "file.readat: offset must be an int, not float"),
        (lambda: f.readat(None, True), "file.readat: offset must be an int, not bool"),
        (lambda: f.writeat(b"x", -1), "file.writeat: offset must be at least 0"),
        (lambda: f.writeat(5, 0), "file.writeat: data must be bytes or a str, not int"),
        (lambda: f.writeat("\udcff", 0), "file.writeat: data cannot be encoded as UTF-8"),
        (lambda: f.readat(None), "file.readat\\(\\) missing 1 required positional argument: 'offset'"),
    ]
    for call, message in cases:
        with pytest.raises(errors.RepyArgumentError, match=message):
            call()
    f.writeat(bytearray(b"ok"), 0)
    assert f.readat(None, 0) == b"ok"


def test_closed_files(api: dict[str, Any], harness: Harness) -> None:
    f = api["openfile"]("closing", True)
    f.close()
    with pytest.raises(errors.FileClosedError, match="'closing' is already closed"):
        f.close()
    with pytest.raises(errors.FileClosedError, match="'closing' is closed"):
        f.readat(None, 0)
    with pytest.raises(errors.FileClosedError):
        f.writeat(b"x", 0)
    assert harness.usage("filesopened") == 0


def test_openfile_without_create_needs_an_existing_file(api: dict[str, Any], harness: Harness) -> None:
    with pytest.raises(errors.FileNotFoundError, match="there is no file named 'absent'"):
        api["openfile"]("absent", False)
    assert not (harness.ctx.vessel_dir / "absent").exists()
    (harness.ctx.vessel_dir / "present").write_bytes(b"from the node manager")
    f = api["openfile"]("present", False)
    assert f.readat(None, 0) == b"from the node manager"
    f.close()
    again = api["openfile"]("present", True)  # create=True on an existing file opens it as it is
    assert again.readat(None, 0) == b"from the node manager"
    again.close()
    assert harness.usage("filesopened") == 0


def test_one_open_handle_per_file(api: dict[str, Any]) -> None:
    f = api["openfile"]("shared", True)
    with pytest.raises(errors.FileInUseError, match="'shared' is already open"):
        api["openfile"]("shared", True)
    with pytest.raises(errors.FileInUseError, match="'shared' is open"):
        api["removefile"]("shared")
    f.close()
    g = api["openfile"]("shared", False)
    g.close()


@pytest.mark.parametrize(("name", "reason"), [
    ("", "must not be empty"),
    (".", "must not start with '.'"),
    ("..", "must not start with '.'"),
    (".hidden", "must not start with '.'"),
    ("a/b", "has '/'"),
    ("../escape", "has '/'"),
    ("/etc/passwd", "has '/'"),
    ("Upper", "has 'U'"),
    ("with space", "has ' '"),
    ("nul\x00", "has '\\x00'"),
    ("é", "has 'é'"),
    ("x" * 121, "is 121 characters long; the limit is 120"),
])
def test_bad_filenames_are_refused_with_the_rule_they_break(
    api: dict[str, Any], harness: Harness, name: str, reason: str
) -> None:
    for call in (lambda: api["openfile"](name, True), lambda: api["removefile"](name)):
        with pytest.raises(errors.RepyArgumentError) as caught:
            call()
        assert reason in str(caught.value)
    assert sorted(os.listdir(harness.ctx.vessel_dir)) == []


def test_filename_and_create_types(api: dict[str, Any]) -> None:
    class Name(str):
        def __hash__(self) -> int:
            raise AssertionError("user code ran inside the API")

    with pytest.raises(errors.RepyArgumentError, match="openfile: filename must be a str, not bytes"):
        api["openfile"](b"name", True)
    with pytest.raises(errors.RepyArgumentError, match="openfile: filename must be a str, not Name"):
        api["openfile"](Name("name"), True)
    with pytest.raises(errors.RepyArgumentError, match="openfile: create must be True or False, not int"):
        api["openfile"]("name", 1)


def test_good_filenames(api: dict[str, Any]) -> None:
    for name in ("a", "private_state", "log-2024.07_01", "9", "-x", "x" * 120):
        api["openfile"](name, True).close()
    assert api["listfiles"]() == sorted(["a", "private_state", "log-2024.07_01", "9", "-x", "x" * 120])


def test_filesopened_is_an_item_limit(tmp_path: Path) -> None:
    with vessel(tmp_path, filesopened=2) as h:
        api = h.api(files)
        first = api["openfile"]("one", True)
        second = api["openfile"]("two", True)  # held: a dropped file object is closed
        assert h.usage("filesopened") == 2
        with pytest.raises(errors.FileInUseError):  # "in use" is checked before the item limit
            api["openfile"]("one", True)
        with pytest.raises(errors.ResourceExhaustedError, match="filesopened: all 2 allowed are in use"):
            api["openfile"]("three", True)
        assert not (tmp_path / "three").exists()
        first.close()
        third = api["openfile"]("three", True)
        assert h.usage("filesopened") == 2
        with pytest.raises(errors.ResourceExhaustedError):
            api["openfile"]("one", False)
        second.close()
        third.close()


def test_listfiles_shows_only_regular_files_with_valid_names(api: dict[str, Any], harness: Harness) -> None:
    directory = harness.ctx.vessel_dir
    (directory / "b").write_bytes(b"")
    (directory / "a").write_bytes(b"")
    (directory / "subdir").mkdir()
    (directory / "Invalid Name").write_bytes(b"")
    (directory / "link").symlink_to("/etc/hostname")
    assert api["listfiles"]() == ["a", "b"]
    assert harness.usage("fileread") == 4096


def test_removefile(api: dict[str, Any], harness: Harness) -> None:
    directory = harness.ctx.vessel_dir
    api["openfile"]("gone", True).close()
    assert api["removefile"]("gone") is None
    assert not (directory / "gone").exists()
    with pytest.raises(errors.FileNotFoundError, match="there is no file named 'gone'"):
        api["removefile"]("gone")
    (directory / "adir").mkdir()
    with pytest.raises(errors.FileNotFoundError, match="'adir' is not a regular file"):
        api["removefile"]("adir")
    assert (directory / "adir").is_dir()
    assert harness.usage("fileread") == 4096 and harness.usage("filewrite") == 4096


def test_planted_symlinks_are_refused_and_their_targets_untouched(
    api: dict[str, Any], harness: Harness, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"host secret")
    link = harness.ctx.vessel_dir / "planted"
    link.symlink_to(outside)
    for create in (False, True):
        with pytest.raises(errors.FileNotFoundError, match="'planted' is a symbolic link"):
            api["openfile"]("planted", create)
    with pytest.raises(errors.FileNotFoundError, match="not a regular file"):
        api["removefile"]("planted")
    assert outside.read_bytes() == b"host secret" and link.is_symlink()
    dangling = harness.ctx.vessel_dir / "dangling"
    dangling.symlink_to(tmp_path / "would-be-created")
    with pytest.raises(errors.FileNotFoundError):
        api["openfile"]("dangling", True)
    assert not (tmp_path / "would-be-created").exists()
    assert harness.usage("filesopened") == 0


def test_planted_hard_links_are_refused(api: dict[str, Any], harness: Harness, tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"host data")
    os.link(outside, harness.ctx.vessel_dir / "hardlink")
    with pytest.raises(errors.FileNotFoundError, match="'hardlink' is not a file with a single link"):
        api["openfile"]("hardlink", False)
    assert harness.usage("filesopened") == 0
    api["openfile"]("other", True).close()  # the refusal left nothing reserved or held


def test_open_charges_one_read_block_and_a_write_block_when_it_creates(
    api: dict[str, Any], harness: Harness
) -> None:
    f = api["openfile"]("new", True)
    assert harness.usage("fileread") == 4096 and harness.usage("filewrite") == 4096
    assert harness.usage("filesopened") == 1
    f.close()
    harness.clock.sleep(10)  # let both buckets drain
    f = api["openfile"]("new", True)  # exists now: no write block
    assert harness.usage("fileread") == 4096 and harness.usage("filewrite") == 0
    f.close()


def test_reads_and_writes_are_charged_per_4k_block_touched(api: dict[str, Any], harness: Harness) -> None:
    f = api["openfile"]("blocks", True)
    f.writeat(b"x" * (10 * 1024), 0)
    assert harness.usage("filewrite") == 3 * 4096  # bytes 0..10239 touch blocks 0, 1 and 2
    f.readat(None, 0)
    assert harness.usage("fileread") == 3 * 4096
    f.readat(2, 4095)  # two bytes straddling a block boundary
    assert harness.usage("fileread") == 2 * 4096
    f.writeat(b"", 10 * 1024)  # an empty write still costs a block
    assert harness.usage("filewrite") == 4096
    f.readat(0, 0)
    assert harness.usage("fileread") == 4096
    harness.clock.sleep(1)  # every bucket idle (past the accountant's SLACK): the level is this call's charge
    f.writeat(b"y" * 4096, 4096)  # exactly one aligned block
    assert harness.usage("filewrite") == 4096


def test_zero_fileread_allotment_refuses_file_calls(tmp_path: Path) -> None:
    with vessel(tmp_path, fileread=0) as h:
        api = h.api(files)
        with pytest.raises(errors.ResourceExhaustedError, match="fileread"):
            api["openfile"]("x", True)
        with pytest.raises(errors.ResourceExhaustedError, match="fileread"):
            api["listfiles"]()
        assert h.usage("filesopened") == 0
        assert not (tmp_path / "x").exists()


def test_close_racing_with_reads_and_writes_is_clean(api: dict[str, Any], harness: Harness) -> None:
    f = api["openfile"]("race", True)
    f.writeat(b"z" * 8192, 0)
    outcomes: list[str] = []
    start = threading.Barrier(5)

    def worker() -> None:
        start.wait()
        for _ in range(200):
            try:
                data = f.readat(4096, 0)
                assert data == b"z" * 4096
                f.writeat(b"z", 0)
            except errors.FileClosedError:
                outcomes.append("closed")
                return
        outcomes.append("done")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    start.wait()
    f.close()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 4 and harness.exits == []
    g = api["openfile"]("race", False)  # the name is free again, and the file intact
    assert g.readat(None, 0) == b"z" * 8192


def test_file_objects_expose_only_their_methods(api: dict[str, Any]) -> None:
    f = api["openfile"]("object", True)
    assert [name for name in dir(f) if not name.startswith("_")] == ["close", "readat", "writeat"]
    assert repr(f) == "<file>"
    with pytest.raises(errors.RepyArgumentError, match="read-only"):
        f.readat = None
    fake = type(f)()  # the class is reachable through type(), but makes only empty objects
    assert not hasattr(fake, "readat")


@pytest.mark.slow
def test_a_full_disk_is_resource_exhausted(tmp_path: Path) -> None:
    """In a real child process whose RLIMIT_FSIZE is 10 KiB (Python ignores SIGXFSZ, so write gets EFBIG)."""
    program = textwrap.dedent(f"""
        import os, resource
        from pathlib import Path
        from seattle.resources import DEFAULT_ALLOTMENT
        from seattle.vessel import errors
        from seattle.vessel.child.accounting import Accountant
        from seattle.vessel.child.api import files
        from seattle.vessel.child.context import VesselContext

        ctx = VesselContext(DEFAULT_ALLOTMENT, Accountant(DEFAULT_ALLOTMENT), Path({str(tmp_path)!r}),
                            broker=None, write_log=lambda data: None, exit=os._exit)
        api = files.exports(ctx)
        f = api["openfile"]("big", True)
        resource.setrlimit(resource.RLIMIT_FSIZE, (10 * 1024, resource.RLIM_INFINITY))
        try:
            f.writeat(b"x" * 20000, 0)
        except errors.ResourceExhaustedError as exc:
            print(type(exc).__name__, exc)
    """)
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == "ResourceExhaustedError diskused: no space left to write 'big'\n"


def test_exports_are_the_documented_names(api: dict[str, Any]) -> None:
    assert set(api) == {"openfile", "listfiles", "removefile"}


def test_blocks_arithmetic() -> None:
    assert files.blocks(0, 0) == 1
    assert files.blocks(0, 1) == 1
    assert files.blocks(0, 4096) == 1
    assert files.blocks(0, 4097) == 2
    assert files.blocks(4095, 2) == 2
    assert files.blocks(8192, 4096) == 1
