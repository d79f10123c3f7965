"""The language layer: the static checker (`check_and_compile`) and the safe builtins (`make_builtins`).

Allowed programs are really executed with the safe builtins and their output compared; refused programs
must fail with a CodeUnsafeError naming the line, the column and the reason.
"""

from __future__ import annotations

import ast
import re
import types

import pytest

from seattle.vessel.child import checker, lasterror
from seattle.vessel.child.checker import MAX_DEPTH, MAX_NODES, MAX_SOURCE_BYTES, check_and_compile
from seattle.vessel.child.safe_builtins import PLAIN_NAMES, make_builtins, safe_type
from seattle.vessel.errors import CodeUnsafeError


def run(source: str | bytes, **extra_globals: object) -> list[str]:
    """Check, compile and execute `source` with the safe builtins; the lines it printed."""
    printed: list[str] = []

    def print_function(*args: object, sep: str = " ", end: str = "\n") -> None:
        printed.append(sep.join(str(arg) for arg in args) + end)

    code = check_and_compile(source, "prog.r2py")
    exec(code, {"__builtins__": make_builtins(print_function), **extra_globals})
    return "".join(printed).splitlines()


def refusal(source: str | bytes, filename: str = "prog.r2py") -> tuple[int, int, str]:
    """(line, column, reason) of the CodeUnsafeError `source` must raise."""
    with pytest.raises(CodeUnsafeError) as info:
        check_and_compile(source, filename)
    match = re.fullmatch(rf"{re.escape(filename)}, line (\d+), column (\d+): (.+)", str(info.value), re.S)
    assert match, f"malformed message: {info.value}"
    return int(match.group(1)), int(match.group(2)), match.group(3)


# --- programs that must be accepted and run correctly ---------------------------------------------------

ORDINARY_PROGRAM = '''
"""A docstring may mention __init__ and __class__."""


class Point:
    """A point; this docstring says __repr__ too."""

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def __repr__(self):
        return f"Point({self.x}, {self.y})"

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __hash__(self):
        return hash((self.x, self.y))

    def __lt__(self, other):
        return (self.x, self.y) < (other.x, other.y)


class Labelled(Point):
    def __init__(self, x, y, label):
        super().__init__(x, y)
        self.label = label

    def describe(self):
        return self.label + " at " + repr(self)


class Stack:
    def __init__(self):
        self.items = []

    def __len__(self):
        return len(self.items)

    def __bool__(self):
        return bool(self.items)

    def __contains__(self, item):
        return item in self.items

    def __getitem__(self, index):
        return self.items[index]

    def __setitem__(self, index, value):
        self.items[index] = value

    def __iter__(self):
        return Countdown(len(self.items))


class Countdown:
    def __init__(self, start):
        self.left = start

    def __iter__(self):
        return self

    def __next__(self):
        if self.left == 0:
            raise StopIteration
        self.left -= 1
        return self.left


class AppError(ValueError):
    pass


def divide(a, b, /, *, default=None, **options):
    try:
        return a / b
    except ZeroDivisionError:
        return default
    finally:
        options["seen"] = True


points = sorted([Point(3, 1), Point(1, 2), Point(2, 9)], key=lambda p: p.x)
print(points)
print(sorted(points, reverse=True)[0])
print(Labelled(4, 5, "home").describe())
print(len({Point(1, 2), Point(1, 2)}))
squares = {n: n * n for n in range(6) if n % 2 == 0}
evens = {n for n in range(10) if n % 2 == 0}
pairs = [(a, b) for a in range(3) for b in range(a)]
print(squares, sorted(evens), pairs)
if (total := sum(squares.values())) > 10:
    print("total", total)
stack = Stack()
print(bool(stack), len(stack))
stack.items.extend([10, 20, 30])
stack[0] = 11
print(bool(stack), len(stack), 20 in stack, stack[0], list(stack))
try:
    raise AppError("bad value")
except ValueError as error:
    print("caught", type(error) is AppError, str(error))
try:
    try:
        {}["missing"]
    except KeyError as inner:
        raise AppError("wrapped") from inner
except AppError as outer:
    print("chained", str(outer))
print(divide(1, 0, default="inf"), divide(9, 3))
print(f"{3.14159:.2f}|{'x':>{4}}|{42!r}|{'a' 'b'}")
first, *rest = [1, 2, 3]
print(first, rest, *rest)
data = {"a": 1}
del data["a"]
assert not data, "empty"
for _ in range(2):
    pass
x: int = 5
print(x, bytes("héllo", "utf-8"), str(b"abc", "utf-8"), type(x) is int, type(Point(0, 0)) is Point)
print(max(3, 7), min([4, 2]), abs(-2), divmod(7, 2), round(2.5), pow(2, 10, 1000), hex(255), chr(65))
print(list(zip("ab", range(2))), list(enumerate("xy")), list(map(str, [1, 2])), list(reversed([1, 2])))
print(object() is not None, isinstance(True, int), issubclass(AppError, Exception), callable(divide))
'''

ORDINARY_OUTPUT = [
    "[Point(1, 2), Point(2, 9), Point(3, 1)]",
    "Point(3, 1)",
    "home at Point(4, 5)",
    "1",
    "{0: 0, 2: 4, 4: 16} [0, 2, 4, 6, 8] [(1, 0), (2, 0), (2, 1)]",
    "total 20",
    "False 0",
    "True 3 True 11 [2, 1, 0]",
    "caught True bad value",
    "chained wrapped",
    "inf 3.0",
    "3.14|   x|42|ab",
    "1 [2, 3] 2 3",
    "5 b'h\\xc3\\xa9llo' abc True True",
    "7 2 2 (3, 1) 2 24 0xff A",
    "[('a', 0), ('b', 1)] [(0, 'x'), (1, 'y')] ['1', '2'] [2, 1]",
    "True True True True",
]


def test_an_ordinary_program_runs_with_the_right_output() -> None:
    assert run(ORDINARY_PROGRAM) == ORDINARY_OUTPUT


def test_bytes_source_with_bom_and_utf8_cookie_is_accepted() -> None:
    source = b"\xef\xbb\xbf# -*- coding: utf-8 -*-\nprint('caf\xc3\xa9')\n"
    assert run(source) == ["café"]


def test_cookie_after_line_two_is_only_a_comment() -> None:
    assert run("x = 1\n\n# coding: latin-1\nprint(x)\n") == ["1"]


def test_lambda_and_closures_work_as_callbacks() -> None:
    source = """
def make_counter():
    counts = [0]
    def bump(step=1):
        counts[0] += step
        return counts[0]
    return bump
counter = make_counter()
handlers = {"inc": lambda: counter(), "add5": lambda: counter(5)}
print(handlers["inc"](), handlers["add5"](), sorted(["bb", "a", "ccc"], key=lambda s: -len(s)))
"""
    assert run(source) == ["1 6 ['ccc', 'bb', 'a']"]


def test_program_sees_the_globals_the_runtime_supplies() -> None:
    printed = run("print(openfile('x'), mycontext)", openfile=lambda name: name.upper(), mycontext={})
    assert printed == ["X {}"]


def test_class_statement_works_without_a_name_global() -> None:
    # Virtual namespaces run with a context that cannot hold `__name__`: the builtins must supply it.
    assert run("class A:\n    pass\nprint(repr(A))") == ["<class 'program.A'>"]


def test_a_nested_format_spec_only_formats() -> None:
    # f"{x:{spec}}" calls format(x, spec): a format spec is not a field name, so it cannot traverse
    # attributes, whatever string the program builds for it at run time.
    source = """
spec = "{0." + "_" * 2 + "class" + "_" * 2 + "}"
for value in ("text", 12, 1.5):
    try:
        print(f"{value:{spec}}")
    except ValueError as error:
        print("refused")
"""
    assert run(source) == ["refused", "refused", "refused"]


# --- refusals: node types ----------------------------------------------------------------------------

NODE_REFUSALS = [
    ("import os", 1, 1, "import statements are not allowed"),
    ("x = 1\nfrom os import path", 2, 1, "import statements are not allowed"),
    ("def f():\n    global g\n", 2, 5, "'global' statements are not allowed"),
    ("def f():\n    x = 1\n    def g():\n        nonlocal x\n", 4, 9, "'nonlocal' statements"),
    ("def f():\n    yield 1\n", 2, 5, "generators ('yield') are not allowed"),
    ("def f():\n    yield from [1]\n", 2, 5, "generators ('yield from') are not allowed"),
    ("total = sum(x for x in range(3))", 1, 12, "generator expressions are not allowed"),
    ("async def f():\n    pass\n", 1, 1, "async code is not allowed"),
    ("with lock:\n    pass\n", 1, 1, "'with' statements are not allowed"),
    ("match x:\n    case object(y=z):\n        pass\n", 1, 1, "'match' statements are not allowed"),
    ("try:\n    pass\nexcept* ValueError:\n    pass\n", 1, 1, "'except*' is not allowed"),
    ("@wrapper\ndef f():\n    pass\n", 2, 1, "decorators are not allowed"),
    ("@wrapper\nclass C:\n    pass\n", 2, 1, "decorators are not allowed"),
    ("class C(metaclass=M):\n    pass\n", 1, 1, "class keywords (metaclass=, **kwargs) are not allowed"),
    ("class C(**options):\n    pass\n", 1, 1, "class keywords (metaclass=, **kwargs) are not allowed"),
    ("class C(*bases):\n    pass\n", 1, 1, "starred class bases (class C(*bases)) are not allowed"),
    ("x = [y for y in z]\nasync def f():\n    return [a async for a in b]\n", 2, 1, "async code"),
]


@pytest.mark.parametrize(("source", "line", "column", "reason"), NODE_REFUSALS)
def test_refused_node_types(source: str, line: int, column: int, reason: str) -> None:
    got_line, got_column, got_reason = refusal(source)
    assert (got_line, got_column) == (line, column)
    assert got_reason.startswith(reason), got_reason


def test_unknown_node_types_are_refused_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend a future Python added a node the allowlist has never heard of: here, pretend it is Assert.
    monkeypatch.setattr(checker, "_ALLOWED_NODES", checker._ALLOWED_NODES - {ast.Assert})
    assert refusal("x = 1\nassert x\n") == (2, 1, "Assert syntax is not allowed")


# --- refusals: names -----------------------------------------------------------------------------------

NAME_REFUSALS = [
    # the object graph
    ("x = ().__class__", 1, 8, "attribute '__class__'"),
    ("y = f.__globals__", 1, 7, "attribute '__globals__'"),
    ("y = [].__class__.__base__.__subclasses__()", 1, 8, "attribute '__class__'"),
    ("__builtins__['open']", 1, 1, "name '__builtins__'"),
    ("__import__('os')", 1, 1, "name '__import__'"),
    ("x = thing.co_path", 1, 11, "attribute 'co_path'"),
    ("obj = 1", 1, 1, "name 'obj'"),
    # frames, generators, tracebacks, code, closures
    ("x = g.gi_frame", 1, 7, "attribute 'gi_frame'"),
    ("x = frame.f_back.f_globals", 1, 11, "attribute 'f_back'"),
    ("x = c.cr_frame", 1, 7, "attribute 'cr_frame'"),
    ("x = a.ag_frame", 1, 7, "attribute 'ag_frame'"),
    ("x = tb.tb_frame", 1, 8, "attribute 'tb_frame'"),
    ("x = code.co_consts", 1, 10, "attribute 'co_consts'"),
    ("x = m.im_func", 1, 7, "attribute 'im_func'"),
    ("x = m.func_globals", 1, 7, "attribute 'func_globals'"),
    ("x = cell.cell_contents", 1, 10, "attribute 'cell_contents'"),
    # names with a known route out
    ("x = '{0}'.format(1)", 1, 11, "attribute 'format'"),
    ("x = '{a}'.format_map(d)", 1, 11, "attribute 'format_map'"),
    ("x = int.mro()", 1, 9, "attribute 'mro'"),
    ("try:\n    f.x\nexcept AttributeError as e:\n    y = e.obj\n", 4, 11, "attribute 'obj'"),
    ("x = 'a'.encode()", 1, 9, "attribute 'encode'"),
    ("x = b'a'.decode()", 1, 10, "attribute 'decode'"),
    ("x = e.with_traceback(None)", 1, 7, "attribute 'with_traceback'"),
    # every kind of binding
    ("def co_helper():\n    pass\n", 1, 1, "function name 'co_helper'"),
    ("class co_Hidden:\n    pass\n", 1, 1, "class name 'co_Hidden'"),
    ("def f(a, co_b):\n    pass\n", 1, 10, "parameter name 'co_b'"),
    ("def f(co_a, /, b):\n    pass\n", 1, 7, "parameter name 'co_a'"),
    ("def f(*, co_k):\n    pass\n", 1, 10, "parameter name 'co_k'"),
    ("def f(*co_args):\n    pass\n", 1, 8, "parameter name 'co_args'"),
    ("def f(**co_kw):\n    pass\n", 1, 9, "parameter name 'co_kw'"),
    ("g = lambda co_x: co_x", 1, 12, "parameter name 'co_x'"),
    ("f(a, co_key=1)", 1, 6, "keyword argument 'co_key'"),
    ("f(a, f_back=1)", 1, 6, "keyword argument 'f_back'"),
    ("try:\n    pass\nexcept E as co_err:\n    pass\n", 3, 1, "exception name 'co_err'"),
    ("if (co_hidden := 3):\n    pass\n", 1, 5, "name 'co_hidden'"),
    ("x = [co_v for co_v in range(3)]", 1, 6, "name 'co_v'"),
    ("for f_x in y:\n    pass\n", 1, 5, "name 'f_x'"),
    # host builtins never exist in a vessel, not even as variables
    ("open('/etc/passwd')", 1, 1, "name 'open'"),
    ("x = eval('1')", 1, 5, "name 'eval'"),
    ("exec('x = 1')", 1, 1, "name 'exec'"),
    ("x = getattr(o, 'a')", 1, 5, "name 'getattr'"),
    ("x = vars()", 1, 5, "name 'vars'"),
    ("x = globals()", 1, 5, "name 'globals'"),
    ("x = dir()", 1, 5, "name 'dir'"),
    ("breakpoint()", 1, 1, "name 'breakpoint'"),
    ("def f(input):\n    pass\n", 1, 7, "parameter name 'input'"),
    # type() only with one argument
    ("C = type('C', (), {})", 1, 5, "type() takes exactly one positional argument"),
    ("t = type", 1, 5, "'type' may only be called directly"),
    ("x = type(*args)", 1, 5, "type() takes exactly one positional argument"),
    ("x = type(o, extra=1)", 1, 5, "type() takes exactly one positional argument"),
    ("def f(type):\n    pass\n", 1, 7, "parameter name 'type'"),
    # dunder methods: only the allowlist, only directly in a class body
    *(
        (f"class C:\n    def {hook}(self, *args):\n        pass\n", 2, 5, f"function name '{hook}'")
        for hook in (
            "__del__", "__getattribute__", "__getattr__", "__init_subclass__", "__set_name__",
            "__class_getitem__", "__new__", "__reduce__", "__format__", "__index__", "__call__",
        )
    ),
    ("def __init__(self):\n    pass\n", 1, 1, "function name '__init__'"),
    ("class C:\n    if True:\n        def __init__(self):\n            pass\n", 3, 9, "function name"),
    ("class C:\n    def m(self):\n        def __len__():\n            pass\n", 3, 9, "function name"),
    ("class C(B):\n    def __init__(self):\n        B.__init__(self)\n", 3, 11, "attribute '__init__'"),
    ("class C(B):\n    def __init__(self):\n        super(C, self).__init__()\n", 3, 24, "attribute"),
    # strings holding a dunder (docstrings excepted)
    ("x = '__class__'", 1, 5, "string constants containing '__'"),
    ("x = b'__class__'", 1, 5, "string constants containing '__'"),
    ("x = f'a__b{y}'", 1, 5, "string constants containing '__'"),
    ("def f():\n    x = 1\n    '__not a docstring'\n", 3, 5, "string constants containing '__'"),
]


@pytest.mark.parametrize(("source", "line", "column", "reason"), NAME_REFUSALS)
def test_refused_names(source: str, line: int, column: int, reason: str) -> None:
    got_line, got_column, got_reason = refusal(source)
    assert reason in got_reason, got_reason
    assert (got_line, got_column) == (line, column), got_reason


def test_reason_says_why_a_name_is_refused() -> None:
    assert refusal("x = f.__code__")[2] == (
        "attribute '__code__' is not allowed: names containing '__' reach interpreter internals"
    )
    assert "frame, code, generator or traceback internals" in refusal("x = g.gi_code")[2]
    assert "str.format" in refusal("x = s.format")[2]
    assert "host builtin" in refusal("x = compile")[2]


def test_message_names_the_file_given() -> None:
    with pytest.raises(CodeUnsafeError, match=r"^mymodule\.r2py, line 3, column 1: import statements"):
        check_and_compile("x = 1\ny = 2\nimport os\n", "mymodule.r2py")


def test_first_problem_in_source_order_is_reported() -> None:
    source = "a = 1\nb = x.co_one\nc = y.co_two\n"
    assert refusal(source)[:2] == (2, 7)


def test_allowed_names_next_to_refused_ones() -> None:
    # Names that merely resemble refused ones stay usable.
    source = "formatted = 1\nobject_count = 2\nmodel = 3\nname_f_x = 4\nprint(formatted + object_count)"
    assert run(source) == ["3"]
    assert run("class C:\n    def __str__(self):\n        return 'c'\nprint(str(C()))") == ["c"]
    assert run("d = {'a_b': 1, '_': 2}\nprint(d)") == ["{'a_b': 1, '_': 2}"]


# --- unicode tricks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "column", "name"),
    [
        ("x = ().__ｃｌａｓｓ__", 8, "'__class__'"),  # fullwidth letters
        ("x = ()._＿class_＿", 8, "'__class__'"),  # fullwidth low line after an ASCII one
        ("x = ().__𝐜𝐥𝐚𝐬𝐬__", 8, "'__class__'"),  # mathematical bold letters
        ("x = g.𝐠𝐢_frame", 7, "'gi_frame'"),
        ("x = ｅｖａｌ('1')", 5, "'eval'"),
        ("ｏｐｅｎ('/etc/passwd')", 1, "'open'"),
        ("x = s.ｆｏｒｍａｔ(1)", 7, "'format'"),
    ],
)
def test_nfkc_normalised_identifiers_are_caught(source: str, column: int, name: str) -> None:
    line, got_column, reason = refusal(source)
    assert (line, got_column) == (1, column)
    assert name in reason


def test_fullwidth_dunder_cannot_start_an_identifier() -> None:
    # U+FF3F is not a valid first character, so the parser itself refuses the fully fullwidth spelling.
    assert refusal("x = ().＿＿class＿＿")[2].startswith("syntax error: invalid character")


# --- text and tree must not disagree: parse once, compile the same tree ---------------------------------


def test_parses_once_and_compiles_the_checked_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[ast.AST] = []
    compiled: list[object] = []
    real_parse = ast.parse

    def counting_parse(*args: object, **kwargs: object) -> ast.AST:
        tree = real_parse(*args, **kwargs)  # type: ignore[arg-type]
        parsed.append(tree)
        return tree

    def recording_compile(source: object, *args: object, **kwargs: object) -> types.CodeType:
        compiled.append(source)
        return compile(source, *args, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(checker.ast, "parse", counting_parse)
    monkeypatch.setattr(checker, "compile", recording_compile, raising=False)
    code = check_and_compile("x = 1\nprint(x)\n")
    assert len(parsed) == 1
    assert len(compiled) == 1 and compiled[0] is parsed[0]
    assert code.co_names == ("x", "print")


UTF7_SMUGGLE = b"# coding: utf-7\nx = 1  # +AAo-import os\n"
UNICODE_ESCAPE_SMUGGLE = b"# coding: unicode_escape\nx = 1  # \\u000aimport os\n"


def test_python_itself_would_read_these_cookies_as_code() -> None:
    # The premise of the next tests: honouring the cookie turns the comment into an import.
    for smuggled in (UTF7_SMUGGLE, UNICODE_ESCAPE_SMUGGLE):
        assert any(isinstance(node, ast.Import) for node in ast.walk(ast.parse(smuggled)))


@pytest.mark.parametrize("source", [UTF7_SMUGGLE, UNICODE_ESCAPE_SMUGGLE])
def test_foreign_coding_cookies_are_refused_as_bytes_and_as_text(source: bytes) -> None:
    for variant in (source, source.decode("ascii")):
        line, column, reason = refusal(variant)
        assert (line, column) == (1, 11)
        assert reason.startswith("coding declaration") and "programs must be UTF-8" in reason


@pytest.mark.parametrize(
    "source",
    [
        "#!/usr/bin/env repy\n# vim: set fileencoding=latin-1 :\nx = 1\n",
        "x = 1\r# coding: cp1252\rprint(x)\r",
        "x = 1\x0c\n# -*- coding: utf-16 -*-\n",
    ],
)
def test_cookie_on_line_two_is_refused(source: str) -> None:
    assert refusal(source)[0] == 2


def test_without_a_cookie_the_smuggled_text_stays_a_comment() -> None:
    code = check_and_compile("x = 1  # +AAo-import os\nprint(x)\n")
    assert "os" not in code.co_names


# --- malformed text and limits --------------------------------------------------------------------------


def test_invalid_utf8_is_refused_with_its_position() -> None:
    assert refusal(b"x = 1\ny = '\xff'\n") == (2, 6, "the program is not valid UTF-8 (invalid start byte)")


def test_nul_is_refused_with_its_position() -> None:
    assert refusal("x = 1\nab\0c = 2\n") == (2, 3, "the program contains a NUL character")
    assert refusal(b"x = 1\0")[2] == "the program contains a NUL character"


def test_lone_surrogate_is_refused() -> None:
    reason = "the program holds a lone surrogate, which is not valid Unicode"
    assert refusal("x = 1\ny = '\ud800'\n") == (2, 6, reason)


def test_syntax_errors_are_code_unsafe_errors() -> None:
    assert refusal("x = 1\nif x\n    pass\n") == (2, 5, "syntax error: expected ':'")
    assert refusal("return 5\n")[2] == "syntax error: 'return' outside function"
    assert refusal("x = " + "1" * 5000)[2].startswith("syntax error: Exceeds the limit (4300 digits)")


def test_source_size_limit() -> None:
    big = "x = 1\n" + "#" * MAX_SOURCE_BYTES
    assert refusal(big)[2] == f"the program is {len(big)} bytes long; the limit is {MAX_SOURCE_BYTES}"
    assert "bytes long" in refusal(big.encode())[2]
    # Multi-byte characters count by their UTF-8 size, not by the number of characters.
    wide = "x = '" + "é" * (MAX_SOURCE_BYTES // 2) + "'"
    assert len(wide) < MAX_SOURCE_BYTES
    assert "bytes long" in refusal(wide)[2]


@pytest.mark.parametrize(
    ("bomb", "reason"),
    [
        ("(" * 100_000 + ")" * 100_000, "syntax error: too many nested parentheses"),
        ("[" * 100_000 + "]" * 100_000, "syntax error: too many nested parentheses"),
        ("x = " + "-" * 100_000 + "1", "the program is nested too deeply to parse"),
        ("x = " + "not " * 100_000 + "y", "the program is nested too deeply to parse"),
        ("x = a" + "+a" * 100_000, "the program is nested too deeply to parse"),
        ("x = a" + ".b" * 100_000, "the program is nested too deeply to parse"),
        ("x = f" + "()" * 100_000, "the program is nested too deeply to parse"),
        ("f = " + "lambda: " * 100_000 + "0", "the program is nested too deeply to parse"),
        ("x = a" + "+a" * (MAX_DEPTH + 10), f"the program nests deeper than {MAX_DEPTH} levels"),
        (
            "if x:\n    pass\n" + "elif x:\n    pass\n" * (MAX_DEPTH + 10),
            f"the program nests deeper than {MAX_DEPTH} levels",
        ),
        (
            "".join(" " * i + "if x:\n" for i in range(150)) + " " * 150 + "pass\n",
            "syntax error: too many levels",
        ),
    ],
)
def test_parser_bombs_are_refused_not_crashes(bomb: str, reason: str) -> None:
    assert refusal(bomb)[2].startswith(reason)


@pytest.mark.slow
def test_node_count_limit() -> None:
    source = "x = [" + "1," * MAX_NODES + "]"
    assert len(source) < MAX_SOURCE_BYTES
    assert refusal(source)[2] == f"the program has more than {MAX_NODES} syntax nodes"


def test_deep_but_reasonable_nesting_is_fine() -> None:
    chain = "x = 1" + " + 1" * 300 + "\nprint(x)"
    assert run(chain) == ["301"]


@pytest.mark.parametrize("source", [None, 42, bytearray(b"x = 1"), memoryview(b"x = 1")])
def test_source_of_the_wrong_type_is_a_type_error(source: object) -> None:
    with pytest.raises(TypeError, match="source must be str or bytes, not "):
        check_and_compile(source)  # type: ignore[arg-type]


def test_str_subclass_source_is_a_type_error() -> None:
    class Shifty(str):
        pass

    with pytest.raises(TypeError, match="source must be str or bytes, not Shifty"):
        check_and_compile(Shifty("x = 1"))


def test_filename_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="filename must be a str, not bytes"):
        check_and_compile("x = 1", b"prog")  # type: ignore[arg-type]


def test_compiled_code_ignores_the_checkers_future_imports() -> None:
    # checker.py uses `from __future__ import annotations`; programs must not inherit it.
    assert run("def f(a: int) -> int:\n    return a\nprint(f(2))") == ["2"]
    code = check_and_compile("x: int = 1")
    namespace: dict[str, object] = {"__builtins__": make_builtins(print)}
    exec(code, namespace)
    assert namespace["__annotations__"] == {"x": int}


# --- the safe builtins -------------------------------------------------------------------------------


def test_safe_type_answers_for_ordinary_objects() -> None:
    class Thing:
        pass

    assert safe_type(0) is int
    assert safe_type("s") is str
    assert safe_type(Thing()) is Thing
    assert safe_type.__name__ == "type"


@pytest.mark.parametrize("argument", [int, type, type(type), Exception, object])
def test_safe_type_refuses_the_type_of_a_class(argument: object) -> None:
    with pytest.raises(TypeError, match=r"^type\(\) of a class is not available in a vessel$"):
        safe_type(argument)


def test_safe_type_refuses_three_arguments() -> None:
    with pytest.raises(TypeError, match=r"type\(\) takes exactly one argument in a vessel \(3 given\)"):
        safe_type("C", (), {})
    with pytest.raises(TypeError, match=r"\(0 given\)"):
        safe_type()


def test_type_of_type_fails_inside_a_program() -> None:
    source = """
try:
    print(type(type(0)))
except TypeError as error:
    print("refused:", str(error))
class Meta:
    pass
try:
    print(type(Meta))
except TypeError:
    print("refused again")
"""
    assert run(source) == ["refused: type() of a class is not available in a vessel", "refused again"]


def test_builtins_hold_exactly_the_allowlist() -> None:
    names = set(make_builtins(print))
    assert names == {*PLAIN_NAMES, "print", "type", "__build_class__", "__name__", lasterror.HOOK}
    forbidden = {
        "getattr", "setattr", "delattr", "hasattr", "vars", "dir", "globals", "locals", "eval", "exec",
        "compile", "open", "input", "__import__", "breakpoint", "help", "memoryview", "classmethod",
        "staticmethod", "property", "format", "exit", "quit", "ExceptionGroup", "BaseExceptionGroup",
        "aiter", "anext", "TimeoutError", "FileNotFoundError", "ConnectionRefusedError", "SystemExit",
    }  # fmt: skip
    assert not names & forbidden


def test_print_is_the_given_function_and_each_call_gets_a_fresh_dict() -> None:
    def sink(*args: object) -> None:
        pass

    first, second = make_builtins(sink), make_builtins(sink)
    assert first["print"] is sink
    assert first is not second
    first["len"] = None
    assert second["len"] is len
    assert first["type"] is safe_type


def test_print_function_must_be_callable() -> None:
    with pytest.raises(TypeError, match="print_function must be callable, not str"):
        make_builtins("stdout")  # type: ignore[arg-type]


def test_names_missing_from_the_builtins_raise_name_error_at_run_time() -> None:
    # The checker allows these names; the builtins simply do not have them.
    for name in ("property", "classmethod", "staticmethod", "ExceptionGroup", "aiter"):
        with pytest.raises(NameError, match=f"name '{name}' is not defined"):
            run(f"x = {name}")
