"""The original dialect's translator on CPython's parser: more constructs, lines kept, the same meaning where
both languages agree, and hostile text refused with its line, in bounded time and memory."""

from __future__ import annotations

import ast
import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seattle.vessel.child import dialect
from seattle.vessel.child.checker import check_and_compile
from seattle.vessel.child.py2names import original_builtins
from seattle.vessel.child.safe_builtins import make_builtins
from seattle.vessel.errors import CodeUnsafeError

#: (original dialect, its translation), beyond the table in test_dialect.py.
CONSTRUCTS = [
    ("print >>f, x", "print(x, file=f)"),
    ("print >>f", "print(file=f)"),
    ("print (x)", "print (x)"),  # one bracketed value prints the same in both
    ("print (a, b)", "print((a, b))"),  # a tuple, as Python 2 printed it
    ("if x: print y", "if x: print(y)"),
    ("print x; print", "print(x); print()"),
    ("print x  # print y", "print(x)  # print y"),
    ("print 'a', \\\n    b", "print('a', \\\n    b)"),
    ("exec code in ns", "exec(code, ns)"),
    ("raise E, (a, b)", "raise E(a, b)"),
    ("raise E, V, T", "raise E(V).with_traceback(T)"),
    ("raise a or b, c", "raise (a or b)(c)"),
    ("raise E", "raise E"),
    ("x = `a + `b``", "x = repr(a + repr(b))"),
    ("x = 0xffL + 0o17 + 1e-07 + 0.5 + 00 + 0777L", "x = 0xff + 0o17 + 1e-07 + 0.5 + 00 + 0o777"),
    ("s = 'print x, 0777L' + \"<>\"  # print `y`", "s = 'print x, 0777L' + \"<>\"  # print `y`"),
    ("s = '''raise E, V\nprint z'''", "s = '''raise E, V\nprint z'''"),
    ("x = ur'a\\d' + UR\"b\"", "x = r'a\\d' + R\"b\""),
    ("x = map(None, y)", "x = list(y)"),
    ("x = sorted(map(f, y), key=g)", "x = sorted(map(f, y), key=g)"),
    ("x = ''.join(map(str, y))", "x = ''.join(map(str, y))"),
    ("for a, b in zip(x, y):\n    pass", "for a, b in zip(x, y):\n    pass"),
    ("x = 3 in range(4)", "x = 3 in range(4)"),
    ("x = sum(range(4))", "x = sum(range(4))"),
    ("x = d.itervalues()", "x = iter(d.values())"),
    ("x = [k for k in d.iterkeys()]", "x = [k for k in d.keys()]"),
    ("x = d.viewkeys()", "x = d.keys()"),
    ("x = sorted(d.keys())", "x = sorted(d.keys())"),
    ("x = d.items()[0]", "x = list(d.items())[0]"),
    ("for k in d.keys():\n    pass", "for k in list(d.keys()):\n    pass"),
    ("x = d.has_key(k) == True", "x = (k in d) == True"),
    ("x = d.has_key(a or b)", "x = (a or b) in d"),
    ("x = (d or e).has_key(k)", "x = k in (d or e)"),
    ("x = (a + b) / (c - d)", "x = py2div((a + b), (c - d))"),
    ("x = a / (b / c)", "x = py2div(a, (py2div(b, c)))"),
    ("x = y[1 / 2]", "x = y[py2div(1, 2)]"),
    ("x = apply(f.g, a, k)", "x = f.g(*a, **k)"),
    ("x = apply(lambda: 1, ())", "x = (lambda: 1)(*())"),
]


@pytest.mark.parametrize(("original", "translated"), CONSTRUCTS)
def test_each_construct_is_translated_in_place(original: str, translated: str) -> None:
    assert dialect.translate(original + "\n") == translated + "\n"


@pytest.mark.parametrize("source", [
    "v = d.has_key(\n    k)\nw = 1\n",
    "x = (a  # a comment\n     / b)\nw = 1\n",
    "x = apply(f,\n          args)\nw = 1\n",
    "x = map(None,\n        y)\nw = 1\n",
    "x = a /\\\n    b\nw = 1\n",
])
def test_a_rewrite_across_lines_keeps_them(source: str) -> None:
    out = dialect.translate(source)
    assert out.count("\n") == source.count("\n")
    assert out.splitlines()[-1] == "w = 1"
    assert [node.lineno for node in ast.parse(out).body] == [1, source.count("\n")]


# --- lines are kept, whatever the mix of rewritten statements -------------------------------------------

#: Statements in the original dialect, each with the lines (from its first) of every statement inside it.
STATEMENTS = [
    "print 'a', b,",
    "print >>f, x, \\\n    y",
    "x = d.has_key(\n    k) or `y`",
    "if a <> b:\n    raise ValueError, 'no'\nelse:\n    print",
    "try:\n    x = 0777L\nexcept KeyError, e:\n    x = map(None, y)",
    "total = reduce(lambda a, b: a + b, map(len, d.keys()), 0) / 2",
    "for i in xrange(10):\n    total /= (i +\n              1)",
    "s = '''print x\nraise E, V'''  # print",
    "def f(x):\n    '''doc'''\n    return apply(g, (x,\n                     1))",
    "class C:\n    def m(self):\n        exec 'x' in d",
    "# only a comment",
    "",
]


def _statement_lines(source: str) -> list[int]:
    return sorted(node.lineno for node in ast.walk(ast.parse(source)) if isinstance(node, ast.stmt))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(STATEMENTS), max_size=12))
def test_every_statement_stays_on_its_line(parts: list[str]) -> None:
    source = "\n".join(parts) + "\n"
    expected: list[int] = []
    line = 1
    for part in parts:
        alone = dialect.translate(part + "\n")
        expected += [line + offset - 1 for offset in _statement_lines(alone)]
        line += part.count("\n") + 1
    out = dialect.translate(source)
    assert out.count("\n") == source.count("\n")
    assert _statement_lines(out) == sorted(expected)


# --- programs valid in both dialects mean the same where the languages agree ----------------------------

_names = st.sampled_from(["a", "b", "c"])
_expressions: st.SearchStrategy[str] = st.recursive(
    st.one_of(st.integers(-50, 50).map(str), _names, st.sampled_from(["'x'", "'yz'", "[1, 2]", "{'a': 1}"])),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "//", "%", "==", "<", "!=", " and ", " or "]), inner)
        .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"len(str({e}))"),
        inner.map(lambda e: f"[{e}, {e}][0]"),
        inner.map(lambda e: f"(not {e})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} if {t[1]} else 0)"),
    ),
    max_leaves=6,
)
_statements = st.one_of(
    st.tuples(_names, _expressions).map(lambda t: f"{t[0]} = {t[1]}"),
    _expressions.map(lambda e: f"print ({e})"),
    st.tuples(_names, _expressions).map(lambda t: f"for i in range(3):\n    {t[0]} = {t[1]}"),
    st.tuples(_expressions, _names).map(lambda t: f"if {t[0]}:\n    {t[1]} = 1\nelse:\n    {t[1]} = 2"),
    st.tuples(_names, _expressions).map(lambda t: f"def f(a):\n    return {t[1]}\n{t[0]} = f(3)"),
)


def _run(source: str, extra: dict[str, object]) -> tuple[dict[str, Any], list[tuple[object, ...]]]:
    printed: list[tuple[object, ...]] = []
    builtins = make_builtins(lambda *args, **kwargs: printed.append(args))
    builtins.update(extra)
    namespace: dict[str, Any] = {"__builtins__": builtins, "a": 1, "b": 2, "c": 3}
    try:
        exec(check_and_compile(source, "both.r2py"), namespace)
    except Exception as exc:  # the same error in both is the same meaning
        printed.append((type(exc).__name__,))
    del namespace["__builtins__"]
    return {key: value for key, value in namespace.items() if key != "f"}, printed


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_statements, min_size=1, max_size=6))
def test_a_program_valid_in_both_dialects_means_the_same(parts: list[str]) -> None:
    source = "\n".join(parts) + "\n"
    assert _run(dialect.translate(source, "both.r2py"), original_builtins()) == _run(source, {})


# --- hostile text: a refusal naming its line, in linear time and bounded memory --------------------------

HOSTILE = [
    ("x = " + "1 / " * 20_000 + "1\n", 1),  # a tree deeper than any walk should recurse
    ("x = " + "(" * 5_000 + "1" + ")" * 5_000 + "\n", 1),
    ('x = 1\ns = """never closed' + ' \\"""' * 20_000 + "\n", 2),
    ("x = 1\n\ny = 'never closed\n", 3),
    ("x = 1\nprint (" + "1, " * 20_000 + "\n", 2),
    ("x = " + "`" * 2_001 + "\n", 1),
    ("x = 1\ny = $ ? 1\n", 2),
    ("if x:\n\tpass\n        pass\n", 3),  # tabs and spaces mixed
    ("x = 1 \\", 1),
    ("x = 1\nprint >>\n", 2),
    ("raise ,\n", 1),
    ("try:\n    pass\nexcept ,:\n    pass\n", 3),
    ("x = 0778L\n", 1),
    ("x = " + "7" * 5_000 + "\n", 1),  # more digits than Python converts
    ("x = " + "d.has_key(" * 300 + "1" + ")" * 300 + "\n", 1),
]


@pytest.mark.parametrize(("source", "line"), HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_is_refused_with_its_line(source: str, line: int) -> None:
    with pytest.raises(CodeUnsafeError, match=rf"^h\.r2py, line {line}, column \d+: .*\(original dialect\)$"):
        check_and_compile(dialect.translate(source, "h.r2py"), "h.r2py")


@pytest.mark.parametrize("source", [
    "x = '" + "a" * 300_000 + "'\n",
    "x = 1\ns = '''never closed" + " \\'''" * 30_000 + "\n",
    "print (" + "1, " * 100_000 + "\n",
])
def test_memory_stays_within_a_few_bytes_per_source_byte(source: str) -> None:
    """Long strings and long statements cost no state per character (an AST costs ~150 B per byte, as the
    checker's own parse does; these texts make almost none)."""
    tracemalloc.start()
    try:
        try:
            dialect.translate(source + f"# {id(source)}\n", "h.r2py")
        except CodeUnsafeError:
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30 * len(source)


_TOKENS = st.sampled_from([
    "print", "exec", "raise", "except", "in", "x", "d", ".has_key", ".keys", "(", ")", "[", "]", "{", "}",
    ",", ":", ";", ">>", "<>", "`", "/", "/=", "0777", "0L", "'s'", '"""', "'", "\\\n", "\n", "    ", "\t",
    "#", "map", "None", "apply", "range", "=", "lambda", "not", "or",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, max_size=30).map(" ".join))
def test_any_token_soup_translates_or_is_refused(source: str) -> None:
    try:
        out = dialect.translate(source, "soup.r2py")
    except CodeUnsafeError as exc:
        assert str(exc).startswith("soup.r2py, line ")
    else:
        assert out.count("\n") == source.count("\n")
        ast.parse(out)  # what the rewrites made still parses
