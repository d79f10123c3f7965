"""The resource file format, validation, and split/join arithmetic of seattle.resources."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seattle.resources import (
    DEFAULT_ALLOTMENT,
    DEFAULT_OFFCUT,
    FIXED_QUANTITIES,
    ITEMS,
    MAX_TEXT_BYTES,
    PORT_SETS,
    QUANTITY_NAMES,
    RENEWABLE,
    RESOURCE_NAMES,
    ResourceArithmeticError,
    ResourceParseError,
    Resources,
    join_resources,
    load_resources,
    parse_resources,
    split_resources,
)

MANDATORY_TEXT = "resource cpu 0.1\nresource memory 1000\nresource diskused 2000\n"


def small(**extra: float | int) -> Resources:
    return Resources({"cpu": 0.1, "memory": 1000, "diskused": 2000, **extra})


# --- names and classes --------------------------------------------------------------------------------------


def test_the_seventeen_names_fall_into_exactly_one_class_each() -> None:
    classes = [RENEWABLE, ITEMS, FIXED_QUANTITIES, PORT_SETS]
    assert len(RESOURCE_NAMES) == len(set(RESOURCE_NAMES)) == 17
    for name in RESOURCE_NAMES:
        assert sum(name in c for c in classes) == 1, name
    assert set().union(*classes) == set(RESOURCE_NAMES)
    rates = {"netsend", "netrecv", "loopsend", "looprecv", "filewrite", "fileread", "lograte", "random"}
    assert rates | {"cpu"} == RENEWABLE
    assert {"events", "filesopened", "insockets", "outsockets"} == ITEMS


# --- parsing ------------------------------------------------------------------------------------------------


def test_parse_a_full_file_with_comments_calls_and_repeated_ports() -> None:
    text = (
        "# a vessel\r\n"
        "resource cpu .25   # a quarter core\r\n"
        "\n"
        "   resource memory 30000000\n"
        "resource diskused 20000000\n"
        "resource netsend 10000\n"
        "resource events 15\n"
        "resource messport 12345\n"
        "resource messport 12346\n"
        "resource messport 12345\n"
        "resource connport 80\n"
        "call gethostbyname_ex allow   # V1 only\n"
        "call\tsendmess allow\n"
    )
    r = parse_resources(text, "vessel.res")
    assert r["cpu"] == 0.25 and isinstance(r["cpu"], float)
    assert r["memory"] == 30_000_000 and isinstance(r["memory"], int)
    assert r["netsend"] == 10000.0 and isinstance(r["netsend"], float)
    assert r["events"] == 15 and isinstance(r["events"], int)
    assert r["messport"] == frozenset({12345, 12346})
    assert r.connport == frozenset({80})
    assert r.calls == ("call gethostbyname_ex allow", "call\tsendmess allow")
    # Unnamed quantities default to 0, with the type of their class.
    assert r["netrecv"] == 0.0 and isinstance(r["netrecv"], float)
    assert r["outsockets"] == 0 and isinstance(r["outsockets"], int)
    assert set(r.quantities) == set(QUANTITY_NAMES)


@pytest.mark.parametrize(
    ("text", "line", "fragments"),
    [
        ("resource cpus 0.1\n", 1, ["unknown resource 'cpus'", "did you mean 'cpu'", "'resource cpus 0.1'"]),
        (MANDATORY_TEXT + "resource cpu 0.2\n", 4, ["duplicate resource 'cpu'", "line 1"]),
        (MANDATORY_TEXT + "resource events -3\n", 4, ["events -3 is negative"]),
        ("resource cpu -0.5\n", 1, ["cpu -0.5 is negative"]),
        (MANDATORY_TEXT + "resource events 1.5\n", 4, ["events needs a whole number", "'1.5'"]),
        (MANDATORY_TEXT + "resource memory 1e6\n", 4, ["duplicate resource 'memory'"]),
        ("resource memory 1e6\n", 1, ["memory needs a whole number", "'1e6'"]),
        ("resource cpu lots\n", 1, ["cpu needs a number", "'lots'"]),
        ("resource cpu nan\n", 1, ["cpu needs a number"]),
        ("resource cpu 1e999\n", 1, ["not a finite number"]),
        ("resource cpu 1e12\n", 1, ["above the maximum"]),
        (MANDATORY_TEXT + "resource events 99999999999999999999\n", 4, ["above the maximum"]),
        ("resource cpu 0.00001\n", 1, ["below the smallest step 0.0001"]),
        ("\n\nresource messport 0\n", 3, ["messport port 0 is outside 1..65535"]),
        ("resource connport 65536\n", 1, ["connport port 65536 is outside 1..65535"]),
        ("resource connport http\n", 1, ["connport needs a number", "'http'"]),
        ("resource cpu\n", 1, ["expected 3 words", "got 2"]),
        ("resource cpu 0.1 0.2\n", 1, ["expected 3 words", "got 4"]),
        ("cpu 0.1\n", 1, ["expected 'resource NAME VALUE' or 'call ...'", "'cpu 0.1'"]),
        ("resource " + "x" * 500 + " 1\n", 1, ["unknown resource", "…"]),
        ("call a\rb\n", 1, ["not a single 'call ...' line"]),
    ],
)
def test_parse_errors_name_the_line_and_the_text(text: str, line: int, fragments: list[str]) -> None:
    with pytest.raises(ResourceParseError) as info:
        parse_resources(text, source="bad.res")
    err = info.value
    assert err.line == line
    assert str(err).startswith(f"bad.res:{line}: ")
    for fragment in fragments:
        assert fragment in err.reason
    assert len(str(err)) < 300


@pytest.mark.parametrize(
    ("text", "missing"),
    [("", "cpu, memory, diskused"), ("resource cpu 1\n", "memory, diskused"),
     ("resource cpu 1\nresource memory 1\n", "diskused")],
)
def test_missing_mandatory_resources_are_named(text: str, missing: str) -> None:
    with pytest.raises(ResourceParseError) as info:
        parse_resources(text, source="m.res")
    assert info.value.line is None
    assert str(info.value) == f"m.res: missing mandatory resource{'s' if ',' in missing else ''} {missing}"


def test_text_over_the_size_limit_is_refused() -> None:
    text = MANDATORY_TEXT + "#" * MAX_TEXT_BYTES
    with pytest.raises(ResourceParseError, match="more than the limit of 65536"):
        parse_resources(text)
    parse_resources(MANDATORY_TEXT + "#" * (MAX_TEXT_BYTES - len(MANDATORY_TEXT)))


def test_parse_refuses_non_text() -> None:
    with pytest.raises(ResourceParseError, match="expected text, got bytes"):
        parse_resources(MANDATORY_TEXT.encode())  # type: ignore[arg-type]


def test_load_resources_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    good = tmp_path / "resource.v1"
    good.write_text(DEFAULT_ALLOTMENT.to_text())
    assert load_resources(good) == DEFAULT_ALLOTMENT

    bad = tmp_path / "resource.v2"
    bad.write_text(MANDATORY_TEXT + "resource bogus 1\n")
    with pytest.raises(ResourceParseError) as info:
        load_resources(bad)
    assert str(info.value).startswith(f"{bad}:4: unknown resource 'bogus'")

    binary = tmp_path / "resource.v3"
    binary.write_bytes(MANDATORY_TEXT.encode() + b"resource events \xff\n")
    with pytest.raises(ResourceParseError, match=r"resource\.v3:4: not UTF-8"):
        load_resources(binary)

    huge = tmp_path / "resource.v4"
    huge.write_bytes(b"#" * (MAX_TEXT_BYTES + 1))
    with pytest.raises(ResourceParseError, match="larger than the limit"):
        load_resources(huge)

    with pytest.raises(FileNotFoundError):
        load_resources(tmp_path / "absent")


# --- construction, dict form, text form ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"quantities": {"cpu": -1.0}}, "cpu -1.0 is negative"),
        ({"quantities": {"bogus": 1}}, "unknown resource 'bogus'"),
        ({"quantities": {"messport": 1}}, "'messport' is a port set"),
        ({"quantities": {"memory": 1.0}}, "memory needs a whole number"),
        ({"quantities": {"events": True}}, "events needs a number"),
        ({"quantities": {"cpu": "1"}}, "cpu needs a number"),
        ({"quantities": [("cpu", 1)]}, "quantities must be a mapping"),
        ({"quantities": {}, "messport": frozenset({70000})}, "messport port 70000 is outside"),
        ({"quantities": {}, "connport": 5}, "connport needs a list"),
        ({"quantities": {}, "calls": ("resource cpu 1",)}, "not a single 'call ...' line"),
        ({"quantities": {}, "calls": ("call x # note",)}, "not a single 'call ...' line"),
        ({"quantities": {}, "calls": "call x"}, "calls needs a list"),
    ],
)
def test_constructor_validates(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ResourceParseError) as info:
        Resources(**kwargs)  # type: ignore[arg-type]
    assert fragment in info.value.reason


def test_constructor_fills_rounds_and_freezes() -> None:
    r = Resources({"cpu": 1, "netsend": 0.123456})
    assert r["cpu"] == 1.0 and isinstance(r["cpu"], float)
    assert r["netsend"] == 0.1235  # renewables live on a 0.0001 grid
    assert r["memory"] == 0 and r.messport == frozenset()
    with pytest.raises(TypeError):
        r.quantities["cpu"] = 2.0  # type: ignore[index]
    with pytest.raises(KeyError, match="unknown resource 'bogus'"):
        r["bogus"]


def test_typed_accessors_return_one_kind_each() -> None:
    r = small(events=7).replace(messport={5, 6})
    assert r.quantity("cpu") == 0.1 and r.quantity("memory") == 1000
    assert r.count("events") == 7 and isinstance(r.count("memory"), int)
    assert r.ports("messport") == frozenset({5, 6}) and r.ports("connport") == frozenset()
    assert [r[name] for name in ("cpu", "memory", "messport")] == [0.1, 1000, frozenset({5, 6})]
    with pytest.raises(KeyError, match="is a renewable rate, not a count"):
        r.count("cpu")
    with pytest.raises(KeyError, match="is a port set, not a quantity"):
        r.quantity("messport")
    with pytest.raises(KeyError, match="is a quantity, not a port set"):
        r.ports("cpu")
    with pytest.raises(KeyError, match="unknown resource 'bogus'"):
        r.ports("bogus")
    with pytest.raises(KeyError, match="did you mean 'memory'"):
        r.count("memroy")


def test_replace_changes_named_resources_and_validates() -> None:
    r = small().replace(cpu=0.3, messport={5, 6}, calls=("call x",))
    assert (r["cpu"], r.messport, r.calls, r["memory"]) == (0.3, frozenset({5, 6}), ("call x",), 1000)
    with pytest.raises(ResourceParseError, match="unknown resource 'cpuu'"):
        small().replace(cpuu=1)
    with pytest.raises(ResourceParseError, match="memory -1 is negative"):
        small().replace(memory=-1)


def test_to_text_is_canonical() -> None:
    text = small(netsend=1234.5, random=7.0).replace(messport={9, 3}, calls=("call open allow",)).to_text()
    lines = text.splitlines()
    assert [line.split()[1] for line in lines[:15]] == list(QUANTITY_NAMES)
    assert lines[0] == "resource cpu 0.1"
    assert "resource netsend 1234.5" in lines and "resource random 7" in lines
    assert lines[15:] == ["resource messport 3", "resource messport 9", "call open allow"]
    assert text.endswith("\n")
    # Large values print as plain decimals, never in exponent notation.
    assert "resource loopsend 100000000000\n" in small(loopsend=1e11).to_text()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "expected a mapping of resources, got list"),
        ({"cpu": 1, "memory": 1}, "missing mandatory resource diskused"),
        ({"cpu": 1, "memory": 1, "diskused": 1, "disk": 5}, "unknown resource 'disk'"),
        ({"cpu": 1, "memory": 1, "diskused": 1, 7: 5}, "resource names are strings, got 7"),
        ({"cpu": -1, "memory": 1, "diskused": 1}, "cpu -1 is negative"),
        ({"cpu": 1, "memory": 1.5, "diskused": 1}, "memory needs a whole number"),
        ({"cpu": 1, "memory": 1, "diskused": 1, "messport": [[1]]}, "messport needs whole port numbers"),
        ({"cpu": 1, "memory": 1, "diskused": 1, "messport": "63100"}, "messport needs a list"),
        ({"cpu": 1, "memory": 1, "diskused": 1, "connport": [0]}, "connport port 0 is outside"),
        ({"cpu": 1, "memory": 1, "diskused": 1, "calls": [3]}, "call lines must be strings"),
    ],
)
def test_from_dict_validates_like_the_text_form(data: object, fragment: str) -> None:
    with pytest.raises(ResourceParseError) as info:
        Resources.from_dict(data, source="wire")  # type: ignore[arg-type]
    assert str(info.value).startswith("wire: ")
    assert fragment in info.value.reason


def test_copies_and_pickles_are_equal() -> None:
    r = DEFAULT_ALLOTMENT.replace(calls=("call open allow",))
    assert pickle.loads(pickle.dumps(r)) == r
    assert copy.deepcopy(r) == r and hash(copy.copy(r)) == hash(r)


def test_dict_form_crosses_json_and_msgpack() -> None:
    r = DEFAULT_ALLOTMENT.replace(calls=("call open allow",))
    d = r.to_dict()
    assert d["messport"] == list(range(63100, 63110))
    assert d["calls"] == ["call open allow"]
    assert Resources.from_dict(json.loads(json.dumps(d))) == r
    assert Resources.from_dict(msgpack.unpackb(msgpack.packb(d))) == r


# --- hypothesis strategies ----------------------------------------------------------------------------------


def quantity(name: str, top: int) -> st.SearchStrategy[float | int]:
    """Values on the renewable grid (0.0001) or whole numbers, up to `top` grid steps or units."""
    units = st.integers(min_value=0, max_value=top)
    return units.map(lambda u: u / 10_000) if name in RENEWABLE else units


def resources_strategy(top: int = 10**12) -> st.SearchStrategy[Resources]:
    ports = st.frozensets(st.integers(min_value=1, max_value=65535), max_size=6)
    call = st.text(alphabet="abcdefgh_.() ", max_size=12).map(lambda s: ("call " + s).strip())
    return st.builds(
        Resources,
        st.fixed_dictionaries({name: quantity(name, top) for name in QUANTITY_NAMES}),
        messport=ports,
        connport=ports,
        calls=st.lists(call, max_size=3).map(tuple),
    )


@pytest.mark.slow
@given(resources_strategy(top=10**15))
def test_text_and_dict_round_trips_are_exact(r: Resources) -> None:
    assert parse_resources(r.to_text()) == r
    assert parse_resources(r.to_text()).to_text() == r.to_text()
    assert Resources.from_dict(r.to_dict()) == r
    assert Resources.from_dict(msgpack.unpackb(msgpack.packb(r.to_dict()))) == r


@pytest.mark.slow
@given(resources_strategy(), resources_strategy())
def test_addition_and_subtraction_undo_each_other(a: Resources, b: Resources) -> None:
    b = b.replace(messport=b.messport - a.messport, connport=b.connport - a.connport)
    total = a + b
    assert a.fits_within(total) and b.fits_within(total)
    assert total - b == a
    assert (total - a).replace(calls=b.calls) == b


# --- arithmetic ---------------------------------------------------------------------------------------------


def test_add_sums_quantities_unites_ports_and_keeps_left_calls() -> None:
    a = small(events=3).replace(messport={1, 2}, calls=("call a",))
    b = small(events=4).replace(messport={2, 3}, connport={9}, calls=("call b",))
    s = a + b
    assert (s["cpu"], s["memory"], s["events"]) == (0.2, 2000, 7)
    assert s.messport == {1, 2, 3} and s.connport == {9}
    assert s.calls == ("call a",)


def test_sum_above_the_maximum_is_an_arithmetic_error() -> None:
    with pytest.raises(ResourceArithmeticError, match="loopsend"):
        small(loopsend=1e11) + small(loopsend=1)


def test_subtraction_names_every_shortfall_and_missing_port() -> None:
    parent = small(events=2).replace(messport={1, 2}, connport={5})
    child = small(events=3).replace(cpu=0.2, messport={2, 3, 4}, connport={5})
    with pytest.raises(ResourceArithmeticError) as info:
        parent - child
    assert info.value.problems == (
        "cpu: 0.2 needed, 0.1 available",
        "events: 3 needed, 2 available",
        "messport: ports 3, 4 not held",
    )
    assert "events: 3 needed, 2 available" in str(info.value)


def test_subtraction_removes_ports() -> None:
    parent = small().replace(messport={1, 2}, connport={5, 6})
    rest = parent - Resources({}, messport=frozenset({1}))
    assert rest.messport == {2} and rest.connport == {5, 6}
    assert rest["cpu"] == 0.1


def test_fits_within() -> None:
    parent = small(events=5).replace(messport={1, 2})
    assert small(events=5).fits_within(parent)
    assert not small(events=6).fits_within(parent)
    assert not small().replace(messport={3}).fits_within(parent)
    assert Resources({}).fits_within(parent)


def test_arithmetic_is_exact_for_renewables() -> None:
    tenth = Resources({"cpu": 0.1})
    total = Resources({})
    for _ in range(10):
        total = total + tenth
    assert total["cpu"] == 1.0  # plain float addition would give 0.9999999999999999
    assert (total - tenth)["cpu"] == 0.9


# --- offcut, defaults, split and join -----------------------------------------------------------------------


def test_default_offcut_is_the_originals_but_for_memory() -> None:
    # Memory: the overhead a vessel really costs the host (its supervisor and prepared process, ~7 MB), not the
    # original's 1 MB; everything else as the original.
    expected = {"cpu": 0.002, "memory": 8_000_000, "diskused": 100_000, "events": 2, "filewrite": 1000,
                "fileread": 1000, "filesopened": 1, "lograte": 100}
    for name in QUANTITY_NAMES:
        assert DEFAULT_OFFCUT[name] == expected.get(name, 0), name
    assert DEFAULT_OFFCUT.messport == DEFAULT_OFFCUT.connport == frozenset()


def test_default_allotment_for_local_runs() -> None:
    mib = 1024 * 1024
    a = DEFAULT_ALLOTMENT
    assert (a["cpu"], a["memory"], a["diskused"]) == (0.5, 256 * mib, 100 * mib)
    assert (a["events"], a["filesopened"], a["insockets"], a["outsockets"]) == (64, 32, 16, 16)
    assert a["netsend"] == a["netrecv"] == a["lograte"] == mib
    assert a["loopsend"] == a["looprecv"] == a["fileread"] == a["filewrite"] == 10 * mib
    assert a["random"] == 100 * 1024
    assert a.messport == a.connport == frozenset(range(63100, 63110))


def test_split_gives_leftover_first_and_both_inherit_calls() -> None:
    parent = Resources({"cpu": 0.2, "memory": 20_000_000, "diskused": 1_000_000, "events": 10,
                        "filewrite": 5000, "fileread": 5000, "filesopened": 4, "lograte": 1000},
                       messport=frozenset({1, 2, 3}), connport=frozenset({7}), calls=("call open allow",))
    request = Resources({"cpu": 0.05, "memory": 2_000_000, "diskused": 300_000, "events": 3},
                        messport=frozenset({2}))
    leftover, child = split_resources(parent, request)
    assert leftover["cpu"] == 0.148 and leftover["memory"] == 10_000_000 and leftover["events"] == 5
    assert leftover["filewrite"] == 4000 and leftover["filesopened"] == 3
    assert leftover.messport == {1, 3} and leftover.connport == {7}
    assert child.messport == {2} and child["cpu"] == 0.05
    assert leftover.calls == child.calls == ("call open allow",)
    assert join_resources(leftover, child) == parent


def test_split_of_a_parent_too_small_for_the_offcut() -> None:
    parent = Resources({"cpu": 0.001, "memory": 10_000_000, "diskused": 1_000_000, "events": 10,
                        "filewrite": 5000, "fileread": 5000, "filesopened": 4, "lograte": 1000})
    with pytest.raises(ResourceArithmeticError) as info:
        split_resources(parent, Resources({}))
    assert str(info.value).startswith("Existing resources are so small they cannot be split.")
    assert info.value.problems == ("cpu: 0.002 needed, 0.001 available",)


def test_split_of_a_request_that_is_too_large() -> None:
    parent = DEFAULT_ALLOTMENT
    with pytest.raises(ResourceArithmeticError) as info:
        split_resources(parent, parent.replace(cpu=0.1, messport={63100, 9}))
    assert str(info.value).startswith("Proposed vessel is too large.")
    assert "memory: 268435456 needed, 260435456 available" in info.value.problems
    assert "messport: port 9 not held" in info.value.problems
    assert not any(p.startswith("cpu") for p in info.value.problems)


def test_join_adds_the_offcut_back_and_unites_ports() -> None:
    a = small().replace(messport={1}, calls=("call a",))
    b = small().replace(messport={2}, connport={3})
    joined = join_resources(a, b)
    assert joined["cpu"] == 0.202 and joined["memory"] == 8_002_000 and joined["events"] == 2
    assert joined.messport == {1, 2} and joined.connport == {3} and joined.calls == ("call a",)
    assert join_resources(a, b, offcut=Resources({})) == a + b


# --- conservation -------------------------------------------------------------------------------------------


@st.composite
def split_request(draw: st.DrawFn, vessel: Resources, offcut: Resources) -> Resources:
    """A request that usually fits what `vessel` can give after the offcut, and sometimes does not."""
    room = {name: vessel.quantities[name] - offcut.quantities[name] for name in QUANTITY_NAMES}
    if draw(st.integers(0, 9)) == 0:  # an oversized request; the split must fail and change nothing
        return draw(resources_strategy(top=10**10))
    quantities = {}
    for name in QUANTITY_NAMES:
        top = max(0, round(room[name] * 10_000) if name in RENEWABLE else room[name])
        quantities[name] = draw(quantity(name, top))
    return Resources(
        quantities,
        messport=draw(subset(vessel.messport)),
        connport=draw(subset(vessel.connport)),
    )


def subset(ports: frozenset[int]) -> st.SearchStrategy[frozenset[int]]:
    return st.frozensets(st.sampled_from(sorted(ports))) if ports else st.just(frozenset())


def conserved_total(vessels: list[Resources], offcut: Resources) -> Resources:
    total = vessels[0]
    for vessel in vessels[1:]:
        total = total + vessel + offcut
    return total


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(st.data())
def test_split_and_join_conserve_resources(data: st.DataObject) -> None:
    """sum(vessels) + (#vessels − 1)·offcut equals the original node exactly after any split/join sequence."""
    tiny_offcut = Resources({"cpu": 0.0003, "memory": 7, "events": 1})
    offcut = data.draw(st.sampled_from([DEFAULT_OFFCUT, tiny_offcut]))
    node = data.draw(resources_strategy(top=10**9)) + offcut + offcut + offcut
    node = node.replace(calls=("call open allow",))
    vessels = [node]
    for _ in range(data.draw(st.integers(1, 12))):
        if len(vessels) > 1 and data.draw(st.booleans()):
            i, j = data.draw(st.lists(st.integers(0, len(vessels) - 1), min_size=2, max_size=2, unique=True))
            joined = join_resources(vessels[i], vessels[j], offcut)
            vessels = [v for k, v in enumerate(vessels) if k not in (i, j)] + [joined]
        else:
            i = data.draw(st.integers(0, len(vessels) - 1))
            request = data.draw(split_request(vessels[i], offcut))
            try:
                leftover, child = split_resources(vessels[i], request, offcut)
            except ResourceArithmeticError:
                assert not (request + offcut).fits_within(vessels[i])
                continue
            vessels[i : i + 1] = [leftover, child]
        assert conserved_total(vessels, offcut) == node
        for k, v in enumerate(vessels):  # every port belongs to exactly one vessel
            for other in vessels[k + 1 :]:
                assert not (v.messport & other.messport) and not (v.connport & other.connport)
