"""Virtual namespaces and SafeDict (seattle.vessel.child.api.vnamespace), with the real checker and builtins."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from seattle.vessel import errors
from seattle.vessel.child.api import core, vnamespace
from seattle.vessel.child.api.vnamespace import SafeDict
from tests.api_harness import Harness


@pytest.fixture
def api(harness: Harness) -> dict[str, Any]:
    return harness.api(vnamespace)


def namespace(api: dict[str, Any], source: str, name: str = "module.r2py") -> Any:
    return api["createvirtualnamespace"](textwrap.dedent(source), name)


# ---------------------------------------------------------------------------------------------------------
# SafeDict


def test_safedict_behaves_like_a_dict_for_safe_keys() -> None:
    d = SafeDict({"a": 1})
    d["b"] = 2
    assert d["a"] == 1 and d.get("b") == 2 and d.get("c", 3) == 3
    assert "a" in d and "c" not in d and len(d) == 2
    assert sorted(d) == ["a", "b"] and sorted(d.keys()) == ["a", "b"]
    assert sorted(d.values()) == [1, 2] and sorted(d.items()) == [("a", 1), ("b", 2)]
    assert d.setdefault("c", 9) == 9 and d.setdefault("c", 10) == 9
    assert d.pop("c") == 9 and d.pop("c", "gone") == "gone"
    del d["b"]
    d.update({"x": 1})
    d.update(SafeDict({"y": 2}))
    copied = d.copy()
    assert type(copied) is SafeDict and sorted(copied) == ["a", "x", "y"]
    copied["z"] = 0
    assert "z" not in d
    d.clear()
    assert len(d) == 0 and repr(d) == "SafeDict({})"
    for key in SafeDict({"p": 1, "q": 2}):  # iterating a snapshot: the loop may change the SafeDict
        assert type(key) is str


@pytest.mark.parametrize("key", ["_private", "__builtins__", "a__b", "__class__"])
def test_safedict_refuses_unsafe_keys(key: str) -> None:
    d = SafeDict()
    with pytest.raises(errors.ContextUnsafeError, match="is unsafe"):
        d[key] = 1
    with pytest.raises(errors.ContextUnsafeError, match="is unsafe"):
        d.setdefault(key, 1)
    with pytest.raises(errors.ContextUnsafeError, match="is unsafe"):
        d.update({key: 1})
    with pytest.raises(errors.ContextUnsafeError, match="is unsafe"):
        SafeDict({"fine": 1, key: 2})
    assert len(d) == 0


def test_safedict_refuses_non_str_keys_without_running_their_code() -> None:
    calls: list[str] = []

    class Key(str):
        def __hash__(self) -> int:
            calls.append("hash")
            return hash("a")

        def __eq__(self, other: object) -> bool:
            calls.append("eq")
            return True

    d = SafeDict({"a": 1})
    for key in (1, b"a", None, Key("a"), ("a",)):
        with pytest.raises(errors.ContextUnsafeError, match="context keys must be str, not"):
            d[key] = 2
        with pytest.raises(KeyError):
            d[key]
        with pytest.raises(KeyError):
            del d[key]
        assert key not in d
        assert d.get(key, "default") == "default"
        assert d.pop(key, "default") == "default"
    assert d["a"] == 1 and calls == []


def test_safedict_argument_types_and_no_subclassing() -> None:
    with pytest.raises(errors.RepyArgumentError, match="must be a dict or a SafeDict, not list"):
        SafeDict([("a", 1)])
    with pytest.raises(errors.RepyArgumentError, match="must be a dict or a SafeDict, not str"):
        SafeDict().update("ab")
    with pytest.raises(errors.RepyArgumentError, match="SafeDict cannot be subclassed"):
        type("Sneaky", (SafeDict,), {})
    with pytest.raises(KeyError):
        SafeDict().pop("missing")
    with pytest.raises(AttributeError):
        SafeDict().extra = 1  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------------------
# createvirtualnamespace and evaluate


def test_evaluate_runs_the_code_in_the_context_and_returns_a_safedict(api: dict[str, Any]) -> None:
    vn = namespace(api, """
        y = x * 2
        def double(v):
            return v * 2
        class Box:
            def __init__(self, v):
                self.v = v
        box = Box(len([1, 2, 3]))
    """)
    context = {"x": 21}
    result = vn.evaluate(context)
    assert type(result) is SafeDict
    assert result["y"] == 42 and result["box"].v == 3
    assert result["double"](5) == 10  # functions keep their builtins after evaluate returns
    assert "__builtins__" not in result and "_" not in "".join(result.keys())
    assert context == {"x": 21}  # a plain dict is copied, never changed
    again = vn.evaluate({"x": 1})
    assert again["y"] == 2 and result["y"] == 42


def test_evaluate_with_a_safedict_works_in_place(api: dict[str, Any]) -> None:
    counter = namespace(api, "count = count + 1\n")
    context = SafeDict({"count": 0})
    assert counter.evaluate(context) is context
    counter.evaluate(context)
    assert context["count"] == 2
    assert "__builtins__" not in context


def test_the_namespace_gets_safe_builtins_and_only_what_the_context_gives(
    api: dict[str, Any], harness: Harness
) -> None:
    vn = namespace(api, """
        log("logged ")
        print("printed")
        kind = type(1) is int
        try:
            type(int)
            got_metaclass = True
        except TypeError:
            got_metaclass = False
        try:
            createthread
            found_api = True
        except NameError:
            found_api = False
    """)
    result = vn.evaluate({"log": harness.api(core)["log"]})
    assert result["kind"] is True
    assert result["got_metaclass"] is False and result["found_api"] is False
    assert harness.log() == "logged printed\n"


def test_exceptions_of_the_code_are_the_programs_own(api: dict[str, Any], harness: Harness) -> None:
    vn = namespace(api, """
        def fail():
            raise ValueError("from the namespace")
        partial = 1
        fail()
    """)
    context = SafeDict()
    with pytest.raises(ValueError, match="from the namespace"):
        vn.evaluate(context)
    assert context["partial"] == 1 and "__builtins__" not in context
    assert harness.exits == []  # not an internal fault


def test_unsafe_code_is_refused(api: dict[str, Any]) -> None:
    for source in ("import os\n", "x = ().__class__\n", "def f(:\n", "eval('1')\nx = _hidden\n"):
        with pytest.raises(errors.CodeUnsafeError, match=r"^bad\.r2py, line"):
            api["createvirtualnamespace"](source, "bad.r2py")


def test_createvirtualnamespace_argument_errors(api: dict[str, Any]) -> None:
    create = api["createvirtualnamespace"]
    prefix = "^createvirtualnamespace: "
    with pytest.raises(errors.RepyArgumentError, match=prefix + "code must be a str, not bytes"):
        create(b"x = 1", "name")
    with pytest.raises(errors.RepyArgumentError, match=prefix + "name must be a str, not int"):
        create("x = 1", 5)


def test_evaluate_refuses_unsafe_or_odd_contexts(api: dict[str, Any]) -> None:
    vn = namespace(api, "y = 1\n")
    for context in ({"__builtins__": {"open": open}}, {"_secret": 1}, {1: 2}):
        with pytest.raises(errors.ContextUnsafeError):
            vn.evaluate(context)
    for context in ([], None, "x = 1", vn):
        with pytest.raises(errors.RepyArgumentError, match=r"^VirtualNamespace\.evaluate: context must be a"):
            vn.evaluate(context)


def test_a_namespace_cannot_reach_the_builtins_it_runs_with(api: dict[str, Any]) -> None:
    """Building the name at run time does not help: a SafeDict never stores it."""
    vn = namespace(api, """
        name = "_" + "_builtins" + "_" * 2
        try:
            me[name] = {}
            stored = True
        except ContextUnsafeError:
            stored = False
    """)
    context = SafeDict()
    context["me"] = context
    context["ContextUnsafeError"] = errors.ContextUnsafeError
    assert vn.evaluate(context)["stored"] is False


def test_namespace_objects_expose_only_evaluate(api: dict[str, Any]) -> None:
    vn = namespace(api, "x = 1\n")
    assert [name for name in dir(vn) if not name.startswith("_")] == ["evaluate"]
    assert repr(vn) == "<VirtualNamespace>"


def test_exports_are_the_documented_names(api: dict[str, Any]) -> None:
    assert set(api) == {"createvirtualnamespace", "SafeDict"}
    assert api["SafeDict"] is SafeDict
