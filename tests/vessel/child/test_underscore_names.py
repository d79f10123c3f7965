"""One leading underscore: allowed in every name, as in the original, because nothing a program reaches keeps
private state under such a name. Both halves are tested here: the checker's rule and that audit."""

from __future__ import annotations

from typing import Any

import pytest

from seattle.vessel import errors
from seattle.vessel.child.checker import check_and_compile
from seattle.vessel.child.runtime import Runtime
from seattle.vessel.spec import PYTHON3, REPY_V2
from tests.api_harness import Harness

ALLOWED = [
    "def _helper(_a, *_args, _k=1, **_kw):\n    return _a\n",
    "class _Hidden:\n    def __init__(self):\n        self._lock = 1\n",
    "g = lambda _x: _x\n",
    "f(a, _key=1)\n",
    "try:\n    pass\nexcept E as _err:\n    pass\n",
    "x = [_v for _v in range(3)]\n",
    "x = thing._path\n",
    "x = _context['_private']\n",
]


@pytest.mark.parametrize("source", ALLOWED)
def test_one_leading_underscore_is_allowed(source: str) -> None:
    check_and_compile(source)


@pytest.mark.parametrize("source", ["x = thing.__path", "x = _context._GlobalsView__names", "x = s._SafeDict__data"])
def test_two_underscores_stay_refused(source: str) -> None:
    with pytest.raises(errors.CodeUnsafeError, match="'__'"):
        check_and_compile(source)


def _reachable(harness: Harness, platform: str) -> list[Any]:
    """The program's globals and builtins, the objects the API hands out, and the classes of all of them."""
    (harness.ctx.vessel_dir / "lib.r2py").write_text("x = 1\n")
    runtime = Runtime(harness.ctx, platform=platform)
    namespace = runtime.namespace("initialize", [])
    timer = namespace["settimer"](1000.0, print, ())
    namespace["canceltimer"](timer)  # its thread would keep the test process alive at exit for 1000 s
    handed_out = [
        namespace["openfile"]("f.txt", True), namespace["createlock"](), namespace["getlock"](),
        namespace["SafeDict"](), namespace["createvirtualnamespace"]("x = 1\n", "ns"), namespace["_context"],
        namespace["dy_import_module"]("lib.r2py"), timer,
    ]
    objects = [*namespace.values(), *namespace["__builtins__"].values(), *handed_out]
    return objects + [type(obj) for obj in objects]


@pytest.mark.parametrize("platform", [PYTHON3, REPY_V2])
def test_nothing_a_program_reaches_has_a_one_underscore_attribute(harness: Harness, platform: str) -> None:
    found = sorted({f"{type(obj).__name__}.{name}" for obj in _reachable(harness, platform)
                    for name in dir(obj) if name.startswith("_") and "__" not in name})
    assert found == []


def test_context_reaches_the_globals_but_no_dunder_key(harness: Harness) -> None:
    runtime = Runtime(harness.ctx)
    namespace = runtime.namespace("initialize", [])
    source = (
        "_private = 1\n"
        "_context['made'] = _context['_private'] + 1\n"
        "dunder = '_' + '_' + 'builtins' + '_' + '_'\n"
        "found = [dunder in _context, _context.get(dunder), [k for k in _context.keys() if '_' + '_' in k]]\n"
        "try:\n    _context[dunder] = {}\nexcept ContextUnsafeError:\n    found.append('refused')\n"
    )
    exec(runtime.compile(source, "prog.r2py"), namespace)
    assert namespace["made"] == 2
    assert namespace["found"] == [False, None, [], "refused"]
    assert namespace["__builtins__"]["print"] is runtime.print


def test_safedict_data_is_out_of_reach() -> None:
    with pytest.raises(errors.CodeUnsafeError):
        check_and_compile("d = SafeDict()\nx = d._SafeDict__data\n")
