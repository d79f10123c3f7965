"""dylink in-process: libraries loaded once through the file API, in each dialect, and errors that name them."""

from __future__ import annotations

from typing import Any

import pytest

from seattle.vessel import errors
from seattle.vessel.child.runtime import Runtime
from seattle.vessel.child.tracebacks import format_user_exception
from seattle.vessel.spec import PYTHON3, REPY_V1, REPY_V2
from tests.api_harness import Harness

#: The same library in each dialect.
LIBRARIES = {
    PYTHON3: "NAME = 'lib'\ncalls = []\n\ndef double(x):\n    calls.append(x)\n    return x * 2\n"
             "if callfunc == 'initialize':\n    print('not when imported')\n",
    REPY_V2: "NAME = 'lib'\ncalls = []\n\ndef double(x):\n    calls.append(x)\n    return x * 2\n"
             "if callfunc == 'initialize':\n    print 'not when imported'\n",
}


def run(harness: Harness, source: str, platform: str = PYTHON3, *, callargs: list[str] | None = None
        ) -> dict[str, Any]:
    runtime = Runtime(harness.ctx, platform=platform)
    namespace = runtime.namespace("initialize", callargs or [])
    exec(runtime.compile(source, "prog.r2py"), namespace)
    return namespace


def write(harness: Harness, name: str, text: str) -> None:
    (harness.ctx.vessel_dir / name).write_text(text)


@pytest.mark.parametrize("platform", [PYTHON3, REPY_V2, REPY_V1])
def test_a_library_is_imported_once_as_a_module(harness: Harness, platform: str) -> None:
    write(harness, "lib.r2py", LIBRARIES[PYTHON3 if platform == PYTHON3 else REPY_V2])
    namespace = run(harness, "lib = dy_import_module('lib.r2py')\nagain = dy_import_module('lib.r2py')\n"
                             "result = lib.double(21)\nlib.NAME = 'changed'\n", platform)
    assert namespace["result"] == 42
    assert namespace["again"] is namespace["lib"]
    assert namespace["lib"].calls == [21]
    assert "not when imported" not in harness.log()
    assert namespace["dy_import_module"]("lib.r2py").NAME == "changed"  # the same object, change intact


@pytest.mark.parametrize("platform", [PYTHON3, REPY_V2])
def test_symbols_are_copied_into_the_callers_globals_and_reset_on_reimport(harness: Harness, platform: str) -> None:
    write(harness, "lib.r2py", LIBRARIES[platform])
    namespace = run(harness, "dy_import_module_symbols('lib.r2py')\nfirst = double(2)\nNAME = 'mine'\n"
                             "dy_import_module_symbols('lib.r2py')\n", platform)
    assert namespace["first"] == 4 and namespace["NAME"] == "lib"
    assert "callfunc" in namespace and namespace["callfunc"] == "initialize"  # the program's own stays


def test_a_library_sees_callfunc_import_and_shares_mycontext(harness: Harness) -> None:
    write(harness, "lib.r2py", "seen = callfunc\nmycontext['lib'] = 'loaded'\n")
    namespace = run(harness, "lib = dy_import_module('lib.r2py')\n")
    assert namespace["lib"].seen == "import"
    assert namespace["mycontext"] == {"lib": "loaded"}


def test_a_library_that_replaces_an_api_call_exports_the_replacement(harness: Harness) -> None:
    write(harness, "layer.r2py", "real = getruntime\ndef getruntime():\n    return -1.0\n")
    namespace = run(harness, "dy_import_module_symbols('layer.r2py')\nnow = getruntime()\n")
    assert namespace["now"] == -1.0
    assert "real" in namespace


def test_libraries_import_libraries(harness: Harness) -> None:
    write(harness, "a.r2py", "b = dy_import_module('b.r2py')\ndef f():\n    return b.g() + 1\n")
    write(harness, "b.r2py", "def g():\n    return 41\n")
    assert run(harness, "x = dy_import_module('a.r2py').f()\n")["x"] == 42


def test_an_import_cycle_is_an_error_naming_the_library(harness: Harness) -> None:
    write(harness, "a.r2py", "dy_import_module('b.r2py')\n")
    write(harness, "b.r2py", "dy_import_module('a.r2py')\n")
    with pytest.raises(errors.RepyArgumentError, match=r"'a\.r2py' imports itself"):
        run(harness, "dy_import_module('a.r2py')\n")


def test_a_refused_library_names_itself_and_its_line(harness: Harness) -> None:
    write(harness, "bad.r2py", "x = 1\n\ny = x.__class__\n")
    with pytest.raises(errors.CodeUnsafeError, match=r"bad\.r2py, line 3, column 7: attribute '__class__'"):
        run(harness, "dy_import_module('bad.r2py')\n")


def test_an_original_syntax_error_in_a_library_names_its_line(harness: Harness) -> None:
    write(harness, "bad.r2py", "print 'fine'\nprint (\n")
    # Python's parser names the line where the bracket that is never closed opened.
    with pytest.raises(errors.CodeUnsafeError, match=r"bad\.r2py, line 2"):
        run(harness, "dy_import_module('bad.r2py')\n", REPY_V2)


def test_an_error_while_a_library_runs_shows_the_librarys_frame(harness: Harness) -> None:
    write(harness, "boom.r2py", "x = 1\ndef f():\n    return {}['missing']\nf()\n")
    with pytest.raises(KeyError) as info:
        run(harness, "dy_import_module('boom.r2py')\n")
    text = format_user_exception(info.value, "prog.r2py")
    assert 'File "boom.r2py", line 3, in f' in text and 'File "boom.r2py", line 4' in text
    assert 'File "prog.r2py", line 1' in text


def test_a_missing_library_is_a_file_not_found_error(harness: Harness) -> None:
    with pytest.raises(errors.FileNotFoundError):
        run(harness, "dy_import_module('nowhere.r2py')\n")


def test_a_library_is_read_through_the_file_api(harness: Harness) -> None:
    write(harness, "lib.r2py", LIBRARIES[PYTHON3])
    before = harness.ctx.accountant.usage()["fileread"]
    run(harness, "dy_import_module('lib.r2py')\ndy_import_module('lib.r2py')\n")
    charged = harness.ctx.accountant.usage()["fileread"] - before
    assert charged > 0
    after_first = harness.ctx.accountant.usage()["fileread"]
    run(harness, "x = 1\n")
    assert harness.ctx.accountant.usage()["fileread"] == after_first


@pytest.mark.parametrize("name", [3, "", "../lib.r2py"])
def test_a_bad_name_is_an_argument_error(harness: Harness, name: object) -> None:
    runtime = Runtime(harness.ctx)
    namespace = runtime.namespace("initialize", [])
    with pytest.raises(errors.RepyArgumentError):
        namespace["dy_import_module"](name)


def test_dispatch_runs_the_next_program_with_the_callers_names(harness: Harness) -> None:
    write(harness, "next.r2py", "result = [callfunc, callargs, helper()]\nmycontext['result'] = result\n")
    namespace = run(harness, "def helper():\n    return 'from the first'\ndy_dispatch_module()\n",
                    callargs=["next.r2py", "a", "b"])
    assert namespace["mycontext"]["result"] == ["initialize", ["a", "b"], "from the first"]


def test_dispatch_without_a_program_is_an_argument_error(harness: Harness) -> None:
    with pytest.raises(errors.RepyArgumentError, match="callargs"):
        run(harness, "dy_dispatch_module()\n")


def test_names_the_interpreter_sets_are_not_exported(harness: Harness) -> None:
    write(harness, "doc.r2py", '"""A library with a docstring."""\ncount: int = 1\n')
    namespace = run(harness, "lib = dy_import_module('doc.r2py')\ndy_import_module_symbols('doc.r2py')\n")
    assert namespace["lib"].count == 1
    assert sorted(vars(namespace["lib"])) == ["count"]
    assert "__doc__" not in namespace and "__annotations__" not in namespace
