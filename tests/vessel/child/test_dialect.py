"""The original dialect's translation, in-process: each construct, line numbers, errors, the cache and the hint."""

from __future__ import annotations

import pytest

from seattle.vessel.child import dialect
from seattle.vessel.child.checker import MAX_SOURCE_BYTES, check_and_compile
from seattle.vessel.child.py2names import cmp, original_builtins, py2div, reduce
from seattle.vessel.child.safe_builtins import make_builtins
from seattle.vessel.errors import CodeUnsafeError

#: (original dialect, its translation): one line each, so the line is also checked to stay where it was.
CONSTRUCTS = [
    ("print 'a', b", "print('a', b)"),
    ("print 'a',", "print('a', end=' ')"),
    ("print", "print()"),
    ("try:\n    pass\nexcept ValueError, e:\n    pass", "try:\n    pass\nexcept ValueError as e:\n    pass"),
    ("try:\n    pass\nexcept (A, B), e:\n    pass", "try:\n    pass\nexcept (A, B) as e:\n    pass"),
    ("raise ValueError, 'bad'", "raise ValueError('bad')"),
    ("x = 0L + 12L", "x = 0 + 12"),
    ("x = 0777", "x = 0o777"),
    ("x = `y`", "x = repr(y)"),
    ("x = a <> b", "x = a != b"),
    ("x = d.has_key(k)", "x = k in d"),
    ("x = not d.has_key(k)", "x = k not in d"),
    ("x = d.keys()", "x = list(d.keys())"),
    ("for k, v in d.iteritems():\n    pass", "for k, v in d.items():\n    pass"),
    ("x = range(3)", "x = list(range(3))"),
    ("for i in xrange(3):\n    pass", "for i in range(3):\n    pass"),
    ("x = map(f, y)", "x = list(map(f, y))"),
    ("x = filter(f, y)", "x = list(filter(f, y))"),
    ("x = zip(a, b)", "x = list(zip(a, b))"),
    ("x = apply(f, args)", "x = f(*args)"),
    ("exec code", "exec(code)"),
    ("x = a / b", "x = py2div(a, b)"),
    ("x = a / b * c / d", "x = py2div(py2div(a, b) * c, d)"),
    ("x /= 2", "x = py2div(x, 2)"),
    ("self.x /= 2", "self.x = py2div(self.x, 2)"),
    ("q[f()] /= 2", "q[f()] /= 2"),
    ("x = a // b", "x = a // b"),
    ("x = long(y) + xrange(2)[0]", "x = long(y) + range(2)[0]"),
    ("f = xrange", "f = xrange"),  # a name, not a call: py2names has it
]


@pytest.mark.parametrize(("original", "translated"), CONSTRUCTS)
def test_each_construct_is_translated_in_place(original: str, translated: str) -> None:
    assert dialect.translate(original + "\n") == translated + "\n"


def test_lines_are_kept_across_a_program() -> None:
    source = (
        "# a comment\n"
        "def f(x):\n"
        "    print 'x is', x\n"
        "\n"
        "    return x / 2 + \\\n"
        "        1\n"
        "d = {'a': (1,\n"
        "           2)}\n"
        "if d.has_key('a') <> True:\n"
        "    raise ValueError, 'line 10'\n"
    )
    out = dialect.translate(source)
    assert out.count("\n") == source.count("\n")
    assert out.splitlines()[9] == "    raise ValueError('line 10')"
    assert out.splitlines()[0] == "# a comment"


def test_a_checker_refusal_points_at_the_users_line() -> None:
    source = "print 'one'\nx = 0777\n\nprint `x`.__class__\n"
    with pytest.raises(CodeUnsafeError, match=r"prog\.r2py, line 4, .*'__class__'"):
        check_and_compile(dialect.translate(source, "prog.r2py"), "prog.r2py")


def test_a_traceback_points_at_the_users_line() -> None:
    source = "print 'start'\n\n\nx = 1 / 0\n"
    code = check_and_compile(dialect.translate(source, "prog.r2py"), "prog.r2py")
    builtins = make_builtins(lambda *args, **kwargs: None)
    builtins.update(original_builtins())
    with pytest.raises(ZeroDivisionError) as info:
        exec(code, {"__builtins__": builtins})
    assert info.traceback[-2].lineno + 1 == 4  # pytest counts from 0; the last frame is py2div's


@pytest.mark.parametrize(("source", "line"), [
    ("x = 1\ny = (\n", 2),  # the line where the bracket that is never closed opened
    ("x = 1\ndef f(:\n    pass\n", 2),
    ("x = 1\n  y = 2\n", 2),
    ("x = 1\nprint >>\n", 2),
])
def test_a_syntax_error_names_its_line(source: str, line: int) -> None:
    with pytest.raises(CodeUnsafeError, match=rf"^lib\.r2py, line {line}, column \d+: .*original dialect"):
        dialect.translate(source, "lib.r2py")


def test_the_size_limit_holds_before_parsing() -> None:
    with pytest.raises(CodeUnsafeError, match="limit"):
        dialect.translate(b"x = 1\n" * (MAX_SOURCE_BYTES // 6 + 1))


def test_the_exec_statement_stays_refused() -> None:
    with pytest.raises(CodeUnsafeError, match="name 'exec'"):
        check_and_compile(dialect.translate("exec 'x = 1'\n"))


def test_translations_are_cached_by_content() -> None:
    source = f"print 'cached {id(object())}'\n"
    first = dialect.translate(source)
    assert dialect.translate(source) is first
    assert dialect.translate(source.encode()) is first


def test_deep_nesting_is_a_refusal_not_a_crash() -> None:
    with pytest.raises(CodeUnsafeError):
        dialect.translate("x = " + "-" * 50_000 + "1\n")


@pytest.mark.parametrize(("source", "filename", "hinted"), [
    ("print 'hello'\n", "prog.r2py", True),
    ("print 'hello'\n", "prog.repy", True),
    ("print 'hello'\n", "prog.py", False),   # only the original's file names get the hint
    ("print(\n", "prog.r2py", False),        # broken in both dialects
])
def test_the_hint_is_for_original_code_in_original_files(source: str, filename: str, hinted: bool) -> None:
    with pytest.raises(CodeUnsafeError) as info:
        check_and_compile(source, filename)
    assert dialect.looks_original(source, filename, str(info.value)) is hinted


def test_the_python2_names() -> None:
    assert cmp(1, 2) == -1 and cmp(2, 2) == 0 and cmp("b", "a") == 1
    assert py2div(7, 2) == 3 and py2div(-7, 2) == -4 and py2div(7.0, 2) == 3.5 and py2div(7, 2.0) == 3.5
    assert reduce(lambda a, b: a * b, [1, 2, 3, 4]) == 24 and reduce(lambda a, b: a + b, [], 5) == 5
    names = original_builtins()
    assert names["xrange"] is range and names["long"] is int and names["basestring"] is str
