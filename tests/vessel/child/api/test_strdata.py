"""The original dialect's API boundary, in-process: str in and out where the original's Python 2 had str."""

from __future__ import annotations

from typing import Any

import pytest

from seattle.vessel import errors
from seattle.vessel.child.api import strdata
from seattle.vessel.child.runtime import Runtime
from seattle.vessel.spec import PYTHON3, REPY_V2
from tests.api_harness import Harness

#: Every byte value, as the str a Python 2 program holds it in.
ALL_BYTES = "".join(chr(i) for i in range(256))


def globals_for(harness: Harness, platform: str) -> dict[str, Any]:
    return Runtime(harness.ctx, platform=platform).namespace("initialize", [])


def test_file_data_round_trips_every_byte_as_str(harness: Harness) -> None:
    api = globals_for(harness, REPY_V2)
    handle = api["openfile"]("data.bin", True)
    handle.writeat(ALL_BYTES, 0)
    data = handle.readat(None, 0)
    handle.close()
    assert type(data) is str and data == ALL_BYTES
    assert (harness.ctx.vessel_dir / "data.bin").read_bytes() == bytes(range(256))


def test_python3_programs_keep_bytes(harness: Harness) -> None:
    api = globals_for(harness, PYTHON3)
    handle = api["openfile"]("data.bin", True)
    handle.writeat("é", 0)  # a str is UTF-8 for Python 3 programs
    assert handle.readat(None, 0) == "é".encode()


def test_wide_text_is_passed_on_as_utf8(harness: Harness) -> None:
    api = globals_for(harness, REPY_V2)
    handle = api["openfile"]("wide.txt", True)
    handle.writeat("\u20ac", 0)
    assert (harness.ctx.vessel_dir / "wide.txt").read_bytes() == "\u20ac".encode()


def test_keyword_data_arguments_are_converted_too(harness: Harness) -> None:
    api = globals_for(harness, REPY_V2)
    handle = api["openfile"]("kw.bin", True)
    handle.writeat(data="\xff", offset=0)
    assert (harness.ctx.vessel_dir / "kw.bin").read_bytes() == b"\xff"


def test_randombytes_is_a_str(harness: Harness) -> None:
    data = globals_for(harness, REPY_V2)["randombytes"]()
    assert type(data) is str and len(data) == 1024


def test_argument_errors_still_come_from_the_call(harness: Harness) -> None:
    api = globals_for(harness, REPY_V2)
    with pytest.raises(errors.RepyArgumentError):
        api["openfile"](3, True)
    handle = api["openfile"]("x.bin", True)
    with pytest.raises(errors.RepyArgumentError):
        handle.writeat(3, 0)


@pytest.mark.parametrize(("value", "expected"), [("\xff", b"\xff"), ("\u20ac", "\u20ac"), (b"x", b"x"), (3, 3)])
def test_to_bytes(value: object, expected: object) -> None:
    assert strdata.to_bytes(value) == expected
